"""Build the classifiers from data/ and export them as ONNX.

`agent-assist classifiers train` calls `train()`. It is seeded and deterministic: the same data gives
the same models, to the byte. PyTorch and scikit-learn are imported here only (the `train` extra),
never on the live path.

Text: one table of turns from data/ (see corpus.py), each with its context where the source has
one. MiniLM is fine-tuned end to end with a head for distress, escalation and crisis and one for
the crisis kind (finetune.py); its weights are written out as one ONNX graph, quantised to int8,
and the quantised model's outputs on rows held out of fine-tuning give each signal its Platt
calibration (set in the file) and its operating point.

Voice: the acted emotional speech in the emotional-speech folder (RAVDESS actors and TESS; not
copied into the project) gives acoustic features for small logistic models: angry, sad and fearful,
each against neutral or calm. RAVDESS actors 9-12 are held out of fitting, so the voice can be
measured on speakers the models never heard.
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist import __version__
from agent_assist.errors import AgentAssistError
from agent_assist.scoring import acoustic, corpus
from agent_assist.scoring.models import VOICE_HEADS
from agent_assist.scoring.turns import CRISIS_KINDS, SIGNALS, Encoded, Turn, TurnTokenizer

log = logging.getLogger(__name__)

SEED = 20261123
CRISIS_PRECISION = 0.95
VOICE_C = 0.1
HELD_OUT_SPEAKERS = ("ravdess-09", "ravdess-10", "ravdess-11", "ravdess-12")
# Sad and fearful voices lie on either side of a neutral one (low and high arousal), so distress has
# two linear heads, and the voice's distress evidence is the stronger of the two.
VOICE_POSITIVE = {"escalation": {"angry"}, "sad": {"sad"}, "fearful": {"fear", "fearful"}}
VOICE_NEGATIVE = {"neutral", "calm"}
# The cepstrum (the spectral envelope's shape) helps tell angry and fearful voices from calm ones on
# speakers never heard (leave-one-speaker-out 0.94 → 0.97 and 0.71 → 0.77), but a sad head that
# reads it learns who is speaking more than how (held-out 0.81 → 0.68): it does without. The angry
# head reads only the changes from baseline it always read (`acoustic.ANGER_RELATIVE`): the others
# cost it on unseen actors (0.977 → 0.951 on the telephone line). Names of `acoustic.input_names()`.
VOICE_WITHOUT: dict[str, tuple[str, ...]] = {
    "sad": tuple(n for n in acoustic.input_names() if n.removeprefix("rel_").startswith("cepstrum_")),
    "escalation": tuple(f"rel_{n}" for n in acoustic.RELATIVE if n not in acoustic.ANGER_RELATIVE),
}
# The one speaker of another corpus: each head is fitted again without her and measured on her
# clips (another recording, another age, one word in a carrier phrase instead of two sentences).
OTHER_CORPUS_SPEAKER = "tess-OAF"

#: How many rows of each public corpus a fine-tuning run reads (a seeded sample; all of our own).
#: Fine-tuning costs about 1 s per batch of 32 on this 2-core machine, so the corpora are sampled
#: to keep each fine-tuning run near 30 minutes, and our in-domain turns weigh more in the loss instead.
CORPUS_SAMPLE = {"goemotions": 14000, "davidson": 2000, "bitext": 2000, "counsel_chat": 2000}
IN_DOMAIN_LOSS_WEIGHT = 3.0
HOLD_OUT = 0.15  # of each source, never fine-tuned on: calibration, operating points, metrics

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- text ----------------------------------------------------------------------------------------


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in pairwise(edges):
        m = (p >= lo) & (p < hi) if hi < 1 else (p >= lo)
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def _best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for th in np.round(np.arange(0.2, 0.96, 0.05), 2):
        pred = p >= th
        tp = float((pred & (y == 1)).sum())
        prec = tp / max(pred.sum(), 1)
        rec = tp / max((y == 1).sum(), 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-9)
        if f1 > best_f1:
            best, best_f1 = float(th), f1
    return best


def _precise_threshold(p: np.ndarray, y: np.ndarray, precision: float) -> float:
    """The lowest threshold (in steps of 0.01) whose precision is at least `precision`."""
    for th in np.round(np.arange(0.05, 0.99, 0.01), 2):
        pred = p >= th
        if pred.any() and float((y[pred] == 1).mean()) >= precision:
            return float(th)
    return 0.99


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _platt(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=1000).fit(logits.reshape(-1, 1), y, sample_weight=w)
    return float(m.coef_[0, 0]), float(m.intercept_[0])


@dataclass(frozen=True)
class Split:
    """Which rows fine-tune the model and which are held out to calibrate and measure it."""

    train: np.ndarray
    held_out: np.ndarray


def split(rows: Sequence[corpus.Row], sample: dict[str, int] | None = None, seed: int = SEED) -> Split:
    """A seeded sample of each public corpus and all of our own rows; `HOLD_OUT` of each held out."""
    sample = CORPUS_SAMPLE if sample is None else sample
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_source.setdefault(r.source, []).append(i)
    train, held = [], []
    for source in sorted(by_source):
        index = np.array(by_source[source])
        index = index[rng.permutation(len(index))]
        if source in sample:
            index = index[: sample[source]]
        n_held = round(len(index) * HOLD_OUT)
        held.append(index[:n_held])
        train.append(index[n_held:])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(held)))


BORROWED_CONTEXT_SHARE = 0.5


def with_borrowed_context(rows: Sequence[corpus.Row], seed: int = SEED) -> list[corpus.Row]:
    """`rows`, and again half of their calm in-domain turns after the agent's words that came before
    a crisis (labels unchanged). Many disclosures follow a routine "anything else I can help with?",
    and without this a model learns that the question, not the answer, is the crisis: it flagged
    "no, that's all for me today" on calm bank calls."""
    rng = np.random.default_rng(seed)
    before_crisis = sorted({r.agent_prev for r in rows if r.crisis == 1 and r.agent_prev.strip()})
    calm = [r for r in rows if r.weight > 1 and r.source == "contact_centre_turns"
            and (r.distress, r.escalation, r.crisis) == (0, 0, 0)]
    if not before_crisis:
        return list(rows)
    borrowed = [replace(r, agent_prev=before_crisis[int(rng.integers(len(before_crisis)))])
                for r in calm if rng.random() < BORROWED_CONTEXT_SHARE]
    return [*rows, *borrowed]


def encode_rows(tokenizer: TurnTokenizer, rows: Sequence[corpus.Row]) -> Encoded:
    """Rows as the model reads them, with labels (-1 unknown), kinds (-1 none) and loss weights."""
    data = tokenizer.encode([Turn(r.text, r.agent_prev, r.customer_prev) for r in rows])
    data.labels = np.array([[-1 if getattr(r, s) is None else getattr(r, s) for s in SIGNALS] for r in rows],
                           np.int8)
    data.kind = np.array([CRISIS_KINDS.index(r.kind) if r.crisis == 1 and r.kind in CRISIS_KINDS else -1
                          for r in rows], np.int64)
    data.weight = np.array([IN_DOMAIN_LOSS_WEIGHT if r.weight > 1 else 1.0 for r in rows], np.float32)
    return data


def export_text(weights: dict[str, np.ndarray], path: Path, calib_a: np.ndarray, calib_b: np.ndarray) -> None:
    """The fine-tuned network as one ONNX file, its attention and GELU fused (`onnx_graphs.fused`)
    and its encoder quantised to int8 (the heads stay float)."""
    import onnx

    from agent_assist.scoring import onnx_graphs

    model = onnx_graphs.turn_model(weights, calib_a=calib_a, calib_b=calib_b,
                                   doc=f"agent-assist {__version__} text model: " + ", ".join(SIGNALS))
    optimizer_log = logging.getLogger("onnxruntime.transformers.optimizer")
    level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)  # it warns that the producer is not "pytorch"; ours is this
    try:
        model = onnx_graphs.fused(model)
    finally:
        optimizer_log.setLevel(level)
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "text.float.onnx"
        onnx.save(model, full)
        quantise(full, path, keep_float=onnx_graphs.HEAD_NODES)


def quantise(source: Path, target: Path, keep_float: Sequence[str] = ()) -> None:
    """The ONNX graph `source` with its MatMul, Gather and fused Attention weights in int8 (per
    channel), written to `target`; the nodes named in `keep_float` stay float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with without_preprocessing_advice():
        # onnx's shape inference knows no onnxruntime operators (Attention, BiasGelu), so the
        # quantiser is told what their outputs are: float
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gather", "Attention"],
                         nodes_to_exclude=list(keep_float),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


@contextmanager
def without_preprocessing_advice() -> Iterator[None]:
    """Quantise within this to drop onnxruntime's advice to pre-process (`_no_preprocessing_advice`)
    and nothing else; any model the project quantises (the text model, Moonshine base-en) uses it."""
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        yield
    finally:
        root.removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """onnxruntime's quantiser logs "Please consider to run pre-processing before quantization" (a
    WARNING on the root logger, with a link) for any graph without its pre-processing mark. Ours is
    quantised as it is written, and that is what is measured (tests/test_classifiers.py holds the
    int8 graph to the float one; classifiers/CARD.md reports the shipped model), so the advice would
    only alarm whoever trains: it is dropped, and nothing else is."""
    return not record.getMessage().startswith("Please consider to run pre-processing before quantization")


def set_calibration(path: Path, calib_a: np.ndarray, calib_b: np.ndarray) -> None:
    """Write a calibration into an exported text model's `calib_a` / `calib_b` initialisers."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = {"calib_a": np.asarray(calib_a, np.float32), "calib_b": np.asarray(calib_b, np.float32)}
    for init in model.graph.initializer:
        if init.name in values:
            init.CopyFrom(numpy_helper.from_array(values.pop(init.name), init.name))
    if values:
        raise AgentAssistError(f"{path}: no {', '.join(values)} in the text model")
    path.write_bytes(model.SerializeToString())


def onnx_outputs(path: Path, data: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """The exported model's raw logits and kind probabilities, one row at a time as on a call."""
    from agent_assist.scoring.models import _session

    session = _session(path, threads=2)
    logits = np.zeros((len(data), len(SIGNALS)), np.float32)
    kinds = np.zeros((len(data), len(CRISIS_KINDS)), np.float32)
    for row in range(len(data)):
        ids, types, mask = data.padded([row])
        logits[row], kinds[row] = (a[0] for a in session.run(
            ["logits", "kind"], {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}))
    return logits, kinds


def _metrics(p: np.ndarray, y: np.ndarray, threshold: float, what: str) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    pred = p >= threshold
    return {
        "rows": len(y),
        "set": what,
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "average_precision": round(float(average_precision_score(y, p)), 4),
        "precision": round(float((y[pred] == 1).mean()) if pred.any() else 0.0, 4),
        "recall": round(float(pred[y == 1].mean()), 4),
        "ece": round(expected_calibration_error(p, y), 4),
    }


def fit_text(rows: Sequence[corpus.Row], out_dir: Path, options: Any, progress: Progress = _quiet,
             sample: dict[str, int] | None = None) -> dict[str, Any]:
    """Fine-tune, export, calibrate on held-out rows and measure: writes `out_dir/text.onnx` and
    returns the manifest's text part (operating points included)."""
    from agent_assist.scoring import base, finetune

    tokenizer_path = out_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        tokenizer_path.write_bytes(base.tokenizer_json())
    tokenizer = TurnTokenizer(tokenizer_path)
    parts = split(rows, sample)
    held_rows = [rows[i] for i in parts.held_out]
    held_data = encode_rows(tokenizer, held_rows)
    runs, borrowed = [], []
    for n in range(options.runs):
        run = replace(options, seed=options.seed + n)
        train_rows = with_borrowed_context([rows[i] for i in parts.train], run.seed)
        borrowed.append(len(train_rows) - len(parts.train))
        said = progress if options.runs == 1 else _run_progress(progress, n + 1, options.runs)
        if n == 0:
            progress(f"word pieces of {len(train_rows)} training and {len(parts.held_out)} held-out turns")
            progress("base encoder: all-MiniLM-L6-v2")
        runs.append(finetune.fit(base.weights(), encode_rows(tokenizer, train_rows), run, said))
    weights = runs[0] if len(runs) == 1 else finetune.average(runs)  # none: "no runs to average"
    del runs
    progress("exporting text.onnx (int8)")
    path = out_dir / "text.onnx"
    ones, zeros = np.ones(len(SIGNALS), np.float32), np.zeros(len(SIGNALS), np.float32)
    export_text(weights, path, ones, zeros)
    progress("calibrating on held-out turns")
    calibrated = calibrate(path, held_rows, held_data)
    return {
        "rows": dict(sorted(Counter(r.source for r in rows).items())),
        "trained_rows": dict(sorted(Counter(rows[i].source for i in parts.train).items())),
        "borrowed_context_rows": borrowed[0] if len(borrowed) == 1 else borrowed,
        "held_out_rows": dict(sorted(Counter(rows[i].source for i in parts.held_out).items())),
        "encoder": "all-MiniLM-L6-v2, fine-tuned end to end (int8)" + (
            f", the average of {options.runs} runs' weights "
            f"(seeds {options.seed}-{options.seed + options.runs - 1})" if options.runs > 1 else ""),
        "context": "customer's previous turn and the agent's words before the turn",
        "fine_tuning": {k: v for k, v in vars(options).items()},
        **calibrated,
    }


def _run_progress(progress: Progress, n: int, runs: int) -> Progress:
    def say(step: str) -> None:  # "fine-tuning: step 50/2721" → "fine-tuning (run 2 of 3): step 50/2721"
        progress(step.replace("fine-tuning:", f"fine-tuning (run {n} of {runs}):", 1))

    return say


def calibrate(path: Path, held_rows: Sequence[corpus.Row], held_data: Encoded) -> dict[str, Any]:
    """Fit the exported model at `path` to the held-out rows as onnxruntime runs it here: a Platt
    calibration per signal (written into the file), the operating points and the metrics. Returns
    those parts of the manifest. Run again on a trained model (`bench/recalibrate_text.py`) when the
    way the model is run changes (`models.DISABLED_FUSIONS`), so its file stays what training gives."""
    logits, kinds = onnx_outputs(path, held_data)
    ours = np.array([r.weight > 1 for r in held_rows])
    w = np.where(ours, IN_DOMAIN_LOSS_WEIGHT, 1.0)
    calib_a, calib_b = np.ones(len(SIGNALS), np.float32), np.zeros(len(SIGNALS), np.float32)
    thresholds: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    for i, signal in enumerate(SIGNALS):
        y = held_data.labels[:, i]
        known = y >= 0
        calib_a[i], calib_b[i] = _platt(logits[known, i], y[known], w[known])
        p = _sigmoid(calib_a[i] * logits[:, i] + calib_b[i])
        mine = known & ours
        if signal == "crisis":
            # never above "more likely than not": a missed crisis costs more than a false alarm
            thresholds[signal] = min(_precise_threshold(p[mine], y[mine], CRISIS_PRECISION), 0.5)
        else:
            thresholds[signal] = _best_f1_threshold(p[mine], y[mine])
        metrics[signal] = {
            "held_out": _metrics(p[known], y[known], thresholds[signal], "held-out rows, every source"),
            "held_out_in_domain": _metrics(p[mine], y[mine], thresholds[signal], "held-out rows, our own"),
        }
    has_kind = held_data.kind >= 0
    right = kinds[has_kind].argmax(1) == held_data.kind[has_kind]
    kind_accuracy = float(right.mean()) if has_kind.any() else 0.0
    set_calibration(path, calib_a, calib_b)
    return {
        "calibration": {"a": [round(float(a), 6) for a in calib_a],
                        "b": [round(float(b), 6) for b in calib_b]},
        "metrics": metrics,
        "kind_accuracy_held_out": round(kind_accuracy, 4),
        "kind_rows_held_out": int(has_kind.sum()),
        "operating_points": thresholds,
    }


# -- voice ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    path: Path
    corpus: str
    speaker: str
    emotion: str
    transcript: str
    line: str = "wide"  # "phone": heard as an 8 kHz μ-law call recording (`telephone.over_the_phone`)


LINES = ("wide", "phone")


def on_both_lines(clips: Sequence[Clip]) -> list[Clip]:
    """Each clip as recorded and as it would come down a phone line: the voice models learn both."""
    return [c if line == "wide" else replace(c, line=line) for line in LINES for c in clips]


def voice_clips(directory: Path) -> list[Clip]:
    manifest = directory / "manifest.csv"
    if not manifest.is_file():
        raise AgentAssistError(
            f"{manifest}: emotional speech not found; pass --voice-data DIR (see data/README.md)"
        )
    with manifest.open(encoding="utf-8", newline="") as fh:
        return [
            Clip(directory / r["file"], r["corpus"], r["speaker"], r["emotion"], r["transcript"])
            for r in csv.DictReader(fh)
        ]


def decode(path: Path) -> np.ndarray:
    """A whole clip as 16 kHz mono float32 (for training and evaluation, not the live path)."""
    from agent_assist.audio.files import ChannelLayout, FileSource

    source = FileSource(path, ChannelLayout.MONO)
    parts = [chunk.samples for block in source.blocks() for chunk in block]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def clip_features(clip: Clip) -> np.ndarray:
    """Features as the pipeline computes them: speech span by energy, rate from the script."""
    from agent_assist.audio.telephone import over_the_phone

    x = decode(clip.path)
    if clip.line == "phone":
        x = over_the_phone(x)
    span = acoustic.speech_span(x)
    return acoustic.features(x, words=len(clip.transcript.split()), speech_s=span)


def voice_matrix(clips: Sequence[Clip], progress: Progress = _quiet) -> np.ndarray:
    progress(f"voice features of {len(clips)} clips")
    return np.stack([clip_features(clip) for clip in clips])


def voice_design(X: np.ndarray, speakers: np.ndarray, emotions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each clip twice: judged alone (no baseline) and against its speaker's calm median (`speakers`
    here names a speaker on one line: a voice's baseline is taken on the line it is heard on)."""
    calm = np.isin(emotions, list(VOICE_NEGATIVE))
    rel = np.zeros((len(X), len(acoustic.RELATIVE)), np.float32)
    for s in np.unique(speakers):
        m = speakers == s
        base = np.median(X[m & calm], axis=0) if (m & calm).any() else np.median(X[m], axis=0)
        rel[m] = np.stack([acoustic.relative(x, base) for x in X[m]])
    alone = acoustic.model_input(X, np.zeros_like(rel), np.zeros(len(X), np.float32))
    against = acoustic.model_input(X, rel, np.ones(len(X), np.float32))
    return alone, against


@dataclass
class VoiceModel:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (F, heads)
    intercept: np.ndarray  # (heads,)
    prior: dict[str, float]
    metrics: dict[str, Any]


def fit_voice(clips: Sequence[Clip], X: np.ndarray, progress: Progress = _quiet) -> VoiceModel:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    speakers = np.array([c.speaker for c in clips])
    lines = np.array([c.line for c in clips])
    emotions = np.array([c.emotion for c in clips])
    alone, against = voice_design(X, np.char.add(np.char.add(speakers, "/"), lines), emotions)
    fit_rows = ~np.isin(speakers, HELD_OUT_SPEAKERS)
    design = np.vstack([alone, against])
    spk2 = np.concatenate([speakers, speakers])
    emo2 = np.concatenate([emotions, emotions])
    scaler = StandardScaler().fit(design[np.concatenate([fit_rows, fit_rows])])
    coefs, intercepts, prior = [], [], {}
    metrics: dict[str, dict[str, Any]] = {}
    names = acoustic.input_names()
    for signal in VOICE_HEADS:
        progress(f"voice model: {signal}")
        without = VOICE_WITHOUT.get(signal, ())
        cols = [i for i, name in enumerate(names) if name not in without]
        pos, neg = np.isin(emo2, list(VOICE_POSITIVE[signal])), np.isin(emo2, list(VOICE_NEGATIVE))
        use = (pos | neg) & ~np.isin(spk2, HELD_OUT_SPEAKERS)
        scaled = scaler.transform(design)[:, cols]
        model = LogisticRegression(C=VOICE_C, max_iter=3000).fit(scaled[use], pos[use])
        coef = np.zeros(design.shape[1])
        coef[cols] = model.coef_[0]  # the features a head does without weigh nothing
        coefs.append(coef)
        intercepts.append(model.intercept_[0])
        prior[signal] = round(float(pos[use].mean()), 4)
        # speakers never seen in fitting: the held-out actors, clip alone and with a baseline, on
        # each line
        n = len(X)
        p_all = model.predict_proba(scaled)[:, 1]
        metrics[signal] = {"held_out_speakers": list[Any](HELD_OUT_SPEAKERS)}
        for line in sorted(set(lines)):
            held = (pos | neg)[:n] & np.isin(speakers, HELD_OUT_SPEAKERS) & (lines == line)
            suffix = "" if line == "wide" else f"_{line}"
            metrics[signal][f"roc_auc_alone{suffix}"] = round(
                float(roc_auc_score(pos[:n][held], p_all[:n][held])), 4)
            metrics[signal][f"roc_auc_with_baseline{suffix}"] = round(
                float(roc_auc_score(pos[n:][held], p_all[n:][held])), 4)
        # another corpus: fitted on every other speaker (the held-out actors too), measured on the
        # one speaker of the other corpus, against her own baseline, on each line
        other = spk2 == OTHER_CORPUS_SPEAKER
        if other.any():
            fit = (pos | neg) & ~other
            p_other = _refitted(design[fit][:, cols], pos[fit])(against[:, cols])
            for line in sorted(set(lines)):
                held = (pos | neg)[:n] & other[:n] & (lines == line)
                suffix = "" if line == "wide" else f"_{line}"
                metrics[signal][f"roc_auc_other_corpus{suffix}"] = round(
                    float(roc_auc_score(pos[n:][held], p_other[held])), 4)
        # and leave-one-speaker-out over every speaker (both lines), clip alone
        ys, ps = [], []
        for s in np.unique(speakers):
            tr = (pos | neg)[:n] & (speakers != s)
            te = (pos | neg)[:n] & (speakers == s)
            if not te.any():
                continue
            ys.append(pos[:n][te])
            ps.append(_refitted(alone[tr][:, cols], pos[:n][tr])(alone[te][:, cols]))
        metrics[signal]["roc_auc_leave_one_speaker_out"] = round(
            float(roc_auc_score(np.concatenate(ys), np.concatenate(ps))), 4
        )
    return VoiceModel(
        scaler.mean_, scaler.scale_, np.stack(coefs, axis=1), np.array(intercepts), prior, metrics
    )


def _refitted(X: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A voice head fitted again on these rows alone, scaler too, for measuring it on speakers left
    out: rows → probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    model = LogisticRegression(C=VOICE_C, max_iter=3000).fit(scaler.transform(X), y)
    return lambda rows: model.predict_proba(scaler.transform(rows))[:, 1]


def export_voice(model: VoiceModel, path: Path) -> None:
    from agent_assist.scoring import onnx_graphs

    onnx_model = onnx_graphs.linear_model(
        mean=model.mean,
        scale=model.scale,
        coef=model.coef,
        intercept=model.intercept,
        doc=f"agent-assist {__version__} acoustic classifiers: " + ", ".join(VOICE_HEADS),
    )
    path.write_bytes(onnx_model.SerializeToString())


# -- everything ----------------------------------------------------------------------------------


def steps(*, voice: bool, text: bool = True) -> int:
    """How many progress steps `train` reports (fine-tuning reports its own as it goes)."""
    text_steps = 5 if text else 0  # read, word pieces, base, export, calibrate
    voice_steps = 2 + len(VOICE_HEADS) if voice else 0  # features, one per head, export
    return text_steps + voice_steps + 1  # and the manifest


def train(
    data_dir: Path | None, out_dir: Path, voice_dir: Path | None, progress: Progress = _quiet,
    options: Any = None, sample: dict[str, int] | None = None, voice_only: bool = False,
) -> dict[str, Any]:
    """Rebuild the models in `out_dir` from `data_dir` (and the clips in `voice_dir`). With
    `voice_only`, only the acoustic model is fitted again, from `voice_dir`; the text model in
    `out_dir` and its part of the manifest stay as they are (a minute, not an hour and a half)."""
    from agent_assist.scoring.finetune import TrainOptions

    options = options or TrainOptions(seed=SEED)
    np.random.seed(SEED)
    previous = _read_manifest(out_dir)
    # said before the long part, not after it
    if voice_only:
        if voice_dir is None:
            raise AgentAssistError("--voice-only fits the acoustic model: pass --voice-data DIR")
        if previous is None or not (out_dir / "text.onnx").is_file():
            raise AgentAssistError(f"{out_dir}: no text model to keep; train without --voice-only first")
    elif voice_dir is None and not (previous and (out_dir / "acoustic.onnx").is_file()):
        raise AgentAssistError("no acoustic model yet: pass --voice-data DIR to fit one")
    elif data_dir is None:
        raise AgentAssistError("the text model is fitted from --data DIR (or pass --voice-only)")
    if voice_only:
        assert previous is not None
        manifest = dict(previous)
    else:
        assert data_dir is not None
        progress("reading data/")
        rows = corpus.load(data_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        text_info = fit_text(rows, out_dir, options, progress, sample)
        operating_points = text_info.pop("operating_points")
        manifest = {"version": __version__, "seed": options.seed, "text": text_info,
                    "acoustic": previous["acoustic"] if previous else None,
                    "operating_points": operating_points}
    if voice_dir is not None:
        clips = on_both_lines(voice_clips(voice_dir))
        X = voice_matrix(clips, progress)
        voice = fit_voice(clips, X, progress)
        progress("exporting acoustic.onnx")
        export_voice(voice, out_dir / "acoustic.onnx")
        manifest["acoustic"] = {
            "features": list(acoustic.FEATURES),
            "relative": list(acoustic.RELATIVE),
            "prior": voice.prior,
            "metrics": voice.metrics,
            "data": "RAVDESS actors 1-8 (CC BY-NC-SA 4.0), TESS OAF (CC BY-NC-ND 4.0); each clip as "
                    "recorded and as an 8 kHz μ-law telephone recording",
        }
    progress("manifest")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

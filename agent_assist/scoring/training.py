"""Build the classifiers from data/ with scikit-learn, and export them as ONNX.

`agent-assist classifiers train` calls `train()`. It is seeded and deterministic: the same data gives
the same models. scikit-learn is imported here only, never on the live path.

Text: one table of rows from data/ (see corpus.py). Features are TF-IDF over stem unigrams and
bigrams (sublinear tf, L2-normalised) beside the all-MiniLM-L6-v2 sentence embedding (the frozen
encoder in classifiers/encoder.onnx). One logistic regression per signal, with a Platt scaling
that makes its output a calibrated probability (folded into the ONNX graph).

Voice: the acted emotional speech in the emotional-speech folder (RAVDESS actors and TESS; not
copied into the project) gives acoustic features for two small logistic models: angry against
neutral or calm, and sad or fearful against neutral or calm. RAVDESS actors 9-12 are held out of
fitting, so the voice can be measured on speakers the models never heard.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist import __version__
from agent_assist.errors import AgentAssistError
from agent_assist.scoring import acoustic, corpus, text
from agent_assist.scoring.models import TEXT_SIGNALS, VOICE_HEADS, Encoder

log = logging.getLogger(__name__)

SEED = 20261123
MAX_TERMS = 60000
TEXT_C = 1.0
CRISIS_C = 4.0
CRISIS_PRECISION = 0.95
VOICE_C = 0.1
HELD_OUT_SPEAKERS = ("ravdess-09", "ravdess-10", "ravdess-11", "ravdess-12")
# Sad and fearful voices lie on either side of a neutral one (low and high arousal), so distress has
# two linear heads, and the voice's distress evidence is the stronger of the two.
VOICE_POSITIVE = {"escalation": {"angry"}, "sad": {"sad"}, "fearful": {"fear", "fearful"}}
VOICE_NEGATIVE = {"neutral", "calm"}

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- text ----------------------------------------------------------------------------------------


class TextFeatures:
    """TF-IDF stem terms beside the sentence embedding: the same arithmetic as text.onnx."""

    def __init__(self) -> None:
        self.tfidf: Any = None

    def fit(self, texts: Sequence[str]) -> TextFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(
            analyzer=_analyse, sublinear_tf=True, min_df=2, max_features=MAX_TERMS, dtype=np.float32
        )
        self.tfidf.fit(texts)
        return self

    def transform(self, texts: Sequence[str], embedding: np.ndarray) -> Any:
        import scipy.sparse as sp

        return sp.hstack([self.tfidf.transform(texts), sp.csr_matrix(embedding)]).tocsr()


def _analyse(t: str) -> list[str]:
    return list(text.terms(text.tokens(t)).elements())


@dataclass
class Head:
    signal: str
    coef: np.ndarray
    intercept: float
    calib_a: float
    calib_b: float
    threshold: float
    metrics: dict[str, Any]


def _platt(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=1000).fit(logits.reshape(-1, 1), y, sample_weight=w)
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def _best_f1_threshold(p: np.ndarray, y: np.ndarray, *, min_precision: float = 0.0) -> float:
    best, best_f1 = 0.5, -1.0
    for th in np.round(np.arange(0.2, 0.96, 0.05), 2):
        pred = p >= th
        tp = float((pred & (y == 1)).sum())
        prec = tp / max(pred.sum(), 1)
        rec = tp / max((y == 1).sum(), 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-9)
        if prec >= min_precision and f1 > best_f1:
            best, best_f1 = float(th), f1
    return best


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in pairwise(edges):
        m = (p >= lo) & (p < hi) if hi < 1 else (p >= lo)
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def _head(
    signal: str, model: Any, a: float, b: float, threshold: float, p: np.ndarray, y: np.ndarray, what: str
) -> Head:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return Head(
        signal,
        model.coef_[0].astype(np.float32),
        float(model.intercept_[0]),
        a,
        b,
        threshold,
        {
            "calibration_rows": len(y),
            "calibration_set": what,
            "roc_auc": round(float(roc_auc_score(y, p)), 4),
            "average_precision": round(float(average_precision_score(y, p)), 4),
            "ece": round(expected_calibration_error(p, y), 4),
        },
    )


def fit_text(
    rows: Sequence[corpus.Row], embedding: np.ndarray, progress: Progress = _quiet
) -> tuple[TextFeatures, list[Head]]:
    """One logistic head per signal over TF-IDF terms and the sentence embedding.

    Distress and escalation: fitted on 80% of their rows, calibrated (Platt) and given an operating
    point (best F1) on the other 20%, then refitted on all of them with that calibration.
    Crisis, whose in-domain set is small: five-fold out-of-fold logits calibrate it, its operating
    point is the lowest threshold whose out-of-fold precision on our own crisis sentences is at
    least 0.95, but never above 0.5, and the shipped head is fitted on every row.
    """
    from sklearn.linear_model import LogisticRegression

    texts = [r.text for r in rows]
    progress("text features")
    feats = TextFeatures().fit(texts)
    X = feats.transform(texts, embedding)
    rng = np.random.default_rng(SEED)
    fold = rng.integers(0, 5, len(rows))
    w = np.array([r.weight for r in rows])
    heads = []
    for signal in TEXT_SIGNALS:
        progress(f"text model: {signal}")
        labelled = np.array([getattr(r, signal) is not None for r in rows])
        y = np.array([getattr(r, signal) or 0 for r in rows])
        if signal != "crisis":
            tr, ho = labelled & (fold != 0), labelled & (fold == 0)
            model = LogisticRegression(C=TEXT_C, max_iter=3000).fit(X[tr], y[tr], sample_weight=w[tr])
            logits = model.decision_function(X[ho])
            a, b = _platt(logits, y[ho], w[ho])
            p = _sigmoid(a * logits + b)
            threshold = _best_f1_threshold(p, y[ho])
            # the shipped head learns from every row, our own in-domain ones above all
            model = LogisticRegression(C=TEXT_C, max_iter=3000).fit(
                X[labelled], y[labelled], sample_weight=w[labelled]
            )
            heads.append(_head(signal, model, a, b, threshold, p, y[ho], "20% held out"))
            continue
        oof = np.zeros(len(rows))
        for k in range(5):
            tr, te = labelled & (fold != k), labelled & (fold == k)
            m = LogisticRegression(C=CRISIS_C, max_iter=3000, class_weight="balanced")
            oof[te] = m.fit(X[tr], y[tr], sample_weight=w[tr]).decision_function(X[te])
        a, b = _platt(oof[labelled], y[labelled], w[labelled])
        p = _sigmoid(a * oof + b)
        ours = np.array([r.source == "contact_centre_crisis" for r in rows])
        # never above "more likely than not": a missed crisis costs more than a false alarm
        threshold = min(_precise_threshold(p[ours], y[ours], CRISIS_PRECISION), 0.5)
        model = LogisticRegression(C=CRISIS_C, max_iter=3000, class_weight="balanced")
        model.fit(X[labelled], y[labelled], sample_weight=w[labelled])
        heads.append(_head(signal, model, a, b, threshold, p[labelled], y[labelled], "5-fold out-of-fold"))
    return feats, heads


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _precise_threshold(p: np.ndarray, y: np.ndarray, precision: float) -> float:
    """The lowest threshold (in steps of 0.01) whose precision is at least `precision`."""
    for th in np.round(np.arange(0.05, 0.99, 0.01), 2):
        pred = p >= th
        if pred.any() and float((y[pred] == 1).mean()) >= precision:
            return float(th)
    return 0.99


def export_text(feats: TextFeatures, heads: Sequence[Head], path: Path) -> None:
    from agent_assist.scoring import onnx_graphs

    n_terms = len(feats.tfidf.vocabulary_)
    terms = [""] * n_terms
    for term, i in feats.tfidf.vocabulary_.items():
        terms[i] = term
    coef = np.stack([h.coef for h in heads], axis=1)
    model = onnx_graphs.text_model(
        terms=terms,
        idf=feats.tfidf.idf_.astype(np.float32),
        term_coef=coef[:n_terms],
        dense_coef=coef[n_terms:],
        intercept=np.array([h.intercept for h in heads]),
        calib_a=np.array([h.calib_a for h in heads]),
        calib_b=np.array([h.calib_b for h in heads]),
        doc=f"agent-assist {__version__} text classifiers: " + ", ".join(h.signal for h in heads),
    )
    path.write_bytes(model.SerializeToString())


# -- voice ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    path: Path
    corpus: str
    speaker: str
    emotion: str
    transcript: str


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
    x = decode(clip.path)
    span = acoustic.speech_span(x)
    return acoustic.features(x, words=len(clip.transcript.split()), speech_s=span)


def voice_matrix(clips: Sequence[Clip], progress: Progress = _quiet) -> np.ndarray:
    progress(f"voice features of {len(clips)} clips")
    return np.stack([clip_features(clip) for clip in clips])


def voice_design(X: np.ndarray, speakers: np.ndarray, emotions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each clip twice: judged alone (no baseline) and against its speaker's calm median."""
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
    emotions = np.array([c.emotion for c in clips])
    alone, against = voice_design(X, speakers, emotions)
    fit_rows = ~np.isin(speakers, HELD_OUT_SPEAKERS)
    design = np.vstack([alone, against])
    spk2 = np.concatenate([speakers, speakers])
    emo2 = np.concatenate([emotions, emotions])
    scaler = StandardScaler().fit(design[np.concatenate([fit_rows, fit_rows])])
    coefs, intercepts, prior, metrics = [], [], {}, {}
    for signal in VOICE_HEADS:
        progress(f"voice model: {signal}")
        pos, neg = np.isin(emo2, list(VOICE_POSITIVE[signal])), np.isin(emo2, list(VOICE_NEGATIVE))
        use = (pos | neg) & ~np.isin(spk2, HELD_OUT_SPEAKERS)
        model = LogisticRegression(C=VOICE_C, max_iter=3000).fit(scaler.transform(design[use]), pos[use])
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
        prior[signal] = round(float(pos[use].mean()), 4)
        # speakers never seen in fitting: the held-out actors, clip alone and with a baseline
        held = (pos | neg) & np.isin(spk2, HELD_OUT_SPEAKERS)
        n = len(X)
        p = model.predict_proba(scaler.transform(design[held]))[:, 1]
        first, second = held[:n], held[n:]
        metrics[signal] = {
            "held_out_speakers": list(HELD_OUT_SPEAKERS),
            "roc_auc_alone": round(float(roc_auc_score(pos[:n][first], p[: first.sum()])), 4),
            "roc_auc_with_baseline": round(float(roc_auc_score(pos[n:][second], p[first.sum() :])), 4),
        }
        # and leave-one-speaker-out over every speaker, clip alone
        ys, ps = [], []
        for s in np.unique(speakers):
            tr = (pos | neg)[:n] & (speakers != s)
            te = (pos | neg)[:n] & (speakers == s)
            if not te.any():
                continue
            sc = StandardScaler().fit(alone[tr])
            m = LogisticRegression(C=VOICE_C, max_iter=3000).fit(sc.transform(alone[tr]), pos[:n][tr])
            ys.append(pos[:n][te])
            ps.append(m.predict_proba(sc.transform(alone[te]))[:, 1])
        metrics[signal]["roc_auc_leave_one_speaker_out"] = round(
            float(roc_auc_score(np.concatenate(ys), np.concatenate(ps))), 4
        )
    return VoiceModel(
        scaler.mean_, scaler.scale_, np.stack(coefs, axis=1), np.array(intercepts), prior, metrics
    )


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


def steps(*, voice: bool) -> int:
    """How many progress steps `train` reports."""
    text_steps = 4 + len(TEXT_SIGNALS)  # read, embed, features, one per head, export
    return text_steps + (2 + len(VOICE_HEADS) if voice else 0)  # features, one per head, export


def train(
    data_dir: Path, out_dir: Path, voice_dir: Path | None, progress: Progress = _quiet
) -> dict[str, Any]:
    """Rebuild the models in `out_dir` from `data_dir` (and the clips in `voice_dir`)."""
    np.random.seed(SEED)
    progress("reading data/")
    rows = corpus.load(data_dir)
    progress("sentence embeddings")
    embedding = Encoder(out_dir, threads=os.cpu_count() or 1)([r.text for r in rows])
    feats, heads = fit_text(rows, embedding, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress("exporting text.onnx")
    export_text(feats, heads, out_dir / "text.onnx")
    previous = _read_manifest(out_dir)
    if voice_dir is not None:
        clips = voice_clips(voice_dir)
        X = voice_matrix(clips, progress)
        voice = fit_voice(clips, X, progress)
        progress("exporting acoustic.onnx")
        export_voice(voice, out_dir / "acoustic.onnx")
        acoustic_info = {
            "features": list(acoustic.FEATURES),
            "relative": list(acoustic.RELATIVE),
            "prior": voice.prior,
            "metrics": voice.metrics,
            "data": "RAVDESS actors 1-8 (CC BY-NC-SA 4.0), TESS OAF (CC BY-NC-ND 4.0)",
        }
    elif previous and (out_dir / "acoustic.onnx").is_file():
        acoustic_info = previous["acoustic"]
    else:
        raise AgentAssistError("no acoustic model yet: pass --voice-data DIR to fit one")
    sources = Counter(r.source for r in rows)
    manifest = {
        "version": __version__,
        "seed": SEED,
        "text": {
            "rows": dict(sorted(sources.items())),
            "terms": len(feats.tfidf.vocabulary_),
            "encoder": "all-MiniLM-L6-v2 (int8)",
            "metrics": {h.signal: h.metrics for h in heads},
        },
        "acoustic": acoustic_info,
        "operating_points": {h.signal: h.threshold for h in heads},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


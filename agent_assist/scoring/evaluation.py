"""Measure the shipped classifiers: dev sets, the crisis set, calm calls, voices never heard.

`agent-assist classifiers eval` calls `evaluate()`. The dev sets are evaluation data only: they are
read from where they live (../shared/data/text/dev-eval by default), never copied or trained on.
Each signal is reported as ROC-AUC, average precision and F1 at the shipped operating point, beside
the baseline the issue names: TF-IDF and logistic regression fitted on GoEmotions alone.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist.errors import AgentAssistError
from agent_assist.scoring import corpus
from agent_assist.scoring.models import Classifiers

Progress = Callable[[str], None]
_CURLY = str.maketrans({"\u2019": "'", "\u0092": "'", "\u2018": "'"})


@dataclass(frozen=True)
class DevSet:
    name: str
    texts: list[str]
    labels: dict[str, np.ndarray]  # signal → 0/1


def _read(path: Path) -> Any:
    if not path.is_file():
        raise AgentAssistError(f"{path}: dev set not found; pass --dev-data DIR")
    return path.open(encoding="utf-8", newline="")


def _emotion_csv(path: Path, name: str, distress: set[str], escalation: set[str]) -> DevSet:
    """A CSV of utterances with an `Emotion` column, mapped to our two signals."""
    with _read(path) as fh:
        rows = list(csv.DictReader(fh))
    emo = [r["Emotion"] for r in rows]
    return DevSet(name, [r["Utterance"].translate(_CURLY) for r in rows],
                  {"distress": np.array([e in distress for e in emo]),
                   "escalation": np.array([e in escalation for e in emo])})


def meld(directory: Path) -> DevSet:
    return _emotion_csv(directory / "meld_dev.csv", "MELD dev", {"sadness", "fear"}, {"anger", "disgust"})


def emorynlp(directory: Path) -> DevSet:
    return _emotion_csv(directory / "emorynlp_dev.csv", "EmoryNLP dev", {"Scared", "Sad"}, {"Mad"})


def dailydialog(directory: Path) -> DevSet:
    texts, codes = [], []
    with _read(directory / "dailydialog_dev.txt") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            turns = [t.strip() for t in parts[0].split("__eou__") if t.strip()]
            for turn, code in zip(turns, parts[3].split(), strict=False):
                for a, b in (
                    (" ,", ","),
                    (" .", "."),
                    (" ?", "?"),
                    (" !", "!"),
                    (" ' ", "'"),
                    (" \u2019 ", "'"),
                ):
                    turn = turn.replace(a, b)
                texts.append(turn)
                codes.append(code)
    return DevSet(
        "DailyDialog dev",
        texts,
        {
            "distress": np.array([c in ("3", "5") for c in codes]),
            "escalation": np.array([c in ("1", "2") for c in codes]),
        },
    )


def dreaddit(directory: Path) -> DevSet:
    with _read(directory / "dreaddit_train.csv") as fh:
        rows = list(csv.DictReader(fh))
    return DevSet(
        "Dreaddit", [r["text"] for r in rows], {"distress": np.array([r["label"] == "1" for r in rows])}
    )


def crisis_set(path: Path) -> DevSet:
    with _read(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return DevSet(
        "crisis set", [r["text"] for r in rows], {"crisis": np.array([r["crisis"] == "1" for r in rows])}
    )


def metrics(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    pred = p >= threshold
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 3),
        "average_precision": round(float(average_precision_score(y, p)), 3),
        "f1": round(float(f1_score(y, pred, zero_division=0)), 3),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 3),
        "recall": round(float(recall_score(y, pred, zero_division=0)), 3),
        "positives": int(y.sum()),
        "rows": len(y),
    }


class Baseline:
    """TF-IDF + logistic regression on GoEmotions: the yardstick named in the issue.

    It maps GoEmotions as data/README.md and the shared data notes do (disapproval counts as
    escalation), not as our own training does.
    """

    def __init__(self, data_dir: Path) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        rows = list(corpus.goemotions(
            data_dir, distress_labels=corpus.GOEMOTIONS_DISTRESS | corpus.GOEMOTIONS_DISTRESS_UNSURE,
            escalation_labels=corpus.GOEMOTIONS_ESCALATION | corpus.GOEMOTIONS_UNSURE,
            distress_unsure=set(), escalation_unsure=set()))
        texts = [r.text for r in rows]
        self.models = {}
        for signal in ("distress", "escalation"):
            y = np.array([getattr(r, signal) for r in rows])
            self.models[signal] = make_pipeline(
                TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True),
                LogisticRegression(C=4.0, max_iter=2000),
            ).fit(texts, y)

    def score(self, signal: str, texts: Sequence[str]) -> np.ndarray:
        return self.models[signal].predict_proba(list(texts))[:, 1]


def calm_calls(path: Path, models: Classifiers) -> dict[str, Any]:
    """How often a score crosses its operating point on Harper Valley's calm bank calls."""
    calls = [json.loads(line) for line in _read(path)]
    turns = [(c["call_id"], t["text"]) for c in calls for t in c["turns"] if t["speaker"] == "customer"]
    p = models.score_text([t for _, t in turns])
    out: dict[str, Any] = {"calls": len(calls), "customer_turns": len(turns)}
    for i, signal in enumerate(("distress", "escalation", "crisis")):
        hot = p[:, i] >= models.thresholds[signal]
        out[signal] = {
            "turns_over": int(hot.sum()),
            "calls_with_any": len({cid for (cid, _), h in zip(turns, hot, strict=True) if h}),
            "examples": [t for (_, t), h in zip(turns, hot, strict=True) if h][:5],
        }
    return out


def text_speed(models: Classifiers, texts: Sequence[str]) -> float:
    """Milliseconds per utterance for the text model, one utterance at a time."""
    sample = list(texts)[:300]
    models.score_text(sample[:5])
    start = time.perf_counter()
    for t in sample:
        models.score_text([t])
    return (time.perf_counter() - start) * 1000 / len(sample)


def evaluate(
    models: Classifiers,
    data_dir: Path,
    dev_dir: Path,
    crisis_path: Path,
    calls_path: Path | None,
    progress: Progress,
) -> dict[str, Any]:
    datasets = [loader(dev_dir) for loader in (meld, emorynlp, dailydialog, dreaddit)]  # fail fast
    cs = crisis_set(crisis_path)
    progress("baseline: TF-IDF + LR on GoEmotions")
    baseline = Baseline(data_dir)
    report: dict[str, Any] = {"operating_points": models.thresholds, "dev": {}}
    for ds in datasets:
        progress(ds.name)
        p = models.score_text(ds.texts)
        report["dev"][ds.name] = {}
        for signal, y in ds.labels.items():
            i = ("distress", "escalation").index(signal)
            report["dev"][ds.name][signal] = {
                "model": metrics(p[:, i], y, models.thresholds[signal]),
                "baseline": metrics(baseline.score(signal, ds.texts), y, 0.5),
            }
    progress("crisis set")
    p = models.score_text(cs.texts)[:, 2]
    report["crisis"] = metrics(p, cs.labels["crisis"], models.thresholds["crisis"])
    report["crisis"]["missed"] = [
        t
        for t, s, y in zip(cs.texts, p, cs.labels["crisis"], strict=True)
        if y and s < models.thresholds["crisis"]
    ]
    report["crisis"]["false_alarms"] = [
        t
        for t, s, y in zip(cs.texts, p, cs.labels["crisis"], strict=True)
        if not y and s >= models.thresholds["crisis"]
    ]
    if calls_path is not None:
        progress("calm calls")
        report["calm_calls"] = calm_calls(calls_path, models)
    report["text_ms_per_utterance"] = round(text_speed(models, cs.texts), 3)
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as a few aligned lines for the terminal."""
    lines = [
        f"{'set':<18}{'signal':<12}{'ROC-AUC':>8}{'AP':>7}{'F1':>7}   baseline: {'AUC':>6}{'AP':>7}{'F1':>7}"
    ]
    for name, signals in report["dev"].items():
        for signal, m in signals.items():
            a, b = m["model"], m["baseline"]
            lines.append(
                f"{name:<18}{signal:<12}{a['roc_auc']:>8.3f}{a['average_precision']:>7.3f}{a['f1']:>7.3f}"
                f"   {'':>9} {b['roc_auc']:>6.3f}{b['average_precision']:>7.3f}{b['f1']:>7.3f}"
            )
    c = report["crisis"]
    lines.append(
        f"crisis set: precision {c['precision']:.3f}, recall {c['recall']:.3f}, ROC-AUC {c['roc_auc']:.3f} "
        f"({c['positives']} of {c['rows']} positive) at {report['operating_points']['crisis']}"
    )
    if "calm_calls" in report:
        cc = report["calm_calls"]
        fired = ", ".join(
            f"{s} {cc[s]['turns_over']} turns in {cc[s]['calls_with_any']} calls"
            for s in ("distress", "escalation", "crisis")
        )
        lines.append(
            f"calm calls: {cc['calls']} calls, {cc['customer_turns']} customer turns; "
            f"over the operating point: {fired}"
        )
    if "voice" in report:
        v = report["voice"]
        for signal in ("escalation", "distress"):
            m = v[signal]
            lines.append(
                f"voice, unseen actors ({m['positives']} vs {m['negatives']} neutral/calm clips), {signal}: "
                f"ROC-AUC in a call {m['in_call']:.3f}, clip alone {m['alone']:.3f}, "
                f"words only {m['text_only']:.3f}"
            )
    lines.append(f"text model: {report['text_ms_per_utterance']:.2f} ms per utterance")
    return lines


# -- voice through the pipeline ------------------------------------------------------------------


class _BothWays:
    """Stage for the voice evaluation: scores each utterance with and without a speaker baseline."""

    def __init__(self, models: Classifiers) -> None:
        from agent_assist.scoring.scorer import Scorer

        self.with_baseline = Scorer(models)
        self.alone = Scorer(models, use_baseline=False)
        self.alone_scores: dict[str, Any] = {}

    def process(self, event: Any) -> Any:
        from agent_assist.events import Utterance

        for out in self.alone.process(event):
            if isinstance(out, Utterance) and out.scores is not None:
                self.alone_scores[out.utterance_id] = out.scores
        yield from self.with_baseline.process(event)


def voice(
    models: Classifiers,
    voice_dir: Path,
    speakers: Sequence[str],
    transcriber: Any,
    progress: Progress,
    clips_per_emotion: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out actors' clips replayed through the real pipeline, one call per actor.

    Each call opens with two of the actor's neutral clips (the baseline a real call would give)
    and then plays the rest in a shuffled order with 1.2 s of silence between them. Every clip's
    utterance is scored twice: as the pipeline scores it (against the baseline of the call so far)
    and judged alone, as if it were the first thing the actor said.
    """
    from sklearn.metrics import roc_auc_score

    from agent_assist.audio.arrays import ArraySource
    from agent_assist.events import Speaker
    from agent_assist.pipeline import Pipeline
    from agent_assist.scoring.scorer import VoiceAnalyser
    from agent_assist.scoring.training import decode, voice_clips
    from agent_assist.segmenter import Segmenter, SegmenterOptions
    from agent_assist.sinks import EventList

    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[Any]] = {}
    for clip in voice_clips(voice_dir):
        if clip.speaker in speakers:
            by_speaker.setdefault(clip.speaker, []).append(clip)
    results: list[dict[str, Any]] = []
    missing = 0
    gap = np.zeros(int(1.2 * 16000), np.float32)
    for speaker, clips in sorted(by_speaker.items()):
        progress(f"voice: {speaker}")
        neutral = [c for c in clips if c.emotion == "neutral"][:2]
        rest = [c for c in clips if c not in neutral]
        if clips_per_emotion is not None:
            kept: list[Any] = []
            for emotion in sorted({c.emotion for c in rest}):
                kept += [c for c in rest if c.emotion == emotion][:clips_per_emotion]
            rest = kept
        rest = [rest[i] for i in rng.permutation(len(rest))]
        audio, spans = [gap], []
        at = len(gap)
        for clip in neutral + rest:
            x = decode(clip.path)
            spans.append((clip, at / 16000, (at + len(x)) / 16000))
            audio += [x, gap]
            at += len(x) + len(gap)
        stage = _BothWays(models)
        sink = EventList()
        finals_only = Segmenter(SegmenterOptions().unwatched())  # an unpaced replay's
        pipeline = Pipeline([finals_only, VoiceAnalyser(), transcriber, stage], [sink])
        pipeline.run(ArraySource({Speaker.UNKNOWN: np.concatenate(audio)}, f"voice {speaker}"), speaker)
        for clip, start, end in spans[len(neutral) :]:
            mine = [u for u in sink.utterances
                    if start - 0.3 <= u.start <= end + 0.3 and u.scores is not None]
            if not mine:
                missing += 1
                continue
            best = max(mine, key=lambda u: u.end - u.start)
            alone = stage.alone_scores[best.utterance_id]
            assert best.scores is not None
            results.append(
                {
                    "speaker": speaker,
                    "emotion": clip.emotion,
                    "text": best.text,
                    "voice": best.scores.acoustic,
                    "baseline": best.scores.baseline,
                    "in_call": {"distress": best.scores.distress, "escalation": best.scores.escalation},
                    "alone": {"distress": alone.distress, "escalation": alone.escalation},
                    "text_only": dict(best.scores.text),
                }
            )
    out: dict[str, Any] = {"speakers": list(speakers), "clips": len(results), "missing": missing,
                           "results": results}
    emotions = np.array([r["emotion"] for r in results])
    calm = np.isin(emotions, ["neutral", "calm"])
    for signal, positive in (("escalation", ["angry"]), ("distress", ["sad", "fearful", "fear"])):
        pos = np.isin(emotions, positive)
        use = pos | calm
        out[signal] = {
            mode: round(float(roc_auc_score(pos[use], np.array([r[mode][signal] for r in results])[use])), 3)
            for mode in ("in_call", "alone", "text_only")
        }
        out[signal]["positives"] = int(pos.sum())
        out[signal]["negatives"] = int(calm.sum())
    return out

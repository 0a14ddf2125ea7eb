"""Measure the shipped classifiers: dev sets, the crisis set, calm calls, voices never heard.

`agent-assist classifiers eval` calls `evaluate()`. The dev sets are evaluation data only: they are
read from where they live (`--dev-data`; `make eval` names ../shared/data/text/dev-eval), never
copied or trained on.
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
from agent_assist.scoring.turns import Turn

Progress = Callable[[str], None]
_CURLY = str.maketrans({"\u2019": "'", "\u0092": "'", "\u2018": "'"})


@dataclass(frozen=True)
class DevSet:
    name: str
    texts: list[str]
    labels: dict[str, np.ndarray]  # signal → 0/1
    turns: list[Turn] | None = None  # each text with its dialogue's context, where the set has one


def in_context(dialogues: Sequence[Sequence[tuple[str, str]]]) -> list[Turn]:
    """Each (speaker, text) of each dialogue as a Turn with its context, as the text model reads a
    call: the other party's words just before it, and the speaker's own previous line."""
    turns = []
    for dialogue in dialogues:
        last: dict[str, str] = {}
        previous = ("", "")
        for speaker, text in dialogue:
            other = previous[1] if previous[0] != speaker else ""
            turns.append(Turn(text, agent_prev=other, customer_prev=last.get(speaker, "")))
            last[speaker] = text
            previous = (speaker, text)
    return turns


def _read(path: Path) -> Any:
    if not path.is_file():
        raise AgentAssistError(f"{path}: dev set not found; pass --dev-data DIR")
    return path.open(encoding="utf-8", newline="")


def _emotion_csv(path: Path, name: str, distress: set[str], escalation: set[str], dialogue: Sequence[str],
                 order: str) -> DevSet:
    """A CSV of utterances with an `Emotion` column, mapped to our two signals; `dialogue` names the
    columns that identify a conversation and `order` the line's place in it."""
    with _read(path) as fh:
        rows = list(csv.DictReader(fh))
    emo = [r["Emotion"] for r in rows]
    texts = [r["Utterance"].translate(_CURLY) for r in rows]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(tuple(r[c] for c in dialogue), []).append(i)
    turns: list[Turn | None] = [None] * len(rows)
    for index in groups.values():
        index.sort(key=lambda i: int(rows[i][order]))
        for i, turn in zip(index, in_context([[(rows[i]["Speaker"], texts[i]) for i in index]]), strict=True):
            turns[i] = turn
    return DevSet(name, texts,
                  {"distress": np.array([e in distress for e in emo]),
                   "escalation": np.array([e in escalation for e in emo])},
                  [t for t in turns if t is not None])


def meld(directory: Path) -> DevSet:
    return _emotion_csv(directory / "meld_dev.csv", "MELD dev", {"sadness", "fear"}, {"anger", "disgust"},
                        ("Dialogue_ID",), "Utterance_ID")


def emorynlp(directory: Path) -> DevSet:
    return _emotion_csv(directory / "emorynlp_dev.csv", "EmoryNLP dev", {"Scared", "Sad"}, {"Mad"},
                        ("Season", "Episode", "Scene_ID"), "Utterance_ID")


def dailydialog(directory: Path) -> DevSet:
    texts, codes = [], []
    dialogues: list[list[tuple[str, str]]] = []
    with _read(directory / "dailydialog_dev.txt") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            turns = [t.strip() for t in parts[0].split("__eou__") if t.strip()]
            dialogues.append([])
            for number, (turn, code) in enumerate(zip(turns, parts[3].split(), strict=False)):
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
                dialogues[-1].append(("AB"[number % 2], turn))  # the two speakers take turns
    return DevSet(
        "DailyDialog dev",
        texts,
        {
            "distress": np.array([c in ("3", "5") for c in codes]),
            "escalation": np.array([c in ("1", "2") for c in codes]),
        },
        in_context(dialogues),
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
        "crisis set", [r["text"] for r in rows],
        {"crisis": np.array([r["crisis"] == "1" for r in rows]),
         "indirect": np.array([r.get("indirect") == "1" for r in rows]),
         "kind": np.array([r.get("kind", "") for r in rows])},
    )


def test_portion(directory: Path) -> list[corpus.Row]:
    """The in-domain turns written apart from the training data (tests/data/moments/*.jsonl)."""
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise AgentAssistError(f"{directory}: no test turns (*.jsonl) found")
    return [row for f in files for row in corpus.read_turns(f)]


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


def precision_at_recall(p: np.ndarray, y: np.ndarray, recall: float = 0.90) -> float:
    """The best precision at any threshold whose recall is at least `recall`: the crisis target
    ("precision >= 0.95 at recall >= 0.90") read off the scores, whatever threshold ships."""
    from sklearn.metrics import precision_recall_curve

    precision, reached, _ = precision_recall_curve(y, p)
    return round(float(precision[reached >= recall].max()), 3)


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
    """How often a score crosses its operating point on Harper Valley's calm bank calls, each
    customer turn read with its context as on a call."""
    calls = [json.loads(line) for line in _read(path)]
    ids, dialogues = [], []
    for c in calls:
        dialogue = [(t["speaker"], t["text"]) for t in c["turns"]]
        dialogues.append(dialogue)
        ids += [(c["call_id"], speaker == "customer") for speaker, _ in dialogue]
    every = in_context(dialogues)
    turns = [(cid, turn) for (cid, customer), turn in zip(ids, every, strict=True) if customer]
    p = models.score_turns([t for _, t in turns]).signals
    out: dict[str, Any] = {"calls": len(calls), "customer_turns": len(turns)}
    for i, signal in enumerate(("distress", "escalation", "crisis")):
        hot = p[:, i] >= models.thresholds[signal]
        out[signal] = {
            "turns_over": int(hot.sum()),
            "calls_with_any": len({cid for (cid, _), h in zip(turns, hot, strict=True) if h}),
            "examples": [t.text for (_, t), h in zip(turns, hot, strict=True) if h][:5],
        }
    return out


def in_domain(rows: Sequence[corpus.Row], models: Classifiers) -> dict[str, Any]:
    """The held-back in-domain turns: each signal's ROC-AUC and precision/recall at its operating
    point, how each category fares, and whether a crisis is given its right kind."""
    scores = models.score_turns([Turn(r.text, r.agent_prev, r.customer_prev) for r in rows])
    out: dict[str, Any] = {"rows": len(rows), "signals": {}, "categories": {}}
    for i, signal in enumerate(corpus.SIGNALS):
        y = np.array([getattr(r, signal) for r in rows])
        out["signals"][signal] = metrics(scores.signals[:, i], y, models.thresholds[signal])
    indirect_crisis = np.array([r.crisis == 1 and r.category in corpus.INDIRECT for r in rows])
    if indirect_crisis.any():
        p, th = scores.signals[:, 2], models.thresholds["crisis"]
        negatives = np.array([r.crisis == 0 for r in rows])
        use = indirect_crisis | negatives
        out["signals"]["crisis_indirect"] = metrics(p[use], indirect_crisis[use], th)
    for category in corpus.CATEGORIES:
        mine = [i for i, r in enumerate(rows) if r.category == category]
        if not mine:
            continue
        over = {s: float(np.mean(scores.signals[mine, j] >= models.thresholds[s]))
                for j, s in enumerate(corpus.SIGNALS)}
        out["categories"][category] = {"rows": len(mine),
                                       **{f"{s}_over": round(v, 3) for s, v in over.items()}}
    crises = [i for i, r in enumerate(rows) if r.crisis == 1]
    caught = [i for i in crises if scores.signals[i, 2] >= models.thresholds["crisis"]]
    out["kind_accuracy"] = round(float(np.mean([scores.kind(i) == rows[i].kind for i in caught])), 3) \
        if caught else None
    return out


def text_speed(models: Classifiers, texts: Sequence[str]) -> float:
    """Milliseconds per utterance for the text model, one utterance at a time."""
    sample = list(texts)[:300]
    models.score_text(sample[:5])
    start = time.perf_counter()
    for t in sample:
        models.score_text([t])
    return (time.perf_counter() - start) * 1000 / len(sample)


#: A held-back test turn counts as a moment of each kind when (for rules that answer that kind):
MOMENT_OF_ROW = {
    "crisis-self-harm": lambda r: r.crisis == 1 and r.kind == "self-harm",
    "crisis-violence": lambda r: r.crisis == 1 and r.kind == "violence",
    "crisis-danger": lambda r: r.crisis == 1 and r.kind == "danger",
    "distress": lambda r: r.distress == 1,
    "grief": lambda r: r.category == "grief",
    "escalation": lambda r: r.escalation == 1,
    "escalation-request": lambda r: r.category in ("escalation-request", "threat-to-leave"),
}


def rules_on_turns(rows: Sequence[corpus.Row], models: Classifiers, pack: Any) -> dict[str, Any]:
    """Each rule of `pack` on each held-back test turn alone, as the engine would judge that turn
    (its scores and words; call-level signals such as the trend, the agent's pace or the call's
    length are unknown here, so rules that need them are left out): precision and recall against
    the turns that are moments of the kinds the rule answers."""
    from agent_assist.events import Scores
    from agent_assist.rules import conditions
    from agent_assist.rules.engine import RulesEngine

    read = models.score_turns([Turn(r.text, r.agent_prev, r.customer_prev) for r in rows])
    signals = []
    for i in range(len(rows)):
        p = read.signals[i]
        s = Scores(float(p[0]), float(p[1]), float(p[2]), {"distress": float(p[0]), "escalation": float(p[1]),
                   "crisis": float(p[2])}, None, False, {}, kind=read.kind(i))
        signals.append(RulesEngine._values(s))
    turn_signals = set(signals[0]) if signals else set()
    out: dict[str, Any] = {}
    for rule in pack.enabled:
        used = conditions.names(rule.condition)
        if not rule.answers or "agent_says" in used or not used - {"customer_says"} <= turn_signals:
            continue
        truth = np.array([any(MOMENT_OF_ROW[k](r) for k in rule.answers) for r in rows])
        fired = np.array([conditions.evaluate(rule.condition, signals[i], {"customer": r.text})
                          for i, r in enumerate(rows)])
        out[rule.id] = {"answers": list(rule.answers), "fired": int(fired.sum()), "moments": int(truth.sum()),
                        "precision": round(float(truth[fired].mean()), 3) if fired.any() else None,
                        "recall": round(float(fired[truth].mean()), 3) if truth.any() else None}
    return out


def evaluate(
    models: Classifiers,
    data_dir: Path,
    dev_dir: Path,
    crisis_path: Path,
    calls_path: Path | None,
    progress: Progress,
    moments_dir: Path | None = None,
) -> dict[str, Any]:
    datasets = [loader(dev_dir) for loader in (meld, emorynlp, dailydialog, dreaddit)]  # fail fast
    cs = crisis_set(crisis_path)
    progress("baseline: TF-IDF + LR on GoEmotions")
    baseline = Baseline(data_dir)
    report: dict[str, Any] = {"operating_points": models.thresholds, "dev": {}}
    for ds in datasets:
        progress(ds.name)
        alone = models.score_text(ds.texts)
        context = models.score_turns(ds.turns).signals if ds.turns is not None else None
        report["dev"][ds.name] = {}
        for signal, y in ds.labels.items():
            i = ("distress", "escalation").index(signal)
            report["dev"][ds.name][signal] = {
                "model": metrics(alone[:, i], y, models.thresholds[signal]),
                "baseline": metrics(baseline.score(signal, ds.texts), y, 0.5),
            }
            if context is not None:
                report["dev"][ds.name][signal]["in_context"] = metrics(
                    context[:, i], y, models.thresholds[signal])
    progress("crisis set")
    kinds = models.score_turns([Turn(t) for t in cs.texts])
    p, y, th = kinds.signals[:, 2], cs.labels["crisis"], models.thresholds["crisis"]
    report["crisis"] = metrics(p, y, th)
    report["crisis"]["precision_at_recall_0.90"] = precision_at_recall(p, y)
    indirect = cs.labels["indirect"]
    if indirect.any():
        use = indirect | ~y
        report["crisis"]["indirect"] = metrics(p[use], y[use], th)
        report["crisis"]["indirect"]["precision_at_recall_0.90"] = precision_at_recall(p[use], y[use])
    caught = [i for i in range(len(y)) if y[i] and p[i] >= th]
    report["crisis"]["kind_accuracy"] = round(float(np.mean(
        [kinds.kind(i) == cs.labels["kind"][i] for i in caught])), 3) if caught else None
    report["crisis"]["missed"] = [t for t, s, yy in zip(cs.texts, p, y, strict=True) if yy and s < th]
    report["crisis"]["false_alarms"] = [t for t, s, yy in zip(cs.texts, p, y, strict=True)
                                        if not yy and s >= th]
    if moments_dir is not None:
        progress("in-domain test turns")
        rows = test_portion(moments_dir)
        report["in_domain"] = in_domain(rows, models)
        from agent_assist.rules.packs import load_for_run

        report["in_domain"]["rules"] = rules_on_turns(rows, models, load_for_run(()))
    if calls_path is not None:
        progress("calm calls")
        report["calm_calls"] = calm_calls(calls_path, models)
    report["text_ms_per_utterance"] = round(text_speed(models, cs.texts), 3)
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as a few aligned lines for the terminal."""
    lines = [
        f"{'set':<18}{'signal':<12}{'ROC-AUC':>8}{'AP':>7}{'F1':>7}{'in context':>12}"
        f"   baseline: {'AUC':>6}{'AP':>7}{'F1':>7}"
    ]
    for name, signals in report["dev"].items():
        for signal, m in signals.items():
            a, b = m["model"], m["baseline"]
            ctx = f"{m['in_context']['roc_auc']:>12.3f}" if "in_context" in m else f"{'':>12}"
            lines.append(
                f"{name:<18}{signal:<12}{a['roc_auc']:>8.3f}{a['average_precision']:>7.3f}{a['f1']:>7.3f}{ctx}"
                f"   {'':>9} {b['roc_auc']:>6.3f}{b['average_precision']:>7.3f}{b['f1']:>7.3f}"
            )
    c = report["crisis"]
    lines.append(
        f"crisis set: precision {c['precision']:.3f}, recall {c['recall']:.3f}, ROC-AUC {c['roc_auc']:.3f} "
        f"({c['positives']} of {c['rows']} positive) at {report['operating_points']['crisis']}; "
        f"best precision at recall >= 0.90: {c['precision_at_recall_0.90']:.3f}"
    )
    if "indirect" in c:
        i = c["indirect"]
        lines.append(f"  indirect crises against every negative: precision {i['precision']:.3f}, "
                     f"recall {i['recall']:.3f}, ROC-AUC {i['roc_auc']:.3f} "
                     f"({i['positives']} of {i['rows']}); best precision at recall >= 0.90: "
                     f"{i['precision_at_recall_0.90']:.3f}")
    if c.get("kind_accuracy") is not None:
        lines.append(f"  kind (self-harm, violence, danger) right for {c['kind_accuracy']:.3f} "
                     "of the crises caught")
    if "in_domain" in report:
        d = report["in_domain"]
        lines.append(f"in-domain test turns ({d['rows']}, written apart from the training data):")
        for signal, m in d["signals"].items():
            lines.append(f"  {signal:<16} ROC-AUC {m['roc_auc']:.3f}, AP {m['average_precision']:.3f}, "
                         f"precision {m['precision']:.3f}, recall {m['recall']:.3f} "
                         f"({m['positives']} of {m['rows']})")
        if d.get("kind_accuracy") is not None:
            lines.append(f"  kind right for {d['kind_accuracy']:.3f} of the crises caught")
        for category, m in d["categories"].items():
            over = ", ".join(f"{s} {m[f'{s}_over']:.2f}" for s in ("distress", "escalation", "crisis"))
            lines.append(f"  {category:<28}{m['rows']:>4} rows; share over the operating point: {over}")
        if d.get("rules"):
            lines.append("  the default pack's rules on each test turn alone:")
            for rule, m in d["rules"].items():
                def num(x: Any) -> str:
                    return "-" if x is None else f"{x:.2f}"

                lines.append(f"    {rule:<26}fired {m['fired']:>4}, precision {num(m['precision'])}, "
                             f"recall {num(m['recall'])} of {m['moments']} ({', '.join(m['answers'])})")
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
    for key in ("voice", "voice_phone"):
        if key not in report:
            continue
        v = report[key]
        line = "8 kHz μ-law copies" if key == "voice_phone" else "as recorded"
        for signal in ("escalation", "distress"):
            m = v[signal]
            lines.append(
                f"voice, unseen actors, {line} ({m['positives']} vs {m['negatives']} neutral/calm clips), "
                f"{signal}: ROC-AUC in a call {m['in_call']:.3f}, clip alone {m['alone']:.3f}, "
                f"words only {m['text_only']:.3f}"
            )
    lines.append(f"text model: {report['text_ms_per_utterance']:.2f} ms per utterance")
    return lines


# -- voice through the pipeline ------------------------------------------------------------------


class _BothWays:
    """Stage for the voice evaluation: scores each utterance with and without a speaker baseline."""

    droppable_input = False

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
    speech: Any,
    progress: Progress,
    clips_per_emotion: int | None = None,
    seed: int = 0,
    phone: bool = False,
) -> dict[str, Any]:
    """Held-out actors' clips replayed through the real pipeline, one call per actor (with `phone`,
    each clip as an 8 kHz μ-law telephone recording of it).

    Each call opens with two of the actor's neutral clips (the baseline a real call would give)
    and then plays the rest in a shuffled order with 1.2 s of silence between them. Every clip's
    utterance is scored twice: as the pipeline scores it (against the baseline of the call so far)
    and judged alone, as if it were the first thing the actor said.
    """
    from sklearn.metrics import roc_auc_score

    from agent_assist.audio.arrays import ArraySource
    from agent_assist.call import CallOptions, call_stages
    from agent_assist.events import Speaker
    from agent_assist.pipeline import Pipeline
    from agent_assist.scoring.training import decode, voice_clips
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
            if phone:
                from agent_assist.audio.telephone import over_the_phone

                x = over_the_phone(x)
            spans.append((clip, at / 16000, (at + len(x)) / 16000))
            audio += [x, gap]
            at += len(x) + len(gap)
        stage = _BothWays(models)
        sink = EventList()
        # an unpaced replay's stages (finals only), with this evaluation's scorer
        stages = call_stages(speech, CallOptions(rules=False, partials=False), watched=False, scorer=stage)
        pipeline = Pipeline(stages, [sink])
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
    out: dict[str, Any] = {"speakers": list(speakers), "line": "phone" if phone else "wide",
                           "clips": len(results), "missing": missing, "results": results}
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

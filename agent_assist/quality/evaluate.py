"""Measure a rule pack against labelled moments: did the right prompt come, and in time?

A labelled call is a JSON file (data/samples/calls/*.json, written by data/samples/make_calls.py):

    {"id": "call-07", "set": "labelled", "audio": "call-07.ogg", "duration": 80.2,
     "turns": [{"speaker": "customer", "start": 5.9, "end": 10.4, "text": "..."}, ...],
     "moments": [{"kind": "grief", "start": 16.5, "end": 20.3, "words": "...", "turn": 3}, ...]}

`kind` is one of `packs.MOMENT_KINDS`; `start` and `end` bound the words that matter, in call time.
A call with no moments is a calm call: every prompt on it is a false alarm. Each rule says which
kinds of moment its prompt answers (`answers` in the pack).

A moment is **answered** when a prompt from a rule that answers its kind fires no earlier than the
start of the customer's turn holding its words (or half a second before the words, if the labels do
not say the turn) and no later than `WITHIN_S` after they end (call time, so a replay measures what
a live call would show). A prompt **hits** when it answers some moment of a kind its
rule answers within `HIT_WINDOW_S` of its words (a late answer is still the right prompt), else it is
a false alarm. Per rule that gives precision (hits over prompts) and recall (answered moments of its
kinds over all of them).

Supervisors' outcomes on real calls are labels too (`review outcome`, read from the flag store with
`rules evaluate --store`): a rule's flag reviewed as a **false alarm** is a prompt of that rule that
hit nothing, one reviewed as **handled well** a prompt that was right. They count in the rule's
`precision_with_reviews`, (hits + handled well) over (prompts + flags reviewed); a flag's latest
verdict is the one that counts, and a flag reviewed only for the agent's wellbeing is no label.

Agents' ratings of the cards are labels too (the card's Helpful / Not helpful, read from the same
store): a prompt rated **not helpful** is evidence of a false positive, one rated **helpful** of a
true one. They are counted apart from the supervisors' verdicts, in `precision_with_feedback`,
(hits + helpful) over (prompts + prompts rated); an agent's latest rating of a prompt is the one
that counts, and "acknowledged" (a crisis card dismissed) is no label.

**Time to prompt**, per rule: for each moment of a kind the rule answers, how long after the end of
the moment's words the rule's first prompt came (within `HIT_WINDOW_S`; negative while the words
were still being said, on a partial), as the median and the 90th percentile. Unlike recall it
counts the rule's own prompt even when another rule answered the moment first. **Prompts per calm
call-hour**, per rule: its prompts on the calm calls over their length.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_assist.call import Models
from agent_assist.errors import AgentAssistError
from agent_assist.events import CallStart, Prompt, PublicEvent
from agent_assist.quality.calls import read_events, rerun
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.rules.packs import MOMENT_KINDS, Pack
from agent_assist.store.reviews import Outcome
from agent_assist.transcriber import WHISPER, TranscriberOptions

if TYPE_CHECKING:
    from agent_assist.store import FeedbackRecord, FlagRecord

WITHIN_S = 3.0  # "the right prompt within 3 s of the words"
EARLY_S = 0.5  # a prompt may come with the words themselves (a partial), not before them
HIT_WINDOW_S = 15.0


@dataclass(frozen=True)
class Moment:
    kind: str
    start: float
    end: float
    words: str = ""
    turn_start: float | None = None  # when the customer's turn holding these words began

    @property
    def earliest(self) -> float:
        """The earliest a prompt may come and answer it: from the start of its turn (the words just
        before may already have disclosed it), or half a second before its words."""
        early = self.start - EARLY_S
        return early if self.turn_start is None else min(early, self.turn_start)


@dataclass(frozen=True)
class LabelledCall:
    id: str
    path: Path
    audio: Path | None
    duration: float
    moments: tuple[Moment, ...]

    @property
    def calm(self) -> bool:
        return not self.moments


def read_labels(path: Path) -> LabelledCall:
    """A labelled call's JSON file, checked: one line saying what is wrong otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        moments = []
        turns = data.get("turns", [])
        for i, m in enumerate(data.get("moments", [])):
            if m.get("kind") not in MOMENT_KINDS:
                raise ValueError(f"moment {i + 1}: kind must be one of {', '.join(MOMENT_KINDS)}")
            start, end = float(m["start"]), float(m["end"])
            if not (np.isfinite(start) and np.isfinite(end) and 0 <= start <= end):
                raise ValueError(f"moment {i + 1}: start and end must be times, start first")
            turn = m.get("turn")
            turn_start = (float(turns[turn]["start"]) if isinstance(turn, int) and 0 <= turn < len(turns)
                          else None)
            moments.append(Moment(m["kind"], start, end, str(m.get("words", "")), turn_start))
        audio = path.parent / data["audio"] if data.get("audio") else None
        return LabelledCall(str(data.get("id", path.stem)), path, audio, float(data.get("duration", 0.0)),
                            tuple(moments))
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentAssistError(f"{path}: cannot read ({exc})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AgentAssistError(f"{path}: not a labelled call ({exc})") from None


@dataclass
class CallOutcome:
    call: LabelledCall
    prompts: list[Prompt]
    length_s: float
    answered: list[tuple[Moment, Prompt | None]] = field(default_factory=list)
    hits: list[tuple[Prompt, bool]] = field(default_factory=list)


def judge(call: LabelledCall, events: Sequence[PublicEvent], pack: Pack) -> CallOutcome:
    """Which of the call's moments were answered in time, and which prompts hit a moment."""
    answers = {r.id: set(r.answers) for r in pack.rules.values()}
    prompts = [e for e in events if isinstance(e, Prompt)]
    length = max([call.duration, *(e.t for e in events)])
    out = CallOutcome(call, prompts, length)
    for m in call.moments:
        first = next((p for p in prompts if m.kind in answers.get(p.rule, set())
                      and m.earliest <= p.t <= m.end + WITHIN_S), None)
        out.answered.append((m, first))
    for p in prompts:
        kinds = answers.get(p.rule, set())
        hit = any(m.kind in kinds and m.earliest <= p.t <= m.end + HIT_WINDOW_S for m in call.moments)
        out.hits.append((p, hit))
    return out


@dataclass(frozen=True)
class ReviewedFlag:
    """A supervisor's verdict on a rule's flag, as a label of that rule's prompt."""

    flag_id: int
    call_id: str
    rule: str
    t: float
    false_alarm: bool  # else handled well: the flag was right


def reviewed_flags(flags: Iterable[FlagRecord]) -> list[ReviewedFlag]:
    """The flags that are labels: raised by a rule, with a verdict (handled well or false alarm)."""
    return [ReviewedFlag(f.id, f.call_id, f.rule, f.t, f.verdict is Outcome.FALSE_ALARM)
            for f in flags if f.raised_by == "rules" and f.rule and f.verdict is not None]


@dataclass(frozen=True)
class RatedPrompt:
    """An agent's rating of a rule's prompt card, as a label of that rule's prompt."""

    call_id: str
    rule: str
    prompt_t: float
    helpful: bool  # else not helpful: a prompt that should not have come


def rated_prompts(feedback: Iterable[FeedbackRecord]) -> list[RatedPrompt]:
    """The ratings that are labels (helpful, not helpful), the latest for each prompt, in order."""
    latest: dict[tuple[str, str, float], RatedPrompt] = {}
    for f in feedback:
        if f.rating in ("helpful", "not_helpful"):
            key = (f.call_id, f.rule, f.prompt_t)
            latest.pop(key, None)  # a changed mind goes to the end, where it was given
            latest[key] = RatedPrompt(f.call_id, f.rule, f.prompt_t, f.rating == "helpful")
    return list(latest.values())


def _quantile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.quantile(values, q)), 2) if values else None


@dataclass
class Report:
    outcomes: list[CallOutcome]
    pack: Pack
    reviewed: list[ReviewedFlag] = field(default_factory=list)
    rated: list[RatedPrompt] = field(default_factory=list)

    @property
    def moments(self) -> list[tuple[Moment, Prompt | None]]:
        return [a for o in self.outcomes for a in o.answered]

    def summary(self) -> dict[str, Any]:
        moments = self.moments
        answered = [(m, p) for m, p in moments if p is not None]
        calm = [o for o in self.outcomes if o.call.calm]
        calm_hours = sum(o.length_s for o in calm) / 3600
        calm_prompts = sum(len(o.prompts) for o in calm)
        by_kind = {}
        for kind in MOMENT_KINDS:
            mine = [(m, p) for m, p in moments if m.kind == kind]
            if mine:
                by_kind[kind] = {"moments": len(mine), "answered": sum(p is not None for _, p in mine)}
        on_calm = Counter(p.rule for o in calm for p in o.prompts)
        rules = {}
        for rule in self.pack.enabled:
            fired = [(p, hit) for o in self.outcomes for p, hit in o.hits if p.rule == rule.id]
            kinds = set(rule.answers)
            theirs = [(m, p) for m, p in moments if m.kind in kinds]
            mine = [(m, p) for m, p in theirs if p is not None and p.rule == rule.id]
            delays = [p.t - m.end for m, p in mine if p is not None]
            reviews = [r for r in self.reviewed if r.rule == rule.id]
            ratings = [r for r in self.rated if r.rule == rule.id]
            if not fired and not theirs and not reviews and not ratings:
                continue
            to_prompt = self._times_to_prompt(rule.id, kinds)
            helpful = sum(r.helpful for r in ratings)
            hits = sum(hit for _, hit in fired) if kinds else 0
            judged = len(fired) if kinds else 0  # a rule that answers no moment: its prompts are not judged
            right = sum(not r.false_alarm for r in reviews)
            rules[rule.id] = {
                "prompts": len(fired),
                "hits": sum(hit for _, hit in fired),
                "precision": round(sum(hit for _, hit in fired) / len(fired), 3) if fired and kinds else None,
                "moments": len(theirs),
                "answered_first": len(mine),
                "recall": round(len(mine) / len(theirs), 3) if theirs else None,
                "median_s_after_words": round(float(np.median(delays)), 2) if delays else None,
                "time_to_prompt_median_s": _quantile(to_prompt, 0.5),
                "time_to_prompt_p90_s": _quantile(to_prompt, 0.9),
                "time_to_prompt_moments": len(to_prompt),
                "on_calm_calls": on_calm[rule.id],
                "calm_prompts_per_hour": round(on_calm[rule.id] / calm_hours, 2) if calm_hours else None,
                "reviewed": len(reviews),
                "reviewed_false_alarms": len(reviews) - right,
                "precision_with_reviews": (round((hits + right) / (judged + len(reviews)), 3)
                                           if reviews and judged + len(reviews) else None),
                "rated_helpful": helpful,
                "rated_not_helpful": len(ratings) - helpful,
                "precision_with_feedback": (round((hits + helpful) / (judged + len(ratings)), 3)
                                            if ratings and judged + len(ratings) else None),
            }
        delays = [p.t - m.end for m, p in answered if p is not None]
        return {
            "calls": len(self.outcomes),
            "calm_calls": len(calm),
            "moments": len(moments),
            "answered_within_3s": len(answered),
            "answered_share": round(len(answered) / len(moments), 3) if moments else None,
            "median_s_after_words": round(float(np.median(delays)), 2) if delays else None,
            "p90_s_after_words": _quantile(delays, 0.9),
            "calm_prompts": calm_prompts,
            "calm_prompts_per_hour": round(calm_prompts / calm_hours, 2) if calm_hours else None,
            "by_kind": by_kind,
            "rules": rules,
            "missed": [{"call": o.call.id, "kind": m.kind, "at": m.start, "words": m.words,
                        "prompts_near": [f"{p.rule}@{p.t:.1f}" for p in o.prompts
                                         if m.earliest <= p.t <= m.end + HIT_WINDOW_S]}
                       for o in self.outcomes for m, p in o.answered if p is None],
            "false_alarms": [{"call": o.call.id, "rule": p.rule, "t": p.t, "source": "labels"}
                             for o in self.outcomes for p, hit in o.hits
                             if not hit and set(self._answers(p.rule))]
                            + [{"call": r.call_id, "rule": r.rule, "t": r.t, "source": "review",
                                "flag": r.flag_id} for r in self.reviewed if r.false_alarm]
                            + [{"call": r.call_id, "rule": r.rule, "t": r.prompt_t, "source": "feedback"}
                               for r in self.rated if not r.helpful],
            "reviewed_flags": len(self.reviewed),
            "reviewed_false_alarms": sum(r.false_alarm for r in self.reviewed),
            "reviewed_rules_not_in_pack": dict(Counter(r.rule for r in self.reviewed
                                                       if r.rule not in {e.id for e in self.pack.enabled})),
            "rated_prompts": len(self.rated),
            "rated_not_helpful": sum(not r.helpful for r in self.rated),
            "rated_rules_not_in_pack": dict(Counter(r.rule for r in self.rated
                                                    if r.rule not in {e.id for e in self.pack.enabled})),
        }

    def _times_to_prompt(self, rule: str, kinds: set[str]) -> list[float]:
        """For each moment of `kinds`, seconds from the end of its words to `rule`'s first prompt
        within the hit window (moments it did not prompt for are left out)."""
        out = []
        for o in self.outcomes:
            for m in o.call.moments:
                if m.kind in kinds:
                    first = next((p for p in o.prompts
                                  if p.rule == rule and m.earliest <= p.t <= m.end + HIT_WINDOW_S), None)
                    if first is not None:
                        out.append(first.t - m.end)
        return out

    def _answers(self, rule: str) -> tuple[str, ...]:
        r = self.pack.rules.get(rule)
        return r.answers if r else ()


def lines(summary: dict[str, Any]) -> list[str]:
    """The report for a terminal."""
    s = summary

    def num(x: Any) -> str:
        return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)

    out = []
    if s["calls"]:
        out = [f"{s['calls']} calls ({s['calm_calls']} calm), {s['moments']} labelled moments: "
               f"{s['answered_within_3s']} answered by the right prompt within {WITHIN_S:.0f} s "
               f"({(s['answered_share'] or 0) * 100:.0f}%), median {s['median_s_after_words']} s after the "
               "words",
               f"calm calls: {s['calm_prompts']} prompts, {s['calm_prompts_per_hour']} per call-hour", "",
               "by kind of moment:"]
        for kind, v in s["by_kind"].items():
            out.append(f"  {kind:<22}{v['answered']:>3} of {v['moments']:<3}")
        out += ["", f"  {'':<26}{'':>8}{'':>10}{'':>8}{'time to prompt, s':>18}{'on calm calls':>16}",
                f"  {'rule':<26}{'prompts':>8}{'precision':>10}{'recall':>8}{'median':>9}{'p90':>9}"
                f"{'prompts':>8}{'per hour':>10}"]
        for rule, v in s["rules"].items():
            if v["prompts"] or v["moments"]:
                out.append(f"  {rule:<26}{v['prompts']:>8}{num(v['precision']):>10}{num(v['recall']):>8}"
                           f"{num(v['time_to_prompt_median_s']):>9}{num(v['time_to_prompt_p90_s']):>9}"
                           f"{v['on_calm_calls']:>8}{num(v['calm_prompts_per_hour']):>10}")
    if s["reviewed_flags"]:
        if out:
            out.append("")
        out += [f"reviewed flags (supervisors' outcomes): {s['reviewed_flags']}, "
                f"{s['reviewed_false_alarms']} false alarm(s)",
                f"  {'rule':<26}{'reviewed':>9}{'false alarms':>14}{'precision with reviews':>24}"]
        for rule, v in s["rules"].items():
            if v["reviewed"]:
                out.append(f"  {rule:<26}{v['reviewed']:>9}{v['reviewed_false_alarms']:>14}"
                           f"{num(v['precision_with_reviews']):>24}")
        for rule, n in s["reviewed_rules_not_in_pack"].items():
            out.append(f"  {rule:<26}{n:>9}  (not a rule of this pack: not counted)")
    if s["rated_prompts"]:
        if out:
            out.append("")
        out += [f"agents' feedback (Helpful / Not helpful on the card): {s['rated_prompts']} prompts rated, "
                f"{s['rated_not_helpful']} not helpful",
                f"  {'rule':<26}{'helpful':>9}{'not helpful':>13}{'precision with feedback':>25}"]
        for rule, v in s["rules"].items():
            if v["rated_helpful"] or v["rated_not_helpful"]:
                out.append(f"  {rule:<26}{v['rated_helpful']:>9}{v['rated_not_helpful']:>13}"
                           f"{num(v['precision_with_feedback']):>25}")
        for rule, n in s["rated_rules_not_in_pack"].items():
            out.append(f"  {rule:<26}{n:>9}  (not a rule of this pack: not counted)")
    if s["missed"]:
        out += ["", "missed:"]
        for m in s["missed"]:
            near = ", ".join(m["prompts_near"]) or "nothing near"
            out.append(f"  {m['call']} {m['kind']} at {m['at']:.1f} s ({near}): {m['words'][:70]}")
    return out


def kinds_count(calls: Sequence[LabelledCall]) -> Counter[str]:
    return Counter(m.kind for c in calls for m in c.moments)


def call_events(call: LabelledCall, pack_files: Sequence[Path], events_dir: Path | None,
                models: Models | None = None, model: str | None = None) -> list[PublicEvent]:
    """The call's events: from its recorded event log (`events_dir/<id>.jsonl`, as `replay --events`
    writes it) when there is one, else by replaying its audio through the whole pipeline (with
    partials, as a live call runs) on the speech model `model` (None: the default); a replay's
    events are saved there for next time, redacted as every event log is (and judged as saved, so
    a second run measures what the first did). With `model` named, a log recorded with another
    speech model is refused: its words are the other model's."""
    from agent_assist.redact import CallRedactor
    from agent_assist.sinks import EventList

    log = events_dir / f"{call.id}.jsonl" if events_dir is not None else None
    if log is not None and log.is_file():
        events = [event for _, event in read_events(log)]
        recorded = next((e.model for e in events if isinstance(e, CallStart)), None)
        if model is not None and recorded and _speech_model(recorded) != _speech_model(model):
            raise AgentAssistError(f"{log}: recorded with the speech model {recorded}, not {model}: "
                                   "give another --events-dir")
        return events
    if call.audio is None or not call.audio.is_file():
        raise AgentAssistError(f"{call.path}: its audio ({call.audio}) is missing and no event log was given")
    sink = EventList()
    options = ReplayOptions(call_id=call.id, site_packs=tuple(pack_files),
                            transcriber=TranscriberOptions(model=model))
    Replay(call.audio, [sink], options, models).run()
    redactor = CallRedactor()
    events = [redactor.event(e) for e in sink.events]
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")
    return events


def _speech_model(name: str) -> str:
    """A speech model's name as `call_start` records it: a model directory as its full path, and
    the bundled Whisper tiny.en as logs from before issue #23 called it too ("tiny.en (bundled)")."""
    if name == "tiny.en (bundled)":
        return WHISPER
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def evaluate(calls: Sequence[LabelledCall], pack: Pack, pack_files: Sequence[Path],
             events_dir: Path | None = None, progress: Any = None,
             reviewed: Sequence[ReviewedFlag] = (), rated: Sequence[RatedPrompt] = (),
             model: str | None = None) -> Report:
    """Every labelled call (`read_labels`) through `pack` (replayed on the speech model `model`, or
    its recorded events re-run), judged; with the flags supervisors reviewed (`reviewed_flags`) and
    the prompts agents rated (`rated_prompts`) as labels of their rules."""
    models: Models | None = None
    outcomes = []
    for call in calls:
        if progress is not None:
            progress(call.id)
        log = events_dir / f"{call.id}.jsonl" if events_dir is not None else None
        if models is None and not (log is not None and log.is_file()):
            models = Models.load(ReplayOptions(site_packs=tuple(pack_files),
                                               transcriber=TranscriberOptions(model=model)))
        events = call_events(call, pack_files, events_dir, models, model)
        outcomes.append(judge(call, rerun(events, pack), pack))
    return Report(outcomes, pack, list(reviewed), list(rated))

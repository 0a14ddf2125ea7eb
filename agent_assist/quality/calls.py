"""Replay recorded calls through the rules, for quality teams: a timeline, a diff, a summary.

A call is an audio file (run through the whole pipeline) or a line of a transcript file in the JSONL
format of Harper Valley (`call_id`, `turns` with `speaker`, `start`, `end`, `text`): exported
transcripts are scored from their words alone, as no voice comes with them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent_assist.call import Models
from agent_assist.errors import AgentAssistError
from agent_assist.events import CallEnd, CallStart, EndReason, Event, Prompt, PublicEvent, Speaker, Utterance
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.rules.engine import RulesEngine
from agent_assist.rules.packs import Pack
from agent_assist.scoring.scorer import Scorer
from agent_assist.sinks import EventList, format_clock

HANG_OVER = 0.5  # an utterance is final this long after its speech ends, as in the live pipeline
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}


@dataclass
class CallResult:
    call_id: str
    duration: float
    events: list[PublicEvent] = field(default_factory=list)

    @property
    def prompts(self) -> list[Prompt]:
        return [e for e in self.events if isinstance(e, Prompt)]


def transcript_calls(path: Path) -> Iterator[tuple[str, list[Event]]]:
    """Each line of a transcript JSONL file as the events the pipeline would have produced."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentAssistError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            call = json.loads(line)
            call_id = str(call["call_id"])
            turns = sorted(call["turns"], key=lambda t: float(t["end"]))
            events: list[Event] = [
                CallStart(
                    t=0.0,
                    call_id=call_id,
                    source=f"{path.name}:{number}",
                    channels={},
                    started_at="",
                    model="transcript",
                )
            ]
            for i, turn in enumerate(turns, start=1):
                speaker = (
                    Speaker(turn["speaker"]) if turn["speaker"] in ("customer", "agent") else Speaker.UNKNOWN
                )
                text = str(turn["text"]).strip()
                if not text:
                    continue
                start, end = float(turn["start"]), float(turn["end"])
                if not (math.isfinite(start) and math.isfinite(end)):
                    raise ValueError(f"turn {i}: its times must be numbers of seconds, not {start} to {end}")
                events.append(
                    Utterance(
                        t=end + HANG_OVER,
                        call_id=call_id,
                        utterance_id=f"u{i}",
                        speaker=speaker,
                        start=start,
                        end=end,
                        text=text,
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentAssistError(f"{path}:{number}: not a transcript call ({exc})") from None
        last = max((e.t for e in events), default=0.0)
        events.append(CallEnd(t=last + HANG_OVER, call_id=call_id, reason=EndReason.END_OF_AUDIO))
        yield call_id, events


def run_transcript(events: Sequence[Event], pack: Pack, scorer: Scorer) -> CallResult:
    engine = RulesEngine(pack)
    out: list[PublicEvent] = []
    for event in sorted(events, key=lambda e: e.t):
        for scored in scorer.process(event):
            out.extend(e for e in engine.process(scored) if isinstance(e, PublicEvent))
    start = next((e for e in out if isinstance(e, CallStart)), None)
    return CallResult(call_id=start.call_id if start else "", duration=out[-1].t if out else 0.0, events=out)


def run_audio(path: Path, pack_files: Sequence[Path], models: Models | None = None) -> CallResult:
    """An audio file through the whole pipeline (on `models`, when already loaded)."""
    sink = EventList()
    end = Replay(path, [sink], ReplayOptions(site_packs=tuple(pack_files), call_id=path.stem), models).run()
    return CallResult(call_id=end.call_id, duration=end.t, events=sink.events)


def calls(
    paths: Sequence[Path], pack: Pack, pack_files: Sequence[Path], scorer: Scorer
) -> Iterator[CallResult]:
    """Each call in `paths` (audio files, transcript files), through `pack`: the speech model loads
    with the first audio file and serves the rest."""
    models: Models | None = None
    for path in paths:
        if path.suffix.lower() in AUDIO_SUFFIXES:
            if models is None:
                models = Models.load(ReplayOptions(site_packs=tuple(pack_files)))
            yield run_audio(path, pack_files, models)
        else:
            for _, events in transcript_calls(path):
                yield run_transcript(events, pack, scorer)


def timeline(result: CallResult) -> list[str]:
    lines = [f"call {result.call_id} ({format_clock(result.duration)})"]
    for p in result.prompts:
        values = ", ".join(f"{k} {v}" for k, v in p.why.get("values", {}).items())
        said = p.why.get("text", "")
        lines.append(f"  [{format_clock(p.t)}] {p.rule} ({p.principle}): {p.text}")
        lines.append(f"             why: {values or 'phrase'}" + (f' — "{said}"' if said else ""))
    if not result.prompts:
        lines.append("  no prompts")
    return lines


def summary(results: Sequence[CallResult]) -> list[str]:
    hours = sum(r.duration for r in results) / 3600
    counts = Counter(p.rule for r in results for p in r.prompts)
    total = sum(counts.values())
    lines = [
        f"{len(results)} calls, {hours * 60:.1f} min: {total} prompts, "
        f"{total / hours if hours else 0:.1f} per call-hour"
    ]
    for rule, n in counts.most_common():
        calls_with = sum(1 for r in results if any(p.rule == rule for p in r.prompts))
        lines.append(
            f"  {rule:<28}{n:>4} ({n / hours if hours else 0:.1f} per call-hour, in {calls_with} calls)"
        )
    return lines


def compare(a: Sequence[CallResult], b: Sequence[CallResult]) -> list[str]:
    """What pack B would add (+) or remove (-) against pack A, call by call."""
    lines = []
    for ra, rb in zip(a, b, strict=True):
        fa = Counter((p.rule, p.why.get("utterance_id", "")) for p in ra.prompts)
        fb = Counter((p.rule, p.why.get("utterance_id", "")) for p in rb.prompts)
        added, removed = fb - fa, fa - fb
        if not added and not removed:
            continue
        lines.append(f"call {ra.call_id}:")
        for (rule, uid), _ in sorted(removed.items()):
            lines.append(f"  - {rule} at {uid or 'call end'}")
        for (rule, uid), _ in sorted(added.items()):
            lines.append(f"  + {rule} at {uid or 'call end'}")
    na, nb = sum(len(r.prompts) for r in a), sum(len(r.prompts) for r in b)
    lines.append(f"prompts: {na} with A, {nb} with B ({nb - na:+d})")
    return lines

"""Replay recorded calls through the rules, for quality teams: a timeline, a diff, a summary.

A call is one of three things:

* an **audio file**, run through the whole pipeline (transcribed, scored, then the rules);
* a line of a **transcript file** in the JSONL format of Harper Valley (`call_id`, `turns` with
  `speaker`, `start`, `end`, `text`): exported transcripts are scored from their words alone, as no
  voice comes with them;
* the calls of an **event log**, as `replay --events`, `run --events` and `rules replay --events`
  write it (JSONL, one event a line, any number of calls appended): nothing is transcribed or
  scored again. The rules run anew on the turns and partials exactly as they were scored on the
  call (words, voice and the call's trend, which the log keeps and the audio alone could give);
  the prompts, rule flags and retractions the log recorded are dropped and made again, and so are
  the overlay's `prompt_seen` and the agent's `feedback`, which were about those prompts. A call
  whose customer turns carry no scores (a log of a pipeline that did not score) is scored here from
  its words, as a transcript is. The words in a log are redacted, so a phrase rule that quotes a
  personal detail (a name, a number) cannot match them.

Every call becomes a `Recording` (its events without the rules' output) once, then runs through
each pack asked for (`run`): `--compare` hears, transcribes and scores an audio call once, not once
per pack.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist import inputs
from agent_assist.call import Models
from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Event,
    EventParseError,
    Feedback,
    Flag,
    Prompt,
    PromptSeen,
    PublicEvent,
    Retract,
    Speaker,
    Utterance,
    event_from_json,
)
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.rules.engine import RulesEngine
from agent_assist.rules.packs import Pack
from agent_assist.scoring.scorer import SCORED_SPEAKERS, Scorer
from agent_assist.sinks import EventList, format_clock
from agent_assist.text import excerpt, terminal_safe

HANG_OVER = 0.5  # an utterance is final this long after its speech ends, as in the live pipeline
#: Bounds on a transcript file: a line holds one call (a ten-hour call's transcript is about
#: 600 KB), a turn's text about 25 minutes of speech, an id or a speaker's name a few words.
MAX_LINE_BYTES = 4_000_000
MAX_TURN_CHARS = 20_000
MAX_ID_CHARS = 200
MAX_EVENT_LINE_BYTES = 4_000_000  # an event of an event log (an utterance of 25 minutes is 150 KB)
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
    """Each line of a transcript JSONL file as the events the pipeline would have produced.

    Lines end at `\\n` alone (a JSON string may hold U+2028 or NEL), and each is bounded
    (`MAX_LINE_BYTES`, `MAX_TURN_CHARS`, JSON nesting); a line that is not a call, or breaks a
    bound, stops the run with its file and line."""
    for number, line in inputs.lines(path, MAX_LINE_BYTES):
        if not line.strip():
            continue
        try:
            call_id, turns = _call(line)
        except (ValueError, KeyError, TypeError) as exc:
            raise AgentAssistError(f"{terminal_safe(path)}:{number}: not a transcript call "
                                   f"({terminal_safe(str(exc)[:300])})") from None
        events: list[Event] = [CallStart(t=0.0, call_id=call_id, source=f"{path.name}:{number}", channels={},
                                         started_at="", model="transcript")]
        for i, (speaker, start, end, text) in enumerate(sorted(turns, key=lambda t: t[2]), start=1):
            events.append(Utterance(t=end + HANG_OVER, call_id=call_id, utterance_id=f"u{i}", speaker=speaker,
                                    start=start, end=end, text=text))
        last = max((e.t for e in events), default=0.0)
        events.append(CallEnd(t=last + HANG_OVER, call_id=call_id, reason=EndReason.END_OF_AUDIO))
        yield call_id, events


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a number JSON has")


def _string(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {excerpt(value, 30)}")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value):,} characters long; at most {limit:,}")
    if not inputs.no_surrogates(value):
        raise ValueError(f"{what} holds a lone surrogate (a \\ud800-\\udfff escape), which is not text")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number of seconds, not {excerpt(value, 30)}")
    return float(value)


def _call(line: str) -> tuple[str, list[tuple[Speaker, float, float, str]]]:
    """One transcript line's call id and its turns with words, as (speaker, start, end, text)."""
    try:
        call = json.loads(line, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(call, dict):
        raise ValueError("a line must be a JSON object with call_id and turns")
    call_id = call["call_id"]
    if isinstance(call_id, int) and not isinstance(call_id, bool):
        call_id = str(call_id)
    call_id = _string(call_id, "call_id", MAX_ID_CHARS)
    if not isinstance(call["turns"], list):
        raise ValueError(f"turns must be a list, not {excerpt(call['turns'], 30)}")
    turns = []
    for i, turn in enumerate(call["turns"], start=1):
        if not isinstance(turn, dict):
            raise ValueError(f"turn {i} must be an object with speaker, start, end and text")
        said = _string(turn["speaker"], f"turn {i}'s speaker", MAX_ID_CHARS)
        speaker = Speaker(said) if said in ("customer", "agent") else Speaker.UNKNOWN
        text = _string(turn["text"], f"turn {i}'s text", MAX_TURN_CHARS).strip()
        start, end = _seconds(turn["start"], f"turn {i}'s start"), _seconds(turn["end"], f"turn {i}'s end")
        if text:
            turns.append((speaker, start, end, text))
    return call_id, turns


@dataclass(frozen=True)
class Recording:
    """A call as recorded, ready for any pack: its events in order, without what rules made of them
    (prompts, rule flags, retractions) or what the agent did with those prompts."""

    call_id: str
    events: tuple[Event, ...]
    source: str  # the file it came from (and the line, for a transcript)
    scored_here: bool = False  # its words were scored by this run (a transcript, a log without scores)
    partials: bool = False  # it has partial transcripts (audio and logs of calls replayed with them)


def _of_rules(event: Event) -> bool:
    """What a pack made of a call, or what the agent did with it: dropped before another pack runs."""
    return (isinstance(event, Prompt | Retract | Feedback | PromptSeen)
            or (isinstance(event, Flag) and event.raised_by == "rules"))


def rerun(events: Sequence[Event], pack: Pack) -> list[PublicEvent]:
    """A recorded call's events through `pack` again: the prompts, flags and retractions it recorded
    are dropped and the rules run anew on its scored turns and partials, as they would have on the
    call. Nothing is transcribed or scored again."""
    engine = RulesEngine(pack)
    out: list[PublicEvent] = []
    for event in events:
        if _of_rules(event):
            continue
        out.extend(e for e in engine.process(event) if isinstance(e, PublicEvent))
    return out


def run(recording: Recording, pack: Pack) -> CallResult:
    """One recorded call through `pack`."""
    out = rerun(recording.events, pack)
    return CallResult(call_id=recording.call_id, duration=out[-1].t if out else 0.0, events=out)


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


def read_events(path: Path) -> Iterator[tuple[int, PublicEvent]]:
    """Each event of an event log with its line number; a line that is not an event stops the read
    with file:line. Lines end at `\n` alone: the log is written with ensure_ascii=False, so a
    transcript's U+2028 or NEL sits raw inside a JSON string, where str.splitlines would split it."""
    for number, line in inputs.lines(path, MAX_EVENT_LINE_BYTES):
        if not line.strip():
            continue
        try:
            yield number, event_from_json(line)
        except EventParseError as exc:
            raise AgentAssistError(f"{terminal_safe(path)}:{number}: not an event of an event log "
                                   f"({terminal_safe(str(exc)[:300])})") from None


def event_log_calls(path: Path) -> Iterator[tuple[str, list[PublicEvent]]]:
    """The calls of an event log, each as its events, in the order they end: a log may hold many
    calls, one after another or (from a server) interleaved, and the same id again for a call
    replayed twice. A call cut off before its `call_end` (the program stopped) comes at the end."""
    open_calls: dict[str, list[PublicEvent]] = {}
    for _, event in read_events(path):
        open_calls.setdefault(event.call_id, []).append(event)
        if isinstance(event, CallEnd):
            yield event.call_id, open_calls.pop(event.call_id)
    yield from open_calls.items()


def is_event_log(path: Path) -> bool:
    """Whether a JSONL file is an event log (its first object has a `type`) rather than a
    transcript file (one call a line, with `turns`)."""
    for _, line in inputs.lines(path, MAX_LINE_BYTES):
        if line.strip():
            try:
                first = json.loads(line)
            except (ValueError, RecursionError):
                return False  # the transcript reader says what is wrong with it
            return isinstance(first, dict) and "type" in first and "turns" not in first
    return False


def _scored(events: Sequence[Event], scorer: Scorer) -> list[Event]:
    return [scored for event in events for scored in scorer.process(event)]


def _needs_scores(events: Sequence[Event]) -> bool:
    return any(isinstance(e, Utterance) and e.speaker in SCORED_SPEAKERS and e.scores is None for e in events)


def recordings(paths: Sequence[Path], scorer: Callable[[], Scorer], pack_files: Sequence[Path] = (),
               done: Callable[[str], None] | None = None) -> Iterator[Recording]:
    """Each call in `paths` (audio files, transcript files, event logs), recorded once.

    The speech model loads with the first audio file and serves the rest (the pipeline runs with
    `pack_files`, whose output is then set aside). `scorer()` gives the text scorer, asked for only
    when there are words to score (a transcript), so event logs run with no model at all. `done`
    is told each file's name once its calls have all been taken. Every path is checked to be a file
    before the first call runs (a FIFO or a device is refused, never read)."""
    for path in paths:
        inputs.check_regular(path)
    return _recordings(paths, scorer, pack_files, done)


def _recordings(paths: Sequence[Path], scorer: Callable[[], Scorer], pack_files: Sequence[Path],
                done: Callable[[str], None] | None) -> Iterator[Recording]:
    models: Models | None = None
    for path in paths:
        if path.suffix.lower() in AUDIO_SUFFIXES:
            if models is None:
                models = Models.load(ReplayOptions(site_packs=tuple(pack_files)))
            result = run_audio(path, pack_files, models)
            heard = tuple(e for e in result.events if not _of_rules(e))
            yield Recording(result.call_id, heard, str(path), partials=True)
        elif is_event_log(path):
            for call_id, logged in event_log_calls(path):
                kept: list[Event] = [e for e in logged if not _of_rules(e)]
                rescore = _needs_scores(kept)
                events = tuple(_scored(kept, scorer()) if rescore else kept)
                yield Recording(call_id, events, str(path), scored_here=rescore,
                                partials=any(e.type == "partial" for e in logged))
        else:
            for call_id, turns in transcript_calls(path):
                yield Recording(call_id, tuple(_scored(turns, scorer())), str(path), scored_here=True)
        if done is not None:
            done(path.name)


def calls(
    paths: Sequence[Path], pack: Pack, pack_files: Sequence[Path], scorer: Scorer
) -> Iterator[CallResult]:
    """Each call in `paths` (audio files, transcript files, event logs), through `pack`."""
    return (run(recording, pack) for recording in recordings(paths, lambda: scorer, pack_files))


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

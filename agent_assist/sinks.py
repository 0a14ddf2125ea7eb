"""Where events go: the JSONL event log and the live transcript in a terminal."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import TextIO

from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    CallEnd,
    CallStart,
    DeviceStatus,
    Dropped,
    Feedback,
    Flag,
    Listening,
    Partial,
    Prompt,
    PublicEvent,
    Utterance,
)
from agent_assist.redact import CallRedactor
from agent_assist.text import terminal_safe


class EventList:
    """A sink that keeps every event in memory (replays for quality teams, evaluations, tests)."""

    def __init__(self) -> None:
        self.events: list[PublicEvent] = []

    def emit(self, event: PublicEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    @property
    def utterances(self) -> list[Utterance]:
        return [e for e in self.events if isinstance(e, Utterance)]


NOTE_AT = 0.5  # a score worth a note in the transcript


def score_note(utterance: Utterance) -> str:
    """`  [distress 0.93]` after a line whose scores are high, or nothing."""
    s = utterance.scores
    if s is None:
        return ""
    signals = (("crisis", s.crisis), ("distress", s.distress), ("escalation", s.escalation))
    high = [f"{name} {value:.2f}" for name, value in signals if value >= NOTE_AT]
    return f"  [{', '.join(high)}]" if high else ""


def open_private(path: Path) -> TextIO:
    """`path` opened for appending, readable by its owner alone: an event log holds redacted
    transcripts, which are still about a person. A new file is created 0600 and an existing one is
    tightened to that (a pipe or a terminal is written as it is)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class JsonlEventLog:
    """Appends every event as one JSON object per line, flushed as it happens. `-` is stdout.

    Personal details in transcript text (and in an agent's note) are redacted first, with each
    call's context (`agent_assist.redact`); `redact=False` is for in-process tools that never write
    to disk."""

    def __init__(self, target: str, redact: bool = True) -> None:
        self.target = target
        self.redact = redact
        self._redactors: dict[str, CallRedactor] = {}
        if target == "-":
            self._file: TextIO = sys.stdout
            self._owned = False
        else:
            path = Path(target).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open_private(path)
            except OSError as exc:
                raise AgentAssistError(
                    f"cannot write events to {target}: {exc.strerror or exc}") from None
            self._owned = True

    def emit(self, event: PublicEvent) -> None:
        if self.redact:
            event = self._redacted(event)
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def _redacted(self, event: PublicEvent) -> PublicEvent:
        if isinstance(event, CallStart):
            self._redactors = {event.call_id: CallRedactor()}  # only the running call's context
            return event
        return self._redactors.setdefault(getattr(event, "call_id", ""), CallRedactor()).event(event)

    def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()


def format_clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes):02d}:{secs:04.1f}"


class ConsoleTranscript:
    """Prints the transcript as it happens: finals as lines; partials updated in place on a TTY."""

    def __init__(self, stream: TextIO | None = None, show_partials: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.show_partials = tty if show_partials is None else show_partials
        self._partial_shown = False

    def _clear_partial(self) -> None:
        if self._partial_shown:
            self.stream.write("\r\x1b[K")
            self._partial_shown = False

    def emit(self, event: PublicEvent) -> None:
        if isinstance(event, Partial) and self.show_partials:
            self._clear_partial()
            line = f"[{format_clock(event.start)}] {event.speaker:>8} … {clean(event.text)}"
            self.stream.write(line[:160])
            self._partial_shown = True
        elif isinstance(event, Utterance):
            self._clear_partial()
            self.stream.write(f"[{format_clock(event.start)}] {event.speaker:>8}: "
                              f"{clean(event.text)}{score_note(event)}\n")
        elif isinstance(event, Prompt):
            self._clear_partial()
            line = f" · {clean(event.support_line)}" if event.support_line else ""
            self.stream.write(f"{'':>20}» {clean(event.text)}  ({clean(event.principle)}){line}\n")
        elif isinstance(event, Flag):
            self._clear_partial()
            if event.raised_by == "agent":
                note = f": {clean(event.note)}" if event.note else ""
                self.stream.write(f"{'':>20}⚑ flagged by the agent{note}\n")
            else:
                self.stream.write(f"{'':>20}⚑ flag: {event.kind}, {event.severity}\n")
        elif isinstance(event, Feedback):
            self._clear_partial()
            self.stream.write(f"{'':>20}  agent: {clean(event.rule)} {event.rating.replace('_', ' ')}\n")
        elif isinstance(event, Listening):
            self._clear_partial()
            state = "paused: nothing is captured" if event.paused else "resumed"
            self.stream.write(f"[{format_clock(event.t)}] — listening {state} ({event.by}) —\n")
        elif isinstance(event, DeviceStatus):
            self._clear_partial()
            device, message = clean(event.device), clean(event.message)
            self.stream.write(f"[{format_clock(event.t)}] ⚠ {device}: {message}\n")
        elif isinstance(event, Dropped) and event.what == "audio":
            self._clear_partial()
            self.stream.write(f"[{format_clock(event.t)}] ⚠ the machine is behind: {event.seconds:.1f} s "
                              "of audio dropped\n")
        elif isinstance(event, CallStart):
            channels = ", ".join(f"{ch} = {who}" for ch, who in event.channels.items())
            self.stream.write(f"call {clean(event.call_id)} from {clean(event.source)} ({channels})\n")
        elif isinstance(event, CallEnd):
            self._clear_partial()
            note = f"; {event.partials_dropped} partials skipped" if event.partials_dropped else ""
            if event.audio_dropped_s:
                note += f"; {event.audio_dropped_s:.1f} s of audio dropped"
            if event.damaged_s:
                note += f"; {event.damaged_s:.2f} s of damaged samples heard as silence"
            self.stream.write(f"call ended at {format_clock(event.t)} ({event.reason}): "
                              f"{event.utterances} utterances{note}\n")
        self.stream.flush()

    def close(self) -> None:
        self._clear_partial()
        self.stream.flush()


def clean(text: str) -> str:
    """Text from a call, safe to print in a terminal: `text.terminal_safe` (no control character,
    escape sequence or bidi override acts on the terminal; a line break is a space)."""
    return terminal_safe(text)

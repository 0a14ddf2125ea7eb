"""Every event that crosses a stage boundary, as small frozen dataclasses.

Two kinds live here:

* **Public events** (`CallStart`, `Partial`, `Utterance`, `Prompt`, `Flag`, `CallEnd`, …) are
  what the JSONL event log, the overlay and later tools read. Each carries `type` and `t`
  (call-time seconds, counted from audio samples, never the wall clock). Their JSON form is a
  stable, versioned schema documented in `docs/events.md`; `to_json` / `event_from_json`
  round-trip them exactly (floats at full precision; tests/test_events.py holds it).
* **Internal events** (`AudioChunk`, `SpeechSegment`, …) carry audio between stages inside one
  process and are never written out.

`CallEnd` also doubles as the end-of-stream marker: every stage flushes what it holds when it sees it
and passes it on, so the end of a call needs no second code path.
"""

from __future__ import annotations

import json
import math
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

#: Version of the JSON event schema. Bump on any incompatible change; adding an optional field or
#: a new event type is compatible. 2: partials carry `scores`, rules may fire on them, and a prompt
#: the final transcript no longer supports is withdrawn by a `retract` event.
SCHEMA_VERSION = 2


class Speaker(StrEnum):
    """Who is talking. A mono recording has one speaker we cannot name."""

    CUSTOMER = "customer"
    AGENT = "agent"
    UNKNOWN = "unknown"


class EndReason(StrEnum):
    """Why a call ended."""

    END_OF_AUDIO = "end_of_audio"  # a recorded call ran out
    SILENCE = "silence"  # live: both parties were silent for the configured time
    ENDED = "ended"  # live: the agent ended the call (keyboard or overlay); served: the platform closed it
    INTERRUPTED = "interrupted"  # Ctrl-C or the program was asked to stop
    SOURCE_ERROR = "source_error"
    DISCONNECTED = "disconnected"  # served: the platform's connection went away mid-call


class FlagKind(StrEnum):
    """What a flag is about: the moment a rule saw, or the agent's own flag."""

    ESCALATION = "escalation"
    CRISIS = "crisis"
    DISTRESS = "distress"
    AGENT = "agent"  # the agent pressed the overlay's flag button


class Severity(StrEnum):
    """How soon a supervisor should look at a flag, least urgent first (the review sorts by it)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """1 (low) to 4 (critical)."""
        return list(Severity).index(self) + 1


class DeviceState(StrEnum):
    """What happened to a capture device."""

    LOST = "lost"  # unplugged or failing; capture retries with back-off
    BACK = "back"  # capturing again
    RESAMPLING = "resampling"  # opened at its own rate, converted to 16 kHz


class PromptState(StrEnum):
    """What the overlay did with a prompt (`prompt_seen`), so a review counts only what was seen."""

    SHOWN = "shown"  # on screen: a card, or a line of the "+N" tray the agent opened
    QUEUED = "queued"  # no room on arrival: waiting, unseen, behind the "+N" tray
    DISMISSED = "dismissed"  # the agent took it away (x on a card or a tray line, or Acknowledge)


class DropKind(StrEnum):
    """What was skipped to keep up with a live call."""

    PARTIAL = "partial"  # a transcript update skipped while the recogniser was busy
    AUDIO = "audio"  # input the machine could not take in time


# --------------------------------------------------------------------------------------------
# Internal events (audio inside the process)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A block of 16 kHz mono float32 audio from one party.

    `t` is the call time of the first sample; `samples` must not be mutated after construction.
    """

    t: float
    speaker: Speaker
    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / 16000.0


@dataclass(frozen=True, eq=False)
class SpeechSegment:
    """Speech found by the segmenter, handed to the transcriber.

    `final=False` asks for a partial transcript of the speech so far; such a request may be dropped
    when the transcriber falls behind (finals never are). `start`/`end` bound the speech itself;
    `audio` starts at `audio_start` (a little before `start`, so the first word is not clipped).
    `t` is the call time at which the segmenter decided to emit it.

    `early=True` (with `final=False`) carries a final's audio before the turn is known to have
    ended: the pause has lasted `tail_s`, so the audio a final would hold is complete, but not yet
    `hangover_s`. The transcriber decodes it at once and keeps the result; if the pause goes on to
    end the turn, the final (the same audio) is ready without a second decode. Not dropped when the
    transcriber is busy: the final behind it would wait either way. If speech goes on instead, the
    segmenter sets `superseded`, and the transcriber skips the decode or cuts it short.
    """

    t: float
    speaker: Speaker
    utterance_id: str
    start: float
    end: float
    audio_start: float
    audio: np.ndarray
    final: bool
    early: bool = False
    superseded: threading.Event | None = None

    @property
    def droppable(self) -> bool:
        return not (self.final or self.early)


@dataclass(frozen=True)
class AudioDropped:
    """Internal: `seconds` of a live party's audio were lost before the pipeline (a full queue,
    a device overrun). The pipeline counts it into `dropped` and `call_end`."""

    t: float
    seconds: float


# --------------------------------------------------------------------------------------------
# Public events (serialised to the event log)


@dataclass(frozen=True)
class Word:
    """One recognised word with its call-time span and the model's probability for it."""

    text: str
    start: float
    end: float
    p: float


@dataclass(frozen=True)
class VoiceFeatures:
    """Internal: acoustic features of a final segment's speech, ahead of its transcript."""

    t: float
    speaker: Speaker
    utterance_id: str
    features: np.ndarray
    speech_s: float


@dataclass(frozen=True)
class Scores:
    """How a customer utterance sounds and reads: calibrated probabilities in [0, 1].

    `distress` and `escalation` combine the words (`text`) and the voice (`acoustic`); `crisis` is
    from the words alone, read with the turn's context. `kind` is the crisis's most likely kind
    (`self-harm`, `violence` or `danger`; meaningful when `crisis` is high) and `kinds` the
    probability of each, given that it is a crisis. `trend` is the call so far: a smoothed level of
    each and how much it rose over the last few customer turns.
    """

    distress: float
    escalation: float
    crisis: float
    text: dict[str, float]
    acoustic: dict[str, float] | None
    baseline: bool
    trend: dict[str, float]
    kind: str = ""
    kinds: dict[str, float] | None = None


@dataclass(frozen=True)
class PublicEvent:
    """Base for events that are written to the event log; every one belongs to a call (`call_id`).

    `spoken` names the fields that carry words from the call or from a person (a transcript, what
    a prompt quotes, an agent's note, a file name): everything in them, at any depth, is redacted
    before the event is written anywhere (`agent_assist.redact.CallRedactor.event`). Every other
    text field holds words the product or a rule author wrote.
    """

    type: ClassVar[str] = ""
    spoken: ClassVar[tuple[str, ...]] = ()
    t: float
    call_id: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            out[f.name] = _to_jsonable(getattr(self, f.name))
        return out

    def to_json(self) -> str:
        """One line of JSON. NaN and infinity are not JSON: an event carrying one is refused here
        (ValueError) rather than written as a line no JSON reader accepts."""
        try:
            return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ValueError(f"{self.type} at {self.t}: a number that is not finite (NaN or infinity) "
                             "cannot be written") from None


@dataclass(frozen=True)
class CallStart(PublicEvent):
    """The call begins: emitted once models are loaded, at the instant call time 0 begins.

    `channels` maps each audio channel of the source to the party on it, for example
    `{"left": "customer", "right": "agent"}` or `{"mono": "unknown"}`.
    """

    type: ClassVar[str] = "call_start"
    spoken: ClassVar[tuple[str, ...]] = ("source",)
    source: str
    channels: dict[str, Speaker]
    started_at: str
    model: str
    schema: int = SCHEMA_VERSION
    version: str = ""
    # a call served to the contact-centre platform (`agent-assist serve`): its ids there (optional)
    conversation_id: str = ""
    participant_id: str = ""


@dataclass(frozen=True)
class Partial(PublicEvent):
    """An utterance still in progress; a later `partial` or `utterance` with the same id replaces it.

    A customer's partial carries `scores` of the words heard so far in the turn (from the words
    alone: the voice joins at the final), so rules that may act on partial evidence can answer a
    disclosure in the middle of a long turn."""

    type: ClassVar[str] = "partial"
    spoken: ClassVar[tuple[str, ...]] = ("text",)
    utterance_id: str
    speaker: Speaker
    start: float
    text: str
    scores: Scores | None = None


@dataclass(frozen=True)
class Utterance(PublicEvent):
    """A final transcript of one stretch of speech by one party."""

    type: ClassVar[str] = "utterance"
    spoken: ClassVar[tuple[str, ...]] = ("text", "words")
    utterance_id: str
    speaker: Speaker
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = field(default_factory=tuple)
    scores: Scores | None = None


@dataclass(frozen=True)
class Prompt(PublicEvent):
    """A prompt for the agent, and why it appeared.

    `signals` names what fired it; `why` holds the customer's words (`utterance_id`, `text`) and the
    values of those signals. `sticky` prompts (crisis) stay until the agent acknowledges them.
    """

    type: ClassVar[str] = "prompt"
    spoken: ClassVar[tuple[str, ...]] = ("why",)
    rule: str
    principle: str
    text: str
    example: str
    priority: int
    signals: tuple[str, ...]
    why: dict[str, Any]
    support_line: str = ""
    sticky: bool = False
    situation: str = ""  # a crisis prompt's situation, as its card's header names it ("family violence")


@dataclass(frozen=True)
class Flag(PublicEvent):
    """A moment for a supervisor to review after the shift.

    `raised_by` is "rules" (rule `rule` fired on `utterance_id`) or "agent" (the agent pressed the
    overlay's flag button; `note` is their optional one-line note, `utterance_id` may be empty and
    `rule` is).
    """

    type: ClassVar[str] = "flag"
    spoken: ClassVar[tuple[str, ...]] = ("note",)
    kind: FlagKind
    severity: Severity
    reason: str
    utterance_id: str
    raised_by: str = "rules"
    note: str = ""
    rule: str = ""


@dataclass(frozen=True)
class Retract(PublicEvent):
    """A prompt fired on a partial transcript is withdrawn: the turn's final transcript no longer
    supports it (the partial misheard). `rule` and `prompt_t` name the prompt, `utterance_id` the
    turn. Crisis prompts are never retracted: the agent acknowledges them."""

    type: ClassVar[str] = "retract"
    rule: str
    prompt_t: float
    utterance_id: str
    reason: str


#: What an agent can say about a prompt card.
RATINGS = ("helpful", "not_helpful", "acknowledged")


@dataclass(frozen=True)
class Feedback(PublicEvent):
    """The agent's word on a prompt: "helpful" / "not_helpful" (thumbs on the card), or
    "acknowledged" (a crisis card dismissed). `rule` and `prompt_t` name the prompt."""

    type: ClassVar[str] = "feedback"
    rule: str
    prompt_t: float
    rating: str

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}, not {self.rating!r}")


@dataclass(frozen=True)
class PromptSeen(PublicEvent):
    """The overlay's account of a prompt: `shown` when the agent could first read it, `queued` when
    it arrived with no room and waits behind the "+N" tray, `dismissed` when the agent took it away.
    `rule` and `prompt_t` name the prompt, as feedback's do. A prompt with no `shown` never was
    (no overlay was open, or it was still queued when it expired or the call moved on)."""

    type: ClassVar[str] = "prompt_seen"
    rule: str
    prompt_t: float
    state: PromptState


@dataclass(frozen=True)
class SupervisorNote(PublicEvent):
    """A short note from a supervisor to the agent on a call (`agent-assist floor`): the agent's
    overlay shows it as a card of its own ("Team leader: I'm listening in, take your time") that
    never takes focus. `text` is a person's words, redacted like every other; `author` is the
    supervisor's account, `agent` the agent it is for. `t` is the call time the floor had last seen
    in the call when the note was sent."""

    type: ClassVar[str] = "supervisor_note"
    spoken: ClassVar[tuple[str, ...]] = ("text",)
    text: str
    author: str
    agent: str


@dataclass(frozen=True)
class Listening(PublicEvent):
    """Listening was paused or resumed. While paused nothing is captured, transcribed or stored;
    speech that was under way when the pause began ends there."""

    type: ClassVar[str] = "listening"
    paused: bool
    by: str  # "keyboard", "overlay" or "api"


@dataclass(frozen=True)
class DeviceStatus(PublicEvent):
    """Something happened to a capture device (`state`, see DeviceState)."""

    type: ClassVar[str] = "device"
    device: str
    parties: tuple[Speaker, ...]
    state: DeviceState
    message: str


@dataclass(frozen=True)
class Dropped(PublicEvent):
    """Work skipped to keep up with the call, reported at most every few seconds.

    `what` is a partial transcript (finals never are skipped) or audio (`seconds` says how much).
    `count` is since the previous report, `total` for the call so far.
    """

    type: ClassVar[str] = "dropped"
    what: DropKind
    count: int
    total: int
    seconds: float = 0.0


@dataclass(frozen=True)
class CallEnd(PublicEvent):
    """The call is over; `t` is its length. Counts say what was produced and what was dropped."""

    type: ClassVar[str] = "call_end"
    reason: EndReason
    error: str | None = None
    utterances: int = 0
    partials: int = 0
    partials_dropped: int = 0
    audio_dropped_s: float = 0.0
    damaged_s: float = 0.0  # audio whose samples were not numbers (NaN, infinity), heard as silence


PUBLIC_EVENT_TYPES: dict[str, type[PublicEvent]] = {
    cls.type: cls
    for cls in (CallStart, Partial, Utterance, Prompt, Retract, Flag, Feedback, PromptSeen, SupervisorNote,
                Listening, DeviceStatus, Dropped, CallEnd)
}

Event = AudioChunk | SpeechSegment | VoiceFeatures | AudioDropped | PublicEvent


def _to_jsonable(value: Any) -> Any:
    """Floats are written as they are (Python's shortest exact form), never rounded: a log re-run
    through the rules (`rules evaluate`) must meet a threshold exactly as the call did. Times are
    counted in audio samples and nearly all are whole milliseconds, so they still read as such."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Word):
        return {"text": value.text, "start": value.start, "end": value.end, "p": value.p}
    if isinstance(value, Scores):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


class EventParseError(ValueError):
    """A line of an event log is not a valid event of this schema."""


def event_from_dict(data: dict[str, Any]) -> PublicEvent:
    """Rebuild a public event from its JSON form; unknown extra fields are ignored."""
    kind = data.get("type")
    cls = PUBLIC_EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventParseError(f"unknown event type {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = data[f.name]
    try:
        if "speaker" in kwargs:
            kwargs["speaker"] = Speaker(kwargs["speaker"])
        if cls is CallEnd and "reason" in kwargs:
            kwargs["reason"] = EndReason(kwargs["reason"])
        if cls is Flag and "kind" in kwargs:
            kwargs["kind"] = FlagKind(kwargs["kind"])
        if cls is Flag and "severity" in kwargs:
            kwargs["severity"] = Severity(kwargs["severity"])
        if cls is DeviceStatus and "state" in kwargs:
            kwargs["state"] = DeviceState(kwargs["state"])
        if cls is Dropped and "what" in kwargs:
            kwargs["what"] = DropKind(kwargs["what"])
        if cls is PromptSeen and "state" in kwargs:
            kwargs["state"] = PromptState(kwargs["state"])
        if "channels" in kwargs:
            kwargs["channels"] = {k: Speaker(v) for k, v in kwargs["channels"].items()}
        if "words" in kwargs:
            kwargs["words"] = tuple(Word(**w) for w in kwargs["words"])
        if "parties" in kwargs:
            kwargs["parties"] = tuple(Speaker(p) for p in kwargs["parties"])
        if "signals" in kwargs:
            kwargs["signals"] = tuple(kwargs["signals"])
        if kwargs.get("scores") is not None:
            kwargs["scores"] = Scores(**kwargs["scores"])
        if cls is Flag and "rule" not in kwargs and kwargs.get("raised_by", "rules") == "rules":
            # written before flags carried their rule: it was the start of `reason` ("rule-id: …")
            kwargs["rule"] = str(kwargs.get("reason", "")).split(":", 1)[0].strip()
        event = cls(**kwargs)
    except (TypeError, ValueError, AttributeError) as exc:
        raise EventParseError(f"bad {kind} event: {exc}") from exc
    check(event)
    return event


def _not_json(constant: str) -> Any:
    raise EventParseError(f"{constant} is not a number JSON has")


def event_from_json(line: str) -> PublicEvent:
    try:
        data = json.loads(line, parse_constant=_not_json)
    except RecursionError:
        raise EventParseError("not JSON this reader takes: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4300 digits
        raise EventParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventParseError("an event must be a JSON object")
    return event_from_dict(data)


# --------------------------------------------------------------------------------------------
# The schema's types, checked


#: The largest integer a field may hold: the store keeps counts and priorities in 32-bit columns.
MAX_INT = 2**31 - 1


def check(event: PublicEvent) -> None:
    """Raise EventParseError unless every field of `event` holds what its type says: a finite
    number where a number belongs (1e309 reads as infinity), an integer that fits the store's
    columns, text that is valid Unicode without NUL (a lone surrogate cannot be written as UTF-8;
    PostgreSQL refuses NUL), a value of the closed set where one is named. The dataclasses
    themselves check nothing, so a line such as `{"type": "flag", "t": "soon", ...}` would
    otherwise become an event that poisons whatever later reads it (the store, the report)."""
    problem = _checker(type(event))(event)
    if problem:
        raise EventParseError(f"bad {event.type} event: {problem}")


#: What is wrong with a value, or "" when nothing is.
_Check = Callable[[Any], str]
_CHECKS: dict[Any, _Check] = {}


def _checker(hint: Any) -> _Check:
    """The check of a field's type, built once per type from its annotation (the flag store runs
    it on every event it writes: tens of microseconds for a turn of fifty words)."""
    found = _CHECKS.get(hint)
    if found is None:
        found = _CHECKS[hint] = _build(hint)
    return found


def _build(hint: Any) -> _Check:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return lambda value: _json_mismatch(value, depth=0)
    if origin in (types.UnionType, typing.Union):
        inner = _checker(next(a for a in args if a is not type(None)))
        nullable = type(None) in args
        return lambda value: "" if value is None and nullable else inner(value)
    if hint in _SCALARS:
        return _SCALARS[hint]
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        known = hint._value2member_map_

        def closed_set(value: Any) -> str:
            if isinstance(value, str) and value in known:
                return ""
            return f"{_shown(value)} is not one of {', '.join(known)}"

        return closed_set
    if origin is tuple:
        item = _checker(args[0])

        def sequence(value: Any) -> str:
            if not isinstance(value, tuple | list):
                return f"{_shown(value)} is not a list"
            return next((p for p in map(item, value) if p), "")

        return sequence
    if origin is dict:
        key_check, item_check = _checker(args[0]), _checker(args[1])

        def mapping(value: Any) -> str:
            if not isinstance(value, dict):
                return f"{_shown(value)} is not an object"
            return next((p for k, v in value.items() for p in (key_check(k) or item_check(v),) if p), "")

        return mapping
    if isinstance(hint, type) and is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        checks = [(f.name, _checker(hints[f.name])) for f in fields(hint)]

        def record(value: Any) -> str:
            if not isinstance(value, hint):
                return f"{_shown(value)} is not a {hint.__name__}"
            for name, field_check in checks:
                problem = field_check(getattr(value, name))
                if problem:
                    return f"{name}: {problem}"
            return ""

        return record
    raise TypeError(f"no check for {hint!r}")  # a new field type: teach `_build` it


def _float_mismatch(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{_shown(value)} is not a number"
    return "" if abs(value) <= 2**53 else f"{_shown(value)} is out of range"  # exact as a REAL


def _int_mismatch(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{_shown(value)} is not an integer"
    return "" if abs(value) <= MAX_INT else f"{_shown(value)} is out of range"


def _bool_mismatch(value: Any) -> str:
    return "" if isinstance(value, bool) else f"{_shown(value)} is not true or false"


def _text_mismatch(value: Any) -> str:
    if not isinstance(value, str):
        return f"{_shown(value)} is not text"
    if "\x00" in value:
        return "text with a NUL character"
    if value.isascii():
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text that is not valid Unicode (a lone surrogate)"
    return ""


def _json_mismatch(value: Any, depth: int) -> str:
    """A free-form value (a prompt's `why`): JSON of finite numbers and valid text."""
    if depth > 64:
        return "nested too deep"
    if value is None or isinstance(value, bool | int):
        return ""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, str):
        return _text_mismatch(value)
    if isinstance(value, list | tuple):
        return next((p for p in (_json_mismatch(v, depth + 1) for v in value) if p), "")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_mismatch(key) or _json_mismatch(item, depth + 1)
            if problem:
                return problem
        return ""
    return f"{_shown(value)} is not JSON"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SCALARS: dict[Any, _Check] = {float: _float_mismatch, int: _int_mismatch, bool: _bool_mismatch,
                               str: _text_mismatch}

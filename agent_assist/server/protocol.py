"""The AudioHook protocol (version 2) for Monitor sessions, as a synchronous state machine.

The platform (the client) opens a WebSocket, sends `open` with the media it offers, and once the
server has answered `opened` streams binary audio frames among JSON control messages:

```
client                       server (this)
open  ───────────────────►   opened (media chosen: PCMU/L16, 8 kHz, stereo or mono)
<audio frames> ──────────►   (counted in samples: the call's clock)
ping  ───────────────────►   pong
paused / resumed ────────►   (a gap in call time: `resumed.discarded`)
discarded / update / error   (noted)
close ───────────────────►   closed
        ◄──────────────────  disconnect (a bad message, a refusal: reason error / unauthorized)
```

`Session` knows nothing of sockets or threads: the server hands it each text or binary message and
sends what it returns, so a test drives it with scripted messages. What the session means for the
call (open, audio, pause, the end) goes to a `CallHandler`.

Checked on every client message: version `2`, the session id, `seq` one more than the last,
`serverseq` not ahead of what was sent, and `position` equal to the audio received (plus any the
client said it discarded). A message that breaks the protocol gets the protocol's answer, a
`disconnect` with reason `error` and one line saying what was wrong, and ends that session only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from agent_assist.events import Speaker

VERSION = "2"
RATE = 8000  # the only rate AudioHook streams
MAX_TEXT = 65535  # a control message longer than this is refused (as the reference server does)
#: An audio frame holding more than this much audio is refused (the platform sends ~0.1-0.2 s).
MAX_FRAME_S = 2.0
#: How far a client's `position` may stray from the audio counted here (it writes seconds in decimal).
POSITION_TOLERANCE_S = 0.002

_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")
_CHANNEL_PARTY = {"external": Speaker.CUSTOMER, "internal": Speaker.AGENT}


class State(StrEnum):
    """Where a session is: before `open`, streaming, paused by the platform, or over."""

    PREPARING = "preparing"
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"  # the client closed it (closed was sent)
    FAILED = "failed"  # a disconnect was sent (an error, a refusal): only `close` is answered now


class CloseReason(StrEnum):
    """How a session ended, for its call."""

    CLOSED = "closed"  # the client's close
    REFUSED = "refused"  # disconnected at open (capacity, unauthorized, unsupported media)
    ERROR = "error"  # a protocol error (the message says which)
    VANISHED = "vanished"  # the connection dropped without a close


class ProtocolError(Exception):
    """A client message that breaks the protocol: its session ends with a `disconnect`."""


@dataclass(frozen=True)
class Media:
    """The audio format chosen at `open`: 8 kHz PCMU or L16, one or two channels."""

    format: str  # "PCMU" or "L16"
    channels: tuple[str, ...]  # "external" (the customer) and/or "internal" (the agent)
    rate: int = RATE

    @property
    def speakers(self) -> tuple[Speaker, ...]:
        """Who is on each channel: stereo names both parties; one channel is one unknown speaker
        (the issue's rule for mono, as for a mono file or device)."""
        if len(self.channels) == 1:
            return (Speaker.UNKNOWN,)
        return tuple(_CHANNEL_PARTY[c] for c in self.channels)

    @property
    def sample_bytes(self) -> int:
        return 1 if self.format == "PCMU" else 2

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel."""
        return self.sample_bytes * len(self.channels)

    def as_json(self) -> dict[str, Any]:
        return {"type": "audio", "format": self.format, "channels": list(self.channels), "rate": self.rate}


def choose_media(offered: Any) -> Media | None:
    """The first offer we can take, in the client's order of preference: PCMU or L16 at 8 kHz, with
    both parties on two channels (either order) or one channel. None when nothing fits."""
    if not isinstance(offered, list):
        return None
    for offer in offered:
        if not isinstance(offer, dict) or offer.get("type") != "audio" or offer.get("rate") != RATE:
            continue
        channels = offer.get("channels")
        if offer.get("format") not in ("PCMU", "L16") or not isinstance(channels, list):
            continue
        if not all(c in _CHANNEL_PARTY for c in channels) or len(set(channels)) != len(channels):
            continue
        if len(channels) in (1, 2):
            return Media(offer["format"], tuple(channels))
    return None


@dataclass(frozen=True)
class OpenRequest:
    """What the platform says about the call in its `open` message (and the session's headers)."""

    session_id: str
    organization_id: str
    conversation_id: str
    participant: Mapping[str, Any]
    media: Media
    language: str = ""
    custom_config: Mapping[str, Any] = field(default_factory=dict)

    def lookup(self, path: str) -> str | None:
        """The text at `path` in the open parameters, such as `participant.id` or `customConfig.agent`
        (how a site names where its agent is; see `server.settings`)."""
        node: Any = {"participant": dict(self.participant), "customConfig": dict(self.custom_config),
                     "conversationId": self.conversation_id, "organizationId": self.organization_id}
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, str) and node else None


class CallHandler(Protocol):
    """What a session means for its call; `Session` calls these on the server's event loop, so
    each must return at once (the call's work runs on threads of its own)."""

    def open(self, request: OpenRequest) -> str | None:
        """Accept the call (None) or refuse it with one line for the platform's log."""

    def audio(self, t: float, frame: bytes) -> None:
        """A frame of audio whose first sample is at call time `t` (seconds)."""

    def pause(self, t: float, paused: bool) -> None:
        """The platform paused (True) or resumed (False) the audio at call time `t`."""

    def end(self, reason: CloseReason, message: str) -> None:
        """The session is over (called once)."""


def parse_duration(value: Any) -> float:
    """`PT1.25S` as seconds (AudioHook writes every duration so)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ProtocolError(f"a duration must look like PT1.5S, not {str(value)[:40]!r}")
    return float(match.group(1))


def duration(seconds: float) -> str:
    return "PT" + (f"{seconds:.6f}".rstrip("0").rstrip(".") or "0") + "S"


class Session:
    """One AudioHook session: messages in, messages out, the call told what happened.

    `receive_text` / `receive_binary` return the server messages to send, in order. `over` says
    whether the server should close the connection once those are sent (after `closed`, or a
    `disconnect` whose close does not come).
    """

    def __init__(self, session_id: str, handler: CallHandler, organization_id: str = "") -> None:
        self.session_id = session_id
        self.organization_id = organization_id  # from the signed header: the open must agree
        self.handler = handler
        self.state = State.PREPARING
        self.media: Media | None = None
        self.seq = 0  # the last server message's
        self.clientseq = 0  # the last client message's
        self.samples = 0  # audio received, per channel
        self.gap_s = 0.0  # call time with no audio: pauses and what the client discarded
        self.language = ""
        self.client_errors: list[str] = []  # the client's own `error` messages
        self._ended = False

    # -- the clock ---------------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """Audio received, in seconds."""
        return self.samples / RATE

    @property
    def call_time(self) -> float:
        """The call's clock: the audio received and every gap in it."""
        return self.position + self.gap_s

    # -- from the client ---------------------------------------------------------------------------

    def receive_text(self, text: str) -> list[dict[str, Any]]:
        try:
            return self._text(text)
        except ProtocolError as exc:
            return self.fail(CloseReason.ERROR, str(exc))

    def receive_binary(self, data: bytes) -> list[dict[str, Any]]:
        try:
            self._binary(data)
        except ProtocolError as exc:
            return self.fail(CloseReason.ERROR, str(exc))
        return []

    def vanished(self) -> None:
        """The connection dropped: the call ends, without a word to send."""
        if self.state not in (State.CLOSED, State.FAILED):
            self._end(CloseReason.VANISHED, "the connection dropped mid-call")
        else:
            self._end(CloseReason.CLOSED, "")

    # -- from the server ---------------------------------------------------------------------------

    def fail(self, reason: CloseReason, info: str, *,
             disconnect_reason: str = "error") -> list[dict[str, Any]]:
        """End the session with a `disconnect` (an error, or a refusal); its close is then answered."""
        if self.state in (State.CLOSED, State.FAILED):
            return []
        self.state = State.FAILED
        self._end(reason, info)
        return [self._message("disconnect", {"reason": disconnect_reason, "info": info})]

    @property
    def over(self) -> bool:
        return self.state in (State.CLOSED, State.FAILED)

    # -- the work ----------------------------------------------------------------------------------

    def _message(self, kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        return {"version": VERSION, "type": kind, "seq": self.seq, "clientseq": self.clientseq,
                "id": self.session_id, "parameters": parameters}

    def _end(self, reason: CloseReason, message: str) -> None:
        if not self._ended:
            self._ended = True
            self.handler.end(reason, message)

    def _text(self, text: str) -> list[dict[str, Any]]:
        if len(text) > MAX_TEXT:
            raise ProtocolError(f"a text message of {len(text):,} characters (at most {MAX_TEXT:,})")
        try:
            message = json.loads(text)
        except ValueError:
            raise ProtocolError("a text message that is not JSON") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        kind, seq, parameters = message.get("type"), message.get("seq"), message.get("parameters")
        if message.get("version") != VERSION:
            version = str(message.get("version"))[:20]
            raise ProtocolError(f"protocol version {version!r} (this server speaks 2)")
        if not isinstance(kind, str) or not isinstance(parameters, dict):
            raise ProtocolError("a message needs a type and parameters")
        if self.state == State.FAILED:  # after a disconnect only the close matters, however numbered
            return self._on_close(parameters) if kind == "close" else []
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != self.clientseq + 1:
            raise ProtocolError(f"seq {str(seq)[:20]} out of order (expected {self.clientseq + 1})")
        self.clientseq = seq
        serverseq = message.get("serverseq")
        if not isinstance(serverseq, int) or isinstance(serverseq, bool) or not 0 <= serverseq <= self.seq:
            raise ProtocolError(f"serverseq {str(serverseq)[:20]} is not one the server sent "
                                f"(last {self.seq})")
        if message.get("id") != self.session_id:
            raise ProtocolError("the message's id is not this session's")
        position = parse_duration(message.get("position"))
        # a client may count audio it paused or discarded in its position (the reference client
        # does, and its clock runs on while paused), and a `resumed` or `discarded` message already
        # counts its own
        own = parse_duration(parameters.get("discarded", "PT0S")) if kind in ("resumed", "discarded") else 0.0
        low = self.position - POSITION_TOLERANCE_S
        high = self.position + self.gap_s + own + POSITION_TOLERANCE_S
        if self.state == State.PAUSED:
            high = math.inf
        if not low <= position <= high:
            raise ProtocolError(f"position {position:g} s, but {self.position:g} s of audio has arrived")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            raise ProtocolError(f"unknown message type {kind[:40]!r}")
        result: list[dict[str, Any]] = handler(parameters)
        return result

    def _on_open(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        if self.state != State.PREPARING:
            raise ProtocolError("a second open")
        media = choose_media(parameters.get("media"))
        if media is None:
            offered = json.dumps(parameters.get("media"))[:200]
            return self.fail(CloseReason.REFUSED, f"no supported media offered ({offered}); this server "
                             "takes PCMU or L16 at 8000 Hz, stereo (external, internal) or mono")
        participant = parameters.get("participant", {})
        custom = parameters.get("customConfig", {})
        org = parameters.get("organizationId", "")
        if self.organization_id and org != self.organization_id:
            return self.fail(CloseReason.REFUSED, "the open's organizationId is not the signed one",
                             disconnect_reason="unauthorized")
        request = OpenRequest(
            session_id=self.session_id, organization_id=str(org),
            conversation_id=str(parameters.get("conversationId", "")),
            participant=participant if isinstance(participant, dict) else {},
            media=media, language=str(parameters.get("language", "") or ""),
            custom_config=custom if isinstance(custom, dict) else {})
        refusal = self.handler.open(request)
        if refusal is not None:
            return self.fail(CloseReason.REFUSED, refusal)
        self.media = media
        self.language = request.language
        self.state = State.ACTIVE
        return [self._message("opened", {"media": [media.as_json()], "startPaused": False})]

    def _on_ping(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._message("pong", {})]

    def _on_update(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self._need_open("update")
        language = parameters.get("language")
        if isinstance(language, str):
            self.language = language
        return [self._message("updated", {})]

    def _on_paused(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self._need_open("paused")
        if self.state == State.ACTIVE:
            self.state = State.PAUSED
            self.handler.pause(self.call_time, True)
        return []

    def _on_resumed(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self._need_open("resumed")
        discarded = parse_duration(parameters.get("discarded", "PT0S"))
        if self.state == State.PAUSED:
            self.gap_s += discarded  # the paused stretch is call time with no audio
            self.state = State.ACTIVE
            self.handler.pause(self.call_time, False)
        return []

    def _on_discarded(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self._need_open("discarded")
        seconds = parse_duration(parameters.get("discarded"))
        parse_duration(parameters.get("start"))
        self.gap_s += seconds
        return []

    def _on_error(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self.client_errors.append(str(parameters.get("message", ""))[:200])
        return []

    def _on_close(self, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        failed = self.state == State.FAILED
        self.state = State.CLOSED
        if not failed:
            self._end(CloseReason.CLOSED, str(parameters.get("reason", "end")))
        return [self._message("closed", {})]

    def _need_open(self, kind: str) -> None:
        if self.state == State.PREPARING:
            raise ProtocolError(f"{kind} before the session was opened")

    def _binary(self, data: bytes) -> None:
        if self.state == State.FAILED:
            return  # audio still in flight after the disconnect
        if self.state == State.PREPARING or self.media is None:
            raise ProtocolError("audio before the session was opened")
        if self.state == State.CLOSED:
            raise ProtocolError("audio after close")
        if self.state == State.PAUSED:
            raise ProtocolError("audio while paused")
        media = self.media
        if len(data) % media.frame_bytes:
            raise ProtocolError(f"an audio frame of {len(data)} bytes is not whole samples of "
                                f"{len(media.channels)} channel(s) of {media.format}")
        samples = len(data) // media.frame_bytes
        if samples > MAX_FRAME_S * RATE:
            raise ProtocolError(f"an audio frame of {samples / RATE:g} s (at most {MAX_FRAME_S:g} s)")
        if samples == 0:
            return
        t = self.call_time
        self.samples += samples
        if not math.isfinite(t):  # never: kept so a clock error shows as a protocol error, not a crash
            raise ProtocolError("the call's clock overflowed")
        self.handler.audio(t, data)

"""A served call's audio as a pipeline source: frames from the event loop, decoded on the call's thread.

```
event loop: Session ─ frame bytes, t ─► bounded queue ─► pipeline's source thread: decode (PCMU/L16),
            (never waits: full = counted drop)            split the channels, 8 → 16 kHz, AudioChunks
```

The event loop only queues the bytes a frame carried and returns; the decoding and resampling run
on the pipeline's own source thread (`Pipeline._feed`), like a device's capture thread. The source
is `live`: the platform paces it, so the pipeline never blocks it, and when the call's models fall
behind, partials are shed first and then audio is dropped and counted, as for a live call.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from agent_assist.audio.resample import TARGET_RATE, StreamResampler
from agent_assist.errors import AgentAssistError
from agent_assist.events import AudioChunk, AudioDropped, EndReason, Listening, PublicEvent, Speaker
from agent_assist.server.protocol import RATE, Media

log = logging.getLogger(__name__)

#: Frames queued for the call's thread before new ones are dropped (at 0.1-0.2 s each: a minute or more).
MAX_QUEUED_FRAMES = 600


def _mulaw_table() -> np.ndarray:
    """G.711 μ-law byte → linear sample in [-1, 1) (ITU-T G.711, as FFmpeg's pcm_mulaw decodes)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    linear = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    return (linear / 32768.0).astype(np.float32)


_MULAW = _mulaw_table()


def decode(frame: bytes, media: Media) -> np.ndarray:
    """A frame's samples as planar float32, shape (channels, n). L16 is big-endian (network order)."""
    if media.format == "PCMU":
        samples = _MULAW[np.frombuffer(frame, dtype=np.uint8)]
    else:
        samples = np.frombuffer(frame, dtype=">i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, len(media.channels)).T


@dataclass(frozen=True)
class _Frame:
    t: float
    data: bytes


@dataclass(frozen=True)
class _Pause:
    t: float
    paused: bool
    by: str


@dataclass(frozen=True)
class _End:
    reason: EndReason
    error: str | None


class StreamSource:
    """The `AudioSource` of one served call (see the module docstring). The `put_*` and `end`
    methods are for the event loop and never block."""

    live = True
    damaged_s = 0.0  # μ-law and L16 carry only numbers

    def __init__(self, call_id: str, media: Media, description: str, conversation_id: str = "",
                 participant_id: str = "") -> None:
        self.call_id = call_id
        self.media = media
        self.conversation_id = conversation_id
        self.participant_id = participant_id
        self.channels: dict[str, Speaker] = dict(zip(media.channels, media.speakers, strict=True))
        self._description = description
        self.duration = 0.0
        self.end_reason = EndReason.END_OF_AUDIO
        self.error: str | None = None
        self.dropped_frames = 0
        self._queue: queue.Queue[_Frame | _Pause | _End] = queue.Queue(MAX_QUEUED_FRAMES)
        self._dropped_s = 0.0  # not yet reported to the pipeline (an `AudioDropped`)

    @property
    def description(self) -> str:
        return self._description

    # -- the event loop --------------------------------------------------------------------------

    def put_audio(self, t: float, frame: bytes) -> None:
        try:
            self._queue.put_nowait(_Frame(t, frame))
        except queue.Full:  # the call's thread is a minute behind: drop, count, and say so once
            if not self.dropped_frames:
                log.warning("call %s: its thread is behind; dropping audio (counted)", self.call_id)
            self.dropped_frames += 1
            self._dropped_s += len(frame) / self.media.frame_bytes / RATE

    def put_pause(self, t: float, paused: bool, by: str = "platform") -> None:
        try:
            self._queue.put_nowait(_Pause(t, paused, by))
        except queue.Full:
            log.warning("call %s: pause at %.1f s not recorded (the call's thread is behind)",
                        self.call_id, t)

    def end(self, reason: EndReason, error: str | None = None) -> None:
        """The call is over: what is queued is still processed. Never blocks (an end always gets in:
        the queue's bound is for frames only)."""
        self._queue.queue.append(_End(reason, error))  # bypasses the bound on purpose
        with self._queue.mutex:
            self._queue.not_empty.notify()

    # -- the pipeline's source thread ------------------------------------------------------------

    def blocks(self) -> Iterator[list[AudioChunk | AudioDropped | PublicEvent]]:
        resampler = StreamResampler(RATE, len(self.media.channels))
        next_t: float | None = None  # the 16 kHz clock of the next resampled sample
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                yield []  # lets the pipeline see a stop request
                continue
            out: list[AudioChunk | AudioDropped | PublicEvent] = []
            if self._dropped_s:
                out.append(AudioDropped(t=self.duration, seconds=self._dropped_s))
                self._dropped_s = 0.0
            if isinstance(item, _End):
                self.end_reason, self.error = item.reason, item.error
                if out:
                    yield out
                if item.error is not None:  # the pipeline ends the call as a source error, saying this
                    raise AgentAssistError(item.error)
                return
            if isinstance(item, _Pause):
                out.append(Listening(t=round(item.t, 3), call_id=self.call_id, paused=item.paused,
                                     by=item.by))
                next_t = None  # after a gap the next frame sets the clock again
                yield out
                continue
            audio = resampler.push(decode(item.data, self.media))
            if next_t is None or item.t > next_t + 0.05:  # the first frame, or one after a gap
                next_t = item.t
            if audio.shape[1]:
                out.extend(AudioChunk(t=next_t, speaker=speaker, samples=np.ascontiguousarray(audio[i]))
                           for i, speaker in enumerate(self.media.speakers))
                next_t += audio.shape[1] / TARGET_RATE
                self.duration = max(self.duration, next_t)
            if out:
                yield out

"""Live capture: devices → 16 kHz mono per party → one queue → calls.

```
PortAudio callback ──► bounded block queue ──► capture thread ──► shared queue ──► LiveCall.blocks()
 (copy, return)          (one per device)       (split/mix,        (all devices)     (call time, activity,
                                                 resample, clock)                      end of call)
```

* The PortAudio callback only copies the block into a bounded queue and returns: no model work, no
  lock held across calls. A full queue drops the block; the loss is counted and reported.
* Each device has a capture thread that turns blocks into `AudioChunk`s for its parties (one per
  channel of a stereo device, otherwise the channels mixed down), resampled to 16 kHz. Chunks carry
  *session* time from the device's sample count (`StreamClock`), anchored to when the callback saw the
  blocks arrive, so a capture thread that waits for the CPU does not move its party's clock; it is
  re-anchored after a gap (a pause, a reconnect) or when the device's clock drifts more than
  `MAX_DRIFT_S` from the wall clock.
* A device that fails or stops delivering audio for `stall_s` is reported `lost`, closed and
  reopened with back-off (0.5 s doubling to `retry_max_s`) until it comes back; the other devices
  carry on meanwhile.
* While paused, callbacks return without copying anything: nothing is captured.
* A call is the stretch between its start (the command starting, or speech after silence) and its
  end (both parties silent for `end_silence_s`, `end_call()`, or the pipeline being stopped).
  Silence is judged by a voice activity detector of its own, so music on hold is not speech.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agent_assist.audio.devices import Device, PulseWatch, open_input
from agent_assist.audio.resample import TARGET_RATE, StreamResampler
from agent_assist.errors import AudioSourceError
from agent_assist.events import (
    AudioChunk,
    AudioDropped,
    DeviceState,
    DeviceStatus,
    EndReason,
    Listening,
    PublicEvent,
    Speaker,
)
from agent_assist.vad import WINDOW, VadStream

log = logging.getLogger(__name__)

MAX_DRIFT_S = 0.5
DRIFT_WINDOW_S = 5.0  # a late block (a busy CPU, a burst after a stall) moves no clock within this
_JITTER_S = 0.02  # a tighter bound than this moves the anchor back at once
_BLOCK_QUEUE = 400  # device blocks (PortAudio picks ~10-40 ms each): seconds of slack
_SHARED_QUEUE = 1000
_STARTUP_S = 3.0
_WATCH_S = 0.25  # how often a PulseAudio stream's routing is checked


@dataclass(frozen=True)
class LiveOptions:
    end_silence_s: float = 60.0  # both parties silent this long ends the call
    max_calls: int | None = None  # stop after this many calls (None: until stopped)
    capture_rate: int = TARGET_RATE  # asked of each device; its own rate when it refuses
    latency_s: float = 0.1  # PortAudio's suggested input latency
    stall_s: float = 2.0  # no audio from a running device this long: it is lost
    retry_max_s: float = 10.0
    preroll_s: float = 1.0  # audio kept from before the speech that starts a call
    speech_threshold: float = 0.5  # voice activity probability that counts as speech


@dataclass(frozen=True)
class Input:
    """A device and who is heard on it: one party (channels mixed) or one party per channel."""

    device: Device
    parties: tuple[Speaker, ...]

    @property
    def stereo(self) -> bool:
        return len(self.parties) == 2


@dataclass(frozen=True)
class _Status:
    t: float  # session time
    device: str
    parties: tuple[Speaker, ...]
    state: DeviceState
    message: str


@dataclass(frozen=True)
class _Pause:
    t: float
    paused: bool
    by: str


_Item = list[AudioChunk] | AudioDropped | _Status | _Pause


class _Clock:
    """Session time: seconds since the session began, from the monotonic clock."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


class StreamClock:
    """A device stream's session time: its sample count, anchored to when its blocks arrived.

    The last sample of a block was captured no later than the callback saw it, so
    `arrival - frames_so_far / rate` is an upper bound on when the stream began; a block that waited
    (PortAudio's thread or ours short of CPU, the burst after a stall) only loosens the bound. The anchor
    follows the tightest bound: back at once when a bound is tighter by more than callback jitter (the
    first blocks were late, or the device runs fast), but forward only when every bound for
    `DRIFT_WINDOW_S` is `MAX_DRIFT_S` later (the device runs slow, or lost samples it did not report),
    so no burst of late blocks moves it. Block times advance by the samples delivered, so a party's
    chunks stay contiguous; the segmenter counts samples and heeds only forward jumps, and a session
    listens between calls, so the anchor has settled before the call whose times it gives.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.anchor: float | None = None
        self.frames = 0  # device frames since the anchor, delivered or lost
        self.out_s = 0.0  # seconds of 16 kHz audio delivered since the anchor
        self._late: deque[tuple[float, float]] = deque()  # (arrival, bound) later than the anchor allows

    def reset(self) -> None:
        """After a gap: the next block anchors the clock afresh."""
        self.anchor = None

    def lost(self, frames: int) -> None:
        """Frames the device or the queue dropped: time moves on by them."""
        self.frames += frames
        self.out_s += frames / self.rate

    def place(self, frames: int, seconds_out: float, arrival: float) -> float:
        """The session time of a block of `frames` device frames (`seconds_out` once resampled)."""
        self.frames += frames
        bound = arrival - self.frames / self.rate
        anchor = self.anchor
        if anchor is None or bound < anchor - _JITTER_S:
            anchor = self._move(bound)
        elif bound > anchor + MAX_DRIFT_S:
            self._late.append((arrival, bound))
            if arrival - self._late[0][0] >= DRIFT_WINDOW_S:
                anchor = self._move(min(b for _, b in self._late))
        else:
            self._late.clear()
        t = anchor + self.out_s
        self.out_s += seconds_out
        return t

    def _move(self, bound: float) -> float:
        if self.anchor is not None:
            log.debug("clock re-anchored by %+.2f s", bound - self.anchor)
        self.anchor = bound
        self._late.clear()
        return bound


class DeviceCapture:
    """One device's stream and capture thread (see the module docstring)."""

    def __init__(self, source: Input, clock: _Clock, out: queue.Queue[_Item], options: LiveOptions) -> None:
        self.input = source
        self.clock = clock
        self.out = out
        self.options = options
        self.paused = False
        self._blocks: queue.Queue[tuple[float, np.ndarray]] = queue.Queue(maxsize=_BLOCK_QUEUE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{source.parties[0]}", daemon=True)
        # written by the callback only / by the capture thread only
        self._overflowed_frames = 0
        self._overflow_seen = 0
        self._lost_s = 0.0
        self._rate = options.capture_rate
        self._resampler: StreamResampler | None = None
        self._clock = StreamClock(self._rate)
        self._gap = False  # set by set_paused(False): the capture thread re-anchors at the next block
        self.lost = False
        self.opened = threading.Event()  # set once the device first delivers (or fails for good)

    @property
    def label(self) -> str:
        return self.input.device.display

    # -- the PortAudio callback: copy and return ------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        if self.paused:
            return
        if status and status.input_overflow:
            self._overflowed_frames += frames  # PortAudio itself lost input before this block
        try:
            self._blocks.put_nowait((self.clock.now(), indata.copy()))  # when it arrived: see StreamClock
        except queue.Full:
            self._overflowed_frames += frames

    # -- control ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self._gap = True  # re-anchor to the wall clock after the gap

    # -- the capture thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._capture()
            except Exception as exc:  # never let one party go silent without a word
                log.exception("%s: capture failed", self.label)
                self._status(DeviceState.LOST, f"capture failed ({type(exc).__name__}: {exc}); retrying")
                self.lost = True
                self._stop.wait(1.0)
        self.opened.set()

    def _capture(self) -> None:
        """Open, pump, and reopen with back-off until stopped."""
        delay = 0.5
        first = True
        while not self._stop.is_set():
            try:
                stream, rate, channels = open_input(self.input.device, self.options.capture_rate,
                                                    2 if self.input.stereo else 1, self._callback,
                                                    latency=self.options.latency_s)
                try:
                    stream.start()
                except Exception as exc:  # PortAudio could open it but not start it
                    stream.close()
                    raise AudioSourceError(f"cannot start {self.label}: {exc}") from None
            except AudioSourceError as exc:
                if not self.lost:
                    self._status(DeviceState.LOST, f"{exc}; retrying")
                    self.lost = True
                self.opened.set()
                self._stop.wait(delay)
                delay = min(delay * 2, self.options.retry_max_s)
                continue
            if rate != self.options.capture_rate and rate != self._rate:
                self._status(DeviceState.RESAMPLING,
                             f"opened at its own rate, {rate} Hz; converting to 16 kHz")
            self._rate = rate
            if self.lost:
                self._status(DeviceState.BACK, "capturing again")
                self.lost = False
            elif first:
                log.info("%s: capturing at %d Hz x %d for %s", self.label, rate, channels,
                         "+".join(self.input.parties))
            first = False
            delay = 0.5
            self._resampler = StreamResampler(rate, len(self.input.parties)) if rate != TARGET_RATE else None
            self._clock = StreamClock(rate)
            watch = self._watch()
            try:
                failure = self._pump(stream, channels, watch)
            finally:
                if watch is not None:
                    watch.close()
                try:
                    stream.abort()
                    stream.close()
                except Exception:  # a vanished device may fail to close; it is gone either way
                    log.debug("%s: close failed", self.label, exc_info=True)
                self._drain()
            if failure and not self._stop.is_set():
                self._status(DeviceState.LOST, f"{failure}; retrying")
                self.lost = True

    def _watch(self) -> PulseWatch | None:
        if self.input.device.pulse is None:
            return None
        try:
            return PulseWatch(self.input.device.pulse)
        except Exception as exc:  # no pulsectl or no server connection: capture still works unwatched
            log.info("%s: cannot watch the stream's routing (%s)", self.label, exc)
            return None

    def _pump(self, stream: Any, channels: int, watch: PulseWatch | None) -> str | None:
        """Move blocks until the stream fails or stalls (returns why) or capture stops (None)."""
        last = time.monotonic() + _STARTUP_S  # a stream may take a moment to deliver its first block
        checked = time.monotonic()
        while not self._stop.is_set():
            if watch is not None and time.monotonic() - checked >= _WATCH_S:
                checked = time.monotonic()
                moved = watch.check()
                if moved:
                    return moved
            try:
                arrival, block = self._blocks.get(timeout=0.1)
            except queue.Empty:
                now = time.monotonic()
                if self.paused:
                    last = now
                elif not stream.active:
                    return "the device stopped"
                elif now - last > self.options.stall_s:
                    return f"no audio for {self.options.stall_s:g} s"
                continue
            last = time.monotonic()
            self.opened.set()
            if self.paused:
                continue
            self._deliver(block, channels, arrival)
        return None

    def _drain(self) -> None:
        while True:
            try:
                self._blocks.get_nowait()
            except queue.Empty:
                return

    def _deliver(self, block: np.ndarray, channels: int, arrival: float) -> None:
        if self.input.stereo:
            planar = block[:, :2].T
        else:
            planar = block.mean(axis=1, keepdims=True).T if channels > 1 else block.T
        audio = self._resampler.push(planar) if self._resampler is not None else planar
        seconds = audio.shape[1] / TARGET_RATE
        if self._gap:
            self._gap = False
            self._clock.reset()
        overflowed = self._overflowed_frames - self._overflow_seen
        if overflowed:
            self._overflow_seen += overflowed
            self._lost_s += overflowed / self._rate
            self._clock.lost(overflowed)
        t = self._clock.place(planar.shape[1], seconds, arrival)
        if audio.shape[1] == 0:
            return
        chunks = [AudioChunk(t=t, speaker=speaker, samples=np.ascontiguousarray(audio[i], np.float32))
                  for i, speaker in enumerate(self.input.parties)]
        try:
            if self._lost_s > 0:
                self.out.put_nowait(AudioDropped(t=t, seconds=self._lost_s))
                self._lost_s = 0.0
            self.out.put_nowait(chunks)
        except queue.Full:
            self._lost_s += seconds

    def _status(self, state: DeviceState, message: str) -> None:
        level = logging.INFO if state == DeviceState.BACK else logging.WARNING
        log.log(level, "%s (%s): %s", self.label, "+".join(self.input.parties), message)
        with contextlib.suppress(queue.Full):  # it was logged either way
            self.out.put_nowait(_Status(self.clock.now(), self.label, self.input.parties, state, message))


class _Activity:
    """Is anyone speaking? Silero per party, on the same audio the call gets."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._vads: dict[Speaker, VadStream] = {}
        self._pending: dict[Speaker, np.ndarray] = {}

    def speech(self, chunk: AudioChunk) -> bool:
        vad = self._vads.setdefault(chunk.speaker, VadStream())
        samples = np.concatenate([self._pending.get(chunk.speaker, np.zeros(0, np.float32)), chunk.samples])
        n = len(samples) // WINDOW
        self._pending[chunk.speaker] = samples[n * WINDOW :]
        if n == 0:
            return False
        return bool(np.any(vad(samples[: n * WINDOW].reshape(n, WINDOW)) >= self.threshold))


class LiveSource:
    """The devices of one `agent-assist run`, shared by the calls it hears."""

    def __init__(self, inputs: list[Input], options: LiveOptions | None = None) -> None:
        if not inputs:
            raise AudioSourceError("no capture device chosen")
        self.options = options or LiveOptions()
        self.inputs = inputs
        self.clock = _Clock()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=_SHARED_QUEUE)
        self.captures = [DeviceCapture(i, self.clock, self._queue, self.options) for i in inputs]
        self.channels: dict[str, Speaker] = {}
        for item in inputs:
            if item.stereo:
                self.channels[f"{item.device.display} (left)"] = item.parties[0]
                self.channels[f"{item.device.display} (right)"] = item.parties[1]
            else:
                self.channels[item.device.display] = item.parties[0]
        self.description = "live: " + "; ".join(
            f"{'+'.join(i.parties)} = {i.device.display}" for i in inputs)
        self._paused = False
        self._end = threading.Event()
        self._preroll: list[AudioChunk] = []

    # -- control (any thread: keyboard, overlay, tests) --------------------------------------------

    def start(self) -> None:
        for capture in self.captures:
            capture.start()
        for capture in self.captures:
            capture.opened.wait(timeout=5.0)

    def close(self) -> None:
        for capture in self.captures:
            capture.stop()
        for capture in self.captures:
            capture.join()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, by: str = "api") -> None:
        self._set_paused(True, by)

    def resume(self, by: str = "api") -> None:
        self._set_paused(False, by)

    def _set_paused(self, paused: bool, by: str) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        for capture in self.captures:
            capture.set_paused(paused)
        log.info("listening %s (%s)", "paused" if paused else "resumed", by)
        self._queue.put(_Pause(self.clock.now(), paused, by))  # blocks only if the queue is full

    def end_call(self) -> None:
        """End the current call now (the next one starts on speech)."""
        self._end.set()

    # -- calls -----------------------------------------------------------------------------------

    def wait_for_speech(self, stop: threading.Event) -> bool:
        """Between calls: listen (keeping `preroll_s` of audio) until someone speaks or `stop`."""
        activity = _Activity(self.options.speech_threshold)
        kept: deque[AudioChunk] = deque()
        self._end.clear()
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if not isinstance(item, list):
                if isinstance(item, _Pause):
                    kept.clear()
                continue  # statuses were logged when they happened; drops outside a call matter not
            for chunk in item:
                kept.append(chunk)
                while kept and kept[0].t < chunk.t - self.options.preroll_s:
                    kept.popleft()
                if not self._paused and activity.speech(chunk):
                    self._preroll = list(kept)
                    return True
        return False

    def call(self, call_id: str) -> LiveCall:
        start = min((c.t for c in self._preroll), default=self.clock.now())
        call = LiveCall(self, call_id, start, self._preroll)
        self._preroll = []
        self._end.clear()
        return call


class LiveCall:
    """One call's view of a `LiveSource`: an `AudioSource` for `Pipeline.run`."""

    live = True
    damaged_s = 0.0  # devices give numbers

    def __init__(self, source: LiveSource, call_id: str, start: float, preroll: list[AudioChunk]) -> None:
        self.source = source
        self.call_id = call_id
        self.start = start
        self.channels = dict(source.channels)
        self.description = source.description
        self.duration = 0.0
        self.end_reason = EndReason.END_OF_AUDIO
        self._preroll = preroll

    def blocks(self) -> Iterator[list[AudioChunk | AudioDropped | PublicEvent]]:
        source, options = self.source, self.source.options
        activity = _Activity(options.speech_threshold)
        last_speech = time.monotonic()
        pending: list[_Item] = [self._preroll] if self._preroll else []
        while True:
            if source._end.is_set():
                self.end_reason = EndReason.ENDED
                return
            if source.paused:
                last_speech = time.monotonic()  # a pause is not silence
            elif time.monotonic() - last_speech >= options.end_silence_s:
                self.end_reason = EndReason.SILENCE
                return
            try:
                item = pending.pop(0) if pending else source._queue.get(timeout=0.1)
            except queue.Empty:
                self.duration = max(self.duration, source.clock.now() - self.start)
                yield []  # lets the pipeline see a stop request
                continue
            out: list[AudioChunk | AudioDropped | PublicEvent] = []
            if isinstance(item, list):
                for chunk in item:
                    t = chunk.t - self.start
                    if t + chunk.duration <= 0:
                        continue
                    if activity.speech(chunk):
                        last_speech = time.monotonic()
                    out.append(replace(chunk, t=max(0.0, t)))
                    self.duration = max(self.duration, t + chunk.duration)
            elif isinstance(item, AudioDropped):
                out.append(replace(item, t=max(0.0, item.t - self.start)))
            elif isinstance(item, _Pause):
                out.append(Listening(t=self._t(item.t), call_id=self.call_id, paused=item.paused, by=item.by))
            else:
                out.append(DeviceStatus(t=self._t(item.t), call_id=self.call_id, device=item.device,
                                        parties=item.parties, state=item.state, message=item.message))
            yield out

    def _t(self, session_t: float) -> float:
        return round(max(0.0, session_t - self.start), 3)

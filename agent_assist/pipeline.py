"""Wiring: an audio source, a list of stages, a list of sinks, and the threads at the edges.

```
source thread ──► inbox ──► stage 0 ──► stage 1 ──► … ──► sinks
 (decode/pace,     (one      (segmenter:  (transcriber:
  or device)        queue)    VAD, inline) own worker when live)
```

* The source runs on its own thread and blocks on a bounded number of blocks in flight, so a fast
  file cannot run away from the models. A live source (`live = True`) is paced by its devices and
  never waits: when the pipeline thread is that far behind, the block is dropped, counted and
  reported. A source may also yield public events (pause, device status) among its blocks.
* Each stage is a class with `process(event) -> Iterable[Event]` that knows nothing of its
  neighbours. Stages run inline on the pipeline thread, except that when pacing is live a stage that
  holds a heavy model (`droppable_input = True`) runs on one dedicated worker thread: then a request
  it may skip (a partial) is dropped while it is still busy, counted and reported, and a final never
  is. Without live pacing everything runs in lock-step, so a replay gives the same events every time.
* Drops are reported as `dropped` events at most every `DROP_REPORT_S` of call time, and once more
  before `call_end`, with a log line each time: every drop is counted, none floods the log.
* `inject()` lets another thread (the overlay) add a public event, such as the agent's flag or
  feedback, to the stream: it goes through the stages in order with everything else, and one that
  arrives as the call ends is still delivered, after `call_end`.
* `CallStart` enters first and `CallEnd` last; `CallEnd` makes every stage flush, so when it reaches
  the sinks the call is completely processed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from agent_assist import __version__
from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    AudioChunk,
    AudioDropped,
    CallEnd,
    CallStart,
    DropKind,
    Dropped,
    EndReason,
    Event,
    Partial,
    PublicEvent,
    Speaker,
    SpeechSegment,
    Utterance,
)

log = logging.getLogger(__name__)


class Stage(Protocol):
    """A step of a call: events in, events out, knowing nothing of its neighbours.

    `droppable_input`: the stage holds a heavy model, so a live call runs it on its own worker and
    may skip a request it can spare (a partial) while it is busy."""

    droppable_input: bool

    def process(self, event: Event) -> Iterable[Event]: ...


class Sink(Protocol):
    def emit(self, event: PublicEvent) -> None: ...

    def close(self) -> None: ...


class AudioSource(Protocol):
    """Anything that yields blocks of call audio: a file, memory, or live devices.

    `live`: paced by its devices, so never paced or blocked here. `end_reason` is read once
    `blocks()` returns normally.
    """

    channels: dict[str, Speaker]
    duration: float
    live: bool
    end_reason: EndReason
    damaged_s: float  # call time whose samples were not numbers, heard as silence

    @property
    def description(self) -> str: ...

    def blocks(self) -> Iterator[Sequence[AudioChunk | AudioDropped | PublicEvent]]: ...


#: Drops are reported at most this often (call-time seconds), and once more at the end of the call.
DROP_REPORT_S = 5.0


@dataclass
class CallStats:
    utterances: int = 0
    partials: int = 0
    partials_dropped: int = 0
    audio_dropped: int = 0  # blocks
    audio_dropped_s: float = 0.0


@dataclass
class _DropReport:
    reported: int = 0
    reported_s: float = 0.0
    last_t: float = float("-inf")


@dataclass(frozen=True)
class _Result:
    stage: int
    future: Future[list[Event]]


_SOURCE_DONE = object()


class KeepOpen:
    """A sink shared by several calls (a live session's, or a call with the overlay still open
    after it): a call's end must not close it. The owner closes `sink` itself."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def emit(self, event: PublicEvent) -> None:
        self.sink.emit(event)

    def close(self) -> None:
        pass


class AgentDesk:
    """Where the agent's own events (a flag, feedback on a prompt) enter the stream, from any thread,
    and which call's pipeline is running.

    While a call runs they join its pipeline (`Pipeline.inject`); between calls, or after the last,
    they go straight to the shared sinks. `sinks` are those sinks kept open (`KeepOpen`): give them
    to each call's pipeline, and close the originals after the desk is done with.
    """

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks: list[Sink] = [KeepOpen(s) for s in sinks]
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None

    def attach(self, pipeline: Pipeline | None) -> None:
        with self._lock:
            self._pipeline = pipeline

    @property
    def pipeline(self) -> Pipeline | None:
        """The running call's pipeline, if any."""
        with self._lock:
            return self._pipeline

    def submit(self, event: PublicEvent) -> None:
        with self._lock:
            if self._pipeline is not None and self._pipeline.inject(event):
                return
            for sink in self.sinks:
                sink.emit(event)


@dataclass(frozen=True)
class _Injected:
    event: PublicEvent


class Pipeline:
    """Runs one call from a source through `stages` into `sinks`.

    `realtime=True` paces a file source to the wall clock (as if live) and runs model stages on
    their own worker threads; `realtime=False` runs as fast as the machine allows, in lock-step.
    """

    def __init__(self, stages: Sequence[Stage], sinks: Sequence[Sink], *, realtime: bool = False,
                 model_label: str = "", max_blocks_in_flight: int = 20) -> None:
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.realtime = realtime
        self.model_label = model_label
        self.stats = CallStats()
        self._inbox: queue.Queue[object] = queue.Queue()
        self._room = threading.BoundedSemaphore(max_blocks_in_flight)
        self._stop = threading.Event()
        self._workers: dict[int, ThreadPoolExecutor] = {}
        self._in_flight: dict[int, int] = {}
        self._done = False
        self._end: CallEnd | None = None
        self._call_id = ""
        self._live = False
        self._reports = {"partial": _DropReport(), "audio": _DropReport()}
        self._inject_lock = threading.Lock()
        self._closed = False

    def inject(self, event: PublicEvent) -> bool:
        """Add `event` to the stream from any thread; False once the call's sinks are closed."""
        with self._inject_lock:
            if self._closed:
                return False
            self._inbox.put(_Injected(event))
            return True

    # -- control -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the source to end the call (Ctrl-C): what was heard is still processed and flushed."""
        self._stop.set()

    # -- running -------------------------------------------------------------------------------

    def run(self, source: AudioSource, call_id: str) -> CallEnd:
        self._call_id = call_id
        self._live = source.live
        if self.realtime or self._live:
            for index, stage in enumerate(self.stages):
                if stage.droppable_input:
                    self._workers[index] = ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix=f"{type(stage).__name__.lower()}-worker")
                    self._in_flight[index] = 0
        start = CallStart(
            t=0.0, call_id=call_id, source=source.description, channels=dict(source.channels),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"), model=self.model_label,
            version=__version__,
            # a served call's ids on the platform (`server.source.StreamSource`); none elsewhere
            conversation_id=getattr(source, "conversation_id", ""),
            participant_id=getattr(source, "participant_id", ""),
        )
        feeder = threading.Thread(target=self._feed, args=(source, call_id), name="audio-source",
                                  daemon=True)
        try:
            self._advance(0, start)
            feeder.start()
            while not self._done:
                item = self._inbox.get()
                if isinstance(item, _Result):
                    self._in_flight[item.stage] -= 1
                    for event in item.future.result():  # a worker's exception is raised here
                        self._advance(item.stage + 1, event)
                elif isinstance(item, AudioChunk):
                    self._advance(0, item)
                    self._room.release()
                    self._maybe_report("audio", item.t)
                elif isinstance(item, CallEnd | PublicEvent):
                    self._advance(0, item)
                elif isinstance(item, _Injected):
                    self._advance(0, item.event)
        finally:
            self._stop.set()
            for worker in self._workers.values():
                worker.shutdown(wait=True, cancel_futures=True)
            with self._inject_lock:
                self._closed = True
            while True:  # the agent's words that arrived with the end are not lost
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Injected):
                    for sink in self.sinks:
                        sink.emit(item.event)
            for sink in self.sinks:
                sink.close()
        assert self._end is not None
        return self._end

    def _feed(self, source: AudioSource, call_id: str) -> None:
        """Source thread: decode (and pace) audio into the inbox, then send the call's end."""
        reason, error = EndReason.END_OF_AUDIO, None
        began = time.monotonic()
        pace = self.realtime and not self._live
        try:
            for chunks in source.blocks():
                if self._stop.is_set():
                    reason = EndReason.INTERRUPTED
                    break
                if pace and chunks and isinstance(chunks[0], AudioChunk):
                    due = began + chunks[0].t + chunks[0].duration
                    # an interruptible wait for the block's real time, not a polling loop
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        reason = EndReason.INTERRUPTED
                        break
                for chunk in chunks:
                    if isinstance(chunk, AudioDropped):  # lost before it reached us
                        self.stats.audio_dropped += 1
                        self.stats.audio_dropped_s += chunk.seconds
                    elif not isinstance(chunk, AudioChunk):
                        self._inbox.put(chunk)
                    elif not self._live:
                        self._room.acquire()
                        self._inbox.put(chunk)
                    elif self._room.acquire(blocking=False):
                        self._inbox.put(chunk)
                    else:  # live and this far behind: drop rather than fall further behind
                        self.stats.audio_dropped += 1  # only this thread writes these two
                        self.stats.audio_dropped_s += chunk.duration
            else:
                reason = source.end_reason
        except AgentAssistError as exc:
            reason, error = EndReason.SOURCE_ERROR, str(exc)
        except Exception as exc:  # never leave the pipeline waiting for an end that won't come
            log.exception("audio source failed")
            reason, error = EndReason.SOURCE_ERROR, f"audio source failed: {exc}"
        self._inbox.put(CallEnd(t=round(source.duration, 3), call_id=call_id, reason=reason,
                                error=error, damaged_s=round(source.damaged_s, 3)))

    def _advance(self, index: int, event: Event) -> None:
        """Carry `event` through stages from `index` on, handing off to a worker where there is one."""
        events: list[Event] = [event]
        while index < len(self.stages):
            if index in self._workers:
                for item in events:
                    self._submit(index, item)
                return
            stage = self.stages[index]
            events = [out for item in events for out in stage.process(item)]
            index += 1
        for item in events:
            self._emit(item)

    def _submit(self, index: int, event: Event) -> None:
        if isinstance(event, SpeechSegment) and event.droppable and self._in_flight[index] > 0:
            self.stats.partials_dropped += 1
            self._maybe_report("partial", event.t)
            return
        stage = self.stages[index]
        self._in_flight[index] += 1
        future = self._workers[index].submit(lambda: list(stage.process(event)))
        future.add_done_callback(lambda f: self._inbox.put(_Result(index, f)))

    def _emit(self, event: Event) -> None:
        if not isinstance(event, PublicEvent):
            log.warning("internal event %s reached the sinks; ignored", type(event).__name__)
            return
        if isinstance(event, Utterance):
            self.stats.utterances += 1
        elif isinstance(event, Partial):
            self.stats.partials += 1
        elif isinstance(event, CallEnd):
            for what in self._reports:
                self._maybe_report(what, event.t, final=True)
            event = replace(event, utterances=self.stats.utterances,
                            partials=self.stats.partials,
                            partials_dropped=self.stats.partials_dropped,
                            audio_dropped_s=round(self.stats.audio_dropped_s, 3))
            self._end = event
            self._done = True
        for sink in self.sinks:
            sink.emit(event)

    def _maybe_report(self, what: str, t: float, final: bool = False) -> None:
        """Emit a `dropped` event (and a log line) for drops not yet reported, at most every
        `DROP_REPORT_S` of call time; `final` reports whatever is left."""
        report = self._reports[what]
        if what == "partial":
            total, seconds = self.stats.partials_dropped, 0.0
        else:
            total, seconds = self.stats.audio_dropped, self.stats.audio_dropped_s
        count = total - report.reported
        if count <= 0 or (not final and t - report.last_t < DROP_REPORT_S):
            return
        new_s = seconds - report.reported_s
        report.reported, report.reported_s, report.last_t = total, seconds, t
        if what == "partial":
            log.info("transcription is behind: skipped %d partial transcript(s) (%d this call); "
                        "finals are kept", count, total)
        else:
            log.warning("the machine is behind: dropped %.1f s of audio (%d block(s); %d this call)",
                        new_s, count, total)
        self._emit(Dropped(t=t, call_id=self._call_id, what=DropKind(what), count=count, total=total,
                           seconds=round(new_s, 3)))

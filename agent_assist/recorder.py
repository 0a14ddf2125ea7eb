"""The recorder: the one place a call's events are written, on a thread of its own.

```
pipeline thread ──emit──► bounded queue ──► writer thread: redact once ──► event log (JSONL)
Qt thread (a flag) ─┘      (never waits                                ──► flag store (commit)
                            on a disk)                                 ──► flags to the overlay
```

Sinks used to write inline on the pipeline's thread, the flag store first, so a store locked by
another process (a supervisor's report, a backup) held every later event, and the prompts with
them, for the store's whole timeout: 5 s an event. Now `emit` only puts the event on a queue. One
writer thread takes them in order, redacts each once with its call's context (`CallRedactor`), and
writes it to the event log and then the store; a store that cannot be written keeps the events in
memory and tries again (see `store.FlagStoreSink`), and whatever it still holds at the end is saved to
a file for `review import`, so nothing is lost either way.

Commit before show: a flag tells the agent "your supervisor has this", so it must not show before
the store has it. The overlay is therefore two sinks in one: `after_commit(overlay)` passes it
every event at once (prompts are never delayed), except flags, which the writer hands it once the
store has taken them (written, or kept to be written when the store is back).

The queue is bounded (`MAX_QUEUED`): if the writer is that far behind (a disk that has stopped
answering for hours), `emit` waits for room rather than drop what was said, and says so once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

from agent_assist.events import CallEnd, CallStart, Flag, PublicEvent
from agent_assist.pipeline import Sink
from agent_assist.redact import CallRedactor

log = logging.getLogger(__name__)

#: Events the writer may be behind before `emit` waits for it (about a day of a busy call's events).
MAX_QUEUED = 100_000


#: Where the recorder writes: a sink given events already redacted, on the writer thread only.
Writer = Sink


class Recorder:
    """A sink that writes `writers` (the event log, the flag store) off the caller's thread.

    `writers` get every event, redacted, in order, from one thread; they must not redact again.
    `close()` waits for the queue to drain, then closes them.
    """

    def __init__(self, writers: Sequence[Writer], max_queued: int = MAX_QUEUED) -> None:
        self.writers = list(writers)
        self._queue: queue.Queue[PublicEvent | _Marker | None] = queue.Queue(max_queued)
        self._redactors: dict[str, CallRedactor] = {}
        self._shown_after: list[Sink] = []  # sinks that get flags once they are written
        self._warned_full = False
        self._closed = False
        self._lock = threading.Lock()
        self.failures = 0  # writer errors (logged; the other writers and later events go on)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    # -- any thread -------------------------------------------------------------------------------

    def emit(self, event: PublicEvent) -> None:
        """Queue `event` to be written; returns at once unless the writer is `MAX_QUEUED` behind."""
        with self._lock:
            if self._closed:
                log.warning("recorder closed: %s at %.1f s not written", event.type, event.t)
                return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            if not self._warned_full:
                log.warning("the event log and flag store are %d events behind: waiting for the disk",
                            self._queue.qsize())
                self._warned_full = True
            self._queue.put(event)

    def after_commit(self, sink: Sink) -> Sink:
        """`sink` (the overlay) as a sink that gets every event at once, except flags, which come
        from the writer once the store has them."""
        self._shown_after.append(sink)
        return _FlagsAfterCommit(sink)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; False if `timeout` passed first."""
        done = threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._queue.put(_Marker(done))
        return done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Write everything queued, then close the writers (a store still unwritable saves what it
        holds to a file). Later events are refused with a log line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join()
        for writer in self.writers:
            try:
                writer.close()
            except Exception:
                self.failures += 1
                log.exception("closing %s failed", type(writer).__name__)

    @property
    def behind(self) -> int:
        """Events queued and not yet written."""
        return self._queue.qsize()

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Marker):
                item.done.set()
                continue
            event = self._redacted(item)
            for writer in self.writers:
                try:
                    writer.emit(event)
                except Exception:  # one writer's failure must not stop the others or later events
                    self.failures += 1
                    log.exception("%s could not write %s at %.1f s", type(writer).__name__,
                                  event.type, event.t)
            if isinstance(item, Flag):  # written (or kept for the store's return): show it now
                for sink in self._shown_after:
                    sink.emit(item)

    def _redacted(self, event: PublicEvent) -> PublicEvent:
        """`event` redacted with its call's context (the call's earlier turns), kept per call so
        that calls recorded at the same time never share it."""
        call_id = event.call_id
        if isinstance(event, CallStart):
            self._redactors[call_id] = CallRedactor()
            return event
        redactor = self._redactors.get(call_id)
        if redactor is None:
            redactor = self._redactors[call_id] = CallRedactor()
            while len(self._redactors) > 64:  # late events of long-gone calls
                del self._redactors[next(iter(self._redactors))]
        redacted = redactor.event(event)
        if isinstance(event, CallEnd):
            self._redactors.pop(call_id, None)
        return redacted


class _Marker:
    def __init__(self, done: threading.Event) -> None:
        self.done = done


class _FlagsAfterCommit:
    """A sink that passes everything but flags (the recorder passes those once written)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def emit(self, event: PublicEvent) -> None:
        if not isinstance(event, Flag):
            self.sink.emit(event)

    def close(self) -> None:
        self.sink.close()

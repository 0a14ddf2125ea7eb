"""Each AudioHook session as a call: built through the composition root, run on a thread of its own.

```
Session (event loop) ──► ServedCall ──► StreamSource ──► Pipeline (call thread: the same stages as
                                                          replay and run, on the shared Models)
                                                              └─► Recorder: redact once ─► event log
                                                                                       ─► flag store
                                                                                       ─► agent's feed
```

`CallServer` holds what calls share: the models (`Models.load` once), the settings, the store, the
feed, and the count of calls running; at `max_calls` a new session is refused with the protocol's
disconnect and counted. Nothing a call needs lives only in this process's memory beyond the call
itself: the store (PostgreSQL for a floor) has every flag, and another instance can take the next call.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent_assist.bus import Bus, BusWriter
from agent_assist.call import CallOptions, Models, call_stages
from agent_assist.events import CallEnd, EndReason, PublicEvent
from agent_assist.pipeline import Pipeline, Sink
from agent_assist.recorder import Recorder, Writer
from agent_assist.server.feed import EventFeed
from agent_assist.server.protocol import CloseReason, OpenRequest
from agent_assist.server.settings import Assignment, ServeSettings
from agent_assist.server.source import StreamSource
from agent_assist.sinks import JsonlEventLog
from agent_assist.store import FlagStoreSink, Store, StoreOptions

log = logging.getLogger(__name__)

#: Calls remembered as this instance's, so their events coming back over the bus are not doubled.
HOSTED_KEPT = 10_000

_END_REASONS = {
    CloseReason.CLOSED: EndReason.ENDED,
    CloseReason.REFUSED: EndReason.ENDED,
    CloseReason.ERROR: EndReason.SOURCE_ERROR,
    CloseReason.VANISHED: EndReason.DISCONNECTED,
}


class FeedWriter:
    """A recorder writer that hands each redacted event to the agent's feed. The recorder's last
    writer, so a flag reaches the overlay only once the store has it."""

    def __init__(self, feed: EventFeed, assignment: Assignment) -> None:
        self.feed = feed
        self.assignment = assignment

    def emit(self, event: PublicEvent) -> None:
        self.feed.publish(event, agent=self.assignment.agent, team=self.assignment.team)

    def close(self) -> None:
        pass


@dataclass
class ServerStats:
    accepted: int = 0
    refused_capacity: int = 0
    ended: dict[str, int] = field(default_factory=dict)


class CallServer:
    """What the served calls share (see the module docstring)."""

    def __init__(self, models: Models, options: CallOptions, settings: ServeSettings, feed: EventFeed,
                 store_opener: Callable[[], Store] | None = None, transcript: str = "excerpt",
                 store_where: str = "", bus: Bus | None = None) -> None:
        self.models = models
        self.options = options
        self.settings = settings
        self.feed = feed
        self.store_opener = store_opener
        self.transcript = transcript
        self.store_where = store_where
        self.stats = ServerStats()
        # the store's event bus: this instance's calls for the floor and other instances' overlays
        self.bus = bus
        # the calls this instance hosts or hosted lately: their events on the bus are its own
        self.hosted: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._calls: dict[str, ServedCall] = {}
        self._idle = threading.Condition(self._lock)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._calls)

    def call(self, call_id: str) -> ServedCall | None:
        with self._lock:
            return self._calls.get(call_id)

    def session(self, session_id: str) -> ServedCall:
        """The call handler of a new AudioHook session (the call starts at its `open`)."""
        return ServedCall(self, session_id)

    def admit(self, call: ServedCall) -> bool:
        with self._lock:
            if len(self._calls) >= self.settings.max_calls:
                self.stats.refused_capacity += 1
                return False
            self._calls[call.call_id] = call
            self.hosted[call.call_id] = None
            while len(self.hosted) > HOSTED_KEPT:
                self.hosted.popitem(last=False)
            self.stats.accepted += 1
            return True

    def hosts(self, call_id: str) -> bool:
        """Whether the call is (or lately was) this instance's."""
        with self._lock:
            return call_id in self.hosted

    def finished(self, call: ServedCall, end: CallEnd | None) -> None:
        with self._lock:
            self._calls.pop(call.call_id, None)
            reason = str(end.reason) if end is not None else "failed"
            self.stats.ended[reason] = self.stats.ended.get(reason, 0) + 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no call is running (every call's events written); False if `timeout` passed."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._calls, timeout)

    def writers(self, call_id: str, assignment: Assignment) -> tuple[list[Writer], FlagStoreSink | None]:
        writers: list[Writer] = []
        if self.settings.events_dir is not None:
            self.settings.events_dir.mkdir(parents=True, exist_ok=True)
            log_path = Path(self.settings.events_dir) / f"{call_id}.jsonl"
            writers.append(JsonlEventLog(str(log_path), redact=False))
        store = None
        if self.store_opener is not None:
            options = StoreOptions(assignment.agent, assignment.team, self.transcript)
            store = FlagStoreSink(self.store_opener, options, where=self.store_where, redact=False)
            writers.append(store)
        if self.bus is not None:  # after the store: the floor and other instances' overlays
            writers.append(BusWriter(self.bus, assignment.agent, assignment.team, self.transcript,
                                     owns_bus=False))
        writers.append(FeedWriter(self.feed, assignment))  # last: after the store has each event
        return writers, store


class ServedCall:
    """One session's call (`protocol.CallHandler`): the event loop calls these, and each returns at once."""

    def __init__(self, server: CallServer, session_id: str) -> None:
        self.server = server
        self.session_id = session_id
        self.call_id = uuid.uuid4().hex[:12]
        self.assignment = Assignment("")
        self.source: StreamSource | None = None
        self.pipeline: Pipeline | None = None
        self.end_event: CallEnd | None = None
        self.done = threading.Event()
        self._thread: threading.Thread | None = None
        self._agent_paused = False
        self._pause_lock = threading.Lock()
        self._last_t = 0.0

    # -- protocol.CallHandler --------------------------------------------------------------------

    def open(self, request: OpenRequest) -> str | None:
        server = self.server
        if not server.admit(self):
            log.warning("session %s refused: at capacity (%d calls; %d refused so far)", self.session_id,
                        server.settings.max_calls, server.stats.refused_capacity)
            return f"server at capacity ({server.settings.max_calls} calls); try another instance"
        self.assignment = server.settings.assign(request)
        try:
            writers, store = server.writers(self.call_id, self.assignment)
            stages = call_stages(server.models, server.options)
        except Exception as exc:  # the event log's folder unwritable, …: this call cannot be kept
            log.error("call %s cannot start: %s", self.call_id, exc)
            server.finished(self, None)
            return f"the server cannot take this call now ({type(exc).__name__}); see its log"
        self.source = StreamSource(
            self.call_id, request.media,
            f"audiohook: {request.media.format} {len(request.media.channels)} ch",
            conversation_id=request.conversation_id, participant_id=str(request.participant.get("id", "")))
        sinks: list[Sink] = [Recorder(writers)]
        self.pipeline = Pipeline(stages, sinks, realtime=True, model_label=server.models.label,
                                 max_blocks_in_flight=2000)
        log.info("call %s: session %s, conversation %s, agent %s", self.call_id, self.session_id,
                 request.conversation_id, self.assignment.agent)
        self._thread = threading.Thread(target=self._run, args=(store,), name=f"call-{self.call_id}",
                                        daemon=True)
        self._thread.start()
        return None

    def audio(self, t: float, frame: bytes) -> None:
        self._last_t = t
        if self.source is not None and not self._agent_paused:
            self.source.put_audio(t, frame)

    def pause(self, t: float, paused: bool) -> None:
        self._last_t = t
        if self.source is not None:
            self.source.put_pause(t, paused)

    def end(self, reason: CloseReason, message: str) -> None:
        if self.source is None:
            return  # refused or never opened: no call
        error = message if reason == CloseReason.ERROR else None
        if reason == CloseReason.ERROR:
            log.warning("call %s: %s; the session is disconnected", self.call_id, message)
        if reason == CloseReason.VANISHED:
            log.warning("call %s: the platform's connection dropped; the call ends 'disconnected'",
                        self.call_id)
        self.source.end(_END_REASONS[reason], error)

    # -- the agent (the network overlay) ---------------------------------------------------------

    def submit(self, event: PublicEvent) -> bool:
        """The agent's flag or feedback into this call's stream; False once the call is over."""
        return self.pipeline is not None and self.pipeline.inject(event)

    def agent_pause(self, paused: bool) -> None:
        """In Monitor mode the platform keeps streaming: the agent's pause means this call's audio is
        neither scored nor stored until resumed (a gap in call time, as a live pause is)."""
        with self._pause_lock:
            if paused == self._agent_paused or self.source is None:
                return
            self._agent_paused = paused
            self.source.put_pause(self._last_t, paused, by="overlay")

    # -- the call's thread -----------------------------------------------------------------------

    def _run(self, store: FlagStoreSink | None) -> None:
        assert self.pipeline is not None and self.source is not None
        end: CallEnd | None = None
        try:
            end = self.pipeline.run(self.source, self.call_id)
            self.end_event = end
            log.info("call %s ended (%s) at %.1f s: %d utterances", self.call_id, end.reason, end.t,
                     end.utterances)
        except Exception:
            log.exception("call %s failed", self.call_id)
        finally:
            if store is not None and store.store is not None:
                store.store.close()
            self.server.finished(self, end)
            self.done.set()


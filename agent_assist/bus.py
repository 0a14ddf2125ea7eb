"""The event bus: a call's redacted public events, as they are committed to the flag store, for
whoever watches live (the supervisors' floor, `agent-assist floor`; the network overlay of
`agent-assist serve`; an agent's desktop waiting for its supervisor's notes).

The whole API::

    bus = open_bus(store_url)                # the store's URL, as `--store` takes it
    bus.publish(event, agent="sam", team="east")
    with bus.subscribe(agent="sam") as sub:  # agent=None: every agent's events
        message = sub.get(timeout=1.0)       # a BusMessage, or None when none came in time
        for message in sub: ...              # until sub.close() (from any thread)
    bus.tell({...})                          # to every `serve` instance: an InstanceMessage
    bus.subscribe_instances()                # … which only these subscriptions get
    bus.close()

A `BusMessage` is `(event, agent, team)`: the event as the event log has it (already redacted: the
recorder publishes what it wrote, `BusWriter`), and the agent and team of its call. Publishing never
raises: a bus that cannot be reached logs once, counts the event in `Bus.lost` and goes on (what
was committed is in the store; a watcher that missed it reads the store again). A subscriber sees
the events published after it subscribed, in the order they were published.

* **PostgreSQL**: `NOTIFY` on one channel (`CHANNEL`), `LISTEN` in each subscriber, each on a
  connection of its own. The payload is the event's JSON line with its agent and team
  (`{"agent": …, "team": …, "event": {…}}`); one over PostgreSQL's 8000-byte limit is written to
  the store's `bus_events` table and the notification carries its id instead (`"ref"`), which the
  subscriber reads back. A subscriber whose connection drops connects again and says so once; what
  was published in between is not replayed.
* **SQLite** (one desk, a demo): a subscriber in the same process is woken at once; the events are
  also written to `bus_events`, which a subscriber in another process (a floor started beside a
  desktop) reads every `POLL_S`: SQLite has no notifications between processes, so that is the
  documented fallback. Rows older than `KEEP_S` are deleted as new ones come.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar

from agent_assist.events import (
    CallEnd,
    CallStart,
    EventParseError,
    Feedback,
    Flag,
    Listening,
    Prompt,
    PromptSeen,
    PublicEvent,
    Retract,
    SupervisorNote,
    Utterance,
    event_from_dict,
)
from agent_assist.store.connection import StoreError, _Database, connect
from agent_assist.store.records import utc_text

log = logging.getLogger(__name__)

#: The one PostgreSQL channel every event goes on.
CHANNEL = "agent_assist_events"
#: PostgreSQL refuses a notification payload of 8000 bytes or more; past this, one is sent by reference.
MAX_PAYLOAD = 7900
#: How often a SQLite subscriber reads what another process published.
POLL_S = 0.25
#: How long an event stays in `bus_events` (a reference not read by then is lost, and logged).
KEEP_S = 600.0
#: The events the bus carries: what the store keeps, the supervisor's notes, and pauses (an agent's
#: overlay connected to another `serve` instance than its call's says that listening is paused).
CARRIED = (CallStart, Utterance, Prompt, Retract, Flag, Feedback, PromptSeen, SupervisorNote, Listening,
           CallEnd)
#: Messages a subscriber holds before the oldest go (a watcher stalled for minutes), counted.
MAX_HELD = 10_000


@dataclass(frozen=True)
class BusMessage:
    """One event on the bus, with the agent and team of its call."""

    event: PublicEvent
    agent: str
    team: str

    def payload(self) -> str:
        return json.dumps({"agent": self.agent, "team": self.team, "event": self.event.to_dict()},
                          ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_payload(cls, text: str) -> BusMessage:
        """EventParseError when `text` is not a message of this bus."""
        message = _parse(text)
        if not isinstance(message, BusMessage):
            raise EventParseError("a message between serve instances, not an event")
        return message

    @classmethod
    def _from_data(cls, data: Any) -> BusMessage:
        if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
            raise EventParseError("a bus message without an event")
        agent, team = data.get("agent", ""), data.get("team", "")
        if not isinstance(agent, str) or not isinstance(team, str):
            raise EventParseError("a bus message whose agent or team is not text")
        return cls(event_from_dict(data["event"]), agent, team)


@dataclass(frozen=True)
class InstanceMessage:
    """A message between `serve` instances on the same bus (an agent's action on a call another
    instance hosts, and its answer: `agent_assist.server.actions` says what `body` holds). It is
    carried as it is; subscribers to events never see it. Its body must hold nothing unredacted."""

    body: dict[str, Any]
    agent: str = ""  # no agent's: an event subscriber filtering by agent skips it unread
    team: str = ""

    def payload(self) -> str:
        return json.dumps({"agent": "", "team": "", "instances": self.body}, ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)


def _parse(text: str) -> BusMessage | InstanceMessage:
    """EventParseError when `text` is not a message of this bus."""
    try:
        data = json.loads(text)
    except ValueError:
        raise EventParseError("a bus message that is not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("instances"), dict):
        return InstanceMessage(data["instances"])
    return BusMessage._from_data(data)


#: What a subscription gives: a call's events (`Bus.subscribe`) or the instances' messages.
M = TypeVar("M", bound=BusMessage | InstanceMessage)


class Subscription(Generic[M]):
    """The messages published after `Bus.subscribe` (events, for one agent or all) or
    `Bus.subscribe_instances`. Iterate it (it ends when closed), or `get(timeout)`. One thread
    reads it; `close` may come from any thread."""

    def __init__(self, agent: str | None, kind: type[M]) -> None:
        self.agent = agent
        self.kind = kind
        self.lost = 0  # messages dropped because the reader fell `MAX_HELD` behind
        self._closed = threading.Event()

    def get(self, timeout: float | None = None) -> M | None:
        """The next message, or None when none came within `timeout` seconds (or it was closed)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[M]:
        while not self._closed.is_set():
            message = self.get(timeout=0.5)
            if message is not None:
                yield message

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()

    def mine(self, message: BusMessage | InstanceMessage | None) -> M | None:
        """`message` if this subscription wants it (its kind, and its agent if it has one)."""
        if isinstance(message, self.kind) and (self.agent is None or message.agent == self.agent):
            return message
        return None

    def __enter__(self) -> Subscription[M]:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Bus:
    """Publish a call's events; subscribe to them. See the module's docstring."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.published = 0
        self.lost = 0  # events that could not be published (logged once per outage)
        self._warned = False

    def publish(self, event: PublicEvent, *, agent: str, team: str) -> bool:
        """Send `event` (already redacted) to every subscriber; False when it could not be sent."""
        return self._publish(BusMessage(event, agent, team))

    def tell(self, body: dict[str, Any]) -> bool:
        """Send `body` (nothing unredacted in it) to every `subscribe_instances()` subscriber,
        this process's too; False when it could not be sent."""
        return self._publish(InstanceMessage(body))

    def _publish(self, message: BusMessage | InstanceMessage) -> bool:
        try:
            self._send(message)
        except (StoreError, ValueError) as exc:
            self.lost += 1
            if not self._warned:
                log.warning("event bus %s: %s; live watchers miss events until it is back (the store has "
                            "them)", self.where, exc)
                self._warned = True
            return False
        if self._warned:
            log.warning("event bus %s: publishing again", self.where)
            self._warned = False
        self.published += 1
        return True

    def subscribe(self, agent: str | None = None) -> Subscription[BusMessage]:
        raise NotImplementedError

    def subscribe_instances(self) -> Subscription[InstanceMessage]:
        """The messages `tell` sends, from now on."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _send(self, message: BusMessage | InstanceMessage) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------
# The table both databases use: what did not fit a notification, and on SQLite everything


def _keep(db: _Database, message: BusMessage | InstanceMessage, payload: str) -> int:
    with db.transaction():
        rows = db.query("INSERT INTO bus_events (at, agent, team, payload) VALUES (?, ?, ?, ?) RETURNING id",
                        (utc_text(), message.agent, message.team, payload))
        db.execute("DELETE FROM bus_events WHERE at < ?",
                   (utc_text(datetime.now(UTC) - timedelta(seconds=KEEP_S)),))
    return int(rows[0][0])


def _read(where: str, row_id: int, payload: str) -> BusMessage | InstanceMessage | None:
    try:
        return _parse(payload)
    except EventParseError as exc:
        log.warning("event bus %s: message %d is not one this reads (%s); skipped", where, row_id, exc)
        return None


# ------------------------------------------------------------------------------------------------
# PostgreSQL: NOTIFY / LISTEN


class _PostgresBus(Bus):
    def __init__(self, url: str, timeout_s: float) -> None:
        self._url, self._timeout_s = url, timeout_s
        self._db = connect(url, timeout_s)  # publishing: with the store's deadlines and reconnects
        super().__init__(self._db.where)

    def _send(self, message: BusMessage | InstanceMessage) -> None:
        payload = message.payload()
        if len(payload.encode("utf-8")) > MAX_PAYLOAD:
            ref = _keep(self._db, message, payload)
            payload = json.dumps({"agent": message.agent, "team": message.team, "ref": ref})
        self._db.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))

    def subscribe(self, agent: str | None = None) -> Subscription[BusMessage]:
        return _PostgresSubscription(self, agent, BusMessage)

    def subscribe_instances(self) -> Subscription[InstanceMessage]:
        return _PostgresSubscription(self, None, InstanceMessage)

    def close(self) -> None:
        self._db.close()


class _PostgresSubscription(Subscription[M]):
    """A connection of its own, listening. Its reads wait at most `timeout`, so `close` from
    another thread takes effect within the reader's timeout (at most 0.5 s when iterating)."""

    def __init__(self, bus: _PostgresBus, agent: str | None, kind: type[M]) -> None:
        super().__init__(agent, kind)
        self.bus = bus
        self._conn: Any = None
        self._lock = threading.Lock()  # the reader's: the connection is used by one thread at a time
        self._down_since: float | None = None
        self._pending: deque[str] = deque()  # payloads read and not yet given to the reader
        self._listen()  # before returning: nothing published after subscribe() is missed

    def _listen(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(self.bus._url, autocommit=True,
                                         connect_timeout=max(2, int(self.bus._timeout_s)))
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._conn = None
            raise StoreError(f"event bus {self.bus.where}: cannot listen ({str(exc).strip()[:200]})",
                             transient=True) from None
        if self._down_since is not None:
            log.warning("event bus %s: listening again (events published in the last %.0f s were missed)",
                        self.bus.where, time.monotonic() - self._down_since)
            self._down_since = None

    def get(self, timeout: float | None = None) -> M | None:
        import psycopg

        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._closed.is_set():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                wait = 0.5 if left is None else min(0.5, left)
                try:
                    if not self._pending:
                        if self._conn is None:
                            self._listen()
                        # every notification of the packet read (the generator stops after the
                        # packet, and those it had not yielded yet would be lost)
                        read = self._conn.notifies(timeout=wait, stop_after=1)
                        self._pending.extend(n.payload for n in read)
                    while self._pending:
                        message = self.mine(self._message(self._pending.popleft()))
                        if message is not None:
                            return message
                except (psycopg.Error, StoreError) as exc:
                    if self._down_since is None:
                        self._down_since = time.monotonic()
                        said = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
                        log.warning("event bus %s: lost the connection (%s); connecting again",
                                    self.bus.where, said)
                    self._drop()
                    self._closed.wait(min(wait, 0.5) or 0.05)
                if left is not None and time.monotonic() >= deadline:  # type: ignore[operator]
                    return None
            self._drop()
        return None

    def _message(self, payload: str) -> BusMessage | InstanceMessage | None:
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if isinstance(data, dict) and "ref" in data:
            if self.agent is not None and data.get("agent") != self.agent:
                return None  # not ours: not worth reading from the table
            rows = self.bus._db.query("SELECT payload FROM bus_events WHERE id = ?", (int(data["ref"]),))
            if not rows:
                log.warning("event bus %s: message %s was gone before it was read", self.bus.where,
                            data["ref"])
                return None
            payload = rows[0][0]
        return _read(self.bus.where, 0, payload)

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        super().close()
        if self._lock.acquire(blocking=False):  # nobody reading: close the connection now
            try:
                self._drop()
            finally:
                self._lock.release()


# ------------------------------------------------------------------------------------------------
# SQLite: in-process queues, and the table for another process


class _SQLiteBus(Bus):
    def __init__(self, target: str | None, timeout_s: float) -> None:
        from agent_assist.store.records import open_store

        # opened as a store, so the table exists (migrated) before anything is written to it
        self._store = open_store(target, timeout_s)
        self._db = self._store.db
        super().__init__(self._db.where)
        self._subscribers: list[_SQLiteSubscription[Any]] = []
        self._lock = threading.Lock()

    def _send(self, message: BusMessage | InstanceMessage) -> None:
        with self._db.lock:  # in id order, so a subscriber that has read id n has read all before it
            row_id = _keep(self._db, message, message.payload())
            with self._lock:
                subscribers = list(self._subscribers)
            for sub in subscribers:  # the same process: at once, without waiting for a poll
                sub.deliver(row_id, message)

    def subscribe(self, agent: str | None = None) -> Subscription[BusMessage]:
        return self._subscribe(_SQLiteSubscription(self, agent, BusMessage))

    def subscribe_instances(self) -> Subscription[InstanceMessage]:
        return self._subscribe(_SQLiteSubscription(self, None, InstanceMessage))

    def _subscribe(self, sub: _SQLiteSubscription[M]) -> _SQLiteSubscription[M]:
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def forget(self, sub: _SQLiteSubscription[Any]) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def close(self) -> None:
        self._store.close()


class _SQLiteSubscription(Subscription[M]):
    """Messages handed over in this process, and those of other processes read from `bus_events`
    every `POLL_S` (by id, so none is read twice)."""

    def __init__(self, bus: _SQLiteBus, agent: str | None, kind: type[M]) -> None:
        super().__init__(agent, kind)
        self.bus = bus
        self._queue: queue.Queue[tuple[int, M]] = queue.Queue(MAX_HELD)
        rows = bus._db.query("SELECT COALESCE(MAX(id), 0) FROM bus_events")
        self._polled = int(rows[0][0])  # the last row the poll has read
        self._returned: dict[int, None] = {}  # ids given to the reader (a message comes both ways)
        self._polled_at = 0.0

    def deliver(self, row_id: int, message: BusMessage | InstanceMessage) -> None:
        mine = self.mine(message)
        if not self.closed and mine is not None:
            self._hold(row_id, mine)

    def _hold(self, row_id: int, message: M) -> None:
        try:
            self._queue.put_nowait((row_id, message))
        except queue.Full:
            self.lost += 1

    def get(self, timeout: float | None = None) -> M | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            if time.monotonic() - self._polled_at >= POLL_S:
                self._poll()
            left = None if deadline is None else deadline - time.monotonic()
            try:
                wait = POLL_S if left is None else max(0.0, min(POLL_S, left))
                row_id, message = self._queue.get(timeout=wait)
            except queue.Empty:
                if left is not None and left <= 0:
                    return None
                continue
            if row_id not in self._returned:  # not had already, the other way
                self._returned[row_id] = None
                while len(self._returned) > 2 * MAX_HELD:
                    del self._returned[next(iter(self._returned))]
                return message
        return None

    def _poll(self) -> None:
        """What other processes published since the last read."""
        self._polled_at = time.monotonic()
        try:
            with self.bus._db.lock:
                rows = self.bus._db.query(
                    "SELECT id, agent, payload FROM bus_events WHERE id > ? ORDER BY id", (self._polled,))
        except StoreError as exc:
            log.warning("event bus %s: %s", self.bus.where, exc)
            return
        for row_id, agent, payload in rows:
            self._polled = max(self._polled, int(row_id))
            if (self.agent is not None and agent != self.agent) or int(row_id) in self._returned:
                continue
            message = self.mine(_read(self.bus.where, int(row_id), payload))
            if message is not None:
                self._hold(int(row_id), message)

    def close(self) -> None:
        super().close()
        self.bus.forget(self)


def open_bus(store_url: str | None, timeout_s: float = 5.0) -> Bus:
    """The bus of the store at `store_url` (a PostgreSQL URL, a SQLite path, or None for the user's
    default SQLite store). StoreError when it cannot be reached."""
    text = "" if store_url is None else str(store_url)
    if text.startswith(("postgresql://", "postgres://")):
        from agent_assist.store.records import open_store

        open_store(text, timeout_s).close()  # the schema, with its table, before the first message
        return _PostgresBus(text, timeout_s)
    return _SQLiteBus(text or None, timeout_s)


class BusWriter:
    """The recorder's writer (`agent_assist.recorder`) that publishes each event it is given, after
    the flag store's writer has committed it, with the call's agent and team. Events are already
    redacted; a turn's word timings are dropped (nobody watching live needs them), and its text too
    when the site keeps no transcript (`transcript="none"`)."""

    def __init__(self, bus: Bus, agent: str, team: str, transcript: str = "excerpt",
                 owns_bus: bool = True) -> None:
        self.bus, self.agent, self.team = bus, agent, team
        self.transcript = transcript
        self.owns_bus = owns_bus

    def emit(self, event: PublicEvent) -> None:
        if not isinstance(event, CARRIED):
            return
        if isinstance(event, Utterance):
            from dataclasses import replace

            event = replace(event, words=(), text="" if self.transcript == "none" else event.text)
        self.bus.publish(event, agent=self.agent, team=self.team)

    def close(self) -> None:
        if self.owns_bus:
            self.bus.close()


class NoteFeed:
    """An agent's desktop, listening for its supervisor's notes: each `SupervisorNote` for `agent`
    on the bus is handed to `sink` (the overlay's bridge) from a thread of its own. A bus that
    cannot be reached is tried again every few seconds; the call never waits for it."""

    def __init__(self, store_url: str | None, agent: str, sink: Any, timeout_s: float = 5.0) -> None:
        self.store_url, self.agent, self.sink, self.timeout_s = store_url, agent, sink, timeout_s
        self.delivered = 0
        self._stop = threading.Event()
        self._sub: Subscription[BusMessage] | None = None
        self.ready = threading.Event()  # subscribed: a note sent from now on arrives
        self._thread = threading.Thread(target=self._run, name="supervisor-notes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        bus: Bus | None = None
        while not self._stop.is_set():
            try:
                bus = bus or open_bus(self.store_url, self.timeout_s)
                self._sub = bus.subscribe(self.agent)
            except StoreError as exc:
                log.info("supervisor notes: %s; trying again", exc)
                self._stop.wait(5.0)
                continue
            self.ready.set()
            for message in self._sub:
                if isinstance(message.event, SupervisorNote):
                    self.delivered += 1
                    self.sink.emit(message.event)
            break
        if bus is not None:
            bus.close()

    def close(self) -> None:
        self._stop.set()
        if self._sub is not None:
            self._sub.close()
        self._thread.join(timeout=5.0)

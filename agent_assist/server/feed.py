"""The agents' event feed: each agent's calls' redacted events, for their overlays to subscribe to.

```
recorder's writer thread (per call) ──publish(event, agent, team)──► EventFeed ──► each agent's
   (after the store has the event: a flag is committed before it is shown)        subscribers (asyncio)
```

`EventFeed` is the small interface the server delivers through; `LocalFeed` delivers within this
process. Several `serve` instances behind a load balancer need an agent's events from whichever
instance hosts the call. The event bus (`agent_assist.bus`: PostgreSQL LISTEN/NOTIFY, redacted
events published after the store's commit, with agent and team) carries them, and plugs in at two
places, nothing else changing:

* publishing: `calls.CallServer.writers` ends each call's writers with `calls.FeedWriter`, which
  calls `EventFeed.publish`. With the bus, that writer publishes to the bus instead
  (`bus.publish(event, agent=, team=)`), or is dropped if the recorder publishes itself;
* delivering: `server.serve` builds one `LocalFeed`; with the bus, one thread per instance reads
  `bus.subscribe()` and calls `LocalFeed.publish(event, agent=, team=)` for each event, so every
  instance's overlays get every instance's calls, numbered per instance for resuming.

Each agent's events are numbered (`seq`, from 1, per agent, per instance) and the latest
`KEEP_PER_AGENT` kept, so an overlay that reconnects asks for what came after the last it saw.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from agent_assist.events import PublicEvent

#: Events kept per agent for overlays that reconnect (a few calls' worth).
KEEP_PER_AGENT = 2000


@dataclass(frozen=True)
class FeedItem:
    seq: int
    agent: str
    team: str
    event: PublicEvent


class EventFeed(Protocol):
    def publish(self, event: PublicEvent, *, agent: str, team: str) -> None:
        """Deliver a redacted event of `agent`'s call (any thread; never blocks on a subscriber)."""

    def subscribe(self, agent: str, since: int = 0) -> AsyncGenerator[FeedItem, None]:
        """`agent`'s events numbered after `since`, then each as it comes (until cancelled)."""


class _Waiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready = asyncio.Event()

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.ready.set)


class LocalFeed:
    """`EventFeed` within one process (see the module docstring)."""

    def __init__(self, keep: int = KEEP_PER_AGENT) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._events: dict[str, deque[FeedItem]] = {}
        self._seq: dict[str, int] = {}
        self._waiters: dict[str, set[_Waiter]] = {}
        self.published = 0

    def publish(self, event: PublicEvent, *, agent: str, team: str) -> None:
        with self._lock:
            seq = self._seq.get(agent, 0) + 1
            self._seq[agent] = seq
            self._events.setdefault(agent, deque(maxlen=self.keep)).append(FeedItem(seq, agent, team, event))
            waiters = list(self._waiters.get(agent, ()))
            self.published += 1
        for waiter in waiters:
            waiter.wake()

    def latest(self, agent: str) -> int:
        with self._lock:
            return self._seq.get(agent, 0)

    def subscribers(self, agent: str) -> int:
        """How many of `agent`'s overlays are subscribed now."""
        with self._lock:
            return len(self._waiters.get(agent, ()))

    def _after(self, agent: str, since: int) -> list[FeedItem]:
        with self._lock:
            return [item for item in self._events.get(agent, ()) if item.seq > since]

    async def subscribe(self, agent: str, since: int = 0) -> AsyncGenerator[FeedItem, None]:
        waiter = _Waiter(asyncio.get_running_loop())
        with self._lock:
            self._waiters.setdefault(agent, set()).add(waiter)
        try:
            while True:
                waiter.ready.clear()
                items = self._after(agent, since)
                for item in items:
                    since = item.seq
                    yield item
                if not items:
                    await waiter.ready.wait()
        finally:
            with self._lock:
                self._waiters.get(agent, set()).discard(waiter)

"""`agent-assist serve`: take call audio from the contact-centre platform over AudioHook (Genesys
Cloud's Monitor integration), run each call through the same pipeline as `replay` and `run`, and
feed each agent's overlay over the network.

By idea:

* `protocol`: the AudioHook v2 session as a synchronous state machine (messages in, messages out);
* `signature`: the handshake's HTTP Message Signature, verified;
* `source`: a session's audio as a pipeline source (decoded on the call's thread);
* `calls`: each session as a call through the composition root, its events to the recorder;
* `feed`: each agent's redacted events, for the network overlay (in-process; the event bus plugs in there);
* `actions`: the agent's flags, feedback and pause, taken by the instance hosting the call (over the bus);
* `settings`: the `[serve]` configuration and the secrets from the environment;
* `app`: the WebSocket endpoints on one asyncio event loop.

`serve()` below wires them; the command line only chooses the options.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.server import Server

from agent_assist.bus import Bus, open_bus
from agent_assist.call import CallOptions, Models
from agent_assist.config import Config
from agent_assist.events import SupervisorNote
from agent_assist.server.actions import ActionRelay
from agent_assist.server.app import AudioHookServer, Listen, ports, run_server
from agent_assist.server.calls import CallServer
from agent_assist.server.feed import LocalFeed
from agent_assist.server.settings import ServeSettings
from agent_assist.store import Store, open_store

log = logging.getLogger(__name__)

#: How long a stop waits for the calls still running to be written (their audio has stopped).
DRAIN_S = 60.0


class BusRelay:
    """Every other instance's calls to this instance's overlays: each event on the store's bus
    (PostgreSQL LISTEN/NOTIFY, after that instance's store commit) whose call this instance does not
    host goes to the local feed, so an agent's overlay may be connected to any instance behind the
    load balancer. Events of this instance's own calls reach its feed directly, and are skipped;
    a supervisor's note (`agent-assist floor` publishes it) is relayed whichever call it is about."""

    def __init__(self, bus: Bus, hosts: Callable[[str], bool], feed: LocalFeed) -> None:
        self.hosts, self.feed = hosts, feed
        self.relayed = 0
        self._sub = bus.subscribe()  # before any call starts: nothing published from now is missed
        self._thread = threading.Thread(target=self._run, name="bus-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for message in self._sub:
            if self.hosts(message.event.call_id) and not isinstance(message.event, SupervisorNote):
                continue
            self.feed.publish(message.event, agent=message.agent, team=message.team)
            self.relayed += 1

    def close(self) -> None:
        self._sub.close()
        self._thread.join(timeout=5.0)


@dataclass(frozen=True)
class ServeOptions:
    listen: Listen
    call: CallOptions
    store_url: str | None = None  # None: the configuration's (else the default SQLite file); "none": no store
    transcript: str = "excerpt"


def serve(options: ServeOptions, settings: ServeSettings, config: Config,
          say: Callable[[str], None] = print, models: Models | None = None,
          stop: asyncio.Event | None = None,
          on_ready: Callable[[list[int]], None] | None = None) -> CallServer:
    """Load the models once, then serve until SIGINT/SIGTERM (or `stop`); returns the call server
    (its counts) once every call has been written."""
    if not settings.api_keys:
        say("warning: no AudioHook API key configured ([serve.api_keys] or $AGENT_ASSIST_AUDIOHOOK_KEYS): "
            "every session will be refused")
    say("loading the models (once, for every call)…")
    models = models.fit(options.call) if models is not None else Models.load(options.call)
    target = options.store_url or config.store_url
    opener: Callable[[], Store] | None = None
    if target != "none":
        open_store(target, config.store_timeout_s).close()  # a wrong URL fails now, not at the first call
        timeout = config.store_timeout_s

        def opener() -> Store:
            return open_store(target, timeout)

    feed = LocalFeed()
    bus = open_bus(target, config.store_timeout_s) if opener is not None else None
    calls = CallServer(models, options.call, settings, feed, opener, options.transcript,
                       store_where=str(target or "(the default store)"), bus=bus)
    relay = BusRelay(bus, calls.hosts, feed) if bus is not None else None
    actions = ActionRelay(bus, calls) if bus is not None else None
    app = AudioHookServer(calls, feed, actions=actions)

    async def main() -> None:
        done = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (a test), or Windows
            pass

        def ready(server: Server) -> None:
            bound = ports(server)
            scheme = "wss" if options.listen.tls_cert else "ws"
            say(f"serving AudioHook on {scheme}://{options.listen.host}:{bound[0]}/api/v1/audiohook/ws "
                f"(at most {settings.max_calls} calls; Ctrl-C stops)")
            if on_ready is not None:
                on_ready(bound)

        await run_server(app, options.listen, done, ready)

    asyncio.run(main())
    if calls.running:
        say(f"stopping: writing the {calls.running} call(s) still open…")
    calls.wait_idle(DRAIN_S)
    if relay is not None:
        relay.close()
    if actions is not None:
        actions.close()
    if bus is not None:
        bus.close()
    stats = calls.stats
    say(f"served {stats.accepted} call(s); refused {stats.refused_capacity} at capacity and "
        f"{app.refused_auth} unauthorized")
    return calls


__all__ = ["BusRelay", "Listen", "ServeOptions", "serve"]

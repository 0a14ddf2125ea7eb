"""The agent's overlay fed over the network: `agent-assist overlay --server URL --agent ID`.

```
agent-assist serve ── wss://…/api/v1/agents/<agent>/events ──► FeedClient (a thread, its own event
 (redacted events, numbered)                                     loop) ──► EventBridge ──► Overlay (Qt)
                    ◄── the agent's flags, feedback, pause ──────────────────────────────┘ (Controls)
```

No audio is captured here and no model is loaded: this module, the overlay and what they import stay
clear of PortAudio, PulseAudio and the speech and scoring models (a test holds it), which is how
Windows and macOS desktops get agent-assist. The connection is authenticated with the agent's token
(from `$AGENT_ASSIST_AGENT_TOKEN` or the configuration's `[overlay] token`, never the command line),
and when it drops the client reconnects with back-off and resumes after the last event it had, so
nothing is missed or shown twice.

In Monitor mode the platform keeps streaming the call: the agent's pause asks the server to stop
scoring and storing this call until resumed, and the overlay says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from agent_assist.errors import AgentAssistError
from agent_assist.events import CallEnd, CallStart, EventParseError, Listening, PublicEvent, event_from_dict

log = logging.getLogger(__name__)

TOKEN_ENV = "AGENT_ASSIST_AGENT_TOKEN"
RETRY_MAX_S = 10.0
MAX_OUTBOX = 1000  # the agent's events waiting for the connection to come back


class EventSink(Protocol):
    def emit(self, event: PublicEvent) -> None: ...


class FeedClient:
    """An agent's event feed from `serve`, into `sink` (the overlay's bridge), and the overlay's
    `Controls` back to the server. `run()` blocks until `stop()`; every other method is for any thread."""

    live = True  # the overlay offers pause
    paused_text = "Paused: not scored or stored"

    def __init__(self, server: str, agent: str, token: str, sink: EventSink,
                 report: Callable[[str], None] | None = None) -> None:
        self.url = f"{server.rstrip('/')}/api/v1/agents/{quote(agent, safe='')}/events"
        self.agent = agent
        self.token = token
        self.sink = sink
        self.report = report or (lambda message: log.warning("%s", message))
        self.last_seq = 0
        self.call_id: str | None = None
        self.connected = threading.Event()
        self._paused = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.refused: str | None = None  # why the server said no (a wrong token): no retrying that

    # -- Controls (the overlay, on the Qt thread) ----------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def toggle_pause(self, by: str = "overlay") -> bool:
        if self.call_id is None:
            return self._paused
        self._paused = not self._paused
        self._send({"pause": self._paused, "call_id": self.call_id})
        return self._paused

    def end_call(self) -> None:
        """The platform ends calls; nothing to do here."""

    def submit(self, event: PublicEvent) -> None:
        self._send({"event": event.to_dict()})

    def _send(self, message: dict[str, Any]) -> None:
        if self._loop is None or self._outbox is None:
            return
        outbox = self._outbox

        def put() -> None:
            if outbox.qsize() >= MAX_OUTBOX:
                kind = message.get("event", {}).get("type", "pause")
                log.warning("not connected: the agent's %s not sent", kind)
                return
            outbox.put_nowait(json.dumps(message))

        self._loop.call_soon_threadsafe(put)

    # -- running ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._started.wait(5)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._stop = asyncio.Event()
        self._started.set()
        delay = 0.5
        while not self._stop.is_set():
            try:
                headers = {"Authorization": f"Bearer {self.token}"}
                url = f"{self.url}?since={self.last_seq}"
                async with connect(url, additional_headers=headers) as connection:
                    self.connected.set()
                    delay = 0.5
                    await self._session(connection)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403, 404):
                    self.refused = (f"the server refused agent {self.agent} ({status}): check the agent id "
                                    "and token")
                    self.report(self.refused)
                    return
                self.report(f"the server answered {status}; retrying")
            except (OSError, ConnectionClosed, TimeoutError, InvalidURI) as exc:
                if isinstance(exc, InvalidURI):
                    self.refused = f"not a server address: {exc}"
                    self.report(self.refused)
                    return
                self.report(f"connection to the server lost ({type(exc).__name__}); reconnecting")
            self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _session(self, connection: ClientConnection) -> None:
        assert self._stop is not None and self._outbox is not None
        stop = asyncio.create_task(self._stop.wait())
        sender = asyncio.create_task(self._sender(connection))
        receiver = asyncio.create_task(self._receiver(connection))
        try:
            done, _ = await asyncio.wait({stop, sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in (stop, sender, receiver):
                task.cancel()

    async def _sender(self, connection: ClientConnection) -> None:
        assert self._outbox is not None
        while True:
            message = await self._outbox.get()
            await connection.send(message)

    async def _receiver(self, connection: ClientConnection) -> None:
        async for message in connection:
            try:
                data = json.loads(message)
            except ValueError:
                continue
            if "error" in data:
                self.report(f"server: {data['error']}")
                continue
            try:
                event = event_from_dict(data["event"])
            except (EventParseError, KeyError, TypeError) as exc:
                log.warning("an event from the server could not be read (%s); skipped", exc)
                continue
            self.last_seq = int(data.get("seq", 0))  # lower only when the server restarted
            if isinstance(event, CallStart):
                self.call_id, self._paused = event.call_id, False
            elif isinstance(event, CallEnd) and event.call_id == self.call_id:
                self.call_id = None
            elif isinstance(event, Listening) and event.call_id == self.call_id:
                self._paused = event.paused
            self.sink.emit(event)


def agent_token(config: Path | None = None) -> str:
    """The agent's token: `$AGENT_ASSIST_AGENT_TOKEN`, else the configuration's `[overlay] token`."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token
    from agent_assist.config import read_file

    path, found = read_file(config)
    data = found or {}
    token = (data.get("overlay") or {}).get("token")
    if not isinstance(token, str) or not token:
        raise AgentAssistError(f"no overlay token: set ${TOKEN_ENV}, or token in the [overlay] table of "
                               f"{path} (your administrator has it: [serve.agent_tokens] on the server)")
    return token


def run_overlay(server: str, agent: str, say: Callable[[str], None] = print) -> None:
    """Show the overlay fed by `server` for `agent` until the overlay is closed or Ctrl-C."""
    from agent_assist.ui.app import OverlayRun, display_problem

    if not server.startswith(("ws://", "wss://")):
        raise AgentAssistError(f"--server must be a ws:// or wss:// address, not {server!r}")
    token = agent_token()
    problem = display_problem()
    if problem:
        raise AgentAssistError(f"no overlay: {problem}")
    overlay: OverlayRun[None] = OverlayRun()
    client = FeedClient(server, agent, token, overlay.bridge, report=overlay.bridge.report)

    def work() -> None:
        client.run()
        if client.refused:
            raise AgentAssistError(client.refused)

    say(f"overlay for {agent}, fed by {server} (close it or press Ctrl-C to finish)")
    overlay.app.aboutToQuit.connect(client.stop)  # the agent closed the overlay: stop listening
    try:
        def interrupted(*_: object) -> None:
            client.stop()
            overlay.request_quit()

        previous = signal.signal(signal.SIGINT, interrupted)
    except ValueError:  # not the main thread (a test)
        previous = None
    try:
        overlay.run(client, work, close_when_done=True, say=say)
    finally:
        client.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def main() -> None:
    """`agent-assist-overlay`: the network overlay alone (the light install's entry point)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="agent-assist-overlay", description=run_overlay.__doc__)
    parser.add_argument("--server", required=True, help="the serve address, e.g. wss://assist.example.com")
    parser.add_argument("--agent", required=True, help="your agent id, as the server knows it")
    args = parser.parse_args()
    try:
        run_overlay(args.server, args.agent, say=lambda m: print(m, file=sys.stderr))
    except AgentAssistError as exc:
        print(f"agent-assist-overlay: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

"""The network side of `agent-assist serve`: one asyncio event loop, two WebSocket endpoints.

* `AUDIOHOOK_PATH`: the platform's AudioHook sessions. The handshake's HTTP Message Signature is
  verified before the upgrade (401 otherwise); each session then runs `protocol.Session`, whose call
  runs on its own thread (`calls.ServedCall`). Nothing here waits on a model or a disk.
* `EVENTS_PATH` + `<agent>/events`: an agent's overlay. `Authorization: Bearer <the agent's token>`
  (401 otherwise); `?since=N` resumes after the event numbered N. The server sends each redacted
  event as `{"seq": N, "event": {...}}`; the overlay sends the agent's flags and feedback as
  `{"event": {...}}` and a pause as `{"pause": true|false, "call_id": "..."}`; the server answers
  an action it could not take with `{"error": "..."}` (one line), and one it took with the event
  itself on the feed. On a call another instance hosts, the action is taken there
  (`actions.ActionRelay`).

A slow reader never holds anyone else up: an overlay that cannot take its events within
`SEND_TIMEOUT_S` is disconnected (it reconnects and resumes), and each AudioHook session is its own task.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent_assist.server.actions import ActionError, ActionRelay, AgentAction, perform
from agent_assist.server.calls import CallServer
from agent_assist.server.feed import FeedItem, LocalFeed
from agent_assist.server.protocol import Session, State
from agent_assist.server.signature import SignatureError, verify

log = logging.getLogger(__name__)

AUDIOHOOK_PATH = "/api/v1/audiohook/ws"
EVENTS_PATH = "/api/v1/agents/"
#: Larger than any frame the protocol allows, so an oversized one gets the protocol's answer; past
#: this the WebSocket layer itself closes the connection (1009) and the call ends `disconnected`.
MAX_MESSAGE = 1 << 20
CLOSE_WAIT_S = 5.0  # after a disconnect, how long the client has to send its close
SEND_TIMEOUT_S = 10.0  # an overlay that cannot take an event this long is dropped (it resumes)
#: Signature failures are answered no sooner than this after the request, whatever the reason,
#: so timing tells an attacker nothing (the reference server waits 500 ms too).
FAILURE_DELAY_S = 0.5
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


class AudioHookServer:
    """The endpoints over a `CallServer` (see the module docstring)."""

    def __init__(self, calls: CallServer, feed: LocalFeed, clock: Callable[[], float] = time.time,
                 actions: ActionRelay | None = None) -> None:
        self.calls = calls
        self.feed = feed
        self.actions = actions  # the agents' actions on calls other instances host (with a bus)
        self.clock = clock
        self.refused_auth = 0
        self.send_timeout_s = SEND_TIMEOUT_S
        self.slow_overlays = 0  # dropped for not taking their events

    # -- the handshake ---------------------------------------------------------------------------

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == AUDIOHOOK_PATH:
            return await self._check_audiohook(connection, request)
        if path.startswith(EVENTS_PATH) and path.endswith("/events"):
            return await self._check_overlay(connection, request)
        return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")

    async def _refuse(self, connection: ServerConnection, started: float, why: str) -> Response:
        self.refused_auth += 1
        log.warning("refused %s: %s", connection.remote_address, why)
        await asyncio.sleep(max(0.0, started + FAILURE_DELAY_S - time.monotonic()))
        return connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")

    async def _check_audiohook(self, connection: ServerConnection, request: Request) -> Response | None:
        started = time.monotonic()
        try:
            verify(request.path, request.headers.get_all, self.calls.settings.api_keys, self.clock)
        except SignatureError as exc:
            return await self._refuse(connection, started, str(exc))
        session_id = request.headers.get("audiohook-session-id", "")
        if not _UUID.match(session_id):
            return connection.respond(HTTPStatus.BAD_REQUEST, "missing or invalid audiohook-session-id\n")
        return None

    async def _check_overlay(self, connection: ServerConnection, request: Request) -> Response | None:
        started = time.monotonic()
        agent = _agent_of(request.path)
        expected = self.calls.settings.agent_tokens.get(agent, "")
        given = request.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        # compared even for an unknown agent, so the time taken says nothing about which agents exist
        good = hmac.compare_digest(token.encode(), (expected or "\0" * 32).encode())
        if not good or not expected:
            return await self._refuse(connection, started, f"overlay of agent {agent[:40]!r}: bad token")
        return None

    # -- the connections -------------------------------------------------------------------------

    async def handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        if urlsplit(connection.request.path).path == AUDIOHOOK_PATH:
            await self._audiohook(connection)
        else:
            await self._overlay(connection)

    async def _audiohook(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        headers = connection.request.headers
        session_id = headers["audiohook-session-id"]
        call = self.calls.session(session_id)
        session = Session(session_id, call, organization_id=headers.get("audiohook-organization-id", ""))
        try:
            while True:
                timeout = CLOSE_WAIT_S if session.over else None
                try:
                    message = await asyncio.wait_for(connection.recv(), timeout)
                except TimeoutError:
                    break  # a disconnect the client never closed
                if isinstance(message, str):
                    replies = session.receive_text(message)
                else:
                    replies = session.receive_binary(message)
                for reply in replies:
                    await connection.send(json.dumps(reply, separators=(",", ":")))
                if session.state == State.CLOSED:
                    break
        except ConnectionClosed:
            pass
        finally:
            session.vanished()  # a session that ended properly is not affected
            await connection.close()

    async def _overlay(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        agent = _agent_of(connection.request.path)
        query = parse_qs(urlsplit(connection.request.path).query)
        try:
            since = max(0, int(query.get("since", ["0"])[0]))
        except ValueError:
            since = 0
        if since > self.feed.latest(agent):  # numbered by an instance that has since restarted
            since = 0
        items = self.feed.subscribe(agent, since)
        reader = asyncio.create_task(self._from_overlay(connection, agent), name="reading its messages")
        sender = asyncio.create_task(self._to_overlay(connection, agent, items), name="sending its events")
        try:
            # whichever ends first ends both: the overlay gone (its reader ends with the connection,
            # even while no event comes to send), or a send that failed or waited too long
            await asyncio.wait((reader, sender), return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            sender.cancel()
            ended_as = await asyncio.gather(reader, sender, return_exceptions=True)
            for task, ended in zip((reader, sender), ended_as, strict=True):
                if isinstance(ended, Exception) and not isinstance(ended, ConnectionClosed):
                    log.error("overlay of %s: %s failed: %r", agent, task.get_name(), ended)
            await items.aclose()  # no longer a subscriber, before the close handshake's wait
            await connection.close()

    async def _to_overlay(self, connection: ServerConnection, agent: str,
                          items: AsyncGenerator[FeedItem, None]) -> None:
        """The agent's events, each as it comes, until a send fails or waits too long."""
        async for item in items:
            text = json.dumps({"seq": item.seq, "event": item.event.to_dict()}, ensure_ascii=False,
                              separators=(",", ":"))
            try:
                await asyncio.wait_for(connection.send(text), self.send_timeout_s)
            except TimeoutError:
                self.slow_overlays += 1
                log.warning("overlay of %s too slow to read its events: disconnected (it resumes)", agent)
                return

    async def _from_overlay(self, connection: ServerConnection, agent: str) -> None:
        """The agent's flags, feedback and pause, into the call they belong to, one after another
        (in the order the agent took them), wherever the call is hosted."""
        async for message in connection:
            reply = await self._agent_message(agent, message)
            if reply:
                await connection.send(json.dumps({"error": reply}))

    async def _agent_message(self, agent: str, message: str | bytes) -> str | None:
        """None when the action was taken (its event comes back on the feed), else the line for
        the agent. A call this instance does not host is another's: the action goes there over
        the store's bus (`actions.ActionRelay`), and the answer comes back within its bound."""
        try:
            action = AgentAction.from_overlay(agent, message)
        except ActionError as exc:
            return str(exc)
        if self.actions is not None and not self.calls.hosts(action.call_id):
            return await self.actions.ask(action)
        return perform(self.calls, action)


def _agent_of(path: str) -> str:
    rest = urlsplit(path).path[len(EVENTS_PATH):]
    return unquote(rest.removesuffix("/events"))


async def run_server(app: AudioHookServer, listen: Listen, stop: asyncio.Event,
                     on_ready: Callable[[Server], None] | None = None) -> None:
    """Serve until `stop` is set; then stop taking sessions and close the open ones (their calls
    end as disconnected and are written)."""
    async with serve(app.handle, listen.host, listen.port, process_request=app.process_request,
                     ssl=listen.ssl_context(), max_size=MAX_MESSAGE, max_queue=64,
                     server_header="agent-assist") as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()


def ports(server: Server) -> list[int]:
    return [sock.getsockname()[1] for sock in server.sockets]


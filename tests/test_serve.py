"""`serve` in this process on localhost, with the real models and a Python AudioHook client that can
also send what the platform never should: each bad session gets the protocol's disconnect and ends
alone; a client that vanishes leaves a call ended `disconnected` with its flags stored; the agent's
overlay feed carries redacted events, resumes after a reconnect, and takes the agent's feedback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent_assist.call import CallOptions, Models
from agent_assist.events import Speaker
from agent_assist.server.app import AudioHookServer, Listen, ports, run_server
from agent_assist.server.calls import CallServer
from agent_assist.server.feed import LocalFeed
from agent_assist.server.protocol import duration
from agent_assist.server.settings import load as load_settings
from agent_assist.store import open_store
from tests.audiohook_harness import AGENT, TOKEN, PythonClient, config_text, pcmu_payload, telephone_call
from tests.conftest import SAMPLES

# a server on localhost, and calls streamed at a pace (real-time waits no test can see)
pytestmark = pytest.mark.system


class InProcess:
    """The server's parts, wired as `server.serve` wires them, on an event loop of its own thread."""

    def __init__(self, models: Models, tmp_path: Path, max_calls: int = 10) -> None:
        self.store_path, self.events_dir = tmp_path / "flags.sqlite3", tmp_path / "events"
        config = tmp_path / "config.toml"
        config.write_text(config_text(str(self.store_path), self.events_dir, max_calls))
        self.settings = load_settings(config, team="east")
        self.feed = LocalFeed()
        path = str(self.store_path)
        self.calls = CallServer(models, CallOptions(), self.settings, self.feed, lambda: open_store(path))
        self.app = AudioHookServer(self.calls, self.feed)
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._start(0)

    def _start(self, port: int) -> None:
        self._ready.clear()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(port),), daemon=True)
        self._thread.start()
        assert self._ready.wait(30)

    async def _main(self, port: int) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()

        def ready(server: Any) -> None:
            self.port = ports(server)[0]
            self._ready.set()

        await run_server(self.app, Listen("127.0.0.1", port), self._stop, ready)

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/audiohook/ws"

    def feed_uri(self, agent: str = AGENT, since: int = 0) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/agents/{agent}/events?since={since}"

    def _halt(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the server did not stop within 30 s"

    def restart(self) -> None:
        """Every connection dropped, then the same server listening again on the same port."""
        self._halt()
        self._start(self.port)

    def stop(self) -> None:
        self._halt()
        assert self.calls.wait_idle(120)

    def events(self) -> dict[str, list[dict[str, Any]]]:
        return {p.stem: [json.loads(line) for line in p.read_text().splitlines()]
                for p in sorted(self.events_dir.glob("*.jsonl"))}


@pytest.fixture
def server(call_models: Models, tmp_path: Path) -> Iterator[InProcess]:
    running = InProcess(call_models, tmp_path)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The demo call's first 26 s as stereo PCMU (the customer tells of a death at 19-21 s)."""
    wav = telephone_call(SAMPLES / "sample_call.flac", tmp_path_factory.mktemp("pcmu") / "sample.wav", 26.0)
    return pcmu_payload(wav)


async def bad_session(uri: str, how: str) -> dict[str, Any]:
    """A session that goes wrong `how`; returns the server's answer (and then closes the WebSocket,
    as the platform does)."""
    client = PythonClient(uri)
    connection = await client.connect()
    try:
        return await _goes_wrong(client, connection, how)
    finally:
        await connection.close()


async def _goes_wrong(client: PythonClient, connection: Any, how: str) -> dict[str, Any]:
    if how == "audio before opened":
        await connection.send(bytes(320))
        return await client.receive()
    if how == "unsupported format":
        opus = {"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000}
        await client.send("open", {"organizationId": client.organization_id, "conversationId": "c",
                                   "participant": {"id": "p"}, "media": [opus]})
        return await client.receive()
    assert (await client.open())["type"] == "opened"
    if how == "malformed JSON":
        await connection.send('{"version": "2", "type": ')
    elif how == "unknown type":
        await client.send("dance")
    elif how == "wrong seq":
        client.seq += 3
        await client.send("ping")
    elif how == "odd frame":
        await connection.send(bytes(321))
    elif how == "oversized frame":
        await connection.send(bytes(2 * 8000 * 5))
    reply = await client.receive()
    await client.send("close", {"reason": "error"})
    closed = await client.receive()
    assert closed["type"] == "closed"
    return reply


SAYS = {
    "malformed JSON": "not JSON", "unknown type": "unknown message type 'dance'",
    "wrong seq": "seq 5 out of order (expected 2)",
    "audio before opened": "audio before the session was opened",
    "unsupported format": "no supported media offered", "odd frame": "not whole samples",
    "oversized frame": "an audio frame of 5 s",
}


def test_each_bad_session_gets_the_protocols_error_and_the_good_call_goes_on(server: InProcess,
                                                                             speech: bytes):
    async def scenario() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        good = PythonClient(server.uri)
        await good.connect()
        assert (await good.open())["type"] == "opened"
        streaming = asyncio.create_task(good.stream(speech[: 2 * 8000 * 12], pace=0.2))
        answers = {}
        for how in SAYS:
            answers[how] = await bad_session(server.uri, how)
        await streaming
        return await good.close(), answers

    closed, answers = asyncio.run(scenario())
    assert closed["type"] == "closed"
    for how, says in SAYS.items():
        assert answers[how]["type"] == "disconnect" and answers[how]["parameters"]["reason"] == "error", how
        assert says in answers[how]["parameters"]["info"], (how, answers[how])
    assert server.calls.wait_idle(120)
    ends = {events[-1]["reason"]: events for events in server.events().values()}
    good_call = ends.pop("ended")
    assert [e for e in good_call if e["type"] == "utterance"]  # transcribed while the others failed
    errors = [events[-1]["error"] for events in server.events().values()
              if events[-1]["reason"] == "source_error"]
    assert len(errors) == 5  # the bad sessions that opened a call; the other two never had one
    assert any("seq 5 out of order" in e for e in errors)


def test_a_client_that_vanishes_mid_call_ends_it_disconnected_with_its_flags_stored(server: InProcess,
                                                                                      speech: bytes):
    async def scenario() -> None:
        client = PythonClient(server.uri)
        connection = await client.connect()
        await client.open()
        await client.stream(speech, pace=0.3)
        connection.transport.abort()  # gone: no close, no closing handshake

    asyncio.run(scenario())
    assert server.calls.wait_idle(120)
    (events,) = server.events().values()
    assert events[-1]["type"] == "call_end" and events[-1]["reason"] == "disconnected"
    with sqlite3.connect(server.store_path) as db:
        (reason,) = db.execute("SELECT end_reason FROM calls").fetchone()
        flags = [r[0] for r in db.execute("SELECT rule FROM flags")]
    assert reason == "disconnected"
    assert "acknowledge-disclosure" in flags


def test_a_server_on_moonshine_hears_two_calls_at_once_each_as_alone(moonshine_models: Models,
                                                                   tmp_path: Path, speech: bytes):
    """`serve --model moonshine-tiny-en`: the one Moonshine model is shared by the calls, and two
    sessions streaming the same audio at the same time get the same words, each its own flags."""
    server = InProcess(moonshine_models, tmp_path)

    async def call() -> None:
        client = PythonClient(server.uri)
        await client.connect()
        assert (await client.open())["type"] == "opened"
        await client.stream(speech, pace=0.2)
        assert (await client.close())["type"] == "closed"

    async def both() -> None:
        await asyncio.gather(call(), call())

    try:
        asyncio.run(both())
    finally:
        server.stop()
    logs = list(server.events().values())
    assert len(logs) == 2
    said = []
    for events in logs:
        assert events[0]["model"] == "moonshine-tiny-en" and events[-1]["reason"] == "ended"
        said.append([(e["speaker"], e["text"]) for e in events if e["type"] == "utterance"])
    assert said[0] and said[0] == said[1]
    with sqlite3.connect(server.store_path) as db:
        flags = db.execute("SELECT call_id, rule FROM flags").fetchall()
    assert {call_id for call_id, _ in flags} == {events[0]["call_id"] for events in logs}


async def subscriber(uri: str, token: str = TOKEN) -> Any:
    return await connect(uri, additional_headers={"Authorization": f"Bearer {token}"})


def test_the_agents_feed_carries_redacted_events_resumes_and_takes_feedback(server: InProcess, speech: bytes):
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        feed = await subscriber(server.feed_uri())
        client = PythonClient(server.uri)
        await client.connect()
        await client.open()
        streaming = asyncio.create_task(client.stream(speech, pace=0.3))
        got: list[dict[str, Any]] = []
        rated = False
        while True:
            item = json.loads(await asyncio.wait_for(feed.recv(), 120))
            got.append(item)
            event = item["event"]
            if event["type"] == "prompt" and not rated:
                rated = True  # the agent rates the first prompt, from the overlay
                await feed.send(json.dumps({"event": {"type": "feedback", "t": event["t"],
                                                      "call_id": event["call_id"], "rule": event["rule"],
                                                      "prompt_t": event["t"], "rating": "helpful"}}))
            if event["type"] == "flag" and event.get("raised_by") == "rules":
                break
        await feed.close()
        await streaming
        await client.close()
        resumed = await subscriber(server.feed_uri(since=got[-1]["seq"]))
        later = [json.loads(await asyncio.wait_for(resumed.recv(), 120))]
        while later[-1]["event"]["type"] != "call_end":
            later.append(json.loads(await asyncio.wait_for(resumed.recv(), 120)))
        await resumed.close()
        return got, later

    got, later = asyncio.run(scenario())
    seqs = [item["seq"] for item in got + later]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, none missed across the reconnect
    types = [item["event"]["type"] for item in got + later]
    assert types[0] == "call_start" and types[-1] == "call_end"
    agent_lines = [i["event"]["text"] for i in got + later
                   if i["event"]["type"] == "utterance" and i["event"]["speaker"] == "agent"]
    assert "[name]" in " ".join(agent_lines)  # redacted, as the store and the log are
    assert "feedback" in types
    with sqlite3.connect(server.store_path) as db:
        assert db.execute("SELECT rating FROM feedback").fetchall() == [("helpful",)]


def test_feed_tokens_are_per_agent(server: InProcess):
    async def status(uri: str, token: str) -> int:
        try:
            connection = await subscriber(uri, token)
        except InvalidStatus as exc:
            return exc.response.status_code
        await connection.close()
        return 101

    assert asyncio.run(status(server.feed_uri(), TOKEN)) == 101
    assert asyncio.run(status(server.feed_uri(), "not-the-token-at-all")) == 401
    assert asyncio.run(status(server.feed_uri("jo.b"), TOKEN)) == 401  # sam's token is not jo's


def test_an_overlay_that_leaves_while_nothing_happens_is_unsubscribed_at_once(server: InProcess):
    """An overlay closed (or gone) while its agent has no event to send: its subscription ends with
    its connection, not at the agent's next event, and holds up no stopping server."""

    async def subscribers(until: int) -> int:
        for _ in range(100):
            if server.feed.subscribers(AGENT) == until:
                break
            await asyncio.sleep(0.02)
        return server.feed.subscribers(AGENT)

    async def scenario() -> list[int]:
        connection = await subscriber(server.feed_uri())
        subscribed = await subscribers(until=1)
        await connection.close()
        return [subscribed, await subscribers(until=0)]

    assert asyncio.run(scenario()) == [1, 0]
    start = time.monotonic()
    server.restart()  # a server with no call stops at once (it waited 30 s for such a handler)
    assert time.monotonic() - start < 5


def test_an_overlay_that_stops_reading_is_dropped_and_holds_up_no_one(server: InProcess):
    """A slow reader: its events pile up until a send waits too long; it is disconnected (it would
    reconnect and resume), while another overlay of the same agent gets every event at once."""
    from agent_assist.events import Utterance

    server.app.send_timeout_s = 1.0
    # 100 kB of text that does not compress (the connection deflates): the socket's buffers fill soon
    words = base64.b64encode(os.urandom(75_000)).decode()

    async def scenario() -> float:
        # the stuck overlay's receive buffer is set small before it connects: a kernel that tunes it
        # itself may let it grow to 32 MB on loopback (net.ipv4.tcp_rmem), more than this test sends
        sock = socket.create_connection(("127.0.0.1", urlsplit(server.feed_uri()).port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        stuck = await connect(server.feed_uri(), additional_headers={"Authorization": f"Bearer {TOKEN}"},
                              max_queue=1, max_size=None, sock=sock)
        reader = await subscriber(server.feed_uri())
        slowest = 0.0
        for i in range(300):
            said = Utterance(t=float(i), call_id="c", utterance_id=f"u{i}", speaker=Speaker.AGENT,
                             start=float(i), end=i + 0.5, text=words)
            server.feed.publish(said, agent=AGENT, team="east")
            start = time.monotonic()
            await asyncio.wait_for(reader.recv(), 10)  # the other overlay keeps up, event by event
            slowest = max(slowest, time.monotonic() - start)
            if server.app.slow_overlays:
                break
        # on a fast machine the 300 may all be published before the stuck one's send has waited its
        # second: it is dropped then
        for _ in range(100):
            if server.app.slow_overlays:
                break
            await asyncio.sleep(0.1)
        await reader.close()
        stuck.transport.abort()
        return slowest

    slowest = asyncio.run(scenario())
    assert server.app.slow_overlays == 1
    assert slowest < server.app.send_timeout_s  # the other overlay was never held up by the stuck one


def test_the_platforms_pause_is_a_gap_in_call_time(server: InProcess, speech: bytes):
    """Paused by the platform for 3 s (its `resumed` says what it discarded): the call's clock jumps
    over the gap, so what is said after it is placed where it was said."""
    second = 2 * 8000  # bytes of stereo PCMU in a second

    async def scenario() -> None:
        client = PythonClient(server.uri)
        await client.connect()
        await client.open()
        await client.stream(speech[: 12 * second], pace=0.2)
        await client.send("paused")
        client.position += 3.0  # the platform's clock runs on while paused
        await client.send("resumed", {"start": duration(12.0), "discarded": "PT3S"})
        await client.stream(speech[12 * second: 22 * second], pace=0.2)
        await client.close()

    asyncio.run(scenario())
    assert server.calls.wait_idle(120)
    (events,) = server.events().values()
    pauses = [(e["t"], e["paused"], e["by"]) for e in events if e["type"] == "listening"]
    assert pauses == [(12.0, True, "platform"), (15.0, False, "platform")]
    starts = [e["start"] for e in events if e["type"] == "utterance"]
    # the turn the pause cut resumes at 15 s (the segmenter places a start to within its 32 ms window)
    assert [s for s in starts if s > 12.0] and min(s for s in starts if s > 12.0) >= 14.95
    assert events[-1]["t"] == pytest.approx(25.0, abs=0.05)  # 22 s of audio and the 3 s gap

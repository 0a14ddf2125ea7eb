"""The network overlay's feed client, headless: a served call's redacted events arrive in order, the
agent's flag and pause go back, and after the server goes away and comes back the client resumes
after the last event it had. And its import path stays clear of audio capture and the models."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent_assist.events import CallEnd, CallStart, Flag, FlagKind, Listening, Severity, Utterance
from agent_assist.feed_client import FeedClient
from agent_assist.sinks import EventList
from tests.audiohook_harness import AGENT, TOKEN, PythonClient
from tests.test_serve import InProcess, server, speech  # noqa: F401  (fixtures)


class Watched(EventList):
    """Events as they come, and a way to wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def emit(self, event) -> None:  # type: ignore[no-untyped-def]
        with self.changed:
            super().emit(event)
            self.changed.notify_all()

    def wait(self, predicate, timeout: float = 120.0) -> bool:  # type: ignore[no-untyped-def]
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.events), timeout)


def stream_call(server: InProcess, speech: bytes, *, during=None) -> None:  # noqa: F811
    async def call() -> None:
        client = PythonClient(server.uri)
        await client.connect()
        await client.open()
        await client.stream(speech[: len(speech) // 2], pace=0.2)
        if during is not None:
            await asyncio.get_running_loop().run_in_executor(None, during)
        await client.stream(speech[len(speech) // 2:], pace=0.2)
        await client.close()

    asyncio.run(call())
    assert server.calls.wait_idle(120)


@pytest.mark.system  # a server on localhost, the call streamed at a pace
def test_a_headless_subscriber_gets_the_call_and_sends_the_agents_flag_and_pause(server: InProcess,  # noqa: F811
                                                                                   speech: bytes):  # noqa: F811
    sink = Watched()
    client = FeedClient(f"ws://127.0.0.1:{server.port}", AGENT, TOKEN, sink)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    assert client.connected.wait(10)

    def agent_acts() -> None:
        assert sink.wait(lambda events: any(isinstance(e, Utterance) for e in events))
        call_id = client.call_id
        assert call_id is not None
        client.submit(Flag(t=5.0, call_id=call_id, kind=FlagKind.AGENT, severity=Severity.MEDIUM,
                           reason="raised by the agent", utterance_id="", raised_by="agent",
                           note="call me back on 0412 345 678"))
        assert client.toggle_pause() is True
        assert sink.wait(lambda events: any(isinstance(e, Listening) and e.paused for e in events), 30)
        assert client.toggle_pause() is False

    stream_call(server, speech, during=agent_acts)
    assert sink.wait(lambda events: any(isinstance(e, CallEnd) for e in events))
    client.stop()
    thread.join(10)
    events = sink.events
    assert isinstance(events[0], CallStart) and isinstance(events[-1], CallEnd)
    pauses = [(e.paused, e.by) for e in events if isinstance(e, Listening)]
    assert pauses == [(True, "overlay"), (False, "overlay")]
    (flag,) = [e for e in events if isinstance(e, Flag) and e.raised_by == "agent"]
    assert "0412" not in flag.note  # what comes back is redacted, as the store has it
    assert client.last_seq == len(events)


@pytest.mark.system  # a server on localhost, the call streamed at a pace
def test_the_subscriber_resumes_after_the_server_comes_back(server: InProcess, speech: bytes):  # noqa: F811
    sink = Watched()
    client = FeedClient(f"ws://127.0.0.1:{server.port}", AGENT, TOKEN, sink)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    assert client.connected.wait(10)
    stream_call(server, speech[: 2 * 8000 * 8])
    assert sink.wait(lambda events: any(isinstance(e, CallEnd) for e in events))
    server.restart()  # every connection drops; the overlay reconnects with back-off
    stream_call(server, speech[: 2 * 8000 * 8])
    assert sink.wait(lambda events: sum(isinstance(e, CallEnd) for e in events) == 2)
    client.stop()
    thread.join(10)
    starts = [e for e in sink.events if isinstance(e, CallStart)]
    assert len(starts) == 2 and starts[0].call_id != starts[1].call_id
    assert client.last_seq == len(sink.events)  # every event once: none missed, none again


def test_the_network_overlay_imports_no_audio_capture_and_no_model():
    code = ("import sys, agent_assist.feed_client, agent_assist.ui.app, agent_assist.ui.overlay, "
            "agent_assist.ui.bridge\n"
            "heavy = ('faster_whisper', 'ctranslate2', 'onnxruntime', 'sounddevice', 'pulsectl', "
            "'tokenizers', 'agent_assist.call', 'agent_assist.audio.live', 'agent_assist.scoring', "
            "'agent_assist.server')\n"
            "print(sorted(m for m in sys.modules if m.startswith(heavy)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

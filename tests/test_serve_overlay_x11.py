"""The real Qt overlay on a real X server (Xvfb), fed over the network: `agent-assist serve` hears a
call from an AudioHook client, and `agent-assist overlay --server … --agent …` on "the agent's
desktop" shows its prompts. What the overlay did with each prompt (`prompt_seen`, sent back over the
same connection) lands in the call's event log and the store, which proves the whole loop."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from tests.audiohook_harness import (
    AGENT,
    TOKEN,
    PythonClient,
    config_text,
    pcmu_payload,
    serve_process,
    telephone_call,
)
from tests.conftest import SAMPLES
from tests.test_cli import EXE
from tests.test_overlay_x11 import Probe, overlay_window, start_xvfb

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xprop") and shutil.which("xwininfo")),
    reason="needs Xvfb and x11-utils (apt-get install xvfb x11-utils; .ci/run installs them)")


def test_the_qt_overlay_fed_by_serve_shows_the_calls_prompts(tmp_path):
    store, events_dir = tmp_path / "flags.sqlite3", tmp_path / "events"
    config = tmp_path / "config.toml"
    config.write_text(config_text(str(store), events_dir))
    speech = pcmu_payload(telephone_call(SAMPLES / "sample_call.flac", tmp_path / "call.wav", 30.0))
    xvfb, display = start_xvfb(tmp_path / "xvfb.log")
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "AGENT_ASSIST_AGENT_TOKEN": TOKEN,
           "AGENT_ASSIST_CONFIG": str(tmp_path / "none.toml")}
    probe = Probe(env)
    overlay: subprocess.Popen[str] | None = None
    try:
        with serve_process(config) as served:
            overlay = subprocess.Popen([*EXE, "overlay", "--server", f"ws://127.0.0.1:{served.port}",
                                        "--agent", AGENT], env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)

            async def call() -> None:
                client = PythonClient(served.uri)
                await client.connect()
                await client.open()
                await client.stream(speech, pace=1.0)  # real time: the agent sees it as it happens
                await asyncio.sleep(3.0)  # the last prompts reach the screen and their account comes back
                await client.close()

            asyncio.run(call())
            found = overlay_window(env)
            assert found, "no overlay window on the X server"
            wid = found[0]
            props = subprocess.run(["xprop", "-id", wid, "WM_HINTS", "_NET_WM_STATE"], env=env,
                                   capture_output=True, text=True).stdout
            assert "_NET_WM_STATE_ABOVE" in props, props
            assert overlay.poll() is None, overlay.communicate()[1]
        (path,) = events_dir.glob("*.jsonl")
        events = [json.loads(line) for line in path.read_text().splitlines()]
        prompts = {e["rule"] for e in events if e["type"] == "prompt"}
        shown = {e["rule"] for e in events if e["type"] == "prompt_seen" and e["state"] == "shown"}
        assert "acknowledge-disclosure" in prompts
        assert shown and shown <= prompts, (shown, prompts)
        with sqlite3.connect(store) as db:
            query = "SELECT count(*) FROM prompts WHERE shown_t IS NOT NULL"
            (shown_in_store,) = db.execute(query).fetchone()
        assert shown_in_store >= 1
    finally:
        if overlay is not None and overlay.poll() is None:
            overlay.terminate()
            overlay.wait(20)
        probe.close()
        xvfb.terminate()
        xvfb.wait(10)

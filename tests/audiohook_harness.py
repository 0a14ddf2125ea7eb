"""What the `serve` tests share: calls as the platform sends them (stereo PCMU at 8 kHz), `agent-assist
serve` as a process, the vendored reference client and conformance suite, and a small Python client.

The reference client and suite are laid out with their Node packages by `make` (tests/audiohook/
setup.sh into .venv/audiohook); a test never installs anything, and skips saying so when they are absent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent_assist.audio.telephone import mulaw_wav
from agent_assist.server.protocol import duration
from agent_assist.server.signature import sign

REPO = Path(__file__).parent.parent
HARNESS = Path(os.environ.get("AGENT_ASSIST_AUDIOHOOK_HARNESS", REPO / ".venv" / "audiohook"))
API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"  # the protocol documentation's sample key and secret
SECRET_B64 = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
AGENT = "sam.k"
TOKEN = "sam-overlay-token-0123456789"


def config_text(store: str, events_dir: Path, max_calls: int = 4) -> str:
    return f"""
[store]
url = "{store}"
team = "east"

[serve]
max_calls = {max_calls}
agent_from = ["customConfig.agentId", "participant.dnis"]
events_dir = "{events_dir}"

[serve.agents]
"+1-800-555-6789" = {{ agent = "{AGENT}", team = "billing-east" }}

[serve.api_keys]
"{API_KEY}" = "{SECRET_B64}"

[serve.agent_tokens]
"{AGENT}" = "{TOKEN}"
"""


def telephone_call(source: Path, dest: Path, seconds: float | None = None) -> Path:
    """`source` (any stereo file: customer left, agent right) as the platform streams it: 8 kHz
    stereo G.711 μ-law in a WAV (format tag 7, which the reference client reads)."""
    with av.open(str(source)) as container:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=16000)
        parts = [f.to_ndarray() for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        parts += [f.to_ndarray() for f in resampler.resample(None)]
    audio = np.concatenate(parts, axis=1)
    if seconds is not None:
        audio = audio[:, : int(seconds * 16000)]
    dest.write_bytes(mulaw_wav(audio))
    return dest


def pcmu_payload(wav: Path) -> bytes:
    """The μ-law bytes of a WAV made by `telephone_call` (interleaved, external first)."""
    with av.open(str(wav)) as container:
        return b"".join(bytes(p) for p in container.demux(audio=0))


def harness_problem() -> str | None:
    """Why the reference client cannot run here, or None."""
    if not (HARNESS / "node_modules" / ".bin" / "jest").exists():
        return (f"the AudioHook reference client is not set up in {HARNESS} (make does it: "
                "tests/audiohook/setup.sh; it needs node and npm)")
    return None


def need_harness() -> Path:
    problem = harness_problem()
    if problem:
        pytest.skip(problem)
    return HARNESS


@dataclass
class Served:
    """`agent-assist serve` running as a process on a free port."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/audiohook/ws"

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def serve_process(config: Path, *args: str, timeout: float = 120.0) -> Iterator[Served]:
    env = {**os.environ, "AGENT_ASSIST_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "agent_assist.cli", "-v", "serve", "--port", "0", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert process.stderr is not None
    lines: list[str] = []
    ready = threading.Event()
    port: list[int] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            match = re.search(r"serving AudioHook on ws://[\d.]+:(\d+)/", line)
            if match:
                port.append(int(match.group(1)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout) or not port:
            raise AssertionError("serve did not start:\n" + "\n".join(lines))
        yield Served(process, port[0], lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)


def reference_client(uri: str, *args: str, api_key: str = API_KEY, secret: str = SECRET_B64,
                     timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """The vendored reference client (client/src/index.ts) run to its end. It puts its terminal in
    raw mode for Ctrl-C, so its standard input is a pseudo-terminal."""
    harness = need_harness()
    leader, follower = pty.openpty()
    try:
        return subprocess.run(
            ["node", str(harness / "node_modules" / "ts-node" / "dist" / "bin.js"), "src/index.ts",
             "--uri", uri, "--api-key", api_key, "--client-secret", secret, "--session-log-level", "debug",
             *args],
            cwd=harness / "client", stdin=follower, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "TS_NODE_TRANSPILE_ONLY": "1", "NO_COLOR": "1", "FORCE_COLOR": "0"})
    finally:
        os.close(leader)
        os.close(follower)


def conformance_suite(uri: str, pattern: str = "",
                      timeout: float = 400.0) -> subprocess.CompletedProcess[str]:
    """The vendored conformance suite (test/audiohook-api-messages.test.ts) against `uri`, for stereo
    and mono Monitor sessions (the Transcript Connector scenarios are another product's)."""
    harness = need_harness()
    (harness / "testconfig.cfg").write_text(f"""[EndPoint]
url={uri}
[Authentication]
apiKey={API_KEY}
clientSecret={SECRET_B64}
[OpenParameters]
customConfig={{"agentId": "{AGENT}"}}
language=en-US
[Features]
singleChannel=true
doubleChannel=true
transcriptionConnector=false
""")
    command = ["node", str(harness / "node_modules" / "jest" / "bin" / "jest.js"), "--verbose",
               "test/audiohook-api-messages.test.ts"]
    if pattern:
        command += ["-t", pattern]
    return subprocess.run(command, cwd=harness, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"})


def events_of(events_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Each call's event log, by call id."""
    return {p.stem: [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted(events_dir.glob("*.jsonl"))}


# -- a small client of our own, for what the reference client cannot be made to do ---------------


class PythonClient:
    """An AudioHook client that signs its handshake as the platform does and writes messages by
    hand, so a test can also write them wrong."""

    def __init__(self, uri: str, secret: str = SECRET_B64, api_key: str = API_KEY) -> None:
        self.uri = uri
        self.session_id = str(uuid.uuid4())
        self.organization_id = str(uuid.uuid4())
        self.secret = base64.b64decode(secret)
        self.api_key = api_key
        self.seq = 0
        self.serverseq = 0
        self.position = 0.0
        self.connection: ClientConnection | None = None

    def headers(self) -> dict[str, str]:
        host = self.uri.split("/")[2]
        headers = {"host": host, "audiohook-organization-id": self.organization_id,
                   "audiohook-session-id": self.session_id, "audiohook-correlation-id": str(uuid.uuid4()),
                   "x-api-key": self.api_key}
        target = "/" + self.uri.split("/", 3)[3]
        return {**headers, **sign(target, headers, self.api_key, self.secret)}

    async def connect(self) -> ClientConnection:
        headers = {k: v for k, v in self.headers().items() if k != "host"}
        self.connection = await connect(self.uri, additional_headers=headers, max_size=None)
        return self.connection

    def message(self, kind: str, parameters: dict[str, Any] | None = None) -> str:
        self.seq += 1
        return json.dumps({"version": "2", "id": self.session_id, "type": kind, "seq": self.seq,
                           "serverseq": self.serverseq, "position": duration(self.position),
                           "parameters": parameters or {}})

    async def send(self, kind: str, parameters: dict[str, Any] | None = None) -> None:
        assert self.connection is not None
        await self.connection.send(self.message(kind, parameters))

    async def receive(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.connection is not None
        reply = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.serverseq = reply["seq"]
        return reply

    async def open(self, agent: str = AGENT,
                   channels: tuple[str, ...] = ("external", "internal")) -> dict[str, Any]:
        await self.send("open", {
            "organizationId": self.organization_id, "conversationId": str(uuid.uuid4()),
            "participant": {"id": str(uuid.uuid4()), "ani": "+1-555-555-1234", "aniName": "", "dnis": ""},
            "media": [{"type": "audio", "format": "PCMU", "channels": list(channels), "rate": 8000}],
            "language": "en-US", "customConfig": {"agentId": agent}})
        return await self.receive()

    async def stream(self, payload: bytes, frame_s: float = 0.1, pace: float = 0.0) -> None:
        """Send stereo PCMU in frames (`pace`: seconds of wall clock per second of audio)."""
        assert self.connection is not None
        step = int(frame_s * 8000) * 2
        for start in range(0, len(payload), step):
            frame = payload[start:start + step]
            await self.connection.send(frame)
            self.position += len(frame) / 2 / 8000
            if pace:
                await asyncio.sleep(frame_s * pace)
            else:
                await asyncio.sleep(0)

    async def close(self) -> dict[str, Any]:
        """The session closed as the platform closes it: `close`, the server's `closed`, and then
        the WebSocket's own closing handshake (without it the server waits 10 s for one)."""
        await self.send("close", {"reason": "end"})
        while True:
            reply = await self.receive(120.0)
            if reply["type"] in ("closed", "disconnect"):
                assert self.connection is not None
                await self.connection.close()
                return reply


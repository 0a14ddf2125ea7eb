"""A private PulseAudio server with null sinks, for live-capture tests on real devices.

Each null sink is a virtual sound card: `paplay` plays a recording into it and its monitor source is
what `agent-assist run` captures, through PortAudio's ALSA `pulse` device, exactly as on an agent's
desktop. Nothing is mocked: the audio goes through the sound server in real time.
"""

from __future__ import annotations

import csv
import ctypes.util
import os
import shutil
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from agent_assist.audio.resample import StreamResampler
from tests.conftest import SAMPLES

RATE = 16000


def missing() -> str | None:
    """Why live-capture tests cannot run here, or None."""
    for tool, package in (("pulseaudio", "pulseaudio"), ("pactl", "pulseaudio-utils"),
                          ("paplay", "pulseaudio-utils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install {package}); live-capture tests need it"
    # not `import sounddevice`: PortAudio must first start once the test's sound server runs
    if ctypes.util.find_library("portaudio") is None:
        return "PortAudio is not installed (apt install libportaudio2); live-capture tests need it"
    if not Path("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so").exists() and \
            not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so")):
        return "the ALSA pulse plugin is not installed (apt install libasound2-plugins)"
    return None


class PulseServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "native"
        self.env = {**os.environ, "PULSE_SERVER": f"unix:{self.socket}"}
        server_env = {**os.environ, "HOME": str(root), "XDG_RUNTIME_DIR": str(root)}
        server_env.pop("PULSE_SERVER", None)
        self.log = (root / "pulseaudio.log").open("w")
        self.process = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             "--disable-shm", "--use-pid-file=no", "--system=no",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1"],
            env=server_env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)
        deadline = time.monotonic() + 15
        while self.pactl("info", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (root / "pulseaudio.log").read_text()[-500:]
                raise RuntimeError(f"pulseaudio did not start: {log}")
            time.sleep(0.2)
        self.sinks: dict[str, str] = {}  # sink name -> module index

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=10)

    def add_sink(self, name: str, channels: int = 2) -> str:
        out = self.pactl("load-module", "module-null-sink", f"sink_name={name}", f"channels={channels}",
                         "rate=48000", f"sink_properties=device.description={name}")
        self.sinks[name] = out.stdout.strip()
        return f"{name}.monitor"

    def remove_sink(self, name: str) -> None:
        """Unplug: the sink and its monitor vanish, and streams on them die."""
        self.pactl("unload-module", self.sinks.pop(name))

    def play(self, sink: str, path: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["paplay", "-d", sink, str(path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# -- the recordings played into the sinks --------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


def sample_turns() -> list[Turn]:
    with (SAMPLES / "sample_call.turns.tsv").open(encoding="utf-8") as f:
        return [Turn(r["speaker"], float(r["start"]), float(r["end"]), r["text"])
                for r in csv.DictReader(f, delimiter="\t")]


def sample_audio() -> dict[str, np.ndarray]:
    """The sample call's two channels at 16 kHz: left = customer, right = agent."""
    resampler = StreamResampler(RATE, 2)
    with av.open(str(SAMPLES / "sample_call.flac")) as container:
        blocks = [resampler.resample_frame(f) for f in container.decode(audio=0)]
    audio = np.concatenate([*blocks, resampler.flush()], axis=1)
    return {"customer": audio[0], "agent": audio[1]}


def write_wav(path: Path, *channels: np.ndarray) -> Path:
    length = max(len(c) for c in channels)
    data = np.zeros((length, len(channels)), np.float32)
    for i, c in enumerate(channels):
        data[: len(c), i] = c
    pcm = (np.clip(data, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path

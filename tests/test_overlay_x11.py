"""The overlay as a real window on a real X server (Xvfb): `agent-assist replay CALL --ui` over the
first 30 s of the sample call, while another X client (an editor, as the agent's CRM) holds the
keyboard focus. Once a prompt is shown, the test checks what the X server has: the window's hints
(stays on top, never takes input focus), that the editor kept its focus, and a PNG of the screen
in which the card is visible and readable."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PyQt6.QtGui import QColor, QImage

from tests.pixels import contrast
from tests.test_cli import EXE

REPO = Path(__file__).resolve().parent.parent
SCREEN_W, SCREEN_H = 1280, 800

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xprop") and shutil.which("xwininfo")),
    reason="needs Xvfb and x11-utils (apt-get install xvfb x11-utils; .ci/run installs them)")


def start_xvfb(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private X server on a display number no other server holds (-displayfd alone
    sometimes handed out a display that never answered)."""
    for number in range(90 + os.getpid() % 50, 400):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        display = f":{number}"
        with log.open("wb") as err:
            server = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SCREEN_W}x{SCREEN_H}x24",
                                       "-nolisten", "tcp"], stdout=err, stderr=err)
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            answer = subprocess.run(["xwininfo", "-root"], env={**os.environ, "DISPLAY": display},
                                    capture_output=True)
            if answer.returncode == 0:
                return server, display
            time.sleep(0.1)
        server.kill()
        server.wait()
    pytest.fail(f"Xvfb did not start: {log.read_text(errors='replace')[-300:]}")


class Probe:
    """tests/x11_probe.py: the editor that should keep focus, and a camera."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "x11_probe.py")], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.ask(None) == "ready"

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin and self.proc.stdout
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def has_focus(self) -> bool:
        return self.ask("focus") == "focus True"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def overlay_window(env: dict[str, str]) -> tuple[str, int, int, int, int] | None:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout
    for line in tree.splitlines():
        m = re.search(r'(0x[0-9a-f]+) "agent-assist": \(.*\)\s+(\d+)x(\d+)\+(-?\d+)\+(-?\d+)', line)
        if m and int(m.group(2)) > 50:
            wid, w, h, x, y = m.group(1), *(int(v) for v in m.groups()[1:])
            return wid, x, y, w, h
    return None




def test_overlay_window_on_a_real_x_server(sample_clip, tmp_path):
    server, display = start_xvfb(tmp_path / "xvfb.log")
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    probe = Probe(env)
    app: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 10
        while not probe.has_focus():
            assert time.monotonic() < deadline, "the editor never got focus"
            time.sleep(0.1)
        events = tmp_path / "events.jsonl"
        app = subprocess.Popen([*EXE, "replay", str(sample_clip), "--ui", "--events", str(events), "-q"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        # the first two cards (condolences on a partial, the acknowledgement at the turn's final)
        while not (events.exists() and events.read_text().count('"type":"prompt"') >= 2):
            assert app.poll() is None, app.communicate()[1]
            assert time.monotonic() < deadline, "no two prompts within 4 minutes"
            time.sleep(0.2)
        time.sleep(1.0)  # the bridge has signalled; let the window paint

        found = overlay_window(env)
        assert found, "no agent-assist window on the X server"
        wid, x, y, w, h = found
        props = subprocess.run(["xprop", "-id", wid, "WM_HINTS", "_NET_WM_STATE"], env=env,
                               capture_output=True, text=True).stdout
        assert "Client accepts input or input focus: False" in props, props
        assert "_NET_WM_STATE_ABOVE" in props, props
        assert probe.has_focus(), "the overlay took the keyboard focus from the editor"

        # small, on screen, out of the way
        assert 300 <= w <= SCREEN_W * 0.4 and h <= SCREEN_H * 0.75
        assert x >= 0 and x + w <= SCREEN_W and y >= 0 and y + h <= SCREEN_H
        shot = tmp_path / "overlay.png"
        assert probe.ask(f"shot {x} {y} {w} {h} {shot}") == f"saved {shot}"
        if os.environ.get("AGENT_ASSIST_SCREENSHOT"):  # refresh docs/overlay.png by hand
            shutil.copy(shot, os.environ["AGENT_ASSIST_SCREENSHOT"])
        image = QImage(str(shot))
        assert (image.width(), image.height()) == (w, h)
        counts: dict[int, int] = {}
        for py in range(0, h, 2):
            for px in range(0, w, 2):
                rgb = image.pixel(px, py) & 0xFFFFFF
                counts[rgb] = counts.get(rgb, 0) + 1
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        background = QColor(ranked[0][0])
        card = QColor(ranked[1][0])
        # the card's text: a colour covering a real share of the window, readable on the card
        text = [(QColor(rgb), n) for rgb, n in ranked[:40]
                if n / total >= 0.004 and contrast(QColor(rgb), card) >= 7.0]
        assert text, f"no text colour with 7:1 contrast on the card ({card.name()}) among {ranked[:10]}"
        assert sum(n for _, n in text) / total >= 0.02, "too little readable text on screen"
        assert len(ranked) > 50, "the window looks blank"
        assert background.name() != card.name()

        app.send_signal(signal.SIGINT)  # Ctrl-C: the call ends cleanly, the overlay goes
        _, err = app.communicate(timeout=60)
        assert app.returncode == 0, err
        kinds = [json.loads(line)["type"] for line in events.read_text().splitlines()]
        assert kinds.count("call_end") == 1  # and after it only what the overlay did with the prompts
        assert set(kinds[kinds.index("call_end") + 1:]) <= {"prompt_seen"}
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        probe.close()
        server.terminate()
        server.wait()

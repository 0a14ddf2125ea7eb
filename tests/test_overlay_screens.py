"""Every screen of the overlay as a real X server (Xvfb) shows it, in both themes: the cards with the
"+N" tray, the tray open, a family-violence crisis card beside an ordinary prompt, the settings
dialog and the Flag… dialog (empty, showing its placeholder, and typed in).

tests/overlay_screens.py puts each on screen and saves a screenshot with where each text is drawn.
Here every text is measured on the pixels: its background is the commonest colour where it is
drawn, its colour the strongest ink there, and the two must meet WCAG AA for text, 4.5:1. The
dialogs were white text on the desktop's light grey (1.05:1) before they took the overlay's look.
At the largest text size, in high contrast, every window must also fit on the screen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PyQt6.QtGui import QColor, QImage

from tests.test_overlay_x11 import SCREEN_H, SCREEN_W, contrast, start_xvfb

REPO = Path(__file__).resolve().parent.parent
AA = 4.5  # WCAG 2.x, 1.4.3: text and images of text, level AA
THEMES = {"normal": [], "high contrast": ["--high-contrast"]}
LARGEST = ["--high-contrast", "--text-pt", "24"]
SCENES = ("cards", "tray", "crisis", "settings", "flag", "flag-typed")

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xwininfo")),
    reason="needs Xvfb and x11-utils (apt-get install xvfb x11-utils; .ci/run installs them)")


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """{run: {scene: {png, window, screen, texts}}} for each theme at the default text size, and
    for high contrast at the largest."""
    root = tmp_path_factory.mktemp("screens")
    server, display = start_xvfb(root / "xvfb.log")
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "XDG_CONFIG_HOME": str(root / "config")}
    runs = {**THEMES, "largest": LARGEST}
    out: dict[str, Any] = {}
    try:
        for name, args in runs.items():
            folder = root / name.replace(" ", "-")
            folder.mkdir()
            helper = REPO / "tests" / "overlay_screens.py"
            done = subprocess.run([sys.executable, str(helper), str(folder), *args], env=env,
                                  capture_output=True, text=True, timeout=180)
            assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-2000:]
            out[name] = json.loads((folder / "scenes.json").read_text())
    finally:
        server.terminate()
        server.wait()
    return out


def measured(image: QImage, rect: list[int]) -> tuple[float, int, str, str]:
    """(contrast, ink pixels, text colour, background) of the text drawn in `rect` of `image`.

    The background is the commonest colour; ink is every pixel at least 1.5:1 from it (anti-aliased
    edges included); the text's colour is taken at the strongest tenth of the ink, so a stray pixel
    cannot pass a text that is faint everywhere else."""
    x, y, w, h = rect
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.width(), x + w), min(image.height(), y + h)
    counts = Counter(image.pixel(px, py) & 0xFFFFFF for py in range(y0, y1) for px in range(x0, x1))
    if not counts:
        return 1.0, 0, "", ""
    background = QColor(counts.most_common(1)[0][0])
    ink = sorted(((contrast(QColor(rgb), background), n, rgb) for rgb, n in counts.items()
                  if contrast(QColor(rgb), background) >= 1.5), reverse=True)
    total = sum(n for _, n, _ in ink)
    if total < 8:
        return 1.0, total, "", background.name()
    seen = 0
    for ratio, n, rgb in ink:
        seen += n
        if seen >= total / 10:
            return ratio, total, QColor(rgb).name(), background.name()
    raise AssertionError("unreachable")


def check_texts(scene: dict[str, Any], where: str) -> list[str]:
    image = QImage(scene["png"])
    assert not image.isNull(), scene["png"]
    problems = []
    for text in scene["texts"]:
        ratio, ink, colour, background = measured(image, text["rect"])
        if ratio < AA:
            problems.append(f"{where}: {text['class']} {text['name']} {text['text']!r}: {ratio:.2f}:1 "
                            f"({colour or 'nothing'} on {background}, {ink} ink pixels)")
    return problems


@pytest.mark.parametrize("theme", list(THEMES))
def test_every_text_on_every_screen_meets_wcag_aa(screens, theme):
    problems: list[str] = []
    for name in SCENES:
        scene = screens[theme][name]
        assert len(scene["texts"]) >= 2, f"{theme} {name}: no text found"
        problems += check_texts(scene, f"{theme} {name}")
    assert not problems, "\n".join(problems)


def test_the_dialogs_are_readable_at_the_largest_text_and_every_window_fits_on_the_screen(screens):
    problems: list[str] = []
    for name in SCENES:
        scene = screens["largest"][name]
        x, y, w, h = scene["window"]
        assert scene["screen"] == [SCREEN_W, SCREEN_H]
        assert x >= 0 and y >= 0 and x + w <= SCREEN_W and y + h <= SCREEN_H, f"{name} runs off the screen"
        if name in ("settings", "flag", "flag-typed"):
            problems += check_texts(scene, f"largest {name}")
    assert not problems, "\n".join(problems)
    settings = screens["largest"]["settings"]
    words = {t["text"] for t in settings["texts"]}
    assert words >= {"High contrast", "Take keyboard focus when clicked", "Close"}


@pytest.mark.parametrize("theme", list(THEMES))
def test_the_crisis_card_names_the_situation_and_its_line_is_large(screens, theme):
    texts = screens[theme]["crisis"]["texts"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for text in texts:
        by_name.setdefault(text["name"], []).append(text)
    [header] = by_name["crisisHeader"]
    assert header["text"] == "CRISIS \u00b7 FAMILY VIOLENCE"
    [line] = by_name["crisisSupport"]
    assert "1800RESPECT" in line["text"] and "Lifeline" not in line["text"]
    [prompt] = by_name["cardText"]  # one full card: the crisis; the other prompt is compact beside it
    assert line["pt"] >= prompt["pt"] + 3 and line["bold"]
    [compact] = [t for t in by_name["compactText"] if "Respect the request" in t["text"]]
    assert compact["pt"] < prompt["pt"] and not compact["bold"]
    assert [t["text"] for t in by_name["acknowledge"]] == ["Acknowledge"]
    assert any(t["text"].startswith("+3 more") for t in by_name["trayButton"])


@pytest.mark.parametrize("theme", list(THEMES))
def test_what_did_not_fit_is_behind_a_visible_tray(screens, theme):
    cards, tray = screens[theme]["cards"]["texts"], screens[theme]["tray"]["texts"]
    assert [t["text"] for t in cards if t["name"] == "trayButton"] == ["+1 more \u25be"]
    waiting = "Acknowledge what they shared before moving on. Thank them for telling you."
    assert waiting not in {t["text"] for t in cards}
    assert waiting in {t["text"] for t in tray if t["name"] == "compactText"}

"""The overlay's screens on a real X server, for tests/test_overlay_screens.py: run with DISPLAY set
to an Xvfb and QT_QPA_PLATFORM=xcb.

    python tests/overlay_screens.py OUT_DIR [--high-contrast] [--text-pt N]

It puts the overlay on screen as an agent would see it, one scene at a time (cards with a "+N" tray,
the tray open, a family-violence crisis card beside an ordinary prompt, the settings dialog, the
Flag… dialog), and for each scene saves what the X server shows (a PNG grabbed from the root
window, as any screenshot tool would) and writes OUT_DIR/scenes.json: each scene's window
rectangle, the screen's size, and every visible piece of text with the rectangle it is drawn in
(relative to the PNG), its font size and the widget's object name, so the test can measure each
text's contrast on what was actually drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QRect, QSettings
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QStyleOptionButton,
    QWidget,
)

from agent_assist.events import CallStart, Prompt, Speaker
from agent_assist.pipeline import AgentDesk
from agent_assist.sinks import EventList
from agent_assist.ui.app import ReplayControls
from agent_assist.ui.bridge import EventBridge
from agent_assist.ui.overlay import Overlay, OverlaySettings, TrendView

CALL = "screens"


def prompt(rule: str, text: str, priority: int, t: float, *, example: str = "", support: str = "",
           sticky: bool = False, principle: str = "safety",
           signals: tuple[str, ...] = ("distress",), situation: str = "") -> Prompt:
    return Prompt(t=t, call_id=CALL, rule=rule, principle=principle, text=text, example=example,
                  priority=priority, signals=signals,
                  why={"utterance_id": "u3", "text": "words", "values": {"distress": 0.9}},
                  support_line=support, sticky=sticky, situation=situation)


ORDINARY = [
    prompt("acknowledge-disclosure",
           "Acknowledge what they shared before moving on. Thank them for telling you.", 70, 10.0,
           example="Thank you for telling me. I'm so sorry you're dealing with this."),
    prompt("bereavement", "Offer condolences. Don't ask them to repeat the details.", 75, 12.0,
           example="I'm so sorry for your loss. Take all the time you need."),
    prompt("signpost-support", "Before you close, offer a support line.", 30, 14.0, principle="peer-support",
           support="Lifeline 13 11 14 · Blue Knot Helpline 1300 657 380"),
]
FAMILY_VIOLENCE = prompt(
    "crisis-family-violence", "Ask if it's safe to talk now. Don't send mail home without consent.",
    100, 20.0,
    example="Is it safe for you to talk right now? We can go at your pace.",
    support="1800RESPECT 1800 737 732 · emergency 000", sticky=True, situation="family violence",
    signals=("crisis", "crisis_violence", "customer_says", "customer_words", "text_escalation"))
MANAGER = prompt("manager-request",
                 "Respect the request. Say what you can do now, then arrange the escalation.", 58, 22.0,
                 principle="choice")


def text_rect(widget: QWidget) -> QRect | None:
    """Where `widget` draws its text, in its own coordinates (None: it shows no text)."""
    if isinstance(widget, TrendView):  # painted: its words are on the left, its lines on the right
        return QRect(0, 0, widget.width() * 2 // 5, widget.height())
    if isinstance(widget, QLabel):
        return widget.contentsRect() if widget.text() else None
    if isinstance(widget, QCheckBox):
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        style = widget.style()
        assert style is not None
        return style.subElementRect(QStyle.SubElement.SE_CheckBoxContents, option, widget)
    if isinstance(widget, QPushButton):
        return widget.rect().adjusted(4, 4, -4, -4) if widget.text() else None
    if isinstance(widget, QLineEdit):
        return widget.rect().adjusted(3, 3, -3, -3) if (widget.text() or widget.placeholderText()) else None
    return None


def text_of(widget: QWidget) -> str:
    if isinstance(widget, QLineEdit):
        return widget.text() or widget.placeholderText()
    if isinstance(widget, QLabel | QAbstractButton):
        return widget.text()
    if isinstance(widget, TrendView):
        return widget.accessibleDescription()
    return ""


def texts(window: QWidget, origin: QRect) -> list[dict[str, Any]]:
    """Every visible text in `window` with where it is drawn, relative to `origin`."""
    out = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or isinstance(widget, QAbstractSpinBox):
            continue  # a spin box's text is its own line edit's
        rect = text_rect(widget)
        if rect is not None:
            rect = rect.intersected(widget.visibleRegion().boundingRect())  # not what a scroll hides
        if rect is None or rect.isEmpty():
            continue
        top_left = widget.mapToGlobal(rect.topLeft())
        out.append({"name": widget.objectName() or type(widget).__name__, "text": text_of(widget),
                    "class": type(widget).__name__, "pt": widget.font().pointSizeF(),
                    "bold": widget.font().bold(),
                    "rect": [top_left.x() - origin.x(), top_left.y() - origin.y(), rect.width(),
                             rect.height()]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--high-contrast", action="store_true")
    parser.add_argument("--text-pt", type=int, default=11)
    args = parser.parse_args()
    app = QApplication(sys.argv)
    settings = OverlaySettings(QSettings(str(args.out / "overlay.ini"), QSettings.Format.IniFormat))
    settings.set("high_contrast", args.high_contrast)
    settings.set("text_pt", args.text_pt)
    settings.set("opacity", 1.0)  # what is drawn is what is measured; the agent may lower it
    bridge = EventBridge()
    overlay = Overlay(ReplayControls(AgentDesk([EventList()])), bridge, settings)
    overlay.show()
    screen = app.primaryScreen()
    assert screen is not None
    scenes: dict[str, Any] = {}

    def feed(*events: Any) -> None:
        for event in events:
            bridge.emit(event)
        QTest.qWait(400)  # the bridge's signal, the repaint, and the X server's copy of it

    def shoot(name: str, window: QWidget) -> None:
        QTest.qWait(400)
        frame = window.frameGeometry()
        image = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        path = args.out / f"{name}.png"
        image.save(str(path))
        geometry = screen.geometry()
        scenes[name] = {"png": str(path), "window": [frame.x(), frame.y(), frame.width(), frame.height()],
                        "screen": [geometry.width(), geometry.height()], "texts": texts(window, frame)}

    feed(CallStart(t=0.0, call_id=CALL, source="screens", channels={"left": Speaker.CUSTOMER},
                   started_at="2026-11-23T00:00:00+00:00", model="tiny.en"), *ORDINARY)
    shoot("cards", overlay)
    overlay.tray_button.click()
    QTest.qWait(200)
    shoot("tray", overlay)
    overlay.tray_button.click()
    feed(FAMILY_VIOLENCE, MANAGER)
    shoot("crisis", overlay)
    overlay.settings_button.click()
    assert overlay.settings_dialog is not None
    shoot("settings", overlay.settings_dialog)
    overlay.settings_dialog.close()
    overlay.flag_button.click()
    assert overlay.flag_dialog is not None
    shoot("flag", overlay.flag_dialog)
    overlay.flag_dialog.note.setText("asked for a manager twice")
    shoot("flag-typed", overlay.flag_dialog)
    (args.out / "scenes.json").write_text(json.dumps(scenes, indent=1))
    print("done", flush=True)


if __name__ == "__main__":
    main()

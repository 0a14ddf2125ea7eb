"""The agent's overlay: a small frameless always-on-top window that never takes keyboard focus.

It shows at most two prompt cards (crisis cards look different, stay until acknowledged and carry
the support line), a calm trend of the customer's distress and escalation over the last minute, a
listening indicator with a pause button, a button to flag the call for a supervisor, and thumbs
up / down on each card, which go back into the event stream as `feedback` events.

Everything it knows arrives through `EventBridge`; everything it does goes out through `Controls`
(the live session, or a replay). It holds no call state the pipeline needs: closing it, or a bug in
it, leaves the call running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from PyQt6.QtCore import QByteArray, QPoint, QRectF, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGraphicsOpacityEffect,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizeGrip,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from agent_assist.events import (
    CallEnd,
    CallStart,
    DeviceStatus,
    DropKind,
    Dropped,
    EndReason,
    Feedback,
    Flag,
    FlagKind,
    Listening,
    Prompt,
    PublicEvent,
    Retract,
    Severity,
    Utterance,
)
from agent_assist.ui.bridge import EventBridge
from agent_assist.ui.model import Card, CardDeck, TrendMeter, TrendReading

log = logging.getLogger(__name__)

NOTE_MAX = 200  # characters in the agent's note on a flag: one line
TICK_MS = 1000


class Controls(Protocol):
    """What the overlay can ask of the call: a `LiveSession`, or `ReplayControls`."""

    live: bool

    @property
    def paused(self) -> bool: ...

    def toggle_pause(self, by: str = "api") -> bool: ...

    def end_call(self) -> None: ...

    def submit(self, event: PublicEvent) -> None: ...


# -- settings ------------------------------------------------------------------------------------

DEFAULTS = {"opacity": 0.95, "text_pt": 11, "high_contrast": False, "accept_focus": False}


class OverlaySettings:
    """The overlay's remembered state (QSettings: per user, per machine): position and size, and
    the agent's choices."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or QSettings("agent-assist", "overlay")

    def get(self, key: str) -> object:
        default = DEFAULTS[key]
        value = self.store.value(key, default, type=type(default))
        if key == "opacity":
            return min(1.0, max(0.3, float(value)))
        if key == "text_pt":
            return min(24, max(8, int(value)))
        return value

    def set(self, key: str, value: object) -> None:
        self.store.setValue(key, value)
        self.store.sync()

    def geometry(self) -> QByteArray | None:
        value = self.store.value("geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, value: QByteArray) -> None:
        self.store.setValue("geometry", value)
        self.store.sync()


# -- look ------------------------------------------------------------------------------------------

THEMES = {
    # text on background is at least 7:1 in both (WCAG AAA); crisis is calm blue, not alarm red
    False: {"bg": "#1b2430", "fg": "#f4f6f8", "dim": "#c3cdd8", "card": "#243142", "edge": "#3a4a5e",
            "crisis": "#14324d", "crisis_edge": "#6cb8ee", "tag": "#33445a", "button": "#2f3e52",
            "distress": "#9db8d9", "escalation": "#d9c49d", "ok": "#7fc8a9", "paused": "#e3c27a"},
    True: {"bg": "#000000", "fg": "#ffffff", "dim": "#ffffff", "card": "#000000", "edge": "#ffffff",
           "crisis": "#000000", "crisis_edge": "#ffff00", "tag": "#000000", "button": "#000000",
           "distress": "#00ffff", "escalation": "#ffff00", "ok": "#00ff00", "paused": "#ffff00"},
}


def stylesheet(high_contrast: bool) -> str:
    """Colours only: sizes are set as fonts (`_sized`), which layouts measure reliably."""
    c = THEMES[high_contrast]
    return f"""
    QWidget#overlay {{ background: {c['bg']}; border: 1px solid {c['edge']}; border-radius: 8px; }}
    QWidget {{ color: {c['fg']}; }}
    QLabel#status, QLabel#tag, QLabel#why, QLabel#example {{ color: {c['dim']}; }}
    QLabel#tag {{ background: {c['tag']}; border-radius: 4px; padding: 1px 6px; }}
    QFrame#card {{ background: {c['card']}; border: 1px solid {c['edge']}; border-radius: 6px; }}
    QFrame#crisisCard {{ background: {c['crisis']}; border: 2px solid {c['crisis_edge']};
                        border-radius: 6px; }}
    QPushButton {{ background: {c['button']}; border: 1px solid {c['edge']}; border-radius: 4px;
                  padding: 2px 8px; }}
    QPushButton:checked {{ border: 2px solid {c['ok']}; }}
    QPushButton:disabled {{ color: {c['dim']}; border-style: dashed; }}
    QPushButton:focus {{ outline: 2px solid {c['crisis_edge']}; }}
    """


# sizes relative to the agent's text size, by object name
SIZES = {"cardText": (2, True), "support": (1, True), "why": (-1, False), "example": (-1, False),
         "tag": (-2, False), "status": (-2, False)}


def _sized(widget: QWidget, base_pt: int) -> None:
    delta, bold = SIZES.get(widget.objectName(), (0, False))
    font = QFont(widget.font())
    font.setPointSize(max(7, base_pt + delta))
    font.setBold(bold)
    widget.setFont(font)


# -- pieces --------------------------------------------------------------------------------------


def _button(text: str, name: str, tip: str, on_click: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    button.setToolTip(tip)
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a click never moves keyboard focus here
    button.clicked.connect(on_click)
    return button


def _label(text: str, name: str, object_name: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # transcript text is data, never markup
    label.setWordWrap(True)
    label.setAccessibleName(name)
    if object_name:
        label.setObjectName(object_name)
    return label


def why_text(prompt: Prompt) -> str:
    words = str(prompt.why.get("text", "")).strip()
    values = prompt.why.get("values") or {}
    parts = [f"They said: \u201c{words}\u201d" if words else ""]
    if values:
        parts.append("Signals: " + ", ".join(f"{k.replace('_', ' ')} {float(v):.2f}"
                                             for k, v in values.items()))
    elif prompt.signals:
        parts.append("Signals: " + ", ".join(s.replace("_", " ") for s in prompt.signals))
    return "\n".join(p for p in parts if p)


class CardView(QFrame):
    """One prompt card. A crisis card has no dismiss and no fading: only Acknowledge."""

    def __init__(self, card: Card, overlay: Overlay) -> None:
        super().__init__()
        self.card = card
        self.overlay = overlay
        prompt = card.prompt
        self.setObjectName("crisisCard" if card.sticky else "card")
        self.setAccessibleName(("Crisis prompt: " if card.sticky else "Prompt: ") + prompt.text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)

        top = QHBoxLayout()
        self.tag = _label(prompt.principle.replace("-", " "), "Principle", "tag")
        self.tag.setWordWrap(False)
        top.addWidget(self.tag)
        top.addStretch(1)
        self.why_button = _button("Why", "Show why", "What the customer said and the signals",
                                  self.toggle_why)
        self.why_button.setCheckable(True)
        top.addWidget(self.why_button)
        if not card.sticky:
            top.addWidget(_button("\u00d7", "Dismiss prompt", "Dismiss",
                                  lambda: overlay.dismiss(card)))
        layout.addLayout(top)

        self.text = _label(prompt.text, "Prompt text", "cardText")
        layout.addWidget(self.text)
        if prompt.example:
            self.example = _label(f"\u201c{prompt.example}\u201d", "Example words", "example")
            layout.addWidget(self.example)
        if card.sticky and prompt.support_line:
            self.support = _label(prompt.support_line, "Support line", "support")
            layout.addWidget(self.support)
        self.why = _label(why_text(prompt), "Why this prompt", "why")
        self.why.setVisible(False)
        layout.addWidget(self.why)

        actions = QHBoxLayout()
        self.helpful = _button("\u2713 Helpful", "Helpful", "This prompt helped",
                               lambda: overlay.rate(card, "helpful"))
        self.not_helpful = _button("\u2717 Not helpful", "Not helpful", "This prompt did not help",
                                   lambda: overlay.rate(card, "not_helpful"))
        for b in (self.helpful, self.not_helpful):
            b.setCheckable(True)
            actions.addWidget(b)
        actions.addStretch(1)
        if card.sticky:
            self.ack = _button("Acknowledge", "Acknowledge crisis prompt",
                               "I have seen this; take it away", lambda: overlay.acknowledge(card))
            actions.addWidget(self.ack)
        layout.addLayout(actions)
        self.effect = QGraphicsOpacityEffect(self)
        self.effect.setOpacity(1.0)
        self.setGraphicsEffect(self.effect)
        self.show_rating()

    def toggle_why(self) -> None:
        self.why.setVisible(not self.why.isVisible())
        self.why_button.setChecked(self.why.isVisible())
        self.overlay.fit_height()

    def show_rating(self) -> None:
        self.helpful.setChecked(self.card.rating == "helpful")
        self.not_helpful.setChecked(self.card.rating == "not_helpful")


class TrendView(QWidget):
    """Two quiet sparklines: the customer's distress and escalation over the last minute."""

    def __init__(self, overlay: Overlay) -> None:
        super().__init__()
        self.overlay = overlay
        self.readings: dict[str, TrendReading] = {}
        self.setMinimumHeight(34)
        self.setAccessibleName("Customer trend over the last minute")

    def set_readings(self, readings: dict[str, TrendReading]) -> None:
        self.readings = readings
        summary = "; ".join(f"{name} {r.word}, {r.direction}" for name, r in readings.items())
        self.setAccessibleDescription(summary)
        self.setToolTip(summary)
        self.update()

    def paintEvent(self, _event: object) -> None:
        theme = THEMES[bool(self.overlay.settings.get("high_contrast"))]
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSize(max(7, int(self.overlay.settings.get("text_pt")) - 2))  # type: ignore[call-overload]
        painter.setFont(font)
        row_h = self.height() / 2
        label_w = min(self.width() * 0.55, 190.0)
        for row, name in enumerate(("distress", "escalation")):
            reading = self.readings.get(name)
            top = row * row_h
            text = f"{name.capitalize()}: {reading.word}, {reading.direction}" if reading else \
                f"{name.capitalize()}: no reading yet"
            painter.setPen(QColor(theme["dim"]))
            painter.drawText(QRectF(0, top, label_w, row_h),
                             int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), text)
            plot = QRectF(label_w + 6, top + 3, self.width() - label_w - 8, row_h - 6)
            painter.setPen(QPen(QColor(theme["edge"]), 1))
            painter.drawLine(plot.bottomLeft(), plot.bottomRight())
            if reading and reading.points:
                end = reading.points[-1][0]
                window = self.overlay.trend.window_s
                path = QPainterPath()
                for i, (t, v) in enumerate(reading.points):
                    x = plot.left() + plot.width() * (1 - (end - t) / window)
                    y = plot.bottom() - plot.height() * min(1.0, max(0.0, v))
                    path.lineTo(x, y) if i else path.moveTo(x, y)
                painter.setPen(QPen(QColor(theme[name]), 2))
                painter.drawPath(path)
        painter.end()


class FlagDialog(QDialog):
    """Flag the call for a supervisor, with an optional one-line note. A normal window that takes
    focus, because the agent asked for it by pressing the button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle("Flag this call")
        self.setAccessibleName("Flag this call for a supervisor")
        form = QFormLayout(self)
        self.note = QLineEdit()
        self.note.setMaxLength(NOTE_MAX)
        self.note.setPlaceholderText("Optional note for your supervisor")
        self.note.setAccessibleName("Note for the supervisor")
        form.addRow("Note", self.note)
        buttons = QDialogButtonBox()
        self.flag_button = buttons.addButton("Flag call", QDialogButtonBox.ButtonRole.AcceptRole)
        self.flag_button.setAccessibleName("Flag call")  # type: ignore[union-attr]
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")  # type: ignore[union-attr]
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class SettingsDialog(QDialog):
    """Opacity, text size, high contrast, and whether the overlay may take focus when clicked."""

    def __init__(self, overlay: Overlay) -> None:
        super().__init__(overlay, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint)
        self.overlay = overlay
        self.setWindowTitle("Overlay settings")
        self.setAccessibleName("Overlay settings")
        s = overlay.settings
        form = QFormLayout(self)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(30, 100)
        self.opacity.setValue(round(float(s.get("opacity")) * 100))  # type: ignore[arg-type]
        self.opacity.setAccessibleName("Opacity")
        self.opacity.valueChanged.connect(lambda v: overlay.set_setting("opacity", v / 100))
        form.addRow("Opacity", self.opacity)
        self.text_pt = QSpinBox()
        self.text_pt.setRange(8, 24)
        self.text_pt.setValue(int(s.get("text_pt")))  # type: ignore[call-overload]
        self.text_pt.setSuffix(" pt")
        self.text_pt.setAccessibleName("Text size")
        self.text_pt.valueChanged.connect(lambda v: overlay.set_setting("text_pt", v))
        form.addRow("Text size", self.text_pt)
        self.high_contrast = QCheckBox("High contrast")
        self.high_contrast.setChecked(bool(s.get("high_contrast")))
        self.high_contrast.setAccessibleName("High contrast theme")
        self.high_contrast.toggled.connect(lambda v: overlay.set_setting("high_contrast", v))
        form.addRow(self.high_contrast)
        self.accept_focus = QCheckBox("Take keyboard focus when clicked (for keyboard shortcuts)")
        self.accept_focus.setChecked(bool(s.get("accept_focus")))
        self.accept_focus.setAccessibleName("Take keyboard focus when clicked")
        self.accept_focus.toggled.connect(lambda v: overlay.set_setting("accept_focus", v))
        form.addRow(self.accept_focus)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close settings")  # type: ignore[union-attr]
        close.rejected.connect(self.reject)
        form.addRow(close)


# -- the window ------------------------------------------------------------------------------------

SHORTCUTS = (
    ("P", "pause or resume listening"),
    ("F", "flag the call for a supervisor"),
    ("H / N", "the top card was helpful / not helpful"),
    ("W", "show why for the top card"),
    ("A or Esc", "acknowledge or dismiss the top card"),
    ("+ / -", "larger / smaller text"),
)


class OverlayState(StrEnum):
    """What the header says the overlay is doing."""

    STARTING = "starting"  # before the first call begins
    LISTENING = "listening"  # in a call (or a replay), hearing it
    PAUSED = "paused"  # the agent paused listening
    ENDED = "ended"  # the call is over


class Overlay(QWidget):
    """The window. Feed it with `bridge`; it acts through `controls`."""

    closed = pyqtSignal()

    def __init__(self, controls: Controls, bridge: EventBridge, settings: OverlaySettings | None = None,
                 deck: CardDeck | None = None) -> None:
        super().__init__()
        self.controls = controls
        self.bridge = bridge
        self.settings = settings or OverlaySettings()
        self.deck = deck or CardDeck()
        self.trend = TrendMeter()
        self.call_id = ""
        self.call_times: dict[str, float] = {}  # the last call time seen in each call (bounded)
        self.in_call = False
        self.state = OverlayState.STARTING
        self.views: dict[tuple[str, str, float], CardView] = {}
        self.flag_dialog: FlagDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._drag_from: QPoint | None = None

        self.setObjectName("overlay")
        self.setWindowTitle("agent-assist")
        self.setAccessibleName("agent-assist prompts")
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self._apply_window_flags()
        self.setMinimumSize(300, 150)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 6)
        outer.setSpacing(6)
        header = QHBoxLayout()
        self.indicator = _label("\u25cf", "Listening indicator")
        self.indicator.setWordWrap(False)
        self.state_label = _label("Starting\u2026", "Listening state")
        self.state_label.setWordWrap(False)
        header.addWidget(self.indicator)
        header.addWidget(self.state_label)
        header.addStretch(1)
        self.pause_button = _button("Pause", "Pause listening", "Pause listening (P)", self.toggle_pause)
        self.pause_button.setEnabled(bool(controls.live))
        self.pause_button.setVisible(bool(controls.live))  # a recording has nothing to pause
        self.flag_button = _button("Flag\u2026", "Flag call for supervisor",
                                   "Flag this call for your supervisor (F)", self.open_flag)
        self.flag_button.setEnabled(False)
        self.settings_button = _button("\u2699", "Settings", "Opacity, text size, contrast",
                                       self.open_settings)
        self.close_button = _button("\u00d7", "Close overlay",
                                    "Close the overlay; listening carries on in the terminal",
                                    self.close)
        for b in (self.pause_button, self.flag_button, self.settings_button, self.close_button):
            header.addWidget(b)
        outer.addLayout(header)

        self.trend_view = TrendView(self)
        outer.addWidget(self.trend_view)
        self.cards_box = QVBoxLayout()
        self.cards_box.setSpacing(6)
        outer.addLayout(self.cards_box)
        self.waiting_label = _label("", "More crisis prompts waiting", "status")
        self.waiting_label.setVisible(False)
        outer.addWidget(self.waiting_label)
        footer = QHBoxLayout()
        self.status = _label("", "Status", "status")
        footer.addWidget(self.status, 1)
        grip = QSizeGrip(self)
        grip.setAccessibleName("Resize")
        footer.addWidget(grip, 0, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight)
        outer.addLayout(footer)

        self.restyle()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry) or not self._on_a_screen():
            self.resize(380, 320)
            self._place_default()
        bridge.ready.connect(self.pull)
        bridge.problem.connect(self.show_problem)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.timer.start(TICK_MS)
        self.refresh()

    # -- window behaviour -------------------------------------------------------------------------

    def _apply_window_flags(self) -> None:
        flags = (Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                 | Qt.WindowType.WindowStaysOnTopHint)
        if not self.settings.get("accept_focus"):
            flags |= Qt.WindowType.WindowDoesNotAcceptFocus
        self.setWindowFlags(flags)

    def _on_a_screen(self) -> bool:
        from PyQt6.QtGui import QGuiApplication

        centre = self.frameGeometry().center()
        return any(s.availableGeometry().contains(centre) for s in QGuiApplication.screens())

    def _place_default(self) -> None:
        screen = self.screen()
        if screen is not None:
            area = screen.availableGeometry()
            self.move(area.right() - self.width() - 24, area.top() + 24)

    def remember_geometry(self) -> None:
        self.settings.set_geometry(self.saveGeometry())

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = event.globalPosition().toPoint() - self.frameGeometry().topLeft()

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and self._drag_from is not None:
            self.move(event.globalPosition().toPoint() - self._drag_from)

    def mouseReleaseEvent(self, _event: QMouseEvent | None) -> None:
        if self._drag_from is not None:
            self._drag_from = None
            self.remember_geometry()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self.isVisible():
            self.remember_geometry()

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.remember_geometry()
        self.timer.stop()
        super().closeEvent(event)
        self.closed.emit()

    def set_setting(self, key: str, value: object) -> None:
        self.settings.set(key, value)
        if key == "accept_focus":
            visible = self.isVisible()
            self._apply_window_flags()  # hides the window; show it again without activating it
            if visible:
                self.show()
        self.restyle()

    def restyle(self) -> None:
        self.setStyleSheet(stylesheet(bool(self.settings.get("high_contrast"))))
        self.setWindowOpacity(float(self.settings.get("opacity")))  # type: ignore[arg-type]
        self._size_fonts(self)
        self.refresh()

    def _size_fonts(self, root: QWidget) -> None:
        base = int(self.settings.get("text_pt"))  # type: ignore[call-overload]
        for widget in [root, *root.findChildren(QWidget)]:
            _sized(widget, base)

    # -- events in ---------------------------------------------------------------------------------

    def pull(self) -> None:
        """The bridge's slot: take everything pending and show it with one repaint."""
        try:
            for event in self.bridge.drain():
                self.take(event)
            self.refresh()
        except Exception as exc:  # a bug here must not take the call down with it
            log.exception("overlay failed to show an event")
            self.show_problem(f"overlay error: {exc}")

    def take(self, event: PublicEvent) -> None:
        if isinstance(event, CallStart):
            self.call_id, self.in_call = event.call_id, True
            self.state = OverlayState.PAUSED if self.state == OverlayState.PAUSED else OverlayState.LISTENING
            self.deck.new_call()
            self.trend.clear()
            self.status.setText("")
            return
        call_id = event.call_id
        self.call_times[call_id] = max(self.call_times.get(call_id, 0.0), event.t)
        while len(self.call_times) > 20:
            del self.call_times[next(iter(self.call_times))]
        if isinstance(event, Utterance):
            self.trend.add(event)
        elif isinstance(event, Prompt):
            self.deck.add(event)
        elif isinstance(event, Retract):
            self.deck.retract(event.call_id, event.rule, event.prompt_t)
        elif isinstance(event, Flag):
            who = "you" if event.raised_by == "agent" else f"{event.kind}, {event.severity}"
            self.status.setText(f"Flagged for supervisor review ({who})")
        elif isinstance(event, Listening):
            self.state = OverlayState.PAUSED if event.paused else OverlayState.LISTENING
        elif isinstance(event, DeviceStatus):
            self.status.setText(event.message)
        elif isinstance(event, Dropped):
            if event.what == DropKind.AUDIO:
                self.status.setText(f"The computer is behind: {event.seconds:.1f} s of audio skipped")
        elif isinstance(event, CallEnd) and event.call_id == self.call_id:
            self.in_call = False
            self.state = OverlayState.ENDED
            if event.error:
                self.status.setText(event.error)
            elif event.reason == EndReason.SOURCE_ERROR:
                self.status.setText("capture failed")

    def show_problem(self, message: str) -> None:
        self.status.setText(message.splitlines()[0] if message else "")

    def tick(self) -> None:
        try:
            if self.deck.expire() or self.views:
                self.refresh()
        except Exception as exc:
            log.exception("overlay tick failed")
            self.show_problem(f"overlay error: {exc}")

    # -- drawing -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        theme = THEMES[bool(self.settings.get("high_contrast"))]
        paused = self.state == OverlayState.PAUSED
        text = {OverlayState.STARTING: "Starting\u2026",
                OverlayState.LISTENING: "Listening" if self.controls.live else "Replaying",
                OverlayState.PAUSED: "Paused", OverlayState.ENDED: "Call ended"}[self.state]
        if self.in_call:
            minutes, seconds = divmod(int(self.call_t), 60)
            text += f" \u00b7 {minutes}:{seconds:02d}"
        self.state_label.setText(text)
        colour = theme["paused"] if paused else theme["ok"] if self.in_call else theme["dim"]
        self.indicator.setStyleSheet(f"color: {colour};")
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName("Resume listening" if paused else "Pause listening")
        self.flag_button.setEnabled(bool(self.call_id))
        self.trend_view.set_readings({n: self.trend.reading(n) for n in ("distress", "escalation")})

        shown = self.deck.shown
        keys = [c.key for c in shown]
        for key in list(self.views):
            if key not in keys or self.views[key].card not in shown:
                view = self.views.pop(key)
                self.cards_box.removeWidget(view)
                view.hide()
                view.deleteLater()
        for index, card in enumerate(shown):
            found = self.views.get(card.key)
            if found is None:
                view = self.views[card.key] = CardView(card, self)
                self.cards_box.insertWidget(index, view)
                self._size_fonts(view)
                view.show()
            else:
                view = found
                if self.cards_box.indexOf(view) != index:
                    self.cards_box.insertWidget(index, view)
            view.effect.setOpacity(self.deck.opacity(card))
            view.show_rating()
        waiting = self.deck.waiting
        self.waiting_label.setText(f"{waiting} more crisis prompt(s) after these" if waiting else "")
        self.waiting_label.setVisible(bool(waiting))
        self.fit_height()

    def fit_height(self) -> None:
        """The agent sets the width; the height follows the cards, so nothing is clipped and no
        empty panel covers the screen."""
        layout = self.layout()
        if layout is None:
            return
        layout.invalidate()  # fonts or cards changed: measure afresh
        layout.activate()
        height = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() \
            else layout.totalSizeHint().height()
        height = max(self.minimumHeight(), height)
        if height != self.height():
            self.resize(self.width(), height)

    # -- what the agent does -------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.controls.live:
            paused = self.controls.toggle_pause("overlay")
            self.state = OverlayState.PAUSED if paused else (OverlayState.LISTENING if self.in_call
                                                             else self.state)
            self.refresh()

    def rate(self, card: Card, rating: str) -> None:
        card.rating = rating
        self._feedback(card, rating)
        self.refresh()

    def dismiss(self, card: Card) -> None:
        if self.deck.dismiss(card):
            self.refresh()

    def acknowledge(self, card: Card) -> None:
        if self.deck.acknowledge(card):
            self._feedback(card, "acknowledged")
            self.refresh()

    def _feedback(self, card: Card, rating: str) -> None:
        p = card.prompt
        self.controls.submit(Feedback(t=self._now(p.call_id), call_id=p.call_id, rule=p.rule,
                                      prompt_t=p.t, rating=rating))

    @property
    def call_t(self) -> float:
        """The current call's clock: the last call time the overlay has seen in it."""
        return self.call_times.get(self.call_id, 0.0)

    def _now(self, call_id: str) -> float:
        return round(self.call_times.get(call_id, 0.0), 3)

    def open_flag(self) -> None:
        if not self.call_id:
            return
        dialog = self.flag_dialog = FlagDialog(self)
        call_id = self.call_id
        dialog.accepted.connect(lambda: self.flag(call_id, dialog.note.text()))
        dialog.show()

    def flag(self, call_id: str, note: str = "") -> None:
        note = " ".join(note.split())[:NOTE_MAX]
        self.controls.submit(Flag(t=self._now(call_id), call_id=call_id, kind=FlagKind.AGENT,
                                  severity=Severity.MEDIUM,
                                  reason="raised by the agent", utterance_id="", raised_by="agent",
                                  note=note))
        self.status.setText("Flagged for your supervisor")

    def open_settings(self) -> None:
        self.settings_dialog = SettingsDialog(self)
        self.settings_dialog.show()

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        """Shortcuts, for when the agent has given the overlay focus (see `SHORTCUTS`)."""
        if event is None:
            return
        key, top = event.key(), (self.deck.shown[0] if self.deck.shown else None)
        view = self.views.get(top.key) if top else None
        k = Qt.Key
        if key == k.Key_P:
            self.toggle_pause()
        elif key == k.Key_F:
            self.open_flag()
        elif key in (k.Key_H, k.Key_N) and top:
            self.rate(top, "helpful" if key == k.Key_H else "not_helpful")
        elif key == k.Key_W and view:
            view.toggle_why()
        elif key in (k.Key_A, k.Key_Escape) and top:
            (self.acknowledge if top.sticky else self.dismiss)(top)
        elif key in (k.Key_Plus, k.Key_Equal, k.Key_Minus):
            step = -1 if key == k.Key_Minus else 1
            self.set_setting("text_pt", int(self.settings.get("text_pt")) + step)  # type: ignore[call-overload]
        else:
            super().keyPressEvent(event)

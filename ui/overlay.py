"""The agent's overlay: a small frameless always-on-top window that never takes keyboard focus.

It shows the prompt cards (at most two: a crisis card alone in full with its situation named and its
support line large, until acknowledged; see `ui/cards.py`), a "+N" tray holding every prompt that
did not fit, opened with one click, a calm trend of the customer's distress and escalation over the
last minute, a listening indicator with a pause button, a button to flag the call for a supervisor,
and thumbs up / down on each card, which go back into the event stream as `feedback` events.

What the agent was shown is recorded: each prompt's first time on screen (`shown`), its wait behind
the tray (`queued`) and its dismissal (`dismissed`) go into the event stream as `prompt_seen`
events, so a review never counts a prompt the agent did not see.

Everything it knows arrives through `EventBridge`; everything it does goes out through `Controls`
(the live session, or a replay). It holds no call state the pipeline needs: closing it, or a bug in
it, leaves the call running.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Protocol

from PyQt6.QtCore import QByteArray, QPoint, QRectF, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
)
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QScrollArea, QSizeGrip, QVBoxLayout, QWidget

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
    PromptSeen,
    PromptState,
    PublicEvent,
    Retract,
    Severity,
    SupervisorNote,
    Utterance,
)
from agent_assist.ui.bridge import EventBridge
from agent_assist.ui.cards import CardView, TrayView, look_of, why_text
from agent_assist.ui.dialogs import NOTE_MAX, FlagDialog, SettingsDialog, place_near
from agent_assist.ui.look import THEMES, button, label, size_fonts, stylesheet
from agent_assist.ui.model import Card, CardDeck, TrendMeter, TrendReading

__all__ = ["NOTE_MAX", "SHORTCUTS", "Controls", "FlagDialog", "Overlay", "OverlaySettings", "OverlayState",
           "SettingsDialog", "why_text"]

log = logging.getLogger(__name__)

TICK_MS = 1000
MAX_NOTES = 2  # a supervisor's notes on screen at once, the newest first (older ones give way)


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


# -- the trend -------------------------------------------------------------------------------------


class TrendView(QWidget):
    """Two quiet sparklines: the customer's distress and escalation over the last minute."""

    def __init__(self, overlay: Overlay) -> None:
        super().__init__()
        self.overlay = overlay
        self.readings: dict[str, TrendReading] = {}
        self.setMinimumHeight(34)
        self.setAccessibleName("Customer trend over the last minute")

    def _font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSize(max(7, int(self.overlay.settings.get("text_pt")) - 2))  # type: ignore[call-overload]
        return font

    def resize_to_text(self) -> None:
        """Two rows of the trend's words at the agent's text size, whatever that is."""
        rows = QFontMetrics(self._font()).lineSpacing() + 6
        self.setMinimumHeight(max(34, 2 * rows))
        widest = max(QFontMetrics(self._font()).horizontalAdvance(f"{n}: moderate, rising")
                     for n in ("Distress", "Escalation"))
        self.setMinimumWidth(widest + 60)  # and room for the lines

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
        font = self._font()
        painter.setFont(font)
        row_h = self.height() / 2
        words = QFontMetrics(font).horizontalAdvance("Escalation: moderate, rising")
        label_w = min(self.width() - 60.0, words + 8.0)
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


# -- the window ------------------------------------------------------------------------------------

SHORTCUTS = (
    ("P", "pause or resume listening"),
    ("F", "flag the call for a supervisor"),
    ("H / N", "the top card was helpful / not helpful"),
    ("W", "show why for the top card"),
    ("T", "open or close the tray of prompts that did not fit"),
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
        self.tray_open = False
        self.tray_view: TrayView | None = None
        self.flag_dialog: FlagDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._drag_from: QPoint | None = None
        self._fitting = False  # the window is being sized to its content, not by the agent
        self.preferred_width = 380  # the width the agent gave the window; content may need more

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
        self.indicator = label("\u25cf", "Listening indicator")
        self.indicator.setWordWrap(False)
        self.state_label = label("Starting\u2026", "Listening state")
        self.state_label.setWordWrap(False)
        header.addWidget(self.indicator)
        header.addWidget(self.state_label)
        header.addStretch(1)
        self.pause_button = button("Pause", "Pause listening", "Pause listening (P)", self.toggle_pause)
        self.pause_button.setEnabled(bool(controls.live))
        self.pause_button.setVisible(bool(controls.live))  # a recording has nothing to pause
        self.flag_button = button("Flag\u2026", "Flag call for supervisor",
                                  "Flag this call for your supervisor (F)", self.open_flag)
        self.flag_button.setEnabled(False)
        self.settings_button = button("\u2699", "Settings", "Opacity, text size, contrast",
                                      self.open_settings)
        self.close_button = button("\u00d7", "Close overlay",
                                   "Close the overlay; listening carries on in the terminal", self.close)
        for b in (self.pause_button, self.flag_button, self.settings_button, self.close_button):
            header.addWidget(b)
        outer.addLayout(header)

        self.trend_view = TrendView(self)
        outer.addWidget(self.trend_view)
        # the cards and the tray scroll (without ever taking focus) only when the agent's text size
        # makes them taller than the screen: the window never runs off it and nothing overlaps
        self.body = QWidget()
        self.body.setObjectName("body")
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(6)
        # a supervisor's notes, above the prompts: a card of their own, never a prompt
        self.notes_box = QVBoxLayout()
        self.notes_box.setSpacing(6)
        body.addLayout(self.notes_box)
        self.note_views: list[QFrame] = []
        self.cards_box = QVBoxLayout()
        self.cards_box.setSpacing(6)
        body.addLayout(self.cards_box)
        tray_row = QHBoxLayout()
        tray_row.addStretch(1)
        self.tray_button = button("", "Show the prompts that did not fit",
                                  "Prompts that did not fit: open or close (T)", self.toggle_tray,
                                  "trayButton")
        self.tray_button.setCheckable(True)
        self.tray_button.setVisible(False)
        tray_row.addWidget(self.tray_button)
        body.addLayout(tray_row)
        self.tray_box = QVBoxLayout()
        body.addLayout(self.tray_box)
        self.body_scroll = QScrollArea()
        self.body_scroll.setObjectName("bodyScroll")
        self.body_scroll.setWidget(self.body)
        self.body_scroll.setWidgetResizable(True)
        self.body_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.body_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for bar in (self.body_scroll.verticalScrollBar(), self.body_scroll.horizontalScrollBar()):
            if bar is not None:
                bar.setAccessibleName("Scroll the prompts")
        outer.addWidget(self.body_scroll)
        footer = QHBoxLayout()
        self.status = label("", "Status", "status")
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
        self.preferred_width = self.width()
        # queued even from the Qt thread: the agent's own events (feedback, prompt_seen) come back
        # through the desk's sinks to this bridge while the desk holds its lock, and a direct call
        # into `pull` from there would submit again (what a refresh shows) and wait on that lock
        bridge.ready.connect(self.pull, Qt.ConnectionType.QueuedConnection)
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
            if not self._fitting:
                self.preferred_width = self.width()  # the agent's own choice (the grip)
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

    @property
    def high_contrast(self) -> bool:
        return bool(self.settings.get("high_contrast"))

    def restyle(self) -> None:
        self.setStyleSheet(stylesheet(self.high_contrast))
        self.setWindowOpacity(float(self.settings.get("opacity")))  # type: ignore[arg-type]
        self._size_fonts(self)
        self.trend_view.resize_to_text()
        self.refresh()
        for dialog in (self.flag_dialog, self.settings_dialog):
            if dialog is not None and dialog.isVisible():
                place_near(dialog, self)  # larger text: still wholly on the screen

    def _size_fonts(self, root: QWidget) -> None:
        size_fonts(root, int(self.settings.get("text_pt")))  # type: ignore[call-overload]

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
            self.tray_open = False
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
        elif isinstance(event, SupervisorNote):
            self.show_note(event)
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

    def show_note(self, note: SupervisorNote) -> None:
        """A supervisor's note (`agent-assist floor`) as a card of its own at the top, in the
        overlay's own window: shown without taking focus, until the agent dismisses it."""
        card = QFrame()
        card.setObjectName("supervisorNote")
        card.setAccessibleName("Note from your team leader: " + note.text)
        layout = QVBoxLayout(card)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(label(f"Team leader ({note.author})" if note.author else "Team leader",
                            "Note from", "noteFrom"), 1)
        row.addWidget(button("\u00d7", "Dismiss note", "Dismiss this note", lambda: self.drop_note(card)))
        layout.addLayout(row)
        layout.addWidget(label(note.text, "Note", "noteText"))
        self.note_views.insert(0, card)
        self.notes_box.insertWidget(0, card)
        self._size_fonts(card)
        card.show()
        while len(self.note_views) > MAX_NOTES:
            self.drop_note(self.note_views[-1])

    def drop_note(self, card: QFrame) -> None:
        if card in self.note_views:
            self.note_views.remove(card)
            self.notes_box.removeWidget(card)
            card.hide()
            card.deleteLater()
            self.fit_height()

    def show_problem(self, message: str) -> None:
        self.status.setText(message.splitlines()[0] if message else "")

    def tick(self) -> None:
        """Once a second: cards fade and go, and a faded card gives way to one waiting."""
        try:
            if self.deck.expire() or self.deck.cards:
                self.refresh()
        except Exception as exc:
            log.exception("overlay tick failed")
            self.show_problem(f"overlay error: {exc}")

    # -- drawing -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        theme = THEMES[self.high_contrast]
        paused = self.state == OverlayState.PAUSED
        text = {OverlayState.STARTING: "Starting\u2026",
                OverlayState.LISTENING: "Listening" if self.controls.live else "Replaying",
                # a served call's pause stops scoring and storing, and says so (`feed_client`)
                OverlayState.PAUSED: getattr(self.controls, "paused_text", "Paused"),
                OverlayState.ENDED: "Call ended"}[self.state]
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

        layout = self.deck.layout()
        beside_crisis = layout.crisis is not None
        wanted = {c.key: (c, look_of(c, beside_crisis)) for c in layout.shown}
        for key in list(self.views):
            view = self.views[key]
            if key not in wanted or view.card is not wanted[key][0] or view.look != wanted[key][1]:
                del self.views[key]
                self.cards_box.removeWidget(view)
                view.hide()
                view.deleteLater()
        for index, card in enumerate(layout.shown):
            found = self.views.get(card.key)
            if found is None:
                view = self.views[card.key] = CardView(card, self, wanted[card.key][1])
                self.cards_box.insertWidget(index, view)
                self._size_fonts(view)
                view.show()
            else:
                view = found
                if self.cards_box.indexOf(view) != index:
                    self.cards_box.insertWidget(index, view)
            view.effect.setOpacity(self.deck.opacity(card))
            view.show_rating()
        self._show_tray(layout.tray)
        self._report_seen()
        self.fit_height()

    def _show_tray(self, tray: tuple[Card, ...]) -> None:
        """The "+N" button (marked when a crisis prompt waits) and, when open, the tray's lines."""
        if not tray:
            self.tray_open = False
        crisis = any(c.sticky for c in tray)
        self.tray_button.setVisible(bool(tray))
        self.tray_button.setText(f"+{len(tray)} more" + (" \u00b7 crisis waiting" if crisis else "")
                                 + (" \u25b4" if self.tray_open else " \u25be"))
        self.tray_button.setAccessibleName(("Hide" if self.tray_open else "Show")
                                           + f" {len(tray)} more prompt(s)"
                                           + (", a crisis prompt among them" if crisis else ""))
        self.tray_button.setChecked(self.tray_open)
        if self.tray_button.property("crisis") != crisis:
            self.tray_button.setProperty("crisis", crisis)
            style = self.tray_button.style()
            if style is not None:
                style.unpolish(self.tray_button)
                style.polish(self.tray_button)
        shown = self.tray_view.cards if self.tray_view is not None else None
        if shown is not None and (not self.tray_open or shown != tray):
            old = self.tray_view
            assert old is not None
            self.tray_box.removeWidget(old)
            old.hide()
            old.deleteLater()
            self.tray_view = None
        if self.tray_open and self.tray_view is None:
            self.tray_view = TrayView(tray, self)
            self._size_fonts(self.tray_view)
            self.tray_box.addWidget(self.tray_view)
            self.tray_view.show()

    def _report_seen(self) -> None:
        """Record what the agent has been shown: only while the window is on screen."""
        if self.isVisible():
            for card, state in self.deck.seen(self.tray_open):
                self._seen(card, state)

    def fit_height(self) -> None:
        """The agent sets the width (never less than the header needs at their text size); the
        height follows the cards, so nothing is clipped and no empty panel covers the screen. The
        window stays wholly on its screen: past the screen's height the cards and the tray scroll."""
        layout = self.layout()
        screen = self.screen()
        if layout is None or screen is None:
            return
        area = screen.availableGeometry()
        body = self.body.layout()
        assert body is not None
        body.invalidate()  # fonts or cards changed: measure afresh
        body.activate()
        margins = layout.contentsMargins()
        width = min(area.width(), max(self.preferred_width, layout.totalMinimumSize().width(),
                                      body.totalMinimumSize().width() + margins.left() + margins.right()))
        inner = width - margins.left() - margins.right()
        wanted = body.totalHeightForWidth(inner) if body.hasHeightForWidth() \
            else body.totalSizeHint().height()
        self.body_scroll.setFixedHeight(wanted)
        layout.invalidate()
        layout.activate()
        height = max(self.minimumHeight(), layout.totalHeightForWidth(width) if layout.hasHeightForWidth()
                     else layout.totalSizeHint().height())
        if height > area.height():  # the body scrolls rather than the window leave the screen
            self.body_scroll.setFixedHeight(max(0, wanted - (height - area.height())))
            height = area.height()
        if (width, height) != (self.width(), self.height()):
            self._fitting = True
            try:
                self.resize(width, height)
            finally:
                self._fitting = False
        frame = self.frameGeometry()
        x = max(area.left(), min(frame.x(), area.right() + 1 - frame.width()))
        y = max(area.top(), min(frame.y(), area.bottom() + 1 - frame.height()))
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    # -- what the agent does -------------------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.controls.live:
            paused = self.controls.toggle_pause("overlay")
            self.state = OverlayState.PAUSED if paused else (OverlayState.LISTENING if self.in_call
                                                             else self.state)
            self.refresh()

    def toggle_tray(self) -> None:
        """Open or close the tray of prompts that did not fit (one click; focus stays where it was)."""
        self.tray_open = not self.tray_open and bool(self.deck.tray)
        self.refresh()

    def rate(self, card: Card, rating: str) -> None:
        card.rating = rating
        self._feedback(card, rating)
        self.refresh()

    def dismiss(self, card: Card) -> None:
        if self.deck.dismiss(card):
            self._seen(card, PromptState.DISMISSED)
            self.refresh()

    def acknowledge(self, card: Card) -> None:
        if self.deck.acknowledge(card):
            self._feedback(card, "acknowledged")
            self._seen(card, PromptState.DISMISSED)
            self.refresh()

    def _feedback(self, card: Card, rating: str) -> None:
        p = card.prompt
        self.controls.submit(Feedback(t=self._now(p.call_id), call_id=p.call_id, rule=p.rule,
                                      prompt_t=p.t, rating=rating))

    def _seen(self, card: Card, state: PromptState) -> None:
        p = card.prompt
        self.controls.submit(PromptSeen(t=self._now(p.call_id), call_id=p.call_id, rule=p.rule,
                                        prompt_t=p.t, state=state))

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
        self._open(dialog)

    def flag(self, call_id: str, note: str = "") -> None:
        note = " ".join(note.split())[:NOTE_MAX]
        self.controls.submit(Flag(t=self._now(call_id), call_id=call_id, kind=FlagKind.AGENT,
                                  severity=Severity.MEDIUM,
                                  reason="raised by the agent", utterance_id="", raised_by="agent",
                                  note=note))
        self.status.setText("Flagged for your supervisor")

    def open_settings(self) -> None:
        self.settings_dialog = SettingsDialog(self)
        self._open(self.settings_dialog)

    def _open(self, dialog: QWidget) -> None:
        """A dialog in the overlay's look and text size, wholly on the overlay's screen."""
        self._size_fonts(dialog)
        place_near(dialog, self)
        dialog.show()

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        """Shortcuts, for when the agent has given the overlay focus (see `SHORTCUTS`)."""
        if event is None:
            return
        shown = self.deck.shown
        key, top = event.key(), (shown[0] if shown else None)
        view = self.views.get(top.key) if top else None
        k = Qt.Key
        if key == k.Key_P:
            self.toggle_pause()
        elif key == k.Key_F:
            self.open_flag()
        elif key == k.Key_T:
            self.toggle_tray()
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

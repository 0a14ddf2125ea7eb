"""The overlay's two dialogs: Flag… (a note for the supervisor) and the settings. They are the only
windows that take keyboard focus, and only because the agent opened them.

Both are children of the overlay, so they take its stylesheet (`look.stylesheet`: their own
background, not the desktop's) and its text size, and `place_near` puts each wholly on the
overlay's screen: the overlay sits in a corner, and a dialog centred on it ran off the screen's edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QGuiApplication, QIcon
from PyQt6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QSlider,
    QSpinBox,
    QWidget,
)

from agent_assist.ui.look import label

if TYPE_CHECKING:
    from agent_assist.ui.overlay import Overlay

NOTE_MAX = 200  # characters in the agent's note on a flag: one line
GAP = 8  # pixels between the overlay and a dialog beside it


def place_near(window: QWidget, anchor: QWidget) -> None:
    """Size `window` to what it needs (never more than the screen) and put it beside `anchor`,
    below it where there is room, else above, else over it, always wholly on `anchor`'s screen."""
    screen = anchor.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    area = screen.availableGeometry()
    window.adjustSize()
    window.resize(window.sizeHint().expandedTo(window.minimumSizeHint()).boundedTo(area.size()))
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    w, h = min(frame.width(), area.width()), min(frame.height(), area.height())
    near = anchor.frameGeometry()
    x = near.right() + 1 - w
    y = near.bottom() + 1 + GAP
    if y + h > area.bottom() + 1:
        y = near.top() - GAP - h
    x = max(area.left(), min(x, area.right() + 1 - w))
    y = max(area.top(), min(y, area.bottom() + 1 - h))
    window.resize(w - extra_w, h - extra_h)
    window.move(x, y)


def plain_buttons(box: QDialogButtonBox) -> None:
    """Words only: the desktop's icons on Cancel and Close are drawn for a light background and are
    lost on the overlay's dark one."""
    for each in box.buttons():
        each.setIcon(QIcon())


class FlagDialog(QDialog):
    """Flag the call for a supervisor, with an optional one-line note. A normal window that takes
    focus, because the agent asked for it by pressing the button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle("Flag this call")
        self.setAccessibleName("Flag this call for a supervisor")
        form = QFormLayout(self)
        form.addRow(label("Your supervisor will see this call, with your note, after the shift.",
                          "What flagging does", "hint"))
        self.note = QLineEdit()
        self.note.setMaxLength(NOTE_MAX)
        self.note.setPlaceholderText("Optional note for your supervisor")
        self.note.setAccessibleName("Note for the supervisor")
        self.note.setMinimumWidth(300)
        form.addRow("Note", self.note)
        buttons = QDialogButtonBox()
        self.flag_button = buttons.addButton("Flag call", QDialogButtonBox.ButtonRole.AcceptRole)
        self.flag_button.setAccessibleName("Flag call")  # type: ignore[union-attr]
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")  # type: ignore[union-attr]
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        plain_buttons(buttons)
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
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(30, 100)
        self.opacity.setValue(round(float(s.get("opacity")) * 100))
        self.opacity.setAccessibleName("Opacity")
        self.opacity.setMinimumWidth(160)
        self.opacity.valueChanged.connect(lambda v: overlay.set_setting("opacity", v / 100))
        form.addRow("Opacity", self.opacity)
        self.text_pt = QSpinBox()
        self.text_pt.setRange(8, 24)
        self.text_pt.setValue(int(s.get("text_pt")))
        self.text_pt.setSuffix(" pt")
        self.text_pt.setAccessibleName("Text size")
        self.text_pt.valueChanged.connect(lambda v: overlay.set_setting("text_pt", v))
        form.addRow("Text size", self.text_pt)
        self.high_contrast = QCheckBox("High contrast")
        self.high_contrast.setChecked(bool(s.get("high_contrast")))
        self.high_contrast.setAccessibleName("High contrast theme")
        self.high_contrast.toggled.connect(lambda v: overlay.set_setting("high_contrast", v))
        form.addRow(self.high_contrast)
        self.accept_focus = QCheckBox("Take keyboard focus when clicked")
        self.accept_focus.setChecked(bool(s.get("accept_focus")))
        self.accept_focus.setAccessibleName("Take keyboard focus when clicked")
        self.accept_focus.toggled.connect(lambda v: overlay.set_setting("accept_focus", v))
        form.addRow(self.accept_focus)
        form.addRow(label("Only for the keyboard shortcuts (P, F, H, N, W, T, A, + and -). Off, the "
                          "overlay never takes the keyboard from your other windows.",
                          "About taking keyboard focus", "hint"))
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close settings")  # type: ignore[union-attr]
        close.rejected.connect(self.reject)
        plain_buttons(close)
        form.addRow(close)

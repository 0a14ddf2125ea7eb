"""How the overlay and its dialogs look: the two themes, one stylesheet for every window, font sizes
relative to the agent's text size, and the small widget helpers every view uses.

Every window the overlay opens (its cards, the "+N" tray, the settings and Flag… dialogs) is styled
here, background and text together: a dialog that took the overlay's light text over the desktop
style's light grey background was unreadable (1.05:1). tests/test_overlay_screens.py measures every
text on every screen, in both themes, from a screenshot of a real X server (WCAG AA: 4.5:1).
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QLabel, QPushButton, QWidget

THEMES = {
    # text on its background is at least 7:1 in both (WCAG AAA); crisis is calm blue, not alarm red
    False: {"bg": "#1b2430", "fg": "#f4f6f8", "dim": "#c3cdd8", "card": "#243142", "edge": "#3a4a5e",
            "crisis": "#14324d", "crisis_edge": "#6cb8ee", "crisis_band": "#6cb8ee", "crisis_ink": "#0b1a29",
            "tag": "#33445a", "button": "#2f3e52", "input": "#111922",
            "distress": "#9db8d9", "escalation": "#d9c49d", "ok": "#7fc8a9", "paused": "#e3c27a"},
    True: {"bg": "#000000", "fg": "#ffffff", "dim": "#ffffff", "card": "#000000", "edge": "#ffffff",
           "crisis": "#000000", "crisis_edge": "#ffff00", "crisis_band": "#ffff00", "crisis_ink": "#000000",
           "tag": "#000000", "button": "#000000", "input": "#000000",
           "distress": "#00ffff", "escalation": "#ffff00", "ok": "#00ff00", "paused": "#ffff00"},
}


def stylesheet(high_contrast: bool) -> str:
    """Colours only: sizes are set as fonts (`sized`), which layouts measure reliably. Dialogs and
    tooltips get their own background, so no text is drawn on a colour the desktop chose, and a line
    edit's placeholder its own colour (Qt's default, the text colour half transparent, is 4.9:1 on
    the input's background, and grey on black in high contrast)."""
    c = THEMES[high_contrast]
    return f"""
    QWidget#overlay {{ background: {c['bg']}; border: 1px solid {c['edge']}; border-radius: 8px; }}
    QDialog {{ background: {c['bg']}; }}
    QScrollArea#bodyScroll, QWidget#body {{ background: transparent; }}
    QWidget {{ color: {c['fg']}; }}
    QToolTip {{ color: {c['fg']}; background: {c['card']}; border: 1px solid {c['edge']}; }}
    QLabel#status, QLabel#tag, QLabel#why, QLabel#example, QLabel#hint {{ color: {c['dim']}; }}
    QLabel#tag {{ background: {c['tag']}; border-radius: 4px; padding: 1px 6px; }}
    QFrame#card, QFrame#compactCard, QFrame#tray {{ background: {c['card']}; border: 1px solid {c['edge']};
                                                   border-radius: 6px; }}
    QFrame#crisisCard {{ background: {c['crisis']}; border: 3px solid {c['crisis_edge']};
                        border-radius: 6px; }}
    QLabel#crisisHeader {{ background: {c['crisis_band']}; color: {c['crisis_ink']}; border-radius: 3px;
                          padding: 2px 8px; }}
    QFrame#supervisorNote {{ background: {c['card']}; border: 2px solid {c['ok']}; border-radius: 6px; }}
    QLabel#noteFrom {{ color: {c['ok']}; }}
    QLabel#support {{ color: {c['fg']}; }}
    QLabel#crisisSupport {{ color: {c['fg']}; border: 1px solid {c['crisis_edge']}; border-radius: 4px;
                           padding: 4px 8px; }}
    QPushButton {{ background: {c['button']}; border: 1px solid {c['edge']}; border-radius: 4px;
                  padding: 2px 8px; }}
    QPushButton:checked {{ border: 2px solid {c['ok']}; }}
    QPushButton:disabled {{ color: {c['dim']}; border-style: dashed; }}
    QPushButton:focus {{ outline: 2px solid {c['crisis_edge']}; }}
    QPushButton#acknowledge {{ background: {c['crisis_band']}; color: {c['crisis_ink']};
                              border: 2px solid {c['crisis_edge']}; font-weight: bold; }}
    QPushButton#trayButton[crisis="true"] {{ border: 2px solid {c['crisis_edge']}; }}
    QCheckBox::indicator {{ width: 14px; height: 14px; border: 2px solid {c['fg']}; border-radius: 3px;
                           background: {c['input']}; }}
    QCheckBox::indicator:checked {{ background: {c['crisis_band']}; border-color: {c['crisis_band']}; }}
    QLineEdit, QSpinBox {{ background: {c['input']}; color: {c['fg']}; border: 1px solid {c['edge']};
                          border-radius: 4px; padding: 2px 4px; selection-color: {c['crisis_ink']};
                          placeholder-text-color: {c['dim']};
                          selection-background-color: {c['crisis_band']}; }}
    """


# sizes relative to the agent's text size, by object name
SIZES = {"cardText": (2, True), "support": (1, True), "crisisSupport": (5, True), "crisisHeader": (1, True),
         "why": (-1, False), "example": (-1, False), "tag": (-2, False), "status": (-2, False),
         "hint": (-1, False), "acknowledge": (1, True), "compactText": (0, False),
         "noteFrom": (-1, True), "noteText": (1, False)}


def sized(widget: QWidget, base_pt: int) -> None:
    delta, bold = SIZES.get(widget.objectName(), (0, False))
    font = QFont(widget.font())
    font.setPointSize(max(7, base_pt + delta))
    font.setBold(bold)
    widget.setFont(font)


def size_fonts(root: QWidget, base_pt: int) -> None:
    for widget in [root, *root.findChildren(QWidget)]:
        sized(widget, base_pt)


def button(text: str, name: str, tip: str, on_click: Callable[[], object],
           object_name: str = "") -> QPushButton:
    made = QPushButton(text)
    made.setAccessibleName(name)
    made.setToolTip(tip)
    made.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a click never moves keyboard focus here
    if object_name:
        made.setObjectName(object_name)
    made.clicked.connect(on_click)
    return made


def label(text: str, name: str, object_name: str = "") -> QLabel:
    made = QLabel(text)
    made.setTextFormat(Qt.TextFormat.PlainText)  # transcript text is data, never markup
    made.setWordWrap(True)
    made.setAccessibleName(name)
    if object_name:
        made.setObjectName(object_name)
    return made

"""The prompt cards and the "+N" tray, as widgets. What goes where is decided in `model.CardDeck`;
these only draw a card and pass the agent's clicks to the overlay (`CardActions`).

* An ordinary card: the principle as a small tag, the prompt, words the agent could use, a support
  line when the rule has one, Why, Helpful / Not helpful and a dismiss button.
* A crisis card: a header band naming the situation ("CRISIS · FAMILY VIOLENCE"), the prompt, the
  support line large in its own frame, and Acknowledge: no dismiss, no fading; it stays until acknowledged.
* A compact card: an ordinary prompt beside a crisis card, one line of smaller weight with dismiss, so the
  crisis is never one of two equal cards.
* The tray: one line per prompt waiting behind "+N" (crisis prompts with their support line and
  Acknowledge), opened and closed by the "+N" button with one click, inside the overlay's own window:
  it never takes focus.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from PyQt6.QtWidgets import (
    QFrame,
    QGraphicsOpacityEffect,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from agent_assist.events import Prompt
from agent_assist.ui.look import button, label
from agent_assist.ui.model import Card, crisis_header


class CardActions(Protocol):
    """What a card's buttons ask of the overlay."""

    def rate(self, card: Card, rating: str) -> None: ...

    def dismiss(self, card: Card) -> None: ...

    def acknowledge(self, card: Card) -> None: ...

    def fit_height(self) -> None: ...


class CardLook(StrEnum):
    FULL = "full"  # an ordinary card with room of its own
    CRISIS = "crisis"  # the one crisis card on screen
    COMPACT = "compact"  # an ordinary card beside a crisis card


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


def support_lines(support_line: str) -> str:
    """A support line as a crisis card shows it: each service on a line of its own, never broken
    inside a number ("1800RESPECT 1800 737 732 · emergency 000" on two lines, not "1800 / 737")."""
    services = [part.strip() for part in support_line.split("\u00b7") if part.strip()]
    return "\n".join("\u260e\u00a0" + part.replace(" ", "\u00a0") for part in services)


def look_of(card: Card, beside_crisis: bool) -> CardLook:
    if card.sticky:
        return CardLook.CRISIS
    return CardLook.COMPACT if beside_crisis else CardLook.FULL


class CardView(QFrame):
    """One prompt card, in one of three looks (`CardLook`)."""

    def __init__(self, card: Card, actions: CardActions, look: CardLook) -> None:
        super().__init__()
        self.card = card
        self.owner = actions
        self.look = look
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        self.example: QLabel | None = None
        self.support: QLabel | None = None
        self.header: QLabel | None = None
        self.why_button: QPushButton | None = None
        self.helpful: QPushButton | None = None
        self.not_helpful: QPushButton | None = None
        self.ack: QPushButton | None = None
        if look == CardLook.COMPACT:
            self._compact(layout)
        else:
            self._full(layout, crisis=look == CardLook.CRISIS)
        self.effect = QGraphicsOpacityEffect(self)
        self.effect.setOpacity(1.0)
        self.setGraphicsEffect(self.effect)
        self.show_rating()

    def _compact(self, layout: QVBoxLayout) -> None:
        card = self.card
        self.setObjectName("compactCard")
        self.setAccessibleName("Prompt: " + card.prompt.text)
        layout.setContentsMargins(8, 4, 8, 4)
        row = QHBoxLayout()
        words = card.prompt.text + (f"\n{card.prompt.support_line}" if card.prompt.support_line else "")
        self.text = label(words, "Prompt text", "compactText")
        row.addWidget(self.text, 1)
        row.addWidget(button("\u00d7", "Dismiss prompt", "Dismiss", lambda: self.owner.dismiss(card)))
        layout.addLayout(row)
        self.why = label(why_text(card.prompt), "Why this prompt", "why")
        self.why.setVisible(False)

    def _full(self, layout: QVBoxLayout, crisis: bool) -> None:
        card, prompt, actions = self.card, self.card.prompt, self.owner
        self.setObjectName("crisisCard" if crisis else "card")
        top = QHBoxLayout()
        if crisis:
            self.header = label(crisis_header(card.situation), "Crisis", "crisisHeader")
            self.header.setWordWrap(False)
            top.addWidget(self.header, 1)
            about = card.situation
            self.setAccessibleName(f"Crisis prompt: {about + '. ' if about else ''}{prompt.text}")
        else:
            self.setAccessibleName("Prompt: " + prompt.text)
            self.tag = label(prompt.principle.replace("-", " "), "Principle", "tag")
            self.tag.setWordWrap(False)
            top.addWidget(self.tag)
            top.addStretch(1)
        why_button = self.why_button = button("Why", "Show why", "What the customer said and the signals",
                                              self.toggle_why)
        why_button.setCheckable(True)
        top.addWidget(why_button)
        if not crisis:
            top.addWidget(button("\u00d7", "Dismiss prompt", "Dismiss", lambda: actions.dismiss(card)))
        layout.addLayout(top)

        self.text = label(prompt.text, "Prompt text", "cardText")
        layout.addWidget(self.text)
        if prompt.example:
            self.example = label(f"\u201c{prompt.example}\u201d", "Example words", "example")
            layout.addWidget(self.example)
        if prompt.support_line:
            self.support = label(support_lines(prompt.support_line) if crisis else prompt.support_line,
                                 "Support line", "crisisSupport" if crisis else "support")
            layout.addWidget(self.support)
        self.why = label(why_text(prompt), "Why this prompt", "why")
        self.why.setVisible(False)
        layout.addWidget(self.why)

        row = QHBoxLayout()
        self.helpful = helpful = button("\u2713 Helpful", "Helpful", "This prompt helped",
                                        lambda: actions.rate(card, "helpful"))
        self.not_helpful = not_helpful = button("\u2717 Not helpful", "Not helpful",
                                                "This prompt did not help",
                                                lambda: actions.rate(card, "not_helpful"))
        for b in (helpful, not_helpful):
            b.setCheckable(True)
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        if crisis:  # a row of its own: the one thing this card asks of the agent
            self.ack = ack = button("Acknowledge", "Acknowledge crisis prompt",
                                    "I have seen this; take it away", lambda: actions.acknowledge(card),
                                    "acknowledge")
            layout.addWidget(ack)

    def toggle_why(self) -> None:
        self.why.setVisible(not self.why.isVisible())
        if self.why_button is not None:
            self.why_button.setChecked(self.why.isVisible())
        self.owner.fit_height()

    def show_rating(self) -> None:
        if self.helpful is not None and self.not_helpful is not None:
            self.helpful.setChecked(self.card.rating == "helpful")
            self.not_helpful.setChecked(self.card.rating == "not_helpful")


def _for(action: Callable[[Card], None], card: Card) -> Callable[[], None]:
    """A button's action on one card (a lambda with a default argument would be given the button's
    `checked` flag by Qt in the card's place)."""
    return lambda: action(card)


class TrayView(QFrame):
    """The prompts behind "+N", one line each, newest first (crisis prompts first, in full words)."""

    def __init__(self, cards: tuple[Card, ...], actions: CardActions) -> None:
        super().__init__()
        self.setObjectName("tray")
        self.setAccessibleName("Prompts waiting")
        self.cards = cards
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        self.rows: list[QWidget] = []
        for card in cards:
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            words = card.prompt.text
            if card.sticky:
                words = f"{crisis_header(card.situation)}: {words}"
            if card.prompt.support_line:
                words += f"\n\u260e {card.prompt.support_line}"
            text = label(words, "Waiting prompt", "compactText")
            line.addWidget(text, 1)
            if card.sticky:
                line.addWidget(button("Acknowledge", "Acknowledge crisis prompt", "I have seen this",
                                      _for(actions.acknowledge, card)))
            else:
                line.addWidget(button("\u00d7", "Dismiss prompt", "Dismiss", _for(actions.dismiss, card)))
            layout.addWidget(row)
            self.rows.append(row)

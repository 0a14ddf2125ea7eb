"""What the overlay shows, without Qt: the prompt cards and the customer's trend over the last minute.

Kept apart from the widgets so the rules of the display (how many cards, in what order, when they
fade, what a crisis card needs) are plain Python, tested on their own, and the widgets only draw.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_assist.events import Prompt, Utterance

MAX_CARDS = 2  # an agent glances; more than two is a list, not a prompt
FADE_AFTER_S = 20.0  # an ordinary card starts to fade this long after it appeared …
GONE_AFTER_S = 35.0  # … and is gone after this (crisis cards stay until acknowledged)
FADED_OPACITY = 0.4
RETRACTED_GONE_S = 3.0  # a withdrawn card fades out over this long, so the agent sees it go
TREND_WINDOW_S = 60.0  # call time the trend indicator covers
TREND_CHANGE = 0.15  # a change over the window smaller than this is "steady"


@dataclass(eq=False)
class Card:
    """One prompt on screen. `seq` orders arrivals; `shown_at` is the wall clock (fading is about
    what the agent has had time to read, not call time)."""

    prompt: Prompt
    shown_at: float
    seq: int
    rating: str | None = None  # the agent's feedback, once given
    retracted_at: float | None = None  # withdrawn: the final transcript no longer supported it

    @property
    def sticky(self) -> bool:
        return self.prompt.sticky

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.prompt.call_id, self.prompt.rule, self.prompt.t)


class CardDeck:
    """The prompt cards: at most `MAX_CARDS` shown, newest highest-priority first.

    Order: crisis (sticky) cards first, then by priority, then newest first. A prompt from a rule
    already on screen for the same call replaces that card. When a card must go to make room, the
    lowest-ranked ordinary card goes; a crisis card only ever goes when acknowledged, and crisis
    cards beyond the first `MAX_CARDS` wait, in order, for room.
    """

    def __init__(self, now: Callable[[], float] = time.monotonic, max_cards: int = MAX_CARDS,
                 fade_after_s: float = FADE_AFTER_S, gone_after_s: float = GONE_AFTER_S) -> None:
        self.now = now
        self.max_cards = max_cards
        self.fade_after_s = fade_after_s
        self.gone_after_s = gone_after_s
        self._cards: list[Card] = []
        self._seq = itertools.count()

    def add(self, prompt: Prompt) -> Card:
        self._cards = [c for c in self._cards
                       if not (c.prompt.call_id == prompt.call_id and c.prompt.rule == prompt.rule)]
        card = Card(prompt, self.now(), next(self._seq))
        self._cards.append(card)
        self._cards.sort(key=lambda c: (not c.sticky, -c.prompt.priority, -c.seq))
        ordinary_room = max(0, self.max_cards - sum(c.sticky for c in self._cards))
        ordinary = [c for c in self._cards if not c.sticky]
        for extra in ordinary[ordinary_room:]:
            self._cards.remove(extra)
        return card

    @property
    def shown(self) -> list[Card]:
        return self._cards[: self.max_cards]

    @property
    def waiting(self) -> int:
        """Crisis cards not yet on screen for lack of room."""
        return max(0, len(self._cards) - self.max_cards)

    def retract(self, call_id: str, rule: str, prompt_t: float) -> Card | None:
        """A prompt withdrawn by the rules (its partial misheard): its card fades out and goes.
        Crisis cards are never withdrawn; they wait for the agent."""
        for card in self._cards:
            if card.key == (call_id, rule, prompt_t) and not card.sticky and card.retracted_at is None:
                card.retracted_at = self.now()
                return card
        return None

    def dismiss(self, card: Card) -> bool:
        """Take an ordinary card away. A crisis card needs `acknowledge`; returns False for one."""
        if card.sticky or card not in self._cards:
            return False
        self._cards.remove(card)
        return True

    def acknowledge(self, card: Card) -> bool:
        if card not in self._cards:
            return False
        self._cards.remove(card)
        return True

    def new_call(self) -> None:
        """A new call began: the last call's ordinary prompts no longer apply; an unacknowledged
        crisis card stays until the agent has seen it."""
        self._cards = [c for c in self._cards if c.sticky]

    def opacity(self, card: Card) -> float:
        if card.sticky:
            return 1.0
        if card.retracted_at is not None:
            gone = (self.now() - card.retracted_at) / RETRACTED_GONE_S
            return max(0.0, FADED_OPACITY * (1.0 - gone))
        age = self.now() - card.shown_at
        if age <= self.fade_after_s:
            return 1.0
        span = max(1e-6, self.gone_after_s - self.fade_after_s)
        return max(FADED_OPACITY, 1.0 - (1.0 - FADED_OPACITY) * (age - self.fade_after_s) / span)

    def expire(self) -> list[Card]:
        """Remove ordinary cards past `gone_after_s`; returns them."""
        now = self.now()
        gone = [c for c in self._cards if not c.sticky and (
            now - c.shown_at >= self.gone_after_s
            or (c.retracted_at is not None and now - c.retracted_at >= RETRACTED_GONE_S))]
        for card in gone:
            self._cards.remove(card)
        return gone


@dataclass(frozen=True)
class TrendReading:
    """One signal over the window: its latest smoothed level, a word for it and for its direction."""

    level: float
    word: str  # "low", "moderate" or "high"
    direction: str  # "rising", "steady" or "easing"
    points: tuple[tuple[float, float], ...]  # (call time, score) in the window, oldest first


def level_word(level: float) -> str:
    return "high" if level >= 0.65 else "moderate" if level >= 0.35 else "low"


@dataclass
class TrendMeter:
    """Distress and escalation of the customer's scored turns over the last `window_s` of call time."""

    window_s: float = TREND_WINDOW_S
    _points: dict[str, deque[tuple[float, float]]] = field(
        default_factory=lambda: {"distress": deque(), "escalation": deque()})
    _levels: dict[str, float] = field(default_factory=lambda: {"distress": 0.0, "escalation": 0.0})

    def add(self, utterance: Utterance) -> bool:
        scores = utterance.scores
        if scores is None:
            return False
        for name, value in (("distress", scores.distress), ("escalation", scores.escalation)):
            self._points[name].append((utterance.end, value))
            self._levels[name] = scores.trend.get(name, value)
        self.advance(utterance.end)
        return True

    def advance(self, t: float) -> None:
        for points in self._points.values():
            while points and points[0][0] < t - self.window_s:
                points.popleft()

    def clear(self) -> None:
        for points in self._points.values():
            points.clear()
        self._levels = {"distress": 0.0, "escalation": 0.0}

    def reading(self, name: str) -> TrendReading:
        points = tuple(self._points[name])
        level = self._levels[name] if points else 0.0
        direction = "steady"
        if len(points) >= 2:
            change = points[-1][1] - points[0][1]
            # the smoothed level says where the call is; the ends of the window say which way
            if change >= TREND_CHANGE and level >= points[0][1]:
                direction = "rising"
            elif change <= -TREND_CHANGE and level <= points[0][1]:
                direction = "easing"
        return TrendReading(level, level_word(level), direction, points)

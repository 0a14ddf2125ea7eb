"""What the overlay shows, without Qt: the prompt cards and the customer's trend over the last minute.

Kept apart from the widgets so the rules of the display (which cards are on screen and which wait
behind the "+N" tray, when they fade, what a crisis card is about and needs, what the agent has been
shown) are plain Python, tested on their own, and the widgets only draw.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_assist.events import Prompt, PromptState, Utterance

MAX_CARDS = 2  # an agent glances; more than two is a list, not a prompt
FADE_AFTER_S = 20.0  # an ordinary card starts to fade this long after it was first shown …
GONE_AFTER_S = 35.0  # … and is gone after this (crisis cards stay until acknowledged); a prompt that
# waited this long behind the tray without being shown has lapsed too
FADED_OPACITY = 0.4
RETRACTED_GONE_S = 3.0  # a withdrawn card fades out over this long, so the agent sees it go
TREND_WINDOW_S = 60.0  # call time the trend indicator covers
TREND_CHANGE = 0.15  # a change over the window smaller than this is "steady"

def situation_of(prompt: Prompt) -> str:
    """The situation a crisis prompt is about ("family violence", as the rules named it: the crisis
    rule's `situation`, or for the warm transfer the call's earlier crisis), or "" for an ordinary
    prompt or a crisis of no named kind."""
    return prompt.situation if prompt.sticky else ""


def crisis_header(situation: str) -> str:
    """A crisis card's header: "CRISIS · FAMILY VIOLENCE", or "CRISIS" when the kind is not known."""
    return f"CRISIS \u00b7 {situation.upper()}" if situation else "CRISIS"


@dataclass(eq=False)
class Card:
    """One prompt the overlay holds. `seq` orders arrivals; `arrived_at` and `shown_at` (first on the
    agent's screen, None until then) are the wall clock: fading is about what the agent has had time to
    read, not call time. `queued` says the prompt waited behind the tray (reported once)."""

    prompt: Prompt
    arrived_at: float
    seq: int
    situation: str = ""  # a crisis card's situation (`situation_of`)
    shown_at: float | None = None
    queued: bool = False
    rating: str | None = None  # the agent's feedback, once given
    retracted_at: float | None = None  # withdrawn: the final transcript no longer supported it

    @property
    def sticky(self) -> bool:
        return self.prompt.sticky

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.prompt.call_id, self.prompt.rule, self.prompt.t)


@dataclass(frozen=True)
class Layout:
    """What is on screen: at most one crisis card, in full; the ordinary cards beside it (compact while
    a crisis card is up, so a crisis is never one of two equal cards); and the tray, behind "+N",
    of everything else the agent has not dismissed: crisis cards first, then the newest first."""

    crisis: Card | None
    cards: tuple[Card, ...]
    tray: tuple[Card, ...]

    @property
    def shown(self) -> list[Card]:
        return [c for c in (self.crisis, *self.cards) if c is not None]


class CardDeck:
    """The prompt cards: which are on screen, which wait behind the "+N" tray, and when they go.

    Nothing is dropped unseen without a trace: a prompt with no room waits in the tray (the agent
    opens it with one click) and is shown as soon as it has a card.

    * A fresh prompt always shows: the newest prompt, until it has been on screen `fade_after_s`,
      always has a card.
    * Stale cards give way by age as well as priority: the other card goes to the highest priority
      among the cards not yet faded; a faded card keeps its place only while nothing fresher waits.
    * A crisis card (sticky) is shown alone in full, the highest priority first (the most specific
      playbook: family violence before danger before self-harm before a warm transfer, as the rules
      rank them), then the newest; it goes only when acknowledged. Further crisis cards wait at the
      head of the tray, which says so, in that order, for the one shown to be acknowledged.
    * A prompt from a rule already held for the same call replaces that card.
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
        card = Card(prompt, self.now(), next(self._seq), situation_of(prompt))
        self._cards.append(card)
        return card

    def _stale(self, card: Card, now: float) -> bool:
        return card.shown_at is not None and now - card.shown_at >= self.fade_after_s

    def layout(self) -> Layout:
        now = self.now()
        crisis = sorted((c for c in self._cards if c.sticky), key=lambda c: (-c.prompt.priority, -c.seq))
        lead = crisis[0] if crisis else None
        ordinary = [c for c in self._cards if not c.sticky
                    and (c.retracted_at is None or c.shown_at is not None)]
        room = self.max_cards - (1 if lead else 0)

        def rank(c: Card) -> tuple[bool, bool, int, int]:
            return (c.retracted_at is not None, self._stale(c, now), -c.prompt.priority, -c.seq)

        ranked = sorted(ordinary, key=rank)
        on_screen: list[Card] = []
        fresh = [c for c in ordinary if c.retracted_at is None and not self._stale(c, now)]
        if fresh and room:
            on_screen.append(max(fresh, key=lambda c: c.seq))
        for card in ranked:
            if len(on_screen) >= room:
                break
            if card not in on_screen:
                on_screen.append(card)
        on_screen.sort(key=rank)
        waiting = [c for c in ordinary if c not in on_screen and c.retracted_at is None]
        tray = (*crisis[1:], *sorted(waiting, key=lambda c: -c.seq))
        return Layout(lead, tuple(on_screen), tray)

    @property
    def shown(self) -> list[Card]:
        """The cards on screen, the crisis card first."""
        return self.layout().shown

    @property
    def tray(self) -> tuple[Card, ...]:
        return self.layout().tray

    @property
    def cards(self) -> list[Card]:
        """Every card held, in order of arrival."""
        return list(self._cards)

    def seen(self, tray_open: bool) -> list[tuple[Card, PromptState]]:
        """After the screen shows `layout()`: each card first on screen now (`shown`), and each card
        that has begun to wait behind the tray unseen (`queued`). A line of the open tray counts as
        shown: the agent has it in front of them."""
        now, layout, changes = self.now(), self.layout(), []
        for card in layout.tray:
            if card.shown_at is None and not card.queued and not tray_open:
                card.queued = True
                changes.append((card, PromptState.QUEUED))
        for card in (*layout.shown, *(layout.tray if tray_open else ())):
            if card.shown_at is None:
                card.shown_at = now
                changes.append((card, PromptState.SHOWN))
        return changes

    def retract(self, call_id: str, rule: str, prompt_t: float) -> Card | None:
        """A prompt withdrawn by the rules (its partial misheard): a card on screen fades out and goes,
        one still waiting goes at once. Crisis cards are never withdrawn; they wait for the agent."""
        for card in self._cards:
            if card.key == (call_id, rule, prompt_t) and not card.sticky and card.retracted_at is None:
                card.retracted_at = self.now()
                if card.shown_at is None:
                    self._cards.remove(card)
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
        if card.shown_at is None:
            return 1.0
        age = self.now() - card.shown_at
        if age <= self.fade_after_s:
            return 1.0
        span = max(1e-6, self.gone_after_s - self.fade_after_s)
        return max(FADED_OPACITY, 1.0 - (1.0 - FADED_OPACITY) * (age - self.fade_after_s) / span)

    def expire(self) -> list[Card]:
        """Remove ordinary cards past `gone_after_s` on screen (or waiting unseen), and withdrawn
        cards once faded out; returns them."""
        now = self.now()
        gone = [c for c in self._cards if not c.sticky and (
            now - (c.shown_at if c.shown_at is not None else c.arrived_at) >= self.gone_after_s
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

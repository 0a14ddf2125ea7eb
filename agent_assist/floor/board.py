"""The live board's state, without a web server: the calls under way and the urgent flags, fed from
the store once (`load`) and then by the event bus (`apply`), read back per viewer (`rows`, `alerts`)
and for the wallboard (`counts`). Plain Python, so a test can drive it with scripted events.

What it holds is what the floor may show: each call's agent, team, clock, the customer's distress
and escalation over the last turns, the latest prompt (words a rule author wrote), and its flags.
Never the customer's words (the call's own page shows those, and writes the view to the audit),
never a score of the agent. A rule's wellbeing check-in with an agent is shown only to a viewer who
leads that agent's team.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent_assist.bus import BusMessage
from agent_assist.events import (
    CallEnd,
    CallStart,
    Flag,
    FlagKind,
    Prompt,
    Retract,
    Severity,
    SupervisorNote,
    Utterance,
)
from agent_assist.store.floor import SPARK_POINTS, AlertRow, Claim, LiveCallRow, LiveFlag

#: An urgent flag stays on the board's alert list this long after it was raised.
ALERT_S = 3600.0
#: An ended call stays on the board this long, marked ended, so nobody wonders where it went.
ENDED_S = 60.0


def urgent(kind: str, severity: str) -> bool:
    """A flag that goes to the top of the board with a banner: a crisis, or high or critical."""
    return kind == FlagKind.CRISIS or severity in (Severity.HIGH, Severity.CRITICAL)


@dataclass
class LiveCall:
    call_id: str
    agent: str
    team: str
    started_at: str
    call_t: float = 0.0
    seen_at: float = 0.0  # the board's clock when its latest event came (for the page's ticking clock)
    points: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))
    prompt: str = ""
    prompt_key: tuple[str, float] = ("", 0.0)
    flags: dict[int, LiveFlag] = field(default_factory=dict)
    ended_at: float | None = None
    notes: int = 0

    @property
    def distress(self) -> float:
        return self.points[-1][1] if self.points else 0.0

    @property
    def escalation(self) -> float:
        return self.points[-1][2] if self.points else 0.0


@dataclass
class Alert:
    flag: LiveFlag
    agent: str
    team: str
    raised_at: float  # the board's clock


class Board:
    """The calls and alerts the floor shows. Not thread-safe: its owner holds a lock around it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.calls: dict[str, LiveCall] = {}
        self.alerts: dict[int, Alert] = {}
        self.claims: dict[int, Claim] = {}
        self.escalations: deque[float] = deque()  # the board's clock at each escalation flag
        self.version = 0  # bumped on every change the page shows

    # -- in ------------------------------------------------------------------------------------------

    def load(self, calls: Iterable[LiveCallRow], alerts: Iterable[AlertRow], claims: dict[int, Claim],
             escalations_last_hour: int = 0) -> None:
        now = self.clock()
        for row in calls:
            call = LiveCall(row.call_id, row.agent, row.team, row.started_at, seen_at=now)
            call.points.extend(row.scores)
            call.call_t = max([p[0] for p in row.scores] + [f.t for f in row.flags] + [0.0])
            call.prompt = row.prompt
            call.flags = {f.id: f for f in row.flags}
            self.calls[row.call_id] = call
        for a in alerts:
            self.alerts[a.flag.id] = Alert(a.flag, a.agent, a.team, now)
        self.claims.update(claims)
        self.escalations.extend([now] * escalations_last_hour)
        self.version += 1

    def apply(self, message: BusMessage, flag_id: int | None = None) -> Alert | None:
        """One event from the bus; the new alert when it is an urgent flag (`flag_id`: the flag's id
        in the store, which the caller looks up)."""
        event, now = message.event, self.clock()
        if isinstance(event, CallStart):
            self.calls[event.call_id] = LiveCall(event.call_id, message.agent, message.team, event.started_at,
                                                 seen_at=now)
            self.version += 1
            return None
        call = self.calls.get(event.call_id)
        if call is None:  # started before the floor did and not found in the store then: from now on
            call = self.calls[event.call_id] = LiveCall(event.call_id, message.agent, message.team, "")
        call.call_t, call.seen_at = max(call.call_t, event.t), now
        alert = None
        if isinstance(event, Utterance) and event.scores is not None:
            call.points.append((event.end, event.scores.distress, event.scores.escalation))
        elif isinstance(event, Prompt):
            call.prompt, call.prompt_key = event.text, (event.rule, event.t)
        elif isinstance(event, Retract) and call.prompt_key == (event.rule, event.prompt_t):
            call.prompt = ""
        elif isinstance(event, Flag) and flag_id is not None:
            flag = LiveFlag(flag_id, event.call_id, event.t, str(event.kind), str(event.severity), event.rule,
                            event.raised_by, "")
            call.flags[flag_id] = flag
            if event.kind == FlagKind.ESCALATION:
                self.escalations.append(now)
            if urgent(flag.kind, flag.severity) and not flag.check_in:
                alert = self.alerts[flag_id] = Alert(flag, call.agent, call.team, now)
        elif isinstance(event, SupervisorNote):
            call.notes += 1
        elif isinstance(event, CallEnd):
            call.ended_at = now
        self.version += 1
        return alert

    def claimed(self, claim: Claim) -> None:
        self.claims[claim.flag_id] = claim
        self.version += 1

    def expire(self) -> bool:
        """Drop ended calls after `ENDED_S` and alerts after `ALERT_S`; True when anything went."""
        now = self.clock()
        gone = [c for c, call in self.calls.items()
                if call.ended_at is not None and now - call.ended_at > ENDED_S]
        old = [f for f, a in self.alerts.items() if now - a.raised_at > ALERT_S]
        for c in gone:
            del self.calls[c]
        for f in old:
            del self.alerts[f]
        while self.escalations and now - self.escalations[0] > 3600:
            self.escalations.popleft()
        if gone or old:
            self.version += 1
        return bool(gone or old)

    # -- out -----------------------------------------------------------------------------------------

    def rows(self) -> list[LiveCall]:
        """Calls with an unclaimed urgent flag first (the newest alert first), then the newest calls."""
        def key(call: LiveCall) -> tuple[bool, float, str]:
            open_alerts = [a.raised_at for f, a in self.alerts.items()
                           if a.flag.call_id == call.call_id and f not in self.claims]
            return (not open_alerts, -max(open_alerts, default=0.0), _desc(call.started_at))
        return sorted(self.calls.values(), key=key)

    def open_alerts(self) -> list[Alert]:
        """Urgent flags, the unclaimed first, each group the newest first."""
        return sorted(self.alerts.values(),
                      key=lambda a: (a.flag.id in self.claims, -a.raised_at, -a.flag.id))

    def counts(self) -> dict[str, int]:
        """The wallboard's numbers: no names, no words."""
        return {
            "live_calls": sum(1 for c in self.calls.values() if c.ended_at is None),
            "open_crisis_alerts": sum(1 for f, a in self.alerts.items()
                                      if a.flag.kind == FlagKind.CRISIS and f not in self.claims),
            "escalations_last_hour": len(self.escalations),
        }


def _desc(text: str) -> str:
    """Sorts ISO times newest first."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)

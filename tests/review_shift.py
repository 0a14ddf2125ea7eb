"""A shift for the supervisor's review, as the issue found it: 17 flags from 5 calls, 5 of them the
rules' routine check-ins with the agent after a hard call, one a family-violence crisis and one a
self-harm crisis, one agent's own flag with a long note; and a supervisor's notes (wellbeing ones
among them) on flags of every kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent_assist.events import CallEnd, CallStart, EndReason, Flag, Prompt, PublicEvent, Speaker
from agent_assist.store import FlagStoreSink, Store, StoreOptions
from tests.test_store import say, scores

#: The agent's own flag carries a note longer than any list or table shows in one line.
LONG_NOTE = ("customer rang back after being cut off twice; she says the hardship team promised a call "
             "that never came and she has been without hot water for nine days, so please can someone "
             "senior ring her before Friday END-OF-NOTE")

#: call id: (agent, minutes before now it started, [(t, kind, severity, rule or "agent", reason)]).
CALLS: dict[str, tuple[str, int, list[tuple[float, str, str, str]]]] = {
    # older, but a crisis: first
    "c-violence": ("sam", 300, [(30.0, "distress", "medium", "acknowledge-disclosure"),
                                (52.0, "crisis", "critical", "crisis-family-violence"),
                                (75.0, "distress", "low", "slow-down"),
                                (118.0, "agent", "low", "agent-check-in")]),
    "c-selfharm": ("ana", 200, [(20.0, "distress", "high", "acknowledge-disclosure"),
                                (41.0, "crisis", "critical", "crisis-self-harm"),
                                (88.0, "agent", "low", "agent-check-in")]),
    "c-manager": ("sam", 120, [(15.0, "escalation", "medium", "slow-down-escalation"),
                               (33.0, "escalation", "high", "manager-request"),
                               (60.0, "escalation", "low", "name-the-limits"),
                               (90.0, "agent", "low", "agent-check-in")]),
    "c-hotwater": ("raj", 60, [(12.0, "distress", "low", "slow-down"),
                               (25.0, "agent", "medium", "agent"),
                               (40.0, "escalation", "medium", "slow-down-escalation"),
                               (70.0, "agent", "low", "agent-check-in")]),
    "c-billing": ("ana", 30, [(22.0, "escalation", "low", "slow-down-escalation"),
                              (50.0, "agent", "low", "agent-check-in")]),
}
#: The calls in the order the review must show them: by their worst flag (two crises, the newer
#: first; then high; then the medium, not yet reviewed; then low).
ORDER = ["c-selfharm", "c-violence", "c-manager", "c-hotwater", "c-billing"]


def events(now: datetime | None = None) -> list[PublicEvent]:
    now = now or datetime.now(UTC)
    out: list[PublicEvent] = []
    for call_id, (_, ago, flags) in CALLS.items():
        out.append(CallStart(t=0.0, call_id=call_id, source="line 1", channels={},
                             started_at=(now - timedelta(minutes=ago)).isoformat(), model="tiny.en"))
        for n, (t, kind, _, _) in enumerate(flags, 1):
            crisis = 0.95 if kind == "crisis" else 0.05
            out.append(say(call_id, n, Speaker.CUSTOMER, t - 3.0, f"turn {n} of {call_id}",
                           scores(0.85 if kind != "escalation" else 0.3, escalation=0.4, crisis=crisis)))
        for t, kind, severity, rule in flags:
            if rule == "agent":
                out.append(Flag(t=t, call_id=call_id, kind="agent", severity=severity,  # type: ignore[arg-type]
                                reason="raised by the agent", utterance_id="", raised_by="agent",
                                note=LONG_NOTE))
                continue
            if kind == "crisis":
                out.append(Prompt(t=t, call_id=call_id, rule=rule, principle="safety", text="Stay with them.",
                                  example="", priority=100, signals=("crisis",), why={}, sticky=True))
            out.append(Flag(t=t, call_id=call_id, kind=kind, severity=severity,  # type: ignore[arg-type]
                            reason=f"{rule}: {kind} 0.9" if kind != "agent" else f"{rule}: call_ended 1",
                            utterance_id="", rule=rule))
        out.append(CallEnd(t=max(t for t, *_ in flags) + 5, call_id=call_id, reason=EndReason.END_OF_AUDIO))
    return out


def write_shift(store: Store) -> dict[str, int]:
    """The shift into `store`, each call as its agent's desktop writes it; the flag ids by
    "call:rule" ("c-hotwater:agent" for the agent's own flag)."""
    for call_id, (agent, _, _) in CALLS.items():
        sink = FlagStoreSink(store, StoreOptions(agent=agent, team="east"))
        for event in events():
            if event.call_id == call_id:
                sink.emit(event)
        sink.close()
    return {f"{f.call_id}:{f.rule or 'agent'}": f.id for f in store.flags()}

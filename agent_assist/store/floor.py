"""What the supervisors' floor (`agent-assist floor`) reads from and writes to the store (migration 7):
the calls still live, claims on flags, the notes sent to agents and the audit of who viewed a call's
words. Functions over an open `Store`, each one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_assist.events import SupervisorNote
from agent_assist.store.records import Store, utc_text

log = logging.getLogger(__name__)

#: A call with no end that started longer ago than this is not shown as live (a desk that crashed).
LIVE_HOURS = 12.0
#: Scores of each call the board draws in its sparkline.
SPARK_POINTS = 30


@dataclass(frozen=True)
class Claim:
    """A supervisor's "I've got this" on a flag."""

    flag_id: int
    by: str
    at: str  # UTC, `utc_text`


@dataclass(frozen=True)
class View:
    """One view of a call's words on the floor."""

    at: str
    viewer: str
    call_id: str
    what: str


@dataclass(frozen=True)
class LiveFlag:
    id: int
    call_id: str
    t: float
    kind: str
    severity: str
    rule: str
    raised_by: str
    created_at: str

    @property
    def check_in(self) -> bool:
        """A rule's wellbeing check-in with the agent (`FlagRecord.check_in`)."""
        return self.kind == "agent" and self.raised_by == "rules"


@dataclass(frozen=True)
class LiveCallRow:
    call_id: str
    agent: str
    team: str
    started_at: str
    length_s: float | None
    scores: tuple[tuple[float, float, float], ...]  # t, distress, escalation; oldest first
    prompt: str  # the latest prompt's text ("" before the first)
    flags: tuple[LiveFlag, ...]


def _since(hours: float) -> str:
    return utc_text(datetime.now(UTC) - timedelta(hours=hours))


def live_calls(store: Store, hours: float = LIVE_HOURS) -> list[LiveCallRow]:
    """Calls not yet ended that started within `hours`, with their latest scores, latest prompt and
    flags, the newest call first."""
    db = store.db
    calls = db.query("SELECT call_id, agent, team, started_at, length_s FROM calls "
                     "WHERE length_s IS NULL AND started_at >= ? ORDER BY started_at DESC", (_since(hours),))
    return [_row(store, *c) for c in calls]


def call_row(store: Store, call_id: str) -> LiveCallRow | None:
    rows = store.db.query("SELECT call_id, agent, team, started_at, length_s FROM calls WHERE call_id = ?",
                          (call_id,))
    return _row(store, *rows[0]) if rows else None


def _row(store: Store, call_id: str, agent: str, team: str, started_at: str, length_s: Any) -> LiveCallRow:
    db = store.db
    scores = db.query("SELECT t, distress, escalation FROM scores WHERE call_id = ? ORDER BY t DESC LIMIT ?",
                      (call_id, SPARK_POINTS))
    prompt = db.query("SELECT text FROM prompts WHERE call_id = ? AND retracted_t IS NULL ORDER BY t DESC "
                      "LIMIT 1", (call_id,))
    return LiveCallRow(call_id, str(agent), str(team), str(started_at),
                       None if length_s is None else float(length_s),
                       tuple((float(t), float(d), float(e)) for t, d, e in reversed(scores)),
                       str(prompt[0][0]) if prompt else "", tuple(flags_of(store, call_id)))


def flags_of(store: Store, call_id: str) -> list[LiveFlag]:
    rows = store.db.query("SELECT id, call_id, t, kind, severity, rule, raised_by, created_at FROM flags "
                          "WHERE call_id = ? ORDER BY t", (call_id,))
    return [LiveFlag(int(i), str(c), float(t), str(k), str(s), str(r), str(b), str(a))
            for i, c, t, k, s, r, b, a in rows]


def flag_id(store: Store, call_id: str, t: float, kind: str, rule: str, raised_by: str) -> int | None:
    """The store's id of a flag published on the bus (events do not carry the store's ids)."""
    rows = store.db.query("SELECT id FROM flags WHERE call_id = ? AND ABS(t - ?) < 0.0005 AND kind = ? AND "
                          "rule = ? AND raised_by = ? ORDER BY id DESC LIMIT 1",
                          (call_id, t, kind, rule, raised_by))
    return int(rows[0][0]) if rows else None


def recent_counts(store: Store, hours: float = 1.0) -> dict[str, int]:
    """For the wallboard: escalation flags raised in the last `hours`."""
    since = _since(hours)
    rows = store.db.query("SELECT COUNT(*) FROM flags WHERE kind = 'escalation' AND created_at >= ?",
                          (since,))
    return {"escalations_last_hour": int(rows[0][0])}


def claim(store: Store, flag: int, by: str) -> tuple[bool, Claim]:
    """Claim a flag for `by`: (True, the claim) when this claim won, (False, the standing claim) when
    another supervisor's came first. Two at once: the flag is the table's key, so exactly one wins."""
    store.flag(flag)  # StoreError when there is no such flag
    with store.db.transaction():
        won = bool(store.db.query(
            "INSERT INTO claims (flag_id, claimed_by, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (flag_id) DO NOTHING RETURNING flag_id", (flag, by, utc_text())))
        row = store.db.query("SELECT claimed_by, claimed_at FROM claims WHERE flag_id = ?", (flag,))[0]
    return won, Claim(flag, str(row[0]), str(row[1]))


def claims(store: Store, flag_ids: list[int]) -> dict[int, Claim]:
    if not flag_ids:
        return {}
    marks = ", ".join("?" for _ in flag_ids)
    rows = store.db.query(f"SELECT flag_id, claimed_by, claimed_at FROM claims WHERE flag_id IN ({marks})",
                          flag_ids)
    return {int(f): Claim(int(f), str(b), str(a)) for f, b, a in rows}


def record_note(store: Store, note: SupervisorNote) -> None:
    store.add_supervisor_note(note)


def notes_of(store: Store, call_id: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT t, created_at, author, agent, text FROM supervisor_notes WHERE call_id = ? "
                          "ORDER BY id", (call_id,))
    return [{"t": float(t), "created_at": c, "author": a, "agent": g, "text": x} for t, c, a, g, x in rows]


def audit_view(store: Store, viewer: str, call_id: str, what: str) -> None:
    """Write down that `viewer` was shown the words of `call_id` (before the page is sent)."""
    with store.db.transaction():
        store.db.execute("INSERT INTO floor_audit (at, viewer, call_id, what) VALUES (?, ?, ?, ?)",
                         (utc_text(), viewer, call_id, what))


def views(store: Store, call_ids: list[str]) -> dict[str, list[View]]:
    """Every floor view of these calls' words, oldest first, by call."""
    if not call_ids:
        return {}
    marks = ", ".join("?" for _ in call_ids)
    rows = store.db.query(f"SELECT at, viewer, call_id, what FROM floor_audit WHERE call_id IN ({marks}) "
                          "ORDER BY id", call_ids)
    out: dict[str, list[View]] = {}
    for at, viewer, call_id, what in rows:
        out.setdefault(str(call_id), []).append(View(str(at), str(viewer), str(call_id), str(what)))
    return out


@dataclass(frozen=True)
class AlertRow:
    """An urgent flag (crisis, or high or critical) of the last hours, with its call's agent and team."""

    flag: LiveFlag
    agent: str
    team: str
    ended: bool


def recent_alerts(store: Store, hours: float = 1.0) -> list[AlertRow]:
    rows = store.db.query(
        "SELECT f.id, f.call_id, f.t, f.kind, f.severity, f.rule, f.raised_by, f.created_at, c.agent, "
        "c.team, c.length_s FROM flags f JOIN calls c ON c.call_id = f.call_id WHERE f.created_at >= ? AND "
        "(f.kind = 'crisis' OR f.severity IN ('high', 'critical')) ORDER BY f.created_at, f.id",
        (_since(hours),))
    return [AlertRow(LiveFlag(int(i), str(c), float(t), str(k), str(s), str(r), str(b), str(a)), str(g),
                     str(m), n is not None) for i, c, t, k, s, r, b, a, g, m, n in rows]

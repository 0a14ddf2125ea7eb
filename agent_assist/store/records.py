"""The flag store's records: what is written per call (calls, flags, scores, prompts, feedback,
turns) and what the supervisor's review reads back.

Text reaches the store only through `agent_assist.redact`, and only as parameters of SQL, never
inside it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent_assist.events import (
    CallEnd,
    CallStart,
    Feedback,
    Flag,
    FlagKind,
    Prompt,
    PromptSeen,
    PromptState,
    PublicEvent,
    Retract,
    Severity,
    SupervisorNote,
    Utterance,
)
from agent_assist.redact import redact
from agent_assist.store.connection import StoreError, _Database, connect
from agent_assist.store.reviews import AuditLine, Outcome, follow_up, outcomes, verdict
from agent_assist.store.schema import event_key, migrate

log = logging.getLogger(__name__)
SEVERITIES = tuple(Severity)  # least urgent first
SEVERITY_RANK = {s: s.rank for s in Severity}


def key_of(event: PublicEvent) -> str:
    """`event_key` of an event the store writes."""
    e = event
    if isinstance(e, CallStart | CallEnd):
        return event_key(e.type, e.call_id)
    if isinstance(e, Utterance):
        return event_key(e.type, e.call_id, e.utterance_id)
    if isinstance(e, Prompt):
        return event_key(e.type, e.call_id, float(e.t), e.rule)
    if isinstance(e, Flag):
        return event_key(e.type, e.call_id, float(e.t), str(e.kind), e.raised_by, e.rule, e.utterance_id)
    if isinstance(e, Feedback):
        return event_key(e.type, e.call_id, float(e.t), e.rule, float(e.prompt_t), e.rating)
    if isinstance(e, Retract):
        return event_key(e.type, e.call_id, e.rule, float(e.prompt_t))
    if isinstance(e, PromptSeen):  # each state once per prompt: the first time is the one kept
        return event_key(e.type, e.call_id, e.rule, float(e.prompt_t), str(e.state))
    if isinstance(e, SupervisorNote):
        return event_key(e.type, e.call_id, float(e.t), e.author, e.text)
    raise TypeError(f"the store does not keep {e.type} events")


def utc_text(moment: datetime | None = None) -> str:
    """A moment (default: now) as UTC `YYYY-MM-DDTHH:MM:SSZ`: text order is time order in both
    databases."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")



@dataclass(frozen=True)
class FlagRecord:
    id: int
    call_id: str
    agent: str
    team: str
    call_started_at: str
    t: float
    created_at: str
    kind: str
    severity: str
    reason: str
    rule: str
    raised_by: str
    agent_note: str
    excerpt: tuple[dict[str, Any], ...]
    reviewed_at: str | None
    reviewed_by: str | None
    notes: tuple[dict[str, Any], ...] = ()
    audit: tuple[AuditLine, ...] = ()  # who reviewed it, and what they concluded, oldest first

    @property
    def reviewed(self) -> bool:
        return self.reviewed_at is not None

    @property
    def check_in(self) -> bool:
        """A rule's check-in with the agent after a hard call (a flag about the agent, raised by a
        rule; the agent's own flag, raised with the overlay's button, is about the call)."""
        return self.kind == FlagKind.AGENT and self.raised_by == "rules"

    @property
    def verdict(self) -> Outcome | None:
        return verdict(self.audit)

    @property
    def follow_up(self) -> bool:
        return follow_up(self.audit)

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return outcomes(self.audit)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["excerpt"] = list(self.excerpt)
        out["notes"] = list(self.notes)
        out["audit"] = [a.to_dict() for a in self.audit]
        out["outcomes"] = list(self.outcomes)
        return out


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    agent: str
    team: str
    source: str
    started_at: str
    length_s: float | None
    end_reason: str | None
    transcript_mode: str
    scores: tuple[tuple[float, float, float, float], ...] = ()  # t, distress, escalation, crisis
    prompts: tuple[dict[str, Any], ...] = ()
    feedback: tuple[dict[str, Any], ...] = ()
    turns: tuple[dict[str, Any], ...] = ()
    conversation_id: str = ""  # the platform's conversation and participant of a served call
    participant_id: str = ""


@dataclass(frozen=True)
class FeedbackRecord:
    """An agent's rating of a prompt card (`Feedback`): "helpful", "not_helpful" or "acknowledged"."""

    call_id: str
    t: float
    rule: str
    prompt_t: float
    rating: str


@dataclass(frozen=True)
class Filters:
    since: str | None = None  # ISO UTC, by call start
    until: str | None = None
    agents: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    reviewed: bool | None = None
    calls: tuple[str, ...] = ()  # call ids

    def sql(self) -> tuple[str, list[Any]]:
        where, params = [], []
        if self.since:
            where.append("c.started_at >= ?")
            params.append(self.since)
        if self.until:
            where.append("c.started_at < ?")
            params.append(self.until)
        for column, values in (
            ("c.agent", self.agents),
            ("c.team", self.teams),
            ("f.kind", self.kinds),
            ("f.severity", self.severities),
            ("f.call_id", self.calls),
        ):
            if values:
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.reviewed is not None:
            where.append("f.reviewed_at IS NOT NULL" if self.reviewed else "f.reviewed_at IS NULL")
        return (" WHERE " + " AND ".join(where)) if where else "", params


_FLAG_COLUMNS = (
    "f.id, f.call_id, c.agent, c.team, c.started_at, f.t, f.created_at, f.kind, f.severity, "
    "f.reason, f.rule, f.raised_by, f.agent_note, f.excerpt, f.reviewed_at, f.reviewed_by"
)


class Store:
    """One open store. Every method is one transaction; safe to call from several threads."""

    def __init__(self, db: _Database) -> None:
        self.db = db
        self.where = db.where
        migrate(db)

    def version(self) -> int:
        return self.db.version()

    def close(self) -> None:
        self.db.close()

    # -- writing (the sink uses these). Each event is written once: a method given one the store
    # already has (a saved-aside file imported twice, an event log of a call written live) changes
    # nothing and returns False (None from add_flag).

    def _first_time(self, event: PublicEvent) -> bool:
        """Within a write's transaction: note `event` as written; False when it already was."""
        return bool(self.db.query(
            "INSERT INTO written (event_key, call_id) VALUES (?, ?) ON CONFLICT (event_key) DO NOTHING "
            "RETURNING event_key",
            (key_of(event), event.call_id),
        ))

    def add_call(self, call: CallStart, agent: str, team: str, transcript_mode: str) -> bool:
        with self.db.transaction():
            exists = self.db.query("SELECT 1 FROM calls WHERE call_id = ?", (call.call_id,))
            if not exists:
                self.db.execute(
                    "INSERT INTO calls (call_id, agent, team, source, started_at, transcript_mode, "
                    "conversation_id, participant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        call.call_id,
                        agent,
                        team,
                        _source_name(call.source),
                        _iso(call.started_at),
                        transcript_mode,
                        call.conversation_id,
                        call.participant_id,
                    ),
                )
            return self._first_time(call)

    def ensure_call(self, call_id: str, agent: str, team: str, transcript_mode: str) -> None:
        """A row for a call whose start this store never saw (events imported without their
        `call_start`), so its flags have somewhere to belong."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO calls (call_id, agent, team, source, started_at, transcript_mode) "
                "VALUES (?, ?, ?, '', ?, ?) ON CONFLICT (call_id) DO NOTHING",
                (call_id, agent, team, utc_text(), transcript_mode),
            )

    def end_call(self, end: CallEnd) -> bool:
        with self.db.transaction():
            if not self._first_time(end):
                return False
            self.db.execute(
                "UPDATE calls SET length_s = ?, end_reason = ? WHERE call_id = ?",
                (end.t, str(end.reason), end.call_id),
            )
        return True

    def add_utterance(
        self, call_id: str, u: Utterance, text: str | None, excerpts: dict[int, list[dict[str, Any]]]
    ) -> bool:
        """Scores of a customer turn; its redacted text when the transcript is kept in full; and the
        excerpts of open flags it extends."""
        with self.db.transaction():
            if not self._first_time(u):
                return False
            if u.scores is not None:
                s = u.scores
                self.db.execute(
                    "INSERT INTO scores (call_id, t, utterance_id, distress, escalation, crisis) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (call_id, u.end, u.utterance_id, s.distress, s.escalation, s.crisis),
                )
            if text is not None:
                self.db.execute(
                    "INSERT INTO turns (call_id, utterance_id, speaker, start_t, end_t, text) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (call_id, u.utterance_id, str(u.speaker), u.start, u.end, text),
                )
            for flag_id, excerpt in excerpts.items():
                self.db.execute("UPDATE flags SET excerpt = ? WHERE id = ?", (json.dumps(excerpt), flag_id))
        return True

    def add_flag(
        self, flag: Flag, note: str, excerpt: list[dict[str, Any]], created_at: str | None = None
    ) -> int | None:
        """The new flag's id; None when the store has this flag already."""
        with self.db.transaction():
            if not self._first_time(flag):
                return None
            rows = self.db.query(
                "INSERT INTO flags (call_id, t, created_at, kind, severity, severity_rank, reason, rule, "
                "utterance_id, raised_by, agent_note, excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (
                    flag.call_id,
                    flag.t,
                    created_at or utc_text(),
                    flag.kind,
                    flag.severity,
                    SEVERITY_RANK.get(flag.severity, 0),
                    flag.reason,
                    flag.rule,
                    flag.utterance_id,
                    flag.raised_by,
                    note,
                    json.dumps(excerpt),
                ),
            )
        return int(rows[0][0])

    def add_prompt(self, prompt: Prompt) -> bool:
        with self.db.transaction():
            if not self._first_time(prompt):
                return False
            self.db.execute(
                "INSERT INTO prompts (call_id, t, rule, principle, text, priority, sticky) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    prompt.call_id,
                    prompt.t,
                    prompt.rule,
                    prompt.principle,
                    prompt.text,
                    prompt.priority,
                    int(prompt.sticky),
                ),
            )
        return True

    def retract_prompt(self, retract: Retract) -> bool:
        """Mark a prompt withdrawn (it fired on a partial the final no longer supported)."""
        with self.db.transaction():
            if not self._first_time(retract):
                return False
            self.db.execute(
                "UPDATE prompts SET retracted_t = ? WHERE call_id = ? AND rule = ? AND ABS(t - ?) < 0.002",
                (retract.t, retract.call_id, retract.rule, retract.prompt_t),
            )
        return True

    def prompt_seen(self, seen: PromptSeen) -> bool:
        """What the overlay did with a prompt: when it was first shown, queued or dismissed."""
        column = _SEEN_COLUMNS[seen.state]
        with self.db.transaction():
            if not self._first_time(seen):
                return False
            self.db.execute(
                f"UPDATE prompts SET {column} = ? WHERE call_id = ? AND rule = ? AND ABS(t - ?) < 0.002",
                (seen.t, seen.call_id, seen.rule, seen.prompt_t),
            )
        return True

    def add_feedback(self, fb: Feedback) -> bool:
        with self.db.transaction():
            if not self._first_time(fb):
                return False
            self.db.execute(
                "INSERT INTO feedback (call_id, t, rule, prompt_t, rating) VALUES (?, ?, ?, ?, ?)",
                (fb.call_id, fb.t, fb.rule, fb.prompt_t, fb.rating),
            )
        return True

    def add_supervisor_note(self, note: SupervisorNote) -> bool:
        """A supervisor's note to the agent (redacted by whoever made it an event)."""
        with self.db.transaction():
            if not self._first_time(note):
                return False
            self.db.execute(
                "INSERT INTO supervisor_notes (call_id, t, created_at, author, agent, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (note.call_id, note.t, utc_text(), note.author, note.agent, note.text),
            )
        return True

    # -- the review. A row the review cannot show (written by hand, or by a version that let a
    # wrong type through) is left out with one warning naming it, rather than failing every
    # review of the store.

    def flags(self, filters: Filters | None = None) -> list[FlagRecord]:
        """Most severe first; then unreviewed first; then the newest."""
        where, params = (filters or Filters()).sql()
        rows = self.db.query(
            f"SELECT {_FLAG_COLUMNS} FROM flags f JOIN calls c ON c.call_id = f.call_id{where} "
            "ORDER BY f.severity_rank DESC, (f.reviewed_at IS NULL) DESC, c.started_at DESC, f.t DESC",
            params,
        )
        notes: dict[Any, list[dict[str, Any]]] = {}
        audit: dict[Any, list[AuditLine]] = {}
        if rows:  # supervisors' notes, for the CSV and the report (redacted when they were written)
            found = self.db.query(
                "SELECT n.flag_id, n.created_at, n.author, n.text, n.wellbeing FROM notes n JOIN flags f "
                f"ON f.id = n.flag_id JOIN calls c ON c.call_id = f.call_id{where} ORDER BY n.id",
                params,
            )
            kinds = (_integer, _moment, _text, _text, _integer)
            for i, c, a, t, w in _rows(self.where, "a note", found, kinds):
                notes.setdefault(i, []).append({"created_at": c, "author": a, "text": t,
                                                "wellbeing": bool(w)})
            found = self.db.query(
                "SELECT r.flag_id, r.at, r.reviewer, r.outcome FROM reviews r JOIN flags f "
                f"ON f.id = r.flag_id JOIN calls c ON c.call_id = f.call_id{where} ORDER BY r.id",
                params,
            )
            for i, *line in _rows(self.where, "a review", found, (_integer, *_AUDIT_KINDS)):
                audit.setdefault(i, []).append(_audit_line(*line))
        out = []
        for row in rows:
            try:
                out.append(self._flag(row, tuple(notes.get(row[0], ())), tuple(audit.get(row[0], ()))))
            except _Damaged as exc:
                log.warning("flag store %s: %s; left out", self.where, exc)
        return out

    def feedback(self, since: str | None = None) -> list[FeedbackRecord]:
        """Every rating agents gave a prompt, of the calls that started from `since` (ISO UTC) on, in
        the order the calls started and the ratings were given (`rules evaluate --store` reads them
        as labels of the prompts' rules)."""
        where, params = (" WHERE c.started_at >= ?", [since]) if since else ("", [])
        rows = self.db.query(
            "SELECT f.call_id, f.t, f.rule, f.prompt_t, f.rating FROM feedback f JOIN calls c "
            f"ON c.call_id = f.call_id{where} ORDER BY c.started_at, f.call_id, f.t",
            params,
        )
        kinds = (_text, _number, _text, _number, _text)
        return [FeedbackRecord(c, float(t), r, float(pt), rt)
                for c, t, r, pt, rt in _rows(self.where, "feedback", rows, kinds)]

    def flag(self, flag_id: int) -> FlagRecord:
        rows = self.db.query(
            f"SELECT {_FLAG_COLUMNS} FROM flags f JOIN calls c ON c.call_id = f.call_id WHERE f.id = ?",
            (flag_id,),
        )
        if not rows:
            raise StoreError(f"no flag {flag_id} in {self.where} (`agent-assist review list` shows them)")
        notes = self.db.query(
            "SELECT created_at, author, text, wellbeing FROM notes WHERE flag_id = ? ORDER BY id", (flag_id,)
        )
        kept = _rows(self.where, f"a note of flag {flag_id}", notes, (_moment, _text, _text, _integer))
        reviews = _rows(self.where, f"a review of flag {flag_id}", self.db.query(
            "SELECT at, reviewer, outcome FROM reviews WHERE flag_id = ? ORDER BY id", (flag_id,)
        ), _AUDIT_KINDS)
        try:
            return self._flag(
                rows[0],
                tuple({"created_at": c, "author": a, "text": t, "wellbeing": bool(w)} for c, a, t, w in kept),
                tuple(_audit_line(*line) for line in reviews),
            )
        except _Damaged as exc:
            raise StoreError(f"flag store {self.where}: {exc}") from None

    @staticmethod
    def _flag(row: tuple[Any, ...], notes: tuple[dict[str, Any], ...] = (),
              audit: tuple[AuditLine, ...] = ()) -> FlagRecord:
        values = list(row)
        problem = _problem(values, _FLAG_KINDS)
        if problem:
            raise _Damaged(f"flag {values[0]!r} is damaged ({problem})")
        values[13] = _excerpt(values[13], values[0])
        names = [f.name for f in dataclasses.fields(FlagRecord)][: len(values)]
        return FlagRecord(**dict(zip(names, values, strict=True)), notes=notes, audit=audit)

    def call(self, call_id: str) -> CallRecord:
        rows = self.db.query(
            "SELECT call_id, agent, team, source, started_at, length_s, end_reason, "
            "transcript_mode, conversation_id, participant_id FROM calls WHERE call_id = ?",
            (call_id,),
        )
        if not rows:
            raise StoreError(f"no call {call_id!r} in {self.where}")
        head = list(rows[0])
        problem = _problem(head, (_text, _text, _text, _text, _moment, _number_or_none, _text_or_none, _text,
                                  _text, _text))
        if problem:
            raise StoreError(f"flag store {self.where}: call {call_id!r} is damaged ({problem})")
        where, what = self.where, f"call {call_id!r}"
        scores = _rows(where, f"a score of {what}", self.db.query(
            "SELECT t, distress, escalation, crisis FROM scores WHERE call_id = ? ORDER BY t", (call_id,)
        ), (_number,) * 4)
        prompts = _rows(where, f"a prompt of {what}", self.db.query(
            "SELECT t, rule, principle, text, priority, sticky, retracted_t, shown_t, queued_t, dismissed_t "
            "FROM prompts WHERE call_id = ? ORDER BY t",
            (call_id,),
        ), (_number, _text, _text, _text, _integer, _integer, *(_number_or_none,) * 4))
        feedback = _rows(where, f"feedback on {what}", self.db.query(
            "SELECT t, rule, prompt_t, rating FROM feedback WHERE call_id = ? ORDER BY t", (call_id,)
        ), (_number, _text, _number, _text))
        turns = _rows(where, f"a turn of {what}", self.db.query(
            "SELECT speaker, start_t, end_t, text FROM turns WHERE call_id = ? ORDER BY start_t", (call_id,)
        ), (_text, _number, _number, _text))
        *head, conversation_id, participant_id = head
        names = [f.name for f in dataclasses.fields(CallRecord)][: len(head)]
        return CallRecord(
            **dict(zip(names, head, strict=True)),
            conversation_id=conversation_id,
            participant_id=participant_id,
            scores=tuple((float(t), float(d), float(e), float(c)) for t, d, e, c in scores),
            prompts=tuple(
                {"t": t, "rule": r, "principle": p, "text": x, "priority": pr, "sticky": bool(s),
                 "retracted_t": rt, "shown_t": st, "queued_t": qt, "dismissed_t": dt}
                for t, r, p, x, pr, s, rt, st, qt, dt in prompts
            ),
            feedback=tuple({"t": t, "rule": r, "prompt_t": pt, "rating": rt} for t, r, pt, rt in feedback),
            turns=tuple({"speaker": s, "start": a, "end": b, "text": x} for s, a, b, x in turns),
        )

    def ack(self, flag_id: int, by: str) -> bool:
        """Mark reviewed, with a line in its audit; False when it already was (the first review
        stands)."""
        self.flag(flag_id)
        with self.db.transaction():
            return self._review(flag_id, by, None)

    def set_outcome(self, flag_id: int, outcome: Outcome, by: str) -> None:
        """Record what a reviewer concluded, as a line of the flag's audit; the flag counts as
        reviewed from the first. A false alarm is a rule's: an agent's own flag is not one."""
        flag = self.flag(flag_id)
        if outcome is Outcome.FALSE_ALARM and flag.raised_by != "rules":
            raise StoreError(f"flag {flag_id} was raised by the agent, not by a rule: only a rule's flag can "
                             "be a false alarm (`agent-assist review note` can say what you found)")
        with self.db.transaction():
            self._review(flag_id, by, outcome)

    def _review(self, flag_id: int, by: str, outcome: Outcome | None) -> bool:
        """Within a transaction: the audit line, and the flag marked reviewed if it was not. Just
        marking reviewed (`outcome` None) a flag already reviewed adds nothing: False."""
        at = utc_text()
        first = bool(self.db.query(
            "UPDATE flags SET reviewed_at = ?, reviewed_by = ? WHERE id = ? AND reviewed_at IS NULL "
            "RETURNING id",
            (at, by, flag_id),
        ))
        if first or outcome is not None:
            self.db.execute("INSERT INTO reviews (flag_id, at, reviewer, outcome) VALUES (?, ?, ?, ?)",
                            (flag_id, at, by, None if outcome is None else str(outcome)))
        return first

    def note(self, flag_id: int, text: str, by: str, wellbeing: bool = False) -> None:
        self.flag(flag_id)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO notes (flag_id, created_at, author, text, wellbeing) VALUES (?, ?, ?, ?, ?)",
                (flag_id, utc_text(), by, redact(text).text, int(wellbeing)),
            )

    def purge(self, older_than_days: float) -> tuple[int, int]:
        """Delete calls that started more than this many days ago, with everything about them, and
        leave nothing of them on disk (`scrub`). Returns (calls, flags) deleted."""
        cutoff = utc_text(datetime.now(UTC) - timedelta(days=older_than_days))
        with self.db.transaction(slow=True):
            flags = self.db.query(
                "SELECT COUNT(*) FROM flags f JOIN calls c ON c.call_id = f.call_id WHERE c.started_at < ?",
                (cutoff,),
            )[0][0]
            # flags, notes, scores, prompts, feedback and turns go with their call (ON DELETE CASCADE)
            calls = self.db.query("DELETE FROM calls WHERE started_at < ? RETURNING call_id", (cutoff,))
            # and the event bus's copies (`agent_assist.bus`), which a store no desk writes to keeps
            self.db.execute("DELETE FROM bus_events WHERE at < ?", (cutoff,))
        if not self.db.scrub():  # also what an earlier purge could not scrub
            log.warning("flag store %s: purged, but another program is reading the store, so what was "
                        "purged stays on disk until it stops; purge again then", self.where)
        return len(calls), int(flags)


# ------------------------------------------------------------------------------------------------
# Rows as the review reads them back: each value of the type the review expects (SQLite keeps
# whatever it was given in any column)


class _Damaged(Exception):
    pass


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_or_none(value: Any) -> bool:
    return value is None or _number(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _moment(value: Any) -> bool:
    """A time as `utc_text` writes it (the review shows it in local time)."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone()
    except (AttributeError, TypeError, ValueError, OverflowError):
        return False
    return True


def _moment_or_none(value: Any) -> bool:
    return value is None or _moment(value)


def _outcome_or_none(value: Any) -> bool:
    return value is None or value in set(Outcome)


# a line of a flag's review audit: at, reviewer, outcome
_AUDIT_KINDS = (_moment, _text, _outcome_or_none)


def _audit_line(at: str, reviewer: str, outcome: str | None) -> AuditLine:
    return AuditLine(at, reviewer, None if outcome is None else Outcome(outcome))


# id, call_id, agent, team, call start, t, created_at, kind, severity, reason, rule, raised_by,
# agent_note, excerpt (JSON text), reviewed_at, reviewed_by
_FLAG_KINDS = (_integer, _text, _text, _text, _moment, _number, _moment, _text, _text, _text, _text, _text,
               _text, _text_or_none, _moment_or_none, _text_or_none)


def _problem(values: list[Any], kinds: tuple[Any, ...]) -> str:
    for index, (value, ok) in enumerate(zip(values, kinds, strict=True)):
        if not ok(value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            return f"column {index + 1} holds {shown}"
    return ""


def _rows(
    where: str, what: str, rows: list[tuple[Any, ...]], kinds: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """The rows whose values are of `kinds`; a warning for each that is not."""
    kept = []
    for row in rows:
        problem = _problem(list(row), kinds)
        if problem:
            log.warning("flag store %s: %s is damaged (%s); left out", where, what, problem)
        else:
            kept.append(row)
    return kept


def _excerpt(text: str | None, flag_id: Any) -> tuple[dict[str, Any], ...]:
    """A flag's excerpt: turns, each with text and a speaker (and a start in seconds)."""
    try:
        turns = json.loads(text or "[]")
    except (ValueError, RecursionError):
        raise _Damaged(f"flag {flag_id!r} is damaged (its excerpt is not JSON)") from None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and _text(t.get("text", "")) and _text(t.get("speaker", ""))
        and _number(t.get("start", 0)) for t in turns
    ):
        raise _Damaged(f"flag {flag_id!r} is damaged (its excerpt is not a list of turns)")
    return tuple(turns)


#: The column of `prompts` that keeps when each state of `prompt_seen` first happened (a constant
#: name, never text from an event, is what reaches the SQL).
_SEEN_COLUMNS = {PromptState.SHOWN: "shown_t", PromptState.QUEUED: "queued_t",
                 PromptState.DISMISSED: "dismissed_t"}


def _iso(started_at: str) -> str:
    """A call's start (ISO 8601, local when it has no zone) as `utc_text`."""
    try:
        return utc_text(datetime.fromisoformat(started_at.replace("Z", "+00:00")))
    except (ValueError, OverflowError):  # not a time; a time at the edge of the calendar
        return utc_text()


def _source_name(source: str) -> str:
    """Only a recording's file name is kept (its folders may name a person); device names as given."""
    return Path(source).name if "/" in source or "\\" in source else source


def open_store(target: str | Path | None = None, timeout_s: float = 5.0) -> Store:
    """`target`: a PostgreSQL URL, a SQLite file path (or `sqlite:///path`), or None for the default
    file in the user's data directory."""
    db = connect(target, timeout_s)
    try:
        return Store(db)
    except BaseException:
        db.close()
        raise

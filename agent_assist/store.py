"""The flag store: every flag, with its call's score timeline, prompts and the agent's feedback, for
the supervisor's after-shift review.

One schema, two databases:

* **SQLite** (the default), one file in the user's data directory (platformdirs), permissions 0600,
  WAL journal with `synchronous=FULL`: a flag is committed before the next sink (the overlay) sees
  it, so killing the process loses nothing already flagged. The schema version is `PRAGMA
  user_version`.
* **PostgreSQL** (`postgresql://…`) for a whole floor: every agent's desktop writes to one server.
  The schema version is the one row of `agent_assist_schema`; migrations run under an advisory lock
  so two desktops starting together do not both migrate.

Text reaches the store only through `agent_assist.redact`, and only as parameters of SQL, never
inside it. How much transcript is kept is the site's choice: "none", "excerpt" (the turns around
each flag, the default) or "full".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs

from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    CallEnd,
    CallStart,
    Feedback,
    Flag,
    Partial,
    Prompt,
    PublicEvent,
    Retract,
    Utterance,
)
from agent_assist.redact import CallRedactor, redact

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {name: i + 1 for i, name in enumerate(SEVERITIES)}
TRANSCRIPT_MODES = ("none", "excerpt", "full")
EXCERPT_BEFORE = 3  # turns up to and including the flagged one
EXCERPT_AFTER = 2  # turns after it, added as the call goes on


class StoreError(AgentAssistError):
    """The store cannot be opened or written (locked, unreachable, newer schema, bad URL).
    `transient`: it may work again later (a lock, a server that is down)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def write_private(path: Path, text: str, append: bool = False) -> None:
    """Write a file only its owner can read (0600 from the moment it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("agent-assist")) / "flags.sqlite3"


def utc_text(moment: datetime | None = None) -> str:
    """A moment (default: now) as UTC `YYYY-MM-DDTHH:MM:SSZ`: text order is time order in both
    databases."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------
# Schema: each migration takes the store from version i to i + 1. {id} is the dialect's
# auto-numbered key; everything else is written the same for both databases.

MIGRATIONS: list[list[str]] = [
    [  # 1: calls, flags and supervisors' notes
        """CREATE TABLE calls (
            call_id TEXT PRIMARY KEY, agent TEXT NOT NULL, team TEXT NOT NULL, source TEXT NOT NULL,
            started_at TEXT NOT NULL, length_s DOUBLE PRECISION, end_reason TEXT,
            transcript_mode TEXT NOT NULL)""",
        "CREATE INDEX calls_started ON calls (started_at)",
        """CREATE TABLE flags (
            id {id}, call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            t DOUBLE PRECISION NOT NULL, created_at TEXT NOT NULL, kind TEXT NOT NULL,
            severity TEXT NOT NULL, severity_rank INTEGER NOT NULL, reason TEXT NOT NULL,
            utterance_id TEXT NOT NULL, raised_by TEXT NOT NULL, agent_note TEXT NOT NULL,
            excerpt TEXT NOT NULL, reviewed_at TEXT, reviewed_by TEXT)""",
        "CREATE INDEX flags_call ON flags (call_id)",
        """CREATE TABLE notes (
            id {id}, flag_id BIGINT NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,
            wellbeing INTEGER NOT NULL)""",
    ],
    [  # 2: per call, the score timeline, the prompts shown, the agent's feedback, the transcript;
        # the rule of each flag in its own column
        """CREATE TABLE scores (
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            t DOUBLE PRECISION NOT NULL, utterance_id TEXT NOT NULL, distress DOUBLE PRECISION NOT NULL,
            escalation DOUBLE PRECISION NOT NULL, crisis DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX scores_call ON scores (call_id, t)",
        """CREATE TABLE prompts (
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            t DOUBLE PRECISION NOT NULL, rule TEXT NOT NULL, principle TEXT NOT NULL, text TEXT NOT NULL,
            priority INTEGER NOT NULL, sticky INTEGER NOT NULL)""",
        "CREATE INDEX prompts_call ON prompts (call_id, t)",
        """CREATE TABLE feedback (
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            t DOUBLE PRECISION NOT NULL, rule TEXT NOT NULL, prompt_t DOUBLE PRECISION NOT NULL,
            rating TEXT NOT NULL)""",
        "CREATE INDEX feedback_call ON feedback (call_id)",
        """CREATE TABLE turns (
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            utterance_id TEXT NOT NULL, speaker TEXT NOT NULL, start_t DOUBLE PRECISION NOT NULL,
            end_t DOUBLE PRECISION NOT NULL, text TEXT NOT NULL)""",
        "CREATE INDEX turns_call ON turns (call_id, start_t)",
        "ALTER TABLE flags ADD COLUMN rule TEXT NOT NULL DEFAULT ''",
        "python:rule_from_reason",
    ],
    [  # 3: a prompt fired on a partial transcript and withdrawn when the final no longer supported it
        "ALTER TABLE prompts ADD COLUMN retracted_t DOUBLE PRECISION",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def _rule_from_reason(db: _Database) -> None:
    """Version 1 kept the rule only inside `reason` ("rule-id: distress 0.91")."""
    for flag_id, reason in db.query("SELECT id, reason FROM flags"):
        db.execute("UPDATE flags SET rule = ? WHERE id = ?", (reason.split(":", 1)[0].strip(), flag_id))


_PYTHON_STEPS: dict[str, Callable[[_Database], None]] = {"rule_from_reason": _rule_from_reason}


# ------------------------------------------------------------------------------------------------
# The two databases behind one small interface


class _Database:
    """A connection with `?` parameters, one transaction at a time, safe to share between threads."""

    id_column = ""
    where = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def version(self) -> int:
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    def migration_lock(self) -> None:
        """Held until the transaction ends."""

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Database):
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__()
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
            self.conn = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise sqlite3.OperationalError(f"cannot use the WAL journal here ({mode})")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA secure_delete = ON")  # purged text is overwritten, not left behind
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(self.where, exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise _store_error(self.where, exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def version(self) -> int:
        return int(self.query("PRAGMA user_version")[0][0])

    def set_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA optimize")
            self.conn.close()


class _Postgres(_Database):
    id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__()
        import psycopg

        self._psycopg = psycopg
        self.where = _hide_password(url)
        self._url, self._timeout_s = url, timeout_s
        self._connect()
        try:
            self.conn.execute("CREATE TABLE IF NOT EXISTS agent_assist_schema (version INTEGER NOT NULL)")
        except psycopg.Error as exc:
            raise _store_error(self.where, exc) from None

    def _connect(self) -> None:
        try:
            self.conn = self._psycopg.connect(self._url, connect_timeout=max(1, int(self._timeout_s)),
                                              autocommit=True)
            self.conn.execute(f"SET lock_timeout = {int(self._timeout_s * 1000)}")
        except self._psycopg.Error as exc:
            raise _store_error(self.where, exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.conn.execute(sql.replace("?", "%s"), tuple(params))
        except self._psycopg.Error as exc:
            raise _store_error(self.where, exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self.conn.closed or self.conn.broken:  # the server restarted, or the network dropped
                self._connect()
            try:
                with self.conn.transaction():
                    yield
            except self._psycopg.Error as exc:
                raise _store_error(self.where, exc) from None

    def migration_lock(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(4242017)")

    def version(self) -> int:
        rows = self.query("SELECT version FROM agent_assist_schema")
        return int(rows[0][0]) if rows else 0

    def set_version(self, version: int) -> None:
        self.execute("DELETE FROM agent_assist_schema")
        self.execute("INSERT INTO agent_assist_schema (version) VALUES (?)", (version,))

    def close(self) -> None:
        with contextlib.suppress(self._psycopg.Error):
            self.conn.close()


def _hide_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _store_error(where: str, exc: Exception) -> StoreError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    transient = False
    if "locked" in low or "busy" in low or "lock timeout" in low:
        hint = "another program is writing to it; try again, or close the other program"
        transient = True
    elif "permission" in low or "readonly" in low or "read-only" in low:
        hint = "check the file's owner and permissions"
    elif "connect" in low or "could not translate" in low or "connection" in low:
        hint = "is the server running and the URL right?"
        transient = True
    elif "not a database" in low or "malformed" in low:
        hint = "the file is not an agent-assist store, or is damaged"
    else:
        hint = ""
    return StoreError(f"flag store {where}: {text}" + (f" ({hint})" if hint else ""), transient)


# ------------------------------------------------------------------------------------------------
# What the review reads


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

    @property
    def reviewed(self) -> bool:
        return self.reviewed_at is not None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["excerpt"] = list(self.excerpt)
        out["notes"] = list(self.notes)
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


@dataclass(frozen=True)
class Filters:
    since: str | None = None  # ISO UTC, by call start
    until: str | None = None
    agents: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    reviewed: bool | None = None

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
        self._migrate()

    # -- schema

    def _migrate(self) -> None:
        db = self.db
        with db.transaction():
            db.migration_lock()
            version = db.version()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"flag store {self.where} has schema version {version}, newer than this "
                    f"agent-assist understands ({SCHEMA_VERSION}); upgrade agent-assist"
                )
            for number in range(version, SCHEMA_VERSION):
                for step in MIGRATIONS[number]:
                    if step.startswith("python:"):
                        _PYTHON_STEPS[step.removeprefix("python:")](db)
                    else:
                        db.execute(step.replace("{id}", db.id_column))
                db.set_version(number + 1)
            if version < SCHEMA_VERSION and version:
                log.info("flag store %s migrated from schema %d to %d", self.where, version, SCHEMA_VERSION)

    def version(self) -> int:
        return self.db.version()

    def close(self) -> None:
        self.db.close()

    # -- writing (the sink below uses these)

    def add_call(self, call: CallStart, agent: str, team: str, transcript_mode: str) -> None:
        with self.db.transaction():
            exists = self.db.query("SELECT 1 FROM calls WHERE call_id = ?", (call.call_id,))
            if not exists:
                self.db.execute(
                    "INSERT INTO calls (call_id, agent, team, source, started_at, transcript_mode) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        call.call_id,
                        agent,
                        team,
                        _source_name(call.source),
                        _iso(call.started_at),
                        transcript_mode,
                    ),
                )

    def ensure_call(self, call_id: str, agent: str, team: str, transcript_mode: str) -> None:
        """A row for a call whose start this store never saw (events imported without their
        `call_start`), so its flags have somewhere to belong."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO calls (call_id, agent, team, source, started_at, transcript_mode) "
                "VALUES (?, ?, ?, '', ?, ?) ON CONFLICT (call_id) DO NOTHING",
                (call_id, agent, team, utc_text(), transcript_mode),
            )

    def end_call(self, end: CallEnd) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE calls SET length_s = ?, end_reason = ? WHERE call_id = ?",
                (end.t, str(end.reason), end.call_id),
            )

    def add_utterance(
        self, call_id: str, u: Utterance, text: str | None, excerpts: dict[int, list[dict[str, Any]]]
    ) -> None:
        """Scores of a customer turn; its redacted text when the transcript is kept in full; and the
        excerpts of open flags it extends."""
        with self.db.transaction():
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

    def add_flag(
        self, flag: Flag, note: str, excerpt: list[dict[str, Any]], created_at: str | None = None
    ) -> int:
        rule = flag.reason.split(":", 1)[0].strip() if flag.raised_by == "rules" else ""
        with self.db.transaction():
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
                    rule,
                    flag.utterance_id,
                    flag.raised_by,
                    note,
                    json.dumps(excerpt),
                ),
            )
        return int(rows[0][0])

    def add_prompt(self, prompt: Prompt) -> None:
        with self.db.transaction():
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

    def retract_prompt(self, retract: Retract) -> None:
        """Mark a prompt withdrawn (it fired on a partial the final no longer supported)."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE prompts SET retracted_t = ? WHERE call_id = ? AND rule = ? AND ABS(t - ?) < 0.002",
                (retract.t, retract.call_id, retract.rule, retract.prompt_t),
            )

    def add_feedback(self, fb: Feedback) -> None:
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO feedback (call_id, t, rule, prompt_t, rating) VALUES (?, ?, ?, ?, ?)",
                (fb.call_id, fb.t, fb.rule, fb.prompt_t, fb.rating),
            )

    # -- the review

    def flags(self, filters: Filters | None = None) -> list[FlagRecord]:
        """Most severe first; then unreviewed first; then the newest."""
        where, params = (filters or Filters()).sql()
        rows = self.db.query(
            f"SELECT {_FLAG_COLUMNS} FROM flags f JOIN calls c ON c.call_id = f.call_id{where} "
            "ORDER BY f.severity_rank DESC, (f.reviewed_at IS NULL) DESC, c.started_at DESC, f.t DESC",
            params,
        )
        return [self._flag(row) for row in rows]

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
        return self._flag(
            rows[0],
            tuple({"created_at": c, "author": a, "text": t, "wellbeing": bool(w)} for c, a, t, w in notes),
        )

    @staticmethod
    def _flag(row: tuple[Any, ...], notes: tuple[dict[str, Any], ...] = ()) -> FlagRecord:
        values = list(row)
        values[13] = tuple(json.loads(values[13] or "[]"))
        names = [f.name for f in dataclasses.fields(FlagRecord)][: len(values)]
        return FlagRecord(**dict(zip(names, values, strict=True)), notes=notes)

    def call(self, call_id: str) -> CallRecord:
        rows = self.db.query(
            "SELECT call_id, agent, team, source, started_at, length_s, end_reason, "
            "transcript_mode FROM calls WHERE call_id = ?",
            (call_id,),
        )
        if not rows:
            raise StoreError(f"no call {call_id!r} in {self.where}")
        scores = self.db.query(
            "SELECT t, distress, escalation, crisis FROM scores WHERE call_id = ? ORDER BY t", (call_id,)
        )
        prompts = self.db.query(
            "SELECT t, rule, principle, text, priority, sticky, retracted_t FROM prompts WHERE call_id = ? "
            "ORDER BY t",
            (call_id,),
        )
        feedback = self.db.query(
            "SELECT t, rule, prompt_t, rating FROM feedback WHERE call_id = ? ORDER BY t", (call_id,)
        )
        turns = self.db.query(
            "SELECT speaker, start_t, end_t, text FROM turns WHERE call_id = ? ORDER BY start_t", (call_id,)
        )
        names = [f.name for f in dataclasses.fields(CallRecord)][: len(rows[0])]
        return CallRecord(
            **dict(zip(names, rows[0], strict=True)),
            scores=tuple((float(t), float(d), float(e), float(c)) for t, d, e, c in scores),
            prompts=tuple(
                {"t": t, "rule": r, "principle": p, "text": x, "priority": pr, "sticky": bool(s),
                 "retracted_t": rt}
                for t, r, p, x, pr, s, rt in prompts
            ),
            feedback=tuple({"t": t, "rule": r, "prompt_t": pt, "rating": rt} for t, r, pt, rt in feedback),
            turns=tuple({"speaker": s, "start": a, "end": b, "text": x} for s, a, b, x in turns),
        )

    def ack(self, flag_id: int, by: str) -> bool:
        """Mark reviewed; False when it already was (the first review stands)."""
        self.flag(flag_id)
        with self.db.transaction():
            rows = self.db.query(
                "UPDATE flags SET reviewed_at = ?, reviewed_by = ? "
                "WHERE id = ? AND reviewed_at IS NULL RETURNING id",
                (utc_text(), by, flag_id),
            )
        return bool(rows)

    def note(self, flag_id: int, text: str, by: str, wellbeing: bool = False) -> None:
        self.flag(flag_id)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO notes (flag_id, created_at, author, text, wellbeing) VALUES (?, ?, ?, ?, ?)",
                (flag_id, utc_text(), by, redact(text).text, int(wellbeing)),
            )

    def purge(self, older_than_days: float) -> tuple[int, int]:
        """Delete calls that started more than this many days ago, with everything about them.
        Returns (calls, flags) deleted."""
        cutoff = utc_text(datetime.now(UTC) - timedelta(days=older_than_days))
        with self.db.transaction():
            flags = self.db.query(
                "SELECT COUNT(*) FROM flags f JOIN calls c ON c.call_id = f.call_id WHERE c.started_at < ?",
                (cutoff,),
            )[0][0]
            # flags, notes, scores, prompts, feedback and turns go with their call (ON DELETE CASCADE)
            calls = self.db.query("DELETE FROM calls WHERE started_at < ? RETURNING call_id", (cutoff,))
        return len(calls), int(flags)


def _iso(started_at: str) -> str:
    """A call's start (ISO 8601, local when it has no zone) as `utc_text`."""
    try:
        return utc_text(datetime.fromisoformat(started_at.replace("Z", "+00:00")))
    except ValueError:
        return utc_text()


def _source_name(source: str) -> str:
    """Only a recording's file name is kept (its folders may name a person); device names as given."""
    return Path(source).name if "/" in source or "\\" in source else source


def open_store(target: str | Path | None = None, timeout_s: float = 5.0) -> Store:
    """`target`: a PostgreSQL URL, a SQLite file path (or `sqlite:///path`), or None for the default
    file in the user's data directory."""
    if target is None or str(target) == "":
        db: _Database = _SQLite(default_path(), timeout_s)
    else:
        text = str(target)
        if text.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise StoreError(
                    "PostgreSQL needs the psycopg package (pip install 'psycopg[binary]')"
                ) from None
            db = _Postgres(text, timeout_s)
        elif "://" in text and not text.startswith("sqlite://"):
            raise StoreError(f"unknown store {text!r}: give a file path or a postgresql:// URL")
        else:
            db = _SQLite(Path(text.removeprefix("sqlite://")).expanduser(), timeout_s)
    try:
        return Store(db)
    except BaseException:
        db.close()
        raise


# ------------------------------------------------------------------------------------------------
# The sink


@dataclass
class StoreOptions:
    agent: str = ""
    team: str = ""
    transcript: str = "excerpt"  # none | excerpt | full

    def __post_init__(self) -> None:
        if self.transcript not in TRANSCRIPT_MODES:
            raise AgentAssistError(
                f"transcript must be one of {', '.join(TRANSCRIPT_MODES)}, not {self.transcript!r}"
            )


@dataclass
class _CallState:
    call_id: str
    redactor: CallRedactor = field(default_factory=CallRedactor)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EXCERPT_BEFORE))
    open_excerpts: dict[int, tuple[list[dict[str, Any]], int]] = field(default_factory=dict)
    # the customer's words so far in a turn not yet final: a flag fired on them shows them
    partial: dict[str, Any] | None = None


class FlagStoreSink:
    """Writes a call's flags, scores, prompts and feedback as they happen, each committed before
    `emit` returns, so sinks after this one (the overlay) see only what is already safe.

    A store that cannot be written (locked, the server gone) never stops the call: events wait in
    memory, in order, and are retried with the next one; any still waiting at `close` are saved,
    redacted, to a JSONL file beside the default store (`agent-assist review import` loads it).
    """

    def __init__(
        self,
        store: Store | Callable[[], Store],
        options: StoreOptions | None = None,
        spill_dir: Path | None = None,
        where: str = "",
        reopen_s: float = 30.0,
    ) -> None:
        # given a way to open the store rather than an open one, a store that cannot be opened yet
        # (the floor's server is down) is tried again every `reopen_s` seconds; the call goes on
        self.store: Store | None = None
        self._opener = None if isinstance(store, Store) else store
        if isinstance(store, Store):
            self.store = store
        self.where = store.where if isinstance(store, Store) else where
        self.reopen_s = reopen_s
        self._tried_at = -1e9
        self.options = options or StoreOptions()
        self.spill_dir = spill_dir or default_path().parent / "unsaved"
        self._states: dict[str, _CallState] = {}  # the latest few calls, by id
        self._known: set[str] = set()  # calls with a row in the store
        self._pending: list[PublicEvent] = []
        self._lock = threading.RLock()
        self._warned = False
        self.spilled: Path | None = None

    def emit(self, event: PublicEvent) -> None:
        if not isinstance(event, CallStart | Partial | Utterance | Flag | Prompt | Retract | Feedback
                          | CallEnd):
            return
        with self._lock:
            self._pending.append(self._redacted(event))
            self._drain()

    def _drain(self) -> None:
        while self._pending:
            try:
                self._write(self._pending[0])
            except StoreError as exc:
                if not self._warned:
                    log.warning("%s; %d event(s) kept in memory and retried", exc, len(self._pending))
                    self._warned = True
                return
            self._pending.pop(0)
            if self._warned and not self._pending:
                log.warning("flag store %s: written again, nothing lost", self.where)
                self._warned = False

    def _redacted(self, event: PublicEvent) -> PublicEvent:
        """The event as it may be written: an utterance's text redacted (with the call's context),
        or dropped when no transcript is kept; an agent's note redacted."""

        if isinstance(event, CallStart):
            self._states[event.call_id] = _CallState(event.call_id)
            return event
        redacted = self._state(event).redactor.event(event)
        if isinstance(redacted, Utterance):  # the store keeps turns as text, not words
            text = "" if self.options.transcript == "none" else redacted.text
            return dataclasses.replace(redacted, text=text, words=())
        return redacted

    def _state(self, event: PublicEvent) -> _CallState:
        call_id = getattr(event, "call_id", "")
        if call_id not in self._states:
            self._states[call_id] = _CallState(call_id)
        while len(self._states) > 4:
            del self._states[next(iter(self._states))]
        return self._states[call_id]

    def open(self) -> Store:
        """The store, opening it first when that has not worked yet (StoreError when it still does
        not, at most one attempt every `reopen_s`)."""
        if self.store is not None:
            return self.store
        assert self._opener is not None
        now = time.monotonic()
        if now - self._tried_at < self.reopen_s:
            ago = now - self._tried_at
            raise StoreError(f"flag store {self.where}: not open yet (tried {ago:.0f} s ago)", transient=True)
        self._tried_at = now
        self.store = self._opener()
        self.where = self.store.where
        return self.store

    def _write(self, event: PublicEvent) -> None:
        opts = self.options
        store = self.open()
        if isinstance(event, CallStart):
            store.add_call(event, opts.agent, opts.team, opts.transcript)
            self._known.add(event.call_id)
            return
        call_id = getattr(event, "call_id", "")
        state = self._states.get(call_id)
        if call_id not in self._known:
            store.ensure_call(call_id, opts.agent, opts.team, opts.transcript)
            self._known.add(call_id)
        if isinstance(event, Partial):  # not stored: only what a flag fired on it shows
            if state is not None and event.scores is not None:
                state.partial = {"speaker": str(event.speaker), "start": round(event.start, 2),
                                 "text": event.text, "utterance_id": event.utterance_id, "partial": True}
            return
        if isinstance(event, Utterance):
            turn = {"speaker": str(event.speaker), "start": round(event.start, 2), "text": event.text,
                    "utterance_id": event.utterance_id}
            excerpts: dict[int, list[dict[str, Any]]] = {}
            if state is not None and opts.transcript != "none":
                for flag_id, (excerpt, left) in state.open_excerpts.items():
                    last = excerpt[-1] if excerpt else {}
                    if last.get("partial") and last["utterance_id"] == event.utterance_id:
                        # the final replaces what was heard so far, and is not one of the turns after
                        excerpts[flag_id] = [*excerpt[:-1], turn]
                        state.open_excerpts[flag_id] = (excerpt, left + 1)
                    elif left > 0:
                        excerpts[flag_id] = [*excerpt, turn]
            store.add_utterance(
                event.call_id, event, event.text if opts.transcript == "full" else None, excerpts
            )
            if state is not None:
                for flag_id, excerpt in excerpts.items():
                    state.open_excerpts[flag_id] = (excerpt, state.open_excerpts[flag_id][1] - 1)
                state.open_excerpts = {k: v for k, v in state.open_excerpts.items() if v[1] > 0}
                if opts.transcript != "none":
                    state.recent.append(turn)
                if state.partial is not None and state.partial["utterance_id"] == event.utterance_id:
                    state.partial = None
        elif isinstance(event, Flag):
            excerpt = list(state.recent) if state is not None else []
            heard = state.partial if state is not None else None
            if (heard is not None and heard["utterance_id"] == event.utterance_id
                    and opts.transcript != "none"):
                excerpt.append(heard)  # fired on a turn still being spoken: the words heard so far
            flag_id = store.add_flag(event, event.note, excerpt)
            if state is not None and opts.transcript != "none":
                state.open_excerpts[flag_id] = (excerpt, EXCERPT_AFTER)
        elif isinstance(event, Prompt):
            store.add_prompt(event)
        elif isinstance(event, Retract):
            store.retract_prompt(event)
        elif isinstance(event, Feedback):
            store.add_feedback(event)
        elif isinstance(event, CallEnd):
            store.end_call(event)

    def close(self) -> None:
        with self._lock:
            self._tried_at = -1e9  # one last try at opening a store that was not there
            self._drain()
            if self._pending:
                self._spill()

    def _spill(self) -> None:
        self.spill_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.spill_dir / f"unsaved-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.jsonl"
        # first line: whose events these are, so an import files them under the right agent
        lines = [json.dumps({"unsaved": 1, **dataclasses.asdict(self.options)})]
        kept = [e.to_json() for e in self._pending if not isinstance(e, Partial)]
        text = "".join(f"{line}\n" for line in lines + kept)
        write_private(path, text, append=True)
        log.warning(
            "flag store %s could not be written: %d event(s) saved to %s "
            "(load them with `agent-assist review import %s`)",
            self.where,
            len(self._pending),
            path,
            path,
        )
        self.spilled = path
        self._pending.clear()

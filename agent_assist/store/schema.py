"""The flag store's schema: each migration takes the store from version i to i + 1, run in one
transaction when a store is opened.

The schema version is SQLite's `PRAGMA user_version`, or the one row of `agent_assist_schema` in
PostgreSQL, where migrations run under an advisory lock so two desktops starting together do not
both migrate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from agent_assist.store.connection import StoreError, _Database

log = logging.getLogger(__name__)


def reviews_migration() -> list[str]:
    """Migration 6: the review's audit, one row per thing a reviewer did to a flag (`Store.ack`,
    `Store.set_outcome`): who, when, and the outcome (`records.Outcome`; NULL where they marked it
    reviewed). The flags already marked reviewed get their row from `reviewed_at`/`reviewed_by`."""
    return [
        """CREATE TABLE reviews (
            id {id}, flag_id BIGINT NOT NULL REFERENCES flags (id) ON DELETE CASCADE,
            at TEXT NOT NULL, reviewer TEXT NOT NULL, outcome TEXT)""",
        "CREATE INDEX reviews_flag ON reviews (flag_id)",
        "python:reviews_from_flags",
    ]

def floor_migration() -> list[str]:
    """Migration 7, for `agent-assist floor` and the event bus (`agent_assist.bus`):

    * `claims`: who said "I've got this" on a flag, and when; the flag is the key, so of two
      supervisors claiming at once exactly one wins (the other's insert does nothing);
    * `supervisor_notes`: the notes supervisors sent to agents (`SupervisorNote`), redacted;
    * `floor_audit`: every view of a call's words on the floor (who, when, which call, what page);
      not tied to `calls`, so the record of who read a call outlives the call's purge;
    * `bus_events`: events on the bus that did not fit a PostgreSQL notification (8000 bytes), sent
      by reference, and on SQLite every event, for a subscriber in another process to read."""
    return [
        """CREATE TABLE claims (
            flag_id BIGINT PRIMARY KEY REFERENCES flags (id) ON DELETE CASCADE,
            claimed_by TEXT NOT NULL, claimed_at TEXT NOT NULL)""",
        """CREATE TABLE supervisor_notes (
            id {id}, call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
            t DOUBLE PRECISION NOT NULL, created_at TEXT NOT NULL, author TEXT NOT NULL,
            agent TEXT NOT NULL, text TEXT NOT NULL)""",
        "CREATE INDEX supervisor_notes_call ON supervisor_notes (call_id)",
        """CREATE TABLE floor_audit (
            id {id}, at TEXT NOT NULL, viewer TEXT NOT NULL, call_id TEXT NOT NULL, what TEXT NOT NULL)""",
        "CREATE INDEX floor_audit_call ON floor_audit (call_id)",
        """CREATE TABLE bus_events (
            id {id}, at TEXT NOT NULL, agent TEXT NOT NULL, team TEXT NOT NULL, payload TEXT NOT NULL)""",
    ]


# {id} is the dialect's auto-numbered key; everything else is written the same for both databases.
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
    [  # 4: the events written, by their id (`records.event_key`), so none is written twice (an
        # import of a saved-aside file run again, an event log of a call the store has already)
        """CREATE TABLE written (
            event_key TEXT PRIMARY KEY,
            call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE)""",
        "CREATE INDEX written_call ON written (call_id)",
        "python:written_from_rows",
    ],
    [  # 5: what the agent's overlay did with each prompt (`prompt_seen`): when it was first on screen,
        # queued behind the "+N" tray, dismissed; all NULL where no overlay said (none was open)
        "ALTER TABLE prompts ADD COLUMN shown_t DOUBLE PRECISION",
        "ALTER TABLE prompts ADD COLUMN queued_t DOUBLE PRECISION",
        "ALTER TABLE prompts ADD COLUMN dismissed_t DOUBLE PRECISION",
    ],
]
MIGRATIONS.append(reviews_migration())  # 6
MIGRATIONS.append(floor_migration())  # 7
MIGRATIONS.append([  # 8: the contact-centre platform's ids of a served call (`serve`: AudioHook)
    "ALTER TABLE calls ADD COLUMN conversation_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE calls ADD COLUMN participant_id TEXT NOT NULL DEFAULT ''",
])
SCHEMA_VERSION = len(MIGRATIONS)


def _rule_from_reason(db: _Database) -> None:
    """Version 1 kept the rule only inside `reason` ("rule-id: distress 0.91")."""
    for flag_id, reason in db.query("SELECT id, reason FROM flags"):
        db.execute("UPDATE flags SET rule = ? WHERE id = ?", (reason.split(":", 1)[0].strip(), flag_id))


def _written_from_rows(db: _Database) -> None:
    """The ids of the events already in the store, from the rows they made: every column an id is
    made of is kept (`records.key_of` names them)."""
    keys: list[tuple[str, str]] = []
    for (call_id,) in db.query("SELECT call_id FROM calls"):
        keys.append((event_key("call_start", call_id), call_id))
    for (call_id,) in db.query("SELECT call_id FROM calls WHERE length_s IS NOT NULL"):
        keys.append((event_key("call_end", call_id), call_id))
    for call_id, utterance_id in db.query(
        "SELECT call_id, utterance_id FROM scores UNION SELECT call_id, utterance_id FROM turns"
    ):
        keys.append((event_key("utterance", call_id, utterance_id), call_id))
    for call_id, t, rule, retracted_t in db.query("SELECT call_id, t, rule, retracted_t FROM prompts"):
        keys.append((event_key("prompt", call_id, float(t), rule), call_id))
        if retracted_t is not None:
            keys.append((event_key("retract", call_id, rule, float(t)), call_id))
    for call_id, t, kind, raised_by, rule, utterance_id in db.query(
        "SELECT call_id, t, kind, raised_by, rule, utterance_id FROM flags"
    ):
        keys.append((event_key("flag", call_id, float(t), kind, raised_by, rule, utterance_id), call_id))
    feedback = db.query("SELECT call_id, t, rule, prompt_t, rating FROM feedback")
    for call_id, t, rule, prompt_t, rating in feedback:
        keys.append((event_key("feedback", call_id, float(t), rule, float(prompt_t), rating), call_id))
    for key, call_id in keys:
        db.execute(
            "INSERT INTO written (event_key, call_id) VALUES (?, ?) ON CONFLICT (event_key) DO NOTHING",
            (key, call_id),
        )


def _reviews_from_flags(db: _Database) -> None:
    """Before the audit, a flag kept only its first review (`reviewed_at`, `reviewed_by`)."""
    db.execute(
        "INSERT INTO reviews (flag_id, at, reviewer, outcome) SELECT id, reviewed_at, "
        "COALESCE(reviewed_by, ''), NULL FROM flags WHERE reviewed_at IS NOT NULL ORDER BY id"
    )


_PYTHON_STEPS: dict[str, Callable[[_Database], None]] = {
    "rule_from_reason": _rule_from_reason,
    "written_from_rows": _written_from_rows,
    "reviews_from_flags": _reviews_from_flags,
}



def event_key(kind: str, call_id: str, *identity: str | float) -> str:
    """The id of an event as the store knows it: its type, its call and what tells it apart from
    the call's other events of that type (a flag's time, kind, rule, turn and who raised it; an
    utterance's id; a prompt's time and rule). Derived rather than carried, so that event logs and
    saved-aside files written before there were ids have them too, and so that the rows already in
    a store give the same ids (the migration that added them fills them in from the rows).
    Floats are keyed at full precision: both databases give back the double they were given."""
    text = json.dumps([kind, call_id, *identity], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def migrate(db: _Database) -> None:
    """Bring the store up to SCHEMA_VERSION (StoreError when it is newer than this code)."""
    with db.transaction(slow=True):
        db.migration_lock()
        version = db.version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"flag store {db.where} has schema version {version}, newer than this "
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
            log.info("flag store %s migrated from schema %d to %d", db.where, version, SCHEMA_VERSION)

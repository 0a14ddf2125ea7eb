"""The flag store's schema: each migration takes the store from version i to i + 1, run in one
transaction when a store is opened.

The schema version is SQLite's `PRAGMA user_version`, or the one row of `agent_assist_schema` in
PostgreSQL, where migrations run under an advisory lock so two desktops starting together do not
both migrate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent_assist.store.connection import StoreError, _Database

log = logging.getLogger(__name__)

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
]
SCHEMA_VERSION = len(MIGRATIONS)


def _rule_from_reason(db: _Database) -> None:
    """Version 1 kept the rule only inside `reason` ("rule-id: distress 0.91")."""
    for flag_id, reason in db.query("SELECT id, reason FROM flags"):
        db.execute("UPDATE flags SET rule = ? WHERE id = ?", (reason.split(":", 1)[0].strip(), flag_id))


_PYTHON_STEPS: dict[str, Callable[[_Database], None]] = {"rule_from_reason": _rule_from_reason}



def migrate(db: _Database) -> None:
    """Bring the store up to SCHEMA_VERSION (StoreError when it is newer than this code)."""
    with db.transaction():
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

"""The flag store: every flag, with its call's score timeline, prompts and the agent's feedback, for
the supervisor's after-shift review.

One schema, two databases (SQLite by default, PostgreSQL for a floor), split by idea:

* `connection`: the two databases behind one small interface, and `StoreError`;
* `schema`: the migrations, run when a store is opened;
* `records`: `Store`, what it writes per call and what the review reads (`FlagRecord`,
  `CallRecord`, `Filters`);
* `sink`: `FlagStoreSink`, which writes a call's events as they happen and keeps (then spills)
  what it cannot write yet;
* `importer`: `import_files`, which loads saved-aside events and event logs, checked line by line;
* `reviews`: what a reviewer concludes about a flag (`Outcome`) and the audit of who did what.

Text reaches the store only through `agent_assist.redact`, and only as parameters of SQL, never
inside it.
"""

from agent_assist.store.connection import StoreError, default_path
from agent_assist.store.importer import ImportReport, import_files
from agent_assist.store.records import (
    SEVERITIES,
    SEVERITY_RANK,
    CallRecord,
    FeedbackRecord,
    Filters,
    FlagRecord,
    Store,
    open_store,
    utc_text,
)
from agent_assist.store.reviews import AuditLine, Outcome
from agent_assist.store.schema import MIGRATIONS, SCHEMA_VERSION
from agent_assist.store.sink import (
    EXCERPT_AFTER,
    EXCERPT_BEFORE,
    TRANSCRIPT_MODES,
    FlagStoreSink,
    StoreOptions,
    write_private,
)

__all__ = [
    "EXCERPT_AFTER",
    "EXCERPT_BEFORE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "SEVERITY_RANK",
    "TRANSCRIPT_MODES",
    "AuditLine",
    "CallRecord",
    "FeedbackRecord",
    "Filters",
    "FlagRecord",
    "FlagStoreSink",
    "ImportReport",
    "Outcome",
    "Store",
    "StoreError",
    "StoreOptions",
    "default_path",
    "import_files",
    "open_store",
    "utc_text",
    "write_private",
]

"""Read the utterances a quality team wants scored: CSV/TSV with a header, or one per line.

Rows are split only where the file's own line breaks are (`\\n`, `\\r\\n`), never at the other
characters Python counts as line boundaries (U+2028, NEL, form feed…), and a CSV field may hold
quoted line breaks: one input row is always one output row.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from agent_assist.errors import AgentAssistError
from agent_assist.scoring.turns import Turn

csv.field_size_limit(1 << 24)


def _lines(raw: str) -> list[str]:
    """Plain text, one utterance per line: split at \\n alone (with a \\r before it dropped)."""
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_turns(path: Path, column: str | None = None, agent_column: str | None = None,
               customer_column: str | None = None) -> list[Turn]:
    """The utterances in `path` ('-' for stdin), one per input row, in order, each with the context
    named by `agent_column` (the agent's words before it) and `customer_column` (the customer's
    previous turn), when given.

    `.csv` and `.tsv` files (or any file when a column is named) are read as a table with a header;
    the text is `column`, else a column called "text", else the only column. Anything else is plain
    text, one utterance per line; blank lines stay as empty utterances so rows still line up.
    """
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AgentAssistError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise AgentAssistError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise AgentAssistError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    table = suffix in (".csv", ".tsv") or any(c is not None for c in (column, agent_column, customer_column))
    if not table:
        return [Turn(line) for line in _lines(raw)]
    first = raw.split("\n", 1)[0]
    delimiter = "\t" if suffix == ".tsv" or (suffix != ".csv" and "\t" in first) else ","
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return []
        names = [h.strip() for h in header]

        def index_of(name: str | None, what: str) -> int | None:
            if name is None:
                return None
            if name not in names:
                raise AgentAssistError(f"{path}: no {what} column {name!r} (columns: {', '.join(names)})")
            return names.index(name)

        if column is not None:
            index = index_of(column, "text")
        elif "text" in names:
            index = names.index("text")
        elif len(names) == 1:
            index = 0
        else:
            raise AgentAssistError(
                f"{path}: several columns and none called 'text'; choose one with "
                f"--text-column (columns: {', '.join(names)})"
            )
        agent, customer = index_of(agent_column, "agent"), index_of(customer_column, "customer")
        turns = []
        for row in reader:
            if not row:
                turns.append(Turn(""))
                continue
            wanted = [i for i in (index, agent, customer) if i is not None]
            if max(wanted) >= len(row):
                raise AgentAssistError(f"{path}:{reader.line_num}: row has {len(row)} columns, "
                                       f"expected {len(names)}")
            turns.append(Turn(row[index] if index is not None else "",
                              agent_prev=row[agent] if agent is not None else "",
                              customer_prev=row[customer] if customer is not None else ""))
        return turns
    except csv.Error as exc:
        raise AgentAssistError(f"{path}:{reader.line_num}: not a well-formed table ({exc})") from None


def read_texts(path: Path, column: str | None = None) -> list[str]:
    """The utterances in `path`, without context (see `read_turns`)."""
    return [t.text for t in read_turns(path, column)]

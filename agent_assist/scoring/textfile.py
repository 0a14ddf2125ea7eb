"""Read the utterances a quality team wants scored: CSV/TSV with a header, or one per line.

One input row is always one output row, or the file is refused with its line:

- rows are split only at `\\n` (with a `\\r` before it dropped), never at the other characters
  Python counts as line boundaries (U+2028, NEL, form feed, U+001C…), and the file is read as
  bytes, so no newline translation turns a `\\r` into a row break either;
- a CSV field may hold quoted line breaks; a quote never closed (which would swallow every row
  after it) or a bad quote is an error naming the line;
- bounds: the file at `MAX_FILE_BYTES`, each text at `MAX_TEXT_CHARS`; only a regular file (or
  `-`, stdin) is read, so a FIFO or a device is refused at once (`inputs`).
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from agent_assist import inputs
from agent_assist.errors import AgentAssistError
from agent_assist.scoring.turns import Turn
from agent_assist.text import terminal_safe

#: The largest input file (about a million utterances), and the longest text in one row: an
#: utterance, or the agent's words before it (a turn of several minutes is a few thousand).
MAX_FILE_BYTES = 100_000_000
MAX_TEXT_CHARS = 20_000


def _read(path: Path) -> str:
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise inputs.InputError("-", f"more than {MAX_FILE_BYTES:,} bytes on stdin; split the input")
    else:
        data = inputs.read_bytes(path, MAX_FILE_BYTES)
    return inputs.decode(data, path, bom=True)


def _bounded(text: str, path: Path, line: int, what: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise inputs.InputError(path, f"{what} is {len(text):,} characters long; at most {MAX_TEXT_CHARS:,} "
                                "(one utterance a row)", line)
    return text


def _lone_returns_hidden(raw: str) -> tuple[str, str]:
    """`raw` with each `\\r` not before a `\\n` replaced by a private-use character absent from
    it (returned too, to put them back): a lone `\\r` is text, as in a plain-text file, never a
    row break. (Python's own csv writer leaves such a field unquoted, and its reader splits there.)"""
    if "\r" not in raw.replace("\r\n", ""):
        return raw, ""
    mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in raw)
    return re.sub(r"\r(?!\n)", mark, raw), mark


def _physical_lines(raw: str) -> Iterator[str]:
    """`raw` in lines ending at `\\n` (kept, as `csv` wants them), and nowhere else."""
    start = 0
    while start < len(raw):
        end = raw.find("\n", start)
        end = len(raw) if end < 0 else end + 1
        yield raw[start:end]
        start = end


def read_turns(path: Path, column: str | None = None, agent_column: str | None = None,
               customer_column: str | None = None) -> list[Turn]:
    """The utterances in `path` ('-' for stdin), one per input row, in order, each with the context
    named by `agent_column` (the agent's words before it) and `customer_column` (the customer's
    previous turn), when given.

    `.csv` and `.tsv` files (or any file when a column is named) are read as a table with a header;
    the text is `column`, else a column called "text", else the only column. Anything else is plain
    text, one utterance per line; blank lines stay as empty utterances so rows still line up.
    """
    raw = _read(path)
    where = terminal_safe(path)
    suffix = path.suffix.lower()
    table = suffix in (".csv", ".tsv") or any(c is not None for c in (column, agent_column, customer_column))
    if not table:
        lines = inputs.split_lines(raw)
        return [Turn(_bounded(line, path, n, "the line")) for n, line in enumerate(lines, 1)]
    first = raw.split("\n", 1)[0]
    delimiter = "\t" if suffix == ".tsv" or (suffix != ".csv" and "\t" in first) else ","
    raw, mark = _lone_returns_hidden(raw)
    reader = csv.reader(_physical_lines(raw), delimiter=delimiter, strict=True)
    row_start = 1
    try:
        header = next(reader, None)
        if header is None:
            return []
        if mark:
            header = [h.replace(mark, "\r") for h in header]
        names = [h.strip() for h in header]

        def index_of(name: str | None, what: str) -> int | None:
            if name is None:
                return None
            if name not in names:
                raise AgentAssistError(f"{where}: no {what} column {terminal_safe(repr(name))} "
                                       f"(columns: {terminal_safe(', '.join(names))[:500]})")
            return names.index(name)

        if column is not None:
            index = index_of(column, "text")
        elif "text" in names:
            index = names.index("text")
        elif len(names) == 1:
            index = 0
        else:
            raise AgentAssistError(
                f"{where}: several columns and none called 'text'; choose one with "
                f"--text-column (columns: {terminal_safe(', '.join(names))[:500]})"
            )
        agent, customer = index_of(agent_column, "agent"), index_of(customer_column, "customer")
        turns = []
        row_start = reader.line_num + 1
        for row in reader:
            if not row:
                turns.append(Turn(""))
                row_start = reader.line_num + 1
                continue
            if mark:
                row = [field.replace(mark, "\r") for field in row]
            wanted = [i for i in (index, agent, customer) if i is not None]
            if max(wanted) >= len(row):
                raise AgentAssistError(f"{where}:{row_start}: row has {len(row)} columns, "
                                       f"expected {len(names)}")
            text, agent_prev, customer_prev = (
                "" if i is None else _bounded(row[i], path, row_start, what)
                for i, what in ((index, "the text"), (agent, "the agent column"),
                                (customer, "the customer column")))
            turns.append(Turn(text, agent_prev=agent_prev, customer_prev=customer_prev))
            row_start = reader.line_num + 1
        return turns
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise inputs.InputError(path, "a quoted field opened in this row is never closed (it would "
                                    "swallow every row after it)", row_start) from None
        if "field larger than field limit" in str(exc):
            raise inputs.InputError(path, f"a field longer than {csv.field_size_limit():,} characters",
                                    row_start) from None
        raise inputs.InputError(path, f"not a well-formed table ({exc})", reader.line_num) from None


def read_texts(path: Path, column: str | None = None) -> list[str]:
    """The utterances in `path`, without context (see `read_turns`)."""
    return [t.text for t in read_turns(path, column)]

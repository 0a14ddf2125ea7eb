"""Read the utterances a quality team wants scored: CSV/TSV with a header, or one per line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from agent_assist.errors import AgentAssistError

csv.field_size_limit(1 << 24)


def read_texts(path: Path, column: str | None = None) -> list[str]:
    """The utterances in `path` ('-' for stdin), one per input row, in order.

    `.csv` and `.tsv` files (or any file when `column` is given) are read as a table with a header;
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
    if suffix not in (".csv", ".tsv") and column is None:
        lines = raw.splitlines()
        return lines
    delimiter = "\t" if suffix == ".tsv" or (suffix != ".csv" and "\t" in raw.split("\n", 1)[0]) else ","
    reader = csv.reader(raw.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return []
    names = [h.strip() for h in header]
    if column is not None:
        if column not in names:
            raise AgentAssistError(f"{path}: no column {column!r} (columns: {', '.join(names)})")
        index = names.index(column)
    elif "text" in names:
        index = names.index("text")
    elif len(names) == 1:
        index = 0
    else:
        raise AgentAssistError(
            f"{path}: several columns and none called 'text'; choose one with "
            f"--text-column (columns: {', '.join(names)})"
        )
    texts = []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            texts.append("")
            continue
        if index >= len(row):
            raise AgentAssistError(f"{path}:{line_no}: row has {len(row)} columns, expected {len(names)}")
        texts.append(row[index])
    return texts

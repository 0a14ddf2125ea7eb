"""Where each table and key of a TOML file is, by line: what `tomllib` parses but does not say.

The linter reports every problem at its line, so it needs the line of each `[[rule]]` header and
of each key in it. Reading that off the lines with a pattern is fooled by a multi-line string
holding a line `[[rule]]`, by an array spanning lines, or by a header written `[["rule"]]`, and
then it pairs tables with the wrong lines, or misses one. This scanner reads the text as TOML
does (strings, comments, brackets), and is only ever run on a text `tomllib` has parsed, so it
need not report errors. Header and key names are read by `tomllib` itself, so `"rule"`, `'rule'`
and `"r\\u0075le"` are all `rule`.

`packs` checks what this finds against what `tomllib` parsed, table by table: a table whose
header cannot be found is an error, never a rule silently skipped.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

# in plain TOML, the next character that may open or close something
_NEXT = re.compile(r"""["'#\[\]{}\n]""")
_STRINGS = {
    '"""': re.compile(r'"""(?:[^"\\]++|\\.|"(?!""))*+"""(?:"{0,2})', re.S),
    "'''": re.compile(r"'''(?:[^']++|'(?!''))*+'''(?:'{0,2})", re.S),
    '"': re.compile(r'"(?:[^"\\\n]++|\\.)*+"'),
    "'": re.compile(r"'[^'\n]*+'"),
}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BLANK = re.compile(r"[ \t]*")
_HEADER_END = re.compile(r"""["'\]\n]""")
_KEY_END = re.compile(r"""["'=\n]""")


@dataclass
class Table:
    """A `[table]` or `[[array.of.tables]]` header: its key path, line, and the first line of
    each key set directly in it (by the key's first part: `flag.kind = …` is `flag`)."""

    path: tuple[str, ...]
    array: bool
    line: int
    keys: dict[str, int] = field(default_factory=dict)


def _key_path(source: str) -> tuple[str, ...]:
    """A dotted TOML key (`rule`, `"rule"`, `rule . flag`) as its parts; () if it is not one."""
    source = source.strip()
    if _BARE_KEY.fullmatch(source):
        return (source,)
    try:
        data = tomllib.loads(f"{source} = 0")
    except tomllib.TOMLDecodeError:
        return ()
    path: list[str] = []
    while isinstance(data, dict) and len(data) == 1:
        key, data = next(iter(data.items()))
        path.append(key)
    return tuple(path)


def _string_end(text: str, pos: int) -> int:
    """The index just past the string that starts at `pos`."""
    for opener in ('"""', "'''", '"', "'"):
        if text.startswith(opener, pos):
            m = _STRINGS[opener].match(text, pos)
            return m.end() if m else len(text)
    return pos + 1


def _until(text: str, pos: int, stops: re.Pattern[str]) -> int:
    """The index of the first of `stops` at or after `pos` outside a string (or the text's end)."""
    while (m := stops.search(text, pos)) is not None and m.group() in "\"'":
        pos = _string_end(text, m.start())
    return m.start() if m is not None else len(text)


def scan(text: str) -> list[Table]:
    """Every table header of `text` (a valid TOML document) in order, after a root table (path
    `()`) that holds the keys before the first header."""
    tables = [Table((), False, 1)]
    pos, line, depth, line_start = 0, 1, 0, True
    while pos < len(text):
        if line_start and depth == 0:
            # the start of a statement: a header, a key = value, a comment or a blank line
            pos = _BLANK.match(text, pos).end()  # type: ignore[union-attr]
            line_start = False
            if text.startswith("[", pos):
                array = text.startswith("[[", pos)
                start = pos + (2 if array else 1)
                end = _until(text, start, _HEADER_END)
                tables.append(Table(_key_path(text[start:end]), array, line))
                pos = end + (2 if array else 1)
                continue
            if pos < len(text) and text[pos] not in "#\r\n":
                end = _until(text, pos, _KEY_END)
                path = _key_path(text[pos:end])
                if path:
                    tables[-1].keys.setdefault(path[0], line)
                pos = end + 1  # past the `=`: the value follows
                continue
        m = _NEXT.search(text, pos)
        if m is None:
            break
        pos = m.start()
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
            line_start = True
        elif char in "\"'":
            end = _string_end(text, pos)
            line += text.count("\n", pos, end)
            pos = end
        elif char == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline
        elif char in "[{":
            depth += 1
            pos += 1
        else:
            depth = max(0, depth - 1)
            pos += 1
    return tables

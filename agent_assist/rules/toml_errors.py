"""A TOML syntax error in a pack, said so a rule author can fix it: its line, what is on that line,
and the fix.

`tomllib` says only where it stopped ("Expected newline or end of document after a statement (at
line 3, column 28)"). The mistakes authors make are few, and each reads the same way to the parser:
an apostrophe inside single quotes (`prompt = 'Don't argue'`: the text ends at the apostrophe), a
double quote inside double quotes, a backslash that is not an escape, a text with no closing quote,
a value not in quotes, a key given twice, a list left open. Each gets its own fix; where the fix is
one way of quoting the same text, the fixed line itself is offered, checked to parse first.
"""

from __future__ import annotations

import re
import tomllib
from typing import NamedTuple

from agent_assist.rules import conditions

_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z0-9_.\"' -]+?\s*=\s*)(.*?)\s*(#[^'\"]*)?$")
SHOWN = 100  # characters of the offending line shown


class TomlError(NamedTuple):
    """Where a pack's TOML broke (1-based line; 0 when it cannot be told), what, and the fix."""

    line: int
    message: str
    hint: str


def explain(exc: tomllib.TOMLDecodeError, text: str) -> TomlError:
    """`exc`, raised by `tomllib.loads(text)`, as a line number, a message quoting the offending
    line, and the fix."""
    said = str(exc)
    m = _WHERE.search(said)
    reason = said[: m.start()] if m else said
    lines = text.splitlines()
    if m and m.group(1):
        number = int(m.group(1))
        # a list left open on an earlier line reads the next key as one of its items: it is there
        opened = _last_opened("\n".join(lines[: number - 1]))
        if opened:
            number, reason = opened, "Unclosed array"
    else:  # at the end of the document: something opened and never closed
        number = _last_opened(text) or len(lines)
    source = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    what, fix = _diagnosis(reason, source)
    return TomlError(number, f"not valid TOML, {what}" + (f": {_shown(source)}" if source else ""), fix)


def _shown(line: str) -> str:
    return line if len(line) <= SHOWN else line[: SHOWN - 1] + "…"


def _requoted(value: str) -> str | None:
    """`value`, the raw text of a value written between quotes with stray quotes of the same kind
    inside, as the same text in double quotes; None when it does not look like one quoted text."""
    quote = value[:1]
    if len(value) < 2 or quote not in "'\"" or value[-1] != quote or value.startswith(quote * 3):
        return None
    inner = value[1:-1]
    if quote == "'":  # a literal string: every character is itself (`''` was meant as one apostrophe)
        inner = inner.replace("''", "'")
        return '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + re.sub(r'(?<!\\)"', r'\\"', inner) + '"'


#: A phrase in single quotes inside a condition: the quotes stand at word edges, so an apostrophe
#: inside a word ("can't") is not one of them.
_SINGLE_QUOTED_PHRASE = re.compile(r"(?<![\w\\])'(.+?)'(?!\w)")


def _phrases_double_quoted(value: str) -> str:
    """A `when` value in double quotes (as `_requoted` writes it) with its phrases in single quotes
    written the rule language's way, in double quotes: "customer says \"can't pay\""."""
    inner = value[1:-1]
    return '"' + _SINGLE_QUOTED_PHRASE.sub(lambda m: '\\"' + m.group(1) + '\\"', inner) + '"'


def _is_condition(line: str) -> bool:
    """True unless `line` sets `when` to a condition the rule language cannot read."""
    table = tomllib.loads(line)
    if "when" not in table:
        return True
    try:
        conditions.parse(str(table["when"]))
    except conditions.ConditionError:
        return False
    return True


def _parses(line: str) -> bool:
    try:
        tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return False
    return True


def _diagnosis(reason: str, source: str) -> tuple[str, str]:
    """What went wrong (in the author's terms) for the error `reason` on the line `source`, and the fix."""
    assignment = _ASSIGNMENT.match(source)
    key, value = (assignment.group(1), assignment.group(2)) if assignment else ("", "")
    if reason.startswith("Expected newline or end of document") and value[:1] in ("'", '"'):
        # the value, or the value without a trailing comment (which may hold quotes of its own)
        candidates = [value, *(value[:i].rstrip() for i in range(len(value) - 1, 0, -1) if value[i] == "#")]
        requoted = [q for q in map(_requoted, candidates) if q]
        if key.strip().rstrip("=").strip() == "when":  # its phrases go in double quotes too
            requoted = [_phrases_double_quoted(q) for q in requoted]
        fixed = [f"{key}{q}".strip() for q in requoted]
        offer = next((f": {_shown(line)}" for line in fixed if _parses(line) and _is_condition(line)), "")
        if value[0] == "'":
            return ("text in single quotes ends at the next ' (an apostrophe too)",
                    f"write the value in double quotes, a \" inside them as \\\"{offer}")
        return ('text in double quotes ends at the next "',
                f"write a \" inside the text as \\\", or put the value in single quotes if it has no "
                f"apostrophe{offer}")
    for starts, what, fix in _MISTAKES:
        if reason.startswith(starts):
            return what, fix
    return reason[:1].lower() + reason[1:], 'text goes in double quotes: "…" (TOML\'s syntax: https://toml.io)'


#: tomllib's reason (how it starts) -> what the author did, and the fix.
_MISTAKES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("Unescaped",), "a backslash in double quotes that is not an escape",
     'write a backslash as \\\\ (the escapes are \\" \\\\ \\n \\uXXXX), or put the value in single quotes'),
    (("Illegal character", "Unterminated string"), "a text with no closing quote on its line",
     'close it on the same line, or use """ … """ for several lines; if it holds an apostrophe, '
     "write it in double quotes"),
    (("Invalid value",), "a value missing, or text not in quotes",
     'write text in double quotes: key = "…"; numbers, true, false, [lists] and {tables} go unquoted'),
    (("Expected '=' after a key",), "a line that is not key = value",
     "write one key = value a line; a key with spaces needs quotes"),
    (("Cannot overwrite a value", "Cannot declare"), "a key set twice in one table",
     "set each field once per [[rule]] or [[override]], and begin each rule with its own [[rule]] line"),
    (("Expected ']",), "a table header not closed",
     "a header is a line of its own: [[rule]], [[override]] or [pack]"),
    (("Unclosed",), "a list or table opened here is never closed",
     "close it with ] or }, with commas between the items"),
    (("Invalid initial character for a key", "Invalid statement"), "a line TOML does not read",
     "a line is key = value, a [[rule]] or [[override]] header, a # comment, or blank"),
)


def _last_opened(text: str) -> int:
    """The line of the last `[` or `{` still open at the end of `text`, outside quotes and comments
    (roughly, as the text is not TOML): where a list left open began. 0 if none is."""
    opened: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        quote = ""
        for char in line:
            if quote:
                if char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                opened.append(number)
            elif char in "]}" and opened:
                opened.pop()
    return opened[-1] if opened else 0

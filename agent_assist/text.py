"""Text from outside the program (a file, a call, a transcript, a rule pack), made safe to show.

Everything that prints such text to a terminal goes through `terminal_safe`: the console transcript,
`rules replay` and `rules lint`, `review show` and `review list`, and every error message (the CLI's
`main` passes its one line through it). A terminal obeys what it is sent, so a transcript holding
ESC sequences could clear the screen, retitle the window or rewrite earlier lines, and bidi
controls (U+202E RIGHT-TO-LEFT OVERRIDE and friends) make text read differently from what it is.

- C0 and C1 controls, DEL, and the bidi embeddings, overrides, isolates and marks are shown
  escaped (`\\x1b`, `\\u202e`), so a reader sees that they were there and nothing acts on them;
- line and paragraph breaks (`\\n`, `\\r`, U+2028, U+2029, NEL) and the other separators (tab,
  vertical tab, form feed, U+001C-U+001F) become one space: within a line of output they only
  ever separate words, and a line break in a field must not start a fake line of output.

`excerpt` quotes a value for an error message: safe, and bounded, whatever its type or size.
`printable` is for a page (the HTML report, which escapes markup on top): the same characters are
removed rather than shown, except tab and newline, which a page lays out as white space;
`html_text` is both, for a page's text and attributes.
"""

from __future__ import annotations

import html
import re
import reprlib
from typing import Any

# the breaks and separators that stand between words: shown as a space
_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"
# the rest of C0 and C1, DEL, and the bidi controls: shown escaped
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                     "\ud800-\udfff]")


# what a page must not get: the same class, less tab and newline
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without control characters (tab and newline are kept) or bidirectional formatting
    characters: an override makes "gnp.exe" read as "exe.png", and an unclosed one reorders
    everything after it on the line or in the page."""
    return _UNSHOWABLE.sub("", text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SPACES:
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """`text` as a string that does nothing to a terminal but show itself (see the module's notes).

    Lone surrogates (which no terminal encoding can carry) are escaped too, so printing the result
    never fails."""
    return _UNSAFE.sub(_escaped, str(text))


def excerpt(value: Any, limit: int = 60) -> str:
    """`value` as an error message quotes it: its repr (strings in quotes), terminal-safe, and cut to
    about `limit` characters, saying how long a long string was. Never fails and never takes long:
    an integer too long for Python to print is described, and containers are shown a few levels
    and items deep (`reprlib`)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    if isinstance(value, str):
        if len(value) <= limit:
            return terminal_safe(repr(value))
        return terminal_safe(repr(value[:limit])[:-1]) + f"…' ({len(value):,} characters)"
    shown = _SHORT.repr(value)
    return terminal_safe(shown if len(shown) <= limit else shown[:limit] + "…")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 40, 40, 40


def html_text(value: object) -> str:
    """Text for a page (the review report, the packs compared, the floor): escaped for HTML, and
    without control or bidirectional formatting characters (an override left open reverses the rest
    of the page, a control character is not text)."""
    return html.escape(printable(str(value)), quote=True)

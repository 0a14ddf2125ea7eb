"""Text from a call (or from a file someone handed us), made safe to show: without the characters
that are not text but instructions to whatever displays it.

* C0 and C1 control characters (ESC starts a terminal's escape sequences; NUL, BEL, backspace and
  carriage return rewrite what a reader sees), except tab and newline;
* the bidirectional formatting characters (U+202A-U+202E embeddings and overrides, U+2066-U+2069
  isolates, U+200E/U+200F marks, U+061C the Arabic letter mark): an override makes "gnp.exe" read as
  "exe.png", and an unclosed one reorders everything after it on the line or in the page.

The HTML report escapes text for markup on top of this (`html.escape`); a terminal gets it as is.
"""

from __future__ import annotations

import re

_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without control characters (tab and newline are kept) or bidirectional formatting
    characters."""
    return _UNSHOWABLE.sub("", text)

"""Redaction on hostile text of 100,000 characters: each pass over a turn is linear (main took 64 s
on a 100,000-character word; these take about a second or less each). What comes out is asserted
here; how long it takes, at n and 4n characters, is `bench/redaction.py`'s (speed targets belong
to benchmarks)."""

from __future__ import annotations

import pytest

from agent_assist.redact import redact, redact_words
from tests.redaction_cases import TODAY

N = 100_000

HOSTILE = [
    ("a 100k-character word", "a" * N, "a" * N),
    ("100k digits", "1" * N, "[number]"),
    ("'one ' 25k times", "one " * (N // 4), "[number] "),
    ("digit, space", "1 " * (N // 2), "[number] "),
    ("letter, digit", "a1" * (N // 2), "[number]"),
    ("letter, dot", "a." * (N // 2), "a." * (N // 2)),
    ("'x at ' 20k times", "x at " * (N // 5), "x at " * (N // 5)),
    ("capitalised words", "Ab " * (N // 3), "Ab " * (N // 3)),
    ("number, name, no street", "12 Smith " * (N // 9), "12 Smith " * (N // 9)),
    ("'my name is ' with no name", "my name is " * (N // 11), "my name is " * (N // 11)),
    ("digit, hyphen", "1-" * (N // 2), "[number]-"),
    ("fillers between digits", "um 4 uh 1 " * (N // 10), "um [number] "),
    ("markers of an earlier pass", "[card] " * (N // 7), "[card] " * (N // 7)),
    ("full stops", "." * N, "." * N),
    ("cards, one after another", "card 4111 1111 1111 1111 and " * (N // 29), "card [card] and " * (N // 29)),
]


@pytest.mark.parametrize(("text", "written"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_text_is_redacted_and_finishes(text: str, written: str) -> None:
    assert redact(text, today=TODAY).text == written


def test_a_hostile_turns_words_follow_it_in_one_pass() -> None:
    """Many spans and many words: each word is matched to its span in one pass over both."""
    text = "card 4111 1111 1111 1111 and " * (N // 29)
    words = text.split(" ")
    written = redact_words(words, redact(text, today=TODAY))
    assert written.count("[card]") == 4 * (N // 29) and "4111" not in written

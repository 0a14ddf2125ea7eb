"""Redaction on what people say on calls, as speech-to-text writes it: the written table in
tests/data/redaction/ (dev.txt, tuned on; heldback.txt and heldback2.txt, each written after the
rules were frozen, and never tuned on before its first run). Targets: at least 99% of the details
removed everywhere, and at least 97% of the words removed being ones that had to go, on the whole
table and on the held-back parts alone. `bench/redaction.py` prints the same figures per
category."""

from __future__ import annotations

import pytest

from agent_assist.redact import CallRedactor, redact, redact_words
from tests.redaction_cases import CATEGORIES, TODAY, Case, evaluate, load, run

DEV, HELD_BACK = load("dev.txt"), load("heldback.txt") + load("heldback2.txt")
EVERY = DEV + HELD_BACK


def test_the_table_covers_what_callers_say() -> None:
    positives = [c for c in EVERY if c.category != "neg"]
    assert len(positives) >= 300 and sum(c.category == "neg" for c in EVERY) >= 150
    assert sum(c.category != "neg" for c in HELD_BACK) >= 100
    for category in CATEGORIES:  # every kind of detail, in both parts
        assert sum(c.category == category or any(d.kind == category for d in c.details) for c in DEV) >= 5
        assert any(c.category == category or any(d.kind == category for d in c.details) for c in HELD_BACK)


@pytest.mark.parametrize("part", ["whole table", "held back"])
def test_recall_and_precision_meet_their_targets(part: str) -> None:
    total, by_kind = evaluate(EVERY if part == "whole table" else HELD_BACK)
    assert total.recall >= 0.99, f"recall {total.recall:.1%}; leaked:\n" + "\n".join(total.leaks)
    assert total.precision >= 0.97, f"precision {total.precision:.1%}; removed:\n" + "\n".join(total.over)
    assert all(t.recall >= 0.95 for t in by_kind.values()), {k: t.recall for k, t in by_kind.items()}


@pytest.mark.parametrize("case", [c for c in EVERY if c.details], ids=lambda c: c.where)
def test_the_words_of_a_turn_are_redacted_where_its_text_was(case: Case) -> None:
    """The event log keeps a final's words beside its text (the words joined by single spaces
    are the text): a word is replaced exactly when its text was redacted."""
    words = case.text.split(" ")
    result = run(case)
    written = redact_words(words, result)
    at = 0
    for word, out in zip(words, written, strict=True):
        hit = any(s.start < at + len(word) and at < s.end for s in result.spans)
        assert (out == f"[{out[1:-1]}]" and out != word) if hit else out == word, (case.where, word, written)
        at += len(word) + 1


def test_a_second_pass_over_what_people_say_changes_nothing() -> None:
    """Events imported from a log were redacted when they were written, and are redacted again."""
    changed = []
    for case in EVERY:
        once = run(case).text
        call = CallRedactor(today=TODAY)
        if case.before:
            call.redact(redact(case.before, today=TODAY).text, t=0.0)
        if call.redact(once, t=3.0).text != once:
            changed.append(f"{case.where}: {once!r}")
    assert not changed, "\n".join(changed)

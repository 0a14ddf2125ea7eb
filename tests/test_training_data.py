"""The training data in data/ is kept apart from the evaluation sets it is measured on."""

from __future__ import annotations

import csv
import re

from agent_assist.scoring import corpus
from tests.conftest import REPO

CRISIS_EVAL = REPO / "tests" / "data" / "crisis_eval.tsv"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _rows(path):
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_crisis_set_is_large_and_balanced_enough():
    rows = _rows(CRISIS_EVAL)
    positives = sum(r["crisis"] == "1" for r in rows)
    assert len(rows) >= 150
    assert positives >= 75 and len(rows) - positives >= 60
    assert {r["kind"] for r in rows if r["crisis"] == "1"} >= {"self-harm", "violence", "danger", "threat"}


def test_no_evaluation_sentence_is_in_the_training_data():
    """No crisis-set sentence appears in data/ or differs from a training sentence by a word or two."""
    training = [r.text for r in corpus.contact_centre(REPO / "data")]
    near = []
    for row in _rows(CRISIS_EVAL):
        a = _words(row["text"])
        for text in training:
            b = _words(text)
            if len(a & b) / len(a | b) >= 0.8:
                near.append((row["text"], text))
    assert near == []


def test_every_training_source_has_its_licence():
    for folder in ("goemotions", "davidson", "counsel_chat", "bitext"):
        assert any(p.name.upper().startswith("LICENSE") for p in (REPO / "data" / folder).iterdir()), folder


def test_labels_are_binary_and_texts_present():
    rows = corpus.load(REPO / "data")
    assert len(rows) > 40000
    for row in rows:
        assert row.text.strip()
        for signal in corpus.SIGNALS:
            assert getattr(row, signal) in (None, 0, 1)
    sources = {r.source for r in rows}
    assert sources == {
        "goemotions",
        "davidson",
        "counsel_chat",
        "bitext",
        "contact_centre",
        "contact_centre_crisis",
    }

"""The rule condition language: parsed by our own grammar, never evaluated as code."""

from __future__ import annotations

import pytest

from agent_assist.rules.conditions import (
    SIGNALS,
    And,
    Compare,
    ConditionError,
    Not,
    Or,
    Says,
    Signal,
    evaluate,
    names,
    parse,
)


def test_precedence_not_binds_tighter_than_and_than_or():
    node = parse("not crisis >= 0.5 and distress >= 0.7 or escalation > 0.8")
    assert node == Or((And((Not(Compare("crisis", ">=", 0.5)), Compare("distress", ">=", 0.7))),
                       Compare("escalation", ">", 0.8)))
    assert parse("distress >= 0.7 and (escalation > 0.8 or crisis > 0.5)") == And(
        (Compare("distress", ">=", 0.7), Or((Compare("escalation", ">", 0.8), Compare("crisis", ">", 0.5)))))


@pytest.mark.parametrize(("condition", "signals", "expected"), [
    ("distress >= 0.7", {"distress": 0.7}, True),
    ("distress >= 0.7", {"distress": 0.69}, False),
    ("distress >= 0.7", {}, False),  # a signal not measured yet never fires a rule
    ("not distress >= 0.7", {}, True),
    ("escalation_rise > 0.2 and escalation_trend >= 0.5",
     {"escalation_rise": 0.3, "escalation_trend": 0.6}, True),
    ("agent_words_per_s > 3.5 or overlap_s >= 1", {"agent_words_per_s": 2.0, "overlap_s": 1.5}, True),
    ("silence_s >= 30", {"silence_s": 12.0}, False),
])
def test_comparisons(condition, signals, expected):
    assert evaluate(parse(condition), signals, {}) is expected


@pytest.mark.parametrize(("said", "expected"), [
    ("I want to speak to your MANAGER, now!", True),
    ("put me through to a supervisor", True),
    ("it was a managerial decision", False),  # whole words only
    ("", False),
])
def test_phrases_match_whole_words_ignoring_case_and_punctuation(said, expected):
    node = parse('customer says "manager", "supervisor"')
    assert node == Says("customer", ("manager", "supervisor"))
    assert evaluate(node, {}, {"customer": said}) is expected
    assert evaluate(node, {}, {"agent": said}) is False


def test_multi_word_phrases_and_escaped_quotes():
    node = parse(r'agent says "the system says", "it\"s policy"')
    assert evaluate(node, {}, {"agent": "Well, the system says you owe it."})
    assert evaluate(node, {}, {"agent": 'It"s policy, sorry'})


def test_names_say_what_a_prompt_was_fired_by():
    node = parse('distress >= 0.6 and not customer says "thanks" or escalation_rise > 0.2')
    assert names(node) == {"distress", "customer_says", "escalation_rise"}


@pytest.mark.parametrize(("condition", "message", "column", "hint"), [
    ("distres >= 0.5", "unknown signal 'distres'", 1, "did you mean 'distress'?"),
    ("distress >= 1.5", "distress is a probability; 1.5 is outside [0, 1]", 13, ""),
    ("distress >=", "expected a number after '>='", 12, ""),
    ("(distress > 0.2", "missing ')'", 16, ""),
    ("distress > 0.2 escalation > 0.1", "unexpected 'escalation'; expected 'and', 'or' or the end", 16, ""),
    ('customer says', 'expected a quoted phrase, like "manager"', 14, ""),
    ('agent says ""', "an empty phrase matches everything", 12, ""),
    ("distress > 0.2; import os", "unexpected character ';'", 15, ""),
    ("__import__('os').system('x')", "unexpected character \"'\"", 12, ""),
    ("__import__ >= 1", "unknown signal '__import__'", 1, ""),
    ("", "empty condition", 1, ""),
])
def test_errors_say_where_and_why(condition, message, column, hint):
    with pytest.raises(ConditionError) as err:
        parse(condition)
    assert str(err.value) == message
    assert err.value.column == column
    if hint:
        assert err.value.hint == hint


def test_the_language_names_exactly_the_signals():
    """Every `Signal` parses, is described, and an unknown name is answered with the same list
    (`tests/test_rules_engine.py` holds the engine to producing each one)."""
    assert set(SIGNALS) == set(Signal)
    for signal in Signal:
        assert parse(f"{signal} >= 0") == Compare(signal, ">=", 0.0)
    with pytest.raises(ConditionError) as unknown:
        parse("zzzz >= 1")
    assert unknown.value.hint == f"signals: {', '.join(Signal)}"

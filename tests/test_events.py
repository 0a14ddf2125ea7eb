import json
import re
from dataclasses import fields, replace
from enum import StrEnum
from typing import Any

import pytest

from agent_assist.events import (
    PUBLIC_EVENT_TYPES,
    SCHEMA_VERSION,
    CallEnd,
    CallStart,
    DeviceState,
    DeviceStatus,
    DropKind,
    Dropped,
    EndReason,
    EventParseError,
    Feedback,
    Flag,
    FlagKind,
    Listening,
    Partial,
    Prompt,
    PromptSeen,
    PromptState,
    PublicEvent,
    Retract,
    Scores,
    Severity,
    Speaker,
    SupervisorNote,
    Utterance,
    Word,
    event_from_json,
)
from tests.conftest import REPO

EXAMPLES = [
    CallStart(t=0.0, call_id="c1", source="call.flac",
              channels={"left": Speaker.CUSTOMER, "right": Speaker.AGENT},
              started_at="2026-11-23T06:00:00+00:00", model="tiny.en (bundled)", version="0.1.0"),
    Partial(t=1.056, call_id="c1", utterance_id="u1", speaker=Speaker.CUSTOMER, start=0.32,
            text="I got a letter"),
    Partial(t=9.1, call_id="c1", utterance_id="u3", speaker=Speaker.CUSTOMER, start=2.5,
            text="there's a strong smell of gas in the kitchen",
            scores=Scores(distress=0.4, escalation=0.02, crisis=0.93,
                          text={"distress": 0.4, "escalation": 0.02, "crisis": 0.93}, acoustic=None,
                          baseline=False, trend={"distress": 0.1, "escalation": 0.05, "distress_rise": 0.0,
                                                 "escalation_rise": 0.0},
                          kind="danger", kinds={"self-harm": 0.01, "violence": 0.02, "danger": 0.97})),
    Utterance(t=2.752, call_id="c1", utterance_id="u1", speaker=Speaker.AGENT, start=0.064,
              end=2.104, text="Thanks for calling.",
              words=(Word("Thanks", 0.064, 0.5, 0.9), Word("for", 0.5, 0.7, 0.95),
                     Word("calling.", 0.7, 2.104, 0.99))),
    Utterance(t=18.2, call_id="c1", utterance_id="u4", speaker=Speaker.CUSTOMER, start=16.6, end=17.7,
              text="He passed away two months ago.",
              scores=Scores(distress=0.981, escalation=0.06, crisis=0.0,
                            text={"distress": 0.93, "escalation": 0.01, "crisis": 0.0},
                            acoustic={"distress": 0.84, "escalation": 0.97, "angry": 0.97, "sad": 0.84,
                                      "fearful": 0.2},
                            baseline=False,
                            trend={"distress": 0.6, "escalation": 0.28, "distress_rise": 0.0,
                                   "escalation_rise": 0.0})),
    Prompt(t=18.2, call_id="c1", rule="acknowledge-disclosure", principle="safety",
           text="Acknowledge what they shared before moving on.", example="Thank you for telling me.",
           priority=70, signals=("distress",),
           why={"utterance_id": "u4", "text": "He passed away.", "values": {"distress": 0.981}, "said": {}},
           support_line="", sticky=False),
    Retract(t=12.4, call_id="c1", rule="manager-request", prompt_t=9.1, utterance_id="u3",
            reason="the final transcript no longer supports it"),
    Flag(t=18.2, call_id="c1", kind=FlagKind.DISTRESS, severity=Severity.LOW,
         reason="acknowledge-disclosure: distress 0.98", utterance_id="u4", rule="acknowledge-disclosure"),
    Flag(t=95.0, call_id="c1", kind=FlagKind.AGENT, severity=Severity.MEDIUM, reason="raised by the agent",
         utterance_id="", raised_by="agent", note="asked for a manager twice"),
    Feedback(t=21.0, call_id="c1", rule="acknowledge-disclosure", prompt_t=18.2, rating="helpful"),
    PromptSeen(t=18.4, call_id="c1", rule="acknowledge-disclosure", prompt_t=18.2, state=PromptState.SHOWN),
    SupervisorNote(t=44.0, call_id="c1", text="I'm listening in, take your time", author="lee.t",
                   agent="sam.k"),
    Listening(t=30.5, call_id="c1", paused=True, by="keyboard"),
    DeviceStatus(t=41.0, call_id="c1", device="Jabra Evolve2 65", parties=(Speaker.AGENT,),
                 state=DeviceState.LOST, message="no audio for 2 s; retrying"),
    Dropped(t=60.0, call_id="c1", what=DropKind.AUDIO, count=3, total=5, seconds=0.096),
    CallEnd(t=159.5, call_id="c1", reason=EndReason.SOURCE_ERROR, error="file is truncated",
            utterances=3, partials=7, partials_dropped=1, audio_dropped_s=0.5),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_each_event_round_trips_through_json(event):
    line = event.to_json()
    data = json.loads(line)
    assert data["type"] == event.type and data["t"] == event.t
    assert event_from_json(line) == event


def awkward(value: Any) -> Any:
    """`value` with every float in it, at any depth, made one no short decimal writes exactly
    (18.2 -> 6.0666666676666665, 0.981 -> 0.32700000100000004)."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value / 3 + 1e-9
    if isinstance(value, Word | Scores | PublicEvent):
        return replace(value, **{f.name: awkward(getattr(value, f.name)) for f in fields(value)})
    if isinstance(value, tuple):
        return tuple(awkward(v) for v in value)
    if isinstance(value, dict):
        return {k: awkward(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_each_event_round_trips_exactly_with_awkward_floats(event):
    """No float is rounded on the way out: the event read back is the event written."""
    odd = awkward(event)
    assert odd != event  # every example has a float (its `t` at least)
    assert event_from_json(odd.to_json()) == odd


def test_every_public_event_type_has_an_example():
    assert {e.type for e in EXAMPLES} == set(PUBLIC_EVENT_TYPES)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_closed_sets_are_read_back_as_their_enums_and_written_as_plain_strings(event):
    back = event_from_json(event.to_json())
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, StrEnum):
            assert type(getattr(back, f.name)) is type(value)
            assert json.loads(event.to_json())[f.name] == value.value


def test_every_event_belongs_to_a_call():
    assert [f.name for f in fields(PublicEvent)] == ["t", "call_id"]
    for cls in PUBLIC_EVENT_TYPES.values():
        assert [f.name for f in fields(cls)][:2] == ["t", "call_id"]


def test_severities_rank_least_urgent_first():
    assert [s.rank for s in (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)] == [1, 2, 3, 4]


def test_a_flag_written_before_flags_named_their_rule_reads_it_from_the_reason():
    rules = event_from_json('{"type":"flag","t":18.2,"call_id":"c1","kind":"distress","severity":"low",'
                            '"reason":"acknowledge-disclosure: distress 0.98","utterance_id":"u4"}')
    agent = event_from_json('{"type":"flag","t":95.0,"call_id":"c1","kind":"agent","severity":"medium",'
                            '"reason":"raised by the agent","utterance_id":"","raised_by":"agent"}')
    assert isinstance(rules, Flag) and rules.rule == "acknowledge-disclosure"
    assert isinstance(agent, Flag) and agent.rule == ""


def test_hostile_text_stays_data():
    text = 'he said "</script><script>alert(1)</script>" \x1b[2J\n{"type":"call_end"}'
    event = Partial(t=1.0, call_id="c", utterance_id="u1", speaker=Speaker.CUSTOMER, start=0.0,
                    text=text)
    line = event.to_json()
    assert "\n" not in line
    assert event_from_json(line).text == text


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '{"type": "nope", "t": 1}',
                                  '{"type": "partial", "t": 1}',
                                  '{"type": "partial", "t": 1, "call_id": "c", "utterance_id": "u",'
                                  ' "speaker": "martian", "start": 0, "text": ""}',
                                  '{"type": "flag", "t": 1, "call_id": "c", "kind": "martian",'
                                  ' "severity": "low", "reason": "", "utterance_id": ""}',
                                  '{"type": "dropped", "t": 1, "call_id": "c", "what": "video", "count": 1,'
                                  ' "total": 1}',
                                  '{"type": "prompt_seen", "t": 1, "call_id": "c", "rule": "r",'
                                  ' "prompt_t": 0.5, "state": "glimpsed"}'])
def test_bad_lines_raise_a_parse_error(line):
    with pytest.raises(EventParseError):
        event_from_json(line)


def test_schema_document_covers_every_event_and_field():
    doc = (REPO / "docs" / "events.md").read_text(encoding="utf-8")
    assert f"Schema version: {SCHEMA_VERSION}" in doc
    for name, cls in PUBLIC_EVENT_TYPES.items():
        section = re.search(rf"^### `{name}`\n(.*?)(?=^### |\Z)", doc, re.S | re.M)
        assert section, f"docs/events.md has no section for {name}"
        for f in ["type", *(f.name for f in fields(cls))]:
            assert f"`{f}`" in section.group(1), f"{name}.{f} is not documented"


def test_scores_document_covers_every_field():
    doc = (REPO / "docs" / "events.md").read_text(encoding="utf-8")
    for f in fields(Scores):
        assert f"| `{f.name}` |" in doc, f"scores.{f.name} is not documented"
    for key in ("angry", "sad", "fearful", "distress_rise", "escalation_rise"):
        assert f"`{key}`" in doc


def test_a_number_that_is_not_finite_is_refused_both_ways():
    """NaN and infinity are not JSON: a log line carrying one would be read by nothing else."""
    flag = next(e for e in EXAMPLES if isinstance(e, Flag))
    with pytest.raises(ValueError, match="not finite"):
        replace(flag, t=float("nan")).to_json()
    line = flag.to_json().replace('"t":18.2', '"t":NaN')
    assert "NaN" in line
    with pytest.raises(EventParseError, match="NaN"):
        event_from_json(line)
    with pytest.raises(EventParseError, match="Infinity"):
        event_from_json(flag.to_json().replace('"t":18.2', '"t":Infinity'))


@pytest.mark.parametrize(("field", "value", "says"), [
    ("t", '"soon"', "flag event: t: 'soon' is not a number"),
    ("t", "1e309", "flag event: t: inf is not a finite number"),
    ("t", "true", "flag event: t: True is not a number"),
    ("call_id", "5", "flag event: call_id: 5 is not text"),
    ("reason", '["x"]', "flag event: reason: ['x'] is not text"),
    ("reason", '"\\ud800"', "flag event: reason: text that is not valid Unicode"),
    ("reason", '"a\\u0000b"', "flag event: reason: text with a NUL character"),
    ("utterance_id", "null", "flag event: utterance_id: None is not text"),
])
def test_every_field_must_hold_its_type(field, value, says):
    """The dataclasses check nothing: before, such a line became an event, and a flag at t="soon"
    put into the store broke every review of it."""
    flag = json.loads(next(e for e in EXAMPLES if isinstance(e, Flag)).to_json())
    line = json.dumps({**flag, field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', value)
    with pytest.raises(EventParseError, match=re.escape(says)):
        event_from_json(line)


def test_nested_fields_and_integers_are_checked_too():
    utterance = json.loads(next(e for e in EXAMPLES if isinstance(e, Utterance) and e.scores).to_json())
    with pytest.raises(EventParseError, match="scores: distress: 'high' is not a number"):
        event_from_json(json.dumps({**utterance, "scores": {**utterance["scores"], "distress": "high"}}))
    with pytest.raises(EventParseError, match="words: start: 'x' is not a number"):
        event_from_json(json.dumps({**utterance, "words": [{"text": "a", "start": "x", "end": 1, "p": 1}]}))
    prompt = json.loads(next(e for e in EXAMPLES if isinstance(e, Prompt)).to_json())
    with pytest.raises(EventParseError, match="priority: 1000000000000 is out of range"):
        event_from_json(json.dumps({**prompt, "priority": 10**12}))
    with pytest.raises(EventParseError, match="nested too deep"):
        event_from_json("[" * 100_000)
    for event in EXAMPLES:  # and every event as written still reads back as itself
        assert event_from_json(event.to_json()) == event

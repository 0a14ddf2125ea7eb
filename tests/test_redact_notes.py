"""Notes are redacted exactly as transcripts are: the agent's note on a flag (typed in the
overlay, carried by the `flag` event through the recorder into the event log and the store) and
a supervisor's note (`agent-assist review note`, straight into the store). Every line of the
redaction table, written as a note, comes out as the same line said in the call does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_assist.events import CallEnd, CallStart, EndReason, Flag, Speaker, Utterance
from agent_assist.recorder import Recorder
from agent_assist.redact import CallRedactor
from agent_assist.sinks import JsonlEventLog
from agent_assist.store import FlagStoreSink, StoreOptions, open_store
from tests.redaction_cases import TODAY, Case, load, run

CASES = load("dev.txt") + load("heldback.txt") + load("heldback2.txt")
START = CallStart(t=0.0, call_id="c1", source="x.wav", channels={}, started_at="2026-11-23T09:00:00+00:00",
                  model="tiny.en")


def _turn(text: str, start: float, speaker: Speaker = Speaker.CUSTOMER) -> Utterance:
    return Utterance(t=start + 1.0, call_id="c1", utterance_id=f"u{start:g}", speaker=speaker, start=start,
                     end=start + 1.0, text=text)


def _note(text: str, t: float) -> Flag:
    return Flag(t=t, call_id="c1", kind="agent", severity="medium", reason="raised by the agent",
                utterance_id="", raised_by="agent", note=text)


def test_an_agents_note_is_redacted_as_the_same_words_said_in_the_call() -> None:
    """With the call's context: a note typed just after the agent asked for the card number reads
    "4111 1111" as the card it is, as the customer's turn would."""
    differ = []
    for case in CASES:
        said, noted = CallRedactor(today=TODAY), CallRedactor(today=TODAY)
        for call in (said, noted):
            if case.before:
                call.event(_turn(case.before, 0.0, Speaker.AGENT))
        turn = said.event(_turn(case.text, 3.0))
        note = noted.event(_note(case.text, 3.0))
        assert isinstance(turn, Utterance) and isinstance(note, Flag)
        if note.note != turn.text or turn.text != run(case).text:
            differ.append(f"{case.where}: said {turn.text!r}, noted {note.note!r}")
    assert not differ, "\n".join(differ)


def test_a_supervisors_note_is_redacted_as_the_same_words_said_in_the_call(tmp_path: Path) -> None:
    store = open_store(tmp_path / "flags.sqlite3")
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east"))
    for event in (START, _note("", 5.0)):
        sink.emit(event)
    flag_id = store.flags()[0].id
    standalone = [c for c in CASES if not c.before]  # a note written after the shift has no call context
    for case in standalone:
        store.note(flag_id, case.text, by="lee")
    notes = [n["text"] for n in store.flag(flag_id).notes]
    assert notes == [run(c).text for c in standalone]
    store.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.details and not c.before][:40], ids=lambda c: c.where)
def test_an_agents_note_reaches_the_event_log_and_the_store_without_its_details(tmp_path: Path,
                                                                                  case: Case) -> None:
    """Through the recorder, as on a live call: nothing of a detail in the note is written."""
    store = open_store(tmp_path / "flags.sqlite3")
    log = tmp_path / "events.jsonl"
    recorder = Recorder([JsonlEventLog(str(log), redact=False),
                         FlagStoreSink(store, StoreOptions(agent="sam", team="east"), redact=False)])
    recorder.emit(START)
    recorder.emit(_note(case.text, 3.0))
    recorder.emit(CallEnd(t=4.0, call_id="c1", reason=EndReason.ENDED, utterances=0))
    recorder.close()
    stored = store.flags()[0].agent_note
    logged = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    [flag] = [e for e in logged if e["type"] == "flag"]
    expected = run(case).text
    assert stored == flag["note"] == expected
    for d in case.details:
        for word in case.value(d).replace(",", " ").split():
            if sum(ch.isalnum() for ch in word) >= 3 and word.lower() not in ("the", "and", "street"):
                assert word not in stored.split(), (word, stored)
    store.close()


def test_a_supervisors_note_reaches_the_csv_and_the_report_redacted(tmp_path: Path) -> None:
    """`review export` and `review report` list the flags with their notes (they showed none)."""
    from agent_assist.review import report_html, to_csv

    store = open_store(tmp_path / "flags.sqlite3")
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east"))
    for event in (START, _note("", 5.0)):
        sink.emit(event)
    flag_id = store.flags()[0].id
    store.note(flag_id, "Rang Mrs Nguyen back on 0412 345 678; card 4111 1111 1111 1111 cancelled", by="lee")
    flags = store.flags()
    written = "Rang [name] back on [phone]; card [card] cancelled"
    assert [n["text"] for n in flags[0].notes] == [written]
    csv_text = to_csv(flags)
    page = report_html(flags, {f.call_id: store.call(f.call_id) for f in flags}, title="t", subtitle="s",
                       generated_at="2026-11-23T10:00:00+00:00")
    for text in (csv_text, page):
        assert "[phone]" in text and "[card]" in text
        assert "0412" not in text and "4111" not in text and "Nguyen" not in text
    store.close()

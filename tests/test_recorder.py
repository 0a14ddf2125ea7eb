"""The recorder: no disk on the real-time path, flags shown only once committed, nothing lost."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Flag,
    Prompt,
    PublicEvent,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.recorder import Recorder
from agent_assist.sinks import EventList, JsonlEventLog
from agent_assist.store import FlagStoreSink, StoreOptions, open_store
from tests.conftest import Timed

CARD = "4111 1111 1111 1111"


def call(call_id: str = "c1") -> list[PublicEvent]:
    scores = Scores(distress=0.2, escalation=0.9, crisis=0.0,
                    text={"distress": 0.2, "escalation": 0.9, "crisis": 0.0}, acoustic=None, baseline=False,
                    trend={"distress": 0.2, "escalation": 0.9, "distress_rise": 0.0, "escalation_rise": 0.0})
    said = f"get me a manager my card is {CARD}"
    return [
        CallStart(t=0.0, call_id=call_id, source="call.flac", channels={"left": Speaker.CUSTOMER},
                  started_at="2026-11-29T22:00:00+00:00", model="tiny.en"),
        Utterance(t=4.0, call_id=call_id, utterance_id="u1", speaker=Speaker.CUSTOMER, start=1.0, end=3.5,
                  text=said, scores=scores),
        Prompt(t=4.0, call_id=call_id, rule="manager-request", principle="choice", text="Offer a choice.",
               example="", priority=60, signals=("escalation",),
               why={"utterance_id": "u1", "text": said, "said": {"text": said}}),
        Flag(t=4.0, call_id=call_id, kind="escalation", severity="medium",
             reason="manager-request: escalation 0.90", utterance_id="u1"),
        CallEnd(t=6.0, call_id=call_id, reason=EndReason.END_OF_AUDIO, utterances=1),
    ]


def recorder_for(tmp_path: Path, timeout_s: float) -> tuple[Recorder, FlagStoreSink, Path]:
    store = open_store(tmp_path / "flags.sqlite3", timeout_s=timeout_s)
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east", transcript="full"),
                         spill_dir=tmp_path / "unsaved", redact=False)  # the recorder redacts
    log = tmp_path / "events.jsonl"
    return Recorder([JsonlEventLog(str(log), redact=False), sink]), sink, log


def test_a_locked_store_holds_up_neither_the_call_nor_its_prompts_and_loses_nothing(tmp_path):
    """Another process holds the store's write lock (a supervisor's export, a backup): before the
    recorder, every event waited out the store's timeout on the pipeline's thread."""
    recorder, sink, log = recorder_for(tmp_path, timeout_s=1.0)
    shown = EventList()
    overlay = recorder.after_commit(shown)
    locker = sqlite3.connect(tmp_path / "flags.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    events = call()
    for event in events:
        began = time.perf_counter()
        recorder.emit(event)
        overlay.emit(event)
        assert time.perf_counter() - began < 0.05, event.type  # never waits for the disk
    assert [e.type for e in shown.events] == ["call_start", "utterance", "prompt", "call_end"]
    time.sleep(0.3)
    assert not any(isinstance(e, Flag) for e in shown.events)  # not before the store has taken it
    locker.execute("ROLLBACK")
    locker.close()
    assert recorder.flush(timeout=30)
    assert any(isinstance(e, Flag) for e in shown.events)
    recorder.close()

    assert sink.spilled is None  # written after all, nothing left over
    store = open_store(tmp_path / "flags.sqlite3")
    [flag] = store.flags()
    record = store.call("c1")
    assert flag.kind == "escalation" and record.end_reason == "end_of_audio"
    assert [p["rule"] for p in record.prompts] == ["manager-request"]
    assert len(record.turns) == 1 and CARD not in record.turns[0]["text"]
    written = log.read_text(encoding="utf-8")
    assert [json.loads(line)["type"] for line in written.splitlines()] == [e.type for e in events]
    assert CARD not in written and "4111" not in written  # redacted once, before anything is written


def test_a_flag_reaches_the_overlay_only_after_it_is_committed(tmp_path):
    recorder, _, _ = recorder_for(tmp_path, timeout_s=5.0)
    seen_in_store: list[int] = []

    class Overlay(EventList):
        def emit(self, event: PublicEvent) -> None:
            if isinstance(event, Flag):  # on the writer's thread, after the store's commit
                reader = open_store(tmp_path / "flags.sqlite3")
                seen_in_store.append(len(reader.flags()))
                reader.close()
            super().emit(event)

    overlay = recorder.after_commit(Overlay())
    for event in call():
        recorder.emit(event)
        overlay.emit(event)
    recorder.close()
    assert seen_in_store == [1]


def test_calls_recorded_at_once_keep_their_own_redaction_context(tmp_path):
    """A server records several calls at once: each call's redactor sees only its own turns."""
    recorder, _, log = recorder_for(tmp_path, timeout_s=5.0)
    a, b = call("a"), call("b")
    threads = [threading.Thread(target=lambda evs=evs: [recorder.emit(e) for e in evs]) for evs in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    for call_id in ("a", "b"):
        assert [x["type"] for x in lines if x["call_id"] == call_id] == [e.type for e in a]
    assert CARD not in log.read_text(encoding="utf-8")


def test_events_after_close_are_refused_with_a_line(tmp_path, caplog):
    recorder, _, _ = recorder_for(tmp_path, timeout_s=5.0)
    recorder.close()
    recorder.emit(call()[0])
    assert "recorder closed" in caplog.text


@pytest.mark.system  # paced at real time (30 s)
def test_with_the_store_locked_for_10_s_mid_call_prompts_reach_the_overlay_on_time(
        tmp_path, call_models, sample_clip):
    """A real call at real time, its store locked by another process for 10 s around its first
    prompts (20.6 s in): the prompts reach the overlay as fast as ever, and every event reaches the
    store once the lock goes."""
    from agent_assist.replay import Replay, ReplayOptions

    recorder, sink, _ = recorder_for(tmp_path, timeout_s=10.0)  # each write waits out the whole lock

    overlay = Timed()
    call_run = Replay(sample_clip, [recorder, recorder.after_commit(overlay)],
                      ReplayOptions(realtime=True, call_id="locked"), call_models)
    locked = threading.Event()

    def hold_the_lock() -> None:
        time.sleep(14.0)
        locker = sqlite3.connect(tmp_path / "flags.sqlite3", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(10.0)
        locker.execute("ROLLBACK")
        locker.close()

    holder = threading.Thread(target=hold_the_lock)
    began = time.monotonic()
    holder.start()
    end = call_run.run()
    holder.join()
    recorder.close()
    assert locked.is_set()
    arrivals = zip(overlay.events, overlay.at, strict=True)
    prompts = [(e, at - began) for e, at in arrivals if isinstance(e, Prompt)]
    assert prompts and all(14.0 < e.t < 24.0 for e, _ in prompts[:1])  # the first came while locked
    lags = [at - e.t for e, at in prompts]
    print("prompt lags behind call time (s):", [round(x, 2) for x in lags])
    # about 1 s on an idle machine (transcription); a store written on the pipeline's thread would
    # hold the first event after the lock for its 10 s timeout, and every prompt after it
    assert max(lags) < 5.0

    assert sink.spilled is None
    store = open_store(tmp_path / "flags.sqlite3")
    record = store.call("locked")
    assert record.end_reason == end.reason
    assert [p["rule"] for p in record.prompts] == [e.rule for e, _ in prompts]
    assert len(record.turns) == len([e for e in overlay.events if isinstance(e, Utterance)])
    assert len(store.flags()) == len([e for e in overlay.events if isinstance(e, Flag)])

"""A call's sinks as `replay` and `run` build them: their order, and the flag store opened first."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_assist.config import Config
from agent_assist.events import Flag
from agent_assist.outputs import StoreChoice, call_sinks, close_store_sink, open_store_sink
from agent_assist.sinks import ConsoleTranscript, EventList, JsonlEventLog
from agent_assist.store import FlagStoreSink, StoreError, open_store
from tests.test_store import a_call, write


def test_the_recorder_writes_the_log_and_store_and_the_overlay_comes_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_assist.recorder import Recorder

    store = FlagStoreSink(open_store(tmp_path / "flags.sqlite3"), spill_dir=tmp_path / "unsaved")
    overlay = EventList()
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    sinks = call_sinks(store, str(tmp_path / "events.jsonl"), True, overlay)
    assert [type(s).__name__ for s in sinks] == ["Recorder", "ConsoleTranscript", "_FlagsAfterCommit"]
    recorder = sinks[0]
    assert isinstance(recorder, Recorder)
    assert [type(w) for w in recorder.writers] == [JsonlEventLog, FlagStoreSink]
    assert recorder.writers[1] is store and not store.redact  # redacted once, by the recorder
    assert isinstance(sinks[1], ConsoleTranscript) and sinks[1].stream is out
    for event in a_call():
        for sink in sinks:
            sink.emit(event)
    recorder.close()
    flags = [e for e in a_call() if isinstance(e, Flag)]
    assert [e for e in overlay.events if isinstance(e, Flag)] == flags  # after the store had them
    assert len(open_store(tmp_path / "flags.sqlite3").flags()) == len(flags)
    # events on stdout: the transcript moves to stderr, so the JSONL stays clean
    piped = call_sinks(None, "-", True)
    assert isinstance(piped[0], Recorder) and isinstance(piped[1], ConsoleTranscript)
    assert piped[1].stream is err
    piped[0].close()
    assert call_sinks(None, None, False) == []
    assert call_sinks(None, None, False, overlay) == [overlay]  # nothing written: nothing to wait for


def test_the_store_is_purged_before_the_call_and_says_so(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call("old", started_at=(datetime.now(UTC) - timedelta(days=40)).isoformat()) + a_call("new"))
    said: list[str] = []
    sink = open_store_sink(StoreChoice(url=url, agent_id="sam", team="east", retain_days=30), said.append,
                           Config())
    close_store_sink(sink)
    assert said == [f"note: purged 1 call(s) and 2 flag(s) older than 30 days from {url}"]
    assert (sink.options.agent, sink.options.team, sink.options.transcript) == ("sam", "east", "excerpt")
    store = open_store(url)
    assert {f.call_id for f in store.flags()} == {"new"}
    store.close()


def test_the_configuration_fills_what_the_command_line_left_out(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    config = Config(store_url=url, agent_id="sam.k", team="billing", transcript="full")
    sink = open_store_sink(StoreChoice(team="east"), print, config)
    close_store_sink(sink)
    assert (sink.options.agent, sink.options.team, sink.options.transcript) == ("sam.k", "east", "full")
    assert sink.where == url


def test_a_store_that_is_down_lets_the_call_go_on_and_one_that_cannot_work_stops_it(tmp_path: Path) -> None:
    said: list[str] = []
    down = f"postgresql:///flags?host={tmp_path}&port=1&user=nobody"  # no server listens there
    sink = open_store_sink(StoreChoice(url=down), said.append, Config())
    close_store_sink(sink)
    assert sink.store is None and len(said) == 1
    assert said[0].startswith("warning: flag store postgresql:///flags") and "the call goes on" in said[0]
    with pytest.raises(StoreError, match="unknown store 'ftp://flags'"):
        open_store_sink(StoreChoice(url="ftp://flags"), said.append, Config())

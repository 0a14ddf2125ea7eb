"""`review import`: every line checked against the event schema before it reaches the store, bad
lines named and skipped, the rest imported; every event written once, so importing a file again
adds nothing; and a store with a damaged row still reviews."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from agent_assist.events import PublicEvent
from agent_assist.store import FlagStoreSink, StoreError, StoreOptions, importer, open_store
from tests.test_cli import agent_assist
from tests.test_store import a_call, write


def saved_aside(tmp_path: Path, events: list[PublicEvent]) -> Path:
    """The file a session writes when its store never answered (the real path: a sink whose
    store cannot be opened, closed with events waiting)."""

    def unreachable():
        raise StoreError("flag store floor: connection refused", transient=True)

    sink = FlagStoreSink(unreachable, StoreOptions(agent="sam", team="east"), spill_dir=tmp_path / "unsaved")
    for event in events:
        sink.emit(event)
    sink.close()
    assert sink.spilled is not None
    return sink.spilled


def kinds(url: str) -> list[str]:
    store = open_store(url)
    try:
        return [f.kind for f in store.flags()]
    finally:
        store.close()


def test_importing_a_saved_aside_file_twice_adds_nothing_the_second_time(
    store_url: str, tmp_path: Path
) -> None:
    path = saved_aside(tmp_path, a_call() + a_call("call-2"))
    first = agent_assist("review", "import", str(path), "--store", store_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("imported 26 event(s) into ")
    assert kinds(store_url) == ["crisis", "crisis", "agent", "agent"]
    again = agent_assist("review", "import", str(path), "--store", store_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("imported 0 event(s) into ")
    assert "; 26 already in the store" in again.stdout
    assert kinds(store_url) == ["crisis", "crisis", "agent", "agent"]  # 4 -> 8 flags before ids
    store = open_store(store_url)
    call = store.call("call-1")
    assert (len(call.scores), len(call.prompts), len(call.feedback)) == (3, 1, 1)
    assert store.flags()[0].agent == "sam"  # the header's agent
    store.close()


def test_an_event_log_of_a_call_the_store_took_live_adds_nothing(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    events = a_call()
    write(url, events[:9])  # the store took the call until here, live
    log = tmp_path / "events.jsonl"
    log.write_text("".join(e.to_json() + "\n" for e in events))
    done = agent_assist("review", "import", str(log), "--store", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 5 event(s) ")  # what came after the store stopped
    assert "8 already in the store; 1 of kinds the store does not keep" in done.stdout  # the partial
    assert kinds(url) == ["crisis", "agent"]


def test_bad_lines_are_named_and_skipped_and_the_good_ones_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_LINE_BYTES", 4096)
    url = str(tmp_path / "flags.sqlite3")
    good = [json.loads(e.to_json()) for e in a_call()]
    flag = good[7]
    lines = [
        json.dumps(good[0]),  # 1: the call
        json.dumps({**flag, "t": "soon"}),  # 2: poisoned the store before
        json.dumps(flag).replace('"t": 11.0', '"t": 1e309'),  # 3: infinity (poisoned it too)
        json.dumps({**flag, "t": 11.0, "severity": "dire"}),  # 4
        json.dumps({**flag, "call_id": None}),  # 5: was kept in memory, then saved aside
        json.dumps({**good[6], "priority": 10**30}),  # 6: an internal error before
        json.dumps({**good[0], "started_at": 5}),  # 7: an internal error before
        "[" * 3000,  # 8: nested too deep (an internal error before)
        '{"type": "flag", "t": NaN}',  # 9
        "x" * 5000,  # 10: longer than the limit
        json.dumps({**good[3], "text": "\ud800"}),  # 11: a lone surrogate
        json.dumps({**good[3], "scores": {**good[3]["scores"], "distress": "high"}}),  # 12: was stored
        *[json.dumps(e) for e in good[1:]],  # 13-25: the rest of the call
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n\xff\xfe not text\n")
    done = agent_assist("review", "import", str(path), "--store", url)
    assert done.returncode == 1
    refused = [line for line in done.stderr.splitlines() if line.startswith("not imported: ")]
    assert [line.split(":")[2] for line in refused] == [str(n) for n in (*range(2, 13), 26)]
    assert "t: 'soon' is not a number" in refused[0] and "t: inf is not a finite number" in refused[1]
    assert "longer than" in refused[8] and "not UTF-8 text" in refused[11]
    assert done.stderr.splitlines()[-1] == ("agent-assist: error: 12 line(s) not imported (listed above); "
                                            "the rest were")
    assert done.stdout.startswith("imported 13 event(s)")
    assert kinds(url) == ["crisis", "agent"]
    for command in (["list"], ["export", "--csv"], ["report", "-o", str(tmp_path / "r.html")], ["show", "1"]):
        assert agent_assist("review", *command, "--store", url).returncode == 0, command


def test_a_damaged_saved_aside_header_files_the_events_under_no_agent(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    path = tmp_path / "unsaved.jsonl"
    path.write_text('{"unsaved": 1, "agent": ["sam"]}\n' + "".join(e.to_json() + "\n" for e in a_call()))
    done = agent_assist("review", "import", str(path), "--store", url)
    assert done.returncode == 1 and f"{path}:1: a saved-aside header with a wrong agent" in done.stderr
    assert kinds(url) == ["crisis", "agent"]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    done = agent_assist("review", "import", str(fifo), "--store", str(tmp_path / "flags.sqlite3"))
    assert done.returncode == 1 and f"not imported: {fifo}: not a regular file" in done.stderr


def test_a_damaged_row_is_left_out_with_one_line_and_the_review_goes_on(tmp_path: Path) -> None:
    """A row no version of this code writes (SQLite keeps any value in any column): the review
    leaves it out and says which, rather than failing for everyone."""
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call())
    with sqlite3.connect(url) as db:
        db.execute("UPDATE flags SET t = 'soon' WHERE kind = 'agent'")
        db.execute("UPDATE scores SET distress = 'high' WHERE rowid = 1")
    listed = agent_assist("review", "list", "--store", url)
    assert listed.returncode == 0 and "1 flag(s)" in listed.stderr
    assert "flag 2 is damaged (column 6 holds 'soon'); left out" in listed.stderr
    shown = agent_assist("review", "show", "1", "--store", url)
    assert shown.returncode == 0 and "a score of call 'call-1' is damaged" in shown.stderr
    bad = agent_assist("review", "show", "2", "--store", url)
    assert bad.returncode == 1 and bad.stderr.strip().endswith("flag 2 is damaged (column 6 holds 'soon')")
    for command in (["export", "--csv"], ["report", "-o", str(tmp_path / "r.html")]):
        assert agent_assist("review", *command, "--store", url).returncode == 0, command

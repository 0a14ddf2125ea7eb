"""The flag store on a real SQLite file and a real PostgreSQL server: what is written, redaction,
commit-before-show, migrations, crash safety, a locked store, retention."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Feedback,
    Flag,
    Partial,
    Prompt,
    PromptSeen,
    PromptState,
    PublicEvent,
    Retract,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.recorder import Recorder
from agent_assist.sinks import JsonlEventLog
from agent_assist.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Filters,
    FlagStoreSink,
    StoreError,
    StoreOptions,
    default_path,
    open_store,
)
from tests.test_cli import agent_assist

REPO = Path(__file__).resolve().parents[1]


def scores(distress: float, escalation: float = 0.1, crisis: float = 0.01) -> Scores:
    return Scores(
        distress=distress,
        escalation=escalation,
        crisis=crisis,
        text={},
        acoustic=None,
        baseline=False,
        trend={},
    )


def say(
    call_id: str, n: int, speaker: Speaker, start: float, text: str, s: Scores | None = None
) -> Utterance:
    return Utterance(
        t=start + 2,
        call_id=call_id,
        utterance_id=f"{speaker.value[0]}{n}",
        speaker=speaker,
        start=start,
        end=start + 2,
        text=text,
        scores=s,
    )


def a_call(call_id: str = "call-1", started_at: str | None = None) -> list[PublicEvent]:
    """A hard call, as the pipeline would stream it: personal details, a crisis flag, a prompt with the
    agent's feedback, and the agent's own flag after the call."""
    c, a = Speaker.CUSTOMER, Speaker.AGENT
    return [
        CallStart(
            t=0.0,
            call_id=call_id,
            source="/home/sam/calls/2026-11-23 Jane Citizen.wav",
            channels={"left": c, "right": a},
            started_at=started_at or datetime.now(UTC).isoformat(),
            model="tiny.en",
        ),
        say(call_id, 1, a, 1.0, "Can I take your card number to confirm?"),
        Partial(t=4.0, call_id=call_id, utterance_id="c2", speaker=c, start=3.5, text="it's 4111"),
        say(call_id, 2, c, 3.5, "It's 4111 1111 1111 1111 and my mobile is 0412 345 678", scores(0.2)),
        say(call_id, 3, a, 7.0, "Thank you. And your date of birth?"),
        say(
            call_id,
            4,
            c,
            9.0,
            "12 March 1985. Honestly I don't want to be here anymore",
            scores(0.9, crisis=0.97),
        ),
        Prompt(
            t=11.0,
            call_id=call_id,
            rule="crisis-safety",
            principle="safety",
            text="Stay with them.",
            example="",
            priority=100,
            signals=("crisis",),
            why={"text": "12 March 1985 …"},
            sticky=True,
        ),
        Flag(
            t=11.0,
            call_id=call_id,
            kind="crisis",
            severity="critical",
            reason="crisis-safety: crisis 0.97",
            utterance_id="c4",
            rule="crisis-safety",
        ),
        say(call_id, 5, a, 12.0, "I'm really glad you told me. Are you safe right now?"),
        Feedback(t=13.0, call_id=call_id, rule="crisis-safety", prompt_t=11.0, rating="acknowledged"),
        say(call_id, 6, c, 15.0, "I'm at 42 Wattle Street, Ringwood, on my own", scores(0.7)),
        say(call_id, 7, a, 18.0, "Okay. I'm going to stay with you."),
        CallEnd(t=20.0, call_id=call_id, reason=EndReason.END_OF_AUDIO, utterances=7),
        Flag(
            t=20.0,
            call_id=call_id,
            kind="agent",
            severity="medium",
            reason="raised by the agent",
            utterance_id="",
            raised_by="agent",
            note="call back on 0412 345 678 tomorrow",
        ),
    ]


def write(url: str, events: list[PublicEvent], **options: str) -> None:
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east", **options))
    for event in events:
        sink.emit(event)
    sink.close()
    store.close()


def everything(url: str) -> str:
    """Every value in every table, as text (to look for what must not be there)."""
    store = open_store(url)
    tables = ["calls", "flags", "notes", "scores", "prompts", "feedback", "turns"]
    try:
        return json.dumps([store.db.query(f"SELECT * FROM {t}") for t in tables], default=str)
    finally:
        store.close()


def test_a_call_is_stored_with_its_timeline_redacted(store_url: str) -> None:
    write(store_url, a_call())
    store = open_store(store_url)
    flags = store.flags()
    assert [(f.kind, f.severity, f.raised_by) for f in flags] == [
        ("crisis", "critical", "rules"),
        ("agent", "medium", "agent"),
    ]
    crisis, agent = flags
    assert (crisis.call_id, crisis.agent, crisis.team, crisis.t, crisis.rule) == (
        "call-1",
        "sam",
        "east",
        11.0,
        "crisis-safety",
    )
    assert crisis.reason == "crisis-safety: crisis 0.97"
    # the excerpt: the turns up to the flagged one, and the two after it, redacted
    texts = [t["text"] for t in crisis.excerpt]
    assert texts == [
        "It's [card] and my mobile is [phone]",
        "Thank you. And your date of birth?",
        "[dob]. Honestly I don't want to be here anymore",
        "I'm really glad you told me. Are you safe right now?",
        "I'm at [address], on my own",
    ]
    assert agent.agent_note == "call back on [phone] tomorrow"
    call = store.call("call-1")
    assert call.source == "2026-11-23 Jane Citizen.wav"  # the file's name, not its folders
    assert (call.length_s, call.end_reason, call.transcript_mode) == (20.0, "end_of_audio", "excerpt")
    assert [s[:2] for s in call.scores] == [(5.5, 0.2), (11.0, 0.9), (17.0, 0.7)]
    assert [(p["t"], p["rule"]) for p in call.prompts] == [(11.0, "crisis-safety")]
    assert [(f["rule"], f["prompt_t"], f["rating"]) for f in call.feedback] == [
        ("crisis-safety", 11.0, "acknowledged")
    ]
    assert call.turns == ()  # excerpt mode keeps no full transcript
    store.close()
    written = everything(store_url)
    for detail in ("4111", "0412", "345 678", "1985", "Wattle", "/home/sam"):
        assert detail not in written


def test_a_withdrawn_prompt_is_recorded_and_shown_as_withdrawn(tmp_path: Path) -> None:
    from agent_assist.review import report_html, show_lines

    url = str(tmp_path / "flags.sqlite3")
    events = a_call()
    manager = Prompt(t=6.0, call_id="call-1", rule="manager-request", principle="choice", text="Respect it.",
                     example="", priority=58, signals=("customer_says",), why={"partial": True})
    events[2:2] = [manager, Retract(t=9.5, call_id="call-1", rule="manager-request", prompt_t=6.0,
                                    utterance_id="c4", reason="the final transcript no longer supports it")]
    write(url, events)
    store = open_store(url)
    call = store.call("call-1")
    [withdrawn] = [p for p in call.prompts if p["rule"] == "manager-request"]
    assert withdrawn["retracted_t"] == 9.5
    assert [p["retracted_t"] for p in call.prompts if p["rule"] != "manager-request"] == [None]
    flag = store.flags()[0]
    assert "withdrawn at 00:09.5" in "\n".join(show_lines(flag, call))
    assert "withdrawn at 00:09.5" in report_html([flag], {"call-1": call}, "t", "s", "now")
    store.close()


def test_the_review_lists_as_shown_only_what_the_overlay_showed(store_url: str) -> None:
    """Three prompts fire: one the overlay showed and the agent dismissed, one it queued behind the
    "+N" tray and showed later, one it queued and never showed. The store keeps each state's first
    time (a repeat, or the same events again, changes nothing), and the review lists as shown only the
    first two."""
    from agent_assist.review import report_html, show_lines

    def prompt(rule: str, t: float) -> Prompt:
        return Prompt(t=t, call_id="call-1", rule=rule, principle="trust", text=f"Do {rule}.", example="",
                      priority=50, signals=("distress",), why={})

    def seen(rule: str, prompt_t: float, t: float, state: PromptState) -> PromptSeen:
        return PromptSeen(t=t, call_id="call-1", rule=rule, prompt_t=prompt_t, state=state)

    events = a_call()
    events[6:6] = [
        prompt("slow-down", 9.0), seen("slow-down", 9.0, 9.1, PromptState.SHOWN),
        prompt("check-back", 9.5), seen("check-back", 9.5, 9.6, PromptState.QUEUED),
        prompt("offer-choice", 10.0), seen("offer-choice", 10.0, 10.1, PromptState.QUEUED),
        seen("slow-down", 9.0, 10.5, PromptState.DISMISSED),
        seen("check-back", 9.5, 10.6, PromptState.SHOWN),
        seen("check-back", 9.5, 12.0, PromptState.SHOWN),  # shown again after a while in the tray
    ]
    write(store_url, events)
    write(store_url, events)  # the same call again: nothing changes
    store = open_store(store_url)
    call = store.call("call-1")
    seen_at = {p["rule"]: (p["shown_t"], p["queued_t"], p["dismissed_t"]) for p in call.prompts}
    assert seen_at == {"slow-down": (9.1, None, 10.5), "check-back": (10.6, 9.6, None),
                       "offer-choice": (None, 10.1, None), "crisis-safety": (None, None, None)}
    flag = store.flags()[0]
    text = "\n".join(show_lines(flag, call))
    shown_part, unseen_part = text.split("prompts the agent was not shown:")
    assert "slow-down" in shown_part and "check-back" in shown_part and "offer-choice" not in shown_part
    assert "shown at 00:09.1, dismissed at 00:10.5" in shown_part
    assert "shown at 00:10.6 after waiting from 00:09.6" in shown_part
    assert "offer-choice: Do offer-choice.  [queued at 00:10.1 behind other prompts, never shown]" \
        in unseen_part
    assert "crisis-safety" in unseen_part and "not shown: no overlay was open" in unseen_part
    page = report_html([flag], {"call-1": call}, "t", "s", "now")
    shown_table, unseen_table = page.split("<h3>Prompts the agent was not shown</h3>")
    assert "<h3>Prompts shown to the agent, and their feedback</h3>" in shown_table
    assert "offer-choice" not in shown_table.split("<h3>Prompts shown")[1]
    assert "queued at 00:10.1 behind other prompts, never shown" in unseen_table
    store.close()


def test_a_flag_fired_while_the_customer_speaks_shows_the_words_heard_then_the_final(
        tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    c = Speaker.CUSTOMER
    words = "I've been saving my tablets, my card is 4111 1111 1111 1111"
    heard = Partial(t=6.0, call_id="call-2", utterance_id="c2", speaker=c, start=2.0, text=words,
                    scores=scores(0.9, crisis=0.9))
    flag = Flag(t=6.0, call_id="call-2", kind="crisis", severity="critical", reason="crisis-self-harm",
                utterance_id="c2", rule="crisis-self-harm")
    events = [CallStart(t=0.0, call_id="call-2", source="x.wav", channels={}, started_at="", model=""),
              say("call-2", 1, c, 0.5, "hi there"), heard, flag]
    write(url, events)
    store = open_store(url)
    [stored] = store.flags()
    assert [t["text"] for t in stored.excerpt] == ["hi there",
                                                   "I've been saving my tablets, my card is [card]"]
    assert stored.excerpt[-1]["partial"] is True
    store.close()
    url2 = str(tmp_path / "flags2.sqlite3")
    final = say("call-2", 2, c, 2.0, words + " and anyway the meter", scores(0.9, crisis=0.9))
    write(url2, [*events, final, say("call-2", 3, Speaker.AGENT, 12.0, "Are you safe right now?")])
    store = open_store(url2)
    [stored] = store.flags()
    assert [t["text"] for t in stored.excerpt] == [
        "hi there", "I've been saving my tablets, my card is [card] and anyway the meter",
        "Are you safe right now?"]  # the final took the partial's place; the agent's reply follows
    assert not any(t.get("partial") for t in stored.excerpt)
    store.close()
    assert "4111" not in everything(url) + everything(url2)


@pytest.mark.parametrize("mode", ["none", "full"])
def test_transcript_none_or_full(tmp_path: Path, mode: str) -> None:
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call(), transcript=mode)
    store = open_store(url)
    crisis = store.flags()[0]
    call = store.call("call-1")
    if mode == "none":
        assert crisis.excerpt == () and call.turns == ()
        assert "want to be here" not in everything(url)
        assert [s[:2] for s in call.scores] == [(5.5, 0.2), (11.0, 0.9), (17.0, 0.7)]  # numbers still kept
    else:
        assert [t["text"] for t in call.turns][:2] == [
            "Can I take your card number to confirm?",
            "It's [card] and my mobile is [phone]",
        ]
        assert len(call.turns) == 7
    store.close()


def test_a_flag_is_committed_before_the_next_sink_sees_it(store_url: str) -> None:
    """The overlay comes after the store: when it gets a flag, another connection can read it."""
    seen: list[int] = []

    class Overlay:
        def emit(self, event: PublicEvent) -> None:
            if isinstance(event, Flag):
                other = open_store(store_url)  # a second connection, as a supervisor's would be
                seen.append(len(other.flags()))
                other.close()

        def close(self) -> None:
            pass

    store = open_store(store_url)
    sinks = [FlagStoreSink(store), Overlay()]
    for event in a_call():
        for sink in sinks:
            sink.emit(event)
    store.close()
    assert seen == [1, 2]


def test_sqlite_file_in_the_data_directory_private_and_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    store = open_store(None)
    path = default_path()
    assert path == tmp_path / "data" / "agent-assist" / "flags.sqlite3"
    sink = FlagStoreSink(store)
    for event in a_call()[:8]:
        sink.emit(event)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()


def _old_store(url: str) -> None:
    """A store as version 1 of the schema left it, with a flag in it."""
    if url.startswith("postgresql"):
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        for sql in MIGRATIONS[0]:
            conn.execute(sql.replace("{id}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"))
        conn.execute("CREATE TABLE agent_assist_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO agent_assist_schema VALUES (1)")
        run = conn.execute
    else:
        conn3 = sqlite3.connect(url, isolation_level=None)
        for sql in MIGRATIONS[0]:
            conn3.execute(sql.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
        conn3.execute("PRAGMA user_version = 1")
        run = conn3.execute  # type: ignore[assignment]
    p = "%s" if url.startswith("postgresql") else "?"
    run(
        f"INSERT INTO calls VALUES ({p}, 'sam', 'east', 'old.wav', '2026-11-20T09:00:00Z', 60.0, "
        "'end_of_audio', 'excerpt')",
        ("old-call",),
    )
    run(
        "INSERT INTO flags (call_id, t, created_at, kind, severity, severity_rank, reason, utterance_id, "
        "raised_by, agent_note, excerpt) VALUES ('old-call', 30.0, '2026-11-20T09:00:30Z', 'escalation', "
        f"'high', 3, {p}, 'c9', 'rules', '', '[]')",
        ("manager-request: escalation 0.91",),
    )
    (conn if url.startswith("postgresql") else conn3).close()


def test_an_older_schema_is_migrated_and_keeps_its_flags(store_url: str) -> None:
    _old_store(store_url)
    store = open_store(store_url)
    assert store.version() == SCHEMA_VERSION == 8
    [old] = store.flags()
    assert (old.call_id, old.kind, old.severity, old.rule) == (
        "old-call",
        "escalation",
        "high",
        "manager-request",
    )
    sink = FlagStoreSink(store)  # and the new tables take a new call
    for event in a_call():
        sink.emit(event)
    assert [f.kind for f in store.flags()] == ["crisis", "escalation", "agent"]
    # the rows already there have their ids: the old flag's event, imported again, is known
    sink.emit(Flag(t=30.0, call_id="old-call", kind="escalation", severity="high",
                   reason="manager-request: escalation 0.91", utterance_id="c9", rule="manager-request"))
    assert sink.counts["already"] == 1 and len(store.flags()) == 3
    store.close()


def test_a_newer_schema_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "flags.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer = SCHEMA_VERSION + 1
    said = rf"schema version {newer}, newer than this agent-assist understands \({SCHEMA_VERSION}\)"
    with pytest.raises(StoreError, match=said):
        open_store(path)


def test_not_a_store_and_unknown_urls(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    junk.chmod(0o644)
    with pytest.raises(StoreError, match="not a database, so not an agent-assist store"):
        open_store(junk)
    assert junk.read_bytes().startswith(b"this is not a database")  # left as it was
    assert stat.S_IMODE(junk.stat().st_mode) == 0o644  # mode and all (it was made 0600 before)
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(StoreError, match="not an agent-assist store, or is damaged"):
        open_store(damaged)
    foreign = tmp_path / "photos.db"
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE photos (name TEXT)")
    foreign.chmod(0o644)
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="a database of some other program, not an agent-assist store"):
        open_store(foreign)
    assert foreign.read_bytes() == before and stat.S_IMODE(foreign.stat().st_mode) == 0o644
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(StoreError, match="not a regular file"):
        open_store(fifo)
    with pytest.raises(StoreError, match="unknown store 'mysql://x'"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match=r"flag store postgresql://sam:\*\*\*@127\.0\.0\.1:1/flags"):
        open_store("postgresql://sam:secret@127.0.0.1:1/flags", timeout_s=1)


def test_a_second_store_on_the_same_file_keeps_the_first_ones_writes(tmp_path: Path) -> None:
    """The event bus opens the flag store's file a second time in the same process. Closing any
    descriptor of a database file drops all of the process's POSIX locks on it, SQLite's too, so a
    check that opened the file would leave the first connection unlocked: another program's reader,
    closing, would take itself for the last connection and discard the write-ahead log, and every
    later write of the call with it (a replay under a supervisor's polling lost all its flags)."""
    path = tmp_path / "flags.sqlite3"
    events = a_call("kept")
    store = open_store(path)
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east"))
    second = open_store(path)  # as the bus does
    sink.emit(events[0])
    reader = [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "print(c.execute('SELECT COUNT(*) FROM flags').fetchone()[0]); c.close()", str(path)]
    subprocess.run(reader, check=True, capture_output=True)  # another program reads, and closes
    for event in events[1:]:
        sink.emit(event)
    read = subprocess.run(reader, check=True, capture_output=True, text=True)
    assert read.stdout.strip() == "2"  # the two flags written after the other program's read
    sink.close()
    second.close()
    store.close()
    assert [f.call_id for f in open_store(path).flags(Filters())] == ["kept", "kept"]


_WRITER = """
import sys
from agent_assist.events import CallStart, Flag, Speaker
from agent_assist.store import FlagStoreSink, open_store
sink = FlagStoreSink(open_store(sys.argv[1]))
sink.emit(CallStart(t=0.0, call_id="c", source="x", channels={"mono": Speaker.UNKNOWN},
                    started_at="2026-11-23T09:00:00Z", model="m"))
n = 0
while True:
    n += 1
    sink.emit(Flag(t=float(n), call_id="c", kind="distress", severity="low", reason=f"r: {n}",
                   utterance_id=f"u{n}"))
    print(n, flush=True)  # only after emit returned, that is after the commit
"""


def test_killing_the_process_mid_write_loses_no_committed_flag(store_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, store_url], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert child.stdout is not None
    reported = 0
    for line in child.stdout:
        reported = int(line)
        if reported >= 40:
            break
    child.kill()  # SIGKILL, mid-write: it was writing flag 41 or later
    child.wait()
    store = open_store(store_url)
    times = sorted(int(f.t) for f in store.flags())
    assert times[:reported] == list(range(1, reported + 1))
    assert times == list(range(1, len(times) + 1))  # nothing half-written
    if not store_url.startswith("postgresql"):
        assert store.db.query("PRAGMA integrity_check") == [("ok",)]
    store.close()


def test_a_locked_store_holds_the_call_back_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "flags.sqlite3"
    store = open_store(path, timeout_s=0.2)
    sink = FlagStoreSink(store, spill_dir=tmp_path / "unsaved")
    events = a_call()
    sink.emit(events[0])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    started = time.monotonic()
    for event in events[1:9]:
        sink.emit(event)  # never raises into the pipeline
    assert time.monotonic() - started < 5
    assert "is locked" in caplog.text and "kept in memory and retried" in caplog.text
    blocker.execute("ROLLBACK")
    for event in events[9:]:
        sink.emit(event)
    assert [f.kind for f in store.flags()] == ["crisis", "agent"]
    assert store.flags()[0].excerpt[0]["text"] == "It's [card] and my mobile is [phone]"
    store.close()


def test_a_store_that_stays_locked_is_saved_aside_and_imported_later(tmp_path: Path) -> None:
    path = tmp_path / "flags.sqlite3"
    store = open_store(path, timeout_s=0.2)
    sink = FlagStoreSink(store, spill_dir=tmp_path / "unsaved")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for event in a_call():
        sink.emit(event)
    sink.close()
    store.close()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert sink.spilled is not None and stat.S_IMODE(sink.spilled.stat().st_mode) == 0o600
    saved = sink.spilled.read_text()
    assert "[card]" in saved and "4111" not in saved and "0412" not in saved
    result = agent_assist("review", "import", str(sink.spilled), "--store", str(path))
    assert result.returncode == 0, result.stderr
    store = open_store(path)
    assert [f.kind for f in store.flags()] == ["crisis", "agent"]
    store.close()


def test_purge_removes_old_calls_and_everything_about_them(store_url: str) -> None:
    old = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    write(store_url, a_call("old", started_at=old) + a_call("new"))
    store = open_store(store_url)
    store.note(store.flags()[0].id, "follow up", by="lee")
    assert store.purge(90) == (1, 2)
    assert {f.call_id for f in store.flags()} == {"new"}
    with pytest.raises(StoreError, match="no call 'old'"):
        store.call("old")
    for table in ("scores", "prompts", "feedback", "turns"):
        assert store.db.query(f"SELECT COUNT(*) FROM {table} WHERE call_id = 'old'")[0][0] == 0
    assert store.purge(90) == (0, 0)
    store.close()


def test_review_actions_and_filters(store_url: str) -> None:
    write(store_url, a_call("a") + a_call("b"))
    store = open_store(store_url)
    first = store.flags()[0]
    assert store.ack(first.id, "lee") and not store.ack(first.id, "kim")
    store.note(first.id, "Spoke to Sam about the call; 0412 345 678 called back", "lee", wellbeing=True)
    record = store.flag(first.id)
    assert (record.reviewed_by, record.notes[0]["wellbeing"]) == ("lee", True)
    assert record.notes[0]["text"] == "Spoke to Sam about the call; [phone] called back"
    assert len(store.flags(Filters(reviewed=False))) == 3
    assert [f.kind for f in store.flags(Filters(kinds=("agent",)))] == ["agent", "agent"]
    assert store.flags(Filters(teams=("west",))) == []
    assert len(store.flags(Filters(severities=("critical",), agents=("sam",)))) == 2
    with pytest.raises(AgentAssistError, match="no flag 999"):
        store.ack(999, "lee")
    store.close()


def test_hostile_text_is_stored_as_text(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    events = a_call()
    hostile = "'); DROP TABLE flags; -- <script>alert(1)</script>"
    events[5] = say("call-1", 4, Speaker.CUSTOMER, 9.0, hostile, scores(0.9, crisis=0.97))
    write(url, events)
    store = open_store(url)
    assert store.flags()[0].excerpt[2]["text"] == hostile
    store.close()


def test_postgresql_connection_lost_mid_call_is_reconnected_and_nothing_lost(pg_server: str) -> None:
    """The floor's server drops this desktop's connection (a restart, a network blip) mid-call."""
    import psycopg

    from tests import pg

    url = pg.fresh_database(pg_server)
    store = open_store(url)
    sink = FlagStoreSink(store)
    events = a_call()
    for event in events[:7]:
        sink.emit(event)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    for event in events[7:]:
        sink.emit(event)  # the first write finds the connection gone; the next reconnects
    sink.close()
    assert sink.spilled is None
    assert [f.kind for f in store.flags()] == ["crisis", "agent"]
    assert len(store.call("call-1").scores) == 3
    store.close()


def test_a_flag_is_stored_with_the_rule_it_names(tmp_path: Path) -> None:
    """The rule column comes from the flag's `rule`, not from the words of its `reason`."""
    url = str(tmp_path / "flags.sqlite3")
    write(url, [
        Flag(t=3.0, call_id="c", kind="distress", severity="low", reason="distress 0.91 after a long hold",
             utterance_id="u1", rule="acknowledge-disclosure"),
        Flag(t=4.0, call_id="c", kind="agent", severity="medium", reason="raised by the agent: check this",
             utterance_id="", raised_by="agent"),
    ])
    store = open_store(url)
    assert sorted((f.t, f.rule) for f in store.flags()) == [(3.0, "acknowledge-disclosure"), (4.0, "")]
    store.close()


def test_events_without_their_call_start_still_find_a_call(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call()[5:9])  # a fragment of an event log: an utterance, a prompt, a flag, an utterance
    store = open_store(url)
    [flag] = store.flags()
    assert flag.call_id == "call-1" and flag.agent == "sam"
    assert flag.excerpt[0]["text"] == "[dob]. Honestly I don't want to be here anymore"
    store.close()


def test_a_store_that_cannot_be_opened_yet_is_tried_again(tmp_path: Path) -> None:
    """The floor's server is down when the shift starts and comes back during the call."""
    path = tmp_path / "flags.sqlite3"
    attempts: list[float] = []

    def opener():
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise StoreError("flag store floor: connection refused", transient=True)
        return open_store(path)

    sink = FlagStoreSink(opener, where="floor", reopen_s=0.0)
    with pytest.raises(StoreError):
        sink.open()
    for event in a_call():
        sink.emit(event)
    sink.close()
    assert sink.spilled is None and len(attempts) == 2
    store = open_store(path)
    assert [f.kind for f in store.flags()] == ["crisis", "agent"]
    store.close()


def _frozen_mid_call(pg_server: str, tmp_path: Path) -> tuple[Recorder, FlagStoreSink, Path, str]:
    """A call recorded to the event log and a PostgreSQL store with a 1 s deadline, whose server
    freezes (every process SIGSTOPped, the connection left open) after the call's fifth event; the
    rest of the call is emitted and must be written to the log at once. Returns with the server
    still frozen."""
    from tests import pg

    url = pg.fresh_database(pg_server)
    sink = FlagStoreSink(open_store(url, timeout_s=1.0), spill_dir=tmp_path / "unsaved", redact=False)
    log = tmp_path / "events.jsonl"
    recorder = Recorder([JsonlEventLog(str(log), redact=False), sink])
    events = a_call()
    for event in events[:5]:
        recorder.emit(event)
    assert recorder.flush(timeout=10)
    return recorder, sink, log, url


def test_a_frozen_postgresql_holds_nothing_up_and_what_it_missed_is_saved_aside(
    pg_server: str, tmp_path: Path
) -> None:
    """Before deadlines, nothing was written (the event log neither) until the server resumed."""
    from tests import pg

    recorder, sink, log, url = _frozen_mid_call(pg_server, tmp_path)
    with pg.frozen(pg_server):
        started = time.monotonic()
        for event in a_call()[5:]:
            recorder.emit(event)
        assert recorder.flush(timeout=10)
        assert time.monotonic() - started < 4  # one deadline (1 s), not as long as the freeze
        assert len(log.read_text().splitlines()) == len(a_call())
        recorder.close()  # still frozen: what the store missed is saved aside
        assert sink.spilled is not None and sink.store is not None
        sink.store.close()
    done = agent_assist("review", "import", str(sink.spilled), "--store", url)
    assert done.returncode == 0 and done.stdout.startswith("imported 9 event(s)"), done
    store = open_store(url)
    assert [f.kind for f in store.flags()] == ["crisis", "agent"]
    assert len(store.call("call-1").scores) == 3  # each written once
    store.close()


def test_a_postgresql_that_resumes_gets_what_it_missed_and_nothing_is_saved_aside(
    pg_server: str, tmp_path: Path
) -> None:
    from tests import pg

    recorder, sink, _, _ = _frozen_mid_call(pg_server, tmp_path)
    with pg.frozen(pg_server):
        for event in a_call()[5:]:
            recorder.emit(event)
        assert recorder.flush(timeout=10)
    recorder.close()  # resumed: the events kept in memory are written
    assert sink.spilled is None and sink.store is not None
    assert [f.kind for f in sink.store.flags()] == ["crisis", "agent"]
    assert len(sink.store.call("call-1").scores) == 3
    sink.store.close()


PURGED = "Wattlebird Crescent"  # a detail the redaction keeps, so the store holds it as text


def _copies(path: Path) -> dict[str, int]:
    """How often the purged call's words are in each of the store's files."""
    return {suffix: Path(f"{path}{suffix}").read_bytes().count(PURGED.encode())
            for suffix in ("", "-wal", "-shm") if Path(f"{path}{suffix}").exists()}


def _old_call_and_a_new_one(path: Path) -> None:
    events = a_call("old", started_at=(datetime.now(UTC) - timedelta(days=100)).isoformat())
    events[5] = say("old", 4, Speaker.CUSTOMER, 9.0, f"I walk along {PURGED} every night",
                    scores(0.9, crisis=0.97))
    write(str(path), events + a_call("new"), transcript="full")


def test_purged_text_is_gone_from_every_file_of_the_store_while_a_session_is_open(tmp_path: Path) -> None:
    """Before, the purged text stayed in the main file until the last connection closed (40 copies
    of a turn's words in a probe like this one), and a running agent's session keeps one open all
    shift."""
    path = tmp_path / "flags.sqlite3"
    _old_call_and_a_new_one(path)
    session = open_store(path)  # an agent's session, running
    assert [f.call_id for f in session.flags()].count("old") == 2
    other = sqlite3.connect(path)  # and another program with the file open
    other.execute("SELECT COUNT(*) FROM turns").fetchall()
    assert sum(_copies(path).values()) > 0
    done = agent_assist("review", "purge", "--older-than", "90", "--store", str(path))
    assert done.returncode == 0 and "purged 1 call(s) and 2 flag(s)" in done.stdout
    assert _copies(path) == {"": 0, "-wal": 0, "-shm": 0}
    assert {f.call_id for f in session.flags()} == {"new"}  # the session reads on, and writes
    FlagStoreSink(session).emit(Flag(t=30.0, call_id="new", kind="agent", severity="low", reason="",
                                     utterance_id="", raised_by="agent"))
    assert len(session.flags()) == 3
    other.close()
    session.close()


def test_a_purge_while_a_reader_is_mid_query_says_so_and_the_next_one_scrubs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "flags.sqlite3"
    _old_call_and_a_new_one(path)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM turns").fetchall()  # a report being written
    store = open_store(path, timeout_s=0.2)
    assert store.purge(90) == (1, 2)
    assert "another program is reading the store, so what was purged stays on disk" in caplog.text
    reader.execute("COMMIT")
    assert store.purge(90) == (0, 0)
    assert _copies(path) == {"": 0, "-wal": 0, "-shm": 0}
    store.close()
    reader.close()


def test_a_served_call_keeps_the_platforms_conversation_and_participant(store_url: str) -> None:
    """A call from `serve` (AudioHook) is stored with the platform's ids, and `review show` names the
    conversation, so a supervisor can find the call on the platform; a call from a file has none."""
    store = open_store(store_url)
    try:
        served = CallStart(t=0.0, call_id="served-1", source="audiohook", channels={},
                           started_at="2026-11-30T09:00:00Z", model="m",
                           conversation_id="6a4f2d10-0c5b-4d8e-9a41-1f2e3d4c5b6a",
                           participant_id="0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b")
        store.add_call(served, "sam", "east", "excerpt")
        store.add_call(CallStart(t=0.0, call_id="file-1", source="x.wav", channels={},
                                 started_at="2026-11-30T09:00:00Z", model="m"), "sam", "east", "excerpt")
        call = store.call("served-1")
        assert (call.conversation_id, call.participant_id) == (served.conversation_id, served.participant_id)
        assert (store.call("file-1").conversation_id, store.call("file-1").participant_id) == ("", "")
    finally:
        store.close()

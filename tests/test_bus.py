"""The event bus: events published after the store commits them, redacted, with their agent and team;
on PostgreSQL from one process to another by NOTIFY/LISTEN (a big one by reference), on SQLite at
once in the process and by the table to another; a supervisor's note reaching its agent's overlay."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings

from agent_assist.bus import MAX_PAYLOAD, BusMessage, BusWriter, NoteFeed, open_bus
from agent_assist.events import Flag, SupervisorNote, event_from_json
from agent_assist.recorder import Recorder
from agent_assist.sinks import EventList
from agent_assist.store import FlagStoreSink, StoreOptions, open_store
from tests.test_recorder import CARD, call

NOTE = SupervisorNote(t=12.0, call_id="c1", text="I'm listening in, take your time", author="lee.t",
                      agent="sam")


def _publish_elsewhere(url: str, events: list[str], agent: str = "sam", team: str = "east") -> None:
    """Publish `events` (JSON lines) from another Python process."""
    code = textwrap.dedent(f"""
        from agent_assist.bus import open_bus
        from agent_assist.events import event_from_json
        bus = open_bus({url!r})
        for line in {events!r}:
            assert bus.publish(event_from_json(line), agent={agent!r}, team={team!r})
        bus.close()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_message_round_trips_as_the_event_log_line_with_its_agent_and_team():
    message = BusMessage(NOTE, "sam", "east")
    data = json.loads(message.payload())
    assert data["agent"] == "sam" and data["team"] == "east"
    assert event_from_json(json.dumps(data["event"])) == NOTE
    assert BusMessage.from_payload(message.payload()) == message


def test_sqlite_delivers_at_once_in_the_process_and_only_the_agent_asked_for(tmp_path: Path) -> None:
    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    everyone, sams = bus.subscribe(), bus.subscribe(agent="sam")
    other = SupervisorNote(t=1.0, call_id="c2", text="hello", author="lee.t", agent="kim")
    started = time.monotonic()
    assert bus.publish(NOTE, agent="sam", team="east")
    assert bus.publish(other, agent="kim", team="west")
    got = everyone.get(timeout=2)
    assert got == BusMessage(NOTE, "sam", "east") and time.monotonic() - started < 0.2
    assert everyone.get(timeout=2) == BusMessage(other, "kim", "west")
    assert sams.get(timeout=2) == BusMessage(NOTE, "sam", "east")
    assert sams.get(timeout=0.5) is None  # kim's note is not sam's
    everyone.close()
    sams.close()
    bus.close()


def test_sqlite_reaches_a_subscriber_in_another_process_through_the_table(tmp_path: Path) -> None:
    path = str(tmp_path / "flags.sqlite3")
    bus = open_bus(path)
    sub = bus.subscribe()
    _publish_elsewhere(path, [NOTE.to_json()])
    assert sub.get(timeout=3) == BusMessage(NOTE, "sam", "east")
    assert sub.get(timeout=0.6) is None  # read once
    sub.close()
    bus.close()


def test_postgresql_publish_in_one_process_receive_in_another(pg_server: str) -> None:
    from tests import pg

    url = pg.fresh_database(pg_server)
    bus = open_bus(url)
    sub = bus.subscribe()
    sams = bus.subscribe(agent="sam")
    events = call()
    big = SupervisorNote(t=13.0, call_id="c1", text="word " * 3000, author="lee.t", agent="sam")
    assert len(BusMessage(big, "sam", "east").payload().encode()) > MAX_PAYLOAD
    _publish_elsewhere(url, [e.to_json() for e in [*events, big]])
    got = [sub.get(timeout=5) for _ in range(len(events) + 1)]
    assert [m.event for m in got if m] == [*events, big]  # in order; the big one by reference
    assert {(m.agent, m.team) for m in got if m} == {("sam", "east")}
    assert sams.get(timeout=5) is not None
    _publish_elsewhere(url, [NOTE.to_json()], agent="kim")
    assert sub.get(timeout=5) == BusMessage(NOTE, "kim", "east")
    assert sams.get(timeout=0.5) is not None  # the rest of sam's first call
    sub.close()
    sams.close()
    bus.close()


def test_the_recorder_publishes_redacted_events_after_the_store_has_them(pg_server: str,
                                                                         tmp_path: Path) -> None:
    """A subscriber that reads the store the moment a flag arrives finds it there; the customer's
    card number never reaches the bus; a turn's word timings are not sent."""
    from tests import pg

    url = pg.fresh_database(pg_server)
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent="sam", team="east", transcript="full"),
                         spill_dir=tmp_path, redact=False)
    bus = open_bus(url)
    sub = bus.subscribe()
    reader = open_store(url)
    recorder = Recorder([sink, BusWriter(bus, "sam", "east", "full")])
    for event in call():
        recorder.emit(event)
    flags_seen_in_store: list[int] = []
    got = []
    while len(got) < 5:
        message = sub.get(timeout=5)
        assert message is not None
        got.append(message)
        if isinstance(message.event, Flag):
            flags_seen_in_store.append(len(reader.flags()))
    recorder.close()
    assert flags_seen_in_store == [1]
    payloads = " ".join(m.payload() for m in got)
    assert CARD not in payloads and "4111" not in payloads
    assert all(m.team == "east" for m in got)
    sub.close()
    reader.close()
    store.close()


def test_a_bus_that_cannot_be_reached_never_raises_into_the_call(pg_server: str, tmp_path: Path) -> None:
    from tests import pg

    url = pg.fresh_database(pg_server)
    bus = open_bus(url)
    with pg.frozen(pg_server):
        bus._db._timeout_s = 1.0  # type: ignore[attr-defined]
        assert bus.publish(NOTE, agent="sam", team="east") is False
    assert bus.lost == 1
    assert bus.publish(NOTE, agent="sam", team="east")  # back
    bus.close()


def test_a_note_reaches_the_agents_desktop_and_its_overlay_as_a_card_of_its_own(qtbot, tmp_path: Path
                                                                                 ) -> None:
    """`NoteFeed` (what `run` starts with a store and an overlay) hands the agent's notes, and no one
    else's, to the overlay's bridge; the overlay shows each as a note card, without taking focus."""
    from agent_assist.pipeline import AgentDesk
    from agent_assist.ui.app import ReplayControls
    from agent_assist.ui.bridge import EventBridge
    from agent_assist.ui.overlay import Overlay, OverlaySettings

    path = str(tmp_path / "flags.sqlite3")
    bridge = EventBridge()
    settings = OverlaySettings(QSettings(str(tmp_path / "overlay.ini"), QSettings.Format.IniFormat))
    overlay = Overlay(ReplayControls(AgentDesk([EventList()])), bridge, settings)
    qtbot.addWidget(overlay)
    overlay.show()
    feed = NoteFeed(path, "sam", bridge)
    assert feed.ready.wait(5)
    bus = open_bus(path)  # the floor's, in another connection
    bus.publish(SupervisorNote(t=1.0, call_id="c9", text="not for sam", author="lee.t", agent="kim"),
                agent="kim", team="east")
    bus.publish(NOTE, agent="sam", team="east")
    qtbot.waitUntil(lambda: len(overlay.note_views) == 1, timeout=5000)
    card = overlay.note_views[0]
    words = " ".join(w.text() for w in card.findChildren(type(overlay.status)))
    assert "Team leader (lee.t)" in words and "take your time" in words and "not for sam" not in words
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QAbstractButton

    assert card.objectName() == "supervisorNote" and card.window() is overlay  # in the overlay's window
    assert overlay.windowFlags() & Qt.WindowType.WindowDoesNotAcceptFocus
    assert all(b.focusPolicy() == Qt.FocusPolicy.TabFocus for b in card.findChildren(QAbstractButton))
    feed.close()
    bus.close()
    assert feed.delivered == 1


def test_a_writer_never_publishes_what_the_bus_does_not_carry(tmp_path: Path) -> None:
    from agent_assist.events import DeviceState, DeviceStatus, DropKind, Dropped, Listening, Speaker

    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    sub = bus.subscribe()
    writer = BusWriter(bus, "sam", "east", transcript="none", owns_bus=False)
    writer.emit(DeviceStatus(t=1.0, call_id="c1", device="Jabra", parties=(Speaker.AGENT,),
                             state=DeviceState.LOST, message="no audio for 2 s; retrying"))
    writer.emit(Dropped(t=1.5, call_id="c1", what=DropKind.AUDIO, count=3, total=5, seconds=0.096))
    for event in call():
        writer.emit(event)
    # a pause is carried: an overlay connected to another `serve` instance says listening is paused
    writer.emit(Listening(t=9.0, call_id="c1", paused=True, by="overlay"))
    got = [sub.get(timeout=2) for _ in range(6)]
    utterance = got[1].event if got[1] else None
    assert getattr(utterance, "text", None) == "" and getattr(utterance, "words", None) == ()
    assert [m.event.type for m in got if m] == ["call_start", "utterance", "prompt", "flag", "call_end",
                                               "listening"]
    sub.close()
    bus.close()


def test_close_from_another_thread_ends_an_iteration(tmp_path: Path) -> None:
    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    sub = bus.subscribe()
    seen: list[BusMessage] = []
    reader = threading.Thread(target=lambda: seen.extend(sub))
    reader.start()
    bus.publish(NOTE, agent="sam", team="east")
    time.sleep(0.3)
    sub.close()
    reader.join(timeout=3)
    assert not reader.is_alive() and seen == [BusMessage(NOTE, "sam", "east")]
    bus.close()


@pytest.mark.parametrize("text", ["not json", "[]", '{"event": 1}', '{"agent": 3, "event": {}}'])
def test_a_message_that_is_not_the_bus_s_is_refused_with_a_parse_error(text: str) -> None:
    from agent_assist.events import EventParseError

    with pytest.raises(EventParseError):
        BusMessage.from_payload(text)


def test_a_purge_takes_the_bus_s_copies_of_old_events_too(tmp_path: Path) -> None:
    """The bus keeps events in the store's `bus_events` (all of them on SQLite) until newer ones
    push them out; a desk that stopped publishing leaves the last ones there, which a purge removes."""
    path = str(tmp_path / "flags.sqlite3")
    bus = open_bus(path)
    bus.publish(NOTE, agent="sam", team="east")
    store = open_store(path)
    store.db.execute("UPDATE bus_events SET at = '2020-01-01T00:00:00Z'")
    store.purge(1)
    assert store.db.query("SELECT COUNT(*) FROM bus_events")[0][0] == 0
    store.close()
    bus.close()


def test_serve_relays_other_instances_calls_and_every_note_to_its_overlays(tmp_path: Path) -> None:
    """An instance of `serve` relays from the bus what its overlays would not get otherwise: the
    events of calls another instance hosts, and a supervisor's note (the floor publishes it) even on
    a call it hosts itself; its own calls' events it delivered already, and are not doubled."""
    from agent_assist.server import BusRelay
    from agent_assist.server.feed import LocalFeed

    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    feed = LocalFeed()
    relay = BusRelay(bus, lambda call_id: call_id == "c1", feed)  # this instance hosts c1
    ours = Flag(t=5.0, call_id="c1", kind="crisis", severity="critical", reason="r",  # type: ignore[arg-type]
                utterance_id="u1", rule="crisis-self-harm")
    theirs = Flag(t=6.0, call_id="c2", kind="crisis", severity="critical", reason="r",  # type: ignore[arg-type]
                  utterance_id="u1", rule="crisis-self-harm")
    for event in (ours, NOTE, theirs):
        assert bus.publish(event, agent="sam", team="east")
    deadline = time.monotonic() + 10
    while relay.relayed < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    relay.close()
    bus.close()
    assert [(item.event.type, item.event.call_id) for item in feed._after("sam", 0)] == [
        ("supervisor_note", "c1"), ("flag", "c2")]

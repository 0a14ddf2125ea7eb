"""An agent's action on a call another `serve` instance hosts: the messages it travels in on the
store's bus (redacted, read back exactly, anything else refused), and the asking side's bounded
wait. The whole exchange between two real `serve` processes on PostgreSQL is in
tests/test_serve_reference.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest

from agent_assist.bus import BusMessage, InstanceMessage, _parse, open_bus
from agent_assist.call import CallOptions
from agent_assist.events import EventParseError, Feedback, Flag, FlagKind, Prompt, Severity
from agent_assist.server.actions import (
    ANSWER,
    REQUEST,
    ActionError,
    ActionRelay,
    AgentAction,
    answer_body,
    read_request,
    request_body,
)
from agent_assist.server.calls import CallServer, ServedCall
from agent_assist.server.feed import LocalFeed
from agent_assist.server.settings import ServeSettings

CARD = "4111 1111 1111 1111"
FLAG = Flag(t=31.5, call_id="c0ffee000001", kind=FlagKind.AGENT, severity=Severity.MEDIUM,
            reason="raised by the agent", utterance_id="", raised_by="agent",
            note=f"she read out her card {CARD}, please check")


def on_the_wire(body: dict) -> dict:
    """`body` as another instance reads it off the bus."""
    message = _parse(InstanceMessage(body).payload())
    assert isinstance(message, InstanceMessage)
    return message.body


def test_a_flag_travels_redacted_and_reads_back_as_the_same_action():
    action = AgentAction.from_overlay("sam.k", json.dumps({"event": FLAG.to_dict()}))
    body = request_body(action, "r1", "instance-b")
    payload = InstanceMessage(body).payload()
    assert CARD not in payload and "[card]" in payload  # nothing unredacted on the bus
    assert body["kind"] == REQUEST and body["from"] == "instance-b" and body["call_id"] == FLAG.call_id
    request_id, sender, read = read_request(on_the_wire(body))
    assert (request_id, sender) == ("r1", "instance-b")
    assert read.agent == "sam.k" and read.call_id == FLAG.call_id and read.pause is None
    assert isinstance(read.event, Flag) and read.event.note == "she read out her card [card], please check"
    assert {**read.event.to_dict(), "note": ""} == {**FLAG.to_dict(), "note": ""}


def test_pause_feedback_and_the_answer_round_trip():
    pause = AgentAction.from_overlay("sam.k", '{"pause": true, "call_id": "c1"}')
    assert read_request(on_the_wire(request_body(pause, "r2", "b")))[2] == pause
    resume = AgentAction("sam.k", "c1", pause=False)
    assert read_request(on_the_wire(request_body(resume, "r3", "b")))[2] == resume
    rated = Feedback(t=20.0, call_id="c1", rule="acknowledge-disclosure", prompt_t=19.5, rating="helpful")
    feedback = AgentAction.from_overlay("sam.k", json.dumps({"event": rated.to_dict()}))
    assert read_request(on_the_wire(request_body(feedback, "r4", "b")))[2] == feedback
    answer = on_the_wire(answer_body("r4", "b", None))
    assert answer == {"kind": ANSWER, "id": "r4", "to": "b", "error": None}


@pytest.mark.parametrize(("message", "says"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "a message must be a JSON object"),
    ('{"pause": true}', "a pause names its call_id"),
    ('{"event": {"type": "dance"}}', "dance"),
    (json.dumps({"event": Prompt(t=1.0, call_id="c1", rule="r", principle="p", text="t", example="e",
                                 priority=1, signals=(), why={}).to_dict()}),
     "an overlay may send flags, feedback and prompt_seen, not prompt"),
])
def test_what_an_overlay_may_not_send_gets_one_line(message: str, says: str):
    with pytest.raises(ActionError, match=says):
        AgentAction.from_overlay("sam.k", message)


def test_a_request_that_is_not_whole_is_refused():
    body = request_body(AgentAction("sam.k", FLAG.call_id, event=FLAG), "r5", "b")
    for broken in ({**body, "id": ""}, {**body, "from": None}, {**body, "call_id": "another-call"},
                   {key: value for key, value in body.items() if key != "agent"}):
        with pytest.raises(ActionError):
            read_request(broken)


def test_event_subscribers_never_see_the_instances_messages(tmp_path: Path):
    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    events, instances = bus.subscribe(), bus.subscribe_instances()
    assert bus.tell(answer_body("r6", "b", "call c1 has ended"))
    got = instances.get(timeout=2)
    assert got is not None and got.body["error"] == "call c1 has ended"
    assert events.get(timeout=0.5) is None
    with pytest.raises(EventParseError, match="between serve instances"):
        BusMessage.from_payload(InstanceMessage({"kind": ANSWER}).payload())
    events.close()
    instances.close()
    bus.close()


def call_server() -> CallServer:
    """What the relay asks of a `CallServer` (which calls it hosts) needs no model."""
    return CallServer(None, CallOptions(), ServeSettings(), LocalFeed())  # type: ignore[arg-type]


def test_an_action_nobody_hosts_gets_its_one_line_in_bounded_time(tmp_path: Path):
    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    asking = ActionRelay(bus, call_server(), answer_s=0.5)
    started = time.monotonic()
    said = asyncio.run(asking.ask(AgentAction("sam.k", "c0ffee000001", pause=True)))
    assert 0.5 <= time.monotonic() - started < 1.5
    assert said is not None
    assert said.startswith("no serve instance answered for call c0ffee000001 within 0.5 s")
    asking.close()
    bus.close()


def test_the_host_of_an_ended_call_answers_at_once(tmp_path: Path):
    """Another instance (a relay on the same bus) hosted the call, which has ended: it says so."""
    bus = open_bus(str(tmp_path / "flags.sqlite3"))
    hosting = call_server()
    call = ServedCall(hosting, "session-1")
    assert hosting.admit(call)
    hosting.finished(call, None)
    host, asking = ActionRelay(bus, hosting), ActionRelay(bus, call_server())
    started = time.monotonic()
    flag = dataclasses.replace(FLAG, call_id=call.call_id)
    said = asyncio.run(asking.ask(AgentAction("sam.k", call.call_id, event=flag)))
    assert said == f"call {call.call_id} has ended: its flag was not taken"
    assert time.monotonic() - started < 2.0 and host.performed == 1 and asking.asked == 1
    for relay in (host, asking):
        relay.close()
    bus.close()

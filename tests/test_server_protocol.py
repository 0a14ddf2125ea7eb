"""The AudioHook session state machine, driven by scripted client messages (no socket, no model)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_assist.events import Speaker
from agent_assist.server.protocol import (
    CloseReason,
    Media,
    OpenRequest,
    Session,
    State,
    choose_media,
    duration,
    parse_duration,
)

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
ORG = "d7934305-0972-4844-938e-9060eef73d05"
STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}


class Call:
    """A `CallHandler` that remembers what it was told."""

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.opened: OpenRequest | None = None
        self.frames: list[tuple[float, bytes]] = []
        self.pauses: list[tuple[float, bool]] = []
        self.ends: list[tuple[CloseReason, str]] = []

    def open(self, request: OpenRequest) -> str | None:
        self.opened = request
        return self.refuse

    def audio(self, t: float, frame: bytes) -> None:
        self.frames.append((t, frame))

    def pause(self, t: float, paused: bool) -> None:
        self.pauses.append((t, paused))

    def end(self, reason: CloseReason, message: str) -> None:
        self.ends.append((reason, message))


class Client:
    """Writes client messages as the platform does: seq, serverseq and position kept."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seq = 0
        self.serverseq = 0
        self.position = 0.0
        self.replies: list[dict[str, Any]] = []

    def send(self, kind: str, parameters: dict[str, Any] | None = None,
             **override: Any) -> list[dict[str, Any]]:
        self.seq += 1
        message = {"version": "2", "id": SESSION, "type": kind, "seq": self.seq,
                   "serverseq": self.serverseq, "position": duration(self.position),
                   "parameters": parameters if parameters is not None else {}}
        message.update(override)
        return self._got(self.session.receive_text(json.dumps(message)))

    def audio(self, data: bytes, channels: int = 2) -> list[dict[str, Any]]:
        self.position += len(data) / channels / 8000
        return self._got(self.session.receive_binary(data))

    def open(self, media: list[dict[str, Any]] | None = None, **parameters: Any) -> list[dict[str, Any]]:
        return self.send("open", {"organizationId": ORG, "conversationId": "conv-1",
                                  "participant": {"id": "part-1", "ani": "+1", "aniName": "", "dnis": "+2"},
                                  "media": media or [STEREO], "language": "en-US", **parameters})

    def _got(self, replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for reply in replies:
            self.serverseq = reply["seq"]
        self.replies.extend(replies)
        return replies


def opened() -> tuple[Session, Call, Client]:
    call = Call()
    session = Session(SESSION, call, organization_id=ORG)
    client = Client(session)
    (reply,) = client.open()
    assert reply["type"] == "opened"
    return session, call, client


def test_open_chooses_stereo_pcmu_and_tells_the_call_who_is_on_it():
    session, call, client = opened()
    reply = client.replies[0]
    assert reply == {"version": "2", "type": "opened", "seq": 1, "clientseq": 1, "id": SESSION,
                     "parameters": {"media": [STEREO], "startPaused": False}}
    assert call.opened is not None
    assert call.opened.conversation_id == "conv-1" and call.opened.participant["id"] == "part-1"
    assert call.opened.media.speakers == (Speaker.CUSTOMER, Speaker.AGENT)  # external, internal
    assert session.state == State.ACTIVE


def test_media_negotiation_takes_the_first_offer_it_can_and_mono_is_one_unknown_speaker():
    inverted = {**STEREO, "channels": ["internal", "external"]}
    assert choose_media([inverted]) == Media("PCMU", ("internal", "external"))
    assert choose_media([inverted]).speakers == (Speaker.AGENT, Speaker.CUSTOMER)  # type: ignore[union-attr]
    offers = [{**STEREO, "rate": 16000}, {**STEREO, "format": "opus"},
              {"type": "audio", "format": "L16", "channels": ["external"], "rate": 8000}]
    media = choose_media(offers)
    assert media == Media("L16", ("external",)) and media.speakers == (Speaker.UNKNOWN,)
    assert choose_media([{**STEREO, "channels": ["external", "external"]}]) is None
    assert choose_media("PCMU") is None


def test_nothing_supported_is_refused_with_the_protocols_disconnect():
    call = Call()
    client = Client(Session(SESSION, call))
    (reply,) = client.open([{**STEREO, "rate": 16000}])
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    assert "PCMU or L16 at 8000 Hz" in reply["parameters"]["info"]
    assert call.ends == [(CloseReason.REFUSED, reply["parameters"]["info"])]
    (closed,) = client.send("close", {"reason": "disconnect"})  # the client's close is still answered
    assert closed["type"] == "closed" and closed["seq"] == 2


def test_a_call_the_server_refuses_is_disconnected_with_the_reason():
    call = Call(refuse="server at capacity (2 calls)")
    client = Client(Session(SESSION, call))
    (reply,) = client.open()
    assert reply["parameters"] == {"reason": "error", "info": "server at capacity (2 calls)"}


def test_an_open_for_another_organisation_than_the_signed_one_is_unauthorized():
    call = Call()
    client = Client(Session(SESSION, call, organization_id="someone-else"))
    (reply,) = client.open()
    assert reply["parameters"]["reason"] == "unauthorized"


def test_ping_pong_update_discarded_and_error_keep_the_sequence():
    session, call, client = opened()
    (pong,) = client.send("ping", {"rtt": "PT0.02S"})
    assert (pong["type"], pong["seq"], pong["clientseq"]) == ("pong", 2, 2)
    (updated,) = client.send("update", {"language": "en-AU"})
    assert updated["type"] == "updated" and session.language == "en-AU"
    assert client.send("error", {"code": 500, "message": "client side trouble"}) == []
    assert session.client_errors == ["client side trouble"]
    assert client.send("discarded", {"start": "PT0S", "discarded": "PT1.5S"}) == []
    assert session.call_time == pytest.approx(1.5)  # what was discarded is call time with no audio
    (closed,) = client.send("close", {"reason": "end"})
    assert (closed["type"], closed["seq"], closed["clientseq"]) == ("closed", 4, 6)
    assert call.ends == [(CloseReason.CLOSED, "end")]


def test_audio_is_counted_in_samples_whatever_the_frame_size():
    session, call, client = opened()
    for size in (320, 1600, 2, 798):  # stereo PCMU: two bytes a sample
        assert client.audio(bytes(size)) == []
    assert session.samples == (320 + 1600 + 2 + 798) // 2
    assert [t for t, _ in call.frames] == pytest.approx([0.0, 0.02, 0.12, 0.120125])
    (pong,) = client.send("ping")  # the client's position agrees with what arrived
    assert pong["type"] == "pong"


def test_pause_and_resume_leave_a_gap_in_call_time():
    session, call, client = opened()
    client.audio(bytes(16000))  # 1 s
    client.send("paused")
    client.position += 2.0  # the platform's clock runs on while paused (the reference client's does)
    (pong,) = client.send("ping")
    assert pong["type"] == "pong"
    client.position += 2.0
    client.send("resumed", {"start": "PT1S", "discarded": "PT4S"})
    client.audio(bytes(1600))
    assert call.pauses == [(1.0, True), (5.0, False)]
    assert call.frames[-1][0] == pytest.approx(5.0)
    assert session.state == State.ACTIVE


@pytest.mark.parametrize("bad, says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"version": "2", "id": SESSION, "type": "dance", "seq": 2, "serverseq": 1,
                 "position": "PT0S", "parameters": {}}), "unknown message type 'dance'"),
    (json.dumps({"version": "2", "id": SESSION, "type": "ping", "seq": 5, "serverseq": 1,
                 "position": "PT0S", "parameters": {}}), "seq 5 out of order (expected 2)"),
    (json.dumps({"version": "2", "id": SESSION, "type": "ping", "seq": 2, "serverseq": 9,
                 "position": "PT0S", "parameters": {}}), "serverseq 9"),
    (json.dumps({"version": "1", "id": SESSION, "type": "ping", "seq": 2, "serverseq": 1,
                 "position": "PT0S", "parameters": {}}), "protocol version"),
    (json.dumps({"version": "2", "id": "another", "type": "ping", "seq": 2, "serverseq": 1,
                 "position": "PT0S", "parameters": {}}), "not this session's"),
    (json.dumps({"version": "2", "id": SESSION, "type": "ping", "seq": 2, "serverseq": 1,
                 "position": "PT9S", "parameters": {}}), "position 9 s, but 0 s of audio"),
    (json.dumps({"version": "2", "id": SESSION, "type": "ping", "seq": 2, "serverseq": 1,
                 "position": "9 seconds", "parameters": {}}), "PT1.5S"),
    ("x" * 70000, "at most 65,535"),
])
def test_a_bad_message_gets_a_disconnect_saying_what_was_wrong_and_ends_the_call(bad, says):
    session, call, _client = opened()
    (reply,) = session.receive_text(bad)
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    assert says in reply["parameters"]["info"]
    assert call.ends == [(CloseReason.ERROR, reply["parameters"]["info"])]
    assert session.over
    assert session.receive_binary(bytes(320)) == []  # audio still in flight is ignored
    closing = {"version": "2", "id": SESSION, "type": "close", "seq": session.clientseq + 1,
               "serverseq": session.seq, "position": "PT0S", "parameters": {"reason": "error"}}
    (closed,) = session.receive_text(json.dumps(closing))
    assert closed["type"] == "closed" and len(call.ends) == 1


@pytest.mark.parametrize("frame, says", [
    (bytes(3), "not whole samples of 2 channel(s) of PCMU"),
    (bytes(2 * 8000 * 3), "an audio frame of 3 s (at most 2 s)"),
])
def test_odd_or_oversized_frames_are_refused(frame, says):
    session, _call, _client = opened()
    (reply,) = session.receive_binary(frame)
    assert reply["type"] == "disconnect" and says in reply["parameters"]["info"]


def test_audio_before_open_is_refused():
    call = Call()
    session = Session(SESSION, call)
    (reply,) = session.receive_binary(bytes(320))
    assert reply["parameters"] == {"reason": "error", "info": "audio before the session was opened"}
    assert call.opened is None


def test_a_client_that_vanishes_mid_call_ends_it_as_vanished():
    session, call, client = opened()
    client.audio(bytes(3200))
    session.vanished()
    assert call.ends == [(CloseReason.VANISHED, "the connection dropped mid-call")]
    session.vanished()  # once only
    assert len(call.ends) == 1


def test_a_closed_session_going_away_is_not_a_vanished_call():
    session, call, client = opened()
    client.send("close", {"reason": "end"})
    session.vanished()
    assert call.ends == [(CloseReason.CLOSED, "end")]


def test_durations_round_trip():
    for seconds in (0.0, 0.02, 1.5, 3600.125):
        assert parse_duration(duration(seconds)) == pytest.approx(seconds)
    assert parse_duration("PT10S") == 10.0


def test_the_agent_is_found_where_the_site_says():
    _session, call, _client = opened()
    request = call.opened
    assert request is not None
    assert request.lookup("participant.dnis") == "+2"
    assert request.lookup("customConfig.agentId") is None
    assert request.lookup("participant.nothing.deeper") is None

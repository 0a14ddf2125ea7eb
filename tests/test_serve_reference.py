"""`agent-assist serve` against the REAL vendored AudioHook reference client and conformance suite
(Genesys, MIT), all on localhost: the platform's own code signs, negotiates, streams and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_assist.store import open_store
from tests.audiohook_harness import (
    AGENT,
    config_text,
    conformance_suite,
    events_of,
    need_harness,
    reference_client,
    serve_process,
    telephone_call,
)
from tests.conftest import SAMPLES

CLIP_S = 28.0

@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo call's first 28 s (a disclosure of a death at 16-20 s, and the customer's next turn),
    as the platform streams it: each test that streams it waits as long as it plays."""
    need_harness()
    folder = tmp_path_factory.mktemp("pcmu")
    return telephone_call(SAMPLES / "sample_call.flac", folder / "sample28.wav", CLIP_S)


def serve_config(tmp_path: Path, max_calls: int = 4) -> tuple[Path, Path, Path]:
    store, events = tmp_path / "flags.sqlite3", tmp_path / "events"
    config = tmp_path / "config.toml"
    config.write_text(config_text(str(store), events, max_calls))
    return config, store, events


def test_a_call_streamed_by_the_reference_client_is_transcribed_prompted_and_flagged(tmp_path, sample_clip,
                                                                                   store_url):
    """End to end, into the store a floor uses (PostgreSQL) as well as the default (SQLite)."""
    config, _, events_dir = serve_config(tmp_path)
    config.write_text(config_text(store_url, events_dir))
    with serve_process(config) as served:
        client = reference_client(served.uri, "--wavfile", str(sample_clip))
    assert client.returncode == 0, client.stdout[-3000:] + client.stderr[-2000:]
    (call_events,) = events_of(events_dir).values()
    start, end = call_events[0], call_events[-1]
    assert start["type"] == "call_start"
    assert start["channels"] == {"external": "customer", "internal": "agent"}
    assert len(start["conversation_id"]) == 36 and len(start["participant_id"]) == 36
    assert end["type"] == "call_end" and end["reason"] == "ended"
    assert end["t"] == pytest.approx(CLIP_S, abs=0.1)
    said = {e["speaker"]: [] for e in call_events if e["type"] == "utterance"}
    for e in call_events:
        if e["type"] == "utterance":
            said[e["speaker"]].append(e["text"].lower())
    assert any("brightside energy" in text for text in said["agent"])
    assert any("passed away" in text for text in said["customer"])
    assert "[name]" in " ".join(said["agent"])  # the log is redacted
    rules = {e["rule"] for e in call_events if e["type"] == "prompt"}
    assert "acknowledge-disclosure" in rules
    store = open_store(store_url)
    try:
        call = store.call(start["call_id"])
        flags = store.flags()
    finally:
        store.close()
    assert (call.agent, call.team, call.end_reason) == (AGENT, "billing-east", "ended")  # the site's map
    # the platform's ids, so a supervisor finds the call in Genesys
    assert (call.conversation_id, call.participant_id) == (start["conversation_id"], start["participant_id"])
    assert "acknowledge-disclosure" in {f.rule for f in flags}
    assert {f.agent for f in flags} == {AGENT}
    assert "served 1 call(s)" in served.stderr


def test_the_conformance_suites_monitor_scenarios_pass(tmp_path):
    config, _, _ = serve_config(tmp_path)
    with serve_process(config, "--store", "none") as served:
        suite = conformance_suite(served.uri)
    report = suite.stdout + suite.stderr
    assert suite.returncode == 0, report[-4000:]
    for scenario in ("Open Message - Test Double Stream Double Channel", "Open Message - Test Single Stream "
                     "Double Channel", "Open Message - Test Single Stream Single Channel External",
                     "Audiohook Monitor - Ping Pong", "Audiohook Monitor - Send Update Message",
                     "Audiohook Monitor - Send Discarded Message", "Audiohook Monitor - Send Error Message",
                     "Audiohook Monitor - Send Pause & Resume Message", "Close Message"):
        assert f"✓ {scenario}" in report, scenario
    assert "12 passed" in report


def test_sessions_beyond_capacity_are_refused_with_the_protocols_disconnect_and_counted(tmp_path):
    config, _, events_dir = serve_config(tmp_path, max_calls=1)
    short = telephone_call(SAMPLES / "sample_call.flac", tmp_path / "short.wav", 4.0)
    with serve_process(config, "--store", "none") as served:
        client = reference_client(served.uri, "--wavfile", str(short), "--session-count", "3",
                                  "--connection-rate", "100")
    out = client.stdout
    assert '"reason": "error"' in out and "server at capacity (1 calls)" in out, out[-4000:]
    assert len(events_of(events_dir)) == 1
    assert "refused 2 at capacity" in served.stderr


def test_a_wrong_secret_is_refused_with_401(tmp_path):
    config, _, _ = serve_config(tmp_path)
    with serve_process(config, "--store", "none") as served:
        client = reference_client(served.uri, "--max-stream-duration", "2",
                                  secret="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    # the server's account (the client exits 0 either way, and Node may exit before its last log
    # lines reach the pipe)
    assert "onOpenedMessage" not in client.stdout
    assert "unknown API key or bad signature" in served.stderr
    assert "refused 0 at capacity and 1 unauthorized" in served.stderr


def test_an_overlay_on_one_instance_gets_the_call_another_instance_hosts_and_acts_on_it(tmp_path, sample_clip,
                                                                                      pg_server):
    """Two `serve` processes behind a load balancer share one PostgreSQL: the reference client's call
    goes to A, the agent's overlay is subscribed on B, and gets the call's redacted events through
    the store's LISTEN/NOTIFY; each flag is in the store once. The agent's feedback, flag, pause and
    resume, sent to B, are taken by A (the call's one writer): each comes back on B's feed, a flag
    only once the store has it; an action on the ended call, or on a call no instance hosts, gets
    one error line in bounded time."""
    import asyncio
    import json
    import time

    from websockets.asyncio.client import connect

    from agent_assist.events import Flag, FlagKind, Severity
    from tests import pg
    from tests.audiohook_harness import TOKEN

    url = pg.fresh_database(pg_server)
    configs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        config = folder / "config.toml"
        config.write_text(config_text(url, folder / "events"))
        configs.append(config)
    card = "4111 1111 1111 1111"
    stored_when_shown: list[bool] = []

    def flag(call_id: str, t: float) -> str:
        raised = Flag(t=t, call_id=call_id, kind=FlagKind.AGENT, severity=Severity.MEDIUM,
                      reason="raised by the agent", utterance_id="", raised_by="agent",
                      note=f"she read her card out, {card}")
        return json.dumps({"event": raised.to_dict()})

    def in_store(call_id: str) -> bool:
        store = open_store(url)
        try:
            return any(f.raised_by == "agent" for f in store.flags() if f.call_id == call_id)
        finally:
            store.close()

    with serve_process(configs[0]) as a, serve_process(configs[1]) as b:
        feed_uri = f"ws://127.0.0.1:{b.port}/api/v1/agents/{AGENT}/events?since=0"

        async def watch() -> tuple[list[dict], list[tuple[str, float]]]:
            got: list[dict] = []
            errors: list[tuple[str, float]] = []  # (the line, seconds after the action was sent)
            async with connect(feed_uri, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as feed:
                streaming = asyncio.create_task(asyncio.to_thread(
                    reference_client, a.uri, "--wavfile", str(sample_clip)))
                acted = False
                while not got or got[-1]["event"]["type"] != "call_end":
                    item = json.loads(await asyncio.wait_for(feed.recv(), 180))
                    assert "error" not in item, item
                    got.append(item)
                    event = item["event"]
                    if event["type"] == "prompt" and not acted:
                        acted = True  # the agent rates the first prompt, flags the call and pauses
                        await feed.send(json.dumps({"event": {
                            "type": "feedback", "t": event["t"], "call_id": event["call_id"],
                            "rule": event["rule"], "prompt_t": event["t"], "rating": "helpful"}}))
                        await feed.send(flag(event["call_id"], event["t"]))
                        await feed.send(json.dumps({"pause": True, "call_id": event["call_id"]}))
                    if event["type"] == "listening" and event["by"] == "overlay" and event["paused"]:
                        await feed.send(json.dumps({"pause": False, "call_id": event["call_id"]}))
                    if event["type"] == "flag" and event["raised_by"] == "agent":
                        stored_when_shown.append(await asyncio.to_thread(in_store, event["call_id"]))
                client = await streaming
                assert client.returncode == 0, client.stdout[-3000:] + client.stderr[-2000:]
                for call_id in (got[0]["event"]["call_id"], "no-such-call"):
                    sent = time.monotonic()
                    await feed.send(flag(call_id, 50.0))
                    line = json.loads(await asyncio.wait_for(feed.recv(), 30))["error"]
                    errors.append((line, time.monotonic() - sent))
            return got, errors

        got, errors = asyncio.run(watch())
    events = [item["event"] for item in got]
    (hosted,) = events_of(tmp_path / "a" / "events").values()
    assert not (tmp_path / "b" / "events").exists() or not events_of(tmp_path / "b" / "events")
    assert events[0]["type"] == "call_start" and events[0]["call_id"] == hosted[0]["call_id"]
    call_id = hosted[0]["call_id"]
    prompts = [(e["rule"], e["t"]) for e in events if e["type"] == "prompt"]
    assert ("acknowledge-disclosure" in {rule for rule, _ in prompts}
            and prompts == [(e["rule"], e["t"]) for e in hosted if e["type"] == "prompt"])
    said = " ".join(e["text"] for e in events if e["type"] == "utterance")
    assert "passed away" in said.lower() and "[name]" in said  # redacted, as A's log is
    # the agent's actions, taken by A and back on B's feed
    assert [(e["paused"], e["by"]) for e in events if e["type"] == "listening"] == [(True, "overlay"),
                                                                                  (False, "overlay")]
    assert [(e["paused"], e["by"]) for e in hosted if e["type"] == "listening"] == [(True, "overlay"),
                                                                                  (False, "overlay")]
    (raised,) = [e for e in events if e["type"] == "flag" and e["raised_by"] == "agent"]
    assert card not in raised["note"] and "[card]" in raised["note"]
    assert stored_when_shown == [True]  # committed before it was shown
    assert [e["rating"] for e in events if e["type"] == "feedback"] == ["helpful"]
    (ended, ended_s), (nobody, nobody_s) = errors
    assert ended == f"call {call_id} has ended: its flag was not taken" and ended_s < 5.0
    assert nobody.startswith("no serve instance answered for call no-such-call within 5 s") and nobody_s < 8.0
    store = open_store(url)
    try:
        flags = [f for f in store.flags() if f.call_id == call_id]
        feedback = store.call(call_id).feedback
    finally:
        store.close()
    assert flags and len({(f.rule, f.t) for f in flags}) == len(flags)
    (agents,) = [f for f in flags if f.raised_by == "agent"]  # once, written by A alone
    assert card not in agents.agent_note and "[card]" in agents.agent_note
    assert [f["rating"] for f in feedback] == ["helpful"]

"""`agent-assist rules replay`: transcripts or audio through the rules, with a timeline, a diff of
two packs, and prompts per call-hour."""

from __future__ import annotations

import json
import os
import re

import pytest

from agent_assist.events import event_from_json
from tests.conftest import DATA, HARPER, REPO
from tests.test_cli import agent_assist

SCRIPTED = DATA / "calls" / "scripted_calls.jsonl"


def test_timeline_events_and_summary(tmp_path):
    events = tmp_path / "events.jsonl"
    result = agent_assist("rules", "replay", str(SCRIPTED), "--events", str(events))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    calm, hard = out.split("call hard-1")
    assert "call calm-1" in calm and "no prompts" in calm
    assert "bereavement (safety)" in hard and "manager-request (choice)" in hard
    assert 'why: ' in hard and '"my husband passed away' in hard
    assert "2 calls" in out and "per call-hour" in out
    assert "transcripts have no partial transcripts" in out  # rules on partials fire later
    parsed = [event_from_json(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert {e.call_id for e in parsed} == {"calm-1", "hard-1"}  # type: ignore[attr-defined]
    prompts = [e for e in parsed if e.type == "prompt"]
    assert prompts and all(e.call_id == "hard-1" for e in prompts)  # type: ignore[attr-defined]


def test_compare_shows_what_a_change_adds_and_removes(tmp_path):
    quieter = tmp_path / "quieter.toml"
    quieter.write_text('[[override]]\nid = "manager-request"\nenabled = false\n', encoding="utf-8")
    default = REPO / "prompts" / "default.toml"
    result = agent_assist("rules", "replay", str(SCRIPTED), "--compare", str(default), str(quieter))
    assert result.returncode == 0, result.stderr
    assert ("call hard-1 (00:24.0):\n  - [00:19.5] manager-request on u5: a phrase (switched off in B)\n"
            '      "i want to speak to a manager right now"\n') in result.stdout
    assert "call calm-1" not in result.stdout
    assert "(-1)" in result.stdout


@pytest.mark.parametrize("line", [
    "not json", '{"call_id": "x"}', '{"call_id": "x", "turns": [{"speaker": "customer"}]}',
    # NaN and infinity are not times
    '{"call_id": "x", "turns": [{"speaker": "customer", "start": NaN, "end": 2, "text": "hi"}]}',
    '{"call_id": "x", "turns": [{"speaker": "customer", "start": 1, "end": 1e309, "text": "hi"}]}',
])
def test_a_bad_transcript_line_is_one_line_with_its_number(tmp_path, line):
    path = tmp_path / "calls.jsonl"
    first = SCRIPTED.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(first + "\n" + line + "\n", encoding="utf-8")
    result = agent_assist("rules", "replay", str(path), "-q")
    assert result.returncode == 1
    assert result.stderr.startswith(f"agent-assist: error: {path}:2: not a transcript call")
    assert len(result.stderr.strip().splitlines()) == 1


def test_hostile_transcripts_print_safely_and_what_is_not_a_file_is_refused(tmp_path):
    """Escape sequences and bidi overrides in a call id or a turn are shown escaped, never acted on;
    a U+2028 inside a JSON string is text, not a line break; a FIFO is refused, not waited on."""
    said = "I want to speak to a manager \x1b]0;owned\x07 \u202eevil\u202c now\u2028please"
    turn = {"speaker": "customer", "start": 1.0, "end": 3.0, "text": said}
    call = {"call_id": "call\x1b[2J", "turns": [turn]}
    path = tmp_path / "hostile.jsonl"
    path.write_text(json.dumps(call, ensure_ascii=False) + "\n", encoding="utf-8")
    result = agent_assist("rules", "replay", str(path))
    assert result.returncode == 0, result.stderr
    assert "call call\\x1b[2J" in result.stdout and "manager-request" in result.stdout
    assert "\\u202eevil\\u202c now please" in result.stdout
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u202a-\u202e]", result.stdout)
    fifo = tmp_path / "calls.jsonl"
    os.mkfifo(fifo)
    refused = agent_assist("rules", "replay", str(fifo))
    assert refused.returncode == 1
    assert refused.stderr == (f"agent-assist: error: {fifo}: is a FIFO (named pipe), not a file; save the "
                              "data to a file and give that\n")


def test_calm_bank_calls_stay_calm():
    """Ordinary bank calls (Harper Valley's 35, tests/data/calls/harper_valley): no prompt at all, as
    the held-out calls' bar asks of calm calls (the issue's own target was two per call-hour; with
    the end-of-call check-in at crisis 0.5 instead of the cards' 0.7, one came here)."""
    result = agent_assist("rules", "replay", str(HARPER), "-q")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    print(result.stdout)
    rate = float(first.split(", ")[-1].split(" per call-hour")[0].split()[-1])
    assert rate == 0.0, first
    assert "crisis" not in result.stdout


def test_audio_calls_run_through_the_whole_pipeline(tmp_path):
    events = tmp_path / "events.jsonl"
    result = agent_assist("rules", "replay", str(DATA / "speech" / "jfk.flac"), "--events", str(events))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("call jfk (00:11.0)")
    parsed = [event_from_json(line) for line in events.read_text(encoding="utf-8").splitlines()]
    utterances = [e for e in parsed if e.type == "utterance"]
    assert utterances and all(e.scores is not None for e in utterances)  # type: ignore[attr-defined]
    assert "1 calls" in result.stdout

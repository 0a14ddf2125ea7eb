"""End to end through the real command line, as a person runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from agent_assist import __version__
from agent_assist.cli import cli
from agent_assist.scoring.scorer import MIN_PARTIAL_WORDS
from tests.conftest import SAMPLES, SPEECH, normalise

EXE = [sys.executable, "-m", "agent_assist.cli"]


def agent_assist(*args: str, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line; the user's own configuration never leaks into a test."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", "AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml",
            **(env or {})}
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout, env=full)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)],
                         ids=lambda p: " ".join(p) or "agent-assist")
def test_every_command_has_help_with_an_example(path):
    result = agent_assist(*path, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and "agent-assist " in result.stdout


def test_version():
    result = agent_assist("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_replay_writes_the_event_log_and_prints_the_transcript(tmp_path):
    events = tmp_path / "events.jsonl"
    result = agent_assist("replay", str(SPEECH / "stereo_diarization.wav"), "--events", str(events),
                          "--call-id", "test-call", "--partials")
    assert result.returncode == 0, result.stderr
    assert "customer: He began a confused complaint" in result.stdout
    assert "agent: The horizon" in result.stdout
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    types = [e["type"] for e in lines]
    assert types[0] == "call_start" and types[-1] == "call_end"
    assert {"partial", "utterance"} <= set(types)
    # partials are the customer's words as they speak; the agent's own wait for the final
    assert {e["speaker"] for e in lines if e["type"] == "partial"} == {"customer"}
    assert all(e["call_id"] == "test-call" and isinstance(e["t"], float | int) for e in lines)
    assert lines[0]["t"] == 0 and lines[0]["channels"] == {"left": "customer", "right": "agent"}
    times = [e["t"] for e in lines]
    assert lines[-1]["t"] == max(times) == pytest.approx(5.0, abs=0.05)
    for e in lines:
        if e["type"] == "utterance":
            assert e["words"] and e["start"] <= e["words"][0]["start"] <= e["end"] <= e["t"]


def test_events_on_stdout_are_pure_jsonl():
    result = agent_assist("replay", str(SPEECH / "1089-134691-0000.flac"), "--events", "-")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "call_start" and events[-1]["type"] == "call_end"
    texts = [e["text"] for e in events if e["type"] == "utterance"]
    assert normalise(" ".join(texts)) == "he could wait no longer"
    partials = [e for e in events if e["type"] == "partial"]  # in lock-step, as a live call has them
    assert partials  # the one speaker of a mono line; too few words to score yet (MIN_PARTIAL_WORDS)
    assert all((e["scores"] is None) == (len(e["text"].split()) < MIN_PARTIAL_WORDS) for e in partials)
    none = agent_assist("replay", str(SPEECH / "1089-134691-0000.flac"), "--events", "-", "--no-partials")
    assert "partial" not in {json.loads(line)["type"] for line in none.stdout.splitlines()}
    assert "unknown: He could wait no longer" in result.stderr  # the transcript moved to stderr


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    empty = tmp / "empty.flac"
    empty.write_bytes(b"")
    data = (SPEECH / "1089-134686-0000.flac").read_bytes()
    truncated = tmp / "truncated.flac"
    truncated.write_bytes(data[: len(data) // 3])
    return {
        "missing": (tmp / "missing.wav", "no such file"),
        "not audio": (text, "not a readable audio file"),
        "empty": (empty, "empty"),
        "truncated": (truncated, "truncated"),
    }


@pytest.mark.parametrize("case", ["missing", "not audio", "empty", "truncated"])
def test_bad_input_gives_one_line_and_a_non_zero_exit(tmp_path, case):
    path, phrase = bad_inputs(tmp_path)[case]
    events = tmp_path / "events.jsonl"
    result = agent_assist("replay", str(path), "--events", str(events), "-q")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agent-assist: error:") and phrase in lines[0]
    assert "Traceback" not in result.stderr
    if case == "truncated":
        # what was decoded before the damage was transcribed and written, and the end says why
        written = [json.loads(line) for line in events.read_text().splitlines()]
        assert any(e["type"] == "utterance" for e in written)
        assert written[-1]["type"] == "call_end" and written[-1]["reason"] == "source_error"


def test_a_model_that_is_not_on_this_machine_is_a_clear_error(tmp_path):
    result = agent_assist("replay", str(SPEECH / "jfk.flac"), "--model", "large-v3", "-q")
    assert result.returncode != 0
    assert "not installed on this machine" in result.stderr and "Traceback" not in result.stderr
    result = agent_assist("replay", str(SPEECH / "jfk.flac"), "--model", str(tmp_path), "-q")
    assert result.returncode != 0 and "not a CTranslate2 Whisper model directory" in result.stderr


def test_a_model_directory_can_be_named(tmp_path):
    from agent_assist.transcriber import bundled_model_path

    result = agent_assist("replay", str(SPEECH / "1089-134691-0000.flac"), "--model",
                          str(bundled_model_path()), "--events", "-", "-q")
    assert result.returncode == 0, result.stderr
    start = json.loads(result.stdout.splitlines()[0])
    assert start["model"] == str(bundled_model_path())


def test_the_sample_call_script_matches_its_audio():
    turns = (SAMPLES / "sample_call.turns.tsv").read_text().splitlines()[1:]
    script = [line for line in (SAMPLES / "sample_call.txt").read_text().splitlines()
              if line and not line.startswith(("#", "pause"))]
    assert len(turns) == len(script)
    assert (SAMPLES / "sample_call.flac").stat().st_size < 5_000_000

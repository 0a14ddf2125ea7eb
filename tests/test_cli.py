"""The command line, as a person runs it: in this process through `main` (click's CliRunner), and a
few runs of the real program end to end."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agent_assist import __version__
from agent_assist.cli import cli, main
from agent_assist.scoring.scorer import MIN_PARTIAL_WORDS
from tests.conftest import SAMPLES, SPEECH, normalise

EXE = [sys.executable, "-m", "agent_assist.cli"]
NO_CONFIG = {"AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml"}  # the user's own never leaks in


@dataclass(frozen=True)
class Ran:
    """What a command did, named as `subprocess.CompletedProcess` names it, so a test reads an
    in-process run and a real one alike."""

    returncode: int
    stdout: str
    stderr: str


def agent_assist(*args: str, env: dict[str, str | None] | None = None) -> Ran:
    """Run the command line in this process, through `main` as the installed command runs it (its
    one-line errors and exit statuses too), with stdout and stderr apart. `env` is set for the
    run (None takes a variable away)."""
    with CliRunner().isolation(env={**NO_CONFIG, **(env or {})}) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def agent_assist_process(*args: str, timeout: float = 300,
                         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real program in a new process, as a shell would."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", **NO_CONFIG, **(env or {})}
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


def test_usage_errors_are_click_s_own_with_status_2(tmp_path):
    wrong = agent_assist("replay", str(tmp_path / "x.wav"), "--channels", "quad")
    assert wrong.returncode == 2 and "Invalid value for '--channels'" in wrong.stderr
    assert agent_assist("no-such-command").returncode == 2
    empty = agent_assist("review", "note", "1", "  ")
    assert empty.returncode == 2 and "the note is empty" in empty.stderr


def test_a_store_that_can_never_work_stops_the_replay_before_it_starts(tmp_path):
    result = agent_assist("replay", str(SPEECH / "jfk.flac"), "--store", "ftp://flags", "-q")
    assert result.returncode == 1
    assert result.stderr == ("agent-assist: error: unknown store 'ftp://flags': give a file path or a "
                             "postgresql:// URL\n")


def test_replay_writes_the_event_log_and_prints_the_transcript(tmp_path):
    """The real program, end to end."""
    events = tmp_path / "events.jsonl"
    result = agent_assist_process("replay", str(SPEECH / "stereo_diarization.wav"), "--events", str(events),
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
    """The real program: nothing else (no library's own chatter either) reaches stdout."""
    result = agent_assist_process("replay", str(SPEECH / "1089-134691-0000.flac"), "--events", "-")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "call_start" and events[-1]["type"] == "call_end"
    texts = [e["text"] for e in events if e["type"] == "utterance"]
    assert normalise(" ".join(texts)) == "he could wait no longer"
    partials = [e for e in events if e["type"] == "partial"]  # in lock-step, as a live call has them
    assert partials  # the one speaker of a mono line; too few words to score yet (MIN_PARTIAL_WORDS)
    assert all((e["scores"] is None) == (len(e["text"].split()) < MIN_PARTIAL_WORDS) for e in partials)
    assert "unknown: He could wait no longer" in result.stderr  # the transcript moved to stderr
    none = agent_assist("replay", str(SPEECH / "1089-134691-0000.flac"), "--events", "-", "--no-partials")
    assert none.returncode == 0, none.stderr
    assert "partial" not in {json.loads(line)["type"] for line in none.stdout.splitlines()}


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


def test_the_real_program_exits_non_zero_with_one_line_on_bad_input(tmp_path):
    """What a shell script sees: the exit status, and stderr holding the one line alone."""
    path, _ = bad_inputs(tmp_path)["not audio"]
    result = agent_assist_process("replay", str(path), "-q")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("agent-assist: error:") and len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_ctrl_c_ends_the_call_cleanly_and_keeps_what_was_heard(sample_clip, tmp_path):
    """The real program paced as a live call: the first Ctrl-C finishes what was heard, writes it,
    and exits 0."""
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **NO_CONFIG}
    child = subprocess.Popen([*EXE, "replay", str(sample_clip), "--realtime", "--events", str(events), "-q"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            if events.exists() and '"type":"utterance"' in events.read_text():
                break
            time.sleep(0.2)
        assert child.poll() is None, "the call ended before Ctrl-C"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert "stopping: finishing what was heard (Ctrl-C again to abort)" in err
    written = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["type"] == "utterance" for e in written)
    assert written[-1]["type"] == "call_end" and written[-1]["reason"] == "interrupted"
    assert written[-1]["t"] < 25  # stopped, not played to the end of the 30 s clip


def test_a_model_that_is_not_on_this_machine_is_a_clear_error(tmp_path):
    result = agent_assist("replay", str(SPEECH / "jfk.flac"), "--model", "large-v3", "-q")
    assert result.returncode != 0
    assert "not installed on this machine" in result.stderr and "Traceback" not in result.stderr
    result = agent_assist("replay", str(SPEECH / "jfk.flac"), "--model", str(tmp_path), "-q")
    assert result.returncode != 0 and "not a CTranslate2 Whisper model directory" in result.stderr


def test_a_model_directory_can_be_named(tmp_path):
    from agent_assist.whisper import bundled_model_path

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

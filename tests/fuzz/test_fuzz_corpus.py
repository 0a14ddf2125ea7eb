"""The fuzz corpus (tests/data/fuzz, written by its make_corpus.py): the nastiest packs, transcripts
and tables found so far, replayed on every run, and the hostile inputs too big or too odd to keep
as files (a 400 KB condition, a 1M-character word, a 17 MB field, a FIFO, a device), built here.

Each must be refused with one clean line, or read exactly, and at once: never an internal error,
never a hang, never a row out of place.
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from pathlib import Path

import pytest

from agent_assist.errors import AgentAssistError
from agent_assist.events import Utterance
from agent_assist.quality.calls import MAX_LINE_BYTES, transcript_calls
from agent_assist.rules import packs
from agent_assist.scoring.textfile import read_turns
from tests.conftest import DATA
from tests.fuzz.test_fuzz_packs import runs
from tests.test_cli import agent_assist

CORPUS = DATA / "fuzz"
QUICK_S = 3.0  # "at once", with room for a busy machine: the hangs these replace took 36 s or for ever


def corpus(folder: str, glob: str) -> list[Path]:
    return sorted(p for p in (CORPUS / folder).glob(glob) if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", corpus("packs", "*.toml"), ids=lambda p: p.stem)
def test_corpus_packs_lint_as_named_and_clean_ones_run(path):
    began = time.monotonic()
    pack, problems = packs.load([path])
    assert time.monotonic() - began < QUICK_S
    for problem in problems:
        assert "\n" not in str(problem) and "\x1b" not in str(problem)
    if path.name.startswith("bad-"):
        assert packs.errors(problems), f"{path.name} lints clean"
    else:
        assert problems == []
        assert len(pack.rules) == len(tomllib.loads(path.read_text(encoding="utf-8"))["rule"])
        runs(pack)


def test_lint_reports_every_file_whatever_the_others_hold(tmp_path):
    """One run over the whole corpus, a FIFO, a folder, a device and a missing file: every bad file
    has its line, the last (sound but flawed) file is still checked, and the exit status is 1."""
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "folder.toml").mkdir()
    last = tmp_path / "last.toml"
    last.write_text('[[rule]]\nid = "last"\nwhen = "distress >= 0.5"\nprompt = "p"\nprinciple = "safety"\n'
                    'source = "s"\nsentinel = 1\n', encoding="utf-8")
    paths = [*corpus("packs", "*.toml"), tmp_path / "fifo.toml", tmp_path / "folder.toml", Path("/dev/null"),
             tmp_path / "missing.toml", last]
    result = agent_assist("rules", "lint", "--no-default", *map(str, paths))
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stderr
    for path in paths:
        if not path.name.startswith("ok-"):
            assert f"{path}:" in result.stdout, f"{path.name} not reported"
    assert f"{last}:7: error: unknown field 'sentinel'" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize("path", corpus("transcripts", "*.jsonl"), ids=lambda p: p.stem)
def test_corpus_transcripts_are_read_exactly_or_refused_with_their_line(path):
    if path.name.startswith("bad-"):
        with pytest.raises(AgentAssistError, match=rf"{re.escape(str(path))}:\d+: "):
            list(transcript_calls(path))
        return
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text(encoding="utf-8"))
    got = [[call_id, [e.text for e in events if isinstance(e, Utterance)]]
           for call_id, events in transcript_calls(path)]
    assert got == expected


@pytest.mark.parametrize("path", corpus("tables", "*"), ids=lambda p: p.name)
def test_corpus_tables_keep_every_row_in_place_or_are_refused_with_their_line(path):
    if path.name.startswith("bad-"):
        with pytest.raises(AgentAssistError, match=rf"{re.escape(str(path))}:\d+: "):
            read_turns(path)
        return
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text(encoding="utf-8"))
    assert [t.text for t in read_turns(path)] == expected


# -- too big or too odd to keep as files --------------------------------------------------------------

def quickly_refused(read, match: str) -> None:
    began = time.monotonic()
    with pytest.raises(AgentAssistError, match=match):
        read()
    assert time.monotonic() - began < QUICK_S


def test_a_400_kb_condition_is_one_problem_at_once(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text('[[rule]]\nid = "long"\nwhen = "' + "distress >= 0.5 and " * 20_000 + 'crisis < 1"\n'
                    'prompt = "p"\nprinciple = "safety"\nsource = "s"\n', encoding="utf-8")
    began = time.monotonic()
    _, problems = packs.load([path])
    assert time.monotonic() - began < QUICK_S
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "error: when is 400,010 characters long; at most 4,000"]


def test_a_pack_file_past_its_bound_is_one_problem(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text("# " + "x" * packs.MAX_PACK_BYTES + "\n", encoding="utf-8")
    _, problems = packs.load([path])
    assert [p.message for p in problems] == [f"larger than {packs.MAX_PACK_BYTES:,} bytes; split it into "
                                             "smaller files"]


def test_a_long_word_and_a_long_line_are_refused_at_once(tmp_path):
    word = tmp_path / "word.jsonl"
    long_turn = {"speaker": "customer", "start": 0, "end": 1, "text": "a" * 1_000_000}
    word.write_text(json.dumps({"call_id": "w", "turns": [long_turn]}) + "\n", encoding="utf-8")
    quickly_refused(lambda: list(transcript_calls(word)), r"word\.jsonl:1: not a transcript call \(turn 1's "
                    r"text is 1,000,000 characters long; at most 20,000\)")
    line = tmp_path / "line.jsonl"
    turn = {"speaker": "customer", "start": 0, "end": 1, "text": "word " * 1000}
    line.write_text(json.dumps({"call_id": "l", "turns": [turn] * (MAX_LINE_BYTES // 5000 + 10)}) + "\n",
                    encoding="utf-8")
    quickly_refused(lambda: list(transcript_calls(line)),
                    rf"line\.jsonl:1: line longer than {MAX_LINE_BYTES:,} bytes")


def test_a_17_mb_field_is_refused_with_its_line(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("text\nfine\n" + "a" * 17_000_000 + "\n", encoding="utf-8")
    quickly_refused(lambda: read_turns(path), r"big\.csv:3: ")


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_what_is_not_a_file_is_refused_by_every_reader_without_waiting(tmp_path, kind):
    path = {"fifo": tmp_path / "in.csv", "device": Path("/dev/zero"), "folder": tmp_path / "dir.csv"}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # no writer: opening it to read would wait for ever
    elif kind == "folder":
        path.mkdir()
    what = {"fifo": "a FIFO", "device": "a device", "folder": "a folder"}[kind]
    quickly_refused(lambda: read_turns(path), rf"is {what}")
    quickly_refused(lambda: list(transcript_calls(path)), rf"is {what}")
    _, problems = packs.load([path])
    assert [p.line for p in problems] == [0] and what in problems[0].message

"""Reading the files people hand us (agent_assist/inputs.py): regular files only, bounded, lines at
`\\n` alone, strict UTF-8, and every refusal one line naming the file (and line)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_assist import inputs
from agent_assist.errors import AgentAssistError

SEPARATORS = "a\u2028b\u2029c\x85d\x0ce\x0bf\x1cg\x1dh\x1ei\rj"


def test_lines_end_at_newline_alone(tmp_path: Path):
    path = tmp_path / "in.txt"
    path.write_bytes(f"{SEPARATORS}\r\nsecond\n\nlast".encode())
    assert list(inputs.lines(path, 100)) == [(1, SEPARATORS), (2, "second"), (3, ""), (4, "last")]
    assert inputs.split_lines(f"{SEPARATORS}\r\nsecond\n") == [SEPARATORS, "second"]
    assert len(SEPARATORS.splitlines()) == 10  # what str.splitlines would have made of one line


def test_a_line_past_its_bound_names_its_line(tmp_path: Path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"x" * 10 + b"\n" + b"y" * 11 + b"\n")
    lines = inputs.lines(path, 10)
    assert next(lines) == (1, "x" * 10)  # exactly the bound is fine
    with pytest.raises(inputs.InputError, match=r"in\.jsonl:2: line longer than 10 bytes"):
        next(lines)


def test_bad_utf8_names_its_line(tmp_path: Path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(inputs.InputError, match=r"in\.txt:3: not UTF-8 text"):
        list(inputs.lines(path, 100))
    with pytest.raises(inputs.InputError, match=r"in\.txt:3: not UTF-8 text \(invalid start byte at byte 19"):
        inputs.read_text(path, 100)


def test_a_file_past_its_bound_is_refused(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 101)
    assert inputs.read_text(path, 101) == "x" * 101
    with pytest.raises(inputs.InputError, match=r"big\.txt: larger than 100 bytes"):
        inputs.read_text(path, 100)


@pytest.mark.parametrize(("kind", "says"), [
    ("fifo", "is a FIFO (named pipe), not a file"), ("device", "is a device, not a file"),
    ("folder", "is a folder, not a file"), ("missing", "no such file")])
def test_only_a_regular_file_is_read(tmp_path: Path, kind: str, says: str):
    path = {"fifo": tmp_path / "pipe", "device": Path("/dev/zero"), "folder": tmp_path,
            "missing": tmp_path / "nope"}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes to it: opening it to read the usual way would wait for ever
    with pytest.raises(inputs.InputError) as raised:
        inputs.check_regular(path)
    assert str(raised.value) == f"{path}: {says}" + ("; save the data to a file and give that"
                                                       if kind in ("fifo", "device") else "")
    assert isinstance(raised.value, AgentAssistError)


def test_surrogates_are_found():
    assert inputs.no_surrogates("plain 😀") and not inputs.no_surrogates("bad \ud800")


def test_an_error_quoting_a_hostile_path_is_safe(tmp_path: Path):
    with pytest.raises(inputs.InputError) as raised:
        inputs.check_regular(tmp_path / "x\x1b[2J\u202e")
    assert "\x1b" not in str(raised.value) and "\u202e" not in str(raised.value)
    assert "x\\x1b[2J\\u202e: no such file" in str(raised.value)

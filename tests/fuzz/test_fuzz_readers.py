"""Fuzz: the readers of `rules replay` transcripts (JSONL) and `classifiers score` tables (CSV, TSV,
plain text), on what Hypothesis writes.

Properties:

- any bytes at all: the reader returns, or raises the project's clean error (`AgentAssistError`)
  and nothing else, at once;
- a file written properly is read back exactly: each call's id and turns, each row's text, in
  order and in number, whatever characters they hold (U+2028, NEL, form feed, U+001C, quotes,
  line breaks inside a field, ESC, bidi controls);
- broken in a way that would shift rows (a quote never closed) is refused with its line, never
  read as fewer rows.

Derandomised and bounded (`FUZZ`), so `make test` is reproducible and quick.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_assist.errors import AgentAssistError
from agent_assist.events import Utterance
from agent_assist.quality.calls import transcript_calls
from agent_assist.scoring.textfile import read_turns

FUZZ = settings(max_examples=80, deadline=timedelta(seconds=5), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WORK = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # one folder a process, removed at its end
# the characters that have split, merged or shifted rows and lines: every category, and these often
SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\r", "\n", "\r\n", '"',
              ",", "\t", "\x1b[2J", "\u202e", "\ufeff", "\x00", "\\"]
any_text = st.lists(st.one_of(st.characters(), st.sampled_from(SEPARATORS)), max_size=30).map("".join)
with_surrogates = st.text(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff"])), max_size=8)


def write(data: bytes | str, name: str) -> Path:
    path = WORK / name
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    path.write_bytes(data)
    return path


# -- transcripts -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), with_surrogates),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
speakers = st.one_of(st.sampled_from(["customer", "agent"]), json_values)
turn = st.fixed_dictionaries({}, optional={"speaker": speakers,
                                           "start": st.one_of(st.floats(0, 100), json_values),
                                           "end": st.one_of(st.floats(0, 100), json_values),
                                           "text": st.one_of(any_text, json_values)})
call = st.fixed_dictionaries({}, optional={"call_id": st.one_of(any_text, json_values),
                                           "turns": st.one_of(st.lists(turn, max_size=3), json_values)})


def read_calls(path: Path) -> list:
    return list(transcript_calls(path))


@FUZZ
@given(st.lists(st.one_of(call, json_values), min_size=1, max_size=3), st.booleans())
def test_any_json_lines_are_read_or_refused_cleanly(lines, ascii_only):
    text = "\n".join(json.dumps(line, ensure_ascii=ascii_only) for line in lines) + "\n"
    with contextlib.suppress(AgentAssistError):
        read_calls(write(text, "calls.jsonl"))


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_refused_cleanly(data):
    with contextlib.suppress(AgentAssistError):
        read_calls(write(data, "bytes.jsonl"))


@settings(FUZZ, max_examples=30)
@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a": ']))
def test_deep_nesting_is_refused_cleanly(depth, opener):
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" * (opener != "[") + closer * depth
    line = '{"call_id": "x", "turns": [], "extra": ' + nested + "}"
    try:
        read_calls(write(line + "\n", "deep.jsonl"))
    except AgentAssistError as exc:
        assert ":1: not a transcript call" in str(exc)


sound_text = any_text.filter(lambda t: t.strip() != "")
sound_call = st.fixed_dictionaries({
    "call_id": any_text,
    "turns": st.lists(st.fixed_dictionaries({"speaker": st.sampled_from(["customer", "agent", "someone"]),
                                             "start": st.floats(0, 1000), "end": st.floats(0, 1000),
                                             "text": sound_text}), max_size=4)})


@FUZZ
@given(st.lists(sound_call, min_size=1, max_size=3), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_sound_transcripts_read_back_exactly(calls, ascii_only, newline):
    text = "".join(json.dumps(c, ensure_ascii=ascii_only) + newline for c in calls)
    got = read_calls(write(text, "sound.jsonl"))
    assert [call_id for call_id, _ in got] == [c["call_id"] for c in calls]
    for (_, events), c in zip(got, calls, strict=True):
        said = [e.text for e in events if isinstance(e, Utterance)]
        assert said == [t["text"].strip() for t in sorted(c["turns"], key=lambda t: t["end"])]


# -- tables ------------------------------------------------------------------------------------------

def texts(turns: list) -> list[str]:
    return [t.text for t in turns]


@FUZZ
@given(st.lists(any_text, max_size=6), st.sampled_from(["\n", "\r\n"]), st.sampled_from([",", "\t"]))
def test_csv_rows_read_back_exactly(rows, terminator, delimiter):
    """Each row's text comes back as it was written, one for one, whatever it holds. (The label
    column after the text is there because Python's writer leaves a `\\r` unquoted when rows end in
    `\\n`: at the end of a row it could not be told from the `\\r\\n` of a row's end.)"""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator=terminator)
    writer.writerow(["text", "label"])
    writer.writerows([row, "x"] for row in rows)
    path = write(out.getvalue(), "rows.tsv" if delimiter == "\t" else "rows.csv")
    assert texts(read_turns(path)) == rows


@FUZZ
@given(st.lists(any_text.map(lambda t: t.replace("\n", "").rstrip("\r")), max_size=8),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_plain_text_lines_read_back_exactly(rows, terminator, bom):
    text = ("\ufeff" if bom else "") + "".join(row + terminator for row in rows)
    if rows and not bom and rows[0].startswith("\ufeff"):
        rows[0] = rows[0][1:]  # a file's first character U+FEFF is its byte-order mark, and dropped
    assert texts(read_turns(write(text, "rows.txt"))) == rows


@FUZZ
@given(st.lists(any_text.map(lambda t: "".join(c for c in t if c not in '"\r\n,')), min_size=1, max_size=6),
       st.data())
def test_a_quote_never_closed_is_refused_with_its_line(rows, data):
    """Rows of one line each (U+2028, NEL, form feeds and all), and a quote opened at the start of
    one of them that nothing closes: an error naming that row's line, never fewer rows."""
    lines = ["text", *rows]
    at = data.draw(st.integers(1, len(lines) - 1))
    lines[at] = '"' + lines[at]
    path = write("".join(line + "\n" for line in lines), "open-quote.csv")
    with pytest.raises(AgentAssistError, match=rf"open-quote\.csv:{at + 1}: a quoted field .* never closed"):
        read_turns(path)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["in.csv", "in.tsv", "in.txt"]))
def test_any_bytes_in_a_table_are_read_or_refused_cleanly(data, name):
    with contextlib.suppress(AgentAssistError):
        read_turns(write(data, name))

"""Terminal-safe text (agent_assist/text.py) and the places text from outside reaches a terminal:
the console transcript, `rules lint`, `review list` and `review show`, and error messages."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_assist.events import CallStart, Prompt, Speaker, Utterance
from agent_assist.sinks import ConsoleTranscript
from agent_assist.text import excerpt, terminal_safe
from tests.test_cli import agent_assist
from tests.test_store import a_call, write

# what a terminal acts on, or reads backwards: none of it may reach one
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                    "\ud800-\udfff]")
HOSTILE = ("clear \x1b[2J\x1b[H title \x1b]0;owned\x07 csi \x9b31m bell \x07 nul \x00 "
           "bidi \u202eevil\u202c \u2066iso\u2069 \u200f\u200e\u061c "
           "lines a\nb\rc\u2028d\u2029e\x85f\x0cg\x1ch\x0bi")


def test_controls_and_bidi_are_shown_escaped_and_breaks_are_spaces():
    shown = terminal_safe(HOSTILE)
    assert not UNSAFE.search(shown)
    assert "\\x1b[2J" in shown and "\\x9b31m" in shown and "\\x07" in shown and "\\x00" in shown
    assert "\\u202eevil\\u202c" in shown and "\\u2066iso\\u2069" in shown and "\\u200f\\u200e\\u061c" in shown
    assert "lines a b c d e f g h i" in shown
    plain = "plain ça, 日本, 😀, עברית, العربية"
    assert terminal_safe(plain + "\ttab") == plain + " tab"
    assert terminal_safe("\ud800") == "\\ud800"  # a lone surrogate prints, never fails to encode


@settings(max_examples=200, derandomize=True, database=None)
@given(st.text(st.characters(codec=None)))
def test_any_text_comes_out_safe_on_one_line_and_stays_so(text):
    shown = terminal_safe(text)
    assert not UNSAFE.search(shown)
    assert terminal_safe(shown) == shown
    shown.encode("utf-8")


def test_excerpts_are_bounded_whatever_the_value():
    assert excerpt("x" * 1000) == "'" + "x" * 60 + "…' (1,000 characters)"
    assert excerpt(10**5000) == "an integer of about 5,000 digits"
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert excerpt(nested) == "[[[[...]]]]"
    assert excerpt("a\x1b[2J\u202e") == "'a\\x1b[2J\\u202e'"
    assert len(excerpt(list(range(10_000)))) < 70


def test_the_console_transcript_is_safe():
    out = io.StringIO()
    console = ConsoleTranscript(out, show_partials=False)
    console.emit(CallStart(t=0.0, call_id="call\x1b[2J", source="file\u202e.wav", channels={}, started_at="",
                           model=""))
    console.emit(Utterance(t=2.0, call_id="c", utterance_id="u1", speaker=Speaker.CUSTOMER, start=0.0,
                           end=1.5, text=HOSTILE))
    console.emit(Prompt(t=2.0, call_id="c", rule="r", principle="safety", text="say \x1b[31m", example="",
                        priority=1, signals=(), why={}, support_line="line \u202e"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # a line break inside a turn starts no line of its own
    assert not UNSAFE.search(out.getvalue().replace("\n", ""))


def test_lint_problems_quote_input_safely(tmp_path: Path):
    pack = tmp_path / "bad\x1b[2J.toml"
    pack.write_text('[[rule]]\nid = "x"\nwhen = "distress >= 0.5"\nprompt = "p"\nprinciple = "saf\u202eety"\n'
                    'source = "s"\n"\\u001b[31m" = 1\n', encoding="utf-8")
    result = agent_assist("rules", "lint", "--no-default", str(pack))
    assert result.returncode == 1
    assert not UNSAFE.search(result.stdout.replace("\n", "") + result.stderr.replace("\n", ""))
    assert "unknown principle 'saf\\u202eety'" in result.stdout
    assert "unknown field '\\x1b[31m'" in result.stdout


def test_error_messages_quote_input_safely(tmp_path: Path):
    """`main` makes every error line terminal-safe, whichever command raised it."""
    folder = tmp_path / "calls\x1b]0;owned\x07\u202e"
    folder.mkdir()
    (folder / "flags.sqlite3").write_text("not a database", encoding="utf-8")
    result = agent_assist("review", "list", "--store", str(folder / "flags.sqlite3"))
    assert result.returncode == 1 and "not an agent-assist store" in result.stderr
    assert "calls\\x1b]0;owned\\x07\\u202e" in result.stderr
    assert not UNSAFE.search(result.stderr.replace("\n", ""))


def test_review_list_and_show_are_safe(tmp_path: Path):
    """`review show` stripped control characters but printed bidi overrides; now neither acts."""
    url = str(tmp_path / "flags.sqlite3")
    events = a_call("call\x1b[2J\u202e")
    events = [replace(e, text=e.text + " \u202eevil\u202c \x1b[31m red") if isinstance(e, Utterance) else e
              for e in events]
    write(url, events)
    listed = agent_assist("review", "list", "--store", url)
    shown = agent_assist("review", "show", "1", "--store", url)
    assert listed.returncode == 0 and shown.returncode == 0, listed.stderr + shown.stderr
    assert "\\u202eevil\\u202c" in shown.stdout
    for out in (listed.stdout, shown.stdout):
        assert not UNSAFE.search(out.replace("\n", ""))

"""A TOML syntax error in a rule pack is one line: file:line, the offending line, and the fix (for a
quoting mistake, the line as it should be written, which then lints clean)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent_assist.errors import AgentAssistError
from agent_assist.rules.packs import load, load_for_run
from agent_assist.rules.toml_errors import explain
from tests.test_cli import agent_assist

APOSTROPHE = "text in single quotes ends at the next ' (an apostrophe too)"
RULE = ('[[rule]]\nid = "hardship"\n{line}\nprompt = "Mention the hardship programme."\n'
        'principle = "choice"\nsource = "site policy"\n')
WHEN = 'when = "distress >= 0.4"'


def pack(tmp_path: Path, line: str, when: str = WHEN) -> Path:
    path = tmp_path / "site.toml"
    text = RULE.format(line=line)
    path.write_text(text if "when" in line else text.replace("[[rule]]\n", f"[[rule]]\n{when}\n"),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "what", "fixed"), [
    # the case: an apostrophe inside single quotes (and one around a when with phrases)
    ("example = 'We can't take a payment today'", APOSTROPHE,
     'example = "We can\'t take a payment today"'),
    ("when = 'customer says \"can't pay\" and distress >= 0.4'",
     APOSTROPHE,
     'when = "customer says \\"can\'t pay\\" and distress >= 0.4"'),
    # the phrases in single quotes too: the line offered writes them the rule language's way
    ("when = 'customer says 'can't pay', 'won't' and distress >= 0.4'", APOSTROPHE,
     'when = "customer says \\"can\'t pay\\", \\"won\'t\\" and distress >= 0.4"'),
    # SQL's way of writing an apostrophe, and a comment after the value
    ("example = 'It''s fine'  # it's our wording", APOSTROPHE,
     'example = "It\'s fine"'),
    # a double quote inside double quotes
    ('when = "customer says "manager" and distress >= 0.4"', 'text in double quotes ends at the next "',
     'when = "customer says \\"manager\\" and distress >= 0.4"'),
])
def test_a_quoting_mistake_offers_the_line_written_right(tmp_path, line, what, fixed):
    path = pack(tmp_path, line)
    _, problems = load([path])
    assert len(problems) == 1
    said = str(problems[0])
    n = 3 if line.startswith("when") else 4
    assert said.startswith(f"{path}:{n}: error: not valid TOML, {what}: {line} (")
    assert said.endswith(f": {fixed})")
    # the line offered, in its place, parses and lints clean
    text = path.read_text(encoding="utf-8").replace(line, fixed)
    path.write_text(text, encoding="utf-8")
    loaded, problems = load([path])
    assert problems == [] and "hardship" in loaded.rules


@pytest.mark.parametrize(("line", "what", "fix"), [
    ('prompt = "Mention the hardship', "a text with no closing quote on its line",
     "close it on the same line"),
    ('source = "C:\\policies\\hardship"', "a backslash in double quotes that is not an escape",
     "write a backslash as \\\\"),
    ("priority =", "a value missing, or text not in quotes", 'write text in double quotes: key = "…"'),
    ('when = distress >= 0.4', "a value missing, or text not in quotes", "write text in double quotes"),
    ('prompt "Mention it"', "a line that is not key = value", "one key = value a line"),
    ('id = "again"', "a key set twice in one table", "set each field once per [[rule]]"),
    ("[[override]", "a table header not closed", "[[rule]], [[override]] or [pack]"),
    ('answers = ["grief",', "a list or table opened here is never closed", "close it with ] or }"),
])
def test_other_toml_errors_name_the_line_and_the_fix(tmp_path, line, what, fix):
    path = pack(tmp_path, line)
    _, problems = load([path])
    said = str(problems[0])
    n = path.read_text(encoding="utf-8").splitlines().index(line) + 1
    assert said.startswith(f"{path}:{n}: error: not valid TOML, {what}: {line} (")
    assert fix in said
    assert "\n" not in said and "TOMLDecodeError" not in said


def test_a_list_left_open_at_the_end_is_found_where_it_opened():
    text = '[[rule]]\nid = "x"\nanswers = ["grief",\n  "distress"\n# the end\n'
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(text)
    assert explain(caught.value, text).line == 3


def test_a_long_or_hostile_line_is_cut_and_shown_safely(tmp_path):
    line = "example = 'Don't \x1b[2J" + "x" * 500 + "'"
    _, problems = load([pack(tmp_path, line)])
    said = str(problems[0])
    assert "\x1b" not in said and "\\x1b[2J" in said
    assert len(said) < 600 and "…" in said


def test_lint_and_a_run_say_it_in_one_line(tmp_path):
    path = pack(tmp_path, "example = 'We can't take a payment today'")
    linted = agent_assist("rules", "lint", str(path))
    assert linted.returncode == 1
    assert linted.stdout.splitlines() == [
        f"{path}:4: error: not valid TOML, text in single quotes ends at the next ' (an apostrophe too): "
        "example = 'We can't take a payment today' (write the value in double quotes, a \" inside them as "
        "\\\": example = \"We can't take a payment today\")"]
    # what loads the pack to run a call (replay, run) says the same, once, and where to see the rest
    with pytest.raises(AgentAssistError) as caught:
        load_for_run((path,))
    assert str(caught.value).startswith(f"{path}:4: error: not valid TOML, text in single quotes")
    assert str(caught.value).endswith("; run `agent-assist rules lint` to see them all")


def test_a_phrase_in_single_quotes_in_valid_toml_says_how_to_write_it(tmp_path):
    path = pack(tmp_path, "when = \"customer says 'hardship' and distress >= 0.4\"")
    _, problems = load([path])
    assert len(problems) == 1
    assert "unexpected character \"'\"" in str(problems[0])
    assert 'a phrase goes in double quotes: customer says "can\'t pay"' in str(problems[0])

"""Rule packs: TOML that layers (default, then site), and a linter that names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_assist.rules.packs import Flag, errors, load
from tests.conftest import REPO
from tests.test_cli import agent_assist

BASE = '''\
[pack]
name = "test"

[[rule]]
id = "acknowledge-distress"
when = "distress >= 0.7"
prompt = "Acknowledge what they shared before moving on."
example = "That sounds really hard. Thank you for telling me."
principle = "safety"
source = "SAMHSA (2014): safety"
priority = 60
cooldown_s = 90
max_per_call = 3

[[rule]]
id = "manager-request"
when = 'customer says "manager", "supervisor"'
prompt = "Say what you can do now, then offer the call back."
principle = "choice"
source = "de-escalation"
flag = { kind = "escalation", severity = "medium" }
'''


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sound_pack_loads(tmp_path):
    pack, problems = load([write(tmp_path, "base.toml", BASE)])
    assert problems == []
    assert list(pack.rules) == ["acknowledge-distress", "manager-request"]
    rule = pack.rules["manager-request"]
    assert rule.flag == Flag("escalation", "medium") and rule.priority == 50 and rule.cooldown_s == 60.0
    assert pack.rules["acknowledge-distress"].origin.endswith("base.toml:4")


def test_site_pack_overrides_disables_and_adds(tmp_path):
    site = write(tmp_path, "site.toml", '''\
[[override]]
id = "acknowledge-distress"
when = "distress >= 0.8"
cooldown_s = 120

[[override]]
id = "manager-request"
enabled = false

[[rule]]
id = "site-hardship"
when = 'customer says "hardship"'
prompt = "Offer the hardship programme and explain what it means."
principle = "trust"
source = "site policy"
''')
    pack, problems = load([write(tmp_path, "base.toml", BASE), site])
    assert problems == []
    ack = pack.rules["acknowledge-distress"]
    assert ack.when == "distress >= 0.8" and ack.cooldown_s == 120.0 and ack.priority == 60
    assert ack.prompt.startswith("Acknowledge") and ack.origin.endswith("site.toml:1")
    assert not pack.rules["manager-request"].enabled
    assert [r.id for r in pack.enabled] == ["acknowledge-distress", "site-hardship"]


def test_every_problem_is_reported_with_its_line(tmp_path):
    site = write(tmp_path, "bad.toml", '''\
[[rule]]
id = "acknowledge-distress"
when = "distres >= 0.7"
prompt = "This prompt is far too long for an agent to read in a single glance while they are typing notes"
principle = "kindness"
source = "x"
priority = 500
colldown_s = 5

[[rule]]
id = "no-principle"
when = "escalation >= 1.4"
prompt = "Slow down."
source = "x"

[[override]]
id = "manager-requst"
priority = 10
''')
    _, problems = load([write(tmp_path, "base.toml", BASE), site])
    lines = [str(p).replace(str(tmp_path) + "/", "") for p in problems]
    assert lines == [
        "bad.toml:2: error: duplicate rule id 'acknowledge-distress' (first defined at base.toml:4; "
        "use [[override]] to change it)",
        "bad.toml:3: error: when, column 1: unknown signal 'distres' (did you mean 'distress'?)",
        "bad.toml:4: warning: prompt has 20 words; keep it to 15 (an agent reads it in a glance)",
        "bad.toml:5: error: unknown principle 'kindness' (one of: safety, trust, peer-support, "
        "collaboration, choice, culture)",
        "bad.toml:7: error: priority must be a number from 0 to 100, not 500",
        "bad.toml:8: error: unknown field 'colldown_s' (did you mean 'cooldown_s'?)",
        "bad.toml:10: error: rule 'no-principle' has no principle (one of: safety, trust, peer-support, "
        "collaboration, choice, culture)",
        "bad.toml:12: error: when, column 15: escalation is a probability; 1.4 is outside [0, 1]",
        "bad.toml:17: error: override of rule 'manager-requst', which no earlier pack defines "
        "(did you mean 'manager-request'?)",
    ]


def test_a_broken_site_pack_never_removes_a_working_rule(tmp_path):
    site = write(tmp_path, "site.toml",
                 '[[override]]\nid = "acknowledge-distress"\nwhen = "distress >>= 2"\n')
    pack, problems = load([write(tmp_path, "base.toml", BASE), site])
    assert len(errors(problems)) == 1
    assert pack.rules["acknowledge-distress"].when == "distress >= 0.7"


@pytest.mark.parametrize(("text", "expected"), [
    ('[[rule]]\nid = "x"\nwhen = "distress >= 0.5\n', ":3: error: not valid TOML"),
    ('[[rule]]\nid = "x"\nwhen = "distress >= 0.5"\nprompt = "p"\nprinciple = "safety"\nsource = "s"\n'
     'flag = { kind = "angry", severity = "high" }\n', ":7: error: flag must be { kind = …, severity = … }"),
    ('[settings]\nx = 1\n', ":1: error: unknown table 'settings'"),
])
def test_file_level_problems(tmp_path, text, expected):
    _, problems = load([write(tmp_path, "p.toml", text)])
    assert expected in str(problems[0])


def test_missing_and_unreadable_files(tmp_path):
    (tmp_path / "latin1.toml").write_bytes(b'x = "\xe9"\n')
    _, problems = load([tmp_path / "nope.toml", tmp_path / "latin1.toml"])
    assert str(problems[0]).endswith("nope.toml:0: error: no such file")
    assert "latin1.toml:1: error: not UTF-8 text" in str(problems[1])


# -- the default pack and the linter's command line -------------------------------------------

DEFAULT = REPO / "prompts" / "default.toml"


def test_default_pack_is_clean_and_cites_its_principles():
    pack, problems = load([DEFAULT])
    assert problems == []
    assert len(pack.rules) >= 15
    text = DEFAULT.read_text(encoding="utf-8")
    for rule in pack.rules.values():
        assert rule.principle and rule.source and len(rule.prompt.split()) <= 15, rule.id
    for line in ("Lifeline 13 11 14", "1800RESPECT 1800 737 732", "Blue Knot Helpline 1300 657 380"):
        assert line in text
    crisis = [r for r in pack.rules.values() if r.flag and r.flag.kind == "crisis"]
    assert crisis and all(r.priority >= 95 and r.support_line for r in crisis)
    assert max(r.priority for r in pack.rules.values()) == max(r.priority for r in crisis)


def test_lint_command_reports_and_exits(tmp_path):
    clean = agent_assist("rules", "lint")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 error(s)" in clean.stderr
    site = write(tmp_path, "site.toml", '[[override]]\nid = "acknowledge-disclosur"\npriority = 5\n')
    bad = agent_assist("rules", "lint", str(site))
    assert bad.returncode == 1
    assert bad.stdout == (f"{site}:2: error: override of rule 'acknowledge-disclosur', which no earlier pack "
                          "defines (did you mean 'acknowledge-disclosure'?)\n")


def test_a_site_pack_may_reword_a_crisis_rule_but_never_weaken_it(tmp_path):
    default = REPO / "prompts" / "default.toml"
    site = write(tmp_path, "site.toml", '''\
[[override]]
id = "crisis-self-harm"
support_line = "Samaritans 116 123 · emergency 999"
example = "Thank you for telling me. Are you safe right now?"

[[override]]
id = "crisis-family-violence"
when = "crisis_violence >= 0.9"

[[override]]
id = "crisis-danger"
enabled = false

[[override]]
id = "crisis-threat"
cooldown_s = 3600

[[override]]
id = "crisis-self-harm"
confirm_partials = 3

[[override]]
id = "crisis-danger"
rearm_s = 60
''')
    pack, problems = load([default, site])
    messages = [(p.line, p.message) for p in errors(problems)]
    assert [line for line, _ in messages] == [8, 12, 16, 20, 24]
    assert all("is a crisis rule: a site pack may not change" in m for _, m in messages)
    assert pack.rules["crisis-self-harm"].support_line == "Samaritans 116 123 · emergency 999"
    shipped = load([default])[0].rules["crisis-family-violence"]
    assert pack.rules["crisis-family-violence"].when == shipped.when
    assert pack.rules["crisis-danger"].enabled and pack.rules["crisis-threat"].cooldown_s == 300


def test_on_and_answers_are_checked(tmp_path):
    site = write(tmp_path, "site.toml", BASE.replace('max_per_call = 3\n', 'max_per_call = 3\non = "midway"\n'
                                                     'answers = ["sadness"]\n'))
    messages = [p.message for p in errors(load([site])[1])]
    assert any(m.startswith("on must be 'final' or 'partial'") for m in messages)
    assert "answers must be a list of moment kinds" in messages
    good = write(tmp_path, "good.toml", BASE.replace('max_per_call = 3\n',
                                                     'max_per_call = 3\non = "partial"\n'
                                                     'answers = ["distress", "grief"]\n'))
    pack, problems = load([good])
    assert not errors(problems)
    rule = pack.rules["acknowledge-distress"]
    assert rule.on == "partial" and rule.answers == ("distress", "grief")


def test_rearm_and_confirm_partials_are_checked(tmp_path):
    good = write(tmp_path, "good.toml", BASE.replace('max_per_call = 3\n', 'max_per_call = 3\n'
                                                     'on = "partial"\nrearm_s = 20\nconfirm_partials = 2\n'))
    pack, problems = load([good])
    assert problems == []
    rule = pack.rules["acknowledge-distress"]
    assert (rule.rearm_s, rule.confirm_partials) == (20.0, 2)
    assert pack.rules["manager-request"].rearm_s is None  # the cooldown alone, unless a pack says
    useless = write(tmp_path, "useless.toml", BASE.replace('max_per_call = 3\n', 'max_per_call = 3\n'
                                                           'rearm_s = 90\nconfirm_partials = 2\n'))
    said = [(p.severity, p.message) for p in load([useless])[1]]
    assert said == [("warning", "rearm_s is not shorter than cooldown_s, so it changes nothing"),
                    ("warning", "confirm_partials counts partials, but this rule fires on finals only")]
    bad = write(tmp_path, "bad.toml", BASE.replace('max_per_call = 3\n', 'max_per_call = 3\n'
                                                   'rearm_s = -1\nconfirm_partials = 0\n'))
    assert [p.message for p in errors(load([bad])[1])] == [
        "rearm_s must be a number from 0 to 86400, not -1",
        "confirm_partials must be a number from 1 to 10, not 0"]


# -- what TOML allows but a pack must not hide: structure, types, bounds --------------------------

SOUND = 'when = "distress >= 0.5"\nprompt = "p"\nprinciple = "safety"\nsource = "s"\n'


def test_tables_are_found_as_toml_reads_them(tmp_path):
    """A `[[rule]]` line inside a multi-line string is text, a quoted header is a header, and
    every problem keeps its own line; rules written as an inline list are refused, never skipped."""
    odd = write(tmp_path, "odd.toml", f'''\
[[rule]]
id = "first"
{SOUND}example = """
[[rule]]
id = "not-a-rule"
"""

[["rule"]]
id = "second"
{SOUND}colour = "red"
''')
    pack, problems = load([odd])
    assert list(pack.rules) == ["first"]
    assert [(p.line, p.message) for p in problems] == [(18, "unknown field 'colour'")]
    fields = SOUND.strip().replace("\n", ", ")
    inline = write(tmp_path, "inline.toml", f'rule = [{{ id = "a", {fields} }}]\n')
    pack, problems = load([inline])
    assert not pack.rules and [(p.line, p.message.split(";")[0]) for p in problems] == [
        (1, "rules must be written as [[rule]] tables, one for each rule")]
    sub = write(tmp_path, "sub.toml", f'[[rule]]\nid = "a"\n{SOUND}\n[[rule.flag]]\nkind = "crisis"\n'
                                      'severity = "low"\n')
    assert [(p.line, p.message) for p in load([sub])[1]] == [(8, "flag must be { kind = …, severity = … }")]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("prompt", "1979-05-27T07:32:00Z",
     "prompt must be text in quotes, not the date or time 1979-05-27 07:32:00+00:00"),
    ("id", "{ a = 1 }", "id must be text in quotes, not a table"),
    ("principle", '["safety"]', "principle must be text in quotes, not a list"),
    ("priority", "9" * 400, "priority must be a number from 0 to 100, not an integer of about 400 digits"),
    ("cooldown_s", "nan", "cooldown_s must be a number from 0 to 86400, not nan"),
    ("enabled", '"yes"', "enabled must be true or false"),
    ("example", '"\\u001b[2J"', "example holds the control character U+001B at character 1"),
    ("source", '"' + "x" * 1001 + '"', "source is 1,001 characters long; at most 1,000"),
    ("when", '"' + "(" * 21 + "distress >= 0.5" + ")" * 21 + '"',
     "when, column 21: nested more than 20 deep (parentheses and 'not')"),
    ("when", '"call_s >= 1' + "0" * 400 + '"',
     "when, column 11: the number 10000000000000000000… is too large"),
    ("flag", '{ kind = "crisis", severity = "high", x = 1 }', "flag must be { kind = …, severity = … }"),
])
def test_a_value_of_the_wrong_kind_is_an_error_at_its_line(tmp_path, field, value, message):
    """What lints clean is what the engine runs, so a value the engine could not use (a date where
    text belongs, a table for an id) is an error, never a rule that crashes a call."""
    lines = ['[[rule]]', 'id = "a"', *SOUND.strip().split("\n")]
    lines = [line for line in lines if not line.startswith(f"{field} = ")] + [f"{field} = {value}"]
    pack, problems = load([write(tmp_path, "p.toml", "\n".join(lines) + "\n")])
    assert not pack.rules
    assert [(p.line, p.message) for p in errors(problems)] == [(len(lines), message)]


def test_every_shipped_pack_lints_clean_and_loads_every_rule():
    """The default and the regional packs: what lint passes is what runs."""
    regions = sorted((REPO / "prompts" / "regions").glob("*.toml"))
    for region in regions:
        pack, problems = load([DEFAULT, region])
        assert problems == [], region
        assert len(pack.rules) == len(load([DEFAULT])[0].rules)

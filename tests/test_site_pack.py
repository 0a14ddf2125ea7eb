"""The example site pack shipped with the package, and `rules init` writing a copy to start from: the
copy lints clean, loads on top of the default pack, and does what its comments say."""

from __future__ import annotations

from pathlib import Path

from agent_assist import resources
from agent_assist.events import Prompt
from agent_assist.rules.packs import errors, load, load_for_run
from tests.conftest import REPO
from tests.test_cli import agent_assist
from tests.test_rules_engine import customer, run


def test_the_example_the_lint_help_names_is_shipped():
    assert "prompts/site-example.toml" in agent_assist("rules", "lint", "--help").stdout
    assert resources.site_example().resolve() == REPO / "prompts" / "site-example.toml"


def test_init_writes_a_copy_that_lints_clean_and_loads_on_the_default(tmp_path):
    ours = tmp_path / "our-centre.toml"
    made = agent_assist("rules", "init", str(ours))
    assert made.returncode == 0, made.stderr
    assert ours.read_text(encoding="utf-8") == resources.site_example().read_text(encoding="utf-8")
    assert f"rules lint {ours}" in made.stderr
    linted = agent_assist("rules", "lint", str(ours))
    assert linted.returncode == 0 and linted.stdout == ""
    assert "0 error(s), 0 warning(s)" in linted.stderr

    default, site = load_for_run(), load_for_run((ours,))
    # an override of a default rule's words: only what it names changes
    assert site.rules["manager-request"].prompt != default.rules["manager-request"].prompt
    assert site.rules["manager-request"].when == default.rules["manager-request"].when
    # a changed threshold, stricter than the default's
    assert default.rules["deescalate-validate"].when == "escalation >= 0.6"
    assert site.rules["deescalate-validate"].when == "escalation >= 0.7"
    # a crisis rule: its support line is the site's, when it fires is not
    crisis, crisis_default = site.rules["crisis-self-harm"], default.rules["crisis-self-harm"]
    assert "team leader" in crisis.support_line
    assert (crisis.when, crisis.on, crisis.cooldown_s, crisis.max_per_call, crisis.flag) == (
        crisis_default.when, crisis_default.on, crisis_default.cooldown_s, crisis_default.max_per_call,
        crisis_default.flag)
    # a rule of the site's own, one more than the default
    assert set(site.rules) - set(default.rules) == {"hardship-offer"}
    assert site.rules["hardship-offer"].origin.startswith(f"{ours}:")


def test_the_example_s_rules_do_what_its_comments_say(tmp_path):
    ours = tmp_path / "ours.toml"
    agent_assist("rules", "init", str(ours))
    # the phrase with an apostrophe matches what a customer says
    said = [customer(1, 1.0, 4.0, "I just can't pay this bill right now", distress=0.5)]
    assert "hardship-offer" in [e.rule for e in run(said, (ours,)) if isinstance(e, Prompt)]
    assert "hardship-offer" not in [e.rule for e in run(said) if isinstance(e, Prompt)]
    # escalation 0.65: de-escalation by default, not at the example's 0.7
    heated = [customer(1, 1.0, 4.0, "this is the third time I've rung about it", escalation=0.65)]
    assert "deescalate-validate" in [e.rule for e in run(heated) if isinstance(e, Prompt)]
    assert "deescalate-validate" not in [e.rule for e in run(heated, (ours,)) if isinstance(e, Prompt)]


def test_the_example_cannot_be_bent_to_weaken_a_crisis_rule(tmp_path):
    """What the example's comment says lint refuses, it refuses: a crisis rule's threshold."""
    ours = tmp_path / "ours.toml"
    agent_assist("rules", "init", str(ours))
    text = ours.read_text(encoding="utf-8").replace(
        'id = "crisis-self-harm"\n', 'id = "crisis-self-harm"\nwhen = "crisis_self_harm >= 0.9"\n')
    ours.write_text(text, encoding="utf-8")
    _, problems = load([resources.default_pack(), ours])
    assert [p.message for p in errors(problems)] == [
        "rule 'crisis-self-harm' is a crisis rule: a site pack may not change its when"]


def test_init_never_overwrites(tmp_path):
    ours = tmp_path / "ours.toml"
    ours.write_text("# our rules\n", encoding="utf-8")
    refused = agent_assist("rules", "init", str(ours))
    assert refused.returncode == 1
    assert refused.stderr == (f"agent-assist: error: {ours} already exists; `rules init` never overwrites a "
                              "file: give another path, or move that one away\n")
    assert ours.read_text(encoding="utf-8") == "# our rules\n"
    missing = agent_assist("rules", "init", str(tmp_path / "no" / "such" / "folder.toml"))
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1
    assert "cannot write" in missing.stderr


def test_init_writes_site_pack_toml_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert agent_assist("rules", "init").returncode == 0
    assert load_for_run((Path("site-pack.toml"),)).rules["hardship-offer"]

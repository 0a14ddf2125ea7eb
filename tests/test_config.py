"""Configuration: the region's support lines and site packs, from one TOML file."""

from __future__ import annotations

import json

import pytest

from agent_assist.config import Config, load
from agent_assist.errors import AgentAssistError
from agent_assist.rules.packs import load_for_run
from tests.test_cli import agent_assist


def test_no_file_means_the_australian_defaults(tmp_path):
    config = load(tmp_path / "none.toml")
    assert config == Config()
    pack = load_for_run(config.rule_packs())
    assert "13 11 14" in pack.rules["crisis-self-harm"].support_line


@pytest.mark.parametrize(("region", "line"),
                         [("NZ", "1737"), ("UK", "Samaritans 116 123"), ("au", "13 11 14")])
def test_region_chooses_the_support_lines(tmp_path, region, line):
    path = tmp_path / "config.toml"
    path.write_text(f'[rules]\nregion = "{region}"\n', encoding="utf-8")
    pack = load_for_run(load(path).rule_packs())
    assert line in pack.rules["crisis-self-harm"].support_line
    assert line.split()[-1] in pack.rules["signpost-support"].support_line


def test_site_packs_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "ours.toml").write_text('[[override]]\nid = "slow-down"\nenabled = false\n', encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text('[rules]\nsite_packs = ["ours.toml"]\n', encoding="utf-8")
    config = load(path)
    assert config.site_packs == (tmp_path / "ours.toml",)
    assert not load_for_run(config.rule_packs()).rules["slow-down"].enabled


@pytest.mark.parametrize(("text", "message"), [
    ('[rules]\nregion = "FR"\n', "no support lines for region 'FR' (known: AU, NZ, UK)"),
    ('[rules]\nregoin = "AU"\n', "unknown setting rules.regoin"),
    ('[rules]\nsite_packs = "x.toml"\n', "rules.site_packs a list of paths"),
    ("[rules\n", "unreadable configuration"),
    ("[live]\nend_silence_s = 0\n", "live.end_silence_s must be a number of seconds, at least 1"),
    ("[live]\nend_silence_s = true\n", "live.end_silence_s must be a number of seconds, at least 1"),
    ("[live]\nagent_device = [3]\n", "live.agent_device and live.customer_device must be a device name"),
    ("[live]\nend_silence = 30\n", "unknown setting live.end_silence (known: agent_device, customer_device"),
    ("live = 3\n", "[live] must be a table"),
    ('[store]\ntranscript = "all"\n', "store.transcript must be none, excerpt or full"),
    ("[store]\nretain_days = 0\n", "store.retain_days must be a number of days above 0"),
    ("[store]\nurl = 5\n", "store.url must be text"),
    ("[store]\ntimeout_s = 0\n", "store.timeout_s must be a number of seconds from 0.5 to 600"),
])
def test_a_bad_configuration_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AgentAssistError, match=str(path)) as err:
        load(path).rule_packs()
    assert message in str(err.value)
    result = agent_assist("rules", "lint", env={"AGENT_ASSIST_CONFIG": str(path)})
    assert result.returncode == 1 and message in result.stderr


def test_live_devices_and_end_of_call_silence_come_from_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[live]\nagent_device = "Jabra"\ncustomer_device = "monitor"\nend_silence_s = 45\n',
                    encoding="utf-8")
    config = load(path)
    assert (config.agent_device, config.customer_device, config.end_silence_s) == ("Jabra", "monitor", 45.0)
    path.write_text("[live]\nagent_device = 3\n", encoding="utf-8")  # a PortAudio number
    assert load(path).agent_device == "3"


def test_the_store_comes_from_the_file_and_a_floor_server_that_is_down_loses_nothing(tmp_path, sample_clip):
    """The configured store is the floor's PostgreSQL server, and it is down: the call goes on, its
    events are saved aside under the configured agent and team, and `review import` loads them."""
    from agent_assist.store import open_store

    path = tmp_path / "config.toml"
    down = f"postgresql:///flags?host={tmp_path}&port=1&user=nobody"  # no server listens there
    path.write_text(f'[store]\nurl = "{down}"\nagent_id = "sam.k"\nteam = "east"\n'
                    'transcript = "full"\nretain_days = 30\n', encoding="utf-8")
    config = load(path)
    assert (config.store_url, config.agent_id, config.team, config.transcript, config.retain_days) == \
        (down, "sam.k", "east", "full", 30.0)
    events = tmp_path / "events.jsonl"
    done = agent_assist("replay", str(sample_clip), "-q", "--store", down, "--call-id", "clip", "--events",
                        str(events),
                        env={"AGENT_ASSIST_CONFIG": str(path), "XDG_DATA_HOME": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    assert "warning: flag store postgresql:///flags" in done.stderr and "the call goes on" in done.stderr
    [saved] = (tmp_path / "data" / "agent-assist" / "unsaved").glob("unsaved-*.jsonl")
    assert "review import" in done.stderr and str(saved) in done.stderr
    store = tmp_path / "later.sqlite3"
    loaded = agent_assist("review", "import", str(saved), "--store", str(store))
    assert loaded.returncode == 0, loaded.stderr
    opened = open_store(store)
    call = opened.call("clip")
    assert (call.agent, call.team, call.transcript_mode) == ("sam.k", "east", "full")
    assert len(call.turns) > 5 and call.turns[0]["speaker"] == "agent"
    flagged = sorted(json.loads(x)["t"] for x in events.read_text().splitlines() if '"type":"flag"' in x)
    assert flagged and sorted(f.t for f in opened.flags()) == flagged
    assert {f.agent for f in opened.flags()} == {"sam.k"} and all(f.excerpt for f in opened.flags())
    opened.close()

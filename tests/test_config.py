"""Configuration: the region's support lines and site packs, from one TOML file."""

from __future__ import annotations

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


def test_the_store_comes_from_the_file_and_replay_writes_where_it_says(tmp_path, sample_clip):
    from agent_assist.store import open_store

    path = tmp_path / "config.toml"
    store = tmp_path / "floor.sqlite3"
    path.write_text(f'[store]\nurl = "{store}"\nagent_id = "sam.k"\nteam = "east"\n'
                    'transcript = "full"\nretain_days = 30\n', encoding="utf-8")
    config = load(path)
    assert (config.store_url, config.agent_id, config.team, config.transcript, config.retain_days) == \
        (str(store), "sam.k", "east", "full", 30.0)
    from datetime import UTC, datetime, timedelta

    from tests.test_store import a_call, write

    write(str(store), a_call("old", started_at=(datetime.now(UTC) - timedelta(days=31)).isoformat()))
    done = agent_assist("replay", str(sample_clip), "-q", "--store", str(store), "--call-id", "clip",
                        env={"AGENT_ASSIST_CONFIG": str(path)})
    assert done.returncode == 0, done.stderr
    assert "note: purged 1 call(s) and 2 flag(s) older than 30 days" in done.stderr  # retain_days
    opened = open_store(store)
    call = opened.call("clip")
    assert (call.agent, call.team, call.transcript_mode) == ("sam.k", "east", "full")
    assert len(call.turns) > 5 and call.turns[0]["speaker"] == "agent"
    assert [f.agent for f in opened.flags()] and {f.agent for f in opened.flags()} == {"sam.k"}
    assert {f.call_id for f in opened.flags()} == {"clip"}
    opened.close()

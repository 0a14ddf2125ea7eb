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

"""`serve` and `overlay` on the command line: a broken configuration, a missing secret or a wrong
address is one clear line before anything loads; and the site's agent map reads as documented."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from agent_assist.errors import AgentAssistError
from agent_assist.server.protocol import Media, OpenRequest
from agent_assist.server.settings import KEYS_ENV, UNASSIGNED, Assignment, load
from tests.test_cli import agent_assist


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, says", [
    ("[serve]\nmax_calls = 0\n", "serve.max_calls must be a whole number from 1 to 1000"),
    ("[serve]\nlisten = 1\n", "unknown setting serve.listen"),
    ("[serve.api_keys]\nkey = \"not base64!\"\n", "is not base64"),
    ("[serve.agent_tokens]\n\"sam.k\" = \"short\"\n", "at least 16 characters"),
    ("[serve.agents]\n\"+61\" = 5\n", "serve.agents.+61 must be an agent id"),
])
def test_a_broken_serve_configuration_is_one_line_before_any_model_loads(tmp_path, text, says):
    config = write(tmp_path, text)
    result = agent_assist("serve", "--port", "0", env={"AGENT_ASSIST_CONFIG": str(config)})
    assert result.returncode == 1
    assert result.stderr.startswith("agent-assist: error: ") and says in result.stderr
    assert result.stderr.count("\n") == 1


def test_tls_needs_both_halves(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    result = agent_assist("serve", "--tls-cert", str(cert))
    assert result.returncode == 2 and "give --tls-cert and --tls-key together" in result.stderr


def test_the_overlay_needs_a_websocket_address_and_a_token(tmp_path):
    wrong = agent_assist("overlay", "--server", "http://assist.example.com", "--agent", "sam.k")
    assert wrong.returncode == 1 and "must be a ws:// or wss:// address" in wrong.stderr
    no_token = agent_assist("overlay", "--server", "wss://assist.example.com", "--agent", "sam.k",
                            env={"AGENT_ASSIST_AGENT_TOKEN": ""})
    assert no_token.returncode == 1 and "no overlay token: set $AGENT_ASSIST_AGENT_TOKEN" in no_token.stderr


def request(**custom: str) -> OpenRequest:
    media = Media("PCMU", ("external", "internal"))
    return OpenRequest("s", "o", "c", {"id": "p", "dnis": "+61390001234"}, media, custom_config=custom)


def test_the_agent_is_what_the_site_maps_it_to(tmp_path, monkeypatch):
    secret = base64.b64encode(b"secret").decode()
    monkeypatch.setenv(KEYS_ENV, f'{{"env-key": "{secret}"}}')
    settings = load(write(tmp_path, """
[serve]
agent_from = ["customConfig.agentId", "participant.dnis"]
[serve.agents]
"+61390001234" = { agent = "sam.k", team = "billing-east" }
"queue-7" = "jo.b"
[serve.api_keys]
"file-key" = "c2VjcmV0"
"""), team="east")
    assert settings.api_keys == {"file-key": b"secret", "env-key": b"secret"}  # the file's and $…'s
    assert settings.assign(request()) == Assignment("sam.k", "billing-east")  # by the number called
    assert settings.assign(request(agentId="jo.b")) == Assignment("jo.b", "east")  # a known agent, named
    assert settings.assign(request(agentId="queue-7")) == Assignment("jo.b", "east")
    stranger = OpenRequest("s", "o", "c", {"id": "p"}, Media("PCMU", ("external",)),
                           custom_config={"agentId": "x"})
    assert settings.assign(stranger) == Assignment(UNASSIGNED, "east")


def test_secrets_never_come_from_the_command_line():
    result = agent_assist("serve", "--help")
    for option in ("--api-key", "--secret", "--token"):
        assert option not in result.stdout


def test_a_broken_environment_secret_map_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYS_ENV, "key=secret")
    with pytest.raises(AgentAssistError, match=r"\$AGENT_ASSIST_AUDIOHOOK_KEYS must be a JSON object"):
        load(write(tmp_path, ""))

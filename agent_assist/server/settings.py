"""`agent-assist serve`'s settings: the `[serve]` tables of the configuration file, and secrets from
the environment. Never from the command line, where any user of the machine could read them.

    [serve]
    max_calls = 8                               # concurrent calls; the next is refused (and counted)
    agent_from = ["customConfig.agentId", "participant.dnis"]   # where the open message names the
                                                # agent: the first of these that is there
    events_dir = "/var/log/agent-assist/calls"  # optional: each call's event log, <call id>.jsonl

    [serve.agents]                              # what the platform sends -> the agent (and team)
    "+61390001234" = "sam.k"
    "queue-billing" = { agent = "sam.k", team = "billing-east" }

    [serve.api_keys]                            # AudioHook API key = client secret (base64, as Genesys
    "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh" = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="  # shows it)

    [serve.agent_tokens]                        # each agent's overlay token (`agent-assist overlay`)
    "sam.k" = "a long random string"

`AGENT_ASSIST_AUDIOHOOK_KEYS` and `AGENT_ASSIST_AGENT_TOKENS` may hold the same two maps as JSON
objects (`{"API key": "secret"}`, `{"agent": "token"}`); they are added to the file's, so secrets can
live in a service manager's environment file rather than the configuration.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist.config import read_file
from agent_assist.errors import AgentAssistError
from agent_assist.server.protocol import OpenRequest

KEYS_ENV = "AGENT_ASSIST_AUDIOHOOK_KEYS"
TOKENS_ENV = "AGENT_ASSIST_AGENT_TOKENS"
DEFAULT_AGENT_FROM = ("customConfig.agentId", "customConfig.agent")
UNASSIGNED = "unassigned"  # the agent of a call whose open message names none the site maps


@dataclass(frozen=True)
class Assignment:
    agent: str
    team: str = ""


@dataclass(frozen=True)
class ServeSettings:
    max_calls: int = 4
    agent_from: tuple[str, ...] = DEFAULT_AGENT_FROM
    agents: dict[str, Assignment] = field(default_factory=dict)
    api_keys: dict[str, bytes] = field(default_factory=dict)  # API key -> client secret (decoded)
    agent_tokens: dict[str, str] = field(default_factory=dict)
    events_dir: Path | None = None
    team: str = ""  # the store's team, for agents the map gives none

    def assign(self, request: OpenRequest) -> Assignment:
        """The agent on a call, as the site maps what the open message says."""
        known = {a.agent for a in self.agents.values()} | set(self.agent_tokens)
        for path in self.agent_from:
            value = request.lookup(path)
            if value is None:
                continue
            if value in self.agents:
                return self.agents[value]
            if value in known or not self.agents:  # an agent id itself, or a site that maps nothing
                return Assignment(value, self.team)
        return Assignment(UNASSIGNED, self.team)


def _secret(key: str, value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise AgentAssistError(f"{where}: the secret of API key {key[:8]}… must be text (base64)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise AgentAssistError(f"{where}: the secret of API key {key[:8]}… is not base64 (copy it as "
                               "the platform shows it)") from None


def _env_map(name: str) -> dict[str, Any]:
    text = os.environ.get(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise AgentAssistError(f"${name} must be a JSON object ({{\"name\": \"value\"}})") from None
    if not isinstance(value, dict):
        raise AgentAssistError(f"${name} must be a JSON object ({{\"name\": \"value\"}})")
    return value


def load(path: Path | None = None, team: str = "") -> ServeSettings:
    """The settings from the configuration file (`AGENT_ASSIST_CONFIG` or the user's) and the
    environment; a broken one is one line naming what is wrong."""
    path, found = read_file(path)
    data = found or {}
    table = data.get("serve", {})
    if not isinstance(table, dict):
        raise AgentAssistError(f"{path}: [serve] must be a table")
    known = ("max_calls", "agent_from", "agents", "api_keys", "agent_tokens", "events_dir")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise AgentAssistError(f"{path}: unknown setting serve.{unknown[0]} (known: {', '.join(known)})")
    max_calls = table.get("max_calls", 4)
    if isinstance(max_calls, bool) or not isinstance(max_calls, int) or not 1 <= max_calls <= 1000:
        raise AgentAssistError(f"{path}: serve.max_calls must be a whole number from 1 to 1000")
    agent_from = table.get("agent_from", list(DEFAULT_AGENT_FROM))
    if isinstance(agent_from, str):
        agent_from = [agent_from]
    if not isinstance(agent_from, list) or not all(isinstance(p, str) and p for p in agent_from):
        raise AgentAssistError(f"{path}: serve.agent_from must be a list of places in the open message, "
                               "such as \"customConfig.agentId\" or \"participant.dnis\"")
    agents: dict[str, Assignment] = {}
    for key, value in (table.get("agents") or {}).items():
        if isinstance(value, str) and value:
            agents[key] = Assignment(value, team)
        elif isinstance(value, dict) and isinstance(value.get("agent"), str) and value["agent"] \
                and isinstance(value.get("team", ""), str) and set(value) <= {"agent", "team"}:
            agents[key] = Assignment(value["agent"], value.get("team") or team)
        else:
            raise AgentAssistError(f"{path}: serve.agents.{key} must be an agent id, or "
                                   "{ agent = \"…\", team = \"…\" }")
    keys = {**(table.get("api_keys") or {}), **_env_map(KEYS_ENV)}
    api_keys = {k: _secret(k, v, f"{path} or ${KEYS_ENV}") for k, v in keys.items()}
    tokens = {**(table.get("agent_tokens") or {}), **_env_map(TOKENS_ENV)}
    for agent, token in tokens.items():
        if not isinstance(token, str) or len(token) < 16:
            raise AgentAssistError(f"{path} or ${TOKENS_ENV}: the token of agent {agent} must be text of "
                                   "at least 16 characters")
    events_dir = table.get("events_dir")
    if events_dir is not None and not isinstance(events_dir, str):
        raise AgentAssistError(f"{path}: serve.events_dir must be a folder's path")
    return ServeSettings(max_calls=max_calls, agent_from=tuple(agent_from), agents=agents, api_keys=api_keys,
                         agent_tokens=tokens, team=team,
                         events_dir=(path.parent / events_dir).expanduser() if events_dir else None)

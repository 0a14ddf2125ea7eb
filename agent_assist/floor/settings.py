"""The floor's settings: the `[floor]` table of the configuration file (`agent_assist.config`).

    [floor]
    bind = "127.0.0.1"                # the default; another address is a deliberate choice
    port = 8765
    session_minutes = 480             # a sign-in lasts this long (and this long idle at most: 60)
    idle_minutes = 60
    user_header = "X-Remote-User"     # only behind a reverse proxy that authenticates and sets it
    sound = true                      # the board's audible alert is on by default

    [floor.accounts.lee]              # a supervisor; `agent-assist floor hash-password` makes the hash
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."
    teams = ["east"]                  # the teams lee leads: only lee sees their agents' check-ins

An account needs a `password_hash` to sign in with a password; behind a proxy (`user_header`) an
account names only the teams its user leads. Passwords are hashed with Argon2id (argon2-cffi).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist.config import read_file
from agent_assist.errors import AgentAssistError


@dataclass(frozen=True)
class Account:
    name: str
    password_hash: str = ""
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class FloorSettings:
    bind: str = "127.0.0.1"
    port: int = 8765
    session_minutes: float = 480.0
    idle_minutes: float = 60.0
    user_header: str = ""
    sound: bool = True
    accounts: dict[str, Account] = field(default_factory=dict)
    path: Path | None = None

    def account(self, name: str) -> Account:
        """The account of a signed-in user (a proxy's user may have none: they lead no team)."""
        return self.accounts.get(name) or Account(name)


_KNOWN = ("bind", "port", "session_minutes", "idle_minutes", "user_header", "sound", "accounts")


def load(path: Path | None = None) -> FloorSettings:
    """The `[floor]` table of the configuration file (defaults when there is none); a wrong setting
    is one line naming the file and the setting."""
    path, data = read_file(path)
    if data is None:
        return FloorSettings()
    table = data.get("floor", {})
    if not isinstance(table, dict):
        raise AgentAssistError(f"{path}: [floor] must be a table")
    unknown = sorted(set(table) - set(_KNOWN))
    if unknown:
        raise AgentAssistError(f"{path}: unknown setting floor.{unknown[0]} (known: {', '.join(_KNOWN)})")

    def number(key: str, default: float, low: float, high: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise AgentAssistError(f"{path}: floor.{key} must be a number from {low:g} to {high:g}")
        return float(value)

    for key in ("bind", "user_header"):
        if key in table and not isinstance(table[key], str):
            raise AgentAssistError(f"{path}: floor.{key} must be text")
    if not isinstance(table.get("sound", True), bool):
        raise AgentAssistError(f"{path}: floor.sound must be true or false")
    accounts_table = table.get("accounts", {})
    if not isinstance(accounts_table, dict):
        raise AgentAssistError(f"{path}: [floor.accounts] must be a table of accounts")
    accounts = {name: _account(path, name, value) for name, value in accounts_table.items()}
    return FloorSettings(
        bind=table.get("bind", "127.0.0.1"), port=int(number("port", 8765, 1, 65535)),
        session_minutes=number("session_minutes", 480, 1, 7 * 24 * 60),
        idle_minutes=number("idle_minutes", 60, 1, 7 * 24 * 60),
        user_header=table.get("user_header", ""), sound=table.get("sound", True), accounts=accounts,
        path=path)


def _account(path: Path, name: str, value: Any) -> Account:
    where = f"{path}: floor.accounts.{name}"
    if not isinstance(value, dict):
        raise AgentAssistError(f"{where} must be a table (password_hash, teams)")
    unknown = sorted(set(value) - {"password_hash", "teams"})
    if unknown:
        raise AgentAssistError(f"{where}: unknown setting {unknown[0]} (known: password_hash, teams)")
    hashed = value.get("password_hash", "")
    if not isinstance(hashed, str) or (hashed and not hashed.startswith("$argon2")):
        raise AgentAssistError(f"{where}.password_hash must be an Argon2 hash (`agent-assist floor "
                               "hash-password` makes one), never the password itself")
    teams = value.get("teams", [])
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        raise AgentAssistError(f"{where}.teams must be a list of team names")
    return Account(name, hashed, tuple(teams))

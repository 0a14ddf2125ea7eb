"""Configuration: one TOML file in the user's config directory, overridden by command-line flags.

    # ~/.config/agent-assist/config.toml (Linux; platformdirs decides elsewhere)
    [rules]
    region = "AU"                           # support lines: prompts/regions/<region>.toml
    site_packs = ["/etc/agent-assist/our-centre.toml"]

    [live]
    agent_device = "Jabra"                  # `agent-assist devices` lists them
    customer_device = "monitor"             # the monitor of the default output
    end_silence_s = 60                      # both parties silent this long ends a call

    [store]                                 # the flag store supervisors review (`agent-assist review`)
    url = "postgresql://agent-assist@flags.example.internal/flags"   # default: a SQLite file
    agent_id = "sam.k"                      # default: the login name
    team = "billing-east"
    transcript = "excerpt"                  # none | excerpt (the turns around each flag) | full
    retain_days = 90                        # older calls are purged when a session starts
    timeout_s = 5                           # the longest one write waits (a lock, a silent server)

`AGENT_ASSIST_CONFIG` names another file. A missing file means the defaults; a broken one is a
one-line error that names it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from agent_assist import resources
from agent_assist.errors import AgentAssistError


@dataclass(frozen=True)
class Config:
    region: str = "AU"
    site_packs: tuple[Path, ...] = ()
    agent_device: str | None = None
    customer_device: str | None = None
    end_silence_s: float = 60.0
    store_url: str | None = None
    agent_id: str | None = None
    team: str = ""
    transcript: str = "excerpt"
    retain_days: float | None = None
    store_timeout_s: float = 5.0
    path: Path | None = None

    def rule_packs(self, extra: tuple[Path, ...] = ()) -> tuple[Path, ...]:
        """The packs layered on the default, in order: the region's, the configured, then `extra`."""
        regions = resources.regions()
        region = regions / f"{self.region.lower()}.toml"
        if not region.is_file():
            known = ", ".join(sorted(p.stem.upper() for p in regions.glob("*.toml")))
            where = f"{self.path}: " if self.path else ""
            raise AgentAssistError(f"{where}no support lines for region {self.region!r} (known: {known})")
        return (region, *self.site_packs, *extra)


def config_path() -> Path:
    env = os.environ.get("AGENT_ASSIST_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir("agent-assist")) / "config.toml"


def read_file(path: Path | None = None) -> tuple[Path, dict[str, Any] | None]:
    """The configuration file (`path`, else `config_path()`) and its tables; None when there is no
    file. A file that cannot be read or is not TOML is one line naming it (every reader of the
    configuration, `[serve]`, `[floor]` and `[overlay]` as well as this module's, reads it here)."""
    path = path or config_path()
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return path, None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AgentAssistError(f"{path}: unreadable configuration ({exc})") from None


def _table(data: dict[str, Any], name: str, known: tuple[str, ...], path: Path) -> dict[str, Any]:
    """The `[name]` table of the file (empty when absent), holding only `known` settings."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise AgentAssistError(f"{path}: [{name}] must be a table")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise AgentAssistError(f"{path}: unknown setting {name}.{unknown[0]} (known: {', '.join(known)})")
    return table


def load(path: Path | None = None) -> Config:
    path, data = read_file(path)
    if data is None:
        return Config()
    rules = _table(data, "rules", ("region", "site_packs"), path)
    region = rules.get("region", "AU")
    packs = rules.get("site_packs", [])
    paths_ok = isinstance(packs, list) and all(isinstance(p, str) for p in packs)
    if not isinstance(region, str) or not paths_ok:
        raise AgentAssistError(f"{path}: rules.region must be text and rules.site_packs a list of paths")
    live = _table(data, "live", ("agent_device", "customer_device", "end_silence_s"), path)
    devices = [live.get("agent_device"), live.get("customer_device")]
    if not all(d is None or isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool))
               for d in devices):
        raise AgentAssistError(f"{path}: live.agent_device and live.customer_device must be a device "
                               "name or number")
    devices = [None if d is None else str(d) for d in devices]
    silence = live.get("end_silence_s", 60.0)
    if isinstance(silence, bool) or not isinstance(silence, int | float) or silence < 1:
        raise AgentAssistError(f"{path}: live.end_silence_s must be a number of seconds, at least 1")
    store = _table(data, "store", ("url", "agent_id", "team", "transcript", "retain_days", "timeout_s"), path)
    for key in ("url", "agent_id", "team", "transcript"):
        if key in store and not isinstance(store[key], str):
            raise AgentAssistError(f"{path}: store.{key} must be text")
    if store.get("transcript", "excerpt") not in ("none", "excerpt", "full"):
        raise AgentAssistError(f"{path}: store.transcript must be none, excerpt or full")
    retain = store.get("retain_days")
    number = isinstance(retain, int | float) and not isinstance(retain, bool)
    if retain is not None and (not number or retain <= 0):
        raise AgentAssistError(f"{path}: store.retain_days must be a number of days above 0")
    timeout = store.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.5 <= timeout <= 600:
        raise AgentAssistError(f"{path}: store.timeout_s must be a number of seconds from 0.5 to 600")
    base = path.parent
    return Config(region=region, site_packs=tuple((base / p).expanduser() for p in packs),
                  agent_device=devices[0], customer_device=devices[1], end_silence_s=float(silence),
                  store_url=store.get("url"), agent_id=store.get("agent_id"), team=store.get("team", ""),
                  transcript=store.get("transcript", "excerpt"),
                  retain_days=float(retain) if retain is not None else None, store_timeout_s=float(timeout),
                  path=path)

"""The support line a crisis flag's review offers, and the situation it names, from the rule packs
the configuration runs: the region's support lines (prompts/regions/<region>.toml, `rules.region`)
layered with the site's packs over the default pack, as a call loads them.

A crisis flag names the rule that raised it; that rule's `support_line` is the line its card
offered the agent (1800RESPECT for family violence in the AU pack, Lifeline for self-harm). A flag
whose rule the packs no longer hold gets the region's first crisis line, said as such. The review
must still open when a site pack is broken or the region unknown: the lines then come from fewer
layers (the region alone, then the default pack), and `note` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_assist import resources
from agent_assist.config import Config
from agent_assist.errors import AgentAssistError
from agent_assist.events import FlagKind
from agent_assist.rules.engine import answers_several_crises, situation
from agent_assist.rules.packs import Pack, load_for_run


@dataclass(frozen=True)
class CrisisLines:
    region: str
    by_rule: dict[str, str] = field(default_factory=dict)  # rule id: its support line
    situations: dict[str, str] = field(default_factory=dict)  # crisis rule id: the situation it names
    fallback: str = ""  # the region's first crisis rule's line
    # crisis rules for whatever crisis the call is in (the warm transfer): their card offered the line
    # of the call's earlier crisis card (`rules.engine.crisis_line`)
    any_crisis: frozenset[str] = frozenset()
    note: str = ""  # why the lines come from fewer packs than the configuration names

    def line(self, rule: str) -> tuple[str, bool]:
        """The support line for a flag of `rule`, and whether it is that rule's own (else the
        region's crisis line, or "" when there is none)."""
        own = self.by_rule.get(rule, "")
        return (own, True) if own else (self.fallback, False)

    def situation(self, rule: str) -> str:
        """"self-harm", "family violence", "immediate danger"..., or "" when the rule answers more
        than one kind of crisis (the warm transfer) or none."""
        return self.situations.get(rule, "")


def of_pack(pack: Pack, region: str, note: str = "") -> CrisisLines:
    crisis = [r for r in pack.rules.values() if r.flag is not None and r.flag.kind == FlagKind.CRISIS]
    # what each crisis rule's card named (the warm transfer's, the call's earlier crisis: none here)
    situations = {r.id: named for r in crisis if (named := situation(r, ""))}
    return CrisisLines(
        region=region,
        by_rule={r.id: r.support_line for r in pack.rules.values() if r.support_line},
        situations=situations,
        any_crisis=frozenset(r.id for r in crisis if answers_several_crises(r)),
        fallback=next((r.support_line for r in crisis if r.support_line), ""),
        note=note,
    )


def load(config: Config) -> CrisisLines:
    """The lines of the packs `config` runs; of fewer packs (and a note why) when those cannot load."""
    region = config.region.upper()
    try:
        return of_pack(load_for_run(config.rule_packs()), region)
    except AgentAssistError as exc:
        reason = str(exc)
    path = resources.regions() / f"{config.region.lower()}.toml"
    if path.is_file():
        try:
            return of_pack(load_for_run((path,)), region,
                           f"support lines of region {region} without the site's packs ({reason})")
        except AgentAssistError:
            pass
    return of_pack(load_for_run(()), "default", f"support lines of the default pack ({reason})")

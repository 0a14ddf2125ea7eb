"""Rule packs: TOML files of prompt rules, layered (a default pack, then site packs), and linted.

A pack file holds `[[rule]]` tables (new rules) and `[[override]]` tables (changes to a rule of an
earlier pack, found by `id`: any field may change, and `enabled = false` switches it off):

    [[rule]]
    id = "acknowledge-distress"
    when = "distress >= 0.7"
    prompt = "Acknowledge what they shared before moving on."
    example = "That sounds really hard. Thank you for telling me."
    principle = "safety"
    source = "SAMHSA (2014) six principles: safety"
    priority = 60
    cooldown_s = 90
    max_per_call = 3
    rearm_s = 15          # optional: sooner again for a new moment (its condition failed in between)
    flag = { kind = "distress", severity = "low" }

Every problem is reported with its file and line, and a hint where there is one; loading stops at
nothing, so one run of the linter lists them all. Linting is loading: `rules lint` shows the
problems `load` finds, and a rule is built only from values its checks returned, so a pack that
lints clean is the pack that runs (tests/fuzz/test_fuzz_packs.py holds the two together on
generated packs). What each field may hold is `fields`; where each table is, `layout`. Every input is
bounded (`MAX_PACK_BYTES`, `fields.MAX_TEXT`, `conditions.MAX_LENGTH` and `MAX_DEPTH`), so a hostile
file is one clear problem, found at once.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from agent_assist import inputs
from agent_assist.events import FlagKind
from agent_assist.rules import conditions, fields, layout, toml_errors
from agent_assist.rules.fields import MOMENT_KINDS, ON, PRINCIPLES, Flag
from agent_assist.text import excerpt, terminal_safe

__all__ = ["MOMENT_KINDS", "ON", "PRINCIPLES", "Flag", "Pack", "Problem", "Rule", "errors", "load",
           "load_for_run", "write_example"]

#: What a site pack may not change in a crisis rule (one that raises a crisis flag): when it fires,
#: whether it does, and how soon it may again. Its words and support line are the site's to set.
CRISIS_LOCKED = ("when", "enabled", "on", "cooldown_s", "max_per_call", "flag", "rearm_s", "confirm_partials")


@dataclass(frozen=True)
class Rule:
    id: str
    when: str
    condition: conditions.Node
    prompt: str
    principle: str
    source: str
    example: str = ""
    priority: int = 50
    cooldown_s: float = 60.0
    max_per_call: int = 3
    flag: Flag | None = None
    enabled: bool = True
    support_line: str = ""
    # what a crisis card's header names ("family violence"): a crisis rule's own words for the crisis
    # it is for; empty for a rule for any crisis (the warm transfer), whose card names the call's
    # earlier crisis (`rules.engine.crisis_line`)
    situation: str = ""
    on: str = "final"  # "partial": may fire on the words heard so far in a turn (see `ON`)
    answers: tuple[str, ...] = ()  # the moments (`MOMENT_KINDS`) this rule's prompt answers
    # may fire again this long after firing, within its cooldown, once its condition has failed on a
    # customer's final turn in between (a new moment); None: the cooldown holds (`rules.engine`)
    rearm_s: float | None = None
    # with `on = "partial"`: fires on a partial only once its condition has held on this many of the
    # turn's partials running (a reading of one partial raises nothing)
    confirm_partials: int = 1
    origin: str = ""  # file:line where it was last defined or changed


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return terminal_safe(f"{self.path}:{self.line}: {self.severity}: {self.message}{hint}")


@dataclass
class Pack:
    """The rules in force after layering every file, in the order they were first defined."""

    rules: dict[str, Rule] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.enabled]


#: A pack file's largest size: the default pack is 13 KB.
MAX_PACK_BYTES = 1_000_000
_PACK_FIELDS = {"name": str, "version": int}


def _rule(values: dict[str, Any], base: Rule | None, origin: str) -> Rule:
    """A rule from checked `values` (`_check_fields`), over `base` for an override."""
    fields = {} if base is None else {f: getattr(base, f) for f in base.__dataclass_fields__}
    fields.update(values)
    fields["origin"] = origin
    return Rule(**fields)


def load(paths: Sequence[Path], pack: Pack | None = None) -> tuple[Pack, list[Problem]]:
    """Layer the pack files in `paths`, in order, onto `pack`; return it and every problem found.

    A file with problems contributes only its sound tables, so a broken site pack never removes a
    working default rule. A file that cannot be read or parsed is one problem, and the files after
    it are still read and checked.
    """
    pack = pack or Pack()
    problems: list[Problem] = []
    for path in paths:
        problems.extend(sorted(_load_file(path, pack), key=lambda p: p.line))
    return pack, problems


def _deepest_line(text: str) -> int:
    """The line where brackets nest deepest (strings aside, roughly): where to look in a file too
    deeply nested to parse."""
    depth, line, best, best_line = 0, 1, -1, 1
    for m in re.finditer(r"[\[\]{}\n]", text):
        char = m.group()
        if char == "\n":
            line += 1
        else:
            depth += 1 if char in "[{" else -1
            if depth > best:
                best, best_line = depth, line
    return best_line


def _parse(text: str, where: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        said = toml_errors.explain(exc, text)
        return None, [Problem(where, said.line, said.message, said.hint)]
    except RecursionError:
        return None, [Problem(where, _deepest_line(text), "not valid TOML: nested too deeply",
                              "a rule needs lists and tables one level deep at most")]
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        m = re.search(r"\d{100,}", text)
        line = text.count("\n", 0, m.start()) + 1 if m else 0
        return None, [Problem(where, line, f"not valid TOML: a number too long ({str(exc).split(':')[0]})")]


class _Entry(NamedTuple):
    """One `[[rule]]` or `[[override]]` table: its kind, header line, each key's line, and itself."""

    kind: str
    header: int
    line_of: dict[str, int]
    table: dict[str, Any]


def _tables(data: dict[str, Any], text: str, where: str) -> tuple[list[_Entry], list[Problem]]:
    """Each `[[rule]]` and `[[override]]` table in file order, as (kind, header line, line of each
    key, the table), and the problems with the file's shape: unknown tables, a `[pack]` that is not
    one, and rules or overrides not written one `[[…]]` table each (every such table is then left
    out, as its lines cannot be told)."""
    problems: list[Problem] = []
    tables = layout.scan(text)
    root = tables[0].keys

    def line_of(key: str) -> int:
        return root.get(key) or next((t.line for t in tables[1:] if t.path[:1] == (key,)), 1)

    for key in data:
        if key not in ("rule", "override", "pack"):
            problems.append(Problem(where, line_of(key), f"unknown table {excerpt(key)}",
                                    "tables: [pack], [[rule]], [[override]]"))
    info = data.get("pack", {})
    if not isinstance(info, dict):
        problems.append(Problem(where, line_of("pack"), "pack must be a table: [pack] with name = \"…\""))
    else:
        for key, value in info.items():
            wanted = _PACK_FIELDS.get(key)
            if wanted is None or isinstance(value, bool) or not isinstance(value, wanted):
                problems.append(Problem(where, line_of("pack"),
                                        f"[pack] {excerpt(key)} = {fields.kind_of(value)}",
                                        "[pack] holds name (text) and version (a number)"))
    # each [[rule]] and [[override]] header with the lines of its keys; keys given in a sub-table of
    # one ([rule.flag], [[rule.answers]]) are at that sub-table's header
    headers: dict[str, list[tuple[int, dict[str, int]]]] = {"rule": [], "override": []}
    current: tuple[str, dict[str, int]] | None = None
    for table in tables[1:]:
        if table.array and table.path in (("rule",), ("override",)):
            current = (table.path[0], dict(table.keys))
            headers[table.path[0]].append((table.line, current[1]))
        elif current is not None and len(table.path) >= 2 and table.path[0] == current[0]:
            current[1].setdefault(table.path[1], table.line)
        else:
            current = None
    found: list[_Entry] = []
    for kind in ("rule", "override"):
        entries = data.get(kind, [])
        if (not isinstance(entries, list) or len(headers[kind]) != len(entries)
                or not all(isinstance(e, dict) for e in entries)):
            how = "an inline list" if kind in root else "a table that is not [[…]]"
            problems.append(Problem(
                where, line_of(kind), f"{kind}s must be written as [[{kind}]] tables, one for each "
                f"{kind}; this file has {how}, and none of its {kind}s are read",
                f"start each {kind} with a line [[{kind}]]"))
            continue
        found.extend(_Entry(kind, line, lines, entry)
                     for (line, lines), entry in zip(headers[kind], entries, strict=True))
    found.sort(key=lambda e: e.header)
    return found, problems


def _load_file(path: Path, pack: Pack) -> list[Problem]:
    where = terminal_safe(path)
    try:
        text = inputs.read_text(path, MAX_PACK_BYTES)
    except inputs.InputError as exc:
        return [Problem(where, exc.line, exc.reason)]
    data, problems = _parse(text, where)
    if data is None:
        return problems
    pack.files.append(str(path))
    tables, problems = _tables(data, text, where)
    for entry_kind, header, line_of, entry in tables:
        values, issues = fields.check(entry, complete=entry_kind == "rule")
        found = [Problem(where, header if i.field is None else line_of.get(i.field, header), i.message,
                         i.hint, i.severity) for i in issues]
        rule_id = values.get("id", "")
        if entry_kind == "rule" and rule_id in pack.rules:
            found.append(
                Problem(
                    where,
                    line_of.get("id", header),
                    f"duplicate rule id {excerpt(rule_id)}",
                    f"first defined at {pack.rules[rule_id].origin}; use [[override]] to change it",
                )
            )
        if entry_kind == "override":
            if not rule_id:
                if "id" not in entry or isinstance(entry["id"], str):
                    found.append(Problem(where, header, "an override needs the id of the rule it changes"))
            elif rule_id not in pack.rules:
                near = [r for r in pack.rules if r.split("-")[0] == rule_id.split("-")[0]]
                found.append(
                    Problem(
                        where,
                        line_of.get("id", header),
                        f"override of rule {excerpt(rule_id)}, which no earlier pack defines",
                        f"did you mean {near[0]!r}?" if near else "check the id and the pack order",
                    )
                )
        base = pack.rules.get(rule_id) if entry_kind == "override" else None
        if base is not None and base.flag is not None and base.flag.kind == FlagKind.CRISIS:
            weakened = sorted(k for k in entry if k in CRISIS_LOCKED
                              and (k != "enabled" or entry[k] is False))
            if weakened:
                found.append(Problem(
                    where, line_of.get(weakened[0], header),
                    f"rule {rule_id!r} is a crisis rule: a site pack may not change its "
                    f"{' or '.join(weakened)}",
                    "crisis detection stays at the model's precision everywhere; change its prompt, "
                    "example or support line, or add a rule of your own"))
        problems.extend(found)
        if any(p.severity == "error" for p in found):
            continue
        pack.rules[rule_id] = _rule(values, base, f"{where}:{header}")
    return problems


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def load_for_run(site_packs: Sequence[Path] = ()) -> Pack:
    """The default pack with `site_packs` layered on, or one line saying what is wrong with them."""
    from agent_assist import resources
    from agent_assist.errors import AgentAssistError

    pack, problems = load([resources.default_pack(), *site_packs])
    bad = errors(problems)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise AgentAssistError(f"{bad[0]}{more}; run `agent-assist rules lint` to see them all")
    return pack


def write_example(path: Path) -> None:
    """A copy of the commented example site pack (`resources.site_example`) at `path`, to start a
    site's own pack from; never over a file that is there (one line saying so)."""
    from agent_assist import resources
    from agent_assist.errors import AgentAssistError

    text = resources.site_example().read_text(encoding="utf-8")
    try:
        with path.open("x", encoding="utf-8") as out:  # "x": fails if anything is at `path`
            out.write(text)
    except FileExistsError:
        raise AgentAssistError(f"{terminal_safe(path)} already exists; `rules init` never overwrites a "
                               "file: give another path, or move that one away") from None
    except OSError as exc:
        raise AgentAssistError(f"{terminal_safe(path)}: cannot write ({exc.strerror or exc})") from None

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
    flag = { kind = "distress", severity = "low" }

Every problem is reported with its file and line, and a hint where there is one; loading stops at
nothing, so one run of the linter lists them all.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_assist.events import FlagKind, Severity
from agent_assist.rules import conditions

PRINCIPLES = {
    "safety": "SAMHSA: safety, physical and emotional",
    "trust": "SAMHSA: trustworthiness and transparency",
    "peer-support": "SAMHSA: peer support",
    "collaboration": "SAMHSA: collaboration and mutuality",
    "choice": "SAMHSA: empowerment, voice and choice",
    "culture": "SAMHSA: cultural, historical and gender issues",
}
FLAG_KINDS = tuple(FlagKind)
SEVERITIES = tuple(Severity)
PROMPT_WORDS = 15
_FIELDS = {
    "id",
    "when",
    "prompt",
    "example",
    "principle",
    "source",
    "priority",
    "cooldown_s",
    "max_per_call",
    "flag",
    "enabled",
    "support_line",
    "on",
    "answers",
}
#: The moments a labelled call marks (data/samples/calls/*.json, `rules evaluate`), and so the
#: moments a rule may say it `answers`: a prompt from the rule counts as the answer to such a moment.
MOMENT_KINDS = ("crisis-self-harm", "crisis-violence", "crisis-danger", "distress", "grief", "escalation",
                "escalation-request")
#: When a rule is checked: on every final customer turn (and at the call's end), or also on the
#: partial transcripts of a turn still being spoken, for the moments that cannot wait for its end.
ON = ("final", "partial")
#: What a site pack may not change in a crisis rule (one that raises a crisis flag): when it fires,
#: whether it does, and how soon it may again. Its words and support line are the site's to set.
CRISIS_LOCKED = ("when", "enabled", "on", "cooldown_s", "max_per_call", "flag")
_REQUIRED = ("id", "when", "prompt", "principle", "source")


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    severity: Severity


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
    on: str = "final"  # "partial": may fire on the words heard so far in a turn (see `ON`)
    answers: tuple[str, ...] = ()  # the moments (`MOMENT_KINDS`) this rule's prompt answers
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
        return f"{self.path}:{self.line}: {self.severity}: {self.message}{hint}"


@dataclass
class Pack:
    """The rules in force after layering every file, in the order they were first defined."""

    rules: dict[str, Rule] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.enabled]


def _key_lines(text: str) -> list[tuple[str, int, dict[str, int]]]:
    """For each `[[rule]]`/`[[override]]` table: its kind, header line and each key's line."""
    tables: list[tuple[str, int, dict[str, int]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\[\s*(rule|override)\s*\]\]", line)
        if header:
            tables.append((header.group(1), number, {}))
            continue
        if re.match(r"\s*\[", line):
            tables.append(("other", number, {}))
            continue
        key = re.match(r"\s*([A-Za-z0-9_\-]+)\s*=", line)
        if key and tables:
            tables[-1][2].setdefault(key.group(1), number)
    return [t for t in tables if t[0] != "other"]


def _check_fields(
    entry: dict[str, Any], where: str, line_of: dict[str, int], header: int, *, complete: bool
) -> list[Problem]:
    problems: list[Problem] = []

    def at(key: str) -> int:
        return line_of.get(key, header)

    for key in entry:
        if key not in _FIELDS:
            near = difflib.get_close_matches(key, sorted(_FIELDS), n=1)
            problems.append(
                Problem(
                    where,
                    at(key),
                    f"unknown field {key!r}",
                    f"did you mean {near[0]!r}?" if near else f"fields: {', '.join(sorted(_FIELDS))}",
                )
            )
    if complete:
        for key in _REQUIRED:
            if not str(entry.get(key, "")).strip():
                hint = f"one of: {', '.join(PRINCIPLES)}" if key == "principle" else ""
                problems.append(Problem(where, header, f"rule {entry.get('id', '?')!r} has no {key}", hint))
    if "when" in entry:
        try:
            conditions.parse(str(entry["when"]))
        except conditions.ConditionError as exc:
            problems.append(Problem(where, at("when"), f"when, column {exc.column}: {exc}", exc.hint))
    if "principle" in entry and entry["principle"] not in PRINCIPLES:
        problems.append(
            Problem(
                where,
                at("principle"),
                f"unknown principle {entry['principle']!r}",
                f"one of: {', '.join(PRINCIPLES)}",
            )
        )
    if "prompt" in entry:
        words = len(str(entry["prompt"]).split())
        if words > PROMPT_WORDS:
            problems.append(
                Problem(
                    where,
                    at("prompt"),
                    f"prompt has {words} words; keep it to {PROMPT_WORDS}",
                    "an agent reads it in a glance",
                    "warning",
                )
            )
    for key, lo, hi, kind in (
        ("priority", 0, 100, int),
        ("cooldown_s", 0, 86400, (int, float)),
        ("max_per_call", 1, 1000, int),
    ):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
                problems.append(
                    Problem(where, at(key), f"{key} must be a number from {lo} to {hi}, not {value!r}")
                )
    if "answers" in entry:
        kinds = entry["answers"]
        if not isinstance(kinds, list) or not all(isinstance(k, str) and k in MOMENT_KINDS for k in kinds):
            problems.append(Problem(where, at("answers"), "answers must be a list of moment kinds",
                                    f"kinds: {', '.join(MOMENT_KINDS)}"))
    if "on" in entry and entry["on"] not in ON:
        problems.append(Problem(where, at("on"), f"on must be {' or '.join(repr(o) for o in ON)}, "
                                f"not {entry['on']!r}",
                                "'partial' lets a rule fire on the words heard so far in a turn"))
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        problems.append(Problem(where, at("enabled"), "enabled must be true or false"))
    if "flag" in entry:
        flag = entry["flag"]
        if (
            not isinstance(flag, dict)
            or flag.get("kind") not in FLAG_KINDS
            or flag.get("severity") not in SEVERITIES
        ):
            problems.append(
                Problem(
                    where,
                    at("flag"),
                    "flag must be { kind = …, severity = … }",
                    f"kind: {', '.join(FLAG_KINDS)}; severity: {', '.join(SEVERITIES)}",
                )
            )
    return problems


def _rule(entry: dict[str, Any], base: Rule | None, origin: str) -> Rule:
    values: dict[str, Any] = {} if base is None else {f: getattr(base, f) for f in base.__dataclass_fields__}
    values.update({k: v for k, v in entry.items() if k in _FIELDS})
    if isinstance(values.get("flag"), dict):
        values["flag"] = Flag(FlagKind(values["flag"]["kind"]), Severity(values["flag"]["severity"]))
    values["condition"] = conditions.parse(values["when"])
    values["answers"] = tuple(values.get("answers", ()))
    values["origin"] = origin
    values["cooldown_s"] = float(values.get("cooldown_s", 60.0))
    return Rule(**values)


def load(paths: Sequence[Path], pack: Pack | None = None) -> tuple[Pack, list[Problem]]:
    """Layer the pack files in `paths`, in order, onto `pack`; return it and every problem found.

    A file with problems contributes only its sound tables, so a broken site pack never removes a
    working default rule.
    """
    pack = pack or Pack()
    problems: list[Problem] = []
    for path in paths:
        problems.extend(sorted(_load_file(path, pack), key=lambda p: p.line))
    return pack, problems


def _load_file(path: Path, pack: Pack) -> list[Problem]:
    problems: list[Problem] = []
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Problem(where, 0, "no such file")]
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(where, 0, f"cannot read ({exc})")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        return [Problem(where, int(m.group(1)) if m else 0, f"not valid TOML: {exc}")]
    pack.files.append(where)
    for key in data:
        if key not in ("rule", "override", "pack"):
            problems.append(
                Problem(where, 1, f"unknown table {key!r}", "tables: [pack], [[rule]], [[override]]")
            )
    for kind in ("rule", "override"):
        if not isinstance(data.get(kind, []), list):
            problems.append(Problem(where, 1, f"{kind} must be written [[{kind}]]"))
    seen = {"rule": 0, "override": 0}
    for entry_kind, header, line_of in _key_lines(text):
        entries = data.get(entry_kind, [])
        index = seen[entry_kind]
        seen[entry_kind] += 1
        if not isinstance(entries, list) or index >= len(entries) or not isinstance(entries[index], dict):
            continue
        entry = entries[index]
        found = _check_fields(entry, where, line_of, header, complete=entry_kind == "rule")
        rule_id = str(entry.get("id", "")).strip()
        if entry_kind == "rule" and rule_id in pack.rules:
            found.append(
                Problem(
                    where,
                    line_of.get("id", header),
                    f"duplicate rule id {rule_id!r}",
                    f"first defined at {pack.rules[rule_id].origin}; use [[override]] to change it",
                )
            )
        if entry_kind == "override":
            if not rule_id:
                found.append(Problem(where, header, "an override needs the id of the rule it changes"))
            elif rule_id not in pack.rules:
                near = [r for r in pack.rules if r.split("-")[0] == rule_id.split("-")[0]]
                found.append(
                    Problem(
                        where,
                        line_of.get("id", header),
                        f"override of rule {rule_id!r}, which no earlier pack defines",
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
        pack.rules[rule_id] = _rule(entry, base, f"{where}:{header}")
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

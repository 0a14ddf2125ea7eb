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
nothing, so one run of the linter lists them all. Linting is loading: `rules lint` shows the
problems `load` finds, and a rule is built only from values its checks returned, so a pack that
lints clean is the pack that runs (tests/test_fuzz_rules.py holds the two together on generated
packs). Every input is bounded (`MAX_PACK_BYTES`, `MAX_TEXT`, `conditions.MAX_LENGTH` and
`MAX_DEPTH`), so a hostile file is one clear problem, found at once.
"""

from __future__ import annotations

import datetime
import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from agent_assist import inputs
from agent_assist.events import FlagKind, Severity
from agent_assist.rules import conditions, layout
from agent_assist.text import excerpt, terminal_safe

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
#: The longest rule id, and the longest prompt, example, source or support line, in characters.
MAX_ID = 100
MAX_TEXT = 1000
# no control character belongs in a rule's text, which is shown to agents as written: only the
# tabs and line breaks a multi-line TOML string may hold
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PACK_FIELDS = {"name": str, "version": int}


class _Bad(ValueError):
    """A field's value is wrong: what to say, and a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _kind(value: Any) -> str:
    """What a TOML value is, as a rule author would call it."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return f"the number {excerpt(value, 20)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date or time {value}"
    return excerpt(value)


def _text(name: str, limit: int, *, hint: str = "") -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"{name} must be text in quotes, not {_kind(value)}", hint)
        if len(value) > limit:
            raise _Bad(f"{name} is {len(value):,} characters long; at most {limit:,}", hint)
        control = _CONTROL.search(value)
        if control:
            raise _Bad(f"{name} holds the control character U+{ord(control.group()):04X} at character "
                       f"{control.start() + 1}", "rule text is shown to agents as it is written")
        return value
    return check


def _one_of(name: str, allowed: Sequence[str], hint: str = "") -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            what = excerpt(value) if isinstance(value, str) else _kind(value)
            raise _Bad(f"{name} must be {' or '.join(repr(a) for a in allowed)}, not {what}", hint)
        return value
    return check


def _number(name: str, lo: int, hi: int, kind: tuple[type[int] | type[float], ...]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
            shown = excerpt(value) if isinstance(value, int | float) and not isinstance(value, bool) \
                else _kind(value)
            raise _Bad(f"{name} must be a number from {lo} to {hi}, not {shown}")
        return value
    return check


def _id(value: Any) -> str:
    return _text("id", MAX_ID)(value).strip()


def _when(value: Any) -> tuple[str, conditions.Node]:
    source = _text("when", conditions.MAX_LENGTH)(value)
    try:
        return source, conditions.parse(source)
    except conditions.ConditionError as exc:
        raise _Bad(f"when, column {exc.column}: {exc}", exc.hint) from None


def _principle(value: Any) -> str:
    hint = f"one of: {', '.join(PRINCIPLES)}"
    if not isinstance(value, str):
        raise _Bad(f"principle must be text in quotes, not {_kind(value)}", hint)
    if value not in PRINCIPLES:
        raise _Bad(f"unknown principle {excerpt(value)}", hint)
    return value


def _flag(value: Any) -> Flag:
    if (not isinstance(value, dict) or set(value) != {"kind", "severity"}
            or value["kind"] not in FLAG_KINDS or value["severity"] not in SEVERITIES
            or not isinstance(value["kind"], str) or not isinstance(value["severity"], str)):
        raise _Bad("flag must be { kind = …, severity = … }",
                   f"kind: {', '.join(FLAG_KINDS)}; severity: {', '.join(SEVERITIES)}")
    return Flag(FlagKind(value["kind"]), Severity(value["severity"]))


def _answers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) and k in MOMENT_KINDS for k in value):
        raise _Bad("answers must be a list of moment kinds", f"kinds: {', '.join(MOMENT_KINDS)}")
    return tuple(value)


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("enabled must be true or false")
    return value


# Each field's check: the value as the engine uses it, or `_Bad`. A rule is built from these values
# alone, so whatever lints clean is what runs (and `load` is the linter: they cannot disagree).
_CHECKS: dict[str, Any] = {
    "id": _id,
    "when": _when,
    "prompt": _text("prompt", MAX_TEXT),
    "example": _text("example", MAX_TEXT),
    "principle": _principle,
    "source": _text("source", MAX_TEXT),
    "priority": _number("priority", 0, 100, (int,)),
    "cooldown_s": _number("cooldown_s", 0, 86400, (int, float)),
    "max_per_call": _number("max_per_call", 1, 1000, (int,)),
    "flag": _flag,
    "enabled": _enabled,
    "support_line": _text("support_line", MAX_TEXT),
    "on": _one_of("on", ON, "'partial' lets a rule fire on the words heard so far in a turn"),
    "answers": _answers,
}
assert set(_CHECKS) == _FIELDS


def _check_fields(
    entry: dict[str, Any], where: str, line_of: dict[str, int], header: int, *, complete: bool
) -> tuple[dict[str, Any], list[Problem]]:
    """The fields of one `[[rule]]` or `[[override]]` table as a `Rule` takes them, and every
    problem with them (`complete`: a new rule, which must have every required field)."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}

    def at(key: str) -> int:
        return line_of.get(key, header)

    for key, value in entry.items():
        check = _CHECKS.get(key)
        if check is None:
            near = difflib.get_close_matches(key[:40], sorted(_FIELDS), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"fields: {', '.join(sorted(_FIELDS))}"
            problems.append(Problem(where, at(key), f"unknown field {excerpt(key)}", hint))
            continue
        try:
            values[key] = check(value)
        except _Bad as exc:
            problems.append(Problem(where, at(key), str(exc), exc.hint))
    if "when" in values:
        values["when"], values["condition"] = values["when"]
    if "cooldown_s" in values:
        values["cooldown_s"] = float(values["cooldown_s"])
    if complete:
        rule_id = excerpt(values.get("id", "?"))
        for key in _REQUIRED:
            if key not in entry or (isinstance(entry[key], str) and not entry[key].strip()):
                hint = f"one of: {', '.join(PRINCIPLES)}" if key == "principle" else ""
                problems.append(Problem(where, header, f"rule {rule_id} has no {key}", hint))
    if isinstance(values.get("prompt"), str):
        words = len(values["prompt"].split())
        if words > PROMPT_WORDS:
            problems.append(Problem(where, at("prompt"), f"prompt has {words} words; keep it to "
                                    f"{PROMPT_WORDS}", "an agent reads it in a glance", "warning"))
    return values, problems


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
        m = re.search(r"line (\d+)", str(exc))
        return None, [Problem(where, int(m.group(1)) if m else 0, f"not valid TOML: {exc}")]
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
                problems.append(Problem(where, line_of("pack"), f"[pack] {excerpt(key)} = {_kind(value)}",
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
        values, found = _check_fields(entry, where, line_of, header, complete=entry_kind == "rule")
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

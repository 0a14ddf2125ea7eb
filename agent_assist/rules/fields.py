"""What each field of a rule may hold, and its value as the rules engine takes it.

`check` is the one place a `[[rule]]` or `[[override]]` table's fields are judged: it returns the
values a `Rule` is built from (a condition parsed, a flag as a `Flag`, numbers as numbers) and an
`Issue` for everything wrong, so whatever passes is exactly what the engine gets. A value of the
wrong kind (a date or a table where text belongs, a huge integer, a string of a megabyte, a
control character in a prompt) is an issue here, never a crash on a live call.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent_assist.events import FlagKind, Severity
from agent_assist.rules import conditions
from agent_assist.text import excerpt

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
FIELDS = {
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
    "situation",
    "on",
    "answers",
    "rearm_s",
    "confirm_partials",
}
#: The moments a labelled call marks (data/samples/calls/*.json, `rules evaluate`), and so the
#: moments a rule may say it `answers`: a prompt from the rule counts as the answer to such a moment.
MOMENT_KINDS = ("crisis-self-harm", "crisis-violence", "crisis-danger", "distress", "grief", "escalation",
                "escalation-request")
#: When a rule is checked: on every final customer turn (and at the call's end), or also on the
#: partial transcripts of a turn still being spoken, for the moments that cannot wait for its end.
ON = ("final", "partial")
REQUIRED = ("id", "when", "prompt", "principle", "source")


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    severity: Severity


@dataclass(frozen=True)
class Issue:
    """Something wrong with a table's fields: the field it is about (None: the table itself)."""

    field: str | None
    message: str
    hint: str = ""
    severity: str = "error"


#: The longest rule id, and the longest prompt, example, source or support line, in characters.
MAX_ID = 100
MAX_TEXT = 1000
MAX_SITUATION = 40  # a crisis card's header: a few words, in capitals, on one line
# no control character belongs in a rule's text, which is shown to agents as written: only the
# tabs and line breaks a multi-line TOML string may hold
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _Bad(ValueError):
    """A field's value is wrong: what to say, and a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def kind_of(value: Any) -> str:
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
            raise _Bad(f"{name} must be text in quotes, not {kind_of(value)}", hint)
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
            what = excerpt(value) if isinstance(value, str) else kind_of(value)
            raise _Bad(f"{name} must be {' or '.join(repr(a) for a in allowed)}, not {what}", hint)
        return value
    return check


def _number(name: str, lo: int, hi: int, kind: tuple[type[int] | type[float], ...]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
            shown = excerpt(value) if isinstance(value, int | float) and not isinstance(value, bool) \
                else kind_of(value)
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
        raise _Bad(f"principle must be text in quotes, not {kind_of(value)}", hint)
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
    "situation": _text("situation", MAX_SITUATION),
    "on": _one_of("on", ON, "'partial' lets a rule fire on the words heard so far in a turn"),
    "answers": _answers,
    "rearm_s": _number("rearm_s", 0, 86400, (int, float)),
    "confirm_partials": _number("confirm_partials", 1, 10, (int,)),
}
assert set(_CHECKS) == FIELDS


def check(entry: dict[str, Any], *, complete: bool) -> tuple[dict[str, Any], list[Issue]]:
    """The fields of one `[[rule]]` or `[[override]]` table as a `Rule` takes them, and every issue
    with them (`complete`: a new rule, which must have every required field)."""
    issues: list[Issue] = []
    values: dict[str, Any] = {}
    for key, value in entry.items():
        checker = _CHECKS.get(key)
        if checker is None:
            near = difflib.get_close_matches(key[:40], sorted(FIELDS), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"fields: {', '.join(sorted(FIELDS))}"
            issues.append(Issue(key, f"unknown field {excerpt(key)}", hint))
            continue
        try:
            values[key] = checker(value)
        except _Bad as exc:
            issues.append(Issue(key, str(exc), exc.hint))
    if "when" in values:
        values["when"], values["condition"] = values["when"]
    for key in ("cooldown_s", "rearm_s"):
        if key in values:
            values[key] = float(values[key])
    if "rearm_s" in values and values["rearm_s"] >= values.get("cooldown_s", float("inf")):
        issues.append(Issue("rearm_s", "rearm_s is not shorter than cooldown_s, so it changes nothing",
                            "rearm_s lets a rule come back sooner than its cooldown for a new moment",
                            "warning"))
    # an override that leaves `on` out keeps its rule's, which is not known here
    on = values.get("on", "final" if complete else "partial")
    if values.get("confirm_partials", 1) > 1 and on != "partial":
        issues.append(Issue("confirm_partials", "confirm_partials counts partials, but this rule fires "
                            "on finals only", 'add on = "partial", or leave confirm_partials out',
                            "warning"))
    if complete:
        rule_id = excerpt(values.get("id", "?"))
        for key in REQUIRED:
            if key not in entry or (isinstance(entry[key], str) and not entry[key].strip()):
                hint = f"one of: {', '.join(PRINCIPLES)}" if key == "principle" else ""
                issues.append(Issue(None, f"rule {rule_id} has no {key}", hint))
    if isinstance(values.get("prompt"), str):
        words = len(values["prompt"].split())
        if words > PROMPT_WORDS:
            issues.append(Issue("prompt", f"prompt has {words} words; keep it to {PROMPT_WORDS}",
                                "an agent reads it in a glance", "warning"))
    return values, issues

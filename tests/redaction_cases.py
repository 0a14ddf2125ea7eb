"""The redaction table (tests/data/redaction/): read it, run it through the redactor, count what
was removed and what was removed that should have stayed. Used by tests/test_redaction_table.py
and bench/redaction.py; the format is in tests/data/redaction/README.md."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from agent_assist.redact import CallRedactor, Redacted

TABLE = Path(__file__).resolve().parent / "data" / "redaction"
#: the day the table is read on (dates of birth are judged against it), fixed so it never ages
TODAY = date(2026, 11, 23)
CATEGORIES = ("card", "cvv", "phone", "email", "dob", "address", "account", "bank", "id", "name",
              "secret", "mixed", "neg")
_MARK = re.compile(r"\{(?:([a-z]+):)?([^{}]*)\}|<([^<>]*)>")
_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Detail:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Case:
    where: str  # file:line
    category: str
    text: str
    details: tuple[Detail, ...]
    may: tuple[tuple[int, int], ...]
    before: str = ""  # what the agent said just before, in the same call

    def value(self, d: Detail) -> str:
        return self.text[d.start : d.end]


def parse_line(line: str, where: str = "") -> Case:
    category, _, rest = (part.strip() for part in line.partition(" | "))
    if category not in CATEGORIES:
        raise ValueError(f"{where}: unknown category {category!r}")
    marked, _, before = rest.partition(" || ")
    text, details, may, at = [], [], [], 0
    length = 0
    for m in _MARK.finditer(marked):
        text.append(marked[at : m.start()])
        length += m.start() - at
        inner = m.group(2) if m.group(2) is not None else m.group(3)
        if m.group(2) is not None:
            kind = m.group(1) or category
            if kind not in CATEGORIES or kind in ("mixed", "neg"):
                raise ValueError(f"{where}: unknown kind {kind!r}")
            details.append(Detail(length, length + len(inner), kind))
        else:
            may.append((length, length + len(inner)))
        text.append(inner)
        length += len(inner)
        at = m.end()
    text.append(marked[at:])
    joined = "".join(text).strip()
    shift = len("".join(text)) - len("".join(text).lstrip())
    if category == "neg" and details:
        raise ValueError(f"{where}: a negative marks no detail")
    if category != "neg" and not details:
        raise ValueError(f"{where}: a positive case marks at least one detail")
    return Case(where, category, joined,
                tuple(Detail(d.start - shift, d.end - shift, d.kind) for d in details),
                tuple((a - shift, b - shift) for a, b in may), before.strip())


def load(name: str) -> list[Case]:
    path = TABLE / name
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            cases.append(parse_line(line, f"{name}:{number}"))
    return cases


def run(case: Case, redactor: Callable[[], CallRedactor] | None = None) -> Redacted:
    """The case's text redacted as in a call: the agent's turn first, when there is one."""
    call = redactor() if redactor else CallRedactor(today=TODAY)
    if case.before:
        call.redact(case.before, t=0.0)
    return call.redact(case.text, t=3.0)


@dataclass
class Tally:
    details: int = 0
    removed: int = 0
    kept_tokens: int = 0  # tokens that should stay
    removed_tokens: int = 0  # every token redacted (inside a detail or not)
    wrongly_removed: int = 0  # tokens redacted that should have stayed
    leaks: list[str] = field(default_factory=list)
    over: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.removed / self.details if self.details else 1.0

    @property
    def precision(self) -> float:
        return 1.0 - self.wrongly_removed / self.removed_tokens if self.removed_tokens else 1.0


def score(case: Case, result: Redacted, tally: Tally, by_kind: dict[str, Tally] | None = None) -> None:
    """Count one case: each detail is removed when every letter and digit of it is inside a
    redacted span; a token outside every detail and `<may>` span that a span touches was removed
    wrongly."""
    covered = bytearray(len(case.text))
    for s in result.spans:
        covered[s.start : s.end] = b"\x01" * (s.end - s.start)
    for d in case.details:
        gone = all(covered[i] for i in range(d.start, d.end) if case.text[i].isalnum())
        for t in (tally, by_kind[d.kind] if by_kind is not None else None):
            if t is None:
                continue
            t.details += 1
            t.removed += gone
            if not gone:
                t.leaks.append(f"{case.where}: {case.value(d)!r} in {case.text!r} -> {result.text!r}")
    for m in _TOKEN.finditer(case.text):
        a, b = m.span()
        hit = any(covered[a:b])
        if any(a < e and s < b for s, e in case.may):
            continue
        inside = any(a < d.end and d.start < b for d in case.details)
        tally.removed_tokens += hit
        if not inside:
            tally.kept_tokens += 1
            if hit:
                tally.wrongly_removed += 1
                tally.over.append(f"{case.where}: {m.group()!r} in {case.text!r} -> {result.text!r}")


def evaluate(cases: Iterable[Case],
             redactor: Callable[[], CallRedactor] | None = None) -> tuple[Tally, dict[str, Tally]]:
    """The whole table's tally, and one per category (details by their kind; wrongly removed
    words by their line's category)."""
    total, by_kind = Tally(), defaultdict(Tally)
    for case in cases:
        result = run(case, redactor)
        line = Tally()
        score(case, result, line, by_kind)
        total.details += line.details
        total.removed += line.removed
        total.leaks += line.leaks
        for t in (total, by_kind[case.category]):
            t.kept_tokens += line.kept_tokens
            t.removed_tokens += line.removed_tokens
            t.wrongly_removed += line.wrongly_removed
            t.over += line.over
    return total, dict(by_kind)

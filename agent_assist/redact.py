"""Personal details out of transcript text, before anything is written to disk.

    >>> redact("my card is 4111 1111 1111 1111 and my mobile is oh four one two 345 678").text
    'my card is [card] and my mobile is [phone]'

What is found, and how:

* **Payment cards**: 13-19 digits that pass the Luhn check, typed or spoken ("four one one one",
  "double four", "oh"), in one run or in groups. Near card words ("card", "visa", a CVV) a shorter run
  is taken too (a number read in parts, a security code).
* **Phone numbers**: Australian numbers (ten digits from 0, +61), and 8-12 digits near phone words.
* **Email addresses**, typed ("a.b@x.com") or spoken ("a dot b at x dot com").
* **Dates of birth**: a full date (day, month, year) whose year is at least 14 years ago, and any day
  and month near birth words ("born", "date of birth", "DOB").
* **Tax file numbers** (9 digits passing the TFN check, or 8-9 near "tax file"), **Medicare numbers**
  (10-11 digits passing the Medicare check, or near "medicare"), **BSB** (ddd-ddd, or 6 digits near
  "BSB") and **account numbers** (5-12 digits near "account").
* **Street addresses**: a house number, one to three capitalised names and a street type ("12a
  Wattle Street", "Unit 4/27 Smith Rd"), with the suburb, state and postcode that follow; once the
  address was asked for, names in lower case or misheard count too ("42 -mile street, Ringwood").

Spoken context carries across turns: the agent asks "can I take your card number?" and the customer's
next turns are read with that in mind (`CallRedactor`). Redaction prefers hiding too much to too
little; it cannot catch what speech-to-text garbled beyond recognition, which is one reason listening
can be paused while a card number is read out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agent_assist.events import PublicEvent, Utterance

KINDS = ("card", "phone", "email", "dob", "tfn", "medicare", "bsb", "account", "address")

_UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "nought": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 2,
    "thirty": 3,
    "forty": 4,
    "fourty": 4,
    "fifty": 5,
    "sixty": 6,
    "seventy": 7,
    "eighty": 8,
    "ninety": 9,
}
_REPEAT = {"double": 2, "triple": 3}
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        )
    )
} | {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}

# Words that say what a number nearby is. Each names a kind of context.
_CONTEXT = {
    "card": re.compile(r"\b(card|visa|master ?card|amex|american express|credit|debit|long number)\b", re.I),
    "cvv": re.compile(r"\b(cvv|cvc|ccv|security code|three digits? on the back|digits on the back)\b", re.I),
    "phone": re.compile(
        r"\b(phone|mobile|cell|landline|call me|call you back|reach me|contact number|"
        r"ring me|text me)\b",
        re.I,
    ),
    "tfn": re.compile(r"\b(tax file|tfn)\b", re.I),
    "medicare": re.compile(r"\bmedicare\b", re.I),
    "bsb": re.compile(r"\b(bsb|b s b|branch number)\b", re.I),
    "account": re.compile(r"\b(account|acct|a/c)\b", re.I),
    "address": re.compile(r"\b(address|live at|living at|where (?:do|did) you live|postcode|suburb)\b", re.I),
    "dob": re.compile(r"\b(born|birth|birthday|dob|d o b|d\.o\.b)\b", re.I),
}

_TOKEN = re.compile(r"\d+|[A-Za-z]+|[^\sA-Za-z\d]")
_GAP_OK = re.compile(r"^[\s,.\-\u2013/()]*$")  # what may sit between the groups of one spoken number

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.I)
_TLD = r"(?:com|net|org|edu|gov|au|io|co|uk|nz|info|biz|me)"
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9][\w.'-]*(?:\s+(?:dot|underscore|dash|hyphen)\s+[a-z0-9][\w'-]*|\s+\d+)*"
    rf"\s+at\s+[a-z0-9][\w-]*(?:\s*(?:\.|\bdot\b)\s*[a-z0-9][\w-]*)*\s*(?:\.|\bdot\b)\s*{_TLD}\b"
    rf"(?:\s*(?:\.|\bdot\b)\s*{_TLD}\b)?",
    re.I,
)

_NUMBER_WORD = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-](?:one|two|three|"
    r"four|five|six|seven|eight|nine))?|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
)
_STREET_TYPE = (
    r"(?i:street|st|road|rd|avenue|ave|drive|dr|court|ct|place|pl|lane|ln|crescent|cres|"
    r"parade|pde|boulevard|blvd|way|terrace|tce|highway|hwy|close|grove|circuit|cct|square|"
    r"esplanade|rise|row|walk|mews|loop|track|promenade)"
)
_STATE = r"(?:NSW|VIC|QLD|SA|WA|TAS|NT|ACT|New South Wales|Victoria|Queensland|Tasmania)"
_ADDRESS = re.compile(
    r"\b(?:(?i:unit|apartment|apt|flat|suite|level|lot)\s+(?:\w+,?\s+)?)?"
    # a partial transcript may put a full stop after the number ("Unit 5 31. Lark Street")
    rf"(?:\d+[A-Za-z]?(?:\s*[/-]\s*\d+[A-Za-z]?)?|(?i:{_NUMBER_WORD}))[.,]?\s+"
    rf"(?:[A-Z][\w'-]*\s+){{1,3}}{_STREET_TYPE}\b\.?"
    rf"(?:,?\s+(?:[A-Z][a-zA-Z'-]+\s*){{1,3}}(?:,?\s*{_STATE})?(?:,?\s*\d{{4}})?)?"
)

# After the agent asks for the address, speech-to-text's lower-case or misheard names still count
_ADDRESS_ASKED = re.compile(
    rf"\b(?:\d+[A-Za-z]?(?:\s*[/-]\s*\d+[A-Za-z]?)?|(?i:{_NUMBER_WORD}))[.,]?\s+(?:[\w'-]+\s+){{1,3}}"
    rf"{_STREET_TYPE}\b\.?(?:,?\s+(?:[A-Z][a-zA-Z'-]+\s*){{1,3}}(?:,?\s*{_STATE})?(?:,?\s*\d{{4}})?)?"
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?|(?:twenty|thirty)[\s-](?:first|second|third|fourth|fifth|sixth|"
    r"seventh|eighth|ninth)|" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + ")"
)
_YEAR = (
    r"(?:\d{4}|'\d\d|(?:nineteen|twenty)[\s-](?:" + _NUMBER_WORD + r"|hundred)|"
    r"two thousand(?:\s+and)?(?:[\s-]" + _NUMBER_WORD + r")?)"
)
_DATE_DMY = re.compile(
    rf"\b(?:the\s+)?(?P<day>{_DAY})\s+(?:of\s+)?(?P<month>{_MONTH})\b\.?"
    rf"(?:,?\s+(?P<year>{_YEAR}))?",
    re.I,
)
_DATE_MDY = re.compile(
    rf"\b(?P<month>{_MONTH})\.?\s+(?:the\s+)?(?P<day>{_DAY})\b(?:,?\s+(?P<year>{_YEAR}))?", re.I
)
_DATE_NUMERIC = re.compile(
    r"\b(?P<day>\d{1,2})\s*[/.-]\s*(?P<month>\d{1,2})\s*[/.-]\s*(?P<year>\d{4}|\d{2})\b"
)


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
    """Redact one piece of text. `context` names kinds of number the conversation was just about
    ("card", "phone", …), as `CallRedactor` carries them from turn to turn."""
    if not text:
        return Redacted(text)
    today = today or date.today()
    found = set(context)
    spans: list[Span] = []
    spans += [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    spans += _spoken_emails(text)
    spans += [Span(m.start(), m.end(), "address") for m in _ADDRESS.finditer(text)]
    if "address" in found or "address" in contexts(text):
        spans += [Span(m.start(), m.end(), "address") for m in _ADDRESS_ASKED.finditer(text)]
    spans += _dates(text, "dob" in found or "dob" in contexts(text), today)
    taken = _merge(spans)
    spans += [s for s in _numbers(text, found) if not any(_overlaps(s, t) for t in taken)]
    merged = _merge(spans)
    out, at = [], 0
    for s in merged:
        out.append(text[at : s.start])
        out.append(f"[{s.kind}]")
        at = s.end
    out.append(text[at:])
    return Redacted("".join(out), tuple(merged))


def _spoken_emails(text: str) -> list[Span]:
    """Searched only around each " at ", so a long text costs linear time."""
    spans = []
    for at in re.finditer(r"\bat\b", text, re.I):
        lo = max(0, at.start() - 80)
        for m in _SPOKEN_EMAIL.finditer(text[lo : at.end() + 120]):
            if m.start() + lo < at.start() < m.end() + lo:
                spans.append(Span(m.start() + lo, m.end() + lo, "email"))
    return spans


def contexts(text: str) -> set[str]:
    """The kinds of number `text` talks about."""
    return {kind for kind, pattern in _CONTEXT.items() if pattern.search(text)}


@dataclass
class CallRedactor:
    """Redacts a call's turns in order, carrying what the last turns talked about ("what's your card
    number?") into the next ones for `carry_s` seconds of call time."""

    carry_s: float = 30.0
    today: date | None = None
    _recent: list[tuple[float, set[str]]] = field(default_factory=list)

    def carried(self, t: float) -> set[str]:
        """What the last turns (within `carry_s` of call time `t`) talked about."""
        recent = [(at, kinds) for at, kinds in self._recent if t - at <= self.carry_s][-2:]
        return set().union(*(kinds for _, kinds in recent)) if recent else set()

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
            return redact(value, context, self.today).text if value else value
        if isinstance(value, dict):
            return {key: self._quoted(item, context) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._quoted(item, context) for item in value)
        return value

    def redact(self, text: str, t: float = 0.0) -> Redacted:
        """Redact the next turn (in call order) and remember what it talks about."""
        self._recent = [(at, kinds) for at, kinds in self._recent if t - at <= self.carry_s][-2:]
        result = redact(text, self.carried(t), self.today)
        own = contexts(text)
        if own:
            self._recent.append((t, own))
        return result


def redact_words(words: Sequence[str], redacted: Redacted) -> list[str]:
    """The words of a transcript (joined by single spaces into the text that was redacted), each
    replaced by `[kind]` where it overlaps a redacted span."""
    out, at = [], 0
    for word in words:
        start, end = at, at + len(word)
        at = end + 1
        hit = next((s for s in redacted.spans if s.start < end and start < s.end), None)
        out.append(f"[{hit.kind}]" if hit else word)
    return out


# ------------------------------------------------------------------------------------------------
# Numbers, typed or spoken


@dataclass
class _Group:
    start: int
    end: int
    digits: str


def _groups(text: str) -> list[list[_Group]]:
    """Runs of number groups: digits and number words, with only spaces and light punctuation
    between them. "four one one one, double one" is one run of groups 4,1,1,1,11."""
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
    runs: list[list[_Group]] = []
    run: list[_Group] = []
    i = 0
    pending_repeat: tuple[int, int] | None = None  # "double" waiting for its digit
    while i < len(tokens):
        start, end, tok = tokens[i]
        low = tok.lower()
        group: _Group | None = None
        if tok.isdigit():
            group = _Group(start, end, tok)
        elif low in _UNITS and (low not in ("o", "oh") or _numeric_near(tokens, i)):
            group = _Group(start, end, str(_UNITS[low]))
        elif low in _TEENS:
            group = _Group(start, end, str(_TEENS[low]))
        elif low in _TENS:
            nxt = _next_word(tokens, i)
            if (
                nxt is not None
                and tokens[nxt][2].lower() in _UNITS
                and tokens[nxt][2].lower() not in ("o", "oh")
                and _GAP_OK.match(text[end : tokens[nxt][0]])
                and "," not in text[end : tokens[nxt][0]]
            ):
                group = _Group(start, tokens[nxt][1], f"{_TENS[low]}{_UNITS[tokens[nxt][2].lower()]}")
                i = nxt
            else:
                group = _Group(start, end, f"{_TENS[low]}0")
        elif low in ("hundred", "thousand") and run:
            group = _Group(start, end, "00" if low == "hundred" else "000")
        elif low in _REPEAT and _numeric_near(tokens, i, before=False):
            pending_repeat = (start, _REPEAT[low])
            i += 1
            continue
        if group is not None:
            if pending_repeat is not None:
                group = _Group(pending_repeat[0], group.end, group.digits * pending_repeat[1])
                pending_repeat = None
            if run and not _GAP_OK.match(text[run[-1].end : group.start]):
                runs.append(run)
                run = []
            run.append(group)
        elif not _GAP_OK.match(tok):
            if run:
                runs.append(run)
            run, pending_repeat = [], None
        i += 1
    if run:
        runs.append(run)
    return runs


def _next_word(tokens: list[tuple[int, int, str]], i: int) -> int | None:
    j = i + 1
    while j < len(tokens) and tokens[j][2] in ("-",):
        j += 1
    return j if j < len(tokens) else None


def _is_numeric(tok: str, strict: bool = True) -> bool:
    low = tok.lower()
    return (
        tok.isdigit()
        or low in _TEENS
        or low in _TENS
        or low in _REPEAT
        or (low in _UNITS and (not strict or low not in ("o", "oh")))
    )


def _numeric_near(tokens: list[tuple[int, int, str]], i: int, before: bool = True) -> bool:
    """Whether a number sits next to token i (so "oh" is a zero, "double" a repeat)."""
    for j in [i - 1, i + 1] if before else [i + 1]:
        k = j
        while 0 <= k < len(tokens) and tokens[k][2] in ("-", ","):
            k += -1 if k < i else 1
        if 0 <= k < len(tokens) and _is_numeric(tokens[k][2], strict=False):
            return True
    return False


def _numbers(text: str, found: set[str]) -> list[Span]:
    spans: list[Span] = []
    for run in _groups(text):
        near = text[max(0, run[0].start - 60) : run[0].start] + " " + text[run[-1].end : run[-1].end + 20]
        spans += _classify_run(text, run, found | contexts(near))
    return spans


def _classify_run(text: str, run: list[_Group], found: set[str]) -> list[Span]:
    """The whole run if it is one detail; otherwise the longest token-aligned parts that are."""
    kind = _classify(text, run, found)
    if kind:
        return [_span(text, run, kind)]
    out: list[Span] = []
    i = 0
    while i < len(run):
        longest, width = i, 0  # nothing worth finding is longer than 19 digits
        while longest < len(run) and width + len(run[longest].digits) <= 19:
            width += len(run[longest].digits)
            longest += 1
        for j in range(longest, i, -1):
            if j - i == len(run):
                continue
            kind = _classify(text, run[i:j], found)
            if kind:
                out.append(_span(text, run[i:j], kind))
                i = j
                break
        else:
            i += 1
    return out


def _span(text: str, run: list[_Group], kind: str) -> Span:
    start, end = run[0].start, run[-1].end
    while start > 0 and text[start - 1] in "+(":  # "+61 …", "(02) …"
        start -= 1
    return Span(start, end, kind)


def _classify(text: str, run: list[_Group], found: set[str]) -> str | None:
    digits = "".join(g.digits for g in run)
    n = len(digits)
    raw = text[run[0].start : run[-1].end]
    plus = run[0].start > 0 and text[run[0].start - 1] == "+"
    if 13 <= n <= 19 and luhn(digits):
        return "card"
    if plus and 8 <= n <= 15:
        return "phone"
    if (n == 10 and digits[0] == "0" and digits[1] in "234578") or (n == 11 and digits.startswith("61")):
        return "phone"
    if "card" in found and 6 <= n <= 19:
        return "card"
    if "cvv" in found and 3 <= n <= 4:
        return "card"
    if "tfn" in found and n in (8, 9):
        return "tfn"
    if "medicare" in found and 9 <= n <= 11:
        return "medicare"
    if n in (10, 11) and digits[0] in "23456" and medicare(digits):
        return "medicare"
    if "phone" in found and 8 <= n <= 12:
        return "phone"
    if n == 9 and tfn(digits):
        return "tfn"
    if n == 6 and ("bsb" in found or re.fullmatch(r"\d{3}\s*-\s*\d{3}", raw)):
        return "bsb"
    if "account" in found and 5 <= n <= 12:
        return "account"
    return None


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def tfn(digits: str) -> bool:
    """The Australian tax file number check (9 digits)."""
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    return len(digits) == 9 and sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def medicare(digits: str) -> bool:
    """The Medicare card number check: the ninth digit from the first eight."""
    if len(digits) not in (10, 11) or digits[0] not in "23456":
        return False
    weights = (1, 3, 7, 9, 1, 3, 7, 9)
    return sum(int(d) * w for d, w in zip(digits[:8], weights, strict=True)) % 10 == int(digits[8])


# ------------------------------------------------------------------------------------------------
# Dates


def _dates(text: str, birth_context: bool, today: date) -> list[Span]:
    spans: list[Span] = []
    for pattern in (_DATE_NUMERIC, _DATE_DMY, _DATE_MDY):
        for m in pattern.finditer(text):
            year = _year(m.group("year")) if m.group("year") else None
            if pattern is _DATE_NUMERIC and not (
                1 <= int(m.group("day")) <= 31 and 1 <= int(m.group("month")) <= 31
            ):
                continue
            old_enough = year is not None and 1900 <= year <= today.year - 14
            if birth_context or old_enough:
                spans.append(Span(m.start(), m.end(), "dob"))
    if birth_context:  # a year of birth on its own ("born in 1985")
        spans += [Span(m.start(), m.end(), "dob") for m in re.finditer(r"\b(?:19|20)\d\d\b", text)]
    return spans


def _year(text: str) -> int | None:
    text = text.lower().strip()
    if text.isdigit():
        value = int(text)
        if len(text) == 2:
            return 1900 + value if value > 30 else 2000 + value
        return value
    if text.startswith("'"):
        value = int(text[1:])
        return 1900 + value if value > 30 else 2000 + value
    words = re.split(r"[\s-]+", text.replace(" and ", " "))
    if words[:2] == ["two", "thousand"]:
        rest = words[2:]
        return 2000 + (_words_value(rest) or 0)
    if words[0] in ("nineteen", "twenty") and len(words) > 1:
        century = 19 if words[0] == "nineteen" else 20
        if words[1] == "hundred":
            return century * 100
        rest_value = _words_value(words[1:])
        return century * 100 + rest_value if rest_value is not None else None
    return None


def _words_value(words: list[str]) -> int | None:
    if not words:
        return None
    if len(words) == 1:
        w = words[0]
        if w in _UNITS:
            return _UNITS[w]
        if w in _TEENS:
            return _TEENS[w]
        if w in _TENS:
            return _TENS[w] * 10
        return None
    if words[0] in _TENS and words[1] in _UNITS:
        return _TENS[words[0]] * 10 + _UNITS[words[1]]
    return None


# ------------------------------------------------------------------------------------------------


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


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

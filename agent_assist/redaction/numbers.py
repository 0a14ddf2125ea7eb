"""Numbers typed or read out, and codes of letters and digits, and what each one is.

A *run* is what someone reads out as one number: digits and number words ("four one one one,
1111", "forty one eleven", "double four", "oh four one two"), the words speech-to-text writes for
a digit among others ("four won one", "for to too ate"), with fillers ("um") and corrections ("no
sorry") between the digits, and spelled letters and codes ("q q one two", "GB29 NWBK", "SW1A").

A run is a detail when:
- it is long: 13 digits or more (a card, whether or not it passes Luhn), or 7 to 12 (a phone, an
  account, an id: nothing harmless on a call is that long, except amounts, which say so: "$",
  "dollars", "twelve thousand", "1,250,000", and business numbers like 1800 …);
- it was read digit by digit, five digits or more ("four five six seven eight"): people read
  out identifiers that way, never amounts;
- the words around it say what it is (a security code after "CVV", a BSB, a postcode, a PIN);
- or its shape says so (ddd-ddd, dd-dd-dd, an IBAN that passes its check, an NI number, a
  postcode, an Irish Eircode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent_assist.redaction.reading import Reading, Token

# between the digits of one number read out
_SEPARATORS = frozenset(",-\u2013\u2014./()")
_ORDINAL_OR_TIME = re.compile(r"\d+(?:st|nd|rd|th|am|pm|s)", re.I)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"\d+\.\d{1,2}")
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_BSB = re.compile(r"\d{3}\s*-\s*\d{3}")
_SORT_CODE = re.compile(r"\d{2}\s*-\s*\d{2}\s*-\s*\d{2}")

_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_NI = re.compile(r"[A-Z]{2}\d{6}[A-D]")
_UK_POSTCODE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}")
_EIRCODE = re.compile(r"(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[AC-FHKNPRTV-Y0-9]{4}")
_CA_POSTCODE = re.compile(r"[A-Z]\d[A-Z]\d[A-Z]\d")
_PPS = re.compile(r"\d{7}[A-W][A-IW]?")
_CRN = re.compile(r"\d{9}[A-Z]")

#: kinds a context word can give a number, most specific first
_BY_CONTEXT = ("tfn", "medicare", "bsb", "sort_code", "iban", "id", "account", "phone")


@dataclass(slots=True)
class Item:
    """One number word, digit group, letter or code inside a run."""

    first: int  # token indices
    last: int
    value: str  # its digits, or its letters in upper case
    single: bool = False  # one digit (or one repeated digit) read alone
    spoken: bool = False
    scale: bool = False  # "hundred", "thousand": an amount
    letters: bool = False  # a letter or a code, not only digits
    homophone: bool = False


@dataclass
class Run:
    items: list[Item] = field(default_factory=list)
    prefix: int | None = None  # the token of a "+" or "plus" before it

    @property
    def first(self) -> int:
        return self.prefix if self.prefix is not None else self.items[0].first

    @property
    def last(self) -> int:
        return self.items[-1].last


@dataclass(frozen=True)
class Found:
    first: int  # token indices
    last: int
    kind: str


def find(r: Reading) -> list[Found]:
    """Every run in the turn that is a detail (tokens a detector before took are left alone)."""
    out = []
    for run in _runs(r):
        lenient = bool(r.near(run.first, run.last) & {"cvv", "secret"})
        for part in _homophones_checked(run, lenient):
            kind = classify(r, part)
            if kind:
                out.append(Found(part.first, part.last, kind))
    return out


# -- runs


def _runs(r: Reading) -> list[Run]:
    lex, tokens = r.lex, r.tokens
    runs: list[Run] = []
    run = Run()
    i = 0
    while i < len(tokens):
        item = _item(r, i) if not r.taken[i] else None
        if item is None:
            if run.items:
                runs.append(run)
                run = Run()
            i += 1
            continue
        if not run.items:
            before = i - 1
            if before >= 0 and tokens[before].key in ("+", "plus") and not r.taken[before]:
                run.prefix = before
        run.items.append(item)
        # what may follow inside the same number: separators, fillers, a correction
        j, gap_words = item.last + 1, 0
        while j < len(tokens) and not r.taken[j]:
            t = tokens[j]
            if not t.word and t.text in _SEPARATORS:
                j += 1
            elif t.word and (t.key in lex.fillers or t.key in lex.corrections or t.key == "apostrophe") \
                    and gap_words < 3 and _item(r, j) is None:
                gap_words += 1
                j += 1
            else:
                break
        if j < len(tokens) and not r.taken[j] and _item(r, j) is not None:
            i = j
            continue
        runs.append(run)
        run = Run()
        i = item.last + 1
    if run.items:
        runs.append(run)
    return runs


def _joins(tokens: list[Token], last: int, nxt: int) -> bool:
    """Whether only separators (no sentence end) lie between two items."""
    return all(not tokens[k].word and tokens[k].text in _SEPARATORS for k in range(last + 1, nxt))


def _item(r: Reading, i: int) -> Item | None:
    """The number word, digits, letter or code starting at token i, or None."""
    lex, t = r.lex, r.tokens[i]
    if not t.word or (r.context_word(r.word_of[i]) and lex.number_word(t.key)):
        return None  # "the last eight", "three digits on the back": words about a number
    key = t.key
    if t.digits:
        return Item(i, i, t.text, single=len(t.text) == 1)
    if not t.text.isalpha() and any(c.isdigit() for c in t.text):
        if _ORDINAL_OR_TIME.fullmatch(t.text):
            return None
        return Item(i, i, t.low.upper(), letters=True)
    if key in lex.units:
        if key in ("o", "oh") and not _numeric_beside(r, i):
            return _letter(r, i) if key == "o" else None
        return _spoken(r, i)
    if key in lex.teens or key in lex.tens:
        return _spoken(r, i)
    if key in lex.repeat:
        j = _next(r, i)
        if j is None:
            return None
        nxt = r.tokens[j]
        if nxt.key in lex.units or (nxt.digits and len(nxt.text) == 1):
            digit = nxt.text if nxt.digits else str(lex.units[nxt.key])
            return Item(i, j, digit * lex.repeat[key], single=True, spoken=True)
        return None
    if key in lex.homophones:
        return Item(i, i, str(lex.homophones[key]), single=True, spoken=True, homophone=True)
    return _letter(r, i)


def _letter(r: Reading, i: int) -> Item | None:
    """A letter spelled out ("q q one two …", "S-M-I-T-H"), or a short group of capitals beside
    digits ("GB29 NWBK 6016"). "a" and "I" count only between other letters or digits."""
    t = r.tokens[i]
    glued = i + 1 < len(r.tokens) and r.tokens[i + 1].text == "-" and r.tokens[i + 1].start == t.end
    if t.key in r.lex.labels and not glued:  # "CVV 123" is a label; "ACC-00912477" is the number
        return None
    if len(t.text) == 1 and t.text.isalpha():
        if t.low in ("a", "i"):
            before, after = r.prev_word(i), _next(r, i)
            follows = after is not None and _itemish(r, r.tokens[after])
            ends = after is None or i + 1 >= len(r.tokens) or r.tokens[i + 1].text in ".,"
            leads = t.text.isupper() and follows  # "A B C 1 2 3", "I E 2 9"
            if not (leads or (before is not None and _itemish(r, r.tokens[before]) and (follows or ends))):
                return None
        return Item(i, i, t.text.upper(), letters=True)
    if 2 <= len(t.text) <= 4 and t.text.isupper() and t.text.isalpha() and t.low not in r.lex.common:
        for j in (r.prev_word(i), _next(r, i)):
            if j is not None and (r.tokens[j].digits or r.lex.number_word(r.tokens[j].key)
                                  or any(c.isdigit() for c in r.tokens[j].text)):
                return Item(i, i, t.text, letters=True)
    return None


def _itemish(r: Reading, t: Token) -> bool:
    """Whether a token is a digit, a number word, a letter or a code (what "a" may sit among)."""
    return t.word and (len(t.text) == 1 or any(c.isdigit() for c in t.text) or r.lex.number_word(t.key))


def _next(r: Reading, i: int) -> int | None:
    """The next word after token i, across a hyphen or comma only."""
    j = i + 1
    while j < len(r.tokens) and r.tokens[j].text in ("-", ",") and j - i < 3:
        j += 1
    return j if j < len(r.tokens) and r.tokens[j].word else None


def _numeric_beside(r: Reading, i: int) -> bool:
    """Whether a number sits next to token i (so "oh" is a zero)."""
    lex = r.lex
    for j in (r.prev_word(i), _next(r, i)):
        if j is None:
            continue
        t = r.tokens[j]
        if t.digits or lex.number_word(t.key) or t.key in lex.repeat:
            return True
    return False


def _small(r: Reading, i: int) -> tuple[int, str, int] | None:
    """A number under 100 said in words at token i: (value, its digits as read, last token)."""
    lex, key = r.lex, r.tokens[i].key
    if key in lex.units:
        return lex.units[key], str(lex.units[key]), i
    if key in lex.teens:
        return lex.teens[key], str(lex.teens[key]), i
    if key in lex.tens:
        j = _next(r, i)
        if j is not None and r.tokens[j].key in lex.units and r.tokens[j].key not in ("o", "oh", "nil") \
                and "," not in r.text[r.tokens[i].end : r.tokens[j].start]:
            value = lex.tens[key] * 10 + lex.units[r.tokens[j].key]
            return value, str(value), j
        return lex.tens[key] * 10, str(lex.tens[key] * 10), i
    return None


def _spoken(r: Reading, i: int) -> Item | None:
    """A number in words: "four" (a digit), "forty two", "nineteen", or an amount with a scale
    word ("four hundred and twelve", "two thousand and five", "sixty two thousand")."""
    small = _small(r, i)
    if small is None:
        return None
    value, digits, last = small
    lex = r.lex
    j = _next(r, last)
    if j is None or r.tokens[j].key not in lex.scale:
        single = len(digits) == 1
        return Item(i, last, digits, single=single, spoken=True)
    total = 0
    while j is not None and r.tokens[j].key in lex.scale:
        word = r.tokens[j].key
        value *= 100 if word == "hundred" else 1000
        last = j
        k = _next(r, last)
        if k is not None and r.tokens[k].key == "and":
            k = _next(r, k)
        rest = _small(r, k) if k is not None else None
        if word == "hundred":
            if rest is not None:
                value += rest[0]
                last = rest[2]
        else:
            total += value
            value = 0
            if rest is not None:
                value, last = rest[0], rest[2]
                after = _next(r, last)
                if after is not None and r.tokens[after].key == "hundred":
                    j = after
                    continue
        j = _next(r, last)
    total += value
    return Item(i, last, str(total), spoken=True, scale=True)


def _homophones_checked(run: Run, lenient: bool) -> list[Run]:
    """A digit homophone ("for", "to", "won", "ate") counts as a digit among digits read one by
    one: in a stretch of four or more single digits with a real one among them ("four won won
    won"), between two real ones ("oh four to two"), or leading or ending three real ones. After
    "security code?" (`lenient`) a short code of homophones alone counts ("too for ate").
    Elsewhere it is the word, and splits the run."""
    items = run.items
    if not any(it.homophone for it in items):
        return [run]
    keep = [not it.homophone for it in items]
    p = 0
    while p < len(items):  # stretches of single digits, homophones included
        if not items[p].single:
            p += 1
            continue
        q = p
        while q < len(items) and items[q].single:
            q += 1
        real = sum(not items[x].homophone for x in range(p, q))
        if (q - p >= 4 and real >= 1) or (lenient and 3 <= q - p <= 4):
            for x in range(p, q):
                keep[x] = True
        else:
            for x in range(p, q):
                if items[x].homophone:
                    inner = x > p and x + 1 < q and not items[x - 1].homophone and not items[x + 1].homophone
                    leading = x == p and x + 3 < q and all(not items[y].homophone
                                                           for y in (x + 1, x + 2, x + 3))
                    trailing = x + 1 == q and x - 3 >= p and all(not items[y].homophone
                                                                 for y in (x - 1, x - 2, x - 3))
                    keep[x] = inner or leading or trailing
        p = q
    out, current = [], Run(prefix=run.prefix)
    for it, kept in zip(items, keep, strict=True):
        if kept:
            current.items.append(it)
        elif current.items:
            out.append(current)
            current = Run()
        else:
            current = Run()
    if current.items:
        out.append(current)
    return out


# -- what a run is


def classify(r: Reading, run: Run) -> str | None:
    items = run.items
    text = r.text
    start, end = r.tokens[items[0].first].start, r.tokens[items[-1].last].end
    raw = text[start:end]
    # this turn's own words first ("… and my mobile is 0412 …" after the agent asked for the card)
    context = r.said_near(run.first, run.last) or set(r.carried)
    identifying = context & {"card", "cvv", "account", "bsb", "sort_code", "tfn", "medicare", "id", "secret",
                             "phone", "dob", "address", "iban"}
    w0 = r.word_of[run.first]
    if not identifying and any(r.word(w).key in r.lex.not_personal_before for w in range(max(0, w0 - 3), w0)):
        return None  # "the model number is 55UM7300", "flight 401", "error code 0x8007"
    if any(r.word(w).key in r.lex.expiry for w in range(max(0, w0 - 2), w0)):
        return None  # a card's expiry ("exp 03/28") is not its number
    if any(it.letters for it in items):
        return _code(run, context)
    digits = "".join(it.value for it in items)
    n = len(digits)
    if _amount(r, run, raw, strong="bsb" not in context):
        return None
    if len(items) == 2 and ("-" in raw or "/" in raw) and len(items[0].value) == 4 \
            and 1900 <= int(items[0].value) <= 2099 and (len(items[1].value) == 2 or (
                len(items[1].value) == 4 and 1900 <= int(items[1].value) <= 2099)):
        return None  # a span of years: "2019-2020", "2021/22"
    international = run.prefix is not None or (digits.startswith("00") and n >= 10 and items[0].spoken)
    if international and 8 <= n <= 15:
        return "phone"
    if n >= 13:
        if (n <= 19 and luhn(digits)) or "card" in context or "cvv" in context:
            return "card"
        for kind in _BY_CONTEXT:
            if kind in context:
                return kind
        return "number"
    if "cvv" in context and 3 <= n <= 4:
        return "card"
    if "secret" in context and 4 <= n <= 8 and "card" not in context:
        return "secret"
    if "dob" in context and 4 <= n <= 8 and _date_like(items, digits):
        return "dob"
    part = n == 4 and (len(items) == 1 or all(it.single for it in items))
    if "card" in context and (n >= 6 or part):
        return "card"  # a card read in parts: "four five six four", then "two three one two"
    if "tfn" in context and n in (8, 9):
        return "tfn"
    if "medicare" in context and 9 <= n <= 11:
        return "medicare"
    if "bsb" in context and n in (5, 6):  # "oh six two, triple oh"; "sixty two thousand"
        return "bsb"
    if "sort_code" in context and n in (6, 8, 9):
        return "sort_code"
    if "id" in context and n >= 5:
        return "id"
    if "account" in context and n >= 5:
        return "account"
    if "phone" in context and (n >= 6 or (part and (digits[0] == "0" or items[0].single))):
        return "phone"  # or its first part: "oh four one two", then "three four five …"
    if "address" in context and n in (4, 5):
        return "address"
    if "iban" in context and n >= 6:
        return "iban"
    if n >= 7:
        shape = _by_shape(digits, raw, r)
        return "number" if shape is None else shape or None
    if n == 6 and _BSB.fullmatch(raw):
        return "bsb"
    if n == 6 and _SORT_CODE.fullmatch(raw):
        return "sort_code"
    if n >= 5 and sum(it.single for it in items) >= 5:
        return "number"
    return None


def _by_shape(digits: str, raw: str, r: Reading) -> str | None:
    n = len(digits)
    if digits.startswith(r.lex.service_prefixes) or (n == 6 and digits.startswith("13")):
        return ""  # a business's or a helpline's number
    if _SSN.fullmatch(raw):
        return "id"
    if n == 9 and tfn(digits):
        return "tfn"
    if n in (10, 11) and medicare(digits):
        return "medicare"
    if (n in (10, 11) and digits[0] == "0") or (n == 10 and digits[0] in "23456789") \
            or (n == 11 and (digits[:2] in ("61", "44", "64") or digits[0] == "1")) \
            or (n == 12 and digits[:3] == "353") or n == 8:
        return "phone"
    return None


def _date_like(items: list[Item], digits: str) -> bool:
    """Whether a run read after "date of birth" could be one: a year, or day, month and year."""
    n = len(digits)
    if len(items) == 3:  # "3 3 72", "twenty one, six, ninety"
        return True
    if n == 4:
        return 1900 <= int(digits) <= 2099
    return n in (5, 6, 7, 8)


def _amount(r: Reading, run: Run, raw: str, strong: bool) -> bool:
    """Whether the run is an amount or a quantity: "$1,250", "1,234.56", "40 minutes"; and
    unless the words near it ask for a number (`strong` is False), "twelve thousand"."""
    if _priced(r, run) or _THOUSANDS.fullmatch(raw) or _DECIMAL.fullmatch(raw):
        return True
    return strong and any(it.scale for it in run.items)


def _priced(r: Reading, run: Run) -> bool:
    lex = r.lex
    first = run.items[0].first
    if first > 0:
        before = r.tokens[first - 1]
        if before.text in lex.currency_before or before.key in lex.currency_before:
            return True
    nxt = r.next_word(run.last, limit=0)
    if nxt is not None and nxt - run.last <= 2 and r.tokens[nxt].key in lex.units_after:
        return True
    return run.last + 1 < len(r.tokens) and r.tokens[run.last + 1].text == "%"


def _code(run: Run, context: set[str]) -> str | None:
    """A run with letters in it: a code, a postcode, an IBAN, or a name spelled out."""
    compact = "".join(it.value for it in run.items)
    digits = sum(c.isdigit() for c in compact)
    letters = len(compact) - digits
    if digits == 0:  # spelled out: "S M I T H", "N-G-U-Y-E-N"
        real = sum(1 for it in run.items if it.value not in ("A", "I"))
        if real >= 3 and len(run.items) >= 4 and all(len(it.value) == 1 for it in run.items):
            return "email" if "email" in context and "name" not in context else "name"
        if "name" in context and len(run.items) >= 2 and all(len(it.value) == 1 for it in run.items):
            return "name"
        if "iban" in context and _BIC.fullmatch(compact):
            return "iban"
        return None
    if _IBAN.fullmatch(compact) and iban(compact):
        return "iban"
    if "iban" in context and (_IBAN.fullmatch(compact) or _BIC.fullmatch(compact)):
        return "iban"
    if _NI.fullmatch(compact) or _PPS.fullmatch(compact) or _CRN.fullmatch(compact):
        return "id"
    if _UK_POSTCODE.fullmatch(compact) or _CA_POSTCODE.fullmatch(compact):
        return "address"
    if _EIRCODE.fullmatch(compact) and letters >= 2:
        return "address"
    for kind in ("secret", "id", "account", "card", "bsb", "sort_code", "medicare", "tfn", "phone",
                 "address"):
        if kind in context and len(compact) >= 5 and digits >= 2:
            return "account" if kind in ("card", "bsb", "sort_code") else kind
    if "id" in context and len(compact) >= 4 and digits >= 1 and letters >= 1:
        return "id"  # a registration plate
    if digits >= 6 and len(compact) >= 7:
        return "number"
    if digits >= 5 and letters >= 1 and len(compact) >= 6 and sum(it.single for it in run.items) >= 5:
        return "number"
    return None


# -- checks


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


def iban(code: str) -> bool:
    """The IBAN check (ISO 13616): the rearranged code, letters as numbers, mod 97 is 1."""
    moved = code[4:] + code[:4]
    remainder = 0
    for ch in moved:
        for d in str(int(ch, 36)):
            remainder = (remainder * 10 + int(d)) % 97
    return remainder == 1

"""Dates of birth, however they are said: "the 12th of March 1985", "March the third, nineteen
seventy-two", "1972, the 3rd of September" (year first), "three March 1972" (a cardinal day),
"the fifth of the sixth, eighty-one", "12/03/1985", "1990-06-21".

A date is a date of birth when the words near it say so ("born", "date of birth", or the agent
asking for it just before), or when it is a whole date at least 14 years ago (nobody on a call
reads out the full date of something else that long ago). A year or a month alone counts after
"born" ("born in 1968", "born in March"). Dates read as bare numbers ("oh three oh nine
seventy-two") are runs of digits, which `numbers` reads with the same context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_assist.redaction.reading import Reading

_NUMERIC = re.compile(
    r"(?<![\w/.-])(?:(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})|(\d{4})([/.-])(\d{1,2})\6(\d{1,2}))(?![\w/-]|\.\d)"
)
_DAY_DIGITS = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?", re.I)


@dataclass(frozen=True)
class DateFound:
    first: int  # token indices
    last: int
    day: int | None
    month: int | None
    year: int | None


def find(r: Reading) -> list[tuple[int, int]]:
    """(first, last) tokens of each date of birth."""
    out = []
    for d in _numeric(r) + _spoken(r):
        if not r.free(d.first, d.last):
            continue
        whole = d.day is not None and d.month is not None and d.year is not None
        partial = (d.day is None) + (d.month is None) + (d.year is None) >= 2
        # a month or a year alone ("born in March") only with "born" in the same turn
        said = r.said_near(d.first, d.last, after=6) if partial else r.near(d.first, d.last, after=6)
        birth = "dob" in said
        old = d.year is not None and 1900 <= d.year <= r.today.year - 14
        if birth or (whole and old):
            r.take(d.first, d.last)
            out.append((d.first, d.last))
    return out


def _numeric(r: Reading) -> list[DateFound]:
    out = []
    starts = {t.start: i for i, t in enumerate(r.tokens)}
    ends = {t.end: i for i, t in enumerate(r.tokens)}
    for m in _NUMERIC.finditer(r.text):
        if m.group(1):
            a, b, y = int(m.group(1)), int(m.group(3)), _year_digits(m.group(4))
            day, month = (a, b) if b <= 12 else (b, a)
        else:
            y, month, day = int(m.group(5)), int(m.group(7)), int(m.group(8))
        if not (1 <= day <= 31 and 1 <= month <= 12) or y is None:
            continue
        first, last = starts.get(m.start()), ends.get(m.end())
        if first is not None and last is not None and not _inside_number(r, first, last):
            out.append(DateFound(first, last, day, month, y))
    return out


def _inside_number(r: Reading, first: int, last: int) -> bool:
    """Whether digits sit right beside tokens first..last with only spaces between (or commas, for
    a date shape without a four-digit year): a date shape inside a longer number read out in
    groups ("00000 01-1-00 0", "000, 01-01-00, 0000"), which the numbers take whole."""
    prev, next_ = first - 1, last + 1
    if len(r.tokens[first].text) <= 2 and len(r.tokens[last].text) <= 2:  # no four-digit year
        while prev >= 0 and r.tokens[prev].text == ",":
            prev -= 1
        while next_ < len(r.tokens) and r.tokens[next_].text == ",":
            next_ += 1
    before = r.tokens[prev] if prev >= 0 else None
    after = r.tokens[next_] if next_ < len(r.tokens) else None
    start, end = r.tokens[first].start, r.tokens[last].end

    def glued(gap: str) -> bool:  # whitespace, and the commas skipped above
        return not gap.replace(",", "").strip()

    glued_before = before is not None and before.digits and glued(r.text[before.end : start])
    glued_after = after is not None and after.digits and glued(r.text[end : after.start])
    return bool(glued_before or glued_after)


def _year_digits(text: str) -> int | None:
    value = int(text)
    if len(text) == 2:
        return 1900 + value if value > 30 else 2000 + value
    return value if 1000 <= value <= 2999 else None


def _spoken(r: Reading) -> list[DateFound]:
    """Dates around each month name, and "the fifth of the sixth"."""
    out = []
    lex, tokens = r.lex, r.tokens
    for w, ti in enumerate(r.words):
        t = tokens[ti]
        month = lex.months.get(t.key)
        if month is not None:
            found = _around_month(r, w, month)
            if found is not None:
                out.append(found)
        elif t.key == "of" and w + 2 < len(r.words) and r.word(w + 1).key == "the":
            found = _ordinal_month(r, w)
            if found is not None:
                out.append(found)
    return out


def _around_month(r: Reading, w: int, month: int) -> DateFound | None:
    """DAY [of] MONTH [YEAR], MONTH [the] DAY [YEAR], YEAR [the] DAY of MONTH, MONTH YEAR, or the
    month alone (a date of birth only after "born")."""
    lex = r.lex
    first = last = r.words[w]
    day = year = None
    # before: [the] DAY [of] MONTH
    k = w - 1
    if k >= 0 and r.word(k).key == "of":
        k -= 1
    got = _day_ending(r, k)
    if got is not None and not _punctuation_between(r, k, w):
        day, k0 = got
        first = r.words[k0]
        if k0 - 1 >= 0 and r.word(k0 - 1).key == "the":
            first = r.words[k0 - 1]
            k0 -= 1
        # year first: "1972, the 3rd of September"
        got_year = _year_ending(r, k0 - 1)
        if got_year is not None:
            year, y0 = got_year
            first = r.words[y0]
    # after: MONTH [the] DAY
    k = w + 1
    if day is None:
        if k < len(r.words) and r.word(k).key == "the":
            k += 1
        got = _day_starting(r, k)
        if got is not None:
            day, k = got[0], got[1] + 1
            last = r.words[got[1]]
            got_year = _year_ending(r, w - 1)  # "nineteen seventy two, September the third"
            if got_year is not None and year is None:
                year, y0 = got_year
                first = r.words[y0]
    # then: [,] YEAR
    if year is None and k < len(r.words):
        got_year = _year_starting(r, k, short=day is not None)
        if got_year is not None:
            year, k1 = got_year
            last = r.words[k1]
    if day is None and year is None and r.word(w).key in lex.ambiguous_months and not r.word(w).capitalised:
        return None
    if day is None and year is None and r.word(w).key == "may":
        return None
    return DateFound(first, last, day, month, year)


def _punctuation_between(r: Reading, w0: int, w1: int) -> bool:
    """Whether a comma or a full stop lies between two words ("two, September" is not a day and
    its month; "14-Feb" is)."""
    between = range(r.words[w0] + 1, r.words[w1])
    return any(not r.tokens[x].word and r.tokens[x].text not in "-/" for x in between)


def _ordinal_month(r: Reading, w: int) -> DateFound | None:
    """ "the fifth of the sixth, eighty-one", "the 1st of the 4th 1960" (w is "of")."""
    got = _day_ending(r, w - 1)
    month_got = _day_starting(r, w + 2, ordinal_only=True)
    if got is None or month_got is None or not 1 <= month_got[0] <= 12:
        return None
    day, k0 = got
    first = r.words[k0 - 1] if k0 > 0 and r.word(k0 - 1).key == "the" else r.words[k0]
    last_w = month_got[1]
    year = None
    got_year = _year_starting(r, last_w + 1, short=True)
    if got_year is not None:
        year, last_w = got_year
    return DateFound(first, r.words[last_w], day, month_got[0], year)


def _day_value(r: Reading, w: int, ordinal_only: bool = False) -> int | None:
    t = r.word(w)
    m = _DAY_DIGITS.fullmatch(t.text)
    if m:
        if ordinal_only and t.text.isdigit():
            return None
        value = int(m.group(1))
        return value if 1 <= value <= 31 else None
    if t.key in r.lex.ordinals:
        return r.lex.ordinals[t.key]
    if not ordinal_only and r.lex.units.get(t.key, 0) > 0:
        return r.lex.units[t.key]
    if not ordinal_only and t.key in r.lex.teens:
        return r.lex.teens[t.key]
    return None


def _day_starting(r: Reading, w: int, ordinal_only: bool = False) -> tuple[int, int] | None:
    """A day said from word w on: (its value, its last word)."""
    if w >= len(r.words):
        return None
    t = r.word(w)
    if t.key in ("twenty", "thirty") and w + 1 < len(r.words):
        nxt = r.word(w + 1)
        tens = r.lex.tens[t.key] * 10
        if nxt.key in r.lex.ordinals and r.lex.ordinals[nxt.key] < 10:
            value = tens + r.lex.ordinals[nxt.key]
            return (value, w + 1) if value <= 31 else None
        if not ordinal_only and nxt.key in r.lex.units and r.lex.units[nxt.key] > 0:
            value = tens + r.lex.units[nxt.key]
            return (value, w + 1) if value <= 31 else None
    if t.key in ("twentieth", "thirtieth"):
        return r.lex.ordinals[t.key], w
    day = _day_value(r, w, ordinal_only)
    return (day, w) if day is not None else None


def _day_ending(r: Reading, w: int) -> tuple[int, int] | None:
    """A day said ending at word w: (its value, its first word)."""
    if w < 0:
        return None
    if w >= 1 and r.word(w - 1).key in ("twenty", "thirty"):
        got = _day_starting(r, w - 1)
        if got is not None and got[1] == w:
            return got[0], w - 1
    value = _day_value(r, w)
    return (value, w) if value is not None else None


def _year_starting(r: Reading, w: int, short: bool) -> tuple[int, int] | None:
    """A year said from word w on: "1972", "'72", "72" (after a day: `short`), "nineteen
    seventy two", "two thousand and one", "twenty twenty", "seventy-four"."""
    if w >= len(r.words):
        return None
    lex = r.lex
    t = r.word(w)
    ti = r.words[w]
    if t.digits:
        if len(t.text) == 4 and 1900 <= int(t.text) <= 2099:
            return int(t.text), w
        if len(t.text) == 2 and (short or (ti > 0 and r.tokens[ti - 1].text == "'")):
            return _year_digits(t.text), w  # type: ignore[return-value]
        return None
    if t.key == "nineteen" or t.key == "twenty":
        century = 1900 if t.key == "nineteen" else 2000
        got = _two_digits(r, w + 1)
        if got is not None:
            return century + got[0], got[1]
        if t.key == "twenty" and w + 1 < len(r.words) and r.word(w + 1).key in ("twenty", "thirty"):
            return 2000 + lex.tens[r.word(w + 1).key] * 10, w + 1
        return None
    if t.key == "two" and w + 1 < len(r.words) and r.word(w + 1).key == "thousand":
        k = w + 2
        if k < len(r.words) and r.word(k).key == "and":
            k += 1
        got = _two_digits(r, k, any_number=True)
        if got is not None:
            return 2000 + got[0], got[1]
        return 2000, w + 1
    if short:
        got = _two_digits(r, w, any_number=True)
        if got is not None and got[0] >= 10:
            return (1900 + got[0] if got[0] > 30 else 2000 + got[0]), got[1]
    return None


def _two_digits(r: Reading, w: int, any_number: bool = False) -> tuple[int, int] | None:
    """The last two digits of a year in words: "seventy two", "oh five", "fifteen", "eighty"."""
    if w >= len(r.words):
        return None
    lex = r.lex
    t = r.word(w)
    if t.key in ("oh", "o", "zero") and w + 1 < len(r.words) and r.word(w + 1).key in lex.units:
        return lex.units[r.word(w + 1).key], w + 1
    if t.key in lex.teens:
        return lex.teens[t.key], w
    if t.key in lex.tens:
        if w + 1 < len(r.words) and r.word(w + 1).key in lex.units and r.word(w + 1).key not in ("o", "oh"):
            return lex.tens[t.key] * 10 + lex.units[r.word(w + 1).key], w + 1
        return lex.tens[t.key] * 10, w
    if any_number and t.key in lex.units and t.key not in ("o", "oh"):
        return lex.units[t.key], w
    return None


def _year_ending(r: Reading, w: int) -> tuple[int, int] | None:
    """A year said ending at word w (a comma before the date): (year, its first word)."""
    for back in (3, 2, 1, 0):
        k = w - back
        if k < 0:
            continue
        got = _year_starting(r, k, short=False)
        if got is not None and got[1] == w:
            return got[0], k
    return None

"""Where someone lives or gets their post: street addresses, PO boxes, and a suburb with its state
and postcode, in the styles of Australia, New Zealand, the UK, Ireland and the US.

A street is a house number (typed or said: "12a", "4/27", "forty two", "eight to ten"), one to
four words of name, and a street type ("Street", "rd", "Crescent"), with what comes before
("Unit 4", "Flat 3,", "Level 2,") and after it (the suburb or town, a state or county, a
postcode, a UK postcode or an Eircode). Speech-to-text writes names in lower case and mishears
them ("42 -mile street", "43 What All Street"), so:
- with a house number, a lower-case name counts if it is not an everyday word;
- once the address was asked for, any words count;
- without a house number, a capitalised street counts after "I live on", "moved to" or when the
  address was asked for.
Street types that are everyday words ("drive", "walk", "place") need a capitalised name or the
address to have been asked for ("a ten minute drive" is kept).
"""

from __future__ import annotations

import re

from agent_assist.redaction.reading import Reading, Token

_HOUSE = re.compile(r"\d{1,5}[A-Za-z]?")
_POSTCODE_CODE = re.compile(
    r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}|(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[AC-FHKNPRTV-Y0-9]{4}|[A-Z]\d[A-Z]\d[A-Z]\d"
)
_SENTENCE_END = frozenset(".?!;")
_FUNCTION = frozenset(["the", "a", "an", "and", "or", "to", "on", "in", "at", "of", "for", "from", "is",
                       "was", "it", "i", "my", "we", "you", "that", "this", "but", "so", "if", "with", "by"])


def find(r: Reading) -> list[tuple[int, int]]:
    out = []
    for found in (*_po_boxes(r), *_streets(r), *_localities(r)):
        if found is not None and r.free(*found):
            r.take(*found)
            out.append(found)
    return out


# -- PO boxes


def _po_boxes(r: Reading) -> list[tuple[int, int]]:
    out = []
    for w0, w1, _ in r.find(r.lex.po_box):
        number = _number_from(r, r.words[w1] + 1)
        if number is None:
            continue
        out.append((r.words[w0], _locality_after(r, number, strong=True)))
    return out


def _number_from(r: Reading, i: int) -> int | None:
    """The last token of a number starting at the first word at or after token i."""
    while i < len(r.tokens) and not r.tokens[i].word and r.tokens[i].text in ",.#":
        i += 1
    if i >= len(r.tokens):
        return None
    t = r.tokens[i]
    if _HOUSE.fullmatch(t.text):
        return i
    last = None
    j = i
    while j < len(r.tokens) and j - i < 8:
        t = r.tokens[j]
        if t.word and (r.lex.number_word(t.key) or t.key in ("hundred", "double", "triple")):
            last = j
        elif t.text != "-":
            break
        j += 1
    return last


# -- streets


def _streets(r: Reading) -> list[tuple[int, int] | None]:
    lex = r.lex
    out: list[tuple[int, int] | None] = []
    for w, ti in enumerate(r.words):
        t = r.tokens[ti]
        if t.key not in lex.street_types and t.key not in lex.weak_street_types:
            continue
        out.append(_street_at(r, w))
    return out


def _street_at(r: Reading, w: int) -> tuple[int, int] | None:
    """The street whose type is word w: (first token, last token), or None. A house number is
    looked for before one to four words of name; without one, a capitalised name counts after
    "I live on" or once the address was asked for."""
    lex = r.lex
    kind_token = r.word(w)
    asked = "address" in r.near(r.words[w], r.words[w], before=20)
    weak = kind_token.key in lex.weak_street_types and kind_token.key not in lex.street_types
    unnumbered = None
    for names in range(1, 5):
        k = w - names
        if k < 0:
            break
        name = r.word(k)
        numbered = _house_number_ending(r, r.words[k] - 1) is not None
        if not _street_name(r, name, asked or (numbered and not weak), before_type=names == 1):
            break
        if r.words[k + 1] - r.words[k] > 1 and any(
                r.tokens[x].text not in ("-", "'", ".") for x in range(r.words[k] + 1, r.words[k + 1])):
            break  # a comma or a full stop inside a street's name
        capitalised = name.capitalised or kind_token.capitalised
        if weak and not (capitalised or asked):
            continue
        start = _house_number_ending(r, r.words[k] - 1)
        if start is not None:
            return _unit_before(r, start), _street_end(r, w)
        if unnumbered is None and capitalised and (asked or _residence_before(r, r.words[k])):
            unnumbered = r.words[k]
    return (unnumbered, _street_end(r, w)) if unnumbered is not None else None


def _street_end(r: Reading, w: int) -> int:
    last = r.words[w]
    if last + 1 < len(r.tokens) and r.tokens[last + 1].text == ".":
        last += 1  # "Smith St.", or a partial's full stop
    return _locality_after(r, last, strong=True)


def _street_name(r: Reading, t: Token, loose: bool, before_type: bool) -> bool:
    """Whether t can be a word of a street's name: capitalised, or not an everyday word, or any
    word but a function word once the address was asked for or after a house number (`loose`:
    "10 high street", "43 what all street")."""
    if not t.word:
        return False
    if t.digits:
        return False
    if re.fullmatch(r"\d+(?:st|nd|rd|th)", t.text, re.I):
        return True  # "57th Street"
    if not t.letters:
        return False
    if t.key == "the" and before_type:
        return True  # "7 the Avenue"
    if t.key in _FUNCTION:
        return loose and t.capitalised
    if t.capitalised or loose:
        return not r.lex.number_word(t.key) or t.capitalised
    return t.key not in r.lex.common and not r.lex.number_word(t.key)


def _residence_before(r: Reading, i: int) -> bool:
    """Whether "I live on", "moved to" … ends just before token i."""
    w = r.word_of[i]
    for back in (2, 3, 1):
        k = w - back
        if k >= 0:
            got = r.phrase_at(r.lex.residence, k)
            if got is not None and got[0] == w - 1:
                return True
    return False


def _house_number_ending(r: Reading, i: int) -> int | None:
    """The first token of a house number ending at token i (skipping a "." or "," a partial
    transcript put after it, and a "-" before a misheard name): "12a", "4/27", "8-10", "forty
    two", "eight to ten", "No. 5"."""
    while i >= 0 and r.tokens[i].text in (".", ",", "-"):
        i -= 1
    if i < 0 or not r.tokens[i].word:
        return None
    t = r.tokens[i]
    lex = r.lex
    if _HOUSE.fullmatch(t.text):
        first = i
    elif lex.number_word(t.key) and t.key not in ("o", "oh"):
        first = i
        while first - 1 >= 0 and first > i - 5:
            p = r.tokens[first - 1]
            if p.word and (lex.number_word(p.key) or p.key == "hundred") and p.key not in ("o", "oh"):
                first -= 1
            elif p.key == "and" and first - 2 >= 0 and r.tokens[first - 2].key == "hundred":
                first -= 1  # "one hundred and four"
            elif p.text == "-" and first - 2 >= 0 and lex.number_word(r.tokens[first - 2].key):
                first -= 2
            else:
                break
    else:
        return None
    # "4/27", "8-10", "eight to ten"
    if (first - 2 >= 0 and r.tokens[first - 1].text in ("/", "-")) or (
            first - 2 >= 0 and r.tokens[first - 1].key == "to"):
        before = r.tokens[first - 2]
        if _HOUSE.fullmatch(before.text) or lex.number_word(before.key):
            first -= 2
    return first


def _unit_before(r: Reading, i: int) -> int:
    """Extend a street back from its house number (token i) over "Unit 4/27", "Unit 5 31.",
    "Flat 3,", "level 2,", "lot seven,", "Flat 12, Tower Block C,"."""
    lex, tokens = r.lex, r.tokens
    best, j = i, i - 1
    while j >= 0 and i - j < 12:
        t = tokens[j]
        if t.text in (",", "."):
            j -= 1
        elif t.key in lex.unit_words:
            best = j
            j -= 1
        elif t.word and j - 1 >= 0 and tokens[j - 1].key in lex.unit_words and (
                _HOUSE.fullmatch(t.text) or lex.number_word(t.key)
                or (len(t.text) <= 3 and t.text[:1].isupper())):
            best = j - 1
            j -= 2
        elif t.word and t.capitalised and t.letters and t.key not in lex.not_names:
            j -= 1  # "Tower" of "Tower Block C": kept only if a unit word comes before it
        else:
            break
    return best


# -- what follows a street: suburb, state, postcode


def _locality_after(r: Reading, i: int, strong: bool) -> int:
    """The last token of the suburb, state, county and postcode after token i (or i). Capitalised
    words are the suburb; everyday words ("Box Hill") and lower-case ones ("ringwood") only when
    a state or postcode follows, or the turn ends there."""
    lex, tokens = r.lex, r.tokens
    asked = "address" in r.near(i, i, before=20)
    last = i
    pending: int | None = None  # words kept if a state or postcode follows
    words = 0
    j = i + 1
    while j < len(tokens) and j - i < 16 and not r.taken[j]:
        t = tokens[j]
        if not t.word:
            if t.text in (",", "-"):
                j += 1
                continue
            break
        w = r.word_of[j]
        state = r.phrase_at(lex.states, w)
        if state is not None:
            last, pending = r.words[state[0]], None
            j = last + 1
            continue
        us = r.phrase_at(lex.us_states, w)
        if us is not None:
            after = r.words[us[0]] + 1
            while after < len(tokens) and tokens[after].text == ",":
                after += 1
            if after < len(tokens) and tokens[after].digits and len(tokens[after].text) == 5:
                return after
            if us[0] > w or len(t.text) > 2:  # a state's name, not a two-letter abbreviation
                last, pending = r.words[us[0]], None
                j = last + 1
                continue
        if t.digits and len(t.text) in (4, 5):
            nxt = j + 1
            if nxt < len(tokens) and tokens[nxt].digits:
                break  # "12 Elm Street, 0412 345 678": a phone number, not a postcode
            return j
        if ((t.digits and len(t.text) <= 2) or lex.number_word(t.key)) and (pending is not None or last > i):
            pending = j  # a postal district: "Dublin 6", "dublin six"
            j += 1
            continue
        code = _postcode_code(r, j)
        if code is not None:
            return code
        spoken = _spoken_postcode(r, j)
        if spoken is not None:
            return spoken
        if t.key in lex.directions and j == last + 1 and t.text.isupper():
            last = j
        elif t.key in lex.unit_words:
            number = _number_from(r, j + 1)
            if number is None or number - j > 3:
                break
            last = j = number
        elif t.key in lex.regions and j + 1 < len(tokens):
            county = r.next_word(j)
            if county is None or not tokens[county].capitalised:
                break
            last = j = county
        elif t.key == "in" and words == 0 and j + 1 < len(tokens) and tokens[j + 1].capitalised:
            j += 1
            continue
        elif t.letters and words < 4 and t.key not in lex.not_names and not lex.number_word(t.key):
            words += 1
            if t.capitalised and t.key not in lex.common:
                last, pending = j, None
            elif t.capitalised or asked or t.key not in lex.common:
                pending = j
            else:
                break
        else:
            break
        j += 1
    if pending is not None and (j >= len(tokens) or _sentence_end(r, j)):
        last = pending
    return last


def _sentence_end(r: Reading, j: int) -> bool:
    """Whether token j ends a sentence: a full stop with a space or nothing after it (not the dot
    of "lucy.chan@…")."""
    t = r.tokens[j]
    return t.text in _SENTENCE_END and not r.taken[j] and (
        j + 1 >= len(r.tokens) or r.tokens[j + 1].start > t.end)


def _postcode_code(r: Reading, j: int) -> int | None:
    """A typed UK postcode, Eircode or Canadian postal code at token j ("NW1 6XE", "P31 X2Y3")."""
    tokens = r.tokens
    spelled = _spelled_postcode(r, j)
    if spelled is not None:
        return spelled
    if not any(c.isdigit() for c in tokens[j].text):
        return None
    compact = tokens[j].text.upper()
    if _POSTCODE_CODE.fullmatch(compact):
        return j
    k = j + 1
    if k < len(tokens) and tokens[k].word and len(tokens[k].text) <= 4 \
            and _POSTCODE_CODE.fullmatch(compact + tokens[k].text.upper()):
        return k
    return None


def _spelled_postcode(r: Reading, j: int) -> int | None:
    """A UK postcode or Eircode read out letter by letter ("n w one six x e", "s w one a, one a
    a"): the longest that matches, within eight tokens."""
    lex, tokens = r.lex, r.tokens
    compact, best, k = "", None, j
    while k < len(tokens) and k - j < 12 and len(compact) < 8:
        t = tokens[k]
        if t.text in (",", "-"):
            k += 1
            continue
        if not t.word:
            break
        if t.key in lex.units and t.key not in ("o",) and len(t.text) > 1:
            compact += str(lex.units[t.key])
        elif len(t.text) <= 4 and t.text.isalnum():
            compact += t.text.upper()
        else:
            break
        if len(compact) >= 5 and _POSTCODE_CODE.fullmatch(compact):
            best = k
        k += 1
    return best if best is not None and best > j else None


def _spoken_postcode(r: Reading, j: int) -> int | None:
    """Four digits said one by one ("three one three four")."""
    lex, tokens = r.lex, r.tokens
    k, count = j, 0
    while k < len(tokens) and count < 4:
        t = tokens[k]
        if t.word and t.key in lex.units and (t.key not in ("o",)):
            count += 1
            k += 1
        elif t.text in (",", "-") and count:
            k += 1
        else:
            break
    if count == 4:
        return k - 1 if tokens[k - 1].word else k - 2
    return None


def _localities(r: Reading) -> list[tuple[int, int] | None]:
    """A suburb with its state and postcode, no street: "Parramatta NSW 2150", "Fitzroy,
    Victoria, 3065", "Springfield, IL 62704"."""
    lex, tokens = r.lex, r.tokens
    out: list[tuple[int, int] | None] = []
    for w0, w1, _ in r.find(lex.states):
        state_first, state_last = r.words[w0], r.words[w1]
        after = _locality_after(r, state_last, strong=True)
        has_postcode = after > state_last and any(tokens[x].digits or lex.units.get(tokens[x].key) is not None
                                                  for x in range(state_last + 1, after + 1))
        if not has_postcode and "address" not in r.near(state_first, state_last):
            continue
        out.append((locality_before(r, state_first), after))
    return out


def locality_before(r: Reading, i: int) -> int:
    """Extend a postcode or a state back over the suburb, town and street before it: up to three
    comma-separated groups of capitalised words and house numbers ("2 Rose Cottage, Mill Lane,
    Little Snoring, NR21 0HX"), or lower-case words once the address was asked for."""
    lex, tokens = r.lex, r.tokens
    asked = "address" in r.near(i, i)
    first, j, groups = i, i - 1, 0
    while j >= 0 and i - j < 16 and groups < 4:
        t = tokens[j]
        if t.text == ",":
            groups += 1
            j -= 1
            continue
        if r.taken[j] or not t.word or t.key in lex.not_names or r.context_word(r.word_of[j]):
            break
        if t.letters and (t.capitalised or (asked and t.key not in lex.common)):
            first = j
        elif _HOUSE.fullmatch(t.text) and first == j + 1 and tokens[first].capitalised:
            first = j  # "2 Rose Cottage"
        else:
            break
        j -= 1
    return first

"""Names people give, and the secrets they read out.

A name is taken where someone says who they are or whose account it is: after "my name is",
"surname is", "call me", "in the name of" (in lower case too: speech-to-text writes "my name is
john smith"); after "this is", "I'm", "spoke to", "Hi" only when it is capitalised ("This is
Tom Baker", "I'm Kate", not "I'm calling"); after a title ("Mr Smith", "Mrs. O'Brien"); before
"speaking" or "here" ("Sarah here"); and in the answer to the agent's "who am I speaking with?".
Up to three words, stopping at an everyday word. A name spelled out ("S-M-I-T-H") is a run of
letters, found with the numbers.

Speech-to-text often writes a given name in lower case (Moonshine's "this is grace", "hey, tilly";
Whisper's too), so after those weaker cues, and after "okay," or "thanks," with a pause after
("okay, grace, …"), a lower-case word is taken when it is a known given name (given_names.txt,
from US Census and SSA counts, without the names people use as everyday words or slang): one that
is no English word anywhere ("this is tilly speaking"), one that is ("grace", "jack", "mark") only
before a pause or the end ("this is grace." but not "grace period", "this is mark my words"), and
after "it's" only one that is no word ("it's tilly", not "it's ruby red"). A lower-case surname
after it is taken only when it is a known name too (nothing tells "this is grace miller" from
"thanks tilly appreciate it" but the list).

A secret is the word or two after "the password is", "my PIN is", "the answer to the security
question is", "my mother's maiden name is" (a PIN read as digits is a number after "PIN").
"""

from __future__ import annotations

from agent_assist.redaction.reading import Reading, Token


def find_names(r: Reading) -> list[tuple[int, int]]:
    lex, tokens = r.lex, r.tokens
    found: list[tuple[int, int]] = []
    for _, w1, _ in r.find(lex.introduce):
        found += _name_after(r, w1 + 1, strong=True)
    for _, w1, _ in r.find(lex.introduce_capitalised):
        found += _name_after(r, w1 + 1, strong=False)
    for _, w1, label in r.find(lex.introduce_known):
        found += _known_after(r, w1 + 1, words_ok=label == "known")
    found += _spoken_to(r)
    for w, ti in enumerate(r.words):
        t = tokens[ti]
        if t.key in lex.honorifics and w + 1 < len(r.words):
            strong = t.key not in ("doctor", "sir", "miss")
            got = _name_after(r, w + 1, strong=strong, cap_only=t.key == "sir")
            if got:
                found.append((ti, got[0][1]))
        elif t.key in lex.name_after and w > 0 and not _sentence_between(r, w - 1, w):
            start = w
            while start - 1 >= 0 and w - start < 3 and _capitalised_name(r, r.word(start - 1)) \
                    and not _sentence_between(r, start - 1, start):
                start -= 1
            if start < w:
                found.append((r.words[start], r.words[w - 1]))
    if "name" in r.carried:
        found += _answer(r)
    out = []
    for first, last in found:
        if r.free(first, last):
            r.take(first, last)
            out.append((first, last))
    return out


def _name_after(r: Reading, w: int, strong: bool, cap_only: bool = False) -> list[tuple[int, int]]:
    """Up to three name words from word w on (the first in lower case too when `strong`)."""
    first = last = None
    k = w
    while k < len(r.words) and k - w < 4:
        t = r.word(k)
        if first is not None and _sentence_between(r, k - 1, k, hyphen_ok=True):
            break
        particle = first is not None and t.key in r.lex.particles and k + 1 < len(r.words) \
            and r.word(k + 1).capitalised  # "Van der Berg", "de la Cruz"
        if not particle and not _name_word(r, t, strong and first is None and not cap_only, first is not None,
                                           cap_only or (first is not None and r.tokens[first].capitalised)):
            break
        if first is None:
            first = r.words[k]
        last = r.words[k]
        k += 1
    return [(first, last)] if first is not None and last is not None else []


def _known_after(r: Reading, w: int, words_ok: bool) -> list[tuple[int, int]]:
    """Known given names in lower case from word w on (up to three: "grace miller"): taken when
    one is no English word, or they end before a pause, and no word of a company or a place follows
    ("this is harper valley national bank")."""
    last = w - 1
    while last + 1 < len(r.words) and last + 1 - w < 3 and _known(r, last + 1, words_ok) \
            and (last < w or not _sentence_between(r, last, last + 1, hyphen_ok=True)):
        last += 1
    if last < w:
        return []
    after = r.word(last + 1).key if last + 1 < len(r.words) else ""
    if after in r.lex.organisation and not _pause_after(r, last):
        return []
    if not (_pause_after(r, last) or any(r.word(k).key in r.lex.given_names for k in range(w, last + 1))):
        return []
    return [(r.words[w], r.words[last])]


def _known(r: Reading, w: int, words_ok: bool) -> bool:
    """Whether word w is a lower-case given name of given_names.txt (one that is also an English
    word only when `words_ok`)."""
    if w >= len(r.words):
        return False
    t, lex = r.word(w), r.lex
    if t.capitalised or t.key != t.low or t.key in lex.common or t.key in lex.not_names \
            or t.key in lex.fillers or t.key in lex.months or t.key in lex.endearments or w in r.markers:
        return False
    return t.key in lex.given_names or (words_ok and t.key in lex.given_name_words)


def _pause_after(r: Reading, w: int) -> bool:
    """Whether word w ends the turn or a clause (a comma, a full stop, a question mark …), or
    "speaking", "here" or "calling" follow it ("this is jack speaking")."""
    i = r.words[w] + 1
    return i >= len(r.tokens) or r.tokens[i].text in ".,?!;:\u2026" or r.tokens[i].key in r.lex.name_after


def _spoken_to(r: Reading) -> list[tuple[int, int]]:
    """A known given name spoken to: after "okay," or "thanks," and before a pause or the end
    ("okay, grace, let me look", "right, jack.")."""
    out = []
    for w in range(1, len(r.words)):
        if r.word(w - 1).key in r.lex.before_vocative and _sentence_between(r, w - 1, w) \
                and r.tokens[r.words[w] - 1].text == "," and _pause_after(r, w) and _known(r, w, True):
            out.append((r.words[w], r.words[w]))
    return out


def _name_word(r: Reading, t: Token, lower_ok: bool, continuing: bool, cap_only: bool) -> bool:
    lex = r.lex
    if not t.letters or t.key in lex.not_names or t.key in lex.labels or len(t.text) < 2 or _contraction(t):
        return False
    if lex.number_word(t.key) or t.key in lex.months or t.key in lex.honorifics:
        return False
    if t.capitalised:
        return not (continuing and t.key in lex.common) or t.key in ("bill", "mark", "will", "grace")
    if cap_only:
        return False
    if lower_ok:
        return t.key not in lex.common or t.key in ("bill", "mark", "will")
    return continuing and t.key not in lex.common


def _capitalised_name(r: Reading, t: Token) -> bool:
    return t.capitalised and _candidate(r, t)


def _sentence_between(r: Reading, w0: int, w1: int, hyphen_ok: bool = False) -> bool:
    """Whether punctuation other than an apostrophe or a hyphen lies between two words."""
    a, b = r.words[w0], r.words[w1]
    allowed = ("'", "\u2019", "-") if hyphen_ok else ("'", "\u2019")
    return any(r.tokens[x].text not in allowed for x in range(a + 1, b))


#: what may surround a name given in answer ("yeah it's john smith")
_ANSWER_WORDS = frozenset(["it's", "it", "is", "yeah", "yes", "yep", "um", "uh", "er", "my", "name", "name's",
                           "i'm", "this", "the", "surname", "first", "last", "and", "sure", "oh", "hi",
                           "that's", "its", "so"])


def _answer(r: Reading) -> list[tuple[int, int]]:
    """The answer to "who am I speaking with?" (asked in the turn just before): capitalised
    names at the start of the turn, in twos and threes ("Barry Nguyen") or inside a sentence
    (", O'Brien"), not a capitalised word opening a sentence ("Cool."), and a short answer in
    lower case ("it's john smith")."""
    out: list[tuple[int, int]] = []
    lower = len(r.words) <= 5 and all(_candidate(r, r.word(w)) or r.word(w).low in _ANSWER_WORDS
                                      for w in range(len(r.words)))
    opening = True  # nothing but answer words so far
    w = 0
    while w < len(r.words):
        t = r.word(w)
        if not (_candidate(r, t) and (t.capitalised or lower)):
            opening = opening and t.low in _ANSWER_WORDS
            w += 1
            continue
        end = w
        while end + 1 < len(r.words) and end - w < 2 and _candidate(r, r.word(end + 1)) \
                and (r.word(end + 1).capitalised or lower) and not _sentence_between(r, end, end + 1, True):
            end += 1
        ti = r.words[w]
        mid_sentence = ti > 0 and r.tokens[ti - 1].text not in ".?!"  # "Cool." is no name; ", O'Brien" is
        if opening or end > w or mid_sentence:
            out.append((r.words[w], r.words[end]))
        opening = False
        w = end + 1
    return out


def _candidate(r: Reading, t: Token) -> bool:
    """Whether t can be a name on its own evidence: letters, not an everyday word, a month or a
    contraction ("We'll", "That'd")."""
    lex = r.lex
    return (t.letters and len(t.text) >= 2 and t.key not in lex.common and t.key not in lex.not_names
            and t.key not in lex.fillers and t.key not in lex.months and not _contraction(t))


def _contraction(t: Token) -> bool:
    return "'" in t.low and t.low.rsplit("'", 1)[1] in ("ll", "d", "ve", "re", "m", "t")


def find_known(r: Reading, names: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], dict[str, bool]]:
    """A name said again: the words of the names found in this turn and the call's earlier turns
    (`r.known`, lower case, with whether they were capitalised), wherever else they appear
    ("My name's Leanne Carter, Carter with a C"). Returns the spans, and this turn's name words."""
    words: dict[str, bool] = {}
    for first, last in names:
        for i in range(first, last + 1):
            t = r.tokens[i]
            if t.letters and len(t.text) >= 3 and t.key not in r.lex.common and t.key not in r.lex.not_names:
                words[t.key] = words.get(t.key, False) or t.capitalised
    known = {**r.known, **words}
    out = []
    for w, ti in enumerate(r.words):
        t = r.tokens[ti]
        was_capitalised = known.get(t.key)
        if was_capitalised is None or r.taken[ti] or not (t.capitalised or not was_capitalised):
            continue
        first = last = w  # with the capitalised names beside it: "a Kevin Doyle"
        while first > 0 and w - first < 2 and _beside_known(r, first - 1, first):
            first -= 1
        while last + 1 < len(r.words) and last - w < 2 and _beside_known(r, last + 1, last):
            last += 1
        r.take(r.words[first], r.words[last])
        out.append((r.words[first], r.words[last]))
    return out, words


def _beside_known(r: Reading, w: int, next_to: int) -> bool:
    t = r.word(w)
    return (t.capitalised and _candidate(r, t) and not r.taken[r.words[w]]
            and not _sentence_between(r, min(w, next_to), max(w, next_to), hyphen_ok=True))


def find_beside(r: Reading, details: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """A capitalised name that opens a turn or a note, then a comma or "from" and another detail:
    "John Smith, 12/03/1985, 0412 …", "Sarah from 42 Smith St called"."""
    out = []
    for first, _, kind in details:
        if kind == "name":
            continue
        j = first - 1
        joined = False
        skipped = 0  # "Daniel Price, DOB 4/11/1979": the label between
        while j >= 0 and skipped < 2 and r.tokens[j].word and (r.tokens[j].key in r.lex.labels
                                                                 or r.context_word(r.word_of[j])):
            j, skipped = j - 1, skipped + 1
        while j >= 0 and r.tokens[j].text in (",", ";"):
            j, joined = j - 1, True
        if j >= 0 and r.tokens[j].key == "from" and not joined:
            j, joined = j - 1, True
        if not joined or j < 0 or not r.tokens[j].word:
            continue
        last, w = j, r.word_of[j]
        start = None
        while w >= 0 and r.word_of[last] - w < 3 and _beside_name(r, w):
            start = w
            w -= 1
            if w >= 0 and _sentence_between(r, w, w + 1, hyphen_ok=True):
                break
        if start is None:
            continue
        ti = r.words[start]
        if ti == 0 or r.tokens[ti - 1].text in (",", ";", ":"):
            r.take(ti, last)
            out.append((ti, last))
    return out


def _beside_name(r: Reading, w: int) -> bool:
    t = r.word(w)
    return (_capitalised_name(r, t) and r.free(r.words[w], r.words[w]) and t.key not in r.lex.labels
            and not r.context_word(w))


def find_secrets(r: Reading) -> list[tuple[int, int]]:
    """The word or two after "the password is" (a PIN said as digits is left to the numbers,
    which read it with the same context)."""
    lex, tokens = r.lex, r.tokens
    out = []
    for _, w1, _ in r.find(lex.secrets):
        k = w1 + 1
        said = r.word(w1)
        if said.key not in ("is", "was") and not said.low.endswith("'s"):
            # "the verbal password on the account is bluebird": the value follows the next "is";
            # "your password reset link" says none
            value_at = None
            for look in range(k, min(len(r.words), k + 5)):
                if look in r.markers or not r.word(look).letters:
                    break  # a number or an earlier detail between: not "<secret> … is <value>"
                if r.word(look).key in ("is", "was") or r.word(look).low.endswith("'s"):
                    value_at = look + 1
                    break
            if value_at is None:
                continue
            k = value_at
        if k >= len(r.words):
            continue
        t = r.word(k)
        if t.digits or lex.number_word(t.key) or t.key in lex.not_names or t.key in lex.fillers:
            continue
        first = last = r.words[k]
        if k + 1 < len(r.words) and r.word(k + 1).digits and not _sentence_between(r, k, k + 1):
            last = r.words[k + 1]  # "tigers 99"
        while last + 1 < len(tokens) and not tokens[last + 1].word and tokens[last + 1].text not in ".,?;" \
                and tokens[last + 1].start == tokens[last].end and last + 1 - first < 4:
            last += 1  # "Summer2024!"
        if r.free(first, last):
            r.take(first, last)
            out.append((first, last))
    return out

"""Email addresses, typed ("jane.citizen@example.com.au") or said ("j underscore smith eighty
four at outlook dot com", "peter at sign gmail dot com", "lisa at hotmail" with no ending).

Said, an address is a user part, "at" (or "at sign", "at symbol", "at the rate"), and a domain:
words joined by "dot", "period" or ".". The domain must end in a known ending (com, net, au, …),
or be a known mail provider (gmail, hotmail, bigpond, …), or the words near it must be about
email. The user part is the words before "at" back to an everyday word ("my email is", "it's"),
so "I'm at home" and "I'll look at it" are kept.
"""

from __future__ import annotations

import bisect
import re

from agent_assist.redaction.reading import Reading

_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+'-")
_PLAIN_WORDS = frozenset(["live", "mail", "sky", "mac", "me", "att", "spark", "proton", "telstra", "optus",
                          "dodo"])
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\s?\.\s?[A-Za-z0-9-]+)*")
_LOCAL_STOP = frozenset(["email", "e-mail", "mail", "address", "is", "it's", "that's", "its", "was",
                        "it", "my", "the", "yeah", "yes", "so", "and", "or", "um", "uh", "er", "me",
                        "you", "to", "at", "on", "in", "i'm", "i", "we", "our", "your", "ok", "okay",
                        "sure", "right", "well", "just", "that", "this", "here", "there", "but", "send",
                        "sent", "use", "try", "thanks", "please", "all", "lower", "case", "address's"])


def find(r: Reading) -> list[tuple[int, int]]:
    out = [*_typed(r), *_spoken(r)]
    for first, last in out:
        r.take(first, last)
    return out


def _typed(r: Reading) -> list[tuple[int, int]]:
    """Each "@" with a user part before it and a domain after it (each looked at within its
    bounds: 64 characters before, 255 after, so a long text costs linear time)."""
    text = r.text
    starts = [t.start for t in r.tokens]
    out = []
    p = text.find("@")
    while p != -1:
        a = p
        while a > 0 and p - a < 64 and text[a - 1] in _LOCAL:
            a -= 1
        m = _DOMAIN.match(text[p + 1 : p + 256])
        if a < p and m:
            first = bisect.bisect_right(starts, a) - 1
            last = bisect.bisect_left(starts, p + 1 + m.end()) - 1
            if first >= 0 and last >= first:
                out.append((first, last))
        p = text.find("@", p + 1)
    return out


def _spoken(r: Reading) -> list[tuple[int, int]]:
    lex, tokens = r.lex, r.tokens
    ats = [(r.words[w0], r.words[w1]) for w0, w1, _ in r.find(lex.email_at)]
    ats += [(i, i) for i, t in enumerate(tokens) if t.text == "@"]
    out = []
    for a0, a1 in ats:
        if r.taken[a0]:
            continue
        domain = _domain(r, a1 + 1)
        if domain is None:
            continue
        end, strong = domain
        if not strong and "email" not in r.near(a0, end):
            continue
        first = _user(r, a0 - 1, strong)
        if first is not None:
            out.append((first, end))
    return out


def _domain(r: Reading, i: int) -> tuple[int, bool] | None:
    """(last token, whether it ends in a known ending or is a known provider) of the domain
    said from token i, or None."""
    lex, tokens = r.lex, r.tokens
    k, skipped = i, 0
    while k < len(tokens) and skipped < 4 and (tokens[k].text == "," or tokens[k].key in lex.fillers):
        k += 1
        skipped += 1
    labels: list[list[int]] = [[]]
    last = None
    while k < len(tokens) and k - i < 24:
        t = tokens[k]
        if t.text == "." or (t.word and t.key in lex.email_dot):
            if not labels[-1]:
                break
            labels.append([])
        elif t.text == "-" or t.key in ("dash", "hyphen"):
            pass
        elif t.word:
            after_dot = len(labels) > 1 and not labels[-1]
            if after_dot and t.key in lex.tlds:
                labels[-1].append(k)
                last = k
            elif len(labels[-1]) >= 3 or t.key in lex.fillers or (
                    t.key in lex.common and t.key not in lex.providers):
                break
            else:
                labels[-1].append(k)
                last = k
        else:
            break
        k += 1
    labels = [label for label in labels if label]
    if last is None or not labels:
        return None
    tld = len(labels) >= 2 and tokens[labels[-1][-1]].key in lex.tlds
    first = tokens[labels[0][0]].key
    # "at gmail" is an address; "at me", "at live" need their ".com"
    provider = len(labels[0]) == 1 and first in lex.providers and first not in lex.common \
        and first not in _PLAIN_WORDS
    return last, tld or provider


def _user(r: Reading, k: int, strong: bool) -> int | None:
    """The first token of the user part ending at token k (before "at"), or None."""
    lex, tokens = r.lex, r.tokens
    first, parts, start = None, 0, k
    while k >= 0 and start - k < 48 and parts < 6:
        t = tokens[k]
        if not t.word:
            if t.text in (".", "_", "-", "'"):
                k -= 1
                continue
            break
        if t.key in lex.email_joiners or t.key == "under" or t.key == "score":
            k -= 1
            continue
        spelled = len(t.text) == 1 or t.digits or lex.number_word(t.key) or any(c.isdigit() for c in t.text)
        if not spelled and (t.key in _LOCAL_STOP or t.key in lex.fillers
                            or (not strong and t.key in lex.common)):
            break
        first = k
        parts += len(t.text) > 1  # a letter spelled out ("t-h-o-m-p-s-o-n") is part of one word
        k -= 1
    return first

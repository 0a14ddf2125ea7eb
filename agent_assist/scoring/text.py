"""Text as the classifiers see it: one tokeniser for training data, transcripts and quality files.

Transcripts come with Whisper's casing and punctuation, human call transcripts without either, and
the training corpora from Reddit, Twitter and forms. All of them are lower-cased, curly quotes made
straight, numbers collapsed to one token, and "!" and "?" kept as tokens of their own because they
carry tone. The sparse (TF-IDF) part of the text model sees Snowball stems and stem bigrams, so
"strangled", "strangle" and "strangling" are one term; the word vectors see the words themselves.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from itertools import pairwise

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("english")

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u0092": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*|[0-9][0-9,.:]*|[!?]")
_URL = re.compile(r"https?://\S+|www\.\S+|@\w+|&amp;|&#\d+;|\[name\]|\[religion\]")
_NUMBER = "<num>"
_REPEAT = re.compile(r"(.)\1{2,}")  # "sooooo" → "soo"


def tokens(text: str) -> list[str]:
    """Lower-cased word, number, "!" and "?" tokens of `text`."""
    text = _URL.sub(" ", text.translate(_QUOTES).lower())
    text = _REPEAT.sub(r"\1\1", text)
    out = []
    for tok in _TOKEN.findall(text):
        out.append(_NUMBER if tok[0].isdigit() else tok)
    return out


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    return str(_STEMMER.stemWord(token))


def terms(toks: list[str]) -> Counter[str]:
    """Stem unigram and bigram counts: the sparse part of the text model."""
    stems = [stem(t) for t in toks]
    grams: Counter[str] = Counter(stems)
    grams.update(f"{a} {b}" for a, b in pairwise(stems))
    return grams

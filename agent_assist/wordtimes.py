"""Word times estimated from the sound, for a speech model that gives none (Moonshine).

Moonshine's ONNX decoder returns only logits and its KV cache: no cross-attention to align words
with, and no timestamp tokens. So the times are an honest estimate, not an alignment:

1. The speech span is the VAD's (its onset to its last voiced window), a little widened.
2. Within it, 10 ms frames louder than the segment's own quiet floor by a third of the way to its
   loud frames (and no more than 35 dB under them) are voiced; unvoiced gaps shorter than
   `min_pause_s` (stop closures, the dip between syllables) are filled, so only real pauses stay
   out.
3. Each pause goes between the two words whose boundary lies nearest to it by spoken length
   (letters, with digits counted as the syllables they take to say, plus one; a boundary after
   punctuation is favoured), and each stretch of speech gets its own words, laid end to end over
   its voiced frames by the same lengths. No word spans a pause.

Against Whisper tiny.en's own word times on the sample call, the estimate is 0.06 s off at the
median and 0.18 s at p90 (below). That is good enough for what word times are
used for: which utterance a redaction falls in and roughly where (the events' `words`), and the
overlay's "why", which quotes the words around a trigger. It is not good enough to cut audio at a
word boundary, which nothing here does.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

RATE = 16000
FRAME = 160  # 10 ms
DIGITAL_SILENCE_DB = -90.0  # frames this quiet are zeros (a gap, padding), not a floor to measure
MAX_BELOW_LOUD_DB = 35.0  # a frame this far under the loud ones is not speech, whatever the floor
PUNCTUATION_PULL = 0.05  # a pause is this much (a share of the words) likelier after punctuation
_DIGIT = re.compile(r"\d")
_SPOKEN = re.compile(r"[^\W\d_]")  # letters, in any script
# Against Whisper tiny.en's own word times on the sample call's finals (420 words both heard alike;
# bench/speech_models.py --parts times): start and end 0.06 s apart at the median, 0.18 s at p90;
# three words in four within 0.15 s at both ends. tests/test_moonshine.py checks a bound.


def spoken_weight(word: str) -> float:
    """How long a word takes to say, in letters: a digit is said as about three."""
    return len(_SPOKEN.findall(word)) + 3 * len(_DIGIT.findall(word)) + 1.0


def voiced_frames(audio: np.ndarray, first: int, stop: int, min_pause_s: float = 0.15) -> np.ndarray:
    """Indices of the 10 ms frames of `audio[first*FRAME : stop*FRAME]` with speech in them (see
    the module's step 2), as frame indices of the whole `audio`."""
    n = len(audio) // FRAME
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    heard = level[level > DIGITAL_SILENCE_DB]  # the room's or the line's own floor, not zeros
    if len(heard) == 0:
        return np.zeros(0, dtype=np.int64)
    floor, loud = np.percentile(heard, 10), np.percentile(heard, 95)
    voiced = level >= max(floor + (loud - floor) / 3, loud - MAX_BELOW_LOUD_DB)
    voiced[:first] = False
    voiced[stop:] = False
    # fill short gaps between voiced frames
    index = np.flatnonzero(voiced)
    gap = round(min_pause_s * RATE / FRAME)
    for a, b in itertools.pairwise(index):
        if 1 < b - a <= gap:
            voiced[a:b] = True
    return np.flatnonzero(voiced)


def _runs(frames: np.ndarray) -> list[np.ndarray]:
    """Voiced frame indices split into runs of consecutive frames (the stretches between pauses)."""
    if len(frames) == 0:
        return []
    return np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1)


def _spread(words: list[str], frames: np.ndarray) -> list[tuple[float, float]]:
    """`words` laid end to end over `frames`, each taking a share by its spoken length."""
    weights = np.array([spoken_weight(w) for w in words])
    # word i takes the voiced frames [edges[i], edges[i + 1])
    edges = np.round(np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * len(frames))
    edges = edges.astype(np.int64)
    times = []
    for i in range(len(words)):
        a = min(int(edges[i]), len(frames) - 1)
        b = max(a, int(edges[i + 1]) - 1)
        times.append((float(frames[a] * FRAME / RATE), float((frames[b] + 1) * FRAME / RATE)))
    return times


def estimate(words: list[str], audio: np.ndarray, start: float, end: float,
             margin_s: float = 0.05) -> list[tuple[float, float]]:
    """Start and end times, in seconds from the start of `audio`, of each of `words` said between
    `start` and `end` (the VAD's span, in seconds from the start of `audio`).

    Each pause is put between the two words whose boundary falls nearest to it by spoken length
    (a boundary after a comma or a full stop is favoured), and each stretch of speech between pauses
    gets its own words, so no word spans a pause."""
    if not words:
        return []
    first = max(0, int((start - margin_s) * RATE / FRAME))
    stop = min(len(audio) // FRAME, int(np.ceil((end + margin_s) * RATE / FRAME)))
    frames = voiced_frames(audio, first, stop)
    if len(frames) == 0:  # too quiet to tell: spread over the span
        frames = np.arange(first, max(first + 1, stop))
    runs = _runs(frames)
    weights = np.array([spoken_weight(w) for w in words])
    said = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()  # before word k
    heard = np.cumsum([len(r) for r in runs]) / len(frames)  # after run j
    bounds = [0]
    for j in range(len(runs) - 1):
        k = min(range(bounds[-1], len(words) + 1),
                key=lambda k: abs(said[k] - heard[j]) - (PUNCTUATION_PULL if k > 0 and
                                                         words[k - 1][-1] in ",.?!;:" else 0.0))
        bounds.append(k)
    bounds.append(len(words))
    times: list[tuple[float, float]] = []
    for j, run in enumerate(runs):
        if bounds[j + 1] > bounds[j]:
            times += _spread(words[bounds[j] : bounds[j + 1]], run)
    return times

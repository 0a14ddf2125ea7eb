"""Acoustic features of one utterance, with numpy alone: loudness, pitch, voice quality, pace.

Anger and distress are often in the voice rather than the words. These few numbers describe how
something was said: how loud and how varied in loudness, how high, varied and steady the pitch is,
how the energy spreads over ten frequency bands and how fast that spread changes, how many frames
are voiced, and how fast the words came. They feed small logistic models (`acoustic.onnx`) as they
are and as a change from the same speaker's own baseline earlier in the call: the line's gain sets
the absolute loudness, so loudness only counts as a change ("a loud voice on a loud line is not
anger").

Every measure is taken in the telephone voice band (300-3400 Hz, `telephone.band_limited`), whatever
the recording's own band: contact centres record calls at 8 kHz μ-law, and a voice must read the
same on a wideband headset and down a phone line. Frames are 32 ms with a 10 ms hop (every third
one for the spectral measures). Pitch is the peak of the normalised autocorrelation between 60 and
400 Hz (from the harmonics where the line has cut the fundamental, preferring a half or a third of
the best lag that correlates nearly as well, against octave errors), taken as voiced where that
peak is at least 0.45. (Folding every frame onto the voice's own octave as well steadied the
spread measures but cost the sad head 7 points on unseen speakers, so they are left as tracked.)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from agent_assist.audio.telephone import band_limited

RATE = 16000
_FRAME = 512
_HOP = 160
_FMIN, _FMAX = 60.0, 400.0
_VOICED = 0.45
_OCTAVE_SHARE = 0.85  # a half or third of the best lag is taken when its correlation is this close
_ACTIVE_RANGE_DB = 30.0  # frames within this of the loud end of the utterance count as speech
_SILENCE_DB = -70.0
_SPECTRAL_STRIDE = 3
_MAX_SPECTRAL_FRAMES = 80

#: Edges (Hz) of the bands whose share of the energy describes the voice's spectral balance: the
#: telephone voice band, in nine.
BAND_EDGES: tuple[int, ...] = (300, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000, 3400)

#: The features, in model order. Units: dB (re full scale), semitones (re 100 Hz), fractions,
#: and words per second.
FEATURES: tuple[str, ...] = (
    "loudness_db",
    "loudness_sd_db",
    "loudness_peak_db",
    "pitch_st",
    "pitch_sd_st",
    "pitch_range_st",
    "voiced_fraction",
    "zcr",
    "brightness_db",
    "centroid_log2",
    "words_per_s",
    "spectral_flux",
    "pitch_jitter_st",
    *(f"band_{lo}_{hi}_db" for lo, hi in pairwise(BAND_EDGES)),
    *(f"cepstrum_{i}" for i in range(1, 9)),
    *(f"cepstrum_{i}_sd" for i in range(1, 9)),
)
#: Features that depend on the line's gain as much as on the voice: the models see them only as a
#: change from the speaker's baseline, never as they are.
GAIN_DEPENDENT: tuple[str, ...] = ("loudness_db", "loudness_peak_db")
#: The features compared with the speaker's own baseline (current minus baseline): every one but
#: the cepstra, which describe a voice's timbre more than its state. A sad or frightened voice is
#: told by how it moved from how this speaker sounds (flatter, slower, darker), more than by where
#: it sits among everyone's voices: with all of them compared, the sad head scored an actor
#: it never heard 0.831 against 0.810 (0.787 against 0.776 on 8 kHz μ-law) and the one speaker of
#: another corpus 0.90 against 0.85. The angry head keeps the six it always compared
#: (`ANGER_RELATIVE`); the others cost it on unseen actors.
RELATIVE: tuple[str, ...] = tuple(name for name in FEATURES if not name.startswith("cepstrum_"))
#: The changes from baseline the angry head reads (loudness, pitch, brightness and pace).
ANGER_RELATIVE: tuple[str, ...] = (
    "loudness_db",
    "loudness_peak_db",
    "pitch_st",
    "pitch_sd_st",
    "brightness_db",
    "words_per_s",
)

_NEUTRAL_RATE = 2.6  # words per second of calm conversational English, used when words are unknown


_FREQS = np.fft.rfftfreq(2 * _FRAME, 1.0 / RATE)
_BANDS = np.stack([(lo <= _FREQS) & (hi > _FREQS) for lo, hi in pairwise(BAND_EDGES)], axis=1).astype(
    np.float32
)
_WINDOW = np.hanning(_FRAME).astype(np.float32)


def _mel_filters(count: int = 20) -> np.ndarray:
    """Triangular mel filters over the voice band, as (frequency bins, filters)."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(BAND_EDGES[0]), mel(BAND_EDGES[-1]), count + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    out = np.zeros((len(_FREQS), count), np.float32)
    for i in range(count):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rise = (_FREQS - lo) / (mid - lo)
        fall = (hi - _FREQS) / (hi - mid)
        out[:, i] = np.clip(np.minimum(rise, fall), 0.0, None)
    return out


_MEL = _mel_filters()
_DCT = np.cos(np.pi / _MEL.shape[1] * (np.arange(_MEL.shape[1])[None, :] + 0.5)
              * np.arange(1, 9)[:, None]).astype(np.float32)  # cepstral coefficients 1-8


def _frames(samples: np.ndarray) -> np.ndarray:
    if len(samples) < _FRAME:
        samples = np.pad(samples, (0, _FRAME - len(samples)))
    count = 1 + (len(samples) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(count)[:, None]
    return samples[idx]


def features(samples: np.ndarray, words: int | None = None, speech_s: float | None = None) -> np.ndarray:
    """The `FEATURES` of one utterance (16 kHz mono float32), as float32.

    `words` and `speech_s` give the speaking rate; without them it is set to a calm rate, so the
    pace says nothing either way.
    """
    x = np.asarray(samples, dtype=np.float32)
    x = band_limited(x - float(x.mean())) if len(x) else np.zeros(_FRAME, np.float32)
    frames = _frames(x)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-10
    db = 20.0 * np.log10(rms)
    top = float(np.percentile(db, 95))
    active = db >= max(top - _ACTIVE_RANGE_DB, _SILENCE_DB)
    if not active.any():
        out = np.zeros(len(FEATURES), np.float32)
        bands_at = FEATURES.index(f"band_{BAND_EDGES[0]}_{BAND_EDGES[1]}_db")
        out[bands_at : bands_at + len(BAND_EDGES) - 1] = -10.0 * np.log10(len(BAND_EDGES) - 1)  # even
        out[FEATURES.index("loudness_db")] = _SILENCE_DB
        out[FEATURES.index("loudness_peak_db")] = _SILENCE_DB
        out[FEATURES.index("words_per_s")] = _NEUTRAL_RATE
        return out
    adb = db[active]
    # the spectral measures (pitch, balance, flux) look at every third speech frame, and at most
    # _MAX_SPECTRAL_FRAMES of them evenly spread, so a long monologue costs no more than 2.4 s
    idx = np.flatnonzero(active)[::_SPECTRAL_STRIDE]
    if len(idx) > _MAX_SPECTRAL_FRAMES:
        idx = idx[np.linspace(0, len(idx) - 1, _MAX_SPECTRAL_FRAMES).astype(int)]
    act = frames[idx] * _WINDOW

    # pitch: normalised autocorrelation through the FFT
    spec = np.fft.rfft(act, n=2 * _FRAME, axis=1)
    power = np.abs(spec) ** 2
    ac = np.fft.irfft(power, axis=1)[:, :_FRAME]
    ac /= np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(RATE / _FMAX), int(RATE / _FMIN)
    band = ac[:, lo:hi]
    lag = np.argmax(band, axis=1)
    peak = band[np.arange(len(band)), lag]
    # Where the line has cut the fundamental, a period's multiples correlate as well as the period
    # itself: take the shortest lag (a half or a third) that does nearly as well, so a phone line
    # does not halve the pitch (an octave error seen on μ-law copies of the sample call).
    rows = np.arange(len(band))
    for divisor in (3, 2):
        centre = np.rint((lo + lag) / divisor).astype(int) - lo
        near = np.clip(centre[:, None] + np.arange(-2, 3)[None, :], 0, band.shape[1] - 1)
        values = band[rows[:, None], near]
        best = np.argmax(values, axis=1)
        shorter, candidate = near[rows, best], values[rows, best]
        better = (centre >= 1) & (candidate >= _OCTAVE_SHARE * peak)
        lag = np.where(better, shorter, lag)
        peak = np.where(better, candidate, peak)
    # parabolic interpolation around the peak for a smoother pitch track
    left = band[np.arange(len(band)), np.clip(lag - 1, 0, band.shape[1] - 1)]
    right = band[np.arange(len(band)), np.clip(lag + 1, 0, band.shape[1] - 1)]
    denom = left - 2 * peak + right
    shift = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    f0 = RATE / (lo + lag + np.clip(shift, -0.5, 0.5))
    voiced = peak >= _VOICED
    if voiced.sum() >= 3:
        st = 12.0 * np.log2(f0[voiced] / 100.0)
        pitch, pitch_sd = float(np.median(st)), float(np.std(st))
        pitch_range = float(np.percentile(st, 90) - np.percentile(st, 10))
        jitter = float(np.abs(np.diff(st)).mean())
    else:
        pitch, pitch_sd, pitch_range, jitter = 0.0, 0.0, 0.0, 0.0

    freqs = _FREQS
    in_band = (freqs >= BAND_EDGES[0]) & (freqs < BAND_EDGES[-1])
    total = np.where(in_band, power.sum(axis=0), 0.0) + 1e-12
    high = total[freqs >= 1000.0].sum()
    brightness = 10.0 * np.log10(high / max(total[freqs < 1000.0].sum(), 1e-12))
    centroid = float((freqs * total).sum() / total.sum())
    # each band's share of the energy, frame by frame, averaged in dB
    per_frame = power @ _BANDS
    # an empty band reads -90 dB below the frame's total, whatever the line's gain
    per_frame += 1e-9 * per_frame.sum(axis=1, keepdims=True) + 1e-30
    # how fast the spectrum's shape changes from frame to frame (steady, flat voices change less)
    shape = power / (power.sum(axis=1, keepdims=True) + 1e-12)
    flux = float(np.sqrt((np.diff(shape, axis=0) ** 2).sum(axis=1)).mean()) if len(shape) > 1 else 0.0
    bands = (10.0 * np.log10(per_frame / per_frame.sum(axis=1, keepdims=True))).mean(axis=0)
    # the spectral envelope's shape, gain-free (coefficient 0, the level, is left out)
    log_mel = np.log10(power @ _MEL + 1e-9 * power.sum(axis=1, keepdims=True) + 1e-30)
    cepstra = log_mel @ _DCT.T
    signs = np.signbit(frames[active])
    zcr = float(np.mean(signs[:, 1:] != signs[:, :-1]))

    rate_ = rate(words, speech_s)
    return np.array(
        [
            float(adb.mean()),
            float(adb.std()),
            float(np.percentile(adb, 95)),
            pitch,
            pitch_sd,
            pitch_range,
            float(voiced.mean()),
            zcr,
            float(brightness),
            float(np.log2(max(centroid, 1.0))),
            rate_,
            flux,
            jitter,
            *bands.tolist(),
            *cepstra.mean(axis=0).tolist(),
            *cepstra.std(axis=0).tolist(),
        ],
        dtype=np.float32,
    )


def rate(words: int | None, speech_s: float | None) -> float:
    """Words per second, or a calm rate when either is unknown or the speech is too short to say."""
    if words is None or speech_s is None or speech_s <= 0.3:
        return _NEUTRAL_RATE
    return min(words / speech_s, 8.0)


def frame_db(samples: np.ndarray) -> np.ndarray:
    frames = _frames(np.asarray(samples, dtype=np.float32))
    return 20.0 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-10)


def speech_span(samples: np.ndarray) -> float:
    """Seconds from the first to the last frame of speech-level energy (for clips without a VAD)."""
    db = frame_db(samples)
    active = np.flatnonzero(db >= max(float(np.percentile(db, 95)) - _ACTIVE_RANGE_DB, _SILENCE_DB))
    if not len(active):
        return 0.0
    return float((active[-1] - active[0]) * _HOP + _FRAME) / RATE


def input_names() -> list[str]:
    """The names of `model_input`'s columns."""
    return [*(n for n in FEATURES if n not in GAIN_DEPENDENT), *(f"rel_{n}" for n in RELATIVE),
            "has_baseline"]


def model_input(feats: np.ndarray, rel: np.ndarray, has_baseline: np.ndarray) -> np.ndarray:
    """The acoustic models' input rows: gain-free features, changes from baseline, a baseline flag."""
    keep = [i for i, name in enumerate(FEATURES) if name not in GAIN_DEPENDENT]
    feats = np.atleast_2d(feats)
    return np.hstack([feats[:, keep], np.atleast_2d(rel), np.reshape(has_baseline, (-1, 1))]).astype(
        np.float32
    )


def relative(current: np.ndarray, baseline: np.ndarray | None) -> np.ndarray:
    """`RELATIVE` features as changes from the baseline (zeros when there is none yet)."""
    idx = [FEATURES.index(name) for name in RELATIVE]
    if baseline is None:
        return np.zeros(len(RELATIVE), np.float32)
    return (current[idx] - baseline[idx]).astype(np.float32)


@dataclass
class SpeakerBaseline:
    """How one speaker sounds in this call so far: the median of their recent utterances.

    Only utterances with enough voiced speech count, and the baseline exists once `minimum` of them
    have been heard, so a first angry sentence is judged on its own rather than against itself.
    """

    minimum: int = 2
    keep: int = 12
    _history: deque[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.keep)

    @property
    def value(self) -> np.ndarray | None:
        if len(self._history) < self.minimum:
            return None
        return np.median(np.stack(list(self._history)), axis=0).astype(np.float32)

    def add(self, feats: np.ndarray) -> None:
        if feats[FEATURES.index("voiced_fraction")] > 0.2:
            self._history.append(feats)


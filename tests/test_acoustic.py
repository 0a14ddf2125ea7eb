"""Acoustic features on signals whose answer is known, and how text and voice are combined."""

from __future__ import annotations

import numpy as np
import pytest

from agent_assist.events import CallStart, Scores, Speaker, Utterance, VoiceFeatures, Word
from agent_assist.scoring import acoustic
from agent_assist.scoring.models import VOICE_LLR_DOWN, VOICE_LLR_UP, shipped
from agent_assist.scoring.scorer import Scorer, Trend

RATE = 16000
F = acoustic.FEATURES


def voiced(f0: float, seconds: float = 2.0, amplitude: float = 0.1, vibrato: float = 0.0) -> np.ndarray:
    """A buzzy vowel-like tone: harmonics of f0 with falling amplitude, optionally wavering."""
    t = np.arange(int(seconds * RATE)) / RATE
    freq = f0 * (1 + vibrato * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def test_pitch_of_a_known_tone():
    for f0 in (110.0, 150.0, 220.0):
        feats = acoustic.features(voiced(f0))
        assert feats[F.index("pitch_st")] == pytest.approx(12 * np.log2(f0 / 100), abs=0.4)
        assert feats[F.index("voiced_fraction")] > 0.9
        assert feats[F.index("pitch_sd_st")] < 0.5


def test_a_wavering_pitch_is_more_variable():
    steady = acoustic.features(voiced(150))
    wavering = acoustic.features(voiced(150, vibrato=0.08))
    assert wavering[F.index("pitch_sd_st")] > steady[F.index("pitch_sd_st")] + 0.5
    assert wavering[F.index("pitch_range_st")] > steady[F.index("pitch_range_st")] + 1.0


def test_twice_the_amplitude_is_six_db_and_nothing_else():
    quiet = acoustic.features(voiced(150, amplitude=0.05))
    loud = acoustic.features(voiced(150, amplitude=0.1))
    assert loud[F.index("loudness_db")] - quiet[F.index("loudness_db")] == pytest.approx(6.02, abs=0.05)
    others = [i for i, name in enumerate(F) if name not in acoustic.GAIN_DEPENDENT]
    assert np.allclose(loud[others], quiet[others], atol=0.01)


def test_silence_and_tiny_inputs_give_defined_features():
    for x in (np.zeros(RATE, np.float32), np.zeros(10, np.float32), np.zeros(0, np.float32)):
        feats = acoustic.features(x)
        assert feats.shape == (len(F),) and np.all(np.isfinite(feats))
        assert feats[F.index("words_per_s")] == acoustic.rate(None, None)


def test_brightness_follows_the_spectrum():
    noise = np.random.default_rng(0).standard_normal(2 * RATE).astype(np.float32) * 0.05
    hum = voiced(120)
    bright = F.index("brightness_db")
    assert acoustic.features(noise)[bright] > acoustic.features(hum)[bright] + 10


def test_speaking_rate():
    assert acoustic.rate(6, 2.0) == 3.0
    assert acoustic.rate(6, 0.1) == acoustic.rate(None, None)  # too short to say
    assert acoustic.rate(100, 1.0) == 8.0  # capped


def test_baseline_needs_two_voiced_turns_and_is_their_median():
    base = acoustic.SpeakerBaseline()
    a, b, c = (acoustic.features(voiced(f)) for f in (110, 130, 200))
    assert base.value is None
    base.add(a)
    assert base.value is None
    base.add(b)
    base.add(c)
    assert base.value[F.index("pitch_st")] == pytest.approx(b[F.index("pitch_st")], abs=1e-5)
    base.add(np.zeros(len(F), np.float32))  # unvoiced: does not count
    assert base.value[F.index("pitch_st")] == pytest.approx(b[F.index("pitch_st")], abs=1e-5)
    rel = acoustic.relative(c, base.value)
    assert rel[acoustic.RELATIVE.index("pitch_st")] == pytest.approx(
        c[F.index("pitch_st")] - b[F.index("pitch_st")], abs=1e-5)


def test_trend_level_and_rise():
    trend = Trend()
    levels = [trend.add(v) for v in (0.1, 0.1, 0.1, 0.9, 0.9)]
    assert levels[0] == (0.1, 0.0)
    level, rise = levels[-1]
    assert level == pytest.approx(0.1 + 0.8 * (1 - 0.6**2))
    assert rise == pytest.approx(level - levels[1][0])


def test_voice_can_raise_a_lot_lower_a_little_and_keeps_its_order():
    models = shipped()
    text = np.array([[0.5, 0.5, 0.0]])
    grid = np.linspace(0.001, 0.999, 50)
    fused = [models.fuse(text, np.array([[p, p, p]]))[0] for p in grid]
    distress = np.array([f[0] for f in fused])
    assert np.all(np.diff(distress) >= 0)
    odds = distress / (1 - distress)
    assert odds.max() < np.exp(VOICE_LLR_UP) and odds.min() > np.exp(-VOICE_LLR_DOWN)
    # a short "yes, okay" and a first turn with no baseline count for less
    angry = np.array([[0.999, 0.001, 0.001]])
    full = models.fuse(text, angry)[0, 1]
    assert models.fuse(text, angry, has_baseline=False)[0, 1] < full
    assert models.fuse(text, angry, speech_s=0.3)[0, 1] < full
    assert models.fuse(text, angry, speech_s=0.0)[0, 1] == pytest.approx(0.5)


def test_scorer_keeps_crisis_to_the_words_and_scores_only_the_customer():
    scorer = Scorer(shipped())
    list(scorer.process(CallStart(t=0, call_id="c", source="s", channels={}, started_at="", model="")))

    def utterance(uid: str, speaker: Speaker, text: str) -> Utterance:
        words = tuple(Word(w, i * 0.3, i * 0.3 + 0.25, 0.9) for i, w in enumerate(text.split()))
        return Utterance(t=3.0, call_id="c", utterance_id=uid, speaker=speaker, start=0.0, end=2.5,
                         text=text, words=words)

    shout = acoustic.features(voiced(260, amplitude=0.9, vibrato=0.1))
    out = list(scorer.process(VoiceFeatures(t=3.0, speaker=Speaker.CUSTOMER, utterance_id="u1",
                                            features=shout, speech_s=2.5)))
    assert out == []  # internal: never reaches the sinks
    [scored] = scorer.process(utterance("u1", Speaker.CUSTOMER, "I want to kill myself"))
    assert isinstance(scored.scores, Scores)
    assert scored.scores.crisis == scored.scores.text["crisis"] > 0.9
    assert scored.scores.acoustic is not None and not scored.scores.baseline
    [agent] = scorer.process(utterance("u2", Speaker.AGENT, "I hear you, you're not alone"))
    assert agent.scores is None


def test_the_voice_reads_the_same_in_the_telephone_band():
    """Features are taken in 300-3400 Hz: a voice through an 8 kHz μ-law phone line measures as it
    does wideband (the band's spectral shape and the pitch from its harmonics)."""
    from faster_whisper.audio import decode_audio

    from agent_assist.audio.telephone import over_the_phone
    from tests.conftest import SPEECH

    wide = decode_audio(str(SPEECH / "jfk.flac"))
    phone = over_the_phone(wide)
    assert len(phone) == pytest.approx(len(wide), abs=160)
    a, b = acoustic.features(wide), acoustic.features(phone)
    for name in ("pitch_st", "pitch_sd_st", "voiced_fraction", "brightness_db", "centroid_log2",
                 "band_500_750_db", "band_1500_2000_db", "cepstrum_1", "cepstrum_2"):
        i = acoustic.FEATURES.index(name)
        assert abs(a[i] - b[i]) <= max(0.6, 0.1 * abs(a[i])), (name, a[i], b[i])
    models = shipped()
    rel = np.zeros(len(acoustic.RELATIVE), np.float32)
    pa, pb = (models.score_voice(f[None, :], rel[None, :], np.zeros(1, np.float32))[0] for f in (a, b))
    assert np.abs(pa - pb).max() <= 0.1, (pa, pb)


def test_a_mulaw_copy_of_a_call_scores_like_its_wideband_original(tmp_path, call_models, sample_call):
    """The sample call's first 45 s as an 8 kHz μ-law WAV through the pipeline, against the
    session's replay of the call as recorded (its customer turns in those 45 s)."""
    from agent_assist.audio.files import ChannelLayout, FileSource
    from agent_assist.audio.telephone import write_mulaw
    from agent_assist.events import AudioChunk
    from agent_assist.replay import ReplayOptions, replay
    from tests.conftest import SAMPLES, Collector

    parts: dict[Speaker, list[np.ndarray]] = {Speaker.CUSTOMER: [], Speaker.AGENT: []}
    for block in FileSource(SAMPLES / "sample_call.flac", layout=ChannelLayout.STEREO).blocks():
        for chunk in block:
            if isinstance(chunk, AudioChunk):
                parts[chunk.speaker].append(chunk.samples)
    stereo = np.stack([np.concatenate(parts[s])[: 45 * 16000] for s in (Speaker.CUSTOMER, Speaker.AGENT)])
    phone = tmp_path / "phone.wav"
    write_mulaw(phone, stereo)
    sink = Collector()
    replay(phone, [sink], ReplayOptions(partials=False, rules=False), models=call_models)
    b = [u for u in sink.utterances if u.speaker == Speaker.CUSTOMER and u.scores]
    # the customer's last turn in these 45 s ends at 40.0 s: the cut leaves the turns before it whole
    a = [u for u in sample_call.utterances if u.speaker == Speaker.CUSTOMER and u.scores and u.end < 45]
    assert len(a) == len(b) >= 4
    assert all(abs(x.start - y.start) < 0.4 for x, y in zip(a, b, strict=True))
    for key in ("escalation", "distress"):
        # the voice heads, turn by turn: close on average (one turn without a baseline, in a
        # synthetic voice whose pitch sits between two octaves, differs by up to ~0.45)
        gaps = [abs(x.scores.acoustic[key] - y.scores.acoustic[key]) for x, y in zip(a, b, strict=True)
                if x.scores.acoustic and y.scores.acoustic]
        assert len(gaps) == len(a) and float(np.mean(gaps)) <= 0.2, (key, gaps)

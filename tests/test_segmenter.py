"""The VAD state machine, driven by scripted speech probabilities and by real audio."""

from dataclasses import replace

import numpy as np
import pytest

from agent_assist.events import AudioChunk, CallEnd, EndReason, Speaker, SpeechSegment
from agent_assist.segmenter import Segmenter, SegmenterOptions
from agent_assist.vad import WINDOW, VadStream
from tests.conftest import SPEECH

W = WINDOW / 16000  # seconds per VAD window
TOL = 2 * W


class ScriptedVad:
    """Speech probability from a script: the window's index decides, not the audio."""

    def __init__(self, probs: list[float]) -> None:
        self.probs = probs
        self.i = 0

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        out = [self.probs[self.i + k] if self.i + k < len(self.probs) else 0.0
               for k in range(len(windows))]
        self.i += len(windows)
        return np.array(out, dtype=np.float32)


# Each sample's value is its own index in `run`, and a ramp carries nothing over 4 kHz, as a phone
# line does: the scripted tests keep the telephone-band pair at the wideband one, so they test the
# options' thresholds whatever the line (the pair's own tests are at the end).
ONE_PAIR = SegmenterOptions(narrowband_threshold=SegmenterOptions.threshold,
                            narrowband_neg_threshold=SegmenterOptions.neg_threshold)


def run(probs: list[float], options: SegmenterOptions | None = None,
        chunk_windows: int = 3) -> list[SpeechSegment]:
    segmenter = Segmenter(options or ONE_PAIR, vad_factory=lambda: ScriptedVad(probs))
    # each sample's value is its own index, so we can check exactly which audio a segment holds
    audio = np.arange(len(probs) * WINDOW, dtype=np.float32)
    out = []
    step = chunk_windows * WINDOW
    for i in range(0, len(audio), step):
        chunk = AudioChunk(t=i / 16000, speaker=Speaker.CUSTOMER, samples=audio[i : i + step])
        out += [e for e in segmenter.process(chunk) if isinstance(e, SpeechSegment)]
    end = CallEnd(t=len(audio) / 16000, call_id="c", reason=EndReason.END_OF_AUDIO)
    out += [e for e in segmenter.process(end) if isinstance(e, SpeechSegment)]
    return out


def seconds(n: float) -> int:
    return round(n / W)


def test_speech_ends_after_the_hangover_with_preroll_before_it():
    probs = [0.0] * seconds(2) + [0.9] * seconds(2) + [0.0] * seconds(2)
    finals = [s for s in run(probs) if s.final]
    assert len(finals) == 1
    seg = finals[0]
    assert seg.start == pytest.approx(2.0, abs=TOL)
    assert seg.end == pytest.approx(4.0, abs=TOL)
    opt = SegmenterOptions()
    assert seg.audio_start == pytest.approx(2.0 - opt.preroll_s, abs=TOL)
    assert seg.t == pytest.approx(4.0 + opt.hangover_s, abs=TOL)  # emitted when the hang-over ends
    # the audio is exactly the samples from audio_start on, tail included
    first = round(seg.audio_start * 16000)
    assert seg.audio[0] == first and np.all(np.diff(seg.audio) == 1)
    assert len(seg.audio) / 16000 == pytest.approx(2.0 + opt.preroll_s + opt.tail_s, abs=TOL)


def test_a_short_dip_does_not_end_speech_but_a_pause_does():
    probs = ([0.9] * seconds(1) + [0.1] * seconds(0.3) + [0.9] * seconds(1) + [0.1] * seconds(0.8)
             + [0.9] * seconds(1) + [0.0] * seconds(1))
    finals = [s for s in run(probs) if s.final]
    assert [round(s.start, 1) for s in finals] == [0.0, 3.1]


def test_hysteresis_keeps_speech_between_the_thresholds():
    probs = [0.9] * seconds(0.5) + [0.4] * seconds(2) + [0.0] * seconds(1)
    finals = [s for s in run(probs) if s.final]
    assert len(finals) == 1 and finals[0].end == pytest.approx(2.5, abs=TOL)


def test_blips_shorter_than_min_speech_are_ignored():
    probs = [0.0] * 10 + [0.9] * 3 + [0.0] * seconds(1) + [0.9] * 2 + [0.0] * seconds(1)
    assert run(probs) == []


def test_partials_come_at_least_every_second_of_ongoing_speech():
    probs = [0.9] * seconds(5.5) + [0.0] * seconds(1)
    segments = run(probs)
    partials = [s for s in segments if not (s.final or s.early)]
    assert len(partials) >= 5
    times = [0.0] + [s.t for s in partials]
    assert max(np.diff(times)) <= 1.0 + W
    assert all(p.utterance_id == segments[-1].utterance_id for p in partials)


def test_no_partial_is_asked_for_in_a_pause_where_speech_may_be_ending():
    # a 0.4 s dip (shorter than the hang-over) where the second partial falls due, then the end
    probs = [0.9] * seconds(1.6) + [0.1] * seconds(0.4) + [0.9] * seconds(1.0) + [0.0] * seconds(1)
    segments = run(probs)
    partials = [s for s in segments if not (s.final or s.early)]
    assert len(partials) >= 2 and len([s for s in segments if s.final]) == 1
    for p in partials:  # each was asked for at the end of a voiced window
        assert probs[round(p.t / W) - 1] >= SegmenterOptions().neg_threshold, p.t
    assert any(2.0 < p.t <= 2.1 for p in partials)  # the one that fell due in the dip: just after it


def test_a_finals_audio_goes_early_when_complete_and_the_final_follows_with_the_same_audio():
    opt = SegmenterOptions()
    probs = [0.0] * seconds(1) + [0.9] * seconds(2) + [0.0] * seconds(1.5)
    segments = run(probs)
    early = [s for s in segments if s.early]
    finals = [s for s in segments if s.final]
    assert len(early) == 1 and len(finals) == 1 and not early[0].final
    e, f = early[0], finals[0]
    # sent as soon as the pause has lasted tail_s, before the hang-over ends the turn
    assert e.t == pytest.approx(3.0 + opt.tail_s, abs=TOL)
    assert f.t == pytest.approx(3.0 + opt.hangover_s, abs=TOL) and e.t < f.t
    assert e.utterance_id == f.utterance_id and e.audio_start == f.audio_start
    assert (e.start, e.end) == (f.start, f.end) and np.array_equal(e.audio, f.audio)
    assert not e.droppable  # the final behind it would wait either way


def test_a_pause_that_does_not_end_the_turn_sends_an_early_segment_but_no_final():
    # a 0.4 s pause: longer than the tail, shorter than the hang-over; then speech goes on
    probs = [0.9] * seconds(2) + [0.1] * seconds(0.4) + [0.9] * seconds(1) + [0.0] * seconds(1)
    segments = run(probs)
    early = [s for s in segments if s.early]
    finals = [s for s in segments if s.final]
    assert len(finals) == 1 and len(early) == 2
    assert early[0].utterance_id == early[1].utterance_id == finals[0].utterance_id
    assert len(early[0].audio) < len(finals[0].audio)  # it did not hear the rest: not reused
    assert np.array_equal(early[1].audio, finals[0].audio)


def test_audio_that_ends_in_a_pause_after_the_early_segment_gives_the_final_its_audio():
    # the last part-window (100 samples, zero padded) scores as voice, as a breath at a clip's
    # very end can: it is not speech going on, and the final keeps the early segment's audio
    probs = [0.9] * seconds(2) + [0.0] * seconds(0.35) + [0.9]
    segmenter = Segmenter(vad_factory=lambda: ScriptedVad(probs))
    audio = np.arange((len(probs) - 1) * WINDOW + 100, dtype=np.float32)
    out = [e for e in segmenter.process(AudioChunk(t=0.0, speaker=Speaker.CUSTOMER, samples=audio))
           if isinstance(e, SpeechSegment)]
    end = CallEnd(t=len(audio) / 16000, call_id="c", reason=EndReason.END_OF_AUDIO)
    out += [e for e in segmenter.process(end) if isinstance(e, SpeechSegment)]
    early = [s for s in out if s.early]
    finals = [s for s in out if s.final]
    assert len(early) == 1 and len(finals) == 1
    assert np.array_equal(early[0].audio, finals[0].audio) and not early[0].superseded.is_set()


def test_speech_going_on_after_the_early_segment_marks_it_superseded():
    probs = [0.9] * seconds(2) + [0.1] * seconds(0.4) + [0.9] * seconds(1) + [0.0] * seconds(1)
    early = [s for s in run(probs) if s.early]
    assert early[0].superseded.is_set()  # the transcriber skips it or cuts it short
    assert not early[1].superseded.is_set()  # the final's own


def test_nobody_watching_means_no_partials_and_no_early_finals_but_the_same_finals():
    probs = ([0.0] * seconds(0.5) + [0.9] * seconds(3) + [0.1] * seconds(0.4) + [0.9] * seconds(2)
             + [0.0] * seconds(1) + [0.9] * seconds(1.5) + [0.0] * seconds(1))
    watched, unwatched = run(probs), run(probs, ONE_PAIR.unwatched())
    assert any(s.early for s in watched) and any(not (s.final or s.early) for s in watched)
    assert all(s.final for s in unwatched)
    finals = [s for s in watched if s.final]
    assert len(finals) == len(unwatched) == 2
    for a, b in zip(finals, unwatched, strict=True):
        assert (a.t, a.start, a.end, a.audio_start) == (b.t, b.start, b.end, b.audio_start)
        assert np.array_equal(a.audio, b.audio)
    assert not any(s.early for s in run(probs, replace(ONE_PAIR, early_finals=False)))


def test_a_long_monologue_is_cut_at_its_latest_pause_without_losing_or_repeating_audio():
    # 8 s speech, 0.2 s pause, 9 s speech, 0.2 s pause, 9 s speech: 26.6 s with no 0.5 s pause
    probs = ([0.9] * seconds(8) + [0.1] * seconds(0.2) + [0.9] * seconds(9) + [0.1] * seconds(0.2)
             + [0.9] * seconds(9) + [0.0] * seconds(1))
    finals = [s for s in run(probs) if s.final]
    assert len(finals) == 2
    first, second = finals
    assert first.end - first.audio_start <= SegmenterOptions().max_utterance_s
    assert first.utterance_id != second.utterance_id
    # the cut is inside the second pause (17.2-17.4 s), not mid-word
    cut = second.audio_start
    assert 17.2 <= cut <= 17.4
    # audio continuity: the first part ends exactly where the second begins
    assert first.audio[-1] + 1 == second.audio[0]
    assert first.audio[0] == 0


def test_speech_with_no_pause_at_all_is_still_cut_and_nothing_lost():
    probs = [0.9] * seconds(45) + [0.0] * seconds(1)
    finals = [s for s in run(probs) if s.final]
    assert len(finals) >= 3
    audio = np.concatenate([s.audio for s in finals])
    assert audio[0] == 0 and np.all(np.diff(audio) == 1)  # contiguous, no gap, no repeat


def test_open_speech_is_closed_at_the_end_of_the_call():
    probs = [0.0] * seconds(1) + [0.9] * seconds(2)
    finals = [s for s in run(probs) if s.final]
    assert len(finals) == 1 and finals[0].t == pytest.approx(3.0, abs=TOL)


def test_the_result_does_not_depend_on_chunk_size():
    probs = [0.0] * 30 + [0.9] * 100 + [0.1] * 40 + [0.9] * 60 + [0.0] * 40
    a = [(s.t, s.start, s.end, s.final, len(s.audio)) for s in run(probs, chunk_windows=1)]
    b = [(s.t, s.start, s.end, s.final, len(s.audio)) for s in run(probs, chunk_windows=7)]
    assert a == b


def test_streaming_vad_equals_faster_whispers_batch_vad():
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import get_vad_model

    audio = decode_audio(str(SPEECH / "jfk.flac"))
    audio = audio[: len(audio) // WINDOW * WINDOW]
    batch = get_vad_model()(audio).reshape(-1)
    stream = VadStream()
    windows = audio.reshape(-1, WINDOW)
    streamed = np.concatenate([stream(windows[i : i + 5]) for i in range(0, len(windows), 5)])
    assert np.allclose(streamed, batch, atol=1e-5)


def test_a_gap_in_the_audio_ends_the_speech_and_later_speech_still_counts():
    probs = [0.9] * seconds(2) + [0.9] * seconds(2) + [0.0] * seconds(1)
    segmenter = Segmenter(vad_factory=lambda: ScriptedVad(probs))
    audio = np.ones(seconds(2) * WINDOW, dtype=np.float32)
    out = list(segmenter.process(AudioChunk(t=0.0, speaker=Speaker.AGENT, samples=audio)))
    # listening paused for 10 s: the next chunk starts at 12 s
    out += segmenter.process(AudioChunk(t=12.0, speaker=Speaker.AGENT, samples=audio))
    out += segmenter.process(AudioChunk(t=12.0 + len(audio) / 16000, speaker=Speaker.AGENT,
                                        samples=np.ones(seconds(1) * WINDOW, dtype=np.float32)))
    finals = [s for s in out if isinstance(s, SpeechSegment) and s.final]
    assert len(finals) == 2
    assert finals[0].end == pytest.approx(2.0, abs=TOL) and finals[0].t <= 2.0 + TOL
    assert finals[1].start == pytest.approx(12.0, abs=TOL) and finals[1].t > 13.9


def test_a_long_turn_is_finalised_at_a_breath_once_it_holds_a_sentence_or_two():
    """A breath (0.35 s) after 9 s of speech ends the final; the same breath after 4 s does not, and
    the next part's pre-roll holds none of the last word."""
    breath = [0.1] * seconds(0.35)
    probs = ([0.9] * seconds(4) + breath + [0.9] * seconds(5) + breath + [0.9] * seconds(3)
             + [0.0] * seconds(1))
    finals = [s for s in run(probs) if s.final]
    assert [round(s.start, 1) for s in finals] == [0.0, 9.7]
    assert finals[0].end == pytest.approx(9.35, abs=TOL)
    second = finals[1]
    # samples hold their own index: the pre-roll starts where the first part's speech ended
    assert second.audio[0] >= round(finals[0].end * 16000), "the pre-roll is the breath only"
    unsplit = [s for s in run(probs, replace(ONE_PAIR, sentence_cut_s=None)) if s.final]
    assert [round(s.start, 1) for s in unsplit] == [0.0]


def _finals(audio: np.ndarray, options: SegmenterOptions | None = None) -> list[SpeechSegment]:
    """The real segmenter (Silero) over `audio`, in 0.1 s chunks as a stream sends it."""
    segmenter = Segmenter(options)
    out: list[SpeechSegment] = []
    for i in range(0, len(audio), 1600):
        chunk = AudioChunk(t=i / 16000, speaker=Speaker.CUSTOMER, samples=audio[i : i + 1600])
        out += [e for e in segmenter.process(chunk) if isinstance(e, SpeechSegment) and e.final]
    end = CallEnd(t=len(audio) / 16000, call_id="c", reason=EndReason.END_OF_AUDIO)
    return out + [e for e in segmenter.process(end) if isinstance(e, SpeechSegment) and e.final]


def test_the_line_is_told_by_what_it_carries_over_four_kilohertz():
    from agent_assist.audio.telephone import over_the_phone
    from agent_assist.scoring.training import decode
    from agent_assist.segmenter import _Band

    speech = decode(SPEECH / "1089-134686-0000.flac")
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.01
    for audio, narrow in ((speech, False), (over_the_phone(speech), True), (noise, False),
                          (over_the_phone(noise), True)):
        band = _Band()
        band.observe(audio[: len(audio) // WINDOW * WINDOW].reshape(-1, WINDOW))
        assert band.narrow is narrow
    silence = _Band()  # digital silence says nothing either way
    silence.observe(np.zeros((100, WINDOW), np.float32))
    assert silence.seen == 0 and not silence.narrow


def test_speech_scripted_between_the_two_pairs_of_thresholds_counts_on_a_phone_line_only():
    """The same probabilities (0.4: under the wideband threshold, over the telephone one) give a
    final on telephone-band audio and nothing on wideband audio."""
    from agent_assist.audio.telephone import over_the_phone

    noise = np.random.default_rng(1).standard_normal(4 * 16000).astype(np.float32) * 0.05
    probs = [0.0] * seconds(1) + [0.4] * seconds(2) + [0.0] * seconds(1)
    for audio, count in ((noise, 0), (over_the_phone(noise), 1)):
        segmenter = Segmenter(vad_factory=lambda: ScriptedVad(probs))
        out = [e for e in segmenter.process(AudioChunk(t=0.0, speaker=Speaker.CUSTOMER, samples=audio))
               if isinstance(e, SpeechSegment) and e.final]
        out += [e for e in segmenter.process(CallEnd(t=4.0, call_id="c", reason=EndReason.END_OF_AUDIO))
                if isinstance(e, SpeechSegment) and e.final]
        assert len(out) == count


@pytest.mark.parametrize("name", ["1089-134686-0000.flac", "1089-134691-0001.flac"])
def test_a_telephone_copy_is_segmented_like_its_wideband_original(name):
    """Read aloud, then sent down an 8 kHz μ-law line: Silero is surer of less there, and with the
    wideband thresholds these lost their last 1.8 s, or were split with 0.7 s lost in the middle.
    With the telephone-band pair the speech spans what it spans as recorded."""
    from agent_assist.audio.telephone import over_the_phone
    from agent_assist.scoring.training import decode

    wide = decode(SPEECH / name)
    [original] = _finals(wide)
    phone = _finals(over_the_phone(wide))
    assert len(phone) == 1
    assert phone[0].start == pytest.approx(original.start, abs=0.3)
    assert phone[0].end == pytest.approx(original.end, abs=0.5)
    # and the wideband pair on the same copy is what went wrong
    before = _finals(over_the_phone(wide), ONE_PAIR)
    spoken = sum(s.end - s.start for s in before)
    assert spoken < (original.end - original.start) - 0.6

"""Moonshine tiny-en (`--model moonshine-tiny-en`) on real audio: what it hears, what it keeps out of
the transcript, the word times it is given, and the choice between it and Whisper."""

from __future__ import annotations

import itertools
import threading

import jiwer
import numpy as np
import pytest
from faster_whisper.audio import decode_audio

from agent_assist.errors import ModelError
from agent_assist.events import Speaker, SpeechSegment
from agent_assist.moonshine import MoonshineModel, TokenWord, trim_loop
from agent_assist.speech import Abandoned
from agent_assist.transcriber import (
    DEFAULT_MODEL,
    FALLBACK_MODEL,
    MOONSHINE,
    MOONSHINE_BASE,
    WHISPER,
    TranscriberOptions,
)
from tests.conftest import SPEECH, normalise, references

MONO = [r for r in references() if r["channel"] == "mono"]


@pytest.fixture(scope="module")
def moonshine(moonshine_models) -> MoonshineModel:
    assert moonshine_models.label == MOONSHINE
    return moonshine_models.speech.model


def segment(audio: np.ndarray, start: float = 0.0, end: float | None = None) -> SpeechSegment:
    seconds = len(audio) / 16000
    return SpeechSegment(t=seconds, speaker=Speaker.CUSTOMER, utterance_id="u1", start=start,
                         end=seconds if end is None else end, audio_start=0.0, audio=audio, final=True)


def test_the_default_speech_model_is_one_line_and_the_others_one_option_away(call_models, whisper_models,
                                                                            moonshine_models):
    assert DEFAULT_MODEL == MOONSHINE_BASE and FALLBACK_MODEL == MOONSHINE
    assert call_models.label == DEFAULT_MODEL == TranscriberOptions().model_name
    assert whisper_models.label == WHISPER and moonshine_models.label == MOONSHINE
    assert type(call_models.speech).__name__ == type(moonshine_models.speech).__name__ == "MoonshineSpeech"
    assert type(whisper_models.speech).__name__ == "WhisperSpeech"
    # the other speech models share the classifiers and the pack: only the speech model is loaded
    assert whisper_models.classifiers is moonshine_models.classifiers is call_models.classifiers


def test_where_base_ens_package_has_no_wheel_the_default_is_tiny_en_said_in_one_line(tmp_path, monkeypatch,
                                                                                     caplog):
    """moonshine-cpp's only wheel is Linux x86-64: on another machine (here: its package hidden and
    nothing built in the cache) a call without --model gets tiny-en, and one warning says why."""
    from agent_assist import moonshine_base, transcriber

    monkeypatch.setattr(moonshine_base, "PACKAGE", "moonshine_cpp_not_installed_here")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    transcriber.default_model.cache_clear()
    with caplog.at_level("WARNING", logger="agent_assist.transcriber"):
        assert TranscriberOptions().model_name == MOONSHINE == TranscriberOptions(model=None).model_name
    assert [r.getMessage() for r in caplog.records] == [
        "the default speech model, moonshine-base-en, is built from moonshine-cpp, which has no wheel "
        "for this machine: using moonshine-tiny-en"]
    # asked for by name, it is refused with the line that names the fix instead
    assert TranscriberOptions(model=MOONSHINE_BASE).model_name == MOONSHINE_BASE
    with pytest.raises(ModelError, match=r"moonshine-cpp==0\.1\.4, which is not installed"):
        moonshine_base.model_folder()
    transcriber.default_model.cache_clear()


def test_each_clip_decoded_whole_is_what_was_said(moonshine):
    refs, said = [], []
    for ref in MONO:
        decoded = moonshine.decode(decode_audio(str(SPEECH / ref["file"])))
        assert not decoded.looped and len(decoded.tokens) == len(decoded.probabilities)
        assert all(0.0 < p <= 1.0 for p in decoded.probabilities)
        refs.append(normalise(ref["transcript"]))
        said.append(normalise(moonshine.text(decoded.tokens)))
    wer = jiwer.wer(refs, said)
    print(f"Moonshine tiny-en, each clip whole: WER {wer:.3f}")
    assert wer <= 0.06
    assert said[refs.index("he could wait no longer")] == "he could wait no longer"


def test_the_words_carry_their_punctuation_and_the_mean_probability_of_their_tokens(moonshine):
    decoded = moonshine.decode(decode_audio(str(SPEECH / "librispeech_quilter.wav")))
    words = moonshine.words(decoded)
    assert " ".join(w.text for w in words) == moonshine.text(decoded.tokens)
    assert words[0].text == "Mr." and words[-1].text.endswith(".")
    assert all(0.5 < w.probability <= 1.0 for w in words)


def test_a_decode_no_longer_wanted_stops_once_encoded(moonshine):
    unwanted = threading.Event()
    unwanted.set()
    with pytest.raises(Abandoned):
        moonshine.decode(decode_audio(str(SPEECH / "jfk.flac")), unwanted)


def test_what_moonshine_writes_on_silence_and_hum_is_not_kept(moonshine_models):
    """On digital silence tiny-en writes "You", on mains hum "♪♪♪": neither is a word said."""
    t = np.arange(16000) / 16000
    hum = sum(0.05 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5)).astype(np.float32)
    options = TranscriberOptions()
    for audio in (np.zeros(16000, np.float32), hum):
        assert moonshine_models.speech.hear(audio, final=True, options=options).words == ()
        assert moonshine_models.speech.hear(audio, final=False, options=options).text == ""
    model = moonshine_models.speech.model
    said = model.text(model.decode(np.zeros(16000, np.float32)).tokens)
    assert said == "You"  # the model itself still says it: the check is what keeps it out


def test_a_partials_last_word_heard_in_part_is_left_out_when_the_model_is_unsure(moonshine_models):
    """Cut at 8.5 s, JFK is between "...do for you," and "ask": tiny-en guesses "and" (p 0.3)."""
    audio = decode_audio(str(SPEECH / "jfk.flac"))[: int(8.5 * 16000)]
    options = TranscriberOptions()
    partial = moonshine_models.speech.hear(audio, final=False, options=options).text
    assert normalise(partial).endswith("can do for you")
    guessed = moonshine_models.speech.hear(audio, final=True, options=options).words[-1]
    assert normalise(guessed.text) == "and" and guessed.p < options.partial_last_word_min_p


def test_a_decode_never_begins_with_a_quotation_mark(moonshine, monkeypatch):
    """Cut 1.9 s into a customer's turn, tiny-en may write it as quoted dialogue ("'Can you not?' ...,
    a quotation mark no one said); kept from starting with one, it writes the words alone."""
    from tests.conftest import SAMPLES

    customer = decode_audio(str(SAMPLES / "calls" / "call-03.ogg"), split_stereo=True)[0]
    audio = customer[int(18.316 * 16000) : int(20.704 * 16000)]
    said = moonshine.text(moonshine.decode(audio).tokens)
    assert said.startswith("Can you not?")
    assert {moonshine.tokens[i] for i in moonshine.not_first} >= {b'"', "\u2581\"".encode()}
    monkeypatch.setattr(moonshine, "not_first", np.zeros(0, np.int64))  # as it decoded before
    assert moonshine.text(moonshine.decode(audio).tokens).startswith('"')


def test_a_looped_decode_keeps_the_words_before_the_loop():
    def words(text):
        return [TokenWord(w, 0.9) for w in text.split()]

    def trimmed(text):
        return " ".join(w.text for w in trim_loop(words(text)))

    assert trimmed("I'm scared they will cut the power of the power of the power") == \
        "I'm scared they will cut the power of"
    assert trimmed("42-wild street, rain, rain, rain, rain,") == "42-wild street, rain,"
    assert trimmed("For a full hour, for a full hour,") == "For a full hour,"
    assert trimmed("he could wait no longer") == "he could wait no longer"  # no loop: as it was
    # the cap stopped the loop part way through a word
    assert trimmed("Lovely, lovely, lovely, lov") == "Lovely,"
    assert trimmed("I live in Valve, Valve, Valve, Val") == "I live in Valve,"
    assert trimmed("the power of the power of the po") == "the power of"


def test_a_cap_on_tokens_per_second_ends_a_decode_that_never_ends(moonshine):
    """A second of audio may not give more than 6.5 tokens a second (plus 4): a loop is cut there."""
    audio = decode_audio(str(SPEECH / "1089-134686-0000.flac"))[:16000]
    decoded = moonshine.decode(audio)
    assert len(decoded.tokens) <= int(1.0 * 6.5) + 4


def test_estimated_word_times_are_in_order_inside_the_speech_and_near_whispers(moonshine_models,
                                                                             whisper_models):
    """Moonshine gives no word times: they are estimated from the sound (`wordtimes`). On two
    sentences with a pause between them, each word lies within the VAD's span, the words follow one
    another, no word spans the pause, and the times are near Whisper's own."""
    from agent_assist.transcriber import Transcriber

    first = decode_audio(str(SPEECH / "1089-134691-0000.flac"))  # "he could wait no longer", 2.1 s
    second = decode_audio(str(SPEECH / "1089-134686-0001.flac"))  # "stuff it into you ..."
    pause = np.zeros(int(0.8 * 16000), np.float32)
    audio = np.concatenate([first, pause, second])
    seg = segment(audio, start=0.3, end=len(audio) / 16000 - 0.2)
    utterance = Transcriber(model=moonshine_models.speech).final(seg)
    reference = Transcriber(model=whisper_models.speech).final(seg)
    assert utterance is not None and reference is not None
    words = utterance.words
    assert all(seg.start - 0.05 <= w.start <= w.end <= seg.end + 0.05 for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert all(w.end > w.start for w in words)
    pause_start, pause_end = len(first) / 16000, (len(first) + len(pause)) / 16000
    assert not [w for w in words if w.start < pause_start and w.end > pause_end]  # no word spans it
    assert any(w.end <= pause_start for w in words) and any(w.start >= pause_end for w in words)
    theirs = {normalise(w.text): w for w in reference.words}
    both = [(w, theirs[normalise(w.text)]) for w in words if normalise(w.text) in theirs]
    assert len(both) >= 6
    errors = [abs(a.start - b.start) for a, b in both] + [abs(a.end - b.end) for a, b in both]
    print("word time differences from Whisper's (s):", [round(e, 2) for e in errors])
    # An estimate, not an alignment: which side of a pause a word falls is a guess by its length (here
    # Moonshine writes no full stop after "longer", and it lands after the pause).
    assert float(np.median(errors)) <= 0.2


def test_two_threads_decode_on_one_model_and_each_gets_its_own_words(moonshine):
    """The model holds no state of a decode: two decodes at once give what each gives alone."""
    clips = [decode_audio(str(SPEECH / name)) for name in ("jfk.flac", "librispeech_quilter.wav")]
    alone = [moonshine.decode(a).tokens for a in clips]
    together: list[tuple[int, ...]] = [(), ()]
    start = threading.Barrier(2)

    def run(i: int) -> None:
        start.wait()
        for _ in range(2):
            together[i] = moonshine.decode(clips[i]).tokens

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == alone

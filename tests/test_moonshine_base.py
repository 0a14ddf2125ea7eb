"""Moonshine base-en (`--model moonshine-base-en`) on real audio, and its conversion from
moonshine-cpp==0.1.4: what it hears beside tiny-en, what it writes on non-speech, the same bytes from
every build, and one line when what the build needs is missing.

What any speech model must do (streaming within 2 points of offline, nothing from
tests/data/nonspeech, two calls at once on one model) is checked on base-en too, through
`each_speech_model` (tests/test_transcription.py, tests/test_call.py)."""

from __future__ import annotations

import filecmp
import json
import sys

import jiwer
import numpy as np
import pytest
from faster_whisper.audio import decode_audio

from agent_assist.moonshine import MoonshineModel
from agent_assist.moonshine_base import FILES, MANIFEST, build_moonshine_base, is_built
from agent_assist.transcriber import MOONSHINE, MOONSHINE_BASE, Transcriber, TranscriberOptions
from tests.conftest import SPEECH, normalise, references
from tests.test_cli import agent_assist

MONO = [r for r in references() if r["channel"] == "mono"]
CLIP = SPEECH / "1089-134691-0000.flac"  # "he could wait no longer", 2.1 s


@pytest.fixture(scope="module")
def base(moonshine_base_models) -> MoonshineModel:
    assert moonshine_base_models.label == MOONSHINE_BASE
    return moonshine_base_models.speech.model


def whole_clips_wer(model: MoonshineModel) -> tuple[float, list[str]]:
    refs, said = [], []
    for ref in MONO:
        decoded = model.decode(decode_audio(str(SPEECH / ref["file"])))
        assert not decoded.looped and len(decoded.tokens) == len(decoded.probabilities)
        refs.append(normalise(ref["transcript"]))
        said.append(normalise(model.text(decoded.tokens)))
    return float(jiwer.wer(refs, said)), said


def test_base_en_is_chosen_by_either_name_and_is_the_moonshine_speech_model(moonshine_base_models):
    assert TranscriberOptions(model="moonshine-base").model_name == MOONSHINE_BASE
    assert TranscriberOptions(model=MOONSHINE_BASE).model_name == MOONSHINE_BASE
    speech = moonshine_base_models.speech
    assert type(speech).__name__ == "MoonshineSpeech" and speech.label == MOONSHINE_BASE
    # the name loads nothing new: it is the same model
    assert moonshine_base_models.fit(moonshine_base_models_options("moonshine-base")) is moonshine_base_models
    # base-en's decoder, as converted: two graphs, 8 layers of 8 heads of 52, no encoder mask
    model = speech.model
    assert model.first is not model.step and len(model._decoder_caches) == 16
    assert "encoder_attention_mask" not in model._first_inputs
    assert {tuple(i.shape[1::2]) for i in model.step.get_inputs() if i.name.startswith("past")} == {(8, 52)}


def moonshine_base_models_options(name: str):
    from agent_assist.call import CallOptions

    return CallOptions(transcriber=TranscriberOptions(model=name))


def test_each_clip_decoded_whole_is_what_was_said_as_well_as_tiny_en_hears_it(base, moonshine_models):
    assert moonshine_models.label == MOONSHINE
    wer, said = whole_clips_wer(base)
    tiny_wer, _ = whole_clips_wer(moonshine_models.speech.model)
    print(f"each clip whole: WER base-en {wer:.3f}, tiny-en {tiny_wer:.3f}")
    assert wer <= 0.06
    assert wer <= tiny_wer + 0.02  # two words in 97
    assert said[[normalise(r["transcript"]) for r in MONO].index("he could wait no longer")] == \
        "he could wait no longer"


def test_a_final_has_its_words_with_probabilities_and_estimated_times(moonshine_base_models):
    from agent_assist.events import Speaker, SpeechSegment

    audio = decode_audio(str(CLIP))
    seconds = len(audio) / 16000
    segment = SpeechSegment(t=seconds, speaker=Speaker.CUSTOMER, utterance_id="u1", start=0.2,
                            end=seconds - 0.1, audio_start=0.0, audio=audio, final=True)
    utterance = Transcriber(model=moonshine_base_models.speech).final(segment)
    assert utterance is not None and normalise(utterance.text) == "he could wait no longer"
    assert [normalise(w.text) for w in utterance.words] == ["he", "could", "wait", "no", "longer"]
    assert all(0.5 < w.p <= 1.0 for w in utterance.words)
    assert all(0.15 <= w.start < w.end <= seconds - 0.05 for w in utterance.words)


def test_base_en_itself_writes_nothing_on_silence_hum_or_noise(base, moonshine_base_models):
    """tiny-en writes "You" on silence and "♪♪♪" on a hum, and the transcriber's gates keep them out;
    base-en ends its decode at once, so the same gates, left as they are, never have to act."""
    t = np.arange(16000) / 16000
    hum = sum(0.05 / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5)).astype(np.float32)
    noise = (np.random.default_rng(0).standard_normal(32000) * 0.05).astype(np.float32)
    options = TranscriberOptions(model=MOONSHINE_BASE)
    for audio in (np.zeros(16000, np.float32), hum, noise):
        assert base.decode(audio).tokens == ()
        assert moonshine_base_models.speech.hear(audio, final=True, options=options).words == ()


def test_the_conversion_gives_the_same_bytes_every_time(base, tmp_path):
    """The fixture's model was built in the user cache (at set-up, or on first use); a second build
    from the same package, with the same onnxruntime and onnx, is the same, byte for byte."""
    first = base.folder
    manifest = json.loads((first / MANIFEST).read_text(encoding="utf-8"))
    again = build_moonshine_base(tmp_path / "again")
    assert is_built(again)
    if json.loads((again / MANIFEST).read_text(encoding="utf-8"))["onnxruntime"] != manifest["onnxruntime"]:
        first = build_moonshine_base(tmp_path / "first")  # the cache's was built by another onnxruntime
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert set(FILES.names) | {"LICENSE", MANIFEST} <= set(names)
    assert all(filecmp.cmp(first / name, again / name, shallow=False) for name in names)
    assert manifest["from"] == "moonshine-cpp==0.1.4"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left behind


@pytest.mark.parametrize("missing", ["moonshine_cpp", "onnx"])
def test_a_missing_package_is_one_line_and_builds_nothing(missing, monkeypatch, tmp_path):
    """Without moonshine-cpp (or without onnx, which the conversion uses) and with nothing built yet,
    asking for base-en is one line that names the fix, and leaves nothing half built."""
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed: find_spec and import fail
    cache = tmp_path / "cache"
    ran = agent_assist("replay", str(CLIP), "--model", "moonshine-base", "-q", "--no-partials",
                       env={"XDG_CACHE_HOME": str(cache)})
    assert ran.returncode == 3
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agent-assist: error: ") and "Traceback" not in ran.stderr
    if missing == "moonshine_cpp":
        assert "moonshine-cpp==0.1.4" in lines[0] and "agent-assist[full]" in lines[0]
    else:
        assert "building Moonshine base-en" in lines[0] and "onnx" in lines[0]
    assert "--model moonshine-tiny-en" in lines[0]
    folder = cache / "agent-assist" / "moonshine-base-en"
    assert not folder.exists() and not [p for p in folder.parent.glob(".moonshine-base-en-*")]

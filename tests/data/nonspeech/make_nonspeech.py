"""Generate nonspeech.flac: 40 s of what a phone line carries when nobody speaks.

Digital silence, hiss, pink noise, mains hum, clicks and pops, DTMF key tones, an Australian ring
tone, and "hold music" (a synthesised melody over chords, with harmonics and vibrato, band-limited to
the telephone band). Deterministic (seeded). Run from the repository root:
    .venv/bin/python tests/data/nonspeech/make_nonspeech.py
"""

from pathlib import Path

import av
import numpy as np

RATE = 16000
rng = np.random.default_rng(7)


def t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def pink(seconds: float, level: float) -> np.ndarray:
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    x = np.fft.irfft(spectrum, n)
    return level * x / np.max(np.abs(x))


def hum(seconds: float) -> np.ndarray:
    x = t(seconds)
    return sum(0.05 / k * np.sin(2 * np.pi * 50 * k * x) for k in (1, 2, 3, 5))


def clicks(seconds: float) -> np.ndarray:
    x = rng.standard_normal(int(seconds * RATE)) * 0.002
    for at in rng.uniform(0, seconds, 25):
        i = int(at * RATE)
        x[i : i + 40] += rng.choice([-0.6, 0.6]) * np.exp(-np.arange(len(x[i : i + 40])) / 6)
    return x


def dtmf(keys: str) -> np.ndarray:
    table = {"1": (697, 1209), "5": (770, 1336), "9": (852, 1477), "0": (941, 1336),
             "#": (941, 1477)}
    out = []
    for key in keys:
        lo, hi = table[key]
        x = t(0.15)
        out += [0.2 * (np.sin(2 * np.pi * lo * x) + np.sin(2 * np.pi * hi * x)), np.zeros(int(0.1 * RATE))]
    return np.concatenate(out)


def ring(seconds: float) -> np.ndarray:
    x = t(seconds)
    tone = 0.2 * np.sin(2 * np.pi * 425 * x) * (1 + 0.5 * np.sin(2 * np.pi * 25 * x))
    cadence = ((x % 2.0) < 0.4) | (((x % 2.0) > 0.6) & ((x % 2.0) < 1.0))
    return tone * cadence


def hold_music(seconds: float) -> np.ndarray:
    x = t(seconds)
    out = np.zeros_like(x)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    melody = [523.3, 587.3, 659.3, 784.0, 659.3, 587.3, 523.3, 493.9]
    for i, chord in enumerate(chords * 4):
        a, b = int(i * 2.0 * RATE), int((i + 1) * 2.0 * RATE)
        if a >= len(x):
            break
        seg = x[a:b] - x[a]
        env = np.minimum(1, seg * 20) * np.exp(-seg * 0.6)
        for f in chord:
            out[a:b] += env * sum(0.06 / h * np.sin(2 * np.pi * f * h * seg) for h in (1, 2, 3))
    for j, f in enumerate(melody * 8):
        a, b = int(j * 0.5 * RATE), int((j + 1) * 0.5 * RATE)
        if a >= len(x):
            break
        seg = x[a:b] - x[a]
        vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * seg)
        out[a:b] += 0.12 * np.exp(-seg * 3) * np.sin(2 * np.pi * f * vib * seg)
    # telephone band: 300-3400 Hz
    spec = np.fft.rfft(out)
    freqs = np.fft.rfftfreq(len(out), 1 / RATE)
    spec[(freqs < 300) | (freqs > 3400)] = 0
    return np.fft.irfft(spec, len(out))


def main() -> None:
    parts = [np.zeros(3 * RATE), rng.standard_normal(4 * RATE) * 0.01, pink(5, 0.2), hum(3),
             clicks(4), dtmf("1590#"), ring(6), hold_music(14), np.zeros(RATE)]
    audio = np.concatenate(parts).astype(np.float32)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    path = Path(__file__).with_name("nonspeech.flac")
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    print(f"wrote {path} ({len(audio) / RATE:.1f} s)")


if __name__ == "__main__":
    main()

"""Telephone audio as contact centres record it: 300-3400 Hz, 8 kHz, G.711 μ-law.

Used to train and measure the voice models on the line they will hear (`classifiers train` fits
each clip as recorded and as it would come down a phone line), and by tests that replay telephone
copies of wideband calls. Not on the live path: a call's audio is never changed, only measured.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

RATE = 16000
LOW_HZ, HIGH_HZ = 300.0, 3400.0  # the voice band of the telephone network (ITU-T G.712)
EDGE_HZ = 100.0  # the band's edges fall off over this much, as a real line's filter does


def band_limited(samples: np.ndarray, rate: int = RATE, low: float = LOW_HZ,
                 high: float = HIGH_HZ) -> np.ndarray:
    """`samples` with only the telephone voice band kept (a zero-phase filter in the frequency
    domain, with raised-cosine edges)."""
    x = np.asarray(samples, np.float32)
    if len(x) == 0:
        return x.copy()
    n = 1 << int(np.ceil(np.log2(len(x))))
    spectrum = np.fft.rfft(x, n)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    gain = np.ones_like(f)
    rise = np.clip((f - (low - EDGE_HZ)) / EDGE_HZ, 0.0, 1.0)
    fall = np.clip(((high + EDGE_HZ) - f) / EDGE_HZ, 0.0, 1.0)
    gain *= 0.5 - 0.5 * np.cos(np.pi * rise)
    gain *= 0.5 - 0.5 * np.cos(np.pi * fall)
    return np.fft.irfft(spectrum * gain, n)[: len(x)].astype(np.float32)


def mulaw_wav(channels: np.ndarray, rate: int = RATE) -> bytes:
    """A WAV file of 8 kHz G.711 μ-law from float audio (`channels`: (n,) or (channels, n))."""
    audio = np.atleast_2d(np.asarray(channels, np.float32))
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as container:
        stream = container.add_stream("pcm_mulaw", rate=8000, layout=layout)
        resampler = av.AudioResampler(format="s16", layout=layout, rate=8000)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T.reshape(1, -1)), format="s16",
                                           layout=layout)
        frame.sample_rate = rate
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(part):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def write_mulaw(path: Path, channels: np.ndarray, rate: int = RATE) -> None:
    """`channels` through the voice band and into an 8 kHz μ-law WAV at `path`."""
    audio = np.atleast_2d(np.asarray(channels, np.float32))
    path.write_bytes(mulaw_wav(np.stack([band_limited(c, rate) for c in audio]), rate))


def over_the_phone(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono audio as it would come back from a telephone recording: voice band, 8 kHz μ-law,
    decoded and resampled to 16 kHz the way the pipeline reads any file."""
    from agent_assist.audio.resample import StreamResampler

    data = mulaw_wav(band_limited(samples))
    with av.open(io.BytesIO(data), "r") as container:
        resampler = StreamResampler(8000, 1)
        parts = [resampler.resample_frame(frame) for frame in container.decode(audio=0)]
        parts.append(resampler.flush())
    return np.concatenate(parts, axis=1)[0] if parts else np.zeros(0, np.float32)

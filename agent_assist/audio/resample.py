"""Convert audio of any rate and sample format to the pipeline's 16 kHz float32, per channel.

FFmpeg's resampler (libswresample through PyAV, which faster-whisper already depends on) does the
work; it is stateful, so blocks can be fed one at a time from a file or a device.
"""

from __future__ import annotations

import av
import numpy as np

TARGET_RATE = 16000


class StreamResampler:
    """Resample planar float32 blocks of `channels` channels from `rate` to 16 kHz.

    `push(block)` takes an array of shape (channels, n) and returns (channels, m) at 16 kHz;
    `flush()` returns what the filter still holds at the end of the stream.
    """

    def __init__(self, rate: int, channels: int) -> None:
        if channels not in (1, 2):
            raise ValueError(f"can only resample mono or stereo, not {channels} channels")
        self.rate = rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=TARGET_RATE)
        self._pts = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected shape ({self.channels}, n), got {block.shape}")
        if block.shape[1] == 0:
            return np.zeros((self.channels, 0), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=self._layout)
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += block.shape[1]
        return self._collect(self._resampler.resample(frame))

    def resample_frame(self, frame: av.AudioFrame) -> np.ndarray:
        """Resample a decoded frame directly (any sample format and layout with our channel count)."""
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._resampler.resample(None))

    def _collect(self, frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros((self.channels, 0), dtype=np.float32)
        arrays = [f.to_ndarray().reshape(self.channels, -1) for f in frames]
        return np.concatenate(arrays, axis=1).astype(np.float32, copy=False)

"""Streaming voice activity with the Silero VAD model that ships inside faster-whisper.

faster-whisper runs Silero over a whole file at once; the model itself is recurrent (an LSTM state
`h`, `c` and 64 samples of context carried from one 512-sample window to the next), so the same ONNX
file runs window by window on live audio. Fed the same audio, `VadStream` gives exactly the
probabilities of faster-whisper's batch call (a test checks this).
"""

from __future__ import annotations

import functools
import os
from typing import Protocol

import numpy as np
import onnxruntime

WINDOW = 512  # samples at 16 kHz = 32 ms
_CONTEXT = 64


@functools.lru_cache(maxsize=1)
def silero_session() -> onnxruntime.InferenceSession:
    """The Silero ONNX session, loaded once per process with explicit, small thread counts."""
    from faster_whisper.utils import get_assets_path

    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


class SpeechProbability(Protocol):
    """Turns 16 kHz audio into one speech probability per 512-sample window."""

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """`windows` has shape (n, 512); returns n probabilities."""
        ...


class VadStream:
    """Silero state for one audio stream (one party). Not thread-safe; one per speaker."""

    def __init__(self) -> None:
        self._session = silero_session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros(0, dtype=np.float32)
        windows = np.ascontiguousarray(windows, dtype=np.float32).reshape(-1, WINDOW)
        previous = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]], axis=0)
        batch = np.concatenate([previous, windows], axis=1)
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -_CONTEXT:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)

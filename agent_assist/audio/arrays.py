"""Audio already in memory as a source: for evaluations and tests that build calls from clips."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from agent_assist.events import AudioChunk, EndReason, Speaker

RATE = 16000


class ArraySource:
    """16 kHz float32 audio per party, yielded in blocks like a file or a device."""

    live = False
    end_reason = EndReason.END_OF_AUDIO
    damaged_s = 0.0

    def __init__(
        self, parties: dict[Speaker, np.ndarray], description: str = "memory", block_s: float = 0.1
    ) -> None:
        if not parties:
            raise ValueError("no audio")
        self.parties = {speaker: np.asarray(a, np.float32) for speaker, a in parties.items()}
        self.channels = {speaker.value: speaker for speaker in self.parties}
        self.duration = max(len(a) for a in self.parties.values()) / RATE
        self._description = description
        self._block = int(RATE * block_s)

    @property
    def description(self) -> str:
        return self._description

    def blocks(self) -> Iterator[list[AudioChunk]]:
        length = max(len(a) for a in self.parties.values())
        for start in range(0, length, self._block):
            chunks = []
            for speaker, audio in self.parties.items():
                piece = audio[start : start + self._block]
                if len(piece) < self._block:
                    piece = np.pad(piece, (0, self._block - len(piece)))
                chunks.append(AudioChunk(t=start / RATE, speaker=speaker, samples=piece))
            yield chunks

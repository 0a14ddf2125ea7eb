"""What the transcriber asks of a speech model, whichever it is (Moonshine or Whisper).

A speech model is loaded once and shared by every call (`call.Models`): it holds no state of a
call or of a decode, so two calls may decode on it at the same time from their own threads.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from agent_assist.transcriber import TranscriberOptions

# Non-speech annotations and stray symbols ("[Music]", "(laughs)", Moonshine's "♪♪♪" on a hum)
# are not words anyone said.
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫*©]+")
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    return _SPACES.sub(" ", _ANNOTATION.sub(" ", text)).strip()


class Abandoned(Exception):
    """A decode given up part way (after its encoder ran), because its result is no longer wanted."""


@dataclass(frozen=True)
class HeardWord:
    """A word as the model heard it: its text, the model's probability for it and, when the model
    gives them, its times in seconds from the start of the decoded audio."""

    text: str
    p: float
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Heard:
    """One decode: its clean text and, for a final, its words (empty: nothing was said)."""

    text: str
    words: tuple[HeardWord, ...] = ()


class SpeechModel(Protocol):
    label: str  # the model's name, as `call_start` records it

    def hear(self, audio: np.ndarray, *, final: bool, options: TranscriberOptions,
             unwanted: threading.Event | None = None) -> Heard:
        """Decode 16 kHz audio: a partial's text, or a final's words. Raises `Abandoned` if
        `unwanted` is set while it runs (at least once the encoder has run)."""
        ...

    def offline(self, audio: np.ndarray) -> str:
        """The model's own transcript of a whole recording, as it would give it offline."""
        ...

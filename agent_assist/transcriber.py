"""Speech-to-text: partial and final transcripts of speech segments, from a shared speech model.

Two kinds of model do the hearing (`agent_assist.speech.SpeechModel`), chosen by `--model`; the
default is `DEFAULT_MODEL` (one line):

- `moonshine-base-en` (or `moonshine-base`; the default): Moonshine base-en, converted once from the
  PyPI package moonshine-cpp==0.1.4 into the user cache (`agent_assist.moonshine_base`) and run with
  plain onnxruntime (`agent_assist.moonshine`). Its encoder takes the audio as it is, so a decode
  costs what the utterance costs. Word times are estimated from the sound (`agent_assist.wordtimes`).
  moonshine-cpp has wheels for Linux x86-64 only: elsewhere the default is `FALLBACK_MODEL`.
- `moonshine-tiny-en`: Moonshine tiny-en from the PyPI package moonshine-voice==0.1.0, decoded as
  base-en is, with about 0.6 of its CPU; the default where base-en's package is not installed.
- `whisper-tiny.en`, or any CTranslate2 Whisper directory: Whisper through faster-whisper
  (`agent_assist.whisper`), with its own word times. It encodes a 30 s window for a final unless
  `final_window_pad_s` asks for less.

Nothing is fetched at run time: the models come in PyPI packages.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from agent_assist import wordtimes
from agent_assist.events import CallStart, Event, Partial, Speaker, SpeechSegment, Utterance, Word
from agent_assist.speech import Abandoned, Heard, SpeechModel

log = logging.getLogger(__name__)

MOONSHINE = "moonshine-tiny-en"
MOONSHINE_BASE = "moonshine-base-en"
WHISPER = "whisper-tiny.en"
# The speech model a call uses when none is named: the one line that chooses the default. Against
# Whisper tiny.en (the default before it) on this machine: utterance latency p95 0.69 s against 1.29,
# a quarter of the CPU, the same moments of the 41 labelled calls within chance (README, "Speech models").
DEFAULT_MODEL = MOONSHINE_BASE
# ...where its package is installed (moonshine-cpp's wheels are Linux x86-64 only); elsewhere this
FALLBACK_MODEL = MOONSHINE
MODELS = (MOONSHINE, MOONSHINE_BASE, WHISPER)  # the names --model knows, besides a CTranslate2 directory
ALIASES = {"moonshine-base": MOONSHINE_BASE}  # other names --model takes for one of MODELS (issue #23's)
_WORD_MARGIN_S = 0.05


@dataclass(frozen=True)
class TranscriberOptions:
    # None: DEFAULT_MODEL (FALLBACK_MODEL where its package is not installed); else a name in MODELS
    # or ALIASES, or a CTranslate2 directory
    model: str | None = None
    compute_type: str = "int8"  # Whisper
    # 0: Moonshine one thread (its decoder steps are too small to share out), Whisper all cores, at
    # most 4
    cpu_threads: int = 0
    language: str = "en"
    # Whisper: greedy. On the speech clips and the sample call (551 reference words) beam 5 got no
    # fewer words wrong (WER 4.1 % and 5.5 % both ways) and cost about 0.2 s more CPU per final.
    final_beam_size: int = 1
    partial_beam_size: int = 1
    # Whisper: a partial is decoded in a window of its audio plus this much silence, not Whisper's
    # whole 30 s: the encoder is most of the cost and scales with the window (a 3 s partial: 0.15 s,
    # not 0.56 s). 0: the full window. (Moonshine always decodes just the audio.)
    partial_window_pad_s: float = 5.0
    # Whisper: the same for finals (0: the full 30 s window Whisper was trained on; never under
    # MIN_FINAL_PAD_S, where Whisper starts to drop the last words). Audio + 8 s halves the finals'
    # CPU but costs prompts: 60 of 90 labelled moments against 63 (README, "Tried and not kept").
    final_window_pad_s: float = 0.0
    # Whisper: a decode stops after this many tokens per second of audio (and `TOKENS_BASE` more),
    # so a repetition loop on a short turn costs what the turn costs, not 448 tokens. Speech runs
    # 2-5. (Moonshine has its own cap, `moonshine.MAX_TOKENS_PER_S`, without timestamp tokens.)
    max_tokens_per_s: float = 12.0
    # Whisper: a decoded window is dropped as non-speech when Whisper itself thinks so...
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    # ...or when it is a repetition loop (Whisper's own gzip compression test).
    compression_ratio_threshold: float = 2.4
    # A final whose words are all this unlikely is taken as noise the VAD let through (Moonshine:
    # its partials too, as it has no no-speech probability of its own).
    min_mean_word_probability: float = 0.35
    # Moonshine: what it writes on silence and noise, never kept as all an utterance says
    # (compared without case or punctuation).
    silence_phrases: frozenset[str] = frozenset({"you", "thankyouforwatching"})
    # Moonshine: a partial's last word is left out when the model is this unsure of it. On the
    # customer partials of six long-turn calls, a last word under 0.5 matched the final 6 times in
    # 37 (the last word overall: 52 %, the word before it: 73 %).
    partial_last_word_min_p: float = 0.5

    @property
    def model_name(self) -> str:
        name = self.model or default_model()
        return ALIASES.get(name, name)


@functools.cache
def default_model() -> str:
    """`DEFAULT_MODEL`, or `FALLBACK_MODEL` where the default's package is not installed: looked up
    (and said) once a process, not at each call's start."""
    if DEFAULT_MODEL == MOONSHINE_BASE:
        from agent_assist import moonshine_base

        if not moonshine_base.installed():
            log.warning("the default speech model, %s, is built from moonshine-cpp, which has no wheel "
                        "for this machine: using %s", MOONSHINE_BASE, FALLBACK_MODEL)
            return FALLBACK_MODEL
    return DEFAULT_MODEL


MIN_FINAL_PAD_S = 3.0  # Whisper
TOKENS_BASE = 16  # Whisper


def load_speech_model(options: TranscriberOptions) -> SpeechModel:
    """The speech model `options` names, loaded (read-only; share it between calls)."""
    name = options.model_name
    if name == MOONSHINE:
        from agent_assist.moonshine import load_moonshine

        return load_moonshine(threads=options.cpu_threads or 1, label=MOONSHINE)
    if name == MOONSHINE_BASE:
        from agent_assist.moonshine_base import load_moonshine_base

        return load_moonshine_base(threads=options.cpu_threads or 1, label=MOONSHINE_BASE)
    from agent_assist.whisper import load_whisper

    return load_whisper(name, options.compute_type, options.cpu_threads)


class Transcriber:
    """Pipeline stage: `SpeechSegment`s in, `Partial`s and `Utterance`s out.

    Holds a call's state (its early decodes) around a shared speech model; the pipeline runs it on
    one dedicated worker thread when audio is live.
    """

    droppable_input = True  # partial requests may be skipped when this stage is busy

    def __init__(self, options: TranscriberOptions | None = None,
                 model: SpeechModel | None = None) -> None:
        self.options = options or TranscriberOptions()
        self.model = model if model is not None else load_speech_model(self.options)
        self.label = self.model.label
        self.call_id = ""
        # per party, the latest early segment and its decode, for the final that may follow
        self._early: dict[Speaker, tuple[SpeechSegment, Heard]] = {}
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
                unwanted: threading.Event | None = None) -> Heard:
        return self.model.hear(audio, final=final, options=self.options, unwanted=unwanted)

    def partial(self, segment: SpeechSegment) -> Partial | None:
        text = self._decode(segment.audio, final=False).text
        if not text:
            return None
        return Partial(t=segment.t, call_id=self.call_id, utterance_id=segment.utterance_id,
                       speaker=segment.speaker, start=segment.start, text=text)

    def _final_decode(self, segment: SpeechSegment) -> Heard:
        """The final's decode: the early one when it heard exactly this audio, else a new one."""
        early = self._early.pop(segment.speaker, None)
        if (early is not None and early[0].utterance_id == segment.utterance_id
                and early[0].audio_start == segment.audio_start
                and np.array_equal(early[0].audio, segment.audio)):
            self.early["reused"] += 1
            return early[1]
        return self._decode(segment.audio, final=True)

    def final(self, segment: SpeechSegment) -> Utterance | None:
        heard = self._final_decode(segment).words
        if not heard:
            return None
        offset = segment.audio_start
        times: list[tuple[float, float]]
        if all(w.start is not None and w.end is not None for w in heard):
            times = [(float(w.start or 0.0), float(w.end or 0.0)) for w in heard]
        else:  # the model gives no times: estimated from the sound within the VAD's span
            times = wordtimes.estimate([w.text for w in heard], segment.audio,
                                       segment.start - offset, segment.end - offset)
        # Whisper stretches the first and last words into the silence around them; the VAD's
        # onset and offset are sharper, so word times are kept within them (plus a little).
        floor = max(offset, segment.start - _WORD_MARGIN_S)
        limit = min(segment.audio_start + len(segment.audio) / 16000.0,
                    segment.end + _WORD_MARGIN_S)
        words: list[Word] = []
        for w, (w_start, w_end) in zip(heard, times, strict=True):
            start = min(max(offset + w_start, floor), limit)
            end = min(max(offset + w_end, start), limit)
            words.append(Word(text=w.text, start=round(start, 3), end=round(end, 3), p=round(w.p, 3)))
        mean_p = float(np.mean([w.p for w in words]))
        if mean_p < self.options.min_mean_word_probability:
            log.debug("dropped a low-confidence final (mean p %.2f): %r", mean_p,
                      " ".join(w.text for w in words))
            return None
        text = " ".join(w.text for w in words)
        return Utterance(t=segment.t, call_id=self.call_id, utterance_id=segment.utterance_id,
                         speaker=segment.speaker, start=words[0].start, end=words[-1].end,
                         text=text, words=tuple(words))

"""Turns each party's audio into speech segments: the VAD state machine.

Per party, 512-sample windows get a Silero speech probability. Speech starts when a window reaches
`threshold` (the segment's audio reaches back `preroll_s` so the first word is not clipped) and ends
when no window has reached `neg_threshold` for `hangover_s`. While a party in `partial_speakers`
speaks, a partial request is emitted every `partial_interval_s`, on a voiced window (in a pause the
speech may be ending, and a partial then would only hold up the final). A monologue longer than
`max_utterance_s` is cut at its latest pause and carries on as a new segment, so no word is lost or
heard twice; before that, once a segment holds `sentence_cut_s` of speech, a breath of
`sentence_pause_s` between sentences ends it. On a party whose audio came down a telephone line
(nothing over 4 kHz, `_Band`), Silero is surer of less, so the two thresholds are the options'
`narrowband_` pair instead.

A final's audio runs to `tail_s` after the last voiced window, so it is complete before the turn is
known to have ended (`hangover_s`). With `early_finals`, that audio goes to the transcriber as soon
as it is complete (an `early` segment), and decoding overlaps the rest of the hang-over; the final
itself follows when the pause has lasted `hangover_s`, with the same audio. Nobody waits for an
unpaced replay, so it asks for neither partials nor early finals (`unwatched()`): its finals are the
same either way.

This is a synchronous state machine: tests drive it with recorded audio or with scripted
probabilities (see `SegmenterOptions` and the `vad_factory` argument).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from agent_assist.events import (
    AudioChunk,
    CallEnd,
    CallStart,
    DeviceState,
    DeviceStatus,
    Event,
    Listening,
    Speaker,
    SpeechSegment,
)
from agent_assist.vad import WINDOW, SpeechProbability, VadStream

log = logging.getLogger(__name__)
RATE = 16000


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    # On telephone-band audio (nothing above 4 kHz: an 8 kHz recording or stream, or a phone line
    # captured wideband: `_Band`) Silero's speech probabilities run lower, most of all for raised,
    # tearful or frightened voices. Of RAVDESS's 709 acted clips, 84 never reached 0.5 on an 8 kHz
    # μ-law copy (17 as recorded), none of them neutral; 27 never reached 0.3. Through the pipeline,
    # the held-out actors' telephone copies lost 33 of 232 clips at 0.5/0.35 and 11 at these
    # (15 at 0.35/0.25, 11 at 0.25/0.15).
    narrowband_threshold: float = 0.3
    narrowband_neg_threshold: float = 0.2
    min_speech_s: float = 0.25
    hangover_s: float = 0.5
    preroll_s: float = 0.5
    # Silence kept after the last voiced window: 0.25 s and 0.4 s gave the same words over the
    # 551 reference words (0.15-0.3 s one word more wrong); the shorter, the earlier a final's
    # audio is complete (see `early_finals`).
    tail_s: float = 0.25
    # Decode a final's audio as soon as it is complete, while the hang-over decides whether the
    # turn has ended (0.25 s sooner); a pause that does not end the turn costs one decode.
    early_finals: bool = True
    partial_interval_s: float | None = 1.0  # None: no partials (nobody is watching)
    # Whose speech gets partials: the agent knows what they are saying, so their words wait for
    # the final, which keeps the transcriber free for the customer's (and CPU down).
    partial_speakers: frozenset[Speaker] = frozenset({Speaker.CUSTOMER, Speaker.UNKNOWN})
    # In a long turn, a breath between sentences ends the final once the segment holds this much
    # speech, so a distressed caller's monologue is scored sentence by sentence, not at its end (or
    # at the 20 s cut), and each partial decodes a short window. None: only the hang-over ends one.
    sentence_cut_s: float | None = 8.0
    sentence_pause_s: float = 0.3  # over `tail_s`, so the final reuses the early decode
    max_utterance_s: float = 20.0
    min_part_s: float = 5.0
    min_pause_s: float = 0.1

    def windows(self, seconds: float) -> int:
        return max(1, round(seconds * RATE / WINDOW))

    def unwatched(self) -> SegmenterOptions:
        """These options for a call nobody watches as it runs (an unpaced replay): no partials,
        no early finals. The finals are the same."""
        return replace(self, partial_interval_s=None, early_finals=False)


#: A telephone line carries nothing over 4 kHz (8 kHz audio cannot); a wideband microphone keeps
#: a share of its speech's energy over 4.5 kHz: over RAVDESS's and TESS's clips, a clip's median
#: share was -41 to -18 dB as recorded and -94 to -72 dB on 8 kHz μ-law copies.
_NARROW_HZ = 4500.0
_NARROW_DB = -55.0
_SOUND = 10 ** (-70.0 / 10)  # mean square of a window at -70 dBFS: quieter ones say nothing
_BAND_EMA = 0.05
_BAND_WINDOWS = 10  # windows with sound before the line is judged (0.3 s)
_BAND_SETTLED = 100  # after this many, one window in four is enough to follow it
_HANN = np.hanning(WINDOW).astype(np.float32)
_HIGH = np.fft.rfftfreq(WINDOW, 1.0 / RATE) >= _NARROW_HZ


class _Band:
    """Whether a party's audio came down a telephone line: the share of each window's energy over
    4.5 kHz, in dB, averaged over the windows with any sound in them (digital silence says
    nothing; a line's own hiss is band-limited like its speech)."""

    def __init__(self) -> None:
        self.level = 0.0
        self.seen = 0

    def observe(self, windows: np.ndarray) -> None:
        loud = np.mean(windows.astype(np.float64) ** 2, axis=1) > _SOUND
        if not loud.any():
            return
        power = np.abs(np.fft.rfft(windows[loud] * _HANN, axis=1)) ** 2
        share = 10.0 * np.log10(power[:, _HIGH].sum(axis=1) / (power.sum(axis=1) + 1e-30) + 1e-12)
        for value in share.tolist():
            self.level = value if self.seen == 0 else self.level + _BAND_EMA * (value - self.level)
            self.seen += 1

    @property
    def narrow(self) -> bool:
        return self.seen >= _BAND_WINDOWS and self.level < _NARROW_DB


class _Stream:
    """The segmenter state of one party."""

    def __init__(self, speaker: Speaker, options: SegmenterOptions, vad: SpeechProbability,
                 next_id: Callable[[Speaker], str]) -> None:
        self.speaker = speaker
        self.opt = options
        self.vad = vad
        self.next_id = next_id
        self.pending = np.zeros(0, dtype=np.float32)  # samples not yet a whole window
        self.window_index = 0  # index of the next window to be classified
        self.preroll: deque[tuple[np.ndarray, float]] = deque(maxlen=options.windows(options.preroll_s))
        # the open segment, as windows from its audio start
        self.in_speech = False
        self.seg_windows: list[np.ndarray] = []
        self.seg_probs: list[float] = []
        self.seg_first = 0  # window index of the segment's first audio window
        self.speech_first = 0  # window index of the first voiced window
        self.last_voiced = 0  # window index one past the last voiced window
        self.voiced = 0
        self.last_partial = 0  # window index at the last partial request
        interval = options.partial_interval_s
        self.partial_every = (options.windows(interval) if interval is not None
                              and speaker in options.partial_speakers else None)
        self.utterance_id = ""
        tail, hangover = options.windows(options.tail_s), options.windows(options.hangover_s)
        self.early_at = tail if options.early_finals and tail < hangover else None
        self.early_sent: threading.Event | None = None  # set if speech goes on after it
        self.band = _Band()  # whether this party's audio comes down a phone line

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, chunk: AudioChunk) -> Iterator[SpeechSegment]:
        expected = self.window_index * WINDOW + len(self.pending)
        start = round(chunk.t * RATE)
        if start > expected + WINDOW:
            # The source skipped audio (a pause in listening, a device gap): what was being said
            # has ended; restart the stream clock at the chunk.
            yield from self.finish(expected / RATE)
            self.pending = np.zeros(0, dtype=np.float32)
            self.window_index = start // WINDOW
            self.preroll.clear()
        self.pending = np.concatenate([self.pending, chunk.samples.astype(np.float32, copy=False)])
        n = len(self.pending) // WINDOW
        if n == 0:
            return
        windows = self.pending[: n * WINDOW].reshape(n, WINDOW)
        self.pending = self.pending[n * WINDOW :].copy()
        probs = self.vad(windows)
        self._judge_line(windows)
        for window, prob in zip(windows, probs, strict=True):
            yield from self._step(window, float(prob))

    def finish(self, t_end: float) -> Iterator[SpeechSegment]:
        """End of audio: classify the last part-window (zero padded) and close any open speech.

        The padding is not audio anyone heard, so no time of what comes out goes past `t_end`.
        When the audio ends in a pause that has already sent its early segment, the part-window
        (under 32 ms, mostly padding) is left out: the speech ended where the early segment said,
        and the final is its audio.
        """
        segments: list[SpeechSegment] = []
        if len(self.pending) and self.in_speech and self.early_sent is not None:
            self.pending = np.zeros(0, dtype=np.float32)
        if len(self.pending):
            window = np.zeros(WINDOW, dtype=np.float32)
            window[: len(self.pending)] = self.pending
            self.pending = np.zeros(0, dtype=np.float32)
            for prob in self.vad(window[None, :]):
                segments += self._step(window, float(prob))
        if self.in_speech:
            segments += self._close(t_end)
        for segment in segments:
            yield replace(segment, t=min(segment.t, t_end), end=min(segment.end, t_end))

    @property
    def threshold(self) -> float:
        """Where speech starts: the options' threshold, or its telephone-band one on a phone line."""
        return self.opt.narrowband_threshold if self.band.narrow else self.opt.threshold

    @property
    def neg_threshold(self) -> float:
        """What holds speech on, likewise."""
        return self.opt.narrowband_neg_threshold if self.band.narrow else self.opt.neg_threshold

    def _judge_line(self, windows: np.ndarray) -> None:
        was = self.band.narrow
        if self.band.seen >= _BAND_SETTLED:
            windows = windows[(self.window_index + np.arange(len(windows))) % 4 == 0]
        self.band.observe(windows)
        if self.band.narrow != was:
            log.info("%s: %s audio: speech from a probability of %.2f", self.speaker,
                     "telephone-band" if self.band.narrow else "wideband", self.threshold)

    # -- the state machine ---------------------------------------------------------------------

    def _step(self, window: np.ndarray, prob: float) -> Iterator[SpeechSegment]:
        opt = self.opt
        index = self.window_index
        self.window_index += 1
        if not self.in_speech:
            self.preroll.append((window, prob))
            if prob >= self.threshold:
                self._open(index)
            return
        self.seg_windows.append(window)
        self.seg_probs.append(prob)
        if prob >= self.neg_threshold:
            self.last_voiced = index + 1
            self.voiced += 1
            self._supersede_early()
        now = index + 1
        if now - self.last_voiced >= opt.windows(opt.hangover_s):
            yield from self._close(now * WINDOW / RATE)
        elif (opt.sentence_cut_s is not None and now - self.last_voiced >= opt.windows(opt.sentence_pause_s)
              and self.last_voiced - self.speech_first >= opt.windows(opt.sentence_cut_s)):
            yield from self._close(now * WINDOW / RATE)  # a breath after a sentence of a long turn
        elif now - self.seg_first >= opt.windows(opt.max_utterance_s):
            yield from self._cut(now)
        elif (now - self.last_voiced == self.early_at
              and self.voiced >= opt.windows(opt.min_speech_s)):
            # the final's audio is complete: it may be decoded while the pause decides
            self.early_sent = threading.Event()
            yield replace(self._segment(now, final=True), final=False, early=True,
                          superseded=self.early_sent)
        elif (self.partial_every is not None and prob >= self.neg_threshold  # not while it may end
              and self.voiced >= opt.windows(opt.min_speech_s)
              and now - self.last_partial >= self.partial_every):
            self.last_partial = now
            yield self._segment(now, final=False)

    def _supersede_early(self) -> None:
        """Speech went on: the early segment sent in the pause is not the final's audio."""
        if self.early_sent is not None:
            self.early_sent.set()
            self.early_sent = None

    def _open(self, index: int) -> None:
        self.in_speech = True
        self.seg_windows = [w for w, _ in self.preroll]
        self.seg_probs = [p for _, p in self.preroll]
        self.preroll.clear()
        self.seg_first = index + 1 - len(self.seg_windows)
        self.speech_first = index
        self.last_voiced = index + 1
        self.voiced = 1
        self.last_partial = self.seg_first
        self.utterance_id = self.next_id(self.speaker)

    def _segment(self, now: int, final: bool) -> SpeechSegment:
        if final:
            stop = min(now, self.last_voiced + self.opt.windows(self.opt.tail_s))
            end = self.last_voiced
        else:
            stop = end = now
        count = stop - self.seg_first
        audio = np.concatenate(self.seg_windows[:count]) if count > 0 else np.zeros(0, np.float32)
        return SpeechSegment(
            t=now * WINDOW / RATE,
            speaker=self.speaker,
            utterance_id=self.utterance_id,
            start=self.speech_first * WINDOW / RATE,
            end=end * WINDOW / RATE,
            audio_start=self.seg_first * WINDOW / RATE,
            audio=audio,
            final=final,
        )

    def _close(self, t: float) -> Iterator[SpeechSegment]:
        now = self.window_index
        if self.voiced >= self.opt.windows(self.opt.min_speech_s):
            yield replace(self._segment(now, final=True), t=t)
        else:
            log.debug("%s: %.2f s blip ignored", self.speaker, self.voiced * WINDOW / RATE)
        self.early_sent = None  # the final has the early segment's audio (or never had one)
        # the trailing silence becomes the next segment's pre-roll: only the silence, so a short
        # pause (a sentence cut) gives the next segment none of this one's last word
        silent = max(1, min(self.preroll.maxlen or 1, now - self.last_voiced))
        tail = list(zip(self.seg_windows, self.seg_probs, strict=True))[-silent:]
        self.preroll.clear()
        self.preroll.extend(tail)
        self.in_speech = False
        self.seg_windows, self.seg_probs = [], []

    def _cut(self, now: int) -> Iterator[SpeechSegment]:
        """Split an over-long segment at its latest pause (or, failing that, its quietest window)."""
        opt = self.opt
        lo = opt.windows(opt.min_part_s)  # offsets within the segment
        hi = len(self.seg_probs) - opt.windows(0.3)
        need = opt.windows(opt.min_pause_s)
        pauses: list[tuple[int, int]] = []  # runs of unvoiced windows, as [first, stop) offsets
        offset = lo
        while offset < hi:
            if self.seg_probs[offset] < self.neg_threshold:
                stop = offset
                while stop < hi and self.seg_probs[stop] < self.neg_threshold:
                    stop += 1
                if stop - offset >= need:
                    pauses.append((offset, stop))
                offset = stop
            else:
                offset += 1
        cut = (pauses[-1][0] + pauses[-1][1]) // 2 if pauses else None
        if cut is None:
            cut = lo + int(np.argmin(self.seg_probs[lo:hi])) if hi > lo else hi
            log.info("%s: %.0f s of speech without a pause; cut at its quietest point",
                     self.speaker, opt.max_utterance_s)
        self._supersede_early()
        cut_index = self.seg_first + cut
        # the first part ends at the cut; its last voiced window is before the cut
        voiced_before = [i for i in range(cut) if self.seg_probs[i] >= self.neg_threshold]
        saved_last_voiced = self.last_voiced
        self.last_voiced = self.seg_first + (voiced_before[-1] + 1 if voiced_before else cut)
        first = self._segment(cut_index, final=True)
        yield replace(first, t=now * WINDOW / RATE)
        # the rest carries on as a new utterance
        rest_windows, rest_probs = self.seg_windows[cut:], self.seg_probs[cut:]
        self.seg_windows, self.seg_probs = rest_windows, rest_probs
        self.seg_first = cut_index
        voiced_after = [i for i, p in enumerate(rest_probs) if p >= self.neg_threshold]
        self.speech_first = cut_index + (voiced_after[0] if voiced_after else 0)
        self.voiced = len(voiced_after)
        self.last_voiced = saved_last_voiced
        self.last_partial = cut_index
        self.utterance_id = self.next_id(self.speaker)


VadFactory = Callable[[], SpeechProbability]


class Segmenter:
    """Pipeline stage: `AudioChunk`s in, `SpeechSegment`s out; other events pass through."""

    droppable_input = False

    def __init__(self, options: SegmenterOptions | None = None,
                 vad_factory: VadFactory = VadStream) -> None:
        self.options = options or SegmenterOptions()
        self.vad_factory = vad_factory
        self._streams: dict[Speaker, _Stream] = {}
        self._counter = 0

    def _next_id(self, speaker: Speaker) -> str:
        self._counter += 1
        return f"u{self._counter}"

    def _stream(self, speaker: Speaker) -> _Stream:
        stream = self._streams.get(speaker)
        if stream is None:
            stream = _Stream(speaker, self.options, self.vad_factory(), self._next_id)
            self._streams[speaker] = stream
        return stream

    def process(self, event: Event) -> Iterator[Event]:
        if isinstance(event, AudioChunk):
            yield from self._stream(event.speaker).feed(event)
            return
        if isinstance(event, CallStart):
            self._streams.clear()
            self._counter = 0
        elif isinstance(event, CallEnd) or (isinstance(event, Listening) and event.paused):
            # the end of the call, or a pause in listening: what was being said ends here
            finals = [s for stream in self._streams.values() for s in stream.finish(event.t)]
            yield from sorted(finals, key=lambda s: (s.end, s.speaker))
        elif isinstance(event, DeviceStatus) and event.state == DeviceState.LOST:
            for speaker in event.parties:
                if speaker in self._streams:
                    yield from self._streams[speaker].finish(event.t)
        yield event

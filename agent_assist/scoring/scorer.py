"""Pipeline stages that score each customer utterance for distress, escalation and crisis.

```
segmenter ──► VoiceAnalyser ──► transcriber ──► Scorer ──► sinks
              (features of the     (words)       (text + voice + call context
               final segment's                    → utterance.scores)
               speech)
```

`VoiceAnalyser` measures the voice of each final segment (cheap numpy, inline) and sends the
features ahead of the segment as an internal `VoiceFeatures` event; the transcriber passes it
through. `Scorer` joins them by utterance id when the transcript arrives, fuses text and voice, and
keeps the call's context: each speaker's acoustic baseline and a smoothed trend of the scores.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from agent_assist.events import (
    CallStart,
    Event,
    Partial,
    Scores,
    Speaker,
    SpeechSegment,
    Utterance,
    VoiceFeatures,
)
from agent_assist.scoring import acoustic
from agent_assist.scoring.models import Classifiers, shipped
from agent_assist.scoring.turns import Turn

log = logging.getLogger(__name__)

RATE = 16000
#: A partial is scored on the turn's last this many words (about 15 s of speech, one window of the
#: text model), so each costs the same however long the turn has run.
PARTIAL_WORDS = 40
#: A partial of fewer words is not scored: a fragment ("I can't breathe", cut from "...properly when a
#: bill comes") read out of its sentence gave false crisis cards on the labelled calls (5 prompts on
#: 7 calm calls; 1 with this), and a turn that short is final within a second or two anyway.
MIN_PARTIAL_WORDS = 8
SCORED_SPEAKERS = (Speaker.CUSTOMER, Speaker.UNKNOWN)


class VoiceAnalyser:
    """Stage: final `SpeechSegment` → `VoiceFeatures` (then the segment itself)."""

    droppable_input = False

    def process(self, event: Event) -> Iterator[Event]:
        if isinstance(event, SpeechSegment) and event.final and event.speaker in SCORED_SPEAKERS:
            lo = max(0, int((event.start - event.audio_start) * RATE))
            hi = max(lo, int((event.end - event.audio_start) * RATE))
            speech = event.audio[lo:hi]
            if len(speech) >= RATE // 10:
                yield VoiceFeatures(
                    t=event.t,
                    speaker=event.speaker,
                    utterance_id=event.utterance_id,
                    features=acoustic.features(speech),
                    speech_s=len(speech) / RATE,
                )
        yield event


@dataclass
class Trend:
    """A smoothed level of one score over the customer's turns, and how much it has risen.

    `level` is an exponential moving average (each new turn weighs `alpha`); `rise` is the level now
    minus the level `lookback` turns ago (or 0 at the start of the call), so rules can say "rising"
    as well as "high".
    """

    alpha: float = 0.4
    lookback: int = 3
    level: float = 0.0
    _history: deque[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.lookback + 1)

    def add(self, value: float) -> tuple[float, float]:
        self.level = value if not self._history else (1 - self.alpha) * self.level + self.alpha * value
        self._history.append(self.level)
        rise = self.level - self._history[0] if len(self._history) > self.lookback else 0.0
        return self.level, rise


@dataclass(frozen=True)
class TextRead:
    """The text model's view of one turn's words: signals (distress, escalation, crisis) and kind."""

    signals: np.ndarray
    kind: str
    kinds: dict[str, float]


class Scorer:
    """Stage: attaches `Scores` to every final customer (or unknown-party) utterance."""

    droppable_input = False

    def __init__(
        self, classifiers: Classifiers | None = None, *, use_voice: bool = True, use_baseline: bool = True,
        score_partials: bool = True,
    ) -> None:
        self.models = classifiers or shipped()
        self.use_voice = use_voice
        self.use_baseline = use_baseline
        self.score_partials = score_partials
        self._reset()

    def _reset(self) -> None:
        # the latest reading of a turn's words: a partial that says nothing new, or a final whose
        # words are the last partial's, is not read again
        self._read: tuple[tuple[str, str], TextRead] | None = None
        self._agent_said = ""  # the agent's latest words, and the customer's: the next turn's context
        self._customer_said = ""
        self._voice: dict[str, VoiceFeatures] = {}
        self._baselines: dict[Speaker, acoustic.SpeakerBaseline] = {}
        self._trends = {"distress": Trend(), "escalation": Trend()}

    def process(self, event: Event) -> Iterator[Event]:
        if isinstance(event, VoiceFeatures):
            self._voice[event.utterance_id] = event
            return
        if isinstance(event, CallStart):
            self._reset()
        elif (isinstance(event, Partial) and event.speaker in SCORED_SPEAKERS and self.score_partials
              and len(event.text.split()) >= MIN_PARTIAL_WORDS):
            event = replace(event, scores=self.score_partial(event))
        elif isinstance(event, Utterance) and event.speaker in SCORED_SPEAKERS:
            event = replace(event, scores=self.score(event))
            self._customer_said = event.text
            self._read = None
        elif isinstance(event, Utterance) and event.speaker == Speaker.AGENT:
            self._agent_said = event.text
        yield event

    def context(self, text: str) -> Turn:
        """`text` as the text model reads it: after the customer's previous turn and the agent's
        latest words."""
        return Turn(text, agent_prev=self._agent_said, customer_prev=self._customer_said)

    def read_words(self, utterance_id: str, words: list[str]) -> TextRead:
        """The text model's reading of a turn's `words` in the call's context, once per wording."""
        key = (utterance_id, " ".join(words))
        if self._read is None or self._read[0] != key:
            read = self.models.score_turns([self.context(key[1])])
            self._read = (key, TextRead(read.signals[0], read.kind(0), read.kinds_of(0)))
        return self._read[1]

    def score_partial(self, partial: Partial) -> Scores:
        """The words heard so far in a turn, from the words alone (the voice joins at the final):
        only the last `PARTIAL_WORDS` of them, after the same context as the final's, since the
        rules want what is new, and a long turn would otherwise cost more with every second. The
        call's trend is left for the final."""
        read = self.read_words(partial.utterance_id, partial.text.split()[-PARTIAL_WORDS:])
        p, last = read.signals, self._trends
        return Scores(
            distress=float(p[0]), escalation=float(p[1]), crisis=float(p[2]),
            text={"distress": float(p[0]), "escalation": float(p[1]), "crisis": float(p[2])},
            acoustic=None, baseline=False,
            trend={"distress": last["distress"].level, "escalation": last["escalation"].level,
                   "distress_rise": 0.0, "escalation_rise": 0.0},
            kind=read.kind, kinds=read.kinds,
        )

    def score(self, utt: Utterance) -> Scores:
        read = self.read_words(utt.utterance_id, utt.text.split())
        text_p = read.signals[None, :]
        voice = self._voice.pop(utt.utterance_id, None)
        voice_p = None
        baseline_used = False
        if self.use_voice and voice is not None:
            feats = voice.features.copy()
            rate_at = acoustic.FEATURES.index("words_per_s")
            duration = max(utt.end - utt.start, voice.speech_s * 0.5)
            feats[rate_at] = acoustic.rate(len(utt.words) or len(utt.text.split()), duration)
            baseline = self._baselines.setdefault(utt.speaker, acoustic.SpeakerBaseline())
            base = baseline.value if self.use_baseline else None
            baseline_used = base is not None
            rel = acoustic.relative(feats, base)
            voice_p = self.models.score_voice(
                feats[None, :], rel[None, :], np.array([1.0 if baseline_used else 0.0], np.float32)
            )
            baseline.add(feats)
        fused = self.models.fuse(
            text_p, voice_p, baseline_used, voice.speech_s if voice is not None else 0.0
        )[0]
        distress, escalation = float(fused[0]), float(fused[1])
        d_level, d_rise = self._trends["distress"].add(distress)
        e_level, e_rise = self._trends["escalation"].add(escalation)
        return Scores(
            distress=distress,
            escalation=escalation,
            crisis=float(text_p[0, 2]),
            text={
                "distress": float(text_p[0, 0]),
                "escalation": float(text_p[0, 1]),
                "crisis": float(text_p[0, 2]),
            },
            acoustic=None if voice_p is None else self.models.voice_parts(voice_p[0]),
            baseline=baseline_used,
            kind=read.kind, kinds=read.kinds,
            trend={
                "distress": d_level,
                "escalation": e_level,
                "distress_rise": d_rise,
                "escalation_rise": e_rise,
            },
        )

"""One call, however it arrives: its options, the models it shares, and its fresh stages.

Every entry point (a replayed file, live devices, the benchmark, the quality team's evaluations, and
the network server to come) builds a call here, so a call is assembled the same way everywhere:

```
Models.load(options)          once: the speech model, the classifiers, the rule pack (read-only,
                              shared by any number of calls, at the same time or one after another)
call_stages(models, options)  per call: a segmenter, the voice analyser, a transcriber, a scorer and
                              a rules engine, each holding only that call's state
```

The models hold no state of a call: the speech model keeps a decode's state in the decode
(Moonshine) or per thread (Whisper), onnxruntime sessions may run from several threads, and a
`Pack` is frozen. Everything a call remembers (the VAD's state, the early decode waiting for its
final, the customer's baseline and trend, which rules have fired) lives in its stages, which are
built new for each call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent_assist.memory import large_buffers_unmapped_when_freed
from agent_assist.pipeline import Stage
from agent_assist.rules.engine import RulesEngine
from agent_assist.rules.packs import Pack, load_for_run
from agent_assist.scoring.models import Classifiers
from agent_assist.scoring.scorer import Scorer, VoiceAnalyser
from agent_assist.segmenter import Segmenter, SegmenterOptions
from agent_assist.speech import SpeechModel
from agent_assist.transcriber import Transcriber, TranscriberOptions, load_speech_model


@dataclass(frozen=True)
class CallOptions:
    """What a call runs, wherever its audio comes from (a file's and a device's own options extend
    this: `replay.ReplayOptions`, `live.SessionOptions`)."""

    scoring: bool = True  # attach distress/escalation/crisis scores to customer utterances
    rules: bool = True  # run the prompt rules (needs scoring)
    site_packs: tuple[Path, ...] = ()  # rule packs layered on the default pack
    # Partial transcripts, and the prompts that may fire on them. An unpaced replay decodes them in
    # lock-step (every ~1 s of a customer's speech), so it shows the prompts a live call would.
    # False skips them (a replay in half the time, with the same finals, for transcripts alone).
    partials: bool = True
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    transcriber: TranscriberOptions = field(default_factory=TranscriberOptions)

    @property
    def runs_rules(self) -> bool:
        return self.scoring and self.rules


def _speech_key(options: TranscriberOptions) -> tuple[Any, ...]:
    """What loading the speech model depends on (the rest of the options are per decode)."""
    return options.model_name, options.compute_type, options.cpu_threads


def _pack_key(options: CallOptions) -> tuple[Any, ...]:
    return (options.runs_rules, tuple(options.site_packs))


@dataclass(frozen=True)
class Models:
    """The read-only models a call uses, loaded once and shared by every call that runs on them."""

    speech: SpeechModel  # `transcriber.DEFAULT_MODEL` unless the options name another (`MODELS`)
    classifiers: Classifiers | None  # None: calls are not scored
    pack: Pack | None  # None: no rules run
    speech_key: tuple[Any, ...] = ()
    pack_key: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        """The speech model's name, as `call_start` records it."""
        return self.speech.label

    @classmethod
    def load(cls, options: CallOptions | None = None) -> Models:
        """Load what `options` needs: the rule pack first (a broken site pack fails in a moment, not
        after the speech model has loaded), then the speech model, warmed up, then the classifiers."""
        options = options or CallOptions()
        large_buffers_unmapped_when_freed()  # the process runs calls: see agent_assist/memory.py
        pack = load_for_run(options.site_packs) if options.runs_rules else None
        speech = load_speech_model(options.transcriber)
        Transcriber(options.transcriber, model=speech).warm_up()
        classifiers = Classifiers() if options.scoring else None
        return cls(speech, classifiers, pack, _speech_key(options.transcriber), _pack_key(options))

    def fit(self, options: CallOptions) -> Models:
        """These models for a call with `options`: what they already hold is reused, and only what
        `options` asks for differently (another rule pack, another speech model, scoring) is loaded."""
        models = self
        if _pack_key(options) != self.pack_key:
            pack = load_for_run(options.site_packs) if options.runs_rules else None
            models = replace(models, pack=pack, pack_key=_pack_key(options))
        if options.scoring and models.classifiers is None:
            models = replace(models, classifiers=Classifiers())
        if _speech_key(options.transcriber) != self.speech_key:
            speech = load_speech_model(options.transcriber)
            Transcriber(options.transcriber, model=speech).warm_up()
            models = replace(models, speech=speech, speech_key=_speech_key(options.transcriber))
        return models


def segmenter_options(options: CallOptions, *, watched: bool) -> SegmenterOptions:
    """The segmenter's options for a call: `watched` when someone (a live call, a paced replay, the
    overlay) waits for each event as it comes; an unwatched replay skips early finals, which would
    only add work, and partials when `options` asks for none."""
    segmenter = options.segmenter
    if not options.partials:
        segmenter = replace(segmenter, partial_interval_s=None)
    if not watched:
        segmenter = replace(segmenter, early_finals=False)
    return segmenter


def call_stages(models: Models, options: CallOptions, *, watched: bool = True,
                scorer: Stage | None = None) -> list[Stage]:
    """The stages of one call, each new and holding only this call's state, around the shared
    `models`. `scorer` replaces the call's own scorer (an evaluation that scores two ways).

    Unscored, a call is transcribed only; rules run only on scores."""
    transcriber = Transcriber(options.transcriber, model=models.speech)
    segmenter = Segmenter(segmenter_options(options, watched=watched))
    if not options.scoring:
        return [segmenter, transcriber]
    if scorer is None:
        if models.classifiers is None:
            raise ValueError("these models were loaded without scoring")
        scorer = Scorer(models.classifiers)
    stages: list[Stage] = [segmenter, VoiceAnalyser(), transcriber, scorer]
    if options.runs_rules and models.pack is not None:
        stages.append(RulesEngine(models.pack))
    return stages

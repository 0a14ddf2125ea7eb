"""Replay a recorded call through the same pipeline a live call uses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent_assist.audio.files import ChannelLayout, FileSource
from agent_assist.events import CallEnd
from agent_assist.pipeline import AgentDesk, Pipeline, Sink, Stage
from agent_assist.rules.engine import RulesEngine
from agent_assist.rules.packs import Pack, load_for_run
from agent_assist.scoring.scorer import Scorer, VoiceAnalyser
from agent_assist.segmenter import Segmenter, SegmenterOptions
from agent_assist.transcriber import Transcriber, TranscriberOptions


@dataclass(frozen=True)
class ReplayOptions:
    realtime: bool = False
    layout: ChannelLayout = ChannelLayout.AUTO
    customer_channel: str = "left"
    call_id: str | None = None
    scoring: bool = True  # attach distress/escalation/crisis scores to customer utterances
    rules: bool = True  # run the prompt rules (needs scoring)
    site_packs: tuple[Path, ...] = ()  # rule packs layered on the default pack
    # Partial transcripts, and the prompts that may fire on them: an unpaced replay decodes them in
    # lock-step (every ~1 s of a customer's speech), so it shows the prompts a live call would.
    # False skips them (a replay in half the time, with the same finals, for transcripts alone).
    partials: bool = True
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    transcriber: TranscriberOptions = field(default_factory=TranscriberOptions)


def call_stages(segmenter: SegmenterOptions, transcriber: Transcriber, scorer: Scorer | None,
                pack: Pack | None) -> list[Stage]:
    """The stages of one call, live or replayed: fresh per-call state around shared models.

    `scorer=None` leaves utterances unscored; `pack=None` runs no rules (rules need scores).
    """
    if scorer is None:
        return [Segmenter(segmenter), transcriber]
    stages: list[Stage] = [Segmenter(segmenter), VoiceAnalyser(), transcriber, scorer]
    if pack is not None:
        stages.append(RulesEngine(pack))
    return stages


class Replay:
    """A recorded call ready to run: the file is checked first, then the models load.

    Checking the file before loading any model means a bad file fails fast with a clear message.
    `transcriber` and `scorer` let a caller reuse already loaded models across calls. With a `desk`
    (the overlay's way in for the agent's flags and feedback) the call's pipeline is attached to it
    while it runs; `sinks` should then be the desk's.
    """

    def __init__(self, path: Path, sinks: Sequence[Sink], options: ReplayOptions | None = None,
                 transcriber: Transcriber | None = None, scorer: Scorer | None = None,
                 desk: AgentDesk | None = None) -> None:
        self.desk = desk
        self.options = options or ReplayOptions()
        self.source = FileSource(path, layout=self.options.layout,
                                 customer_channel=self.options.customer_channel)
        opts = self.options
        pack = load_for_run(opts.site_packs) if opts.scoring and opts.rules else None  # fail fast too
        self.transcriber = transcriber or Transcriber(self.options.transcriber)
        self.transcriber.warm_up()
        if opts.scoring:
            scorer = scorer or Scorer()
        segmenter = opts.segmenter
        watched = opts.realtime or desk is not None  # someone waits for each event as it comes
        if not opts.partials:
            segmenter = replace(segmenter, partial_interval_s=None)
        if not watched:  # early finals would only add work: nothing waits for them
            segmenter = replace(segmenter, early_finals=False)
        stages = call_stages(segmenter, self.transcriber, scorer if opts.scoring else None, pack)
        self.pipeline = Pipeline(stages, sinks,
                                 realtime=self.options.realtime, model_label=self.transcriber.label)
        self.call_id = self.options.call_id or uuid.uuid4().hex[:12]

    def run(self) -> CallEnd:
        if self.desk is None:
            return self.pipeline.run(self.source, self.call_id)
        self.desk.attach(self.pipeline)
        try:
            return self.pipeline.run(self.source, self.call_id)
        finally:
            self.desk.attach(None)

    def stop(self) -> None:
        self.pipeline.stop()


def replay(path: Path, sinks: Sequence[Sink], options: ReplayOptions | None = None,
           transcriber: Transcriber | None = None, scorer: Scorer | None = None) -> CallEnd:
    """Run the call in `path` through the pipeline into `sinks` and return its `call_end`."""
    return Replay(path, sinks, options, transcriber, scorer).run()

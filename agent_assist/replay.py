"""Replay a recorded call through the same pipeline a live call uses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_assist.audio.files import ChannelLayout, FileSource
from agent_assist.call import CallOptions, Models, call_stages
from agent_assist.events import CallEnd
from agent_assist.pipeline import AgentDesk, Pipeline, Sink


@dataclass(frozen=True)
class ReplayOptions(CallOptions):
    """A call's options (`CallOptions`), and how its file is read and paced."""

    realtime: bool = False
    layout: ChannelLayout = ChannelLayout.AUTO
    customer_channel: str = "left"
    call_id: str | None = None


class Replay:
    """A recorded call ready to run: the file is checked first, then the models load.

    Checking the file before loading any model means a bad file fails fast with a clear message.
    `models` lets a caller reuse models already loaded (`Models.load`) across calls. With a `desk`
    (the overlay's way in for the agent's flags and feedback) the call's pipeline is attached to it
    while it runs; `sinks` should then be the desk's.
    """

    def __init__(self, path: Path, sinks: Sequence[Sink], options: ReplayOptions | None = None,
                 models: Models | None = None, desk: AgentDesk | None = None) -> None:
        self.desk = desk
        self.options = opts = options or ReplayOptions()
        self.source = FileSource(path, layout=opts.layout, customer_channel=opts.customer_channel)
        self.models = models.fit(opts) if models is not None else Models.load(opts)
        watched = opts.realtime or desk is not None  # someone waits for each event as it comes
        self.pipeline = Pipeline(call_stages(self.models, opts, watched=watched), sinks,
                                 realtime=opts.realtime, model_label=self.models.label)
        self.call_id = opts.call_id or uuid.uuid4().hex[:12]

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
           models: Models | None = None) -> CallEnd:
    """Run the call in `path` through the pipeline into `sinks` and return its `call_end`."""
    return Replay(path, sinks, options, models).run()

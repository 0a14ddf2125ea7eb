"""Pipeline wiring: ordering, the drop policy when a live model falls behind, and code hygiene."""

import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from agent_assist.audio.files import FileSource
from agent_assist.events import CallEnd, Dropped, Event, Partial, SpeechSegment, Utterance
from agent_assist.pipeline import Pipeline
from agent_assist.segmenter import Segmenter
from tests.conftest import REPO, SPEECH, Collector


class SlowTranscriber:
    """Stands in for Whisper: takes `delay` seconds per request, so a paced call outruns it."""

    droppable_input = True

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.seen_threads: set[str] = set()
        self._pause = threading.Event()

    def process(self, event: Event) -> Iterator[Event]:
        self.seen_threads.add(threading.current_thread().name)
        if isinstance(event, SpeechSegment):
            self._pause.wait(self.delay)  # simulated work, on the worker thread
            if event.final:
                yield Utterance(t=event.t, call_id="c", utterance_id=event.utterance_id,
                                speaker=event.speaker, start=event.start, end=event.end, text="x")
            else:
                yield Partial(t=event.t, call_id="c", utterance_id=event.utterance_id,
                              speaker=event.speaker, start=event.start, text="x")
            return
        yield event


def run(realtime: bool, delay: float) -> tuple[Collector, CallEnd, SlowTranscriber]:
    sink = Collector()
    slow = SlowTranscriber(delay)
    pipeline = Pipeline([Segmenter(), slow], [sink], realtime=realtime)
    end = pipeline.run(FileSource(SPEECH / "jfk.flac"), "c")
    return sink, end, slow


@pytest.mark.system  # paced at real time (11 s)
def test_a_slow_live_transcriber_skips_partials_counts_them_and_keeps_every_final():
    fast_sink, fast_end, fast = run(realtime=False, delay=0.0)
    sink, end, slow = run(realtime=True, delay=1.5)
    assert end.partials_dropped > 0
    assert end.partials + end.partials_dropped >= fast_end.partials - 1
    reports = [e for e in sink.events if isinstance(e, Dropped)]  # every skip reported, in few events
    assert sum(r.count for r in reports) == end.partials_dropped == reports[-1].total
    assert {r.what for r in reports} == {"partial"}
    assert not [e for e in fast_sink.events if isinstance(e, Dropped)]
    assert [u.utterance_id for u in sink.utterances] == [u.utterance_id for u in fast_sink.utterances]
    assert any("worker" in name for name in slow.seen_threads)  # the model ran off the pipeline thread
    assert fast.seen_threads == {threading.current_thread().name}  # lock-step when not live
    assert isinstance(sink.events[-1], CallEnd)


def test_events_reach_the_sinks_in_call_order_per_party():
    sink, _, _ = run(realtime=False, delay=0.0)
    times = [e.t for e in sink.events]
    assert times == sorted(times)
    assert np.isclose(sink.events[-1].t, 11.0, atol=0.01)


def test_ruff_and_mypy_are_clean():
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "agent_assist", "ui", "tests",
                           "data/samples", "bench"],
                          cwd=REPO, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run([sys.executable, "-m", "mypy", "agent_assist", "ui"], cwd=REPO,
                          capture_output=True, text=True)
    assert mypy.returncode == 0, mypy.stdout

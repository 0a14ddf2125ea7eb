"""Shared fixtures: real recordings, the real speech models (loaded once), and an event collector."""

from __future__ import annotations

import atexit
import csv
import fcntl
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from agent_assist.call import Models
from agent_assist.events import PublicEvent
from agent_assist.replay import ReplayOptions, replay
from agent_assist.sinks import EventList
from agent_assist.transcriber import Transcriber

# the suite's layers (unit, models, system): assigned by the fixtures a test uses, and enforced; and
# where each test runs when the suite is spread over processes (tests/schedule.py)
pytest_plugins = ["tests.layers", "tests.schedule", "pytester"]

# Qt widgets in tests draw offscreen unless a test starts its own X server (tests/test_overlay_x11.py)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# `run` writes to the flag store in the user's data directory: in tests, a throwaway one, removed
# when the test process ends
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="agent-assist-tests-data-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], ignore_errors=True)

DATA = Path(__file__).parent / "data"
SPEECH = DATA / "speech"
REPO = Path(__file__).parent.parent
SAMPLES = REPO / "data" / "samples"
# Harper Valley's simulated bank calls (Apache-2.0, LICENSE beside them): calm callers, so any
# prompt or score over its operating point on them is a false alarm
HARPER = DATA / "calls" / "harper_valley" / "harper_valley_dev.jsonl"
#: the kind set: does the crisis kind follow the harm or who is mentioned (tests/data/kinds/README.md)
KIND_SET = DATA / "kinds" / "who_is_in_danger.jsonl"
#: risks said beside words that deny the drama, not the risk: written for
#: test_classifiers.test_words_that_deny_the_drama_do_not_deny_the_risk, apart from every training
#: and evaluation set (test_training_data keeps the turns waiting for a round apart from them)
DENIED_DRAMA = ["ill kill myself im not being dramatic",
                "i swear i'm not putting it on, i'm going to take my life tonight",
                "and no, i'm not saying it to get my way, i will hurt myself",
                "i'm not trying to be difficult, i just don't see the point in living any more",
                "he's strangled me before and he said next time he won't stop"]


class Collector(EventList):
    """A sink that keeps every event in memory."""


class Timed(EventList):
    """Keeps events and the wall-clock moment each arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def emit(self, event: PublicEvent) -> None:
        self.at.append(time.monotonic())
        super().emit(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def normalise(text: str) -> str:
    """Case and punctuation do not count as recognition errors."""
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text.lower())).strip()


def references() -> list[dict[str, str]]:
    with (SPEECH / "transcripts.tsv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="session")
def call_models() -> Models:
    """The product's models (the default speech model, the classifiers, the default pack), loaded
    once and shared by every test's calls, as a server shares them between its calls."""
    return Models.load()


@pytest.fixture(scope="session")
def classifiers():
    """The shipped classifiers for tests that score many texts at once: the text model on every
    core, as `classifiers eval` runs it (the same scores, to the bit, as on a call's one thread)."""
    from agent_assist.scoring.models import Classifiers

    return Classifiers(encoder_threads=os.cpu_count() or 1)


@pytest.fixture
def transcriber(call_models: Models) -> Transcriber:
    """A transcriber stage of its own (a call's state) on the shared speech model."""
    return Transcriber(model=call_models.speech)


def _with_speech_model(call_models: Models, name: str) -> Models:
    """The product's models with `name` as the speech model: `call_models` itself when that is the
    default, else the same classifiers and pack around the other speech model, loaded once."""
    from agent_assist.call import CallOptions
    from agent_assist.transcriber import TranscriberOptions

    return call_models.fit(CallOptions(transcriber=TranscriberOptions(model=name)))


@pytest.fixture(scope="session")
def whisper_models(call_models: Models) -> Models:
    """The models with Whisper tiny.en (`--model whisper-tiny.en`) as the speech model."""
    from agent_assist.transcriber import WHISPER

    return _with_speech_model(call_models, WHISPER)


@pytest.fixture(scope="session")
def moonshine_models(call_models: Models) -> Models:
    """The models with Moonshine tiny-en (`--model moonshine-tiny-en`) as the speech model."""
    from agent_assist.transcriber import MOONSHINE

    return _with_speech_model(call_models, MOONSHINE)


@pytest.fixture(scope="session")
def moonshine_base_models(call_models: Models) -> Models:
    """The models with Moonshine base-en (`--model moonshine-base-en`) as the speech model (built
    into the user cache first, if set-up has not built it)."""
    from agent_assist.transcriber import MOONSHINE_BASE

    return _with_speech_model(call_models, MOONSHINE_BASE)


@pytest.fixture(params=["whisper-tiny.en", "moonshine-tiny-en", "moonshine-base-en"])
def each_speech_model(request: pytest.FixtureRequest, call_models: Models) -> Models:
    """The product's models on each speech model in turn, for what any speech model must do."""
    return _with_speech_model(call_models, request.param)


@pytest.fixture
def whisper_transcriber(whisper_models: Models) -> Transcriber:
    """A transcriber stage of its own on the shared Whisper tiny.en."""
    return Transcriber(model=whisper_models.speech)


@pytest.fixture
def moonshine_transcriber(moonshine_models: Models) -> Transcriber:
    """A transcriber stage of its own on the shared Moonshine tiny-en."""
    return Transcriber(model=moonshine_models.speech)


@pytest.fixture
def run_replay(call_models: Models):
    def run(path: Path, **options: object) -> Collector:
        sink = Collector()
        replay(path, [sink], ReplayOptions(**options), call_models)  # type: ignore[arg-type]
        return sink

    return run


@pytest.fixture(scope="session")
def sample_call(call_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Collector:
    """The demo's sample call, replayed once (unpaced, so without partials) for every test that
    reads it: once per run, even with the suite spread over processes (`make test` runs two), where
    the first process to need it replays it and the others read its event log (events round-trip
    exactly)."""
    from agent_assist.events import event_from_json

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: nothing to share
        sink = Collector()
        replay(SAMPLES / "sample_call.flac", [sink], ReplayOptions(), call_models)
        return sink
    shared = tmp_path_factory.getbasetemp().parent / f"sample-call-{run}.jsonl"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait while the first replays
        if not shared.exists():
            sink = Collector()
            replay(SAMPLES / "sample_call.flac", [sink], ReplayOptions(), call_models)
            part = shared.with_suffix(".part")
            part.write_text("".join(e.to_json() + "\n" for e in sink.events), encoding="utf-8")
            part.rename(shared)
            return sink
    sink = Collector()
    for line in shared.read_text(encoding="utf-8").split("\n")[:-1]:
        sink.emit(event_from_json(line))
    return sink


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 s of the sample call (stereo WAV: left = customer, right = agent); its first
    prompt comes at 19.3 s (on a partial), the next at 20.6 s."""
    from tests.pulse import RATE, sample_audio, write_wav

    audio = sample_audio()
    end = 30 * RATE
    return write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", audio["customer"][:end],
                     audio["agent"][:end])


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server started for the tests (skips, saying why, where it cannot be)."""
    from tests import pg

    reason = pg.missing()
    if reason:
        pytest.skip(reason)
    with pg.server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty flag store: a SQLite file, and a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "flags.sqlite3")
    from tests import pg

    return pg.fresh_database(request.getfixturevalue("pg_server"))

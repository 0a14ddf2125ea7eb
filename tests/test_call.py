"""One composition root: calls built by `call.call_stages` on one set of shared models, at the same time."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from agent_assist.call import CallOptions, Models, call_stages
from agent_assist.events import CallStart, Prompt, PublicEvent, Utterance
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.rules.engine import RulesEngine
from agent_assist.scoring.scorer import Scorer
from agent_assist.transcriber import Transcriber
from tests.conftest import SPEECH, Collector


def comparable(events: list[PublicEvent]) -> list[PublicEvent]:
    """A call's events without the wall-clock moment it started."""
    return [dataclasses.replace(e, started_at="") if isinstance(e, CallStart) else e for e in events]


def run(path: Path, call_id: str, models: Models) -> list[PublicEvent]:
    sink = Collector()
    Replay(path, [sink], ReplayOptions(call_id=call_id), models).run()
    return comparable(sink.events)


def test_two_calls_at_once_on_shared_models_give_each_its_solo_events(each_speech_model, sample_clip):
    """What a network server does: several calls at the same time on one loaded set of models. Each
    call's transcripts, scores, prompts and flags must be exactly those it gives alone; a stage that
    kept a call's state in a shared model (the context of the last turn, an early decode, a rule's
    cooldown, a decode's KV cache) would leak it into the other call. On each speech model."""
    call_models = each_speech_model
    calls = {"first": sample_clip, "second": SPEECH / "stereo_diarization.wav"}
    solo = {call_id: run(path, call_id, call_models) for call_id, path in calls.items()}
    assert any(isinstance(e, Prompt) for e in solo["first"])  # something for a leak to disturb
    assert all(any(isinstance(e, Utterance) and e.scores for e in events) for events in solo.values())

    together: dict[str, list[PublicEvent]] = {}
    start = threading.Barrier(len(calls))

    def one(call_id: str, path: Path) -> None:
        start.wait()
        together[call_id] = run(path, call_id, call_models)

    threads = [threading.Thread(target=one, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert together == solo


def test_each_call_gets_fresh_stages_around_the_same_models(call_models):
    a, b = (call_stages(call_models, CallOptions()) for _ in range(2))
    assert [type(s) for s in a] == [type(s) for s in b]
    assert all(x is not y for x, y in zip(a, b, strict=True))  # per-call state is never shared
    transcribers = [next(s for s in stages if isinstance(s, Transcriber)) for stages in (a, b)]
    assert transcribers[0].model is transcribers[1].model is call_models.speech
    scorers = [next(s for s in stages if isinstance(s, Scorer)) for stages in (a, b)]
    assert scorers[0].models is scorers[1].models is call_models.classifiers
    engines = [next(s for s in stages if isinstance(s, RulesEngine)) for stages in (a, b)]
    assert engines[0].rules == engines[1].rules == call_models.pack.enabled
    assert engines[0].state is not engines[1].state


def test_options_choose_the_stages(call_models):
    names = [type(s).__name__ for s in call_stages(call_models, CallOptions(rules=False))]
    assert names == ["Segmenter", "VoiceAnalyser", "Transcriber", "Scorer"]
    assert [type(s).__name__ for s in call_stages(call_models, CallOptions(scoring=False))] == [
        "Segmenter", "Transcriber"]
    unwatched = call_stages(call_models, CallOptions(), watched=False)[0].options
    assert not unwatched.early_finals and unwatched.partial_interval_s == 1.0
    assert call_stages(call_models, CallOptions(partials=False))[0].options.partial_interval_s is None


def test_models_fit_another_pack_without_loading_the_speech_model_again(call_models, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[[rule]]\nid = "site-slow-down"\nwhen = "distress >= 0.9"\nprinciple = "safety"\n'
                    'prompt = "Slow down."\nsource = "our site"\n', encoding="utf-8")
    fitted = call_models.fit(CallOptions(site_packs=(site,)))
    assert fitted.speech is call_models.speech and fitted.classifiers is call_models.classifiers
    assert "site-slow-down" in fitted.pack.rules and "site-slow-down" not in call_models.pack.rules
    assert call_models.fit(CallOptions()) is call_models
    assert call_models.fit(CallOptions(rules=False)).pack is None


def test_a_broken_site_pack_fails_before_any_model_loads(tmp_path, monkeypatch):
    from agent_assist import call
    from agent_assist.errors import AgentAssistError

    def no_model(*_: object) -> None:
        raise AssertionError("the speech model was loaded before the pack was checked")

    monkeypatch.setattr(call, "load_speech_model", no_model)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rule]]\nid = \n", encoding="utf-8")
    with pytest.raises(AgentAssistError):
        Models.load(CallOptions(site_packs=(broken,)))

"""bench/speech_prompts.py on two small sets of event logs, so it cannot rot: a moment one set
answers and the other does not is shown with what each heard, and the partials are measured."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agent_assist.events import CallEnd, CallStart, EndReason, Partial, Speaker
from tests.conftest import REPO
from tests.test_rules_evaluate import customer, scores, write_call


def _bench() -> ModuleType:
    path = REPO / "bench" / "speech_prompts.py"
    spec = importlib.util.spec_from_file_location("bench_speech_prompts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_speech_prompts"] = module
    spec.loader.exec_module(module)
    return module


def test_a_moment_one_model_answers_is_shown_with_what_each_heard(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):
    start = CallStart(t=0.0, call_id="c", source="x", channels={}, started_at="", model="")
    end = CallEnd(t=60.0, call_id="c", reason=EndReason.END_OF_AUDIO)
    moment = [{"kind": "crisis-self-harm", "start": 9.0, "end": 11.5}]
    # a crisis card holds on two partials running: the first reading, then the one it fires on
    first = Partial(t=11.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                    text="and honestly I've been saving my tablets up for a", scores=scores(0.9, crisis=0.85))
    misfirst = Partial(t=11.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                       text="and honestly I've been saving my tablecloths up for a",
                       scores=scores(0.2, crisis=0.1))
    heard = Partial(t=12.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                    text="and honestly I've been saving my tablets up for a while now",
                    scores=scores(0.9, crisis=0.9))
    misheard = Partial(t=12.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                       text="and honestly I've been saving my tablecloths up for a while now",
                       scores=scores(0.2, crisis=0.1))
    final = customer(2, 5.0, 20.0, "and honestly I've been saving my tablets up for a while now, anyway")
    labels = tmp_path / "labels"
    labels.mkdir()
    write_call(labels, "hard", moment, [start, first, heard, final, end])
    (labels / "events").rename(tmp_path / "whisper")
    write_call(labels, "hard", moment, [start, misfirst, misheard, final, end])
    (labels / "events").rename(tmp_path / "moonshine")
    bench = _bench()
    assert bench.main([str(tmp_path / "whisper"), str(tmp_path / "moonshine"), "--calls", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "hard crisis-self-harm 9.0-11.5 s, answered by whisper only" in out
    assert "crisis-self-harm at 12.0 s (partial)" in out
    assert "whisper: crisis-self-harm at 12.0" in out and "moonshine: crisis-self-harm at never" in out
    assert "saving my tablecloths up" in out  # what the other model heard there
    assert "whisper: 1 moments answered within 3 s; 2 scored customer partials, 0.000 word errors" in out
    assert "moonshine: 0 moments answered within 3 s; 2 scored customer partials, 0.091 word errors" in out
    # (a wrong word in each partial: 2 of 22)

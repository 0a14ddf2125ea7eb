"""`agent-assist rules evaluate`: a pack measured against labelled moments, from recorded event logs
(the rules run again on their scored turns and partials) or by replaying the audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_assist.events import CallEnd, CallStart, EndReason, Partial, Scores, Speaker, Utterance
from agent_assist.quality import evaluate
from agent_assist.rules.packs import load_for_run
from tests.conftest import SAMPLES
from tests.test_cli import agent_assist


def scores(distress: float = 0.05, escalation: float = 0.05, crisis: float = 0.0,
           kind: str = "self-harm") -> Scores:
    words = {"distress": distress, "escalation": escalation, "crisis": crisis}
    return Scores(distress, escalation, crisis, words, None, False,
                  {"distress": distress, "escalation": escalation}, kind=kind)


def write_call(folder: Path, name: str, moments: list[dict], events: list) -> Path:
    label = folder / f"{name}.json"
    label.write_text(json.dumps({"id": name, "set": "labelled", "audio": f"{name}.ogg", "duration": 60.0,
                                 "turns": [], "moments": moments}), encoding="utf-8")
    logs = folder / "events"
    logs.mkdir(exist_ok=True)
    (logs / f"{name}.jsonl").write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")
    return label


def customer(n: int, start: float, end: float, text: str, **values: float | str) -> Utterance:
    return Utterance(t=end + 0.5, call_id="c", utterance_id=f"u{n}", speaker=Speaker.CUSTOMER, start=start,
                     end=end, text=text, scores=scores(**values))  # type: ignore[arg-type]


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    start = CallStart(t=0.0, call_id="c", source="x", channels={}, started_at="", model="")
    # a disclosure answered from a partial, a manager request answered, a grief moment missed
    hard = [start,
            Partial(t=11.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                    text="and honestly I've been saving my tablets up for a",
                    scores=scores(0.9, crisis=0.85)),
            Partial(t=12.0, call_id="c", utterance_id="u2", speaker=Speaker.CUSTOMER, start=5.0,
                    text="and honestly I've been saving my tablets up for a while now",
                    scores=scores(0.9, crisis=0.9)),
            customer(2, 5.0, 20.0, "and honestly I've been saving my tablets up for a while now, anyway",
                     distress=0.9, crisis=0.9),
            customer(3, 25.0, 28.0, "I want to speak to your manager", escalation=0.3),
            customer(4, 40.0, 44.0, "his slippers are still by the door", distress=0.4),
            CallEnd(t=60.0, call_id="c", reason=EndReason.END_OF_AUDIO)]
    write_call(tmp_path, "hard", [{"kind": "crisis-self-harm", "start": 9.0, "end": 11.5},
                                  {"kind": "escalation-request", "start": 25.0, "end": 28.0},
                                  {"kind": "grief", "start": 40.0, "end": 44.0}], hard)
    calm = [start, customer(1, 2.0, 5.0, "I'd like to check my balance please"),
            customer(2, 10.0, 13.0, "this heat is killing me honestly", distress=0.8),
            CallEnd(t=60.0, call_id="c", reason=EndReason.END_OF_AUDIO)]
    write_call(tmp_path, "calm", [], calm)
    return tmp_path


def test_moments_answered_in_time_per_rule_precision_recall_and_calm_prompts(calls):
    pack = load_for_run(())
    labelled = [evaluate.read_labels(p) for p in sorted(calls.glob("*.json"))]
    report = evaluate.evaluate(labelled, pack, (), calls / "events")
    s = report.summary()
    assert (s["calls"], s["calm_calls"], s["moments"], s["answered_within_3s"]) == (2, 1, 3, 2)
    assert s["by_kind"]["crisis-self-harm"] == {"moments": 1, "answered": 1}
    assert s["by_kind"]["grief"] == {"moments": 1, "answered": 0}
    crisis = s["rules"]["crisis-self-harm"]
    assert (crisis["prompts"], crisis["precision"], crisis["recall"]) == (1, 1.0, 1.0)
    assert crisis["median_s_after_words"] == 0.5  # the second partial at 12.0; the words ended at 11.5
    assert s["rules"]["manager-request"]["recall"] == 1.0
    # the calm call: "killing me" at distress 0.8 is one false prompt, an hour's rate from a minute
    assert s["calm_prompts"] >= 1 and s["calm_prompts_per_hour"] == pytest.approx(60 * s["calm_prompts"])
    assert [m["kind"] for m in s["missed"]] == ["grief"]


def test_the_command_prints_the_report_and_writes_json(calls, tmp_path):
    out = tmp_path / "report.json"
    result = agent_assist("rules", "evaluate", str(calls), "--events-dir",  # a folder of labelled calls
                          str(calls / "events"), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "2 calls (1 calm), 3 labelled moments: 2 answered by the right prompt within 3 s" in result.stdout
    assert "crisis-self-harm" in result.stdout and "missed:" in result.stdout
    assert json.loads(out.read_text())["answered_within_3s"] == 2


def test_an_event_log_of_another_speech_model_is_refused_when_a_model_is_named(tmp_path):
    """`--model moonshine-tiny-en --events-dir` with Whisper's logs there would judge Whisper's words
    as Moonshine's: refused in one line. A log from before the models had names counts as Whisper's."""
    for name, recorded in [("a", "whisper-tiny.en"), ("b", "tiny.en (bundled)")]:
        start = CallStart(t=0.0, call_id=name, source="x", channels={}, started_at="", model=recorded)
        write_call(tmp_path, name, [], [start, CallEnd(t=60.0, call_id=name, reason=EndReason.END_OF_AUDIO)])
        label = str(tmp_path / f"{name}.json")
        refused = agent_assist("rules", "evaluate", label, "--events-dir", str(tmp_path / "events"),
                               "--model", "moonshine-tiny-en")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert f"recorded with the speech model {recorded}, not moonshine-tiny-en" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        same = agent_assist("rules", "evaluate", label, "--events-dir", str(tmp_path / "events"),
                            "--model", "whisper-tiny.en")
        assert same.returncode == 0, same.stderr


@pytest.mark.parametrize("label", ['{"id": "x", "moments": [{"kind": "sadness", "start": 1, "end": 2}]}',
                                   '{"id": "x", "moments": [{"kind": "grief", "start": 5, "end": 2}]}',
                                   "[1, 2]", "not json"])
def test_a_bad_label_file_is_one_line(tmp_path, label):
    path = tmp_path / "bad.json"
    path.write_text(label, encoding="utf-8")
    result = agent_assist("rules", "evaluate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"agent-assist: error: {path}: not a labelled call")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_folder_without_labelled_calls_is_one_line(tmp_path):
    result = agent_assist("rules", "evaluate", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"agent-assist: error: no labelled calls (*.json) in {tmp_path}\n"


def test_the_labelled_calls_are_well_formed():
    calls = [evaluate.read_labels(p) for p in sorted((SAMPLES / "calls").glob("*.json"))]
    assert len(calls) >= 20 + 8
    assert sum(len(c.moments) for c in calls) >= 60 and sum(c.calm for c in calls) >= 5
    assert all(c.audio is not None and c.audio.is_file() for c in calls)


def test_a_replayed_call_is_judged_and_its_log_kept_redacted(tmp_path):
    """Real audio: a calm call with a date of birth and addresses read out. The event log kept for
    next time is redacted like any other, and the rules re-run on it give the same report."""
    logs = tmp_path / "events"
    label = str(SAMPLES / "calls" / "calm-05.json")
    first = agent_assist("rules", "evaluate", label, "--events-dir", str(logs))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("1 calls (1 calm), 0 labelled moments")
    log = (logs / "calm-05.jsonl").read_text(encoding="utf-8")
    # what was said, not the whole line: a score's digits may hold "1990" ("0.4501506537199021")
    said = " ".join(e.get("text", "") + " " + " ".join(w["text"] for w in e.get("words", []))
                    for e in map(json.loads, log.splitlines()))
    assert "Lark Street" not in log and "1990" not in said and "[address]" in said
    assert any(json.loads(line)["type"] == "partial" for line in log.splitlines())  # as a live call has them
    again = agent_assist("rules", "evaluate", label, "--events-dir", str(logs))
    assert again.returncode == 0 and again.stdout == first.stdout


def test_an_event_log_with_line_separators_in_its_words_is_read_whole(tmp_path):
    """The log is written with its words as they are, so a U+2028 or NEL sits raw inside a JSON
    string: the reader splits lines at \\n alone, and the turn comes back whole."""
    said = "first line\u2028second\x85third\x0cfourth"
    start = CallStart(t=0.0, call_id="c", source="x", channels={}, started_at="", model="")
    label = write_call(tmp_path, "odd", [], [start, customer(1, 2.0, 5.0, said),
                                             CallEnd(t=9.0, call_id="c", reason=EndReason.END_OF_AUDIO)])
    events = evaluate.call_events(evaluate.read_labels(label), [], tmp_path / "events")
    assert [e.text for e in events if isinstance(e, Utterance)] == [said]

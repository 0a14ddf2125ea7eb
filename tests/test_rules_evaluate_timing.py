"""`rules evaluate`: each rule's time to prompt (median and 90th percentile from the moment's words),
its prompts per calm call-hour, and the agents' Helpful / Not helpful on the cards (from the flag
store) counted as labels, apart from the supervisors' verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_assist.events import CallEnd, CallStart, EndReason, Feedback
from agent_assist.quality import evaluate
from agent_assist.rules.packs import load_for_run
from agent_assist.store import FlagStoreSink, StoreOptions, open_store
from tests.test_cli import agent_assist
from tests.test_rules_evaluate import calls, customer, write_call  # noqa: F401  (calls: a fixture)

# manager requests whose words end k seconds before the turn does (the prompt comes 0.5 s after the
# turn): 0.5, 1.5, 2.5, 3.5 and 10.5 s after the words
LATE_BY = (0.0, 1.0, 2.0, 3.0, 10.0)


@pytest.fixture
def requests(tmp_path: Path) -> Path:
    for n, k in enumerate(LATE_BY):
        start = CallStart(t=0.0, call_id="c", source="x", channels={}, started_at="", model="")
        events = [start, customer(1, 10.0, 28.0, "I want to speak to your manager about this whole thing"),
                  CallEnd(t=60.0, call_id="c", reason=EndReason.END_OF_AUDIO)]
        write_call(tmp_path, f"request-{n}", [{"kind": "escalation-request", "start": 10.0, "end": 28.0 - k}],
                   events)
    return tmp_path


def test_time_to_prompt_per_rule_median_and_p90(requests):
    labelled = [evaluate.read_labels(p) for p in sorted(requests.glob("*.json"))]
    s = evaluate.evaluate(labelled, load_for_run(()), (), requests / "events").summary()
    manager = s["rules"]["manager-request"]
    assert manager["time_to_prompt_moments"] == 5
    assert manager["time_to_prompt_median_s"] == 2.5
    assert manager["time_to_prompt_p90_s"] == pytest.approx(7.7)  # 3.5 + 0.6 * (10.5 - 3.5)
    # recall counts only what came within 3 s; the time to prompt counts the late one too
    assert (manager["answered_first"], manager["recall"]) == (3, 0.6)
    assert s["p90_s_after_words"] == pytest.approx(2.3)  # the three answered: 0.5, 1.5, 2.5


def test_prompts_per_calm_call_hour_per_rule(calls):  # noqa: F811
    labelled = [evaluate.read_labels(p) for p in sorted(calls.glob("*.json"))]
    s = evaluate.evaluate(labelled, load_for_run(()), (), calls / "events").summary()
    on_calm = {rule: v for rule, v in s["rules"].items() if v["on_calm_calls"]}
    assert on_calm  # "this heat is killing me" at distress 0.8: a false prompt on the calm minute
    for v in on_calm.values():
        assert v["calm_prompts_per_hour"] == pytest.approx(60 * v["on_calm_calls"])  # one minute of calm
    assert sum(v["on_calm_calls"] for v in on_calm.values()) == s["calm_prompts"]
    assert s["rules"]["crisis-self-harm"]["calm_prompts_per_hour"] == 0.0


def test_the_report_prints_time_to_prompt_and_calm_rate(requests):
    result = agent_assist("rules", "evaluate", str(requests), "--events-dir", str(requests / "events"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("rule "))
    assert "time to prompt, s" in lines[header - 1] and "on calm calls" in lines[header - 1]
    assert lines[header].split() == ["rule", "prompts", "precision", "recall", "median", "p90", "prompts",
                                     "per", "hour"]
    manager = next(line for line in lines if line.strip().startswith("manager-request"))
    assert manager.split() == ["manager-request", "5", "1.00", "0.60", "2.50", "7.70", "0", "-"]


def _rate(url: str, ratings: list[tuple[str, str, float, str]], started: str | None = None) -> None:
    """Agents' ratings of prompts, as the overlay sends them, through the store's sink."""
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent="ana"))
    for call_id in dict.fromkeys(c for c, *_ in ratings):
        sink.emit(CallStart(t=0.0, call_id=call_id, source="live", channels={},
                            started_at=started or datetime.now(UTC).isoformat(), model="tiny.en"))
        for n, (c, rule, prompt_t, rating) in enumerate(ratings):
            if c == call_id:
                sink.emit(Feedback(t=prompt_t + 2 + n, call_id=call_id, rule=rule, prompt_t=prompt_t,
                                   rating=rating))
        sink.emit(CallEnd(t=100.0, call_id=call_id, reason=EndReason.ENDED))
    sink.close()
    store.close()


RATINGS = [
    ("live-1", "manager-request", 10.0, "not_helpful"),
    ("live-1", "manager-request", 30.0, "helpful"),
    ("live-1", "manager-request", 30.0, "not_helpful"),  # changed their mind: the latest counts
    ("live-2", "manager-request", 12.0, "helpful"),
    ("live-2", "crisis-self-harm", 40.0, "acknowledged"),  # a crisis card dismissed: no label
    ("live-2", "old-rule", 50.0, "not_helpful"),  # a rule this pack no longer has
]


def test_agents_feedback_counts_as_labels_apart_from_reviews(calls, tmp_path):  # noqa: F811
    url = str(tmp_path / "flags.sqlite3")
    _rate(url, RATINGS)
    out = tmp_path / "report.json"
    done = agent_assist("rules", "evaluate", str(calls), "--events-dir", str(calls / "events"),
                        "--store", url, "--json", str(out))
    assert done.returncode == 0, done.stderr
    s = json.loads(out.read_text())
    manager = s["rules"]["manager-request"]
    assert (manager["prompts"], manager["precision"]) == (1, 1.0)  # the labelled calls alone
    assert (manager["rated_helpful"], manager["rated_not_helpful"]) == (1, 2)
    assert manager["precision_with_feedback"] == 0.5  # (1 hit + 1 helpful) / (1 prompt + 3 rated)
    assert manager["reviewed"] == 0 and manager["precision_with_reviews"] is None  # reported apart
    assert (s["rated_prompts"], s["rated_not_helpful"]) == (4, 3)
    assert s["rated_rules_not_in_pack"] == {"old-rule": 1}
    feedback = [(a["call"], a["rule"], a["t"]) for a in s["false_alarms"] if a["source"] == "feedback"]
    assert feedback == [("live-1", "manager-request", 10.0), ("live-1", "manager-request", 30.0),
                        ("live-2", "old-rule", 50.0)]
    assert ("agents' feedback (Helpful / Not helpful on the card): 4 prompts rated, 3 not helpful"
            in done.stdout)
    manager_line = next(line for line in done.stdout.split("agents' feedback")[1].splitlines()
                        if line.strip().startswith("manager-request"))
    assert manager_line.split() == ["manager-request", "1", "2", "0.50"]
    assert "reviewed flags" not in done.stdout  # no supervisor's verdicts in this store


def test_feedback_alone_and_since(tmp_path):
    url = str(tmp_path / "flags.sqlite3")
    _rate(url, RATINGS[:2], started="2026-11-02T09:00:00+00:00")
    _rate(url, [("live-3", "deescalate-validate", 5.0, "not_helpful")], started="2026-11-20T09:00:00+00:00")
    alone = agent_assist("rules", "evaluate", "--store", url)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.startswith("agents' feedback (Helpful / Not helpful on the card): 3 prompts rated, "
                                   "2 not helpful")
    later = agent_assist("rules", "evaluate", "--store", url, "--since", "2026-11-10")
    assert later.stdout.startswith("agents' feedback (Helpful / Not helpful on the card): 1 prompts rated")
    assert "deescalate-validate" in later.stdout and "manager-request" not in later.stdout


def test_rated_prompts_keep_each_prompt_s_latest_label():
    from agent_assist.store import FeedbackRecord

    records = [FeedbackRecord("c", 12.0, "r", 10.0, "helpful"),
               FeedbackRecord("c", 13.0, "r", 10.0, "not_helpful"),
               FeedbackRecord("c", 14.0, "r", 20.0, "acknowledged")]
    assert evaluate.rated_prompts(records) == [evaluate.RatedPrompt("c", "r", 10.0, helpful=False)]


def test_the_store_lists_agents_ratings_since_a_moment(store_url):
    _rate(store_url, RATINGS[:2], started="2026-11-02T09:00:00+00:00")
    _rate(store_url, RATINGS[3:5], started="2026-11-20T09:00:00+00:00")
    store = open_store(store_url)
    try:
        every = [(f.call_id, f.rule, f.prompt_t, f.rating) for f in store.feedback()]
        later = [(f.call_id, f.rating) for f in store.feedback("2026-11-10T00:00:00Z")]
    finally:
        store.close()
    assert every == [(c, r, t, x) for c, r, t, x in RATINGS[:2] + RATINGS[3:5]]
    assert later == [("live-2", "helpful"), ("live-2", "acknowledged")]

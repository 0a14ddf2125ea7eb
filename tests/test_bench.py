"""A smoke run of the benchmark script, so it cannot rot. Nothing here is timed: the numbers are
checked for being measured (present, finite, in their units), never against the targets."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

KEYS = ["prompt_latency_p50_s", "prompt_latency_p95_s", "utterance_latency_p50_s", "utterance_latency_p95_s",
        "cpu_core_fraction", "peak_rss_mb", "replay_speed_x", "offline_speed_x", "wer_streaming",
        "wer_offline", "classifier_ms_per_utterance"]


def test_the_bench_script_runs_on_real_speech_and_writes_its_results(tmp_path):
    out, readme = tmp_path / "latest.json", tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- bench:start -->\nold table\n<!-- bench:end -->\n\nafter\n",
                      encoding="utf-8")
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out),
                             "--readme", str(readme)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    for key in KEYS:
        assert isinstance(report[key], float | int) and math.isfinite(report[key]), key
    d = report["details"]
    # the quick run: 22 s of the sample call (its first customer turn fires a prompt) and a 5 s clip
    assert d["prompts"] >= 1 and d["utterances_timed"] >= 5
    assert all(0 < x < 30 for x in d["utterance_latencies_s"] + d["prompt_latencies_s"])
    assert report["prompt_latency_p50_s"] <= report["prompt_latency_p95_s"]
    assert 0.0 < report["cpu_core_fraction"] < 2.5  # two cores at most
    assert report["peak_rss_mb"] >= d["rss_after_models_mb"] > d["rss_before_models_mb"] > 0
    assert report["replay_speed_x"] > 0 and report["offline_speed_x"] > 0
    assert d["replay_finals_match_realtime"]  # pacing changes when, never what
    assert report["wer_streaming"] < 0.3 and report["wer_offline"] < 0.3 and d["wer_words"] > 50
    assert report["classifier_ms_per_utterance"] > 0 and d["scored_utterances"] >= 1
    assert set(report["targets"]) == {"prompt_latency_p95_s", "utterance_latency_p95_s", "cpu_core_fraction",
                                      "peak_rss_mb", "replay_speed_x", "wer_gap_points",
                                      "moment_latency_p95_s", "crisis_moment_latency_p95_s",
                                      "text_model_ms_per_turn"}
    assert 0 < report["text_model_ms_per_turn"] < 1000 and d["text_model_ms"]["turns"] == 40
    # the quick run's long turn: one moment, its latency from the end of its words (or a miss)
    [moment] = d["moments"]
    assert moment["call"] == "long-08" and moment["kind"] == "escalation"
    # (negative: a prompt from a partial before the words ended; from the turn's start on counts)
    assert moment["latency_s"] is None or -30 < moment["latency_s"] < 30
    assert report["moments_within_3s"].endswith(" of 1") and report["long_calm_prompts"] == 0
    assert report["crisis_moments_within_3s"] == "0 of 0"  # no crisis in the quick run's 26 s
    assert report["machine"]["cores"] >= 1 and report["machine"]["faster_whisper"]
    # the table went to stdout and into the README's block, and nothing else of the README changed
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.startswith("# x\n\n<!-- bench:start -->\n`make bench`")
    assert text.endswith("<!-- bench:end -->\n\nafter\n") and "| replay without pacing |" in text
    assert "| prompt latency p50 / p95 |" in result.stdout


def test_a_readme_without_the_block_is_a_clear_error(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
    bench_run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", bench_run)  # its dataclasses look themselves up
    spec.loader.exec_module(bench_run)
    path = tmp_path / "README.md"
    path.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no <!-- bench:start --> … <!-- bench:end --> block"):
        bench_run.update_readme(path, "table")
    assert path.read_text(encoding="utf-8") == "no markers here\n"


def test_the_text_model_alone_is_measured_in_seconds():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--text-model-only"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["turns"] == 40 and report["cpu_mean"] > 0 and report["p50"] <= report["p95"]


def test_the_end_of_turn_study_counts_the_early_decodes_of_a_call():
    """bench/end_of_turn.py on the sample call alone (README "Speech models" reads its full run)."""
    result = subprocess.run([sys.executable, str(REPO / "bench" / "end_of_turn.py"), "--calls", "0"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    head, _, *rows = result.stdout.splitlines()
    decodes, ended = (int(head.split(", ")[1].split()[0]), int(head.split(", ")[2].split()[0]))
    assert head.startswith("moonshine-base-en: 1 calls, ") and 0 < ended < decodes
    counts = [[int(n) for n in row.split()[1:4]] for row in rows]
    assert len(counts) == 6 and all(total == turn_ended + went_on for total, turn_ended, went_on in counts)
    assert counts[0][0] <= decodes and counts == sorted(counts, reverse=True)  # stricter, fewer

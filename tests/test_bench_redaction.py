"""A smoke run of bench/redaction.py, so it cannot rot: its numbers are measured (present, finite,
in their units), never checked against a target here."""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

from tests.conftest import REPO


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_redaction", REPO / "bench" / "redaction.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_redaction"] = module
    spec.loader.exec_module(module)
    return module


def test_the_redaction_bench_measures_the_table_the_turns_and_hostile_text() -> None:
    bench = _bench()
    table = bench.table()
    assert set(table) == {"dev.txt", "heldback.txt", "heldback2.txt"}
    assert all(0 < part["recall"] <= 1 and 0 < part["precision"] <= 1 for part in table.values())
    turns = bench.per_turn()
    assert turns["turns"] > 400 and 0 < turns["p50_us"] <= turns["p95_us"] <= turns["max_us"]
    hostile = bench.hostile(400)
    assert set(hostile) == set(bench.HOSTILE)
    assert all(math.isfinite(h["ratio"]) and h["n_s"] >= 0 for h in hostile.values())

"""The event importer under arbitrary input (Hypothesis): lines of any bytes, and valid events
mutated field by field (wrong types, numbers JSON cannot hold, text that is not Unicode, fields
missing or added). Whatever a file holds, `review import` gives clean refusals, never an exception,
and the store it fills still lists, shows, exports and reports.

Derandomized (the same examples every run) and small, so it runs with the fast layer."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_assist import review as rv
from agent_assist.store import Filters, Store, import_files, open_store
from tests.test_store import a_call

VALID = [json.loads(e.to_json()) for e in a_call()]

FUZZ = settings(max_examples=100, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Text that has broken readers: a lone surrogate, NUL, a bidi override, an escape sequence.
NASTY_TEXT = st.sampled_from(["\ud800", "\x00", "a\u202eb", "\x1b[31m", "\u2028", "", " " * 3])
#: Numbers at the edges: what JSON writes as 1e309 reads as infinity; integers past 64 bits.
EDGE_NUMBERS = st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e308, 5e-324, -0.0])
SCALARS = (st.none() | st.booleans() | st.integers() | EDGE_NUMBERS
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | NASTY_TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
#: Whole-token swaps a JSON encoder would never write.
RAW_TOKENS = st.sampled_from(["1e309", "-1e309", "NaN", "Infinity", "1" * 5000, "[" * 2000, '"\\ud800"'])


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    """One valid event of a real call, with one to three things wrong with it."""
    event: dict[str, Any] = dict(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(event) or ["type"]))
        how = draw(st.sampled_from(["replace", "replace", "delete", "add", "nest"]))
        if how == "replace":
            event[key] = draw(JSON_VALUES)
        elif how == "delete":
            event.pop(key, None)
        elif how == "add":
            event[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif isinstance(event.get(key), dict) and event[key]:  # a field inside scores, why, channels
            inner = dict(event[key])
            inner[draw(st.sampled_from(sorted(inner)))] = draw(JSON_VALUES)
            event[key] = inner
    text = json.dumps(event, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        # a number token swapped for one no encoder writes
        target = json.dumps(draw(st.sampled_from([e["t"] for e in VALID])))
        text = text.replace(f'"t": {target}', f'"t": {draw(RAW_TOKENS)}', 1)
    return text.encode("utf-8", "surrogatepass")


def reviewable(store: Store) -> None:
    """Everything the review commands do with a store (list, show, export, report) works."""
    flags = store.flags()
    rv.list_lines(flags)
    rv.to_csv(flags)
    rv.shift_report(store, Filters(), "all flags")
    for flag in flags:
        rv.show_lines(store.flag(flag.id), store.call(flag.call_id))


def imported(folder: Path, lines: list[bytes]) -> tuple[Store, list[str]]:
    path = folder / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    store = open_store(folder / "flags.sqlite3")
    store.db.execute("PRAGMA synchronous = OFF")  # what is tested here is not the disk's flush: faster
    report = import_files(store, [path])
    for line in report.refused:
        assert line.startswith(f"{path}:") and "\n" not in line and "Traceback" not in line
    return store, report.refused


@FUZZ
@given(st.lists(mutated_event(), min_size=1, max_size=4), st.data())
def test_mutated_events_are_refused_cleanly_and_never_poison_the_store(
    broken: list[bytes], data: st.DataObject
) -> None:
    good = [json.dumps(e).encode() for e in VALID]
    at = data.draw(st.integers(1, len(good)))  # the call's start first, then the damage mid-call
    with tempfile.TemporaryDirectory(prefix="aa-fuzz-") as folder:
        store, refused = imported(Path(folder), good[:at] + broken + good[at:])
        try:
            reviewable(store)
            # every valid line got in: the call's two flags are there whatever was refused around them
            assert {f.kind for f in store.flags() if f.call_id == "call-1"} >= {"crisis", "agent"}
            assert len(refused) <= len(broken)
        finally:
            store.close()


@settings(FUZZ, max_examples=50)
@given(st.lists(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), min_size=1, max_size=5))
def test_any_bytes_at_all_are_refused_cleanly(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory(prefix="aa-fuzz-") as folder:
        store, refused = imported(Path(folder), [line.replace(b"\n", b" ") for line in lines])
        try:
            reviewable(store)
            assert len(refused) <= len(lines)
        finally:
            store.close()


def _numbers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every number in a JSON value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numbers(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _numbers(v, (*path, i))]
    return []


#: Every number in the call's events: times, lengths, scores, priorities, counts.
NUMBERS = [(index, *path) for index, event in enumerate(VALID) for path in _numbers(event)]
#: Finite, so valid as far as the schema goes, but no call has them: a call 1e308 s long, a turn
#: that starts before the call, a score of -50.
EDGE_VALUES = st.sampled_from([1e308, -1e308, -1.0, -50.0, 0.0, 5e-324, 2**53, -(2**53), 3.2e9]) | st.floats(
    allow_nan=False, allow_infinity=False)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(NUMBERS), EDGE_VALUES), min_size=1, max_size=6))
def test_numbers_at_the_edges_never_break_or_hang_the_review(
    changes: list[tuple[tuple[Any, ...], float]],
) -> None:
    """Before: a call_end at t=1e308 made the report's timeline loop for ever (its ticks never
    reached the end), and a negative time or score indexed outside the terminal's sparkline."""
    events = copy.deepcopy(VALID)
    for (index, *path), value in changes:
        holder = events[index]
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
    with tempfile.TemporaryDirectory(prefix="aa-fuzz-") as folder:
        store, refused = imported(Path(folder), [json.dumps(e).encode() for e in events])
        try:
            reviewable(store)
            assert len(refused) <= len(changes)
        finally:
            store.close()

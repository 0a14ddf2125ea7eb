"""How long the flag store would hold up the pipeline if it wrote there (each flag and scored turn
is committed before the store's `emit` returns), and what the pipeline pays now that the recorder
writes on its own thread: a SQLite file (WAL, synchronous=FULL), the same file locked by another
program, and a PostgreSQL server on a local socket (started here from Debian's postgresql, as the
tests do); and redaction per utterance.

    .venv/bin/python bench/store_writes.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlite3

from agent_assist.events import Flag, Utterance
from agent_assist.recorder import Recorder
from agent_assist.redact import redact
from agent_assist.store import FlagStoreSink, open_store
from tests import pg
from tests.test_store import a_call


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def bench(url: str, rounds: int = 200) -> str:
    store = open_store(url)
    sink = FlagStoreSink(store)
    events = a_call()
    sink.emit(events[0])
    flags, turns = [], []
    for _ in range(rounds):
        for event in events[1:-2]:
            started = time.perf_counter()
            sink.emit(event)
            ms = (time.perf_counter() - started) * 1000
            if isinstance(event, Flag):
                flags.append(ms)
            elif isinstance(event, Utterance):
                turns.append(ms)
    store.close()
    return (f"flag p50 {statistics.median(flags):.2f} ms, p95 {p95(flags):.2f} ms; "
            f"utterance p50 {statistics.median(turns):.2f} ms, p95 {p95(turns):.2f} ms")


def bench_recorder(path: Path, rounds: int = 200, locked: bool = False) -> str:
    """The pipeline's side of the recorder: how long `emit` takes (the writing is on its thread)."""
    store = open_store(path, timeout_s=5.0)
    recorder = Recorder([FlagStoreSink(store, redact=False, spill_dir=path.parent / "unsaved")])
    locker = None
    if locked:
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
    events = a_call()
    recorder.emit(events[0])
    took = []
    for _ in range(rounds):
        for event in events[1:-2]:
            started = time.perf_counter()
            recorder.emit(event)
            took.append((time.perf_counter() - started) * 1000)
    if locker is not None:
        locker.execute("ROLLBACK")
        locker.close()
    began = time.perf_counter()
    recorder.close()
    store.close()
    return (f"emit p50 {statistics.median(took) * 1000:.0f} µs, p95 {p95(took) * 1000:.0f} µs, "
            f"max {max(took):.2f} ms; the writer finished {time.perf_counter() - began:.1f} s later")


def main() -> None:
    print("sqlite:", bench(str(Path(tempfile.mkdtemp()) / "bench.sqlite3")))
    print("sqlite through the recorder:", bench_recorder(Path(tempfile.mkdtemp()) / "bench.sqlite3"))
    print("sqlite locked by another program, through the recorder:",
          bench_recorder(Path(tempfile.mkdtemp()) / "bench.sqlite3", locked=True))
    reason = pg.missing()
    if reason:
        print(f"postgresql: skipped ({reason})")
    else:
        with pg.server() as url:
            print("postgresql:", bench(pg.fresh_database(url)))
    texts = [e.text for e in a_call() if isinstance(e, Utterance)] * 200
    started = time.perf_counter()
    for text in texts:
        redact(text)
    print(f"redaction: {(time.perf_counter() - started) / len(texts) * 1e6:.0f} µs per utterance")


if __name__ == "__main__":
    main()

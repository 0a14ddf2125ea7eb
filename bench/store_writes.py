"""How long the flag store holds up the pipeline: each flag and scored turn is committed before
`emit` returns. A SQLite file (WAL, synchronous=FULL) and a PostgreSQL server on a local socket
(started here from Debian's postgresql, as the tests do); and redaction per utterance.

    .venv/bin/python bench/store_writes.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_assist.events import Flag, Utterance
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


def main() -> None:
    print("sqlite:", bench(str(Path(tempfile.mkdtemp()) / "bench.sqlite3")))
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

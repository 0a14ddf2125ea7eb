"""The supervisors' floor under load: 20 simulated calls writing to one PostgreSQL at once, each as an
agent's desktop does (the recorder redacting, the flag store committing, then the event bus), and
`agent-assist floor` serving two supervisors' boards and a wallboard by server-sent events.

    .venv/bin/python bench/floor_latency.py                 # 20 calls for 90 s (about 2 minutes)
    .venv/bin/python bench/floor_latency.py --calls 5 --seconds 20   # a quick look

Measured:
- flag-to-board latency: from the moment a desk's pipeline emits an urgent flag (a crisis, or a high
  one) to the moment the board the floor sends a supervisor first holds it (p50, p95, max), on one
  clock (the desks and the supervisors' readers run in this process; the floor in its own);
- the floor server's CPU over the run (its process's user + system time / wall time, in cores).

Each call: a customer turn every 3 s (scored), a prompt every 9 s, a medium escalation flag every
15 s and an urgent flag every 20 s, for `--seconds`, the calls' starts spread over the first 5 s.
PostgreSQL is a throwaway cluster started here from Debian's postgresql, as the tests start one.
Results go to bench/results/floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_assist.events import Flag
from tests import pg
from tests.floor_site import Desk, Http, end, floor_server, prompt, start, turn

RESULTS = Path(__file__).parent / "results" / "floor.json"
RULE = re.compile(r"bench-c\d+-\d+")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(len(ordered) * 0.95) - 1)]


class Reader(threading.Thread):
    """A supervisor's page: reads the floor's event stream and notes when each flag's rule first
    appears on the board it is sent."""

    def __init__(self, base: str, user: str, wall: bool = False) -> None:
        super().__init__(daemon=True)
        self.http = Http(base)
        self.http.sign_in(user)
        self.url = base + ("/events?view=wall" if wall else "/events")
        self.first_seen: dict[str, float] = {}
        self.boards = 0
        self.stop = False

    def run(self) -> None:
        request = urllib.request.Request(self.url)
        with self.http.opener.open(request, timeout=60) as stream:
            kind, data = "", []
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if self.stop:
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif not line and kind:
                    if kind == "board":
                        self.boards += 1
                        now = time.monotonic()
                        for rule in RULE.findall("\n".join(data)):
                            self.first_seen.setdefault(rule, now)
                    kind, data = "", []


def simulated_call(url: str, n: int, seconds: float, emitted: dict[str, float], offset: float) -> None:
    call_id = f"bench-call-{n:02d}"
    time.sleep(offset)
    desk = Desk(url, f"agent-{n:02d}", f"team-{n % 3}", transcript="excerpt")
    began = time.monotonic()
    desk.emit(start(call_id))
    schedule: list[tuple[float, str]] = []
    t = 3.0
    while t < seconds:
        schedule.append((t, "turn"))
        t += 3.0
    schedule += [(t, "prompt") for t in range(9, int(seconds), 9)]
    schedule += [(t, "escalation") for t in range(15, int(seconds), 15)]
    schedule += [(t + n * 0.37 % 5, "urgent") for t in range(20, int(seconds), 20)]
    for count, (at, what) in enumerate(sorted(schedule), start=1):
        delay = began + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the simulated call's own pace
        if what == "turn":
            distress = 0.3 + 0.5 * ((count * 7 + n) % 10) / 10
            desk.emit(turn(call_id, count, at, "words of the customer", distress))
        elif what == "prompt":
            desk.emit(prompt(call_id, at))
        elif what == "escalation":
            desk.emit(Flag(t=at, call_id=call_id, kind="escalation", severity="medium", reason="bench",
                           utterance_id=f"u{count}", rule=f"bench-escalation-{count}"))
        else:
            rule = f"bench-c{n}-{count}"
            flag = Flag(t=at, call_id=call_id, kind="crisis" if count % 2 else "escalation",
                        severity="critical" if count % 2 else "high", reason="bench",
                        utterance_id=f"u{count}", rule=rule)
            emitted[rule] = time.monotonic()
            desk.emit(flag)
    desk.emit(end(call_id, seconds))
    desk.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_pid(port_url: str) -> int:
    """The floor's process: the one whose command line is `… agent_assist.cli floor …`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"agent_assist.cli" in cmd and b"floor" in cmd and int(entry.name) != os.getpid():
                return int(entry.name)
    raise RuntimeError("no floor process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with pg.server() as server, tempfile.TemporaryDirectory() as folder:
        url = pg.fresh_database(server)
        from agent_assist.store import open_store

        open_store(url).close()
        with floor_server(url, Path(folder)) as base:
            pid = floor_pid(base)
            readers = [Reader(base, "lee"), Reader(base, "kim"), Reader(base, "lee", wall=True)]
            for reader in readers:
                reader.start()
            time.sleep(1.0)
            emitted: dict[str, float] = {}
            cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
            calls = [threading.Thread(target=simulated_call,
                                      args=(url, n, args.seconds, emitted, n * 5.0 / args.calls))
                     for n in range(args.calls)]
            for call in calls:
                call.start()
            for call in calls:
                call.join()
            time.sleep(3.0)  # the last flags reach the boards
            cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
            for reader in readers:
                reader.stop = True
    board = readers[0]
    latencies = [board.first_seen[r] - emitted[r] for r in emitted if r in board.first_seen]
    missed = [r for r in emitted if r not in board.first_seen]
    result = {
        "calls": args.calls, "seconds": args.seconds, "urgent_flags": len(emitted), "missed": len(missed),
        "flag_to_board_p50_s": round(statistics.median(latencies), 3),
        "flag_to_board_p95_s": round(p95(latencies), 3), "flag_to_board_max_s": round(max(latencies), 3),
        "floor_cpu_cores": round(cpu, 3), "boards_sent_to_one_page": board.boards,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "targets": {"flag_to_board_p95_s": 2.0, "floor_cpu_cores": 0.1},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

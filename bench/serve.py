"""Capacity of `agent-assist serve`: N concurrent real-time calls from the vendored AudioHook reference
client, for N = 1, 2, 4, 8 (about 6 minutes with the default 60 s call).

    .venv/bin/python bench/serve.py                       # bench/results/serve.json and a table
    .venv/bin/python bench/serve.py --seconds 20 --calls 1 2

One `serve` process (the models loaded once) hears every round. Each round, one reference-client
process opens N sessions at once (`--session-count N`), each streaming the same call at real time:
the demo call's first `--seconds`, as stereo PCMU at 8 kHz. The benchmark subscribes to the agent's
feed, as an overlay does, and notes when each event arrives:

- utterance latency: from the end of the turn in the call's audio (`utterance.end`) to its arrival;
- prompt latency: from the call time a prompt fired at (`prompt.t`, the end of the audio its rule
  read) to its arrival;
- per-call CPU: the server process's CPU time over the round, per call, per second of call audio
  (1.0 = one core for each call);
- what each call shed to keep up (partials skipped, audio dropped), from its `call_end`;
- the machine's 1-minute load average after the round (other work on a shared machine takes the
  CPU the calls need, and latency follows it).

Times are anchored at each call's `call_start` arriving over the same feed, so the feed's own delay
cancels out. Each run reports the largest N that keeps prompt p95 at or under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARGET_PROMPT_P95_S = 2.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its finished children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Arrivals:
    """The agent's feed, with the moment each event arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Any]] = []
        self.changed = threading.Condition()

    def emit(self, event: Any) -> None:
        with self.changed:
            self.events.append((time.monotonic(), event))
            self.changed.notify_all()

    def wait_ends(self, count: int, timeout: float) -> bool:
        from agent_assist.events import CallEnd

        with self.changed:
            return self.changed.wait_for(
                lambda: sum(isinstance(e, CallEnd) for _, e in self.events) >= count, timeout)


def p95(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 95)), 3) if values else None


def round_result(arrivals: list[tuple[float, Any]], n: int, cpu_s: float,
                 audio_s: float) -> dict[str, Any]:
    from agent_assist.events import CallEnd, CallStart, Prompt, Utterance

    anchors = {e.call_id: at for at, e in arrivals if isinstance(e, CallStart)}
    utterance = [at - anchors[e.call_id] - e.end for at, e in arrivals
                 if isinstance(e, Utterance) and e.call_id in anchors]
    prompt = [at - anchors[e.call_id] - e.t for at, e in arrivals
              if isinstance(e, Prompt) and e.call_id in anchors]
    ends = [e for _, e in arrivals if isinstance(e, CallEnd)]
    return {
        "calls": n,
        "cpu_per_call": round(cpu_s / (n * audio_s), 3),
        "utterance_p95_s": p95(utterance),
        "utterance_p50_s": round(float(np.median(utterance)), 3) if utterance else None,
        "prompt_p95_s": p95(prompt),
        "prompts": len(prompt),
        "utterances": len(utterance),
        "partials_dropped": sum(e.partials_dropped for e in ends),
        "audio_dropped_s": round(sum(e.audio_dropped_s for e in ends), 3),
        "ended": sorted({str(e.reason) for e in ends}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how much of the demo call each streams")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serve.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from agent_assist.feed_client import FeedClient
    from tests.audiohook_harness import (
        AGENT,
        TOKEN,
        config_text,
        harness_problem,
        reference_client,
        serve_process,
        telephone_call,
    )

    problem = harness_problem()
    if problem:
        raise SystemExit(problem)
    work = Path(tempfile.mkdtemp(prefix="agent-assist-bench-serve-"))
    wav = telephone_call(REPO / "data" / "samples" / "sample_call.flac", work / "call.wav", args.seconds)
    config = work / "config.toml"
    config.write_text(config_text(str(work / "flags.sqlite3"), work / "events", max(args.calls)))
    rounds = []
    with serve_process(config) as served:
        feed = Arrivals()
        client = FeedClient(f"ws://127.0.0.1:{served.port}", AGENT, TOKEN, feed)
        threading.Thread(target=client.run, daemon=True).start()
        assert client.connected.wait(10), "the feed did not connect"
        for n in args.calls:
            before_events, before_cpu = len(feed.events), cpu_seconds(served.process.pid)
            started = time.monotonic()
            result = reference_client(served.uri, "--wavfile", str(wav), "--session-count", str(n),
                                      "--connection-rate", "100", timeout=args.seconds * 3 + 120)
            if result.returncode != 0:
                raise SystemExit(f"the reference client failed:\n{result.stdout[-3000:]}")
            if not feed.wait_ends(sum(r["calls"] for r in rounds) + n, args.seconds * 2 + 60):
                raise SystemExit(f"not every call of the round of {n} ended")
            cpu = cpu_seconds(served.process.pid) - before_cpu
            row = round_result(feed.events[before_events:], n, cpu, args.seconds)
            row["wall_s"] = round(time.monotonic() - started, 1)
            # the machine's load over the last minute: on a shared machine it moves every number
            row["load_1min_after"] = round(os.getloadavg()[0], 2)
            rounds.append(row)
            print(json.dumps(row), flush=True)
        client.stop()
    ok = [r["calls"] for r in rounds
          if r["prompt_p95_s"] is not None and r["prompt_p95_s"] <= TARGET_PROMPT_P95_S]
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "call_seconds": args.seconds, "rounds": rounds,
              "largest_n_prompt_p95_within_2s": max(ok) if ok else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'N':>3} {'CPU/call':>9} {'utt p50':>8} {'utt p95':>8} {'prompt p95':>11} "
          f"{'partials shed':>14} {'audio shed':>11}")
    for r in rounds:
        print(f"{r['calls']:>3} {r['cpu_per_call']:>9.2f} {r['utterance_p50_s'] or 0:>8.2f} "
              f"{r['utterance_p95_s'] or 0:>8.2f} {r['prompt_p95_s'] or 0:>11.2f} "
              f"{r['partials_dropped']:>14} {r['audio_dropped_s']:>10.1f}s")
    print(f"largest N with prompt p95 <= 2 s: {report['largest_n_prompt_p95_within_2s']}  ({args.out})")


if __name__ == "__main__":
    main()

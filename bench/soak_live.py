"""Soak test of live capture: memory over back-to-back calls on a real (private) PulseAudio server.

Plays the sample call into a null sink CALLS times, with a pause between calls long enough to end
each one on silence, while one `LiveSession` captures the sink's monitor as a stereo device. Prints
the resident memory (VmRSS) at the end of each call, and the process's average CPU use as a fraction
of one core over the whole run, and writes bench/results/soak_live.json.

    .venv/bin/python bench/soak_live.py --calls 3

Real time: about 3 minutes per call.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from run import rss_mb  # bench/run.py, beside this script

from agent_assist.audio.live import LiveOptions
from agent_assist.events import CallEnd, PublicEvent
from agent_assist.live import DeviceChoice, LiveSession, SessionOptions, choose_inputs

REPO = Path(__file__).resolve().parents[1]


class CallMemory:
    """A sink noting memory at the end of every call."""

    def __init__(self) -> None:
        self.ends: list[dict[str, float]] = []

    def emit(self, event: PublicEvent) -> None:
        if isinstance(event, CallEnd):
            self.ends.append({"call_s": event.t, "utterances": event.utterances, "rss_mb": round(rss_mb(), 1),
                              "partials_dropped": event.partials_dropped,
                              "audio_dropped_s": event.audio_dropped_s})
            print(f"call {len(self.ends)}: {event.t:.0f} s, {event.utterances} utterances, "
                  f"RSS {rss_mb():.0f} MB", flush=True)

    def close(self) -> None:
        pass


def main() -> None:
    import os
    import sys

    sys.path.insert(0, str(REPO))
    from tests import pulse as pa

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    why = pa.missing()
    if why:
        raise SystemExit(f"soak_live: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        server = pa.PulseServer(Path(tmp))
        os.environ["PULSE_SERVER"] = server.env["PULSE_SERVER"]
        try:
            monitor = server.add_sink("soak_line")
            audio = pa.sample_audio()
            wav = pa.write_wav(Path(tmp) / "call.wav", audio["customer"], audio["agent"])
            inputs, _ = choose_inputs(DeviceChoice(stereo=monitor))
            sink = CallMemory()
            ready = threading.Event()
            session = LiveSession(inputs, [sink], SessionOptions(live=LiveOptions(end_silence_s=4,
                                                                                  max_calls=args.calls)),
                                  on_ready=ready.set)
            start_rss = rss_mb()
            cpu0, wall0 = os.times(), time.monotonic()
            runner = threading.Thread(target=session.run)
            runner.start()
            ready.wait(30)
            for _ in range(args.calls):
                server.play("soak_line", wav).wait()
                time.sleep(6)  # silence: the call ends, the next starts when the next playback speaks
            runner.join(120)
            if runner.is_alive():
                session.stop()
                runner.join(30)
            cpu1, wall = os.times(), time.monotonic() - wall0
            cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall
        finally:
            server.close()
    result = {"rss_after_models_mb": round(start_rss, 1), "cpu_core_fraction": round(cpu, 3),
              "calls": sink.ends,
              "rss_growth_first_to_last_mb": round(sink.ends[-1]["rss_mb"] - sink.ends[0]["rss_mb"], 1)
              if sink.ends else None}
    out = REPO / "bench" / "results" / "soak_live.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

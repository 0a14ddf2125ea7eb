"""The benchmark: prompt and utterance latency, CPU, memory, throughput and WER, side by side with
the speech model's own offline decode of the same audio.

    make bench                      # the whole run, about 5 minutes; updates README.md's table
    .venv/bin/python bench/run.py --quick --out /tmp/bench.json   # a 22 s smoke run (the tests)

What it does, on real speech (the sample call, and the recordings with reference transcripts):

1. Loads the models once (the default speech model, or --model's) and notes the memory.
2. Plays each recording through the whole pipeline paced at real time, as a live call runs (the
   transcriber on its own worker, partials on), noting when each event arrives:
   - utterance latency: from the end of speech in the audio to the final's event (where the
     sound of a turn in the sample call's script stops; elsewhere the end of the final's last word);
   - prompt latency: from the end of the customer's words that fired a prompt to the prompt event
     (for a prompt fired on a partial, the end of the audio that partial covers; prompts the
     agent's own words fire are listed apart);
   - CPU: the process's CPU time over the sample call's wall time, as a fraction of one core;
   - peak RSS at the end of it.
3. Replays the sample call again without pacing (as `agent-assist replay` does): replay_speed_x, the
   time in each stage, and the classifiers' time per scored utterance.
5. Plays the long-turn calls (data/samples/calls/long-*: critical words early or in the middle of a
   20-40 s turn) at real time: moment latency, from the end of the critical words in the audio to
   the first prompt from a rule that answers that kind of moment (p95 counts a missed moment as
   never answered), how many are answered within 3 s, and the prompts on the long calm call.
4. Transcribes the same audio with the speech model's own offline decode (Whisper: faster-whisper's
   `transcribe()` with its defaults; Moonshine: stretches of speech the Silero VAD finds, each decoded
   whole): offline_speed_x and wer_offline, beside wer_streaming from step 2's finals.

Results go to bench/results/latest.json (with the machine, versions and commit) and, with
--readme, into the table between the bench markers in README.md. Nothing here fails on a slow
machine: the targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "sample_call.flac"
SAMPLE_TURNS = REPO / "data" / "samples" / "sample_call.turns.tsv"
SHARED_SPEECH = REPO.parent / "shared" / "data" / "speech"
SPEECH = SHARED_SPEECH if SHARED_SPEECH.is_dir() else REPO / "tests" / "data" / "speech"
RATE = 16000
QUICK_CLIP = "1089-134691-0001.flac"  # 5 s, one speaker
CALLS = REPO / "data" / "samples" / "calls"  # the labelled calls; long-*: critical words in long turns
QUICK_LONG = ("long-08", 26.0)  # quick: its first moment (12.6-22.8 s, in a 22 s turn), then 3 s

# The issues' targets: (metric, comparison, value); the speed issue's (#23) where it set its own
TARGETS: list[tuple[str, str, float]] = [
    ("prompt_latency_p95_s", "<=", 1.0),
    ("utterance_latency_p95_s", "<=", 0.8),
    ("cpu_core_fraction", "<=", 0.20),
    ("peak_rss_mb", "<=", 400),
    ("replay_speed_x", ">=", 20),
    ("wer_gap_points", "<=", 1.0),
    ("moment_latency_p95_s", "<=", 2.0),
    ("crisis_moment_latency_p95_s", "<=", 2.0),
    ("text_model_ms_per_turn", "<=", 10.0),
]
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class Recording:
    name: str
    parties: dict[Any, np.ndarray]  # Speaker -> 16 kHz audio
    references: dict[Any, str] = field(default_factory=dict)  # Speaker -> what was said
    # (speaker, start, end) of each turn where the audio's script knows them to the millisecond
    turns: list[tuple[Any, float, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(len(a) for a in self.parties.values()) / RATE


def normalise(text: str) -> str:
    """Case and punctuation are not recognition errors (the same rule as the tests)."""
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text.lower())).strip()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# -- the recordings ------------------------------------------------------------------------------


def decode(path: Path, layout: Any) -> dict[Any, np.ndarray]:
    """A file as 16 kHz audio per party, through the product's own file source."""
    from agent_assist.audio.files import FileSource
    from agent_assist.events import AudioChunk

    parts: dict[Any, list[np.ndarray]] = defaultdict(list)
    for block in FileSource(path, layout=layout).blocks():
        for chunk in block:
            if isinstance(chunk, AudioChunk):
                parts[chunk.speaker].append(chunk.samples)
    return {speaker: np.concatenate(blocks) for speaker, blocks in parts.items()}


def recordings(quick: bool) -> tuple[Recording, list[Recording]]:
    """The sample call (both parties) and the speech clips with references (each one speaker)."""
    from agent_assist.audio.files import ChannelLayout
    from agent_assist.events import Speaker

    with SAMPLE_TURNS.open(encoding="utf-8") as f:
        turns = list(csv.DictReader(f, delimiter="\t"))
    call = Recording("sample call", decode(SAMPLE, ChannelLayout.STEREO))
    limit = 22.0 if quick else float("inf")  # quick: up to the first prompt (20.3 s) and its final
    if quick:
        call.parties = {s: a[: int(limit * RATE)] for s, a in call.parties.items()}
    call.turns = [(Speaker(t["speaker"]), float(t["start"]), float(t["end"])) for t in turns
                  if float(t["end"]) <= limit]
    for speaker in (Speaker.CUSTOMER, Speaker.AGENT):
        call.references[speaker] = " ".join(t["text"] for t in turns
                                            if t["speaker"] == speaker.value and float(t["end"]) <= limit)
    with (SPEECH / "transcripts.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = []
    for row in rows:
        if row["channel"] != "mono" or (quick and row["file"] != QUICK_CLIP):
            continue
        parties = decode(SPEECH / row["file"], ChannelLayout.MONO)
        clips.append(Recording(row["file"], parties, {Speaker.UNKNOWN: row["transcript"]}))
    return call, clips


# -- running the pipeline ------------------------------------------------------------------------


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each of this process's threads so far, by name: Python's names where the
    thread is Python's, "native" for the thread pools inside CTranslate2 and onnxruntime."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = defaultdict(float)
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(task.name), "native")
        out[re.sub(r"_\d+$", "", name)] += (int(fields[11]) + int(fields[12])) / ticks
    return dict(out)


class Arrivals:
    """A sink that notes when each event arrives (monotonic clock) and keeps it, and each thread's
    CPU time when the call starts and ends (the transcriber's worker lives only as long as the call)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.at: list[float] = []
        self.cpu: list[dict[str, float]] = []

    def emit(self, event: Any) -> None:
        self.at.append(time.monotonic())
        self.events.append(event)
        if type(event).__name__ in ("CallStart", "CallEnd"):
            self.cpu.append(thread_cpu())

    def cpu_by_thread(self) -> dict[str, float]:
        first, last = self.cpu[0], self.cpu[-1]
        return {name: round(v - first.get(name, 0.0), 2) for name, v in sorted(last.items())
                if v - first.get(name, 0.0) >= 0.005}

    def close(self) -> None:
        pass


class TimedStage:
    """Wraps a stage and adds up the time spent in it."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.seconds = 0.0
        self.calls = 0
        self.droppable_input: bool = stage.droppable_input

    def process(self, event: Any) -> list[Any]:
        start = time.perf_counter()
        out = list(self.stage.process(event))
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def run_call(rec: Recording, models: Any, *, realtime: bool, timed: bool = False,
             finals_only: bool = False) -> tuple[Arrivals, list[Any], float, float]:
    """One call through the product's stages (`call.call_stages`, as every entry point builds them);
    returns (sink, stages, wall s, CPU s). `finals_only` runs it as before partials were acted on: no
    sentence cuts in long turns, no partial scored (the pack it is given should not act on partials
    either). Unpaced, nobody watches the call: no partials and no early finals, as an unpaced replay."""
    from dataclasses import replace

    from agent_assist.audio.arrays import ArraySource
    from agent_assist.call import CallOptions, call_stages
    from agent_assist.pipeline import Pipeline
    from agent_assist.scoring.scorer import Scorer

    options = CallOptions(partials=realtime)
    if finals_only:
        options = replace(options, segmenter=replace(options.segmenter, sentence_cut_s=None))
    scorer = Scorer(models.classifiers, score_partials=False) if finals_only else None
    stages: list[Any] = call_stages(models, options, watched=realtime, scorer=scorer)
    if timed:
        stages = [TimedStage(s) for s in stages]
    sink = Arrivals()
    pipeline = Pipeline(stages, [sink], realtime=realtime, model_label=models.label)
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.run(ArraySource(rec.parties, rec.name), "bench")
    return sink, stages, time.perf_counter() - wall, time.process_time() - cpu


def transcriber_of(stages: list[Any]) -> Any:
    """The call's transcriber among its stages (timed or not)."""
    from agent_assist.transcriber import Transcriber

    return next(getattr(s, "stage", s) for s in stages if isinstance(getattr(s, "stage", s), Transcriber))


def load_models(finals_only: bool, model: str | None = None) -> Any:
    """The product's models, as `call.Models.load` gives every entry point (`model`: another speech
    model than the default); `finals_only`: the pack with every rule checked on finals alone."""
    from dataclasses import replace

    from agent_assist.call import CallOptions, Models
    from agent_assist.transcriber import TranscriberOptions

    models = Models.load(CallOptions(transcriber=TranscriberOptions(model=model)))
    return replace(models, pack=finals_only_pack(models.pack)) if finals_only else models


def sound_end(audio: np.ndarray, start: float, end: float, floor_db: float = 40.0) -> float:
    """Where the sound stops in audio[start:end]: the end of the last 10 ms within `floor_db` of the
    span's loudest 10 ms. The sample call's turns end with the synthesiser's own silence (0.17 s,
    median), so a turn's scripted end comes after its speech does."""
    first, stop = int(start * RATE), min(len(audio), int(end * RATE))
    frame = RATE // 100
    n = (stop - first) // frame
    if n <= 0:
        return end
    rms = np.sqrt(np.mean(audio[first : first + n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (-floor_db / 20))[0]
    return start + (int(loud[-1]) + 1) * frame / RATE


def speech_ends(rec: Recording, sink: Arrivals) -> dict[str, float]:
    """When each final's speech ended in the audio, by utterance id.

    Where the recording's script gives its turns (the sample call), the last final of each turn
    ends where the turn's sound does (`sound_end`); finals in the middle of a turn (cut at a pause)
    have no such time and are left out. Elsewhere, the end of the final's last word: on the sample
    call's turns Whisper puts it within a few hundredths of a second of the sound's end
    (`word_end_minus_sound_end_s` in the results).
    """
    from agent_assist.events import Utterance

    utterances = [e for e in sink.events if isinstance(e, Utterance)]
    if not rec.turns:
        return {u.utterance_id: u.end for u in utterances}
    ends = {}
    for speaker, start, end in rec.turns:
        mine = [u for u in utterances if u.speaker == speaker and start - 0.5 <= u.start <= end]
        if mine:
            ends[max(mine, key=lambda u: u.end).utterance_id] = sound_end(rec.parties[speaker],
                                                                          start, end)
    return ends


def end_checks(rec: Recording, sink: Arrivals) -> dict[str, float]:
    """Medians over the turns: the scripted end minus the sound's end (the synthesiser's trailing
    silence), and the last word's end minus the sound's end (how far word ends can be trusted)."""
    from agent_assist.events import Utterance

    finals = {e.utterance_id: e for e in sink.events if isinstance(e, Utterance)}
    ends = speech_ends(rec, sink)
    silence = [end - sound_end(rec.parties[speaker], start, end) for speaker, start, end in rec.turns]
    words = [finals[uid].end - t for uid, t in ends.items()]
    return {"turn_trailing_silence_s": round(float(np.median(silence)), 3),
            "word_end_minus_sound_end_s": round(float(np.median(words)), 3)}


def latencies(rec: Recording, sink: Arrivals, parts: dict[str, list[float]] | None = None
              ) -> tuple[list[float], list[float], list[float]]:
    """Seconds from the end of speech in the audio to (each final, each prompt fired by a customer's
    final, each prompt fired by the agent's own final). `parts` gets each final's latency split in
    two: "vad" (call time, until the VAD's hang-over closed the speech) and "decode" (wall time,
    from then until the final's event: waiting for the transcriber and decoding)."""
    from agent_assist.events import CallStart, Prompt, Speaker, Utterance

    t0 = next(at for e, at in zip(sink.events, sink.at, strict=True) if isinstance(e, CallStart))
    ends = speech_ends(rec, sink)
    finals = {e.utterance_id: e for e in sink.events if isinstance(e, Utterance)}
    utterances, customer, agent = [], [], []
    for e, at in zip(sink.events, sink.at, strict=True):
        if isinstance(e, Utterance) and e.utterance_id in ends:
            utterances.append(at - (t0 + ends[e.utterance_id]))
            if parts is not None:
                parts.setdefault("vad", []).append(e.t - ends[e.utterance_id])
                parts.setdefault("decode", []).append(at - (t0 + e.t))
        elif isinstance(e, Prompt) and e.why.get("partial"):
            # fired on a partial: the words that fired it end where the partial's audio does
            customer.append(at - (t0 + e.t))
        elif isinstance(e, Prompt) and e.why.get("utterance_id") in ends:
            about = finals[e.why["utterance_id"]]
            if about.t == e.t:  # fired by that final (not at the call's end)
                late = at - (t0 + ends[about.utterance_id])
                (agent if about.speaker == Speaker.AGENT else customer).append(late)
    return utterances, customer, agent


def long_turn_calls(quick: bool) -> list[tuple[Recording, list[Any]]]:
    """The long-turn calls (and the calm one) with their labelled moments (`quality.evaluate.Moment`)."""
    from agent_assist.audio.files import ChannelLayout
    from agent_assist.quality.evaluate import read_labels

    out = []
    for path in sorted(CALLS.glob("long-*.json")):
        label = read_labels(path)
        if quick and label.id != QUICK_LONG[0]:
            continue
        rec = Recording(label.id, decode(label.audio or path.with_suffix(".ogg"), ChannelLayout.STEREO))
        moments = list(label.moments)
        if quick:
            rec.parties = {s: a[: int(QUICK_LONG[1] * RATE)] for s, a in rec.parties.items()}
            moments = [m for m in moments if m.end + 3 <= QUICK_LONG[1]]
        out.append((rec, moments))
    return out


def moment_latencies(sink: Arrivals, moments: list[Any], pack: Any) -> list[dict[str, Any]]:
    """For each moment: the first prompt from a rule that answers its kind, fired no earlier than
    `rules evaluate` allows (the start of the customer's turn holding the words: the words just
    before may already have disclosed it); how long after the end of the words it reached the sink
    (wall clock) and at what call time. None where no such prompt came."""
    from agent_assist.events import CallStart, Prompt

    t0 = next(at for e, at in zip(sink.events, sink.at, strict=True) if isinstance(e, CallStart))
    out = []
    for m in moments:
        rules = {r.id for r in pack.enabled if m.kind in r.answers}
        first = next(((e, at) for e, at in zip(sink.events, sink.at, strict=True)
                      if isinstance(e, Prompt) and e.rule in rules and e.t >= m.earliest), None)
        out.append({"kind": m.kind, "end": m.end,
                    "rule": first[0].rule if first else None,
                    "partial": bool(first[0].why.get("partial")) if first else None,
                    "latency_s": round(first[1] - (t0 + m.end), 3) if first else None,
                    "call_time_after_s": round(first[0].t - m.end, 3) if first else None})
    return out


def text_model_ms(quick: bool) -> dict[str, float]:
    """The text model alone, one turn at a time on one thread (as on a call), over the held-back
    test turns read with their context: mean, p50 and p95 milliseconds per turn."""
    from agent_assist.scoring import corpus
    from agent_assist.scoring.models import shipped
    from agent_assist.scoring.turns import Turn

    rows = [r for p in sorted((REPO / "tests" / "data" / "moments").glob("*.jsonl"))
            for r in corpus.read_turns(p)]
    turns = [Turn(r.text, r.agent_prev, r.customer_prev) for r in rows][: 40 if quick else None]
    model = shipped()
    model.score_turns(turns[:5])
    times, cpu = [], []
    for turn in turns:
        start, start_cpu = time.perf_counter(), time.thread_time()
        model.score_turns([turn])
        cpu.append((time.thread_time() - start_cpu) * 1000)
        times.append((time.perf_counter() - start) * 1000)
    # the thread's CPU time too: on a shared machine the wall time counts the turns others took
    return {"mean": round(float(np.mean(times)), 2), "p50": round(percentile(times, 50), 2),
            "p95": round(percentile(times, 95), 2), "cpu_mean": round(float(np.mean(cpu)), 2),
            "turns": len(times)}


def finals(sink: Arrivals) -> list[tuple[str, str]]:
    from agent_assist.events import Utterance

    return [(e.speaker.value, e.text) for e in sink.events if isinstance(e, Utterance)]


def said(sink: Arrivals, speaker: Any) -> str:
    from agent_assist.events import Utterance

    return " ".join(e.text for e in sink.events if isinstance(e, Utterance) and e.speaker == speaker)


# -- the benchmark -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import ctranslate2
    import faster_whisper
    import onnxruntime

    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
            "onnxruntime": onnxruntime.__version__, "commit": commit,
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def finals_only_pack(pack: Any) -> Any:
    """The pack with every rule checked on finals alone (the product before partials were scored)."""
    from dataclasses import replace

    from agent_assist.rules.packs import Pack

    return Pack({rid: replace(rule, on="final") for rid, rule in pack.rules.items()}, list(pack.files))


def worst(values: list[float | None], q: float) -> float | None:
    """The q-th percentile (nearest rank, from above) counting a missed moment as never answered:
    None when the rank falls on a miss."""
    ranked = sorted(values, key=lambda v: float("inf") if v is None else v)
    if not ranked:
        return None
    return ranked[min(len(ranked) - 1, int(np.ceil(q / 100 * len(ranked))) - 1)]


def moment_bench(models: Any, quick: bool, finals_only: bool,
                 say: Any = print) -> dict[str, Any]:
    """The long-turn calls at real time: moment latency, moments answered within 3 s, prompts on
    the long calm call, and the CPU those calls took."""
    moments: list[dict[str, Any]] = []
    calm_prompts, long_wall, long_cpu = 0, 0.0, 0.0
    for rec, marked in long_turn_calls(quick):
        say(f"  {rec.name} ({rec.seconds:.0f} s, {len(marked)} moments) at real time…")
        sink, _, w, c = run_call(rec, models, realtime=True, finals_only=finals_only)
        long_wall, long_cpu = long_wall + w, long_cpu + c
        if marked:
            moments += [{"call": rec.name, **m} for m in moment_latencies(sink, marked, models.pack)]
        else:
            calm_prompts += sum(1 for e in sink.events if type(e).__name__ == "Prompt")
    return {
        **moment_summary(moments),
        "long_calm_prompts": calm_prompts,
        "long_turn_cpu_core_fraction": round(long_cpu / long_wall, 3) if long_wall else None,
        "moments": moments,
    }


def moment_summary(moments: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency p50/p95 (a missed moment counts as the worst) and how many within 3 s: over every
    moment, and over the crisis moments alone (the critical ones)."""
    def within(values: list[float | None]) -> str:
        return f"{sum(1 for v in values if v is not None and v <= 3.0)} of {len(values)}"

    every = [m["latency_s"] for m in moments]
    crisis = [m["latency_s"] for m in moments if m["kind"].startswith("crisis")]
    return {
        "moment_latency_p50_s": worst(every, 50),
        "moment_latency_p95_s": worst(every, 95),
        "moments_within_3s": within(every),
        "crisis_moment_latency_p95_s": worst(crisis, 95),
        "crisis_moments_within_3s": within(crisis),
    }


def bench(quick: bool, say: Any = print, finals_only: bool = False,
          model: str | None = None) -> dict[str, Any]:
    import jiwer

    call, clips = recordings(quick)
    rss_before = rss_mb()
    models = load_models(finals_only, model)
    rss_models = rss_mb()
    say(f"models loaded: RSS {rss_models:.0f} MB; the sample call ({call.seconds:.0f} s) at real time…")

    # 2. paced at real time
    live, live_stages, wall, cpu = run_call(call, models, realtime=True, finals_only=finals_only)
    early = dict(transcriber_of(live_stages).early)
    cpu_fraction = cpu / wall
    peak = peak_rss_mb()
    parts: dict[str, list[float]] = {}
    utt, prompts, agent_prompts = latencies(call, live, parts)
    live_clips = []
    for clip in clips:
        say(f"  {clip.name} ({clip.seconds:.0f} s) at real time…")
        sink, *_ = run_call(clip, models, realtime=True, finals_only=finals_only)
        live_clips.append(sink)
        utt += latencies(clip, sink, parts)[0]
    peak = max(peak, peak_rss_mb())

    # 3. without pacing
    say("the sample call without pacing…")
    fast, stages, fast_wall, _ = run_call(call, models, realtime=False, timed=True,
                                          finals_only=finals_only)
    stage_s = {type(s.stage).__name__: round(s.seconds, 3) for s in stages}
    scorer_stage = next(s for s in stages if type(s.stage).__name__ == "Scorer")
    voice_stage = next(s for s in stages if type(s.stage).__name__ == "VoiceAnalyser")
    from agent_assist.events import Utterance

    scored = sum(1 for e in fast.events if isinstance(e, Utterance) and e.scores is not None)
    classifier_ms = (scorer_stage.seconds + voice_stage.seconds) * 1000 / max(1, scored)

    # 4. offline, the same audio and model
    say(f"{models.label}'s offline decode of the same audio…")
    refs, streamed, offline = [], [], []
    offline_s, audio_s = 0.0, call.seconds + sum(c.seconds for c in clips)
    for rec, sink in [(call, live), *zip(clips, live_clips, strict=True)]:
        for speaker, reference in rec.references.items():
            start = time.perf_counter()
            text = models.speech.offline(rec.parties[speaker])
            offline_s += time.perf_counter() - start
            refs.append(normalise(reference))
            streamed.append(normalise(said(sink, speaker)))
            offline.append(normalise(text))
    words = sum(len(r.split()) for r in refs)
    wer_streaming = float(jiwer.wer(refs, streamed))
    wer_offline = float(jiwer.wer(refs, offline))

    # 5. critical words early in long turns, at real time
    moment = moment_bench(models, quick, finals_only, say)
    text_ms = text_model_ms(quick)

    result: dict[str, Any] = {
        "prompt_latency_p50_s": round(percentile(prompts, 50), 3),
        "prompt_latency_p95_s": round(percentile(prompts, 95), 3),
        "utterance_latency_p50_s": round(percentile(utt, 50), 3),
        "utterance_latency_p95_s": round(percentile(utt, 95), 3),
        "cpu_core_fraction": round(cpu_fraction, 3),
        "peak_rss_mb": round(peak, 1),
        "replay_speed_x": round(call.seconds / fast_wall, 2),
        "offline_speed_x": round(audio_s / offline_s, 2),
        "wer_streaming": round(wer_streaming, 4),
        "wer_offline": round(wer_offline, 4),
        "wer_gap_points": round((wer_streaming - wer_offline) * 100, 2),
        "classifier_ms_per_utterance": round(classifier_ms, 2),
        "text_model_ms_per_turn": text_ms["mean"],
        **{k: v for k, v in moment.items() if k != "moments"},
        "details": {
            "text_model_ms": text_ms,
            "finals_only": finals_only,
            "moments": moment["moments"],
            "quick": quick,
            "prompts": len(prompts),
            "utterances_timed": len(utt),
            "utterance_latencies_s": [round(x, 3) for x in utt],
            "prompt_latencies_s": [round(x, 3) for x in prompts],
            "agent_prompt_latencies_s": [round(x, 3) for x in agent_prompts],
            "utterance_latency_parts_p50_p95_s": {
                k: [round(percentile(v, 50), 3), round(percentile(v, 95), 3)] for k, v in parts.items()},
            "sample_call_s": round(call.seconds, 1),
            "realtime_wall_s": round(wall, 1),
            "realtime_cpu_s": round(cpu, 1),
            "realtime_cpu_s_by_thread": live.cpu_by_thread(),
            "realtime_early_finals": early,
            "speech_end_checks": end_checks(call, live),
            "replay_wall_s": round(fast_wall, 2),
            "replay_stage_s": stage_s,
            "replay_finals_match_realtime": finals(fast) == finals(live),
            "speech_s": round(audio_s, 1),
            "offline_s": round(offline_s, 2),
            "wer_words": words,
            "rss_before_models_mb": round(rss_before, 1),
            "rss_after_models_mb": round(rss_models, 1),
            "scored_utterances": scored,
            "recordings": [call.name, *(c.name for c in clips)],
        },
        "machine": {**machine(), "speech_model": models.label},
    }
    result["speed_vs_offline"] = round(result["replay_speed_x"] / result["offline_speed_x"], 2)
    result["targets"] = {
        name: {"target": f"{op} {value:g}", "met": result[name] is not None and bool(
            result[name] <= value if op == "<=" else result[name] >= value)}
        for name, op, value in TARGETS
    }
    return result


# -- the table -----------------------------------------------------------------------------------

ROWS = [
    ("prompt latency p50 / p95", "prompt_latency_p50_s", "prompt_latency_p95_s", "s", "prompt_latency_p95_s"),
    ("utterance latency p50 / p95", "utterance_latency_p50_s", "utterance_latency_p95_s", "s",
     "utterance_latency_p95_s"),
    ("CPU over a real-time two-party call", "cpu_core_fraction", None, "of one core", "cpu_core_fraction"),
    ("peak RSS", "peak_rss_mb", None, "MB", "peak_rss_mb"),
    ("replay without pacing", "replay_speed_x", None, "x real time", "replay_speed_x"),
    ("the speech model's offline decode", "offline_speed_x", None, "x real time", None),
    ("WER streaming / offline", "wer_streaming", "wer_offline", "", "wer_gap_points"),
    ("classifiers per scored utterance", "classifier_ms_per_utterance", None, "ms", None),
    ("text model per turn with its context, one core", "text_model_ms_per_turn", None, "ms",
     "text_model_ms_per_turn"),
    ("moment latency p50 / p95 (long turns)", "moment_latency_p50_s", "moment_latency_p95_s", "s",
     "moment_latency_p95_s"),
    ("moments answered within 3 s", "moments_within_3s", None, "", None),
    ("crisis moments: latency p95, answered within 3 s", "crisis_moment_latency_p95_s",
     "crisis_moments_within_3s", "", "crisis_moment_latency_p95_s"),
    ("prompts on the long calm call", "long_calm_prompts", None, "", None),
]


def table(result: dict[str, Any]) -> str:
    d, m = result["details"], result["machine"]
    lines = [f"`make bench` on {m['cores']} cores ({m['cpu']}), {m.get('speech_model', 'tiny.en int8')}, "
             f"commit {m['commit']}, "
             f"{m['date'][:10]}: the sample call ({d['sample_call_s']:.0f} s, two parties) and "
             f"{len(d['recordings']) - 1} recordings, {d['wer_words']} reference words. "
             "From bench/results/latest.json.", "",
             "| measure | result | target |", "|---|---|---|"]
    for label, a, b, unit, target in ROWS:
        if a.startswith("wer"):
            gap = result["wer_gap_points"]
            value = f"{result[a] * 100:.1f} % / {result[b] * 100:.1f} % ({gap:+.1f} points)"
        else:
            def shown(v: Any) -> str:
                return "missed" if v is None else v if isinstance(v, str) else f"{v:g}"

            value = shown(result[a]) + (f" / {shown(result[b])}" if b else "") + (f" {unit}" if unit else "")
        goal = ""
        if target:
            t = result["targets"][target]
            goal = t["target"].replace("<=", "≤").replace(">=", "≥")
            goal += " met" if t["met"] else " **not met**"
        lines.append(f"| {label} | {value} | {goal} |")
    return "\n".join(lines)


def update_readme(path: Path, text: str) -> None:
    readme = path.read_text(encoding="utf-8")
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {README_START} … {README_END} block to update")
    path.write_text(readme[: start + len(README_START)] + "\n" + text + "\n" + readme[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: the first 22 s of the sample call and one 5 s recording")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    parser.add_argument("--readme", type=Path, default=None,
                        help="update the table between the bench markers in this file")
    parser.add_argument("--model", default=None,
                        help="the speech model (as agent-assist's --model; default: the product's)")
    parser.add_argument("--moments-only", action="store_true",
                        help="only the long-turn calls' moment latency (and their CPU), as JSON to --out")
    parser.add_argument("--finals-only", action="store_true",
                        help="measure as before partials were acted on: no rule fires on a partial, no "
                             "sentence cuts in long turns (the 'before' of the moment latency)")
    parser.add_argument("--text-model-only", action="store_true",
                        help="only the text model per turn (seconds, not the 20 minutes), as JSON on stdout")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.text_model_only:
        print(json.dumps(text_model_ms(args.quick)))
        return 0
    say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.moments_only:
        only = moment_bench(load_models(args.finals_only, args.model), args.quick, args.finals_only, say)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"finals_only": args.finals_only, **only}, indent=2) + "\n",
                            encoding="utf-8")
        print(json.dumps({k: v for k, v in only.items() if k != "moments"}, indent=2))
        return 0
    result = bench(args.quick, say=say, finals_only=args.finals_only, model=args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = table(result)
    print(text)
    if args.readme is not None:
        update_readme(args.readme, text)
    missed = [name for name, t in result["targets"].items() if not t["met"]]
    print(f"\nwritten {args.out}; targets not met: {', '.join(missed) or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

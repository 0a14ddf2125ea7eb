"""The speech models side by side: WER, decode CPU per final, and word times (issue #23).

    .venv/bin/python bench/speech_models.py                  # the three: Moonshine tiny-en, base-en, Whisper
    .venv/bin/python bench/speech_models.py --out /tmp/speech.json
    .venv/bin/python bench/speech_models.py --models moonshine-base-en,moonshine-tiny-en

On the recordings `bench/run.py` uses (the sample call, both parties, and the mono speech clips with
reference transcripts), as recorded and as telephone copies (300-3400 Hz, 8 kHz G.711 μ-law, back to
16 kHz: `audio.telephone.over_the_phone`), for each model:

- streaming WER: the finals of the product's own streaming path (`bench.run.run_call`, unpaced:
  its finals are those of a live call), and the model's own offline decode of the same audio;
- decode CPU per final: the segmenter's finals of the clean recordings, each decoded alone (the
  process's CPU time, which counts CTranslate2's and onnxruntime's own threads), by turn length
  (under 3 s, 3-8 s, over 8 s);
- word times: each Moonshine model's estimated times against Whisper's own, on the words both heard
  alike in the sample call's finals (median and p90 absolute difference of start and end), when
  Whisper is among the models.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import Recording, normalise, percentile, recordings, run_call, said  # noqa: E402

MODELS = ("moonshine-tiny-en", "moonshine-base-en", "whisper-tiny.en")
WHISPER = "whisper-tiny.en"


def telephone(rec: Recording) -> Recording:
    from agent_assist.audio.telephone import over_the_phone

    parties = {s: over_the_phone(a)[: len(a)] for s, a in rec.parties.items()}
    return Recording(rec.name + " (telephone)", parties, rec.references, rec.turns)


def final_segments(rec: Recording) -> list[Any]:
    """The segmenter's finals of a recording, each party on its own, as an unpaced replay makes them."""
    from agent_assist.call import CallOptions, segmenter_options
    from agent_assist.events import AudioChunk, CallEnd, EndReason, SpeechSegment
    from agent_assist.segmenter import Segmenter

    segments = []
    for speaker, audio in rec.parties.items():
        segmenter = Segmenter(segmenter_options(CallOptions(partials=False), watched=False))
        for i in range(0, len(audio), 1600):
            chunk = AudioChunk(t=i / 16000, speaker=speaker, samples=audio[i : i + 1600])
            segments += [s for s in segmenter.process(chunk) if isinstance(s, SpeechSegment) and s.final]
        end = CallEnd(t=len(audio) / 16000, call_id="bench", reason=EndReason.END_OF_AUDIO)
        segments += [s for s in segmenter.process(end) if isinstance(s, SpeechSegment) and s.final]
    return segments


def wer_rows(models: Any, recs: list[Recording]) -> dict[str, Any]:
    import jiwer

    refs, streamed, offline = [], [], []
    for rec in recs:
        sink, *_ = run_call(rec, models, realtime=False)
        for speaker, reference in rec.references.items():
            refs.append(normalise(reference))
            streamed.append(normalise(said(sink, speaker)))
            offline.append(normalise(models.speech.offline(rec.parties[speaker])))
    return {"words": sum(len(r.split()) for r in refs),
            "streaming": round(float(jiwer.wer(refs, streamed)), 4),
            "offline": round(float(jiwer.wer(refs, offline)), 4)}


def decode_cpu(models: Any, segments: list[Any]) -> dict[str, Any]:
    from agent_assist.transcriber import Transcriber

    transcriber = Transcriber(model=models.speech)
    by_length: dict[str, list[float]] = {"under 3 s": [], "3-8 s": [], "over 8 s": []}
    total_cpu = total_audio = 0.0
    for segment in segments:
        seconds = len(segment.audio) / 16000
        start = time.process_time()
        transcriber.final(segment)
        cpu = time.process_time() - start
        key = "under 3 s" if seconds < 3 else "3-8 s" if seconds <= 8 else "over 8 s"
        by_length[key].append(cpu)
        total_cpu += cpu
        total_audio += seconds
    out: dict[str, Any] = {k: {"n": len(v), "median_s": round(percentile(v, 50), 3),
                               "p95_s": round(percentile(v, 95), 3)} for k, v in by_length.items()}
    every = [c for v in by_length.values() for c in v]
    out["all"] = {"n": len(every), "median_s": round(percentile(every, 50), 3),
                  "p95_s": round(percentile(every, 95), 3),
                  "cpu_s_per_audio_s": round(total_cpu / max(total_audio, 1e-9), 3)}
    return out


def word_times(estimated: Any, aligned: Any, rec: Recording) -> dict[str, Any]:
    """|start| and |end| differences of the words both models' finals heard alike."""
    first, _, _, _ = run_call(rec, estimated, realtime=False)
    second, _, _, _ = run_call(rec, aligned, realtime=False)
    from agent_assist.events import Utterance

    starts, ends = [], []
    for speaker in rec.parties:
        a = [w for e in first.events if isinstance(e, Utterance) and e.speaker == speaker for w in e.words]
        b = [w for e in second.events if isinstance(e, Utterance) and e.speaker == speaker for w in e.words]
        matcher = difflib.SequenceMatcher(a=[normalise(w.text) for w in a],
                                          b=[normalise(w.text) for w in b], autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                wa, wb = a[block.a + k], b[block.b + k]
                starts.append(abs(wa.start - wb.start))
                ends.append(abs(wa.end - wb.end))
    return {"words": len(starts),
            "start_median_s": round(percentile(starts, 50), 3),
            "start_p90_s": round(percentile(starts, 90), 3),
            "end_median_s": round(percentile(ends, 50), 3), "end_p90_s": round(percentile(ends, 90), 3),
            "within_0.15_s_share": round(float(np.mean(
                [s <= 0.15 and e <= 0.15 for s, e in zip(starts, ends, strict=True)])), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--parts", default="wer,cpu,times", help="which measures (default: all)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"which speech models, comma-separated (default: {','.join(MODELS)})")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    names = args.models.split(",")
    from agent_assist.call import CallOptions, Models
    from agent_assist.transcriber import TranscriberOptions

    say = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    call, clips = recordings(quick=False)
    clean = [call, *clips]
    phone = [telephone(r) for r in clean] if "wer" in parts else []
    segments = [s for rec in clean for s in final_segments(rec)]
    loaded = {name: Models.load(CallOptions(transcriber=TranscriberOptions(model=name)))
              for name in names}
    result: dict[str, Any] = {}
    for name, models in loaded.items():
        result[name] = {}
        if "wer" in parts:
            say(f"{name}: WER…")
            result[name] = {"wer_clean": wer_rows(models, clean), "wer_telephone": wer_rows(models, phone),
                            "wer_sample_call": wer_rows(models, [call]),
                            "wer_sample_call_telephone": wer_rows(models, [phone[0]])}
        if "cpu" in parts:
            say(f"{name}: decode CPU per final…")
            result[name]["decode_cpu"] = decode_cpu(models, segments)
    for name in names:
        if "times" in parts and name.startswith("moonshine") and WHISPER in loaded:
            say(f"word times, {name} against Whisper…")
            result[f"word_times_{name}_vs_whisper"] = word_times(loaded[name], loaded[WHISPER], call)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

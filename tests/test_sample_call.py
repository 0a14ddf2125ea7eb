"""The demo's two-party sample call: every utterance goes to the right party, and reads right."""

import csv

import jiwer

from agent_assist.events import CallEnd, CallStart, Speaker
from tests.conftest import SAMPLES, normalise


def test_sample_call_speakers_and_transcript(sample_call):
    with (SAMPLES / "sample_call.turns.tsv").open(encoding="utf-8") as f:
        turns = list(csv.DictReader(f, delimiter="\t"))
    out = sample_call
    assert isinstance(out.events[0], CallStart)
    assert isinstance(out.events[-1], CallEnd)  # even after the prompts that fire at the end
    assert len(out.utterances) >= len(turns) * 0.8
    for u in out.utterances:
        middle = (u.start + u.end) / 2
        turn = next(t for t in turns if float(t["start"]) - 0.3 <= middle <= float(t["end"]) + 0.3)
        assert u.speaker == Speaker(turn["speaker"]), (u.text, turn["text"])
    for party in ("customer", "agent"):
        reference = normalise(" ".join(t["text"] for t in turns if t["speaker"] == party))
        said = normalise(" ".join(u.text for u in out.utterances if u.speaker == party))
        wer = jiwer.wer(reference, said)
        print(f"{party}: WER {wer:.3f}")
        assert wer <= 0.15  # numbers are written as digits by the model ("$680"), costing a few

"""Two speech models' event logs of the labelled calls side by side: which moments one answers and
the other does not, with what each heard there, and how each model's partials and turns compare.

    agent-assist rules evaluate data/samples/calls/ --model whisper-tiny.en --events-dir /tmp/ev-w
    agent-assist rules evaluate data/samples/calls/ --model moonshine-tiny-en --events-dir /tmp/ev-m
    .venv/bin/python bench/speech_prompts.py /tmp/ev-w /tmp/ev-m

The rules run again on each log (as `rules evaluate` does), so both are judged by the same pack.
For each moment answered by one model only it prints the answering prompt, each model's prompts of
that rule over the whole call (a prompt a turn earlier holds the rule's cooldown over the moment),
and the customer's partials and finals around the moment with their scores: enough to tell words
misheard from partials that came later, turns cut differently, or the same words scored
differently. Then, over all calls: how far each model's customer partials are from its own final
(word errors per word, and how often the partial's last word is in the final there), and the turns
one model has that the other has nothing overlapping for. README "Speech models" has a reading.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def words_of(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^a-z0-9']", "", w.lower()) for w in text.split()) if w]


def partial_quality(events: Sequence[object]) -> tuple[int, int, int, int]:
    """(word errors, words, last words found in the final there, partials) over a call's customer
    partials of 8 words or more (the ones scored), each against the best-matching prefix of its
    own final."""
    import jiwer

    from agent_assist.events import Partial, Utterance

    finals = {e.utterance_id: words_of(e.text) for e in events if isinstance(e, Utterance)}
    errors = words = last = count = 0
    for e in events:
        if not isinstance(e, Partial) or e.speaker.value == "agent" or e.utterance_id not in finals:
            continue
        said, final = words_of(e.text), finals[e.utterance_id]
        cuts = range(max(1, len(said) - 4), min(len(final), len(said) + 3) + 1)
        if len(said) < 8 or not cuts:
            continue
        cost = min(_edits(jiwer.process_words(" ".join(final[:k]), " ".join(said))) for k in cuts)
        errors, words, count = errors + cost, words + len(said), count + 1
        last += said[-1] in final[max(0, len(said) - 3): len(said) + 2]
    return errors, words, last, count


def _edits(out: object) -> int:
    return int(out.substitutions + out.deletions + out.insertions)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="one model's event logs (<call id>.jsonl)")
    parser.add_argument("second", type=Path, help="the other model's")
    parser.add_argument("--calls", type=Path, default=REPO / "data" / "samples" / "calls")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    from agent_assist.config import load as load_config
    from agent_assist.events import Partial, Prompt, Utterance
    from agent_assist.quality import evaluate as ev
    from agent_assist.quality.calls import read_events, rerun
    from agent_assist.rules import packs

    pack = packs.load_for_run(load_config().rule_packs(()))
    answers = {r.id: set(r.answers) for r in pack.rules.values()}
    names = (args.first.name, args.second.name)
    answered = [0, 0]
    quality = [[0, 0, 0, 0], [0, 0, 0, 0]]
    unmatched: list[list[str]] = [[], []]
    for label in sorted(args.calls.glob("*.json")):
        call = ev.read_labels(label)
        logs = [d / f"{call.id}.jsonl" for d in (args.first, args.second)]
        if not all(log.is_file() for log in logs):
            continue
        recorded = [[e for _, e in read_events(log)] for log in logs]
        events = [rerun(r, pack) for r in recorded]
        outcomes = [ev.judge(call, e, pack) for e in events]
        for side in (0, 1):
            answered[side] += sum(p is not None for _, p in outcomes[side].answered)
            quality[side] = [a + b for a, b in zip(quality[side], partial_quality(recorded[side]),
                                                    strict=True)]
            mine = [e for e in recorded[side] if isinstance(e, Utterance)]
            theirs = [e for e in recorded[1 - side] if isinstance(e, Utterance)]
            unmatched[side] += [f"{call.id} {u.speaker.value} {u.start:.1f}-{u.end:.1f}: {u.text}"
                                for u in mine if not any(o.speaker == u.speaker and o.start < u.end
                                                         and u.start < o.end for o in theirs)]
        for (m, first), (_, second) in zip(outcomes[0].answered, outcomes[1].answered, strict=True):
            if (first is None) == (second is None):
                continue
            prompt = first or second
            assert prompt is not None
            print(f"\n{call.id} {m.kind} {m.start:.1f}-{m.end:.1f} s, answered by {names[first is None]} "
                  f"only: {m.words}")
            print(f"  {prompt.rule} at {prompt.t:.1f} s{' (partial)' if prompt.why.get('partial') else ''}"
                  f" on {prompt.why.get('values')}")
            for side in (0, 1):
                times = [f"{e.t:.1f}" for e in events[side]
                         if isinstance(e, Prompt) and e.rule == prompt.rule]
                print(f"  {names[side]}: {prompt.rule} at {', '.join(times) or 'never'}")
                for e in recorded[side]:
                    if (isinstance(e, Utterance | Partial) and e.speaker.value != "agent"
                            and m.earliest - 1 <= e.t <= m.end + ev.WITHIN_S + 2):
                        s = e.scores
                        read = (f"d {s.distress:.2f} e {s.escalation:.2f} c {s.crisis:.2f} {s.kind or ''}"
                                if s is not None else "")
                        print(f"    {'final  ' if isinstance(e, Utterance) else 'partial'} {e.t:6.1f} "
                              f"{read:26s} {e.text}")
                    elif (isinstance(e, Prompt) and m.kind in answers.get(e.rule, set())
                          and m.earliest <= e.t <= m.end + ev.WITHIN_S):
                        print(f"    prompt  {e.t:6.1f} {e.rule}")
    print()
    for side in (0, 1):
        errors, words, last, count = quality[side]
        print(f"{names[side]}: {answered[side]} moments answered within {ev.WITHIN_S:.0f} s; {count} scored "
              f"customer partials, {errors / max(1, words):.3f} word errors per word against their own "
              f"final, last word in the final there {last / max(1, count):.2f}; "
              f"{len(unmatched[side])} turns the other model has nothing for")
        for line in unmatched[side]:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

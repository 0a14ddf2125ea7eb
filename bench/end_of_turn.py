"""Could a turn end at 0.25 s of silence, not at the 0.5 s hang-over, when the speech model's early
decode ends a sentence and is sure of its words (issue #23's question)? This counts, over the sample
call and the labelled calls (both parties, as a watched call runs: early finals and partials on, in
lock-step), the early decodes made 0.25 s into a pause, and of those that end in . ? or ! with a mean
word probability over a threshold, how many pauses ended the turn (the final reused that decode)
and how many the speaker went on from within the hang-over: each of those would be a turn cut
mid-way, its context split for the text model and its prompts doubled.

    .venv/bin/python bench/end_of_turn.py                 # the default speech model, about 2 minutes
    .venv/bin/python bench/end_of_turn.py --model whisper-tiny.en --calls 10

README "Speech models" has a reading.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Early:
    """One early decode: whose, whether it ends a sentence, its words' mean probability, and whether
    the turn's final reused it (the pause did end the turn)."""

    speaker: Any
    ends_sentence: bool
    mean_p: float
    ended_turn: bool = False


def recording_transcriber(options: Any, model: Any, seen: list[Early]) -> Any:
    """The product's transcriber stage, noting each early decode and which of them a final reuses."""
    from agent_assist.transcriber import Transcriber

    class Recording(Transcriber):
        def _decode_early(self, segment: Any) -> None:
            super()._decode_early(segment)
            early = self._early.get(segment.speaker)
            if early is not None and early[0] is segment:
                words = early[1].words
                seen.append(Early(segment.speaker, early[1].text.rstrip().endswith((".", "?", "!")),
                                  float(np.mean([w.p for w in words])) if words else 0.0))

        def _final_decode(self, segment: Any) -> Any:
            before = self.early["reused"]
            heard = super()._final_decode(segment)
            if self.early["reused"] > before:  # this final is the early decode of its own audio
                match = next(e for e in reversed(seen) if e.speaker == segment.speaker)
                match.ended_turn = True
            return heard

    return Recording(options, model=model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="the speech model (default: the product's)")
    parser.add_argument("--calls", type=int, default=None, help="only the first N labelled calls")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from run import decode  # the benchmark's reader: the file's parties as 16 kHz arrays

    from agent_assist.audio.arrays import ArraySource
    from agent_assist.audio.files import ChannelLayout
    from agent_assist.call import CallOptions, Models, call_stages
    from agent_assist.pipeline import Pipeline
    from agent_assist.transcriber import Transcriber, TranscriberOptions

    options = CallOptions(transcriber=TranscriberOptions(model=args.model), scoring=False)
    models = Models.load(options)
    files = [REPO / "data" / "samples" / "sample_call.flac",
             *sorted((REPO / "data" / "samples" / "calls").glob("*.ogg"))[: args.calls]]
    seen: list[Early] = []
    for path in files:
        stages = call_stages(models, options, watched=True)
        stages = [recording_transcriber(options.transcriber, models.speech, seen)
                  if isinstance(s, Transcriber) else s for s in stages]
        parties = decode(path, ChannelLayout.STEREO)
        Pipeline(stages, [], realtime=False, model_label=models.label).run(ArraySource(parties, path.name),
                                                                           path.stem)
    print(f"{models.label}: {len(files)} calls, {len(seen)} early decodes 0.25 s into a pause, "
          f"{sum(e.ended_turn for e in seen)} of them the turn's end")
    print("ending a sentence with mean word probability >=   decodes   turn ended   speech went on")
    for threshold in THRESHOLDS:
        chosen = [e for e in seen if e.ends_sentence and e.mean_p >= threshold]
        ended = sum(e.ended_turn for e in chosen)
        print(f"{threshold:>47.2f}   {len(chosen):>7}   {ended:>10}   {len(chosen) - ended:>8} "
              f"({(len(chosen) - ended) / max(1, len(chosen)):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The labelled calls measured with another text model in seconds, without transcribing them again.

    .venv/bin/python bench/rescore_calls.py --events-dir /tmp/labelled-events                # shipped model
    .venv/bin/python bench/rescore_calls.py --events-dir /tmp/labelled-events --models /tmp/new-classifiers

`rules evaluate --events-dir` re-runs the rules on recorded event logs but keeps the scores the
logs were recorded with, so it cannot say what a retrained text model would change; a replay through
the whole pipeline (Whisper on 41 calls) takes most of an hour on a 2-core machine. This reads the
logs `rules evaluate --events-dir` (or `replay --events`) wrote, reads every customer turn's words
again with the text model in --models, exactly as `scoring.scorer.Scorer` would on the call (the
same context: the customer's previous final and the agent's latest words; partials from eight words
on, on their last 40 words; the call's trend recomputed from the new scores), and keeps each final's
voice evidence as recorded. The voice's evidence is added to the text's log-odds in
`Classifiers.fuse` independently of the text, so it is recovered from the log as
logit(fused) - logit(text) per signal and added to the new text's log-odds. Then the rules run on
the rescored events (`quality.calls.rerun`) and each call is judged as `rules evaluate` judges it.

What it cannot reproduce: the logs are redacted ("[name]" where a name was said), and the live
scorer read the words before redaction, so a turn with a name in it reads a little differently.
Run it on the shipped model first: it should give the figures `rules evaluate` gave on the same logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from agent_assist.config import load as load_config
from agent_assist.events import Event, Partial, Scores, Speaker, Utterance
from agent_assist.quality import evaluate as ev
from agent_assist.quality.calls import read_events, rerun
from agent_assist.rules import packs
from agent_assist.scoring.models import Classifiers
from agent_assist.scoring.scorer import MIN_PARTIAL_WORDS, PARTIAL_WORDS, SCORED_SPEAKERS, Trend
from agent_assist.scoring.turns import Turn

REPO = Path(__file__).resolve().parent.parent
EPS = 1e-7


def _logit(p: float) -> float:
    p = min(max(p, EPS), 1 - EPS)
    return float(np.log(p / (1 - p)))


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def _voice_llr(scores: Scores | None) -> tuple[float, float]:
    """The voice's evidence a recorded final carried, in log-odds (distress, escalation)."""
    if scores is None or scores.acoustic is None:
        return 0.0, 0.0
    return (_logit(scores.distress) - _logit(scores.text["distress"]),
            _logit(scores.escalation) - _logit(scores.text["escalation"]))


#: What the redactor put in place of what was said, and plausible words to read there instead
#: (`--fill`): the live scorer read a name, not "[name]".
FILLS = {"[name]": "Margaret", "[dob]": "3rd of March 1958", "[account]": "4 4 1 2 3 3 7 8",
         "[address]": "14 Wattle Street", "[id]": "2 0 4 4 1 7", "[number]": "0 4 1 2 5 5 3",
         "[card]": "4 5 6 4 1 2 3 4"}


def _filled(text: str, fill: bool) -> str:
    if fill:
        for mark, words in FILLS.items():
            text = text.replace(mark, words)
    return text


def rescore(events: list[Event], models: Classifiers, fill: bool = False) -> list[Event]:
    """The call's events with every customer partial and final scored again by `models`
    (with `fill`, the redactor's marks read as plausible words)."""
    agent_said = customer_said = ""
    trends = {"distress": Trend(), "escalation": Trend()}
    out: list[Event] = []
    for event in events:
        if isinstance(event, Partial) and event.speaker in SCORED_SPEAKERS:
            words = _filled(event.text, fill).split()
            if len(words) < MIN_PARTIAL_WORDS:
                out.append(replace(event, scores=None))
                continue
            read = models.score_turns([Turn(" ".join(words[-PARTIAL_WORDS:]), agent_prev=agent_said,
                                            customer_prev=customer_said)])
            p = [float(x) for x in read.signals[0]]
            scores = Scores(
                distress=p[0], escalation=p[1], crisis=p[2],
                text={"distress": p[0], "escalation": p[1], "crisis": p[2]}, acoustic=None, baseline=False,
                trend={"distress": trends["distress"].level, "escalation": trends["escalation"].level,
                       "distress_rise": 0.0, "escalation_rise": 0.0},
                kind=read.kind(0), kinds=read.kinds_of(0))
            out.append(replace(event, scores=scores))
        elif isinstance(event, Utterance) and event.speaker in SCORED_SPEAKERS:
            read = models.score_turns([Turn(_filled(event.text, fill), agent_prev=agent_said,
                                            customer_prev=customer_said)])
            p = [float(x) for x in read.signals[0]]
            llr_d, llr_e = _voice_llr(event.scores)
            distress = _sigmoid(_logit(p[0]) + llr_d) if llr_d else p[0]
            escalation = _sigmoid(_logit(p[1]) + llr_e) if llr_e else p[1]
            d_level, d_rise = trends["distress"].add(distress)
            e_level, e_rise = trends["escalation"].add(escalation)
            old = event.scores
            scores = Scores(
                distress=distress, escalation=escalation, crisis=p[2],
                text={"distress": p[0], "escalation": p[1], "crisis": p[2]},
                acoustic=old.acoustic if old is not None else None,
                baseline=old.baseline if old is not None else False,
                kind=read.kind(0), kinds=read.kinds_of(0),
                trend={"distress": d_level, "escalation": e_level,
                       "distress_rise": d_rise, "escalation_rise": e_rise})
            out.append(replace(event, scores=scores))
            customer_said = _filled(event.text, fill)
        else:
            if isinstance(event, Utterance) and event.speaker == Speaker.AGENT:
                agent_said = _filled(event.text, fill)
            out.append(event)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events-dir", type=Path, required=True, help="event logs of the calls, <id>.jsonl")
    ap.add_argument("--calls", type=Path, default=REPO / "data" / "samples" / "calls",
                    help="the labelled calls (JSON: turns and moments)")
    ap.add_argument("--models", type=Path, default=None,
                    help="a classifiers folder (default: the shipped one)")
    ap.add_argument("--keep-scores", action="store_true",
                    help="do not rescore: the rules on the logs as recorded")
    ap.add_argument("--fill", action="store_true",
                    help="read the redactor's marks ([name], [dob]...) as plausible words, as the live "
                         "scorer read what was said")
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = ap.parse_args(argv)

    models = Classifiers(args.models)
    layers = load_config().rule_packs(())
    pack = packs.load_for_run(layers)
    outcomes = []
    for path in sorted(args.calls.glob("*.json")):
        call = ev.read_labels(path)
        log = args.events_dir / f"{call.id}.jsonl"
        if not log.is_file():
            print(f"{log}: no event log for {call.id}", file=sys.stderr)
            return 1
        events: list[Event] = [e for _, e in read_events(log)]
        if not args.keep_scores:
            events = rescore(events, models, args.fill)
        outcomes.append(ev.judge(call, rerun(events, pack), pack))
    summary = ev.Report(outcomes, pack).summary()
    for line in ev.lines(summary):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`classifiers`: build, measure and try the distress, escalation and crisis classifiers."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click


@click.group()
def classifiers() -> None:
    """Build, measure and try the distress, escalation and crisis classifiers.

    \b
    Example:
      agent-assist classifiers score my_labelled_calls.csv --text-column utterance
    """


def _progress(label: str) -> Callable[[str], None]:
    def say(step: str) -> None:
        click.echo(f"  {label}: {step}", err=True)

    return say


@classifiers.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Training data folder (data/ in a checkout); needed unless --voice-only.")
@click.option("--voice-data", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Emotional speech folder with manifest.csv. Without it the acoustic model in --out "
                   "is kept.")
@click.option("--voice-only", is_flag=True,
              help="Fit only the acoustic model from --voice-data (about a minute); the text model "
                   "in --out stays as it is.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Where the models go (classifiers/ in a checkout).")
def train(data_dir: Path | None, voice_data: Path | None, voice_only: bool, out_dir: Path) -> None:
    """Rebuild every model from --data (seeded, so the same data gives the same models, to the byte),
    export them as ONNX into --out and print the metrics measured on held-out rows.
    Fine-tuning the text model needs PyTorch (pip install 'agent-assist[train]'): it runs three times
    from the same encoder with consecutive seeds and averages the weights, about 90 minutes on a
    2-core machine. The encoder it starts from is fetched once, the first time,
    into the user cache directory. In a checkout, `make train` names the paths.

    \b
    Examples:
      agent-assist classifiers train --data data -o classifiers --voice-data ../shared/data/emotional-speech
      agent-assist classifiers train --voice-only -o classifiers --voice-data ../shared/data/emotional-speech
    """
    from agent_assist.scoring import training

    if data_dir is None and not voice_only:
        raise click.UsageError("Missing option '--data'.")
    steps = training.steps(voice=voice_data is not None, text=not voice_only)
    with click.progressbar(length=steps, label="training", file=sys.stderr, show_pos=True,
                           item_show_func=lambda s: s) as bar:
        # fine-tuning says how far it is as it goes, within one step of the bar
        manifest = training.train(data_dir, out_dir, voice_data,
                                  lambda name: bar.update(0 if name.startswith("fine-tuning") else 1, name),
                                  voice_only=voice_only)
    click.echo(json.dumps({"text": manifest["text"]["metrics"], "acoustic": manifest["acoustic"]["metrics"],
                           "operating_points": manifest["operating_points"]}, indent=2))


@classifiers.command(name="eval")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Training data, for the GoEmotions baseline (data/ in a checkout).")
@click.option("--dev-data", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder with the dev sets, read only (on this project's machines: "
                   "../shared/data/text/dev-eval).")
@click.option("--crisis-set", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The crisis set, TSV (tests/data/crisis_eval.tsv in a checkout).")
@click.option("--moments", "moments_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The held-back in-domain test turns (JSONL, as data/contact_centre/BRIEF.md has them; "
                   "tests/data/moments in a checkout).")
@click.option("--calls", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Calm calls (JSONL) for false alarms (on this project's machines: "
                   "../shared/data/calls/harper_valley_dev.jsonl); without it that part is left out.")
@click.option("--voice-data", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also replay the held-out actors' clips from this emotional speech folder through "
                   "the pipeline (a few minutes).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the full report as JSON here.")
def evaluate(data_dir: Path, dev_data: Path, crisis_set: Path, calls: Path | None, moments_dir: Path,
             voice_data: Path | None, json_path: Path | None) -> None:
    """Report ROC-AUC, average precision and F1 at the shipped operating point on the dev sets
    (each line alone and in its dialogue's context), beside a TF-IDF + logistic regression baseline
    fitted on GoEmotions; precision and recall on the crisis set, its indirect part and the crisis
    kind; the held-back in-domain test turns by signal and category; how often each signal fires
    on calm calls; and, with --voice-data, how well voices the acoustic model never heard are
    scored through the whole pipeline.

    `make eval` in a checkout passes the paths.

    \b
    Examples:
      agent-assist classifiers eval --data data --dev-data ../shared/data/text/dev-eval \\
          --crisis-set tests/data/crisis_eval.tsv --moments tests/data/moments --json eval.json
      agent-assist classifiers eval ... --voice-data ../shared/data/emotional-speech
    """
    from agent_assist.scoring import evaluation
    from agent_assist.scoring.models import Classifiers

    models = Classifiers(encoder_threads=os.cpu_count() or 1)  # a batch job: every core
    report = evaluation.evaluate(models, data_dir, dev_data, crisis_set, calls, _progress("eval"),
                                 moments_dir)
    if voice_data is not None:
        from agent_assist.call import CallOptions, Models
        from agent_assist.scoring.training import HELD_OUT_SPEAKERS

        speech = Models.load(CallOptions(scoring=False))
        report["voice"] = evaluation.voice(models, voice_data, HELD_OUT_SPEAKERS, speech, _progress("eval"))
        report["voice_phone"] = evaluation.voice(models, voice_data, HELD_OUT_SPEAKERS, speech,
                                                 _progress("eval"), phone=True)
    for line in evaluation.format_report(report):
        click.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


@classifiers.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--text-column", metavar="NAME", default=None,
              help="For CSV/TSV files: the column holding the utterance (default: 'text', or the "
                   "only column).")
@click.option("--agent-column", metavar="NAME", default=None,
              help="The column with the agent's words just before each utterance (context).")
@click.option("--customer-column", metavar="NAME", default=None,
              help="The column with the customer's previous turn (context).")
def score(file: Path, text_column: str | None, agent_column: str | None, customer_column: str | None) -> None:
    """Score texts without audio: FILE is a CSV or TSV file with a header (choose the column with
    --text-column, and the context columns if you have them) or plain text with one utterance per
    line. Prints CSV with the columns distress,escalation,crisis,kind (the crisis's most likely
    kind: self-harm, violence or danger), one row per input row, in order.

    \b
    Examples:
      agent-assist classifiers score utterances.txt
      agent-assist classifiers score labelled.csv --text-column utterance > scores.csv
      agent-assist classifiers score turns.tsv --agent-column agent_said --customer-column before
    """
    from agent_assist.scoring.models import shipped
    from agent_assist.scoring.textfile import read_turns

    turns = read_turns(file, text_column, agent_column, customer_column)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["distress", "escalation", "crisis", "kind"])
    models = shipped()
    for turn in turns:
        scored = models.score_turns([turn])
        out.writerow([*(f"{v:.4f}" for v in scored.signals[0]), scored.kind(0)])

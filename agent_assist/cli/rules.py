"""`rules`: check the prompt rule packs, replay calls through them, and measure them against
labelled moments."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent_assist import resources
from agent_assist.cli.common import model_option, say
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError
from agent_assist.sinks import JsonlEventLog
from agent_assist.text import terminal_safe

if TYPE_CHECKING:
    from agent_assist.quality.evaluate import RatedPrompt, ReviewedFlag
    from agent_assist.scoring.scorer import Scorer


@click.group()
def rules() -> None:
    """Check and try the prompt rules (TOML packs in prompts/ and site packs layered on top).

    \b
    Example:
      agent-assist rules lint site/our-centre.toml
    """


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--no-default", is_flag=True, help="Do not layer the files on the default pack.")
def lint(paths: tuple[Path, ...], no_default: bool) -> None:
    """Check rule pack files: every problem with file:line and a hint (unknown signal or field, a
    threshold outside [0, 1], a duplicate id, a missing principle, an override of a rule that no
    earlier pack defines). The files are layered in order on the default pack, as they would run.
    Every file is checked, whatever is wrong with another (one that is missing, not a file or not
    TOML is one error). Exit status 1 when there are errors (warnings alone pass). A pack that
    lints clean is exactly what `replay` and `run` load.

    \b
    Examples:
      agent-assist rules lint
      agent-assist rules lint prompts/site-example.toml
    """
    from agent_assist.rules import packs

    files = list(paths)
    default = resources.default_pack()
    if not no_default and default.resolve() not in {p.resolve() for p in files}:
        files = [default, *load_config().rule_packs(), *files]
    if not files:
        raise click.UsageError("no rule files to check")
    pack, problems = packs.load(files)
    for problem in problems:
        click.echo(str(problem))
    n_errors = len(packs.errors(problems))
    click.echo(f"{len(files)} file(s), {len(pack.enabled)} rules enabled, {n_errors} error(s), "
               f"{len(problems) - n_errors} warning(s)", err=True)
    if n_errors:
        sys.exit(1)


@rules.command()
@click.argument("path", required=False, default="site-pack.toml", type=click.Path(path_type=Path))
def init(path: Path) -> None:
    """Start a site pack: write a commented copy of the example site pack (prompts/site-example.toml)
    to PATH (default site-pack.toml), showing how to change a default rule's words, change a
    threshold, set a crisis rule's support line and add a rule of your own. It lints clean as it is.
    An existing file is never overwritten.

    \b
    Examples:
      agent-assist rules init our-centre.toml
      agent-assist rules lint our-centre.toml
    """
    from agent_assist.rules import packs

    packs.write_example(path)
    click.echo(f"wrote {terminal_safe(path)}: edit it, check it with `agent-assist rules lint "
               f"{terminal_safe(path)}`, then use it with --rules or [rules] site_packs in the configuration",
               err=True)


@rules.command(name="replay")
@click.argument("calls", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site pack to layer on the default pack (repeatable, in order).")
@click.option("--compare", nargs=2, type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="PACK_A PACK_B", help="Show what PACK_B adds or removes against PACK_A, call by call: "
                                           "when, the customer's words and the scores that decided.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="FILE", help="With --compare: also write one HTML page putting the two packs side by "
                                   "side on a timeline per call (readable only by you).")
@click.option("--events", "events_path", metavar="PATH", default=None,
              help="Write every event (each with its call id) as JSONL, as `replay --events` does.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
def rules_replay(calls: tuple[Path, ...], site_packs: tuple[Path, ...], compare: tuple[Path, Path] | None,
                 html_path: Path | None, events_path: str | None, quiet: bool) -> None:
    """Run recorded calls through the rules and print what fired, when and why, then prompts per
    rule per call-hour. CALLS are audio files (transcribed and scored), transcript files in JSONL
    (one call per line: call_id, turns with speaker, start, end, text; scored from their words),
    event logs (as `replay --events` and `run --events` write them, any number of calls each: the
    rules run again on the turns as they were scored, nothing transcribed or scored again), or
    folders of them. A progress bar shows on a terminal.

    \b
    Examples:
      agent-assist rules replay last-week/
      agent-assist rules replay events/2026-11-*.jsonl --rules site/ours.toml -q
      agent-assist rules replay calls.jsonl --compare prompts/default.toml site/new.toml
      agent-assist rules replay events/ --compare prompts/default.toml site/new.toml --html diff.html
    """
    from agent_assist.quality import calls as rr
    from agent_assist.rules import packs
    from agent_assist.scoring.scorer import Scorer

    if html_path is not None and compare is None:
        raise click.UsageError("--html draws two packs side by side: give --compare PACK_A PACK_B too")
    paths = _call_files(calls)
    scorer = functools.cache(lambda: Scorer(use_voice=False))  # loaded for words to score, if any
    config = load_config()
    if compare is not None:
        _compare(paths, compare, html_path, scorer)
        return
    layers = config.rule_packs(site_packs)
    pack = packs.load_for_run(layers)
    log_sink = JsonlEventLog(events_path) if events_path else None
    results, without_partials = [], False
    with _progress(len(paths), "replaying") as step:
        for recording in rr.recordings(paths, scorer, layers, step):
            result = rr.run(recording, pack)
            results.append(result)
            without_partials |= not recording.partials
            if log_sink:
                for event in result.events:
                    log_sink.emit(event)
            if not quiet:
                for line in rr.timeline(result):
                    click.echo(terminal_safe(line))
    if log_sink:
        log_sink.close()
    for line in rr.summary(results):
        click.echo(terminal_safe(line))
    if without_partials and any(r.on == "partial" for r in pack.enabled):
        click.echo("note: transcripts have no partial transcripts: rules with on = \"partial\" were checked "
                   "on each final turn only, so they fired later than they would on a live call")


def _call_files(calls: tuple[Path, ...]) -> list[Path]:
    """The files CALLS name: each file, and the call files in each folder (audio, *.jsonl), sorted."""
    from agent_assist.quality.calls import AUDIO_SUFFIXES

    paths: list[Path] = []
    for given in calls:
        if given.is_dir():
            found = sorted(p for p in given.iterdir()
                           if p.suffix.lower() in {*AUDIO_SUFFIXES, ".jsonl"} and p.is_file())
            if not found:
                raise AgentAssistError(f"no calls (audio files or *.jsonl) in the folder "
                                       f"{terminal_safe(given)}")
            paths += found
        else:
            paths.append(given)
    return paths


def _compare(paths: list[Path], compare: tuple[Path, Path], html_path: Path | None,
             scorer: Callable[[], Scorer]) -> None:
    """Each call recorded once (an audio call heard once), run through both packs, the differences
    printed (and drawn, with --html)."""
    from agent_assist import review
    from agent_assist.quality import calls as rr
    from agent_assist.quality import compare as cmp
    from agent_assist.rules import packs
    from agent_assist.store import utc_text

    config = load_config()
    default = resources.default_pack().resolve()
    layers = [config.rule_packs(() if p.resolve() == default else (p,)) for p in compare]
    pack_a, pack_b = (packs.load_for_run(files) for files in layers)
    pairs = []
    with _progress(len(paths), "comparing") as step:
        for recording in rr.recordings(paths, scorer, layers[0], step):
            pairs.append(cmp.pair(rr.run(recording, pack_a), rr.run(recording, pack_b), pack_a, pack_b))
    for line in cmp.lines(pairs):
        click.echo(terminal_safe(line))
    if html_path is not None:
        review.save(html_path, cmp.page(pairs, str(compare[0]), str(compare[1]), utc_text()))
        say(f"wrote {terminal_safe(html_path)}")


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr over `total` files, a step as each is done (`step(its name)`), for a
    run of more than one and only on a terminal: what goes to a file or a pipe stays the output alone.
    click's own bar: click is already a dependency, and `rules evaluate` shows the same."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda _name: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True,
                           item_show_func=lambda name: name) as bar:
        yield lambda name: bar.update(1, terminal_safe(name))


@rules.command(name="evaluate")
@click.argument("calls", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site pack to layer on the default pack (repeatable, in order).")
@click.option("--events-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Event logs of the calls (<id>.jsonl, as `replay --events` writes them): re-run the rules "
                   "on them instead of replaying the audio; a call replayed is saved here for next time.")
@click.option("--store", "store_url", metavar="PATH|URL", default=None,
              help="Also count labels from this flag store: supervisors' outcomes (a rule's flag reviewed as "
                   "a false alarm counts against that rule, one handled well for it) and, apart, agents' "
                   "Helpful / Not helpful on the prompt cards.")
@click.option("--since", default=None, metavar="DATE[ TIME]",
              help="With --store: only flags of calls that started from then (local time).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the full report as JSON here.")
@model_option
def rules_evaluate(calls: tuple[Path, ...], site_packs: tuple[Path, ...], events_dir: Path | None,
                   store_url: str | None, since: str | None, json_path: Path | None,
                   model: str | None) -> None:
    """Measure a pack against labelled moments: for each kind of moment how many got a prompt from a
    rule that answers it within 3 s of the words; per rule precision, recall, time to prompt (median
    and 90th percentile, from the end of the moment's words) and prompts per calm call-hour. CALLS
    are labelled call files (JSON: turns and moments, as in data/samples/calls/) or folders of them.

    With --store, the flags supervisors reviewed (`review outcome`) are labels too: per rule, how
    many were reviewed, how many were false alarms, and its precision with them counted; and, apart,
    the agents' ratings of the cards (Not helpful: a false positive; Helpful: a true one), with its
    precision with them counted (CALLS may then be left out).

    
    Examples:
      agent-assist rules evaluate data/samples/calls/
      agent-assist rules evaluate --rules site/ours.toml --events-dir /tmp/labelled-events
      agent-assist rules evaluate data/samples/calls/ --model moonshine-tiny-en --events-dir /tmp/ms
      agent-assist rules evaluate data/samples/calls/call-0*.json --json report.json
      agent-assist rules evaluate --store postgresql://flags.example.internal/flags --since 2026-11-01
    """
    from agent_assist.quality import evaluate as ev
    from agent_assist.rules import packs

    if not calls and store_url is None:
        raise click.UsageError("nothing to measure: give labelled calls (files or folders, as "
                               "data/samples/calls/), or --store for supervisors' outcomes")
    if since is not None and store_url is None:
        raise click.UsageError("--since chooses the reviewed flags of --store: give --store too")
    paths = [f for p in calls for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    if calls and not paths:
        raise AgentAssistError(f"no labelled calls (*.json) in {', '.join(map(str, calls))}")
    labelled = [ev.read_labels(p) for p in paths]  # every file checked before anything is replayed
    layers = load_config().rule_packs(site_packs)
    pack = packs.load_for_run(layers)
    reviewed, rated = _store_labels(store_url, since) if store_url is not None else ([], [])
    if not paths and not reviewed and not rated:
        click.echo("no flags reviewed as handled well or false alarm, and no prompts rated by agents: "
                   "nothing to measure (`agent-assist review outcome` and the cards' Helpful / Not helpful "
                   "record them)")
        return
    if not paths:
        report = ev.evaluate([], pack, layers, reviewed=reviewed, rated=rated)
    else:
        with _progress(len(paths), "evaluating") as step:
            report = ev.evaluate(labelled, pack, layers, events_dir, step, reviewed, rated, model)
    summary = report.summary()
    for line in ev.lines(summary):
        click.echo(terminal_safe(line))
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _store_labels(store_url: str, since: str | None) -> tuple[list[ReviewedFlag], list[RatedPrompt]]:
    """The flags of the store that supervisors gave a verdict (`quality.evaluate.reviewed_flags`),
    and the prompts agents rated (`quality.evaluate.rated_prompts`)."""
    from agent_assist import review as rv
    from agent_assist.quality.evaluate import rated_prompts, reviewed_flags
    from agent_assist.store import Filters

    start = rv.utc_text(rv.parse_moment(since)) if since else None
    with rv.opened_store(store_url) as store:
        flags = store.flags(Filters(since=start, reviewed=True))
        return reviewed_flags(flags), rated_prompts(store.feedback(start))

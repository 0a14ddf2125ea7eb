"""`rules`: check the prompt rule packs, replay calls through them, and measure them against
labelled moments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent_assist import resources
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError
from agent_assist.sinks import JsonlEventLog
from agent_assist.text import terminal_safe

if TYPE_CHECKING:
    from agent_assist.quality.evaluate import ReviewedFlag


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
@click.argument("calls", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site pack to layer on the default pack (repeatable, in order).")
@click.option("--compare", nargs=2, type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="PACK_A PACK_B", help="Show what PACK_B adds or removes against PACK_A, call by call.")
@click.option("--events", "events_path", metavar="PATH", default=None,
              help="Write every event (each with its call id) as JSONL, as `replay --events` does.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
def rules_replay(calls: tuple[Path, ...], site_packs: tuple[Path, ...], compare: tuple[Path, Path] | None,
                 events_path: str | None, quiet: bool) -> None:
    """Run recorded calls through the rules and print what fired, when and why, then prompts per
    rule per call-hour. CALLS are audio files, or transcript files in JSONL (one call per line:
    call_id, turns with speaker, start, end, text), scored from their words.

    \b
    Examples:
      agent-assist rules replay last-week/*.jsonl
      agent-assist rules replay calls.jsonl --compare prompts/default.toml site/new.toml
    """
    from agent_assist.quality import calls as rr
    from agent_assist.rules import packs
    from agent_assist.scoring.scorer import Scorer

    scorer = Scorer(use_voice=False)
    config = load_config()
    if compare is not None:
        default = resources.default_pack().resolve()
        pair = [config.rule_packs(() if p.resolve() == default else (p,)) for p in compare]
        a = list(rr.calls(calls, packs.load_for_run(pair[0]), pair[0], scorer))
        b = list(rr.calls(calls, packs.load_for_run(pair[1]), pair[1], scorer))
        for line in rr.compare(a, b):
            click.echo(terminal_safe(line))
        return
    layers = config.rule_packs(site_packs)
    pack = packs.load_for_run(layers)
    transcripts = any(p.suffix.lower() not in rr.AUDIO_SUFFIXES for p in calls)
    log_sink = JsonlEventLog(events_path) if events_path else None
    results = []
    for result in rr.calls(calls, pack, layers, scorer):
        results.append(result)
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
    if transcripts and any(r.on == "partial" for r in pack.enabled):
        click.echo("note: transcripts have no partial transcripts: rules with on = \"partial\" were checked "
                   "on each final turn only, so they fired later than they would on a live call")


@rules.command(name="evaluate")
@click.argument("calls", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site pack to layer on the default pack (repeatable, in order).")
@click.option("--events-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Event logs of the calls (<id>.jsonl, as `replay --events` writes them): re-run the rules "
                   "on them instead of replaying the audio; a call replayed is saved here for next time.")
@click.option("--store", "store_url", metavar="PATH|URL", default=None,
              help="Also count supervisors' outcomes from this flag store as labels: a rule's flag reviewed "
                   "as a false alarm counts against that rule, one handled well for it.")
@click.option("--since", default=None, metavar="DATE[ TIME]",
              help="With --store: only flags of calls that started from then (local time).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the full report as JSON here.")
def rules_evaluate(calls: tuple[Path, ...], site_packs: tuple[Path, ...], events_dir: Path | None,
                   store_url: str | None, since: str | None, json_path: Path | None) -> None:
    """Measure a pack against labelled moments: for each kind of moment how many got a prompt from a
    rule that answers it within 3 s of the words, per rule precision, recall and how soon, and the
    prompts per calm call-hour. CALLS are labelled call files (JSON: turns and moments, as in
    data/samples/calls/) or folders of them.

    With --store, the flags supervisors reviewed (`review outcome`) are labels too: per rule, how
    many were reviewed, how many were false alarms, and its precision with them counted (CALLS may
    then be left out).

    
    Examples:
      agent-assist rules evaluate data/samples/calls/
      agent-assist rules evaluate --rules site/ours.toml --events-dir /tmp/labelled-events
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
    reviewed = _reviewed_flags(store_url, since) if store_url is not None else []
    if not paths and not reviewed:
        click.echo("no flags reviewed as handled well or false alarm: nothing to measure "
                   "(`agent-assist review outcome` records them)")
        return
    if not paths:
        report = ev.evaluate([], pack, layers, reviewed=reviewed)
    else:
        with click.progressbar(length=len(paths), label="evaluating", file=sys.stderr, show_pos=True,
                               item_show_func=lambda s: s) as bar:
            report = ev.evaluate(labelled, pack, layers, events_dir, lambda name: bar.update(1, name),
                                 reviewed)
    summary = report.summary()
    for line in ev.lines(summary):
        click.echo(terminal_safe(line))
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _reviewed_flags(store_url: str, since: str | None) -> list[ReviewedFlag]:
    """The flags of the store that supervisors gave a verdict (`quality.evaluate.reviewed_flags`)."""
    from agent_assist import review as rv
    from agent_assist.quality.evaluate import reviewed_flags
    from agent_assist.store import Filters

    chosen = Filters(since=rv.utc_text(rv.parse_moment(since)) if since else None, reviewed=True)
    with rv.opened_store(store_url) as store:
        return reviewed_flags(store.flags(chosen))

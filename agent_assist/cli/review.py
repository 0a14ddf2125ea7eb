"""`review`: the supervisor's after-shift review of flags."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agent_assist import review as rv
from agent_assist.cli.common import say
from agent_assist.config import load as load_config
from agent_assist.crisis_lines import load as load_crisis_lines
from agent_assist.errors import AgentAssistError
from agent_assist.events import FlagKind
from agent_assist.store import Filters, Outcome, import_files

#: Refused lines of an import listed one by one; beyond these, a count.
SHOWN_REFUSALS = 20


@click.group()
def review() -> None:
    """The supervisor's review of flags after a shift: list, show, ack, outcome, note, export,
    report, purge.

    Every command takes --store (a SQLite file or postgresql://…; default: the configuration's
    store.url, else the agent's own store in the user's data directory).

    \b
    Examples:
      agent-assist review list --shift today
      agent-assist review show 12
      agent-assist review ack 12
      agent-assist review outcome false-alarm 13
      agent-assist review outcome follow-up-wellbeing 12
      agent-assist review note 12 "Called Sam after the shift; taking a break tomorrow" --wellbeing
      agent-assist review report --shift yesterday -o report.html
      agent-assist review list --store postgresql://flags.example.internal/flags --team east --json
    """


def _review_store(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_url", metavar="PATH|URL", default=None,
                        help="The flag store (default: store.url, else the user's own SQLite store).")(func)


def _filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of `review.flag_filters`, by the same names, and --store."""
    options = [
        click.option("--shift", default=None, metavar="SHIFT",
                     help="today, yesterday, a day (2026-11-23) or a start and length (2026-11-23T22:00/8h), "
                          "local time, by call start."),
        click.option("--since", default=None, metavar="DATE[ TIME]", help="Calls that started from then."),
        click.option("--until", default=None, metavar="DATE[ TIME]", help="Calls that started before then."),
        click.option("--agent", "agents", multiple=True, help="Only this agent (repeatable)."),
        click.option("--team", "teams", multiple=True, help="Only this team (repeatable)."),
        click.option("--kind", "kinds", multiple=True, help="Only this kind: crisis, escalation, distress, "
                                                            "agent (repeatable)."),
        click.option("--severity", "severities", multiple=True,
                     type=click.Choice(["low", "medium", "high", "critical"]), help="Only this severity "
                                                                                     "(repeatable)."),
        click.option("--min-severity", type=click.Choice(["low", "medium", "high", "critical"]), default=None,
                     help="This severity and above."),
        click.option("--reviewed/--unreviewed", default=None, help="Only reviewed, or only not reviewed."),
    ]
    for option in reversed(options):
        func = option(func)
    return _review_store(func)


def _reviewer(by: str | None) -> str:
    return by or getpass.getuser()


@review.command(name="list")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the flags as JSON (for scripts).")
@click.option("--full", is_flag=True, help=f"Print reasons whole (else cut at {rv.REASON_WIDTH} characters, "
                                           "marked …).")
def review_list(store_url: str | None, as_json: bool, full: bool, **filters: Any) -> None:
    """Flags by call: the calls in the order of their worst flag (the most severe, then one not yet
    reviewed, then the newest call), each call's worst flag first. The rules' check-ins with agents
    after a hard call come apart, in their own wellbeing section. The review column says where each
    flag stands: -, reviewed, or its outcomes. --json prints every flag, most severe first.

    \b
    Examples:
      agent-assist review list --shift today --unreviewed
      agent-assist review list --since 2026-11-01 --team east --min-severity high
      agent-assist review list --full
      agent-assist review list --json | jq '.[] | select(.kind == "crisis") | .id'
    """
    chosen, label = rv.flag_filters(**filters)
    with rv.opened_store(store_url) as store:
        flags = store.flags(chosen)
        if as_json:
            click.echo(json.dumps([f.to_dict() for f in flags], indent=2, ensure_ascii=False))
            return
        for line in rv.list_lines(flags, full=full):
            click.echo(line)
        click.echo(f"{len(flags)} flag(s), {sum(not f.reviewed for f in flags)} not reviewed ({label}; "
                   f"{store.where})", err=True)


@review.command(name="show")
@click.argument("flag_id", metavar="FLAG", type=int)
@_review_store
def review_show(flag_id: int, store_url: str | None) -> None:
    """One flag, whole: for a crisis the support line its rule offers in the configured region, the
    reason, the call's score timeline, the prompts shown and the agent's feedback, the redacted
    excerpt, the notes, and the review (who reviewed it, when, and their outcomes).

    \b
    Example:
      agent-assist review show 12
    """
    with rv.opened_store(store_url) as store:
        flag = store.flag(flag_id)
        call_flags = store.flags(Filters(calls=(flag.call_id,), kinds=(FlagKind.CRISIS.value,)))
        lines = load_crisis_lines(load_config())
        for line in rv.show_lines(flag, store.call(flag.call_id), lines, call_flags):
            click.echo(line)


@review.command(name="ack")
@click.argument("flag_ids", metavar="FLAG...", type=int, nargs=-1, required=True)
@click.option("--by", default=None, help="Who reviewed it (default: the login name).")
@_review_store
def review_ack(flag_ids: tuple[int, ...], by: str | None, store_url: str | None) -> None:
    """Mark flags reviewed.

    \b
    Example:
      agent-assist review ack 12 13
    """
    with rv.opened_store(store_url) as store:
        for flag_id in flag_ids:
            done = store.ack(flag_id, _reviewer(by))
            click.echo(f"flag {flag_id}: " + ("reviewed" if done else "already reviewed"))


@review.command(name="outcome")
@click.argument("outcome", metavar="OUTCOME", type=click.Choice([o.option for o in Outcome]))
@click.argument("flag_ids", metavar="FLAG...", type=int, nargs=-1, required=True)
@click.option("--by", default=None, help="Who reviewed it (default: the login name).")
@_review_store
def review_outcome(outcome: str, flag_ids: tuple[int, ...], by: str | None, store_url: str | None) -> None:
    """Record what you concluded about flags (they count as reviewed):

    \b
      handled-well         the flag was right, and the call went as it should
      false-alarm          the rule fired on something that was not there; counts against
                           that rule in `agent-assist rules evaluate --store`
      follow-up-wellbeing  check in with the agent after a hard call (care, not a rating)

    Each is a line of the flag's review, with who and when (`review show` lists them). The latest
    of handled-well and false-alarm stands: record the other to change your mind.

    \b
    Examples:
      agent-assist review outcome handled-well 12
      agent-assist review outcome false-alarm 13 14
      agent-assist review outcome follow-up-wellbeing 12 --by lee
    """
    chosen = Outcome(outcome.replace("-", "_"))
    with rv.opened_store(store_url) as store:
        for flag_id in flag_ids:
            store.set_outcome(flag_id, chosen, _reviewer(by))
            click.echo(f"flag {flag_id}: {chosen.words}")


@review.command(name="note")
@click.argument("flag_id", metavar="FLAG", type=int)
@click.argument("text")
@click.option("--wellbeing", is_flag=True, help="A follow-up for the agent's own wellbeing after the call.")
@click.option("--by", default=None, help="Who wrote it (default: the login name).")
@_review_store
def review_note(flag_id: int, text: str, wellbeing: bool, by: str | None, store_url: str | None) -> None:
    """Add a note to a flag (redacted like everything else). --wellbeing marks a follow-up for the
    agent's own wellbeing.

    \b
    Examples:
      agent-assist review note 12 "Customer called back; hardship plan in place"
      agent-assist review note 12 "Checked in with Sam; debrief booked" --wellbeing
    """
    if not text.strip():
        raise click.UsageError("the note is empty")
    with rv.opened_store(store_url) as store:
        store.note(flag_id, " ".join(text.split()), _reviewer(by), wellbeing)
        click.echo(f"flag {flag_id}: note added" + (" (agent wellbeing)" if wellbeing else ""))


@review.command(name="export")
@_filter_options
@click.option("--csv", "as_csv", is_flag=True, required=True, help="Export as CSV (the one format).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file (default: stdout).")
def review_export(store_url: str | None, as_csv: bool, out: Path | None, **filters: Any) -> None:
    """The flags as CSV, in the list's order (call by call, then the agents' check-ins), with their
    notes and their review (outcomes, and who did what when). Cells that a spreadsheet would run as
    a formula are quoted with a leading apostrophe.

    \b
    Example:
      agent-assist review export --csv --shift yesterday -o flags.csv
    """
    chosen, _ = rv.flag_filters(**filters)
    with rv.opened_store(store_url) as store:
        text = rv.to_csv(store.flags(chosen))
    if out is None:
        click.echo(text, nl=False)
    else:
        rv.save(out, text)
        click.echo(f"wrote {out}", err=True)


@review.command(name="report")
@_filter_options
@click.option("-o", "--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The HTML file to write.")
def review_report(store_url: str | None, out: Path, **filters: Any) -> None:
    """One self-contained HTML page for a shift: crisis flags first and unmistakable (with the
    region's support line), the flags by call, the agents' check-ins in their own wellbeing section,
    and per call a timeline of distress, escalation and crisis with the prompts and flags marked, the
    agent's feedback, the notes and who reviewed what. Open it in a browser; it loads nothing from
    anywhere.

    \b
    Example:
      agent-assist review report --shift today -o report.html
    """
    chosen, label = rv.flag_filters(**filters)
    with rv.opened_store(store_url) as store:
        page, flags, calls = rv.shift_report(store, chosen, label)
    rv.save(out, page)
    click.echo(f"wrote {out}: {flags} flag(s) in {calls} call(s)", err=True)


@review.command(name="purge")
@click.option("--older-than", "days", type=click.FloatRange(min=0, min_open=True), required=True,
              metavar="DAYS", help="Delete calls that started more than this many days ago.")
@_review_store
def review_purge(days: float, store_url: str | None) -> None:
    """Delete old calls with their flags, notes, scores, prompts, feedback and transcript (the
    retention a site agreed; `run --retain-days` does the same as a session starts).

    \b
    Example:
      agent-assist review purge --older-than 90
    """
    with rv.opened_store(store_url) as store:
        calls, flags = store.purge(days)
        click.echo(f"purged {calls} call(s) and {flags} flag(s) older than {days:g} days from {store.where}")


@review.command(name="import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_review_store
def review_import(files: tuple[Path, ...], store_url: str | None) -> None:
    """Load events a session could not write to the store (saved under the data directory's
    unsaved/ folder, already redacted) or any event log, into the store.

    Each line is checked first: a line that is not a valid event is named (file:line) and skipped,
    and the rest are imported. An event the store has already is not written again, so importing
    a file twice is harmless.

    \b
    Example:
      agent-assist review import ~/.local/share/agent-assist/unsaved/*.jsonl
    """
    with rv.opened_store(store_url) as store:
        report = import_files(store, list(files))
        where = store.where
    for line in report.refused[:SHOWN_REFUSALS]:
        say(f"not imported: {line}")
    if len(report.refused) > SHOWN_REFUSALS:
        say(f"not imported: {len(report.refused) - SHOWN_REFUSALS} more line(s)")
    click.echo(report.summary(where))
    if report.refused:
        raise AgentAssistError(f"{len(report.refused)} line(s) not imported (listed above); the rest were")

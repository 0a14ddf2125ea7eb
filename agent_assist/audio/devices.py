"""Capture devices: what `agent-assist devices` lists, how a name on the command line finds one,
and how one is opened.

Two kinds of input are listed:

* **PortAudio devices** (through sounddevice): microphones and headsets, with PortAudio's index,
  host API, channels and default rate. On Windows this includes WASAPI, on macOS Core Audio.
* **PulseAudio / PipeWire sources** (Linux, through libpulse): every source the sound server has,
  including the *monitor* of each output, which carries exactly what the agent hears. PortAudio
  cannot name these itself; they are opened through its `pulse` device with `PULSE_SOURCE` set for
  the moment of opening, which is how the ALSA pulse plugin picks a source.

Both libraries are loaded only when a device is wanted, so replays work on machines without them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from agent_assist.errors import AudioSourceError

log = logging.getLogger(__name__)

_ENV_LOCK = threading.Lock()  # PULSE_SOURCE is process-wide: one opening at a time


def _install_hint() -> str:
    if sys.platform.startswith("linux"):
        return "install the system package libportaudio2 (Debian/Ubuntu: sudo apt install libportaudio2)"
    return "reinstall the Python package sounddevice, which bundles PortAudio on this system"


def sounddevice() -> Any:
    """The sounddevice module, or a one-line error saying what to install."""
    try:
        import sounddevice as sd
    except OSError:  # sounddevice raises OSError when the PortAudio library is not found
        raise AudioSourceError(f"PortAudio is missing: {_install_hint()}") from None
    except ImportError:
        raise AudioSourceError("the Python package sounddevice is missing: pip install sounddevice") from None
    return sd


@dataclass(frozen=True)
class Device:
    """One input the agent can choose. `index` is PortAudio's; a PulseAudio source has `pulse`."""

    name: str
    label: str  # a readable description (PulseAudio's description; PortAudio's name)
    host_api: str
    channels: int
    rate: float
    default: bool = False
    monitor: bool = False  # carries what an output plays (what the agent hears)
    index: int | None = None
    pulse: str | None = None  # PulseAudio/PipeWire source name

    @property
    def display(self) -> str:
        """How transcripts and events name it: PulseAudio descriptions repeat, their names do not."""
        return self.pulse if self.pulse is not None else self.label

    @property
    def key(self) -> str:
        """What to type after --agent-device / --customer-device to get exactly this device."""
        return str(self.index) if self.index is not None else str(self.pulse)


@dataclass(frozen=True)
class Inventory:
    devices: tuple[Device, ...]
    notes: tuple[str, ...]  # why a kind of device could not be listed

    @property
    def default_input(self) -> Device | None:
        defaults = [d for d in self.devices if d.default and not d.monitor]
        portaudio = [d for d in defaults if d.index is not None]
        return next(iter(portaudio or defaults), None)

    @property
    def default_monitor(self) -> Device | None:
        return next((d for d in self.devices if d.default and d.monitor), None)


def portaudio_devices() -> list[Device]:
    sd = sounddevice()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioSourceError(f"PortAudio cannot list devices: {exc}") from None
    out = []
    for info in devices:
        if info["max_input_channels"] <= 0:
            continue
        name = str(info["name"])
        lowered = name.lower()
        out.append(Device(
            name=name, label=name, host_api=str(apis[info["hostapi"]]["name"]),
            channels=int(info["max_input_channels"]), rate=float(info["default_samplerate"]),
            default=info["index"] == default_in,
            # Windows' "Stereo Mix", macOS loopback drivers: names that say they carry the output
            monitor=any(word in lowered for word in ("stereo mix", "loopback", "monitor", "blackhole",
                                                     "cable output", "what u hear")),
            index=int(info["index"]),
        ))
    return out


def pulse_sources() -> list[Device]:
    """PulseAudio/PipeWire sources (monitors included); empty where there is no such server."""
    import pulsectl

    out = []
    with contextlib.closing(pulsectl.Pulse("agent-assist", connect=False)) as pulse:
        pulse.connect(timeout=2.0)
        info = pulse.server_info()
        default_source = info.default_source_name
        default_monitor = f"{info.default_sink_name}.monitor" if info.default_sink_name else ""
        # read every field while connected: libpulse owns the structs behind them
        for src in pulse.source_list():
            monitor = src.monitor_of_sink != 0xFFFFFFFF or src.name.endswith(".monitor")
            out.append(Device(
                name=src.name, label=src.description or src.name, host_api="PulseAudio",
                channels=int(src.channel_count), rate=float(src.sample_spec.rate),
                default=src.name == (default_monitor if monitor else default_source),
                monitor=monitor, pulse=src.name,
            ))
    return out


def inventory() -> Inventory:
    """Every input device on this machine; PortAudio missing is an error, PulseAudio missing a note."""
    devices = portaudio_devices()
    notes: list[str] = []
    if sys.platform.startswith("linux"):
        try:
            devices += pulse_sources()
        except ImportError:
            notes.append("PulseAudio sources not listed: the Python package pulsectl is missing")
        except Exception as exc:  # no libpulse, no server, refused: say so, list the rest
            notes.append(f"PulseAudio sources not listed ({type(exc).__name__}: {exc or 'no server'})")
    return Inventory(tuple(devices), tuple(notes))


def resolve(spec: str, inv: Inventory) -> Device:
    """Find a device by PortAudio index, by exact name, or by a unique part of its name.

    `default` is the default microphone; `monitor` is what the default output plays.
    """
    spec = spec.strip()
    if spec == "default":
        if inv.default_input is None:
            raise AudioSourceError("there is no default input device; name one (see `agent-assist devices`)")
        return inv.default_input
    if spec == "monitor":
        if inv.default_monitor is None:
            raise AudioSourceError(
                "no monitor of the default output was found (it needs PulseAudio or PipeWire); "
                "name a loopback device instead (see `agent-assist devices`)")
        return inv.default_monitor
    if spec.isdigit():
        for device in inv.devices:
            if device.index == int(spec):
                return device
        raise AudioSourceError(f"no input device has index {spec} (see `agent-assist devices`)")
    exact = [d for d in inv.devices if spec in (d.name, d.pulse)]
    if len(exact) == 1:
        return exact[0]
    needle = spec.lower()
    found = exact or [d for d in inv.devices if needle in d.name.lower() or needle in d.label.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AudioSourceError(f"no input device matches {spec!r} (see `agent-assist devices`)")
    names = "; ".join(f"{d.key} ({d.label})" for d in found[:4])
    raise AudioSourceError(f"{spec!r} matches {len(found)} devices: {names}; give its index or full name")


@contextlib.contextmanager
def _pulse_source(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    with _ENV_LOCK:
        previous = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = name
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = previous


def _pulse_portaudio_index(sd: Any) -> int:
    for info in sd.query_devices():
        if info["name"] == "pulse" and info["max_input_channels"] > 0:
            return int(info["index"])
    raise AudioSourceError(
        "PulseAudio sources need PortAudio's 'pulse' device, which is missing "
        "(Debian/Ubuntu: sudo apt install libasound2-plugins)")


Callback = Callable[[Any, int, Any, Any], None]


def open_input(device: Device, rate: int, channels: int, callback: Callback, *,
               latency: float = 0.1) -> tuple[Any, int, int]:
    """Open (not start) an input stream, returning (stream, rate, channels) actually used.

    The requested rate comes first; where the device refuses it, the device's own rate (the caller
    then resamples). A device that will not give fewer channels is opened with its own count.
    """
    sd = sounddevice()
    where = _pulse_portaudio_index(sd) if device.pulse is not None else device.index
    own_channels = max(1, device.channels)
    attempts = [(rate, channels), (int(device.rate), channels), (rate, own_channels),
                (int(device.rate), own_channels)]
    seen: set[tuple[int, int]] = set()
    error: Exception | None = None
    for try_rate, try_channels in attempts:
        try_channels = min(try_channels, own_channels) if device.pulse is None else try_channels
        if (try_rate, try_channels) in seen or try_rate <= 0:
            continue
        seen.add((try_rate, try_channels))
        try:
            with _pulse_source(device.pulse):
                stream = sd.InputStream(device=where, samplerate=try_rate, channels=try_channels,
                                        dtype="float32", latency=latency, blocksize=0,
                                        callback=callback)
            return stream, try_rate, try_channels
        except (sd.PortAudioError, ValueError) as exc:
            error = exc
            log.debug("%s: cannot open at %d Hz x %d: %s", device.label, try_rate, try_channels, exc)
    reason = str(error).split("\n")[0] if error else "unknown error"
    raise AudioSourceError(f"cannot open {device.label}: {reason}")


class PulseWatch:
    """Notices when the sound server quietly moves our capture stream to another source.

    When a source disappears (a USB headset unplugged, a virtual cable removed), PulseAudio and
    PipeWire move the streams reading it to the default source instead of ending them, so the
    customer's channel would start hearing, say, the agent's microphone. PortAudio cannot see this;
    the server can tell us. `check()` returns why the stream is no longer on its source, or None.
    """

    _claimed: ClassVar[set[int]] = set()  # source outputs already matched to a capture in this process
    _lock = threading.Lock()

    def __init__(self, source: str) -> None:
        import pulsectl

        self.source = source
        self._pulse = pulsectl.Pulse("agent-assist-watch", connect=False)
        self._pulse.connect(timeout=2.0)
        self.output: int | None = None
        try:
            self.source_index = self._pulse.get_source_by_name(source).index
        except pulsectl.PulseIndexError:
            self.close()
            raise AudioSourceError(f"{source}: no such PulseAudio source") from None

    def attach(self) -> bool:
        """Find our newly opened stream among the server's source outputs; False if not (yet) there."""
        pid = str(os.getpid())
        with PulseWatch._lock:
            for out in self._pulse.source_output_list():
                if (out.proplist.get("application.process.id") == pid and out.source == self.source_index
                        and out.index not in PulseWatch._claimed):
                    PulseWatch._claimed.add(out.index)
                    self.output = out.index
                    return True
        return False

    def check(self) -> str | None:
        import pulsectl

        if self.output is None and not self.attach():
            return None  # the stream is not on the server yet
        assert self.output is not None
        try:
            now = self._pulse.source_output_info(self.output).source
        except pulsectl.PulseIndexError:
            return "the sound server closed the stream"
        if now != self.source_index:
            return f"{self.source} went away (the sound server moved the stream elsewhere)"
        return None

    def close(self) -> None:
        with PulseWatch._lock:
            PulseWatch._claimed.discard(self.output or -1)
        self._pulse.close()

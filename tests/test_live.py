"""Live capture on real devices: a private PulseAudio server, null sinks played with `paplay`, and
`agent-assist run` (or a `LiveSession`) capturing their monitors in real time.

These tests take real time (the call is played, not decoded). Without PulseAudio or PortAudio they
skip and say which package is missing.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jiwer
import numpy as np
import pytest

from agent_assist.audio.devices import Device, Inventory, inventory, resolve
from agent_assist.audio.live import Input, LiveOptions
from agent_assist.errors import AgentAssistError, AudioSourceError
from agent_assist.events import (
    CallEnd,
    CallStart,
    DeviceStatus,
    Dropped,
    EndReason,
    Flag,
    Listening,
    PromptSeen,
    Speaker,
    Utterance,
    event_from_json,
)
from agent_assist.live import DeviceChoice, LiveSession, SessionOptions, choose_inputs
from tests import pulse as pa
from tests.conftest import REPO, Timed, normalise
from tests.test_cli import EXE

WHY_NOT = pa.missing()
needs_pulse = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
RATE = pa.RATE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pa.PulseServer]:
    if WHY_NOT is not None:
        pytest.skip(WHY_NOT)
    srv = pa.PulseServer(tmp_path_factory.mktemp("pulse"))
    previous = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = srv.env["PULSE_SERVER"]  # for in-process sessions (libpulse reads it)
    try:
        yield srv
    finally:
        if previous is None:
            os.environ.pop("PULSE_SERVER", None)
        else:
            os.environ["PULSE_SERVER"] = previous
        srv.close()


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    return pa.sample_audio()


def clip(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    return audio[round(start * RATE) : round(end * RATE)]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.float32)


def party_wer(utterances: list[Utterance], turns: list[pa.Turn], party: str) -> float:
    reference = normalise(" ".join(t.text for t in turns if t.speaker == party))
    said = normalise(" ".join(u.text for u in utterances if u.speaker == party))
    return float(jiwer.wer(reference, said))


class Running:
    """A `LiveSession` on a background thread, ready once its devices are open."""

    def __init__(self, inputs: list[Input], models, live: LiveOptions) -> None:
        self.sink = Timed()
        self.ready = threading.Event()
        self.session = LiveSession(inputs, [self.sink], SessionOptions(live=live), models=models,
                                   on_ready=self.ready.set)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "the devices did not open"
        self.t0 = time.monotonic()

    def _run(self) -> None:
        try:
            self.session.run()
        except BaseException as exc:  # reported by join()
            self.error = exc

    def sleep_until(self, seconds: float) -> None:
        time.sleep(max(0.0, self.t0 + seconds - time.monotonic()))

    def join(self, timeout: float = 90) -> Timed:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.session.stop()
            self.thread.join(20)
            raise AssertionError("the session did not end on silence")
        if self.error is not None:
            raise self.error
        return self.sink


def inputs_for(**parties: str) -> list[Input]:
    inv = inventory()
    return [Input(resolve(spec, inv), (Speaker(party),)) for party, spec in parties.items()]


# -- the command line, end to end ---------------------------------------------------------------------


@needs_pulse
def test_run_hears_two_devices_as_two_speakers(server, audio, tmp_path):
    customer = server.add_sink("customer_line")
    agent = server.add_sink("agent_line")
    end = 36.3  # seven turns of the sample call
    turns = [t for t in pa.sample_turns() if t.end <= end]
    customer_wav = pa.write_wav(tmp_path / "customer.wav", clip(audio["customer"], 0, end))
    agent_wav = pa.write_wav(tmp_path / "agent.wav", clip(audio["agent"], 0, end))
    events = tmp_path / "events.jsonl"
    env = {**server.env, "PYTHONUNBUFFERED": "1", "AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml",
           "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    run = subprocess.Popen(  # with the overlay up (offscreen), as an agent would run it
        [*EXE, "run", "--agent-device", agent, "--customer-device", customer, "--ui",
         "--events", str(events), "--end-silence", "3", "--calls", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert run.stderr is not None
        lines = []
        for line in run.stderr:  # models load first; then it says it is listening
            lines.append(line)
            if line.startswith("listening:"):
                break
        else:
            pytest.fail("run never started listening: " + "".join(lines)[-800:])
        players = [server.play("customer_line", customer_wav), server.play("agent_line", agent_wav)]
        for player in players:
            assert player.wait(60) == 0
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert "no overlay" not in "".join(lines) + err
    assert (tmp_path / "config" / "agent-assist" / "overlay.conf").exists(), "the overlay was shown"
    assert "Thanks for calling" in out  # the transcript in the terminal
    stream = [event_from_json(line) for line in events.read_text().splitlines()]
    # after call_end come only the overlay's own accounts of what the agent saw (the end-of-call
    # check-in is shown as the call ends)
    ended = next(i for i, e in enumerate(stream) if isinstance(e, CallEnd))
    assert all(isinstance(e, PromptSeen) for e in stream[ended + 1 :])
    start, last = stream[0], stream[ended]
    assert isinstance(start, CallStart) and isinstance(last, CallEnd)
    assert set(start.channels.values()) == {Speaker.AGENT, Speaker.CUSTOMER}
    assert last.reason == EndReason.SILENCE
    utterances = [e for e in stream if isinstance(e, Utterance)]
    assert {e.call_id for e in stream} == {start.call_id}
    for party in ("agent", "customer"):
        wer = party_wer(utterances, turns, party)
        print(f"{party}: WER {wer:.3f}")
        assert wer <= 0.15  # a wrong speaker would cost far more: its words land on the other side
    # both devices keep one clock: the customer's first words come as long after the agent's as
    # the script has them (playback began a moment after the call, so compare differences)
    first = {u.speaker: u.start for u in reversed(utterances)}
    script = {Speaker(t.speaker): t.start for t in reversed(turns)}
    gap = first[Speaker.CUSTOMER] - first[Speaker.AGENT]
    script_gap = script[Speaker.CUSTOMER] - script[Speaker.AGENT]
    assert abs(gap - script_gap) < 0.4, (gap, script_gap)
    # the flag store in the user's data directory has the call, its flags and its score timeline
    import getpass

    from agent_assist.store import open_store

    store = open_store(tmp_path / "data" / "agent-assist" / "flags.sqlite3")
    call = store.call(start.call_id)
    assert (call.agent, call.end_reason) == (getpass.getuser(), "silence")
    flagged = sorted(e.t for e in stream if isinstance(e, Flag))
    assert flagged and sorted(f.t for f in store.flags()) == flagged
    assert len(call.scores) == sum(1 for u in utterances if u.scores is not None) > 0
    store.close()


@needs_pulse
def test_devices_lists_monitors_and_names_them_for_run(server):
    server.add_sink("headset_out")
    done = subprocess.run([*EXE, "devices"], env=server.env,
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "headset_out.monitor" in done.stdout and "monitor" in done.stdout
    assert "pulse" in done.stdout  # PortAudio's own devices, with their numbers
    wrong = subprocess.run([*EXE, "run", "--agent-device", "no such mic"],
                           env=server.env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        "agent-assist: error: no input device matches 'no such mic' (see `agent-assist devices`)"]


# -- a LiveSession in this process (the models are loaded once) ------------------------------------


@needs_pulse
def test_a_stereo_device_splits_the_parties_and_a_refused_rate_is_resampled(server, audio, call_models,
                                                                          tmp_path):
    line = server.add_sink("stereo_line")
    end = 20.8
    turns = [t for t in pa.sample_turns() if t.end <= end]
    wav = pa.write_wav(tmp_path / "call.wav", clip(audio["customer"], 0, end), clip(audio["agent"], 0, end))
    inputs, _ = choose_inputs(DeviceChoice(stereo=line, customer_channel="left"))
    # 1 Hz is refused by every device: it must open at its own rate and be converted to 16 kHz
    run = Running(inputs, call_models, LiveOptions(end_silence_s=3, max_calls=1, capture_rate=1))
    assert server.play("stereo_line", wav).wait(60) == 0
    sink = run.join()
    statuses = sink.of(DeviceStatus)
    assert [s.state for s in statuses] == ["resampling"] and "48000 Hz" in statuses[0].message
    for party in ("agent", "customer"):
        assert party_wer(sink.utterances, turns, party) <= 0.15


@needs_pulse
def test_nothing_played_while_paused_is_heard(server, audio, call_models, tmp_path):
    line = server.add_sink("pause_line")
    said, private, after = (clip(audio["customer"], 5.7, 10.7), clip(audio["customer"], 16.3, 20.6),
                            clip(audio["customer"], 22.3, 26.5))
    # 0-5 s: said; 8-12.3 s: read out while paused; 15.3-19.5 s: after resuming
    wav = pa.write_wav(tmp_path / "customer.wav",
                       np.concatenate([said, silence(3), private, silence(3), after]))
    run = Running(inputs_for(customer=line), call_models, LiveOptions(end_silence_s=3, max_calls=1))
    player = server.play("pause_line", wav)
    run.sleep_until(6.5)
    run.session.pause()
    run.sleep_until(13.8)
    run.session.resume()
    assert player.wait(60) == 0
    sink = run.join()
    text = normalise(" ".join(u.text for u in sink.utterances))
    assert "letter" in text and "keep up" in text
    assert not {"husband", "passed", "away", "months"} & set(text.split()), text
    pause, resume = sink.of(Listening)
    assert (pause.paused, resume.paused, pause.by) == (True, False, "api")
    assert 5.5 < pause.t < 8.0 and 12.5 < resume.t < 15.0
    assert not [u for u in sink.utterances if u.end > pause.t and u.start < resume.t]


class Slowed:
    """The real speech model with `delay` seconds of extra work per decode: a slow machine."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.took: list[float] = []  # wall time of each decode, delay included
        self.label = inner.label

    def hear(self, audio, **options):
        start = time.monotonic()
        time.sleep(self.delay)
        heard = self.inner.hear(audio, **options)
        self.took.append(time.monotonic() - start)
        return heard

    def offline(self, audio):
        return self.inner.offline(audio)


@needs_pulse
def test_a_slow_transcriber_skips_partials_keeps_every_final_and_latency_stays_bounded(
        server, audio, call_models, tmp_path):
    customer, agent = server.add_sink("slow_customer"), server.add_sink("slow_agent")
    end = 36.3
    turns = [t for t in pa.sample_turns() if t.end <= end]
    wavs = {p: pa.write_wav(tmp_path / f"{p}.wav", clip(audio[p], 0, end)) for p in ("customer", "agent")}
    slowed = Slowed(call_models.speech, 0.8)
    slow_models = dataclasses.replace(call_models, speech=slowed)
    run = Running(inputs_for(customer=customer, agent=agent), slow_models,
                  LiveOptions(end_silence_s=3, max_calls=1))
    players = [server.play("slow_customer", wavs["customer"]), server.play("slow_agent", wavs["agent"])]
    for player in players:
        assert player.wait(60) == 0
    sink = run.join()
    end_event = sink.of(CallEnd)[0]
    call_started = sink.at[0]
    latencies = [at - (call_started + e.end) for e, at in zip(sink.events, sink.at, strict=True)
                 if isinstance(e, Utterance)]
    print("final latencies (s):", [round(x, 2) for x in latencies])
    assert end_event.partials_dropped > 0
    reports = [d for d in sink.of(Dropped) if d.what == "partial"]
    assert sum(d.count for d in reports) == end_event.partials_dropped == reports[-1].total
    assert all(b.t - a.t >= 5.0 for a, b in itertools.pairwise(reports[:-1]))  # the last: at the end
    # A final waits for the request ahead of it (a partial, or the other party's final) and its own
    # (its early decode, then the final that reuses it),
    # after the VAD's 0.5 s hangover; bounded by this run's own request times, not a fixed figure.
    slowest = max(slowed.took)
    print(f"requests: {len(slowed.took)}, slowest {slowest:.2f} s")
    assert max(latencies) < 0.5 + 2 * slowest + 0.5
    assert latencies[-1] < latencies[0] + 2.0  # and the wait does not grow over the call
    for party in ("agent", "customer"):
        assert party_wer(sink.utterances, turns, party) <= 0.15  # no final was lost


@needs_pulse
def test_an_unplugged_device_is_reported_retried_and_the_other_party_goes_on(server, audio, call_models,
                                                                            tmp_path):
    customer, agent = server.add_sink("unplug_customer"), server.add_sink("unplug_agent")
    agent_wav = pa.write_wav(tmp_path / "agent.wav", clip(audio["agent"], 0, 32.5))
    first = pa.write_wav(tmp_path / "first.wav", clip(audio["customer"], 0, 11.0))
    later = pa.write_wav(tmp_path / "later.wav", clip(audio["customer"], 22.3, 26.5))
    run = Running(inputs_for(customer=customer, agent=agent), call_models,
                  LiveOptions(end_silence_s=8, max_calls=1, stall_s=1.0, retry_max_s=1.0))
    agent_player = server.play("unplug_agent", agent_wav)
    server.play("unplug_customer", first).wait(30)
    run.sleep_until(12.0)
    server.remove_sink("unplug_customer")  # the customer's device disappears mid-call
    run.sleep_until(16.0)
    server.add_sink("unplug_customer")  # and comes back
    run.sleep_until(22.3)
    server.play("unplug_customer", later).wait(30)
    assert agent_player.wait(60) == 0
    sink = run.join()
    states = [(s.state, s.parties) for s in sink.of(DeviceStatus)]
    assert states[0] == ("lost", (Speaker.CUSTOMER,)) and ("back", (Speaker.CUSTOMER,)) in states
    lost = sink.of(DeviceStatus)[0]
    back = next(s for s in sink.of(DeviceStatus) if s.state == "back")
    assert 11.5 < lost.t < 15.0 and 16.0 < back.t < 21.0
    agent_text = normalise(" ".join(u.text for u in sink.utterances if u.speaker == Speaker.AGENT))
    customer_text = normalise(" ".join(u.text for u in sink.utterances if u.speaker == Speaker.CUSTOMER))
    assert "let's have a look together" in agent_text  # said while the customer's device was gone
    assert "so sorry for your loss" in agent_text
    assert "letter" in customer_text and "keep up" in customer_text  # before and after


@needs_pulse
def test_a_call_ends_on_silence_and_the_next_starts_on_speech_without_losing_its_first_word(
        server, audio, call_models, tmp_path):
    line = server.add_sink("calls_line")
    first = pa.write_wav(tmp_path / "first.wav", clip(audio["customer"], 5.6, 10.7))
    second = pa.write_wav(tmp_path / "second.wav", clip(audio["customer"], 16.3, 20.6))
    run = Running(inputs_for(customer=line), call_models, LiveOptions(end_silence_s=2.5, max_calls=2))
    server.play("calls_line", first).wait(30)
    run.sleep_until(10.0)  # the first call has ended on silence by now
    server.play("calls_line", second).wait(30)
    sink = run.join()
    starts, ends = sink.of(CallStart), sink.of(CallEnd)
    assert len(starts) == len(ends) == 2 and starts[0].call_id != starts[1].call_id
    assert [e.reason for e in ends] == [EndReason.SILENCE, EndReason.SILENCE]
    second_call = [u for u in sink.utterances if u.call_id == starts[1].call_id]
    assert normalise(second_call[0].text).startswith("it's in my husband")
    assert second_call[0].start < 1.5  # call time starts just before the speech that started it


# -- choosing devices (no sound server needed) --------------------------------------------------------


def device(name: str, *, index: int | None = None, pulse: str | None = None, monitor: bool = False,
           default: bool = False, channels: int = 2) -> Device:
    return Device(name=name, label=name if pulse is None else f"Monitor of {name}", host_api="test",
                  channels=channels, rate=48000.0, default=default, monitor=monitor, index=index, pulse=pulse)


HEADSET = device("Jabra Evolve2 65: USB Audio (hw:1,0)", index=3, default=True, channels=1)
LAPTOP = device("HDA Intel PCH: ALC257 Analog (hw:0,0)", index=4)
MONITOR = device("alsa_output.usb-Jabra.monitor", pulse="alsa_output.usb-Jabra.monitor", monitor=True,
                 default=True)
INV = Inventory((HEADSET, LAPTOP, MONITOR), ())


def test_devices_are_found_by_number_full_name_or_a_unique_part():
    assert resolve("3", INV) is HEADSET
    assert resolve("jabra evolve", INV) is HEADSET
    assert resolve("alsa_output.usb-Jabra.monitor", INV) is MONITOR
    assert resolve("default", INV) is HEADSET and resolve("monitor", INV) is MONITOR
    with pytest.raises(AudioSourceError, match=r"'jabra' matches 2 devices: 3 .*; give its index"):
        resolve("jabra", INV)
    with pytest.raises(AudioSourceError, match="no input device has index 9"):
        resolve("9", INV)


def test_by_default_the_agent_is_the_microphone_and_the_customer_the_output_monitor():
    inputs, notes = choose_inputs(DeviceChoice(), INV)
    assert [(i.device, i.parties) for i in inputs] == [(HEADSET, (Speaker.AGENT,)),
                                                      (MONITOR, (Speaker.CUSTOMER,))]
    alone, notes = choose_inputs(DeviceChoice(), Inventory((HEADSET,), ()))
    assert [i.parties for i in alone] == [(Speaker.AGENT,)]
    assert "microphone alone" in notes[0]
    stereo, _ = choose_inputs(DeviceChoice(stereo="4", customer_channel="right"), INV)
    assert stereo[0].parties == (Speaker.AGENT, Speaker.CUSTOMER)
    with pytest.raises(AudioSourceError, match="needs two"):
        choose_inputs(DeviceChoice(stereo="3"), INV)
    with pytest.raises(AgentAssistError, match="choose either"):
        choose_inputs(DeviceChoice(stereo="4", agent="3"), INV)
    with pytest.raises(AgentAssistError, match="cannot both be"):
        choose_inputs(DeviceChoice(agent="3", customer="jabra evolve"), INV)


def test_missing_portaudio_is_one_line_naming_the_package(tmp_path):
    # a Python whose sounddevice cannot find PortAudio: point it at an empty library path and
    # hide the system one the way a machine without libportaudio2 would
    code = ("import ctypes.util, sys; ctypes.util.find_library = lambda name: None; "
            "sys.argv = ['agent-assist', 'devices']; from agent_assist.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={**os.environ, "AGENT_ASSIST_CONFIG": str(Path(tmp_path) / "none")})
    assert done.returncode == 2
    assert done.stderr.strip() == ("agent-assist: error: PortAudio is missing: install the system "
                                   "package libportaudio2 (Debian/Ubuntu: sudo apt install libportaudio2)")


@needs_pulse
def test_keys_in_the_terminal_pause_resume_and_quit(server, tmp_path):
    line = server.add_sink("keys_line")
    master, slave = os.openpty()  # stdin is a terminal, as when an agent runs it
    events = tmp_path / "events.jsonl"
    env = {**server.env, "PYTHONUNBUFFERED": "1", "AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml"}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):  # a terminal with no display
        env.pop(name, None)
    run = subprocess.Popen([*EXE, "run", "--mono-device", line, "--events", str(events), "-q"], env=env,
                           stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    os.close(slave)
    try:
        assert run.stderr is not None
        said = []
        for line_out in run.stderr:
            said.append(line_out)
            if line_out.startswith("listening:"):
                assert "p pause/resume, e end call, q quit" in line_out
                break
        assert "note: no overlay: no display (DISPLAY is not set); the transcript is shown here instead\n" \
            in said
        for key in ("p", "p", "q"):
            time.sleep(1.0)
            os.write(master, key.encode())
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
        os.close(master)
    assert run.returncode == 0, err
    assert "[paused: nothing is captured; p resumes]" in err and "[listening]" in err
    stream = [event_from_json(x) for x in events.read_text().splitlines()]
    assert [(e.paused, e.by) for e in stream if isinstance(e, Listening)] == [(True, "keyboard"),
                                                                              (False, "keyboard")]
    assert isinstance(stream[-1], CallEnd) and stream[-1].reason == EndReason.INTERRUPTED

"""`agent-assist run`: live calls from capture devices, one after another, through the replay pipeline.

A session loads the models once, opens the devices, and runs calls until it is stopped: the first
call starts at once; each later one starts when someone speaks after the previous call ended. The
control methods (`pause`, `resume`, `end_call`, `stop`) may be called from any thread: the terminal's
keyboard, the overlay, or a test.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent_assist.audio.devices import Inventory, inventory, resolve
from agent_assist.audio.live import Input, LiveOptions, LiveSource
from agent_assist.call import CallOptions, Models, call_stages
from agent_assist.errors import AgentAssistError, AudioSourceError
from agent_assist.events import CallEnd, EndReason, PublicEvent, Speaker
from agent_assist.pipeline import AgentDesk, Pipeline, Sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    """What the agent asked for on the command line (device specs; see `audio.devices.resolve`)."""

    agent: str | None = None
    customer: str | None = None
    stereo: str | None = None  # one device, one party per channel
    customer_channel: str = "left"  # of the stereo device
    mono: str | None = None  # one device hearing both parties (speaker unknown)


def choose_inputs(choice: DeviceChoice, inv: Inventory | None = None) -> tuple[list[Input], list[str]]:
    """Turn the agent's choice into inputs, with notes for the person (what was assumed)."""
    given = [x for x in (choice.stereo, choice.mono) if x is not None]
    if len(given) > 1 or (given and (choice.agent or choice.customer)):
        raise AgentAssistError("choose either --stereo-device, or --mono-device, or --agent-device "
                               "with --customer-device")
    inv = inv or inventory()
    notes: list[str] = list(inv.notes)
    if choice.stereo is not None:
        device = resolve(choice.stereo, inv)
        if device.channels < 2:
            raise AudioSourceError(f"{device.display} has {device.channels} input channel; "
                                   "--stereo-device needs two (one party on each)")
        left, right = ((Speaker.CUSTOMER, Speaker.AGENT) if choice.customer_channel == "left"
                       else (Speaker.AGENT, Speaker.CUSTOMER))
        return [Input(device, (left, right))], notes
    if choice.mono is not None:
        return [Input(resolve(choice.mono, inv), (Speaker.UNKNOWN,))], notes
    inputs: list[Input] = []
    agent = resolve(choice.agent or "default", inv) if choice.agent != "none" else None
    if agent is not None:
        inputs.append(Input(agent, (Speaker.AGENT,)))
    if choice.customer == "none":
        customer = None
    elif choice.customer is None:
        try:
            customer = resolve("monitor", inv)
        except AudioSourceError:
            customer = None
            notes.append("no monitor of the default output found: listening to the microphone alone "
                         "(choose the customer's audio with --customer-device)")
    else:
        customer = resolve(choice.customer, inv)
    if customer is not None:
        if agent is not None and customer == agent:
            raise AgentAssistError(f"the agent and the customer cannot both be {agent.label}")
        inputs.append(Input(customer, (Speaker.CUSTOMER,)))
    if not inputs:
        raise AgentAssistError("no device to listen to")
    return inputs, notes


@dataclass(frozen=True)
class SessionOptions(CallOptions):
    """Each call's options (`CallOptions`), and the devices'."""

    live: LiveOptions = field(default_factory=LiveOptions)


class LiveSession:
    """Models, devices and the calls heard on them. `run()` blocks until stopped."""

    live = True  # for the overlay: this call can be paused

    def __init__(self, inputs: list[Input], sinks: Sequence[Sink], options: SessionOptions | None = None,
                 models: Models | None = None, on_ready: Callable[[], None] | None = None) -> None:
        self.options = opts = options or SessionOptions()
        self.models = models.fit(opts) if models is not None else Models.load(opts)
        self.sinks = list(sinks)
        self.source = LiveSource(inputs, opts.live)
        self.on_ready = on_ready  # called once the devices are open
        self.ends: list[CallEnd] = []
        self.desk = AgentDesk(self.sinks)  # also knows the running call's pipeline
        self._stop = threading.Event()

    # -- control ---------------------------------------------------------------------------------

    def pause(self, by: str = "api") -> None:
        self.source.pause(by)

    def resume(self, by: str = "api") -> None:
        self.source.resume(by)

    def toggle_pause(self, by: str = "api") -> bool:
        """Pause or resume; returns whether listening is now paused."""
        (self.resume if self.source.paused else self.pause)(by)
        return self.source.paused

    @property
    def paused(self) -> bool:
        return self.source.paused

    def end_call(self) -> None:
        self.source.end_call()

    def submit(self, event: PublicEvent) -> None:
        """The agent's flag or feedback (from the overlay), into the stream."""
        self.desk.submit(event)

    def stop(self) -> None:
        """End the current call (what was heard is finished and written) and the session."""
        self._stop.set()
        pipeline = self.desk.pipeline
        if pipeline is not None:
            pipeline.stop()

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> list[CallEnd]:
        shared = self.desk.sinks
        limit = self.options.live.max_calls
        self.source.start()
        try:
            if self.on_ready is not None:
                self.on_ready()
            while not self._stop.is_set() and (limit is None or len(self.ends) < limit):
                if self.ends and not self.source.wait_for_speech(self._stop):
                    break
                call_id = uuid.uuid4().hex[:12]
                pipeline = Pipeline(call_stages(self.models, self.options), shared, realtime=True,
                                    model_label=self.models.label, max_blocks_in_flight=2000)
                self.desk.attach(pipeline)
                if self._stop.is_set():  # stop() came before the attach: it could not see this call
                    pipeline.stop()
                end = pipeline.run(self.source.call(call_id), call_id)
                self.desk.attach(None)
                self.ends.append(end)
                if end.reason == EndReason.SOURCE_ERROR:
                    raise AgentAssistError(end.error or "capture failed")
        finally:
            self.source.close()
            for sink in self.sinks:
                sink.close()
        return self.ends

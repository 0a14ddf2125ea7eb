"""An agent's actions on a served call (a flag, feedback on a prompt, a prompt seen, pause and
resume), sent by the network overlay, whichever `serve` instance the overlay is connected to.

```
overlay ──► instance B (has the agent's feed) ──tell──► the store's bus ──► instance A (hosts the call)
   ▲          waits at most ANSWER_S                       (NOTIFY)          performs it: its recorder
   │                                                                          redacts, stores, publishes
   └── one error line; or, done, the event itself back through B's relay (a flag after the commit) ◄┘
```

A call keeps one writer: the instance hosting it performs the action exactly as if the overlay
were connected there (`perform`), so a flag is committed before any overlay shows it (it comes back
over the bus after the store's commit, as every event of the call does) and is redacted with the
call's context. On the wire an event's spoken fields (an agent's note) are redacted already,
without that context (the host redacts again, with it), so the bus carries nothing unredacted.

The agent always hears back within `ANSWER_S`: when done, the event itself comes back on the feed,
as on the hosting instance; otherwise one error line (the call has ended, is not theirs, or no
instance answers for it: it ended long ago, or its instance is down).

The messages (`Bus.tell` bodies; `request_body`/`answer_body` build them, `read_request` reads one)::

    {"kind": "agent_action", "id": "<request>", "from": "<asking instance>", "agent": "sam.k",
     "call_id": "<call>", "pause": true}                      # or "event": {a flag, feedback, prompt_seen}
    {"kind": "agent_action_answer", "id": "<request>", "to": "<asking instance>", "error": null | "why"}
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from agent_assist.bus import Bus
from agent_assist.events import EventParseError, Feedback, Flag, PromptSeen, PublicEvent, event_from_dict
from agent_assist.redact import CallRedactor
from agent_assist.server.calls import CallServer

log = logging.getLogger(__name__)

#: How long the instance an agent is connected to waits for the call's host to answer. A bus round
#: trip on one PostgreSQL is a few milliseconds; this allows for a host busy with its calls.
ANSWER_S = 5.0
REQUEST, ANSWER = "agent_action", "agent_action_answer"
#: The agent's own events an overlay may send back.
FROM_AGENT = (Flag, Feedback, PromptSeen)


class ActionError(ValueError):
    """What the agent is told when an action cannot be taken (one line)."""


@dataclass(frozen=True)
class AgentAction:
    """One action of `agent` on `call_id`: a pause or resume (`pause`), else `event`."""

    agent: str
    call_id: str
    pause: bool | None = None
    event: PublicEvent | None = None

    @classmethod
    def from_overlay(cls, agent: str, message: str | bytes) -> AgentAction:
        """The overlay's `{"event": {...}}` or `{"pause": true|false, "call_id": "..."}`
        (`app.py`'s docstring); ActionError when it is neither."""
        try:
            data = json.loads(message)
        except ValueError:
            raise ActionError("not JSON") from None
        if not isinstance(data, dict):
            raise ActionError("a message must be a JSON object")
        return cls.from_dict(agent, data)

    @classmethod
    def from_dict(cls, agent: str, data: dict[str, Any]) -> AgentAction:
        if "pause" in data:
            call_id = data.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise ActionError("a pause names its call_id")
            return cls(agent, call_id, pause=bool(data["pause"]))
        try:
            event = event_from_dict(data.get("event") or {})
        except EventParseError as exc:
            raise ActionError(str(exc)) from None
        if not isinstance(event, FROM_AGENT):
            raise ActionError(f"an overlay may send flags, feedback and prompt_seen, not {event.type}")
        return cls(agent, event.call_id, event=event)

    def to_dict(self) -> dict[str, Any]:
        if self.event is not None:
            return {"event": self.event.to_dict()}
        return {"pause": self.pause, "call_id": self.call_id}

    def what(self) -> str:
        if self.event is not None:
            return self.event.type
        return "pause" if self.pause else "resume"


def perform(calls: CallServer, action: AgentAction) -> str | None:
    """Take `action` on this instance's call; None when taken, else the line for the agent."""
    call = calls.call(action.call_id)
    if call is None or call.assignment.agent != action.agent:
        if call is None and calls.hosts(action.call_id):
            return f"call {action.call_id[:40]} has ended: its {action.what()} was not taken"
        return f"no call {action.call_id[:40]} of yours is running"
    if action.pause is not None:
        call.agent_pause(action.pause)
        return None
    assert action.event is not None
    if not call.submit(action.event):
        return f"call {action.call_id[:40]} has ended: its {action.what()} was not taken"
    return None


def request_body(action: AgentAction, request_id: str, sender: str) -> dict[str, Any]:
    """The bus message asking the call's host to take `action`; its spoken fields redacted."""
    body: dict[str, Any] = {"kind": REQUEST, "id": request_id, "from": sender, "agent": action.agent,
                            "call_id": action.call_id}
    if action.event is not None:
        body["event"] = CallRedactor().event(action.event).to_dict()
    else:
        body["pause"] = bool(action.pause)
    return body


def read_request(body: dict[str, Any]) -> tuple[str, str, AgentAction]:
    """(request id, asking instance, action) of a `request_body`; ActionError if it is not one."""
    request_id, sender, agent = body.get("id"), body.get("from"), body.get("agent")
    if not all(isinstance(value, str) and value for value in (request_id, sender, agent)):
        raise ActionError("an agent's action without its id, instance or agent")
    action = AgentAction.from_dict(str(agent), body)
    if action.call_id != body.get("call_id"):
        raise ActionError("an agent's action whose event is of another call")
    return str(request_id), str(sender), action


def answer_body(request_id: str, to: str, error: str | None) -> dict[str, Any]:
    return {"kind": ANSWER, "id": request_id, "to": to, "error": error}


class ActionRelay:
    """This instance's side of the exchange: `ask` sends an action on a call hosted elsewhere and
    waits for the answer; a thread listens on the bus, takes the actions on this instance's calls
    and answers them, and hands each answer to this instance's `ask` waiting for it."""

    def __init__(self, bus: Bus, calls: CallServer, answer_s: float = ANSWER_S) -> None:
        self.bus, self.calls, self.answer_s = bus, calls, answer_s
        self.instance = uuid.uuid4().hex[:12]
        self.asked = 0  # actions sent to other instances
        self.performed = 0  # other instances' actions taken on this instance's calls
        self._waiting: dict[str, Future[str | None]] = {}
        self._lock = threading.Lock()
        self._sub = bus.subscribe_instances()  # before any overlay connects: no answer is missed
        self._thread = threading.Thread(target=self._run, name="action-relay", daemon=True)
        self._thread.start()

    async def ask(self, action: AgentAction) -> str | None:
        """Have the call's host take `action`: None when it did (the event comes back on the
        feed), else the line for the agent; within `answer_s` either way."""
        request_id = uuid.uuid4().hex
        answer: Future[str | None] = Future()
        with self._lock:
            self._waiting[request_id] = answer
        self.asked += 1
        try:
            body = request_body(action, request_id, self.instance)
            return await asyncio.wait_for(self._exchange(body, answer), self.answer_s)
        except TimeoutError:
            return (f"no serve instance answered for call {action.call_id[:40]} within {self.answer_s:g} s: "
                    f"it has ended, or the instance hosting it is down; its {action.what()} was not taken")
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    async def _exchange(self, body: dict[str, Any], answer: Future[str | None]) -> str | None:
        if not await asyncio.to_thread(self.bus.tell, body):
            return ("the other serve instances cannot be reached now (the store's event bus is down); "
                    "try again")
        return await asyncio.wrap_future(answer)

    def _run(self) -> None:
        for message in self._sub:
            body = message.body
            if body.get("kind") == ANSWER:
                with self._lock:
                    answer = self._waiting.get(str(body.get("id")))
                if answer is not None and not answer.done():
                    error = body.get("error")
                    answer.set_result(str(error) if error is not None else None)
            elif body.get("kind") == REQUEST:
                self._answer(body)

    def _answer(self, body: dict[str, Any]) -> None:
        try:
            request_id, sender, action = read_request(body)
        except ActionError as exc:
            log.warning("an agent's action on the bus could not be read (%s); skipped", exc)
            return
        if not self.calls.hosts(action.call_id):
            return  # another instance's call, or nobody's: the asking instance says so in time
        error = perform(self.calls, action)
        self.performed += 1
        log.info("call %s: %s of agent %s, from instance %s: %s", action.call_id, action.what(),
                 action.agent, sender, error or "taken")
        self.bus.tell(answer_body(request_id, sender, error))

    def close(self) -> None:
        self._sub.close()
        self._thread.join(timeout=5.0)

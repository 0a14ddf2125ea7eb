"""The flag store's sink: writes a call's events to the store as they happen, and keeps what it
cannot write yet.

How much transcript is kept is the site's choice: "none", "excerpt" (the turns around each flag,
the default) or "full".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_assist.errors import AgentAssistError
from agent_assist.events import (
    CallEnd,
    CallStart,
    EventParseError,
    Feedback,
    Flag,
    Partial,
    Prompt,
    PromptSeen,
    PublicEvent,
    Retract,
    SupervisorNote,
    Utterance,
    check,
)
from agent_assist.redact import CallRedactor
from agent_assist.store.connection import StoreError, default_path
from agent_assist.store.records import Store

log = logging.getLogger(__name__)

TRANSCRIPT_MODES = ("none", "excerpt", "full")
EXCERPT_BEFORE = 3  # turns up to and including the flagged one
EXCERPT_AFTER = 2  # turns after it, added as the call goes on
#: The longest a store that stopped answering is left alone before it is tried again.
MAX_QUIET_S = 60.0


def write_private(path: Path, text: str, append: bool = False) -> None:
    """Write a file only its owner can read (0600 from the moment it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@dataclass
class StoreOptions:
    agent: str = ""
    team: str = ""
    transcript: str = "excerpt"  # none | excerpt | full

    def __post_init__(self) -> None:
        if self.transcript not in TRANSCRIPT_MODES:
            raise AgentAssistError(
                f"transcript must be one of {', '.join(TRANSCRIPT_MODES)}, not {self.transcript!r}"
            )


@dataclass
class _CallState:
    call_id: str
    redactor: CallRedactor = field(default_factory=CallRedactor)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=EXCERPT_BEFORE))
    open_excerpts: dict[int, tuple[list[dict[str, Any]], int]] = field(default_factory=dict)
    # the customer's words so far in a turn not yet final: a flag fired on them shows them
    partial: dict[str, Any] | None = None


class FlagStoreSink:
    """Writes a call's flags, scores, prompts and feedback as they happen, each committed before
    `emit` returns. On a call it is one of the recorder's writers (`agent_assist.recorder`), on the
    recorder's thread, given events the recorder has redacted (`redact=False`); the overlay sees a
    flag only once this has returned.

    A store that cannot be written (locked, the server gone) never stops the call: events wait in
    memory, in order, and are retried with the next one; any still waiting at `close` are saved,
    redacted, to a JSONL file beside the default store (`agent-assist review import` loads it).
    A server that stopped answering (`StoreError.retry_after`) is left alone a while before the
    next try (that long, doubling while it stays silent, up to `MAX_QUIET_S`), so each event
    does not wait out the deadline again.

    `counts` says what became of the events given: "written", "already" (the store had it),
    "not_kept" (kinds the store does not keep) and "refused" (not a valid event: logged, dropped).
    """

    def __init__(
        self,
        store: Store | Callable[[], Store],
        options: StoreOptions | None = None,
        spill_dir: Path | None = None,
        where: str = "",
        reopen_s: float = 30.0,
        redact: bool = True,
    ) -> None:
        # given a way to open the store rather than an open one, a store that cannot be opened yet
        # (the floor's server is down) is tried again every `reopen_s` seconds; the call goes on
        self.store: Store | None = None
        self._opener = None if isinstance(store, Store) else store
        if isinstance(store, Store):
            self.store = store
        self.where = store.where if isinstance(store, Store) else where
        self.reopen_s = reopen_s
        self.redact = redact  # False: events come redacted already (from the recorder)
        self._tried_at = -1e9
        self._quiet_until = -1e9  # no write is tried before this (a server that stopped answering)
        self._quiet_s = 0.0
        self.counts: Counter[str] = Counter()
        self.options = options or StoreOptions()
        self.spill_dir = spill_dir or default_path().parent / "unsaved"
        self._states: dict[str, _CallState] = {}  # the latest few calls, by id
        self._known: set[str] = set()  # calls with a row in the store
        self._pending: list[PublicEvent] = []
        self._lock = threading.RLock()
        self._warned = False
        self.spilled: Path | None = None

    def emit(self, event: PublicEvent) -> None:
        if not isinstance(event, CallStart | Partial | Utterance | Flag | Prompt | Retract | Feedback
                          | PromptSeen | SupervisorNote | CallEnd):
            self.counts["not_kept"] += 1
            return
        try:
            check(event)  # a wrong type must never reach the store: it would break every review
        except EventParseError as exc:
            log.warning("flag store %s: %s; not written", self.where, exc)
            self.counts["refused"] += 1
            return
        with self._lock:
            self._pending.append(self._redacted(event))
            self._drain()

    def _drain(self) -> None:
        if time.monotonic() < self._quiet_until:
            return
        while self._pending:
            try:
                done = self._write(self._pending[0])
            except StoreError as exc:
                if exc.retry_after:
                    self._quiet_s = min(MAX_QUIET_S, max(exc.retry_after, 2 * self._quiet_s))
                    self._quiet_until = time.monotonic() + self._quiet_s
                if not self._warned:
                    log.warning("%s; %d event(s) kept in memory and retried", exc, len(self._pending))
                    self._warned = True
                return
            self.counts[{True: "written", False: "already", None: "not_kept"}[done]] += 1
            self._quiet_s = 0.0
            self._pending.pop(0)
            if self._warned and not self._pending:
                log.warning("flag store %s: written again, nothing lost", self.where)
                self._warned = False

    def _redacted(self, event: PublicEvent) -> PublicEvent:
        """The event as it may be written: an utterance's text redacted (with the call's context),
        or dropped when no transcript is kept; an agent's note redacted."""

        if isinstance(event, CallStart):
            self._states[event.call_id] = _CallState(event.call_id)
            return event
        state = self._state(event)
        redacted = state.redactor.event(event) if self.redact else event
        if isinstance(redacted, Utterance):  # the store keeps turns as text, not words
            text = "" if self.options.transcript == "none" else redacted.text
            return dataclasses.replace(redacted, text=text, words=())
        return redacted

    def _state(self, event: PublicEvent) -> _CallState:
        call_id = event.call_id
        if call_id not in self._states:
            self._states[call_id] = _CallState(call_id)
        while len(self._states) > 4:
            del self._states[next(iter(self._states))]
        return self._states[call_id]

    def open(self) -> Store:
        """The store, opening it first when that has not worked yet (StoreError when it still does
        not, at most one attempt every `reopen_s`)."""
        if self.store is not None:
            return self.store
        assert self._opener is not None
        now = time.monotonic()
        if now - self._tried_at < self.reopen_s:
            ago = now - self._tried_at
            raise StoreError(f"flag store {self.where}: not open yet (tried {ago:.0f} s ago)", transient=True)
        self._tried_at = now
        self.store = self._opener()
        self.where = self.store.where
        return self.store

    def _write(self, event: PublicEvent) -> bool | None:
        """True: written; False: the store had it already; None: not kept by the store."""
        opts = self.options
        store = self.open()
        if isinstance(event, CallStart):
            new = store.add_call(event, opts.agent, opts.team, opts.transcript)
            self._known.add(event.call_id)
            return new
        call_id = event.call_id
        state = self._states.get(call_id)
        if call_id not in self._known:
            store.ensure_call(call_id, opts.agent, opts.team, opts.transcript)
            self._known.add(call_id)
        if isinstance(event, Partial):  # not stored: only what a flag fired on it shows
            if state is not None and event.scores is not None:
                state.partial = {"speaker": str(event.speaker), "start": round(event.start, 2),
                                 "text": event.text, "utterance_id": event.utterance_id, "partial": True}
            return None
        if isinstance(event, Utterance):
            turn = {"speaker": str(event.speaker), "start": round(event.start, 2), "text": event.text,
                    "utterance_id": event.utterance_id}
            excerpts: dict[int, list[dict[str, Any]]] = {}
            if state is not None and opts.transcript != "none":
                for flag_id, (excerpt, left) in state.open_excerpts.items():
                    last = excerpt[-1] if excerpt else {}
                    if last.get("partial") and last["utterance_id"] == event.utterance_id:
                        # the final replaces what was heard so far, and is not one of the turns after
                        excerpts[flag_id] = [*excerpt[:-1], turn]
                        state.open_excerpts[flag_id] = (excerpt, left + 1)
                    elif left > 0:
                        excerpts[flag_id] = [*excerpt, turn]
            new = store.add_utterance(
                event.call_id, event, event.text if opts.transcript == "full" else None, excerpts
            )
            if state is not None:
                for flag_id, excerpt in excerpts.items():
                    state.open_excerpts[flag_id] = (excerpt, state.open_excerpts[flag_id][1] - 1)
                state.open_excerpts = {k: v for k, v in state.open_excerpts.items() if v[1] > 0}
                if opts.transcript != "none":
                    state.recent.append(turn)
                if state.partial is not None and state.partial["utterance_id"] == event.utterance_id:
                    state.partial = None
            return new
        if isinstance(event, Flag):
            excerpt = list(state.recent) if state is not None else []
            heard = state.partial if state is not None else None
            if (heard is not None and heard["utterance_id"] == event.utterance_id
                    and opts.transcript != "none"):
                excerpt.append(heard)  # fired on a turn still being spoken: the words heard so far
            added = store.add_flag(event, event.note, excerpt)
            if added is not None and state is not None and opts.transcript != "none":
                state.open_excerpts[added] = (excerpt, EXCERPT_AFTER)
            return added is not None
        if isinstance(event, Prompt):
            return store.add_prompt(event)
        if isinstance(event, Retract):
            return store.retract_prompt(event)
        if isinstance(event, Feedback):
            return store.add_feedback(event)
        if isinstance(event, PromptSeen):
            return store.prompt_seen(event)
        if isinstance(event, SupervisorNote):
            return store.add_supervisor_note(event)
        if isinstance(event, CallEnd):
            return store.end_call(event)
        return None

    def close(self) -> None:
        with self._lock:
            self._tried_at = self._quiet_until = -1e9  # one last try at a store that was not there
            self._drain()
            if self._pending:
                self._spill()

    def _spill(self) -> None:
        self.spill_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.spill_dir / f"unsaved-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.jsonl"
        # first line: whose events these are, so an import files them under the right agent
        lines = [json.dumps({"unsaved": 1, **dataclasses.asdict(self.options)})]
        kept = [e.to_json() for e in self._pending if not isinstance(e, Partial)]
        text = "".join(f"{line}\n" for line in lines + kept)
        write_private(path, text, append=True)
        log.warning(
            "flag store %s could not be written: %d event(s) saved to %s "
            "(load them with `agent-assist review import %s`)",
            self.where,
            len(self._pending),
            path,
            path,
        )
        self.spilled = path
        self._pending.clear()

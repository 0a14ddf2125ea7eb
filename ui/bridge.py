"""The one way the pipeline reaches the overlay: a sink on the pipeline's side, a Qt signal on the UI's.

`emit()` runs on the pipeline's thread. It only appends to a bounded buffer and, if the UI has not
been told yet, emits `ready` (a queued connection to the Qt main thread, which returns at once). The
UI drains the buffer in one go when it gets round to it, so a burst of events costs one repaint and
the pipeline never waits for the UI. Coalescing keeps only the newest partial per speaker; everything
else (prompts, flags, finals, status) is kept. If the buffer still overflows (a UI stalled for
minutes) the oldest events go and are counted. Nothing here can raise into the pipeline: an
overlay that is closed or broken leaves capture, rules and storage running.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from PyQt6.QtCore import QObject, pyqtSignal

from agent_assist.events import Partial, PublicEvent, Speaker, Utterance

log = logging.getLogger(__name__)

MAX_PENDING = 2000


class EventBridge(QObject):
    """A pipeline sink whose events arrive on the Qt main thread through `ready`."""

    ready = pyqtSignal()
    problem = pyqtSignal(str)  # a one-line status message from off the main thread

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._events: deque[PublicEvent] = deque()
        self._partials: dict[Speaker, Partial] = {}
        self._max = max_pending
        self._signalled = False
        self.lost = 0  # events dropped because the UI fell minutes behind
        self.bursts = 0  # how many times the UI was woken (for tests of coalescing)
        self.disconnected = False

    # -- pipeline side (any thread) --------------------------------------------------------------

    def emit(self, event: PublicEvent) -> None:
        if self.disconnected:
            return
        try:
            with self._lock:
                if isinstance(event, Partial):
                    self._partials[event.speaker] = event
                else:
                    self._events.append(event)
                    if len(self._events) > self._max:
                        self._events.popleft()
                        self.lost += 1
                if self._signalled:
                    return
                self._signalled = True
            self.ready.emit()
        except Exception:  # never let the overlay hurt the call (e.g. the QObject is gone)
            log.debug("overlay bridge unavailable", exc_info=True)
            self.disconnected = True

    def close(self) -> None:
        pass  # the overlay outlives each call; the window's owner decides when it goes

    def report(self, message: str) -> None:
        """A status line for the overlay from any thread (a failing pipeline, a device note)."""
        if not self.disconnected:
            try:
                self.problem.emit(message)
            except Exception:
                self.disconnected = True

    # -- UI side (Qt main thread) ----------------------------------------------------------------

    def drain(self) -> list[PublicEvent]:
        """Everything since the last drain, in order, partials coalesced (newest per speaker,
        placed after the other events so a final that replaced one is not undone)."""
        with self._lock:
            events = list(self._events)
            events.extend(sorted(self._partials.values(), key=lambda p: p.t))
            self._events.clear()
            self._partials.clear()
            self._signalled = False
            self.bursts += 1
        finals = {(e.call_id, e.utterance_id) for e in events if isinstance(e, Utterance)}
        return [e for e in events
                if not (isinstance(e, Partial) and (e.call_id, e.utterance_id) in finals)]

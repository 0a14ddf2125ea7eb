"""Running a call with the overlay: Qt on the main thread, the call on a worker thread.

`display_problem()` says, in one line, why no window can be shown here (no display, a missing
system library) so a command can fall back to the terminal transcript instead of letting Qt abort
the process. `OverlayRun` shows the overlay while `work` (a replay or a live session) runs; the
overlay closing, or failing, never stops the work: the terminal says so and the call carries on.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Generic, TypeVar

from agent_assist.events import PublicEvent
from agent_assist.pipeline import AgentDesk

if TYPE_CHECKING:
    from agent_assist.ui.overlay import Controls, OverlaySettings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Said once the call is over and the overlay stays up (the agent may still rate a card, or flag
#: the call).
OVERLAY_STAYS = ("the overlay stays open so you can still rate a prompt or flag the call: close it "
                 "(\u00d7 at its top right) or press Ctrl-C here to finish")

# The libraries Qt's xcb plugin loads at start; Qt aborts the whole process when one is missing.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "EGL": "libegl1",
    "fontconfig": "libfontconfig1",
}


def display_problem(env: Mapping[str, str] | None = None,
                    find_library: Callable[[str], str | None] = ctypes.util.find_library) -> str | None:
    """Why the overlay cannot be shown here, in one line, or None when it can."""
    env = os.environ if env is None else env
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return f"PyQt6 is not usable ({exc}); reinstall agent-assist"
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform or not sys.platform.startswith("linux"):
        return None  # asked for by name (offscreen, wayland, xcb …), or macOS / Windows
    if env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return "no display (DISPLAY is not set)"
    missing = [package for lib, package in XCB_LIBRARIES.items() if find_library(lib) is None]
    if missing:
        return f"Qt needs {', '.join(missing)} (apt-get install {' '.join(missing)})"
    return None


class ReplayControls:
    """The overlay's controls over a recorded call: no pausing a file; flags and feedback go in."""

    live = False
    paused = False

    def __init__(self, desk: AgentDesk) -> None:
        self.desk = desk

    def toggle_pause(self, by: str = "api") -> bool:
        return False

    def end_call(self) -> None:
        pass

    def submit(self, event: PublicEvent) -> None:
        self.desk.submit(event)


class OverlayRun(Generic[T]):
    """Show the overlay while `work` runs on a worker thread; returns what `work` returns.

    The Qt application and the bridge exist from construction, so the bridge can be given to the
    pipeline as a sink before the call starts. `run()`:

    * when `work` returns: with `close_when_done` the overlay goes at once (a live session that was
      told to quit); otherwise it stays showing the last cards until the agent closes it (and `say`
      tells the terminal so), or for `linger_s` seconds;
    * when the overlay is closed first: the terminal says so and `run()` waits for `work`;
    * when `work` raises: the overlay goes and the exception is raised here, on the main thread.
    """

    def __init__(self, settings: OverlaySettings | None = None) -> None:
        from PyQt6.QtCore import QObject, pyqtSignal
        from PyQt6.QtWidgets import QApplication

        from agent_assist.ui.bridge import EventBridge

        class _Done(QObject):
            finished = pyqtSignal()

        app = QApplication.instance()
        self.app = app if isinstance(app, QApplication) else QApplication(["agent-assist"])
        self.app.setApplicationName("agent-assist")
        self.app.setQuitOnLastWindowClosed(False)  # we decide when to quit
        self.bridge = EventBridge()
        self.settings = settings
        self._done = _Done()
        self.overlay: object | None = None
        self.closed_early = False
        self.quit_when_done = False  # set by Ctrl-C: no lingering over the last cards
        self._work_done = threading.Event()

    def request_quit(self) -> None:
        """The command is being stopped: close the overlay as soon as the work has finished, or now
        when it has (Ctrl-C while the overlay stays over the last cards)."""
        self.quit_when_done = True
        if self._work_done.is_set():
            self.app.quit()

    def run(self, controls: Controls, work: Callable[[], T], *, close_when_done: bool,
            linger_s: float | None = None, say: Callable[[str], None] = print) -> T:
        from PyQt6.QtCore import QTimer

        from agent_assist.ui.overlay import Overlay

        overlay = Overlay(controls, self.bridge, self.settings)
        self.overlay = overlay
        result: dict[str, object] = {}
        finished = self._work_done

        def target() -> None:
            try:
                result["value"] = work()
            except BaseException as exc:  # handed to the main thread
                result["error"] = exc
            finally:
                finished.set()
                self._done.finished.emit()

        def on_finished() -> None:
            if "error" in result or close_when_done or self.closed_early or self.quit_when_done:
                self.app.quit()
            elif linger_s is not None:
                if linger_s > 0:
                    say(f"the overlay stays over the last cards for {linger_s:g} s")
                QTimer.singleShot(int(linger_s * 1000), self.app.quit)
            else:  # a newcomer saw the call end and nothing else happen: say what is waiting
                say(OVERLAY_STAYS)

        def on_closed() -> None:
            if not finished.is_set():
                self.closed_early = True
                say("overlay closed: the call carries on here (Ctrl-C to stop)")
            self.app.quit()

        self._done.finished.connect(on_finished)
        overlay.closed.connect(on_closed)
        # Python signal handlers (Ctrl-C) only run when the interpreter gets a turn
        heartbeat = QTimer()
        heartbeat.timeout.connect(lambda: None)
        heartbeat.start(200)

        previous_hook = sys.excepthook

        def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            # PyQt aborts the process on an exception escaping a slot unless a hook is set
            log.error("overlay error", exc_info=(kind, exc, tb))
            self.bridge.report(f"overlay error: {exc}")

        sys.excepthook = hook
        worker = threading.Thread(target=target, name="call", daemon=True)
        overlay.show()
        worker.start()
        try:
            self.app.exec()
        finally:
            sys.excepthook = previous_hook
            heartbeat.stop()
            if overlay.isVisible():
                overlay.close()
            self.bridge.disconnected = True
        while worker.is_alive():  # the overlay has gone; the call has not
            worker.join(0.2)
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        return result["value"]  # type: ignore[return-value]

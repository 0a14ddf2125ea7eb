"""Single-key shortcuts in the terminal while `agent-assist run` listens (POSIX terminals only)."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def single_keys(actions: dict[str, Callable[[], None]]) -> Iterator[bool]:
    """Call `actions[key]` for each key pressed, without Enter; yields whether keys are live.

    Only when stdin is a terminal (not a pipe, not a test harness) and not on Windows; the terminal's
    mode is restored on the way out, whatever happens.
    """
    if sys.platform == "win32" or not sys.stdin.isatty():
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1).decode(errors="ignore").lower()
            action = actions.get(key)
            if action is not None:
                try:
                    action()
                except Exception:  # a key must never take the session down
                    log.exception("shortcut %r failed", key)

    tty.setcbreak(fd)  # keys arrive one at a time; Ctrl-C still raises SIGINT
    thread = threading.Thread(target=read, name="keys", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

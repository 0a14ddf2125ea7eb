"""A second X client for tests/test_overlay_x11.py: an "editor" window that holds keyboard focus, as
the agent's CRM would, and a camera for the real X screen.

Commands on stdin, one per line; each answer is one line on stdout:
  focus                   -> "focus True" if the editor still has keyboard focus
  shot X Y W H PATH       -> "saved PATH": a PNG of that part of the screen as the X server has it
  quit
"""

from __future__ import annotations

import sys
import threading

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QApplication, QLineEdit


class Commands(QObject):
    line = pyqtSignal(str)


def main() -> None:
    app = QApplication(sys.argv)
    editor = QLineEdit()
    editor.setWindowTitle("editor")
    editor.setGeometry(40, 400, 500, 60)
    editor.show()
    editor.activateWindow()
    editor.setFocus()
    commands = Commands()

    def answer(text: str) -> None:
        print(text, flush=True)

    def handle(line: str) -> None:
        parts = line.split()
        if not parts:
            return
        if parts[0] == "focus":
            answer(f"focus {editor.hasFocus() and app.focusWindow() is editor.windowHandle()}")
        elif parts[0] == "shot":
            x, y, w, h = (int(v) for v in parts[1:5])
            screen = app.primaryScreen()
            assert screen is not None
            screen.grabWindow(0, x, y, w, h).save(parts[5])
            answer(f"saved {parts[5]}")
        elif parts[0] == "quit":
            app.quit()

    commands.line.connect(handle)

    def read() -> None:
        for line in sys.stdin:
            commands.line.emit(line.strip())
        commands.line.emit("quit")

    threading.Thread(target=read, daemon=True).start()
    answer("ready")
    app.exec()


if __name__ == "__main__":
    main()

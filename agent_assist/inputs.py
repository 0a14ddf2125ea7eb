"""Read the files people hand us (rule packs, transcripts, tables of utterances) with bounds.

A command given a file must finish, with the file read or one clear line saying why not:

- only a regular file is read. A FIFO with no writer would block for ever, and a device (say
  /dev/zero) never ends, so either is refused before a byte is read. The file is opened without
  blocking and checked on the open descriptor, so nothing can swap it in between.
- every read is bounded: a whole file at `max_bytes`, a line at `max_line` bytes. Past the bound
  the message says which line and what the bound is, rather than the program holding gigabytes.
- lines end at `\\n` (a `\\r` before it is dropped) and nowhere else. `str.splitlines` also
  splits at U+2028, U+2029, NEL (U+0085), form feed, vertical tab and U+001C-U+001E, all of
  which may sit inside a JSON string or a field of text, and would split one record in two.
- text is UTF-8, strictly: a bad byte is reported with its line, and no lone surrogate can come
  from a file (`no_surrogates` checks what a JSON `\\ud800` escape can still produce).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from agent_assist.errors import AgentAssistError
from agent_assist.text import terminal_safe

_SURROGATE = re.compile("[\ud800-\udfff]")
# opening a FIFO to read waits for a writer, unless it is opened without blocking (POSIX)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class InputError(AgentAssistError):
    """A file given to a command cannot be read as what it should be; the message names it (and its
    line, where there is one): `path:line: reason`."""

    def __init__(self, path: Path | str, reason: str, line: int = 0) -> None:
        self.path, self.reason, self.line = terminal_safe(path), reason, line
        super().__init__(f"{self.path}:{line}: {reason}" if line else f"{self.path}: {reason}")


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading in binary, if it is a regular file; else `InputError`."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(path, "is a folder, not a file")
        if not stat.S_ISREG(mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise InputError(path, f"is {kind}, not a file; save the data to a file and give that")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: Path) -> None:
    """`InputError` unless `path` is a regular file that can be opened for reading."""
    open_regular(path).close()


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The whole of the regular file `path`, at most `max_bytes` long."""
    with open_regular(path) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(path, f"larger than {max_bytes:,} bytes; split it into smaller files")
    return data


def decode(data: bytes, path: Path | str, *, bom: bool = False) -> str:
    """`data` as UTF-8 text (a leading byte-order mark dropped when `bom`), or `InputError` with the
    line of the first bad byte."""
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start:,})", line) from None


def read_text(path: Path, max_bytes: int, *, bom: bool = False) -> str:
    """The regular file `path` as UTF-8 text, at most `max_bytes` long."""
    return decode(read_bytes(path, max_bytes), path, bom=bom)


def split_lines(text: str) -> list[str]:
    """`text` split at `\\n` alone (a `\\r` before it dropped), never at the other characters that
    `str.splitlines` counts as line boundaries; no empty last line for a final `\\n`."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def lines(path: Path, max_line: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of the regular file `path`, read as it goes: split at `\\n`
    alone, decoded as UTF-8, each at most `max_line` bytes."""
    with open_regular(path) as fh:
        number = 0
        while True:
            raw = fh.readline(max_line + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line and not (len(raw) == max_line + 1 and raw.endswith(b"\n")):
                raise InputError(path, f"line longer than {max_line:,} bytes", number)
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start:,} of the line)",
                                 number) from None
            yield number, text


def no_surrogates(text: str) -> bool:
    """Whether `text` is free of lone surrogates (which JSON's `\\ud800` escapes can produce and no
    UTF-8 writer accepts)."""
    return _SURROGATE.search(text) is None

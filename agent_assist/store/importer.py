"""Events loaded into the store from files: what a session could not write (saved aside under the
data directory's unsaved/ folder, already redacted) or any event log.

Every line is checked against the event schema before anything reaches the store
(`events.event_from_json` refuses a wrong type, a number that is not finite, text that is not
Unicode): a line that fails is named, `file:line: why`, and skipped, and the lines around it are
imported. A line longer than `MAX_LINE_BYTES` is refused unread, and a path that is not a regular
file (a FIFO with no writer would wait forever) is refused unopened.

Every event is written once: the store knows the events it has (`records.key_of`), so a file
imported again, or the event log of a call the store took live, adds nothing and says so.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from agent_assist.events import EventParseError, event_from_json
from agent_assist.store.connection import StoreError
from agent_assist.store.records import Store
from agent_assist.store.sink import TRANSCRIPT_MODES, FlagStoreSink, StoreOptions
from agent_assist.text import printable

#: The longest line read (a two-hour call's longest turn, words and all, is well under 2 MB).
MAX_LINE_BYTES = 16 * 2**20


@dataclass
class ImportReport:
    """What an import did: events written, events the store had already, events of kinds it does
    not keep (partials, status events), and the lines refused (`file:line: why`)."""

    imported: int = 0
    already: int = 0
    not_kept: int = 0
    refused: list[str] = field(default_factory=list)

    def summary(self, where: str) -> str:
        text = f"imported {self.imported} event(s) into {where}"
        if self.already:
            text += f"; {self.already} already in the store"
        if self.not_kept:
            text += f"; {self.not_kept} of kinds the store does not keep (partials, status events)"
        return text


def import_files(store: Store, paths: list[Path]) -> ImportReport:
    """Load each file's events into `store`. StoreError when the store could not be written (the
    events are then saved aside again, so nothing is lost)."""
    report = ImportReport()
    for path in paths:
        _import_file(store, path, report)
    return report


def _import_file(store: Store, path: Path, report: ImportReport) -> None:
    """A saved-aside file starts with one line saying whose events they are (`{"unsaved": 1,
    "agent": ..., "team": ..., "transcript": ...}`), so they are filed under the agent who took the
    call."""
    shown = printable(str(path))
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            report.refused.append(f"{shown}: not a regular file")
            return
        file = path.open("rb")
    except OSError as exc:
        report.refused.append(f"{shown}: cannot read it: {exc.strerror or exc}")
        return
    sink = FlagStoreSink(store, StoreOptions())
    with file:
        for number, line in _lines(file):
            where = f"{shown}:{number}"
            if line is None:
                report.refused.append(f"{where}: longer than {MAX_LINE_BYTES // 2**20} MB")
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                report.refused.append(f"{where}: not UTF-8 text")
                continue
            if not text.strip():
                continue
            if number == 1 and text.lstrip().startswith('{"unsaved"'):
                options, problem = _owner(text)
                if problem:
                    report.refused.append(f"{where}: {problem}; its events are filed under no agent")
                sink.options = options
                continue
            try:
                event = event_from_json(text)
            except EventParseError as exc:
                report.refused.append(f"{where}: {_one_line(str(exc))}")
                continue
            sink.emit(event)
    sink.close()
    report.imported += sink.counts["written"]
    report.already += sink.counts["already"]
    report.not_kept += sink.counts["not_kept"]
    if sink.spilled:
        raise StoreError(f"flag store {store.where} could not be written; nothing lost: the events of "
                         f"{shown} were saved again to {sink.spilled}")


def _lines(file: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line of `file`; the line is None when it is longer than
    `MAX_LINE_BYTES` (and is skipped unread)."""
    number = 0
    while True:
        line = file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = file.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, line


def _owner(text: str) -> tuple[StoreOptions, str]:
    """The saved-aside header's agent, team and transcript mode; or the defaults and what is wrong."""
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        return StoreOptions(), "not a saved-aside header (not JSON)"
    if not isinstance(header, dict):
        return StoreOptions(), "not a saved-aside header (not a JSON object)"
    agent, team = header.get("agent", ""), header.get("team", "")
    transcript = header.get("transcript", "excerpt")
    if not (isinstance(agent, str) and isinstance(team, str) and transcript in TRANSCRIPT_MODES):
        return StoreOptions(), "a saved-aside header with a wrong agent, team or transcript"
    for name in (agent, team):
        if "\x00" in name or name != printable(name):
            return StoreOptions(), "a saved-aside header whose agent or team is not plain text"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return StoreOptions(), "a saved-aside header whose agent or team is not valid Unicode"
    return StoreOptions(agent=agent, team=team, transcript=transcript), ""


def _one_line(text: str) -> str:
    return " ".join(printable(text).split())

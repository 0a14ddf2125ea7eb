"""The supervisor's review from the command line, over a store a real call wrote: a replay killed
mid-call, then list, show, ack, note, export and the HTML report in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from agent_assist.events import Speaker
from agent_assist.review import DISTRESS_COLOUR, ESCALATION_COLOUR, flag_filters, shift_range
from agent_assist.sinks import JsonlEventLog
from agent_assist.store import Filters, open_store
from tests.test_cli import EXE, agent_assist
from tests.test_store import a_call, say, scores, write

HOSTILE = "<script>document.title='owned'</script><img src=x onerror=alert(1)> it's all too much"


def test_a_replay_killed_mid_call_keeps_its_flag_and_the_review_reads_it(tmp_path: Path) -> None:
    """kill -9 while the call is still running, just after the first flag: the flag is there, the
    store opens, and every review command works on it."""
    from datetime import UTC, datetime, timedelta

    from tests.pulse import RATE, sample_audio, write_wav

    # the first minute of the sample call: its first flag comes at about 20 s, and the call goes on
    # long enough after it to be killed even when a loaded machine's transcriber runs behind
    audio = sample_audio()
    clip = write_wav(tmp_path / "minute.wav", audio["customer"][: 60 * RATE], audio["agent"][: 60 * RATE])

    store = tmp_path / "flags.sqlite3"
    write(str(store), a_call("old", started_at=(datetime.now(UTC) - timedelta(days=31)).isoformat()))
    env = {**os.environ, "AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml"}
    child = subprocess.Popen(
        [
            *EXE,
            "replay",
            str(clip),
            "--realtime",
            "-q",
            "--store",
            str(store),
            "--agent-id",
            "sam",
            "--team",
            "east",
            "--retain-days",
            "30",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    flags = 0
    while flags == 0 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
        with sqlite3.connect(store, timeout=5) as conn:  # the old call's flags are purged first
            flags = conn.execute("SELECT COUNT(*) FROM flags WHERE call_id <> 'old'").fetchone()[0]
    if child.poll() is not None:
        assert child.stderr is not None
        pytest.fail(f"the call ended (exit {child.returncode}, {flags} flag(s) stored) before it could be "
                    f"killed: {child.stderr.read().decode()[-2000:]}")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert flags >= 1
    assert child.stderr is not None
    assert "note: purged 1 call(s) and 2 flag(s) older than 30 days" in child.stderr.read().decode()

    listed = agent_assist("review", "list", "--store", str(store), "--json")
    assert listed.returncode == 0, listed.stderr
    [flag] = [f for f in json.loads(listed.stdout) if f["rule"] == "acknowledge-disclosure"]
    assert (flag["kind"], flag["agent"], flag["team"], flag["reviewed_at"]) == (
        "distress",
        "sam",
        "east",
        None,
    )
    # the disclosure's words end at 20.3 s: the flag comes from a partial while they are said, or
    # from the final just after them; either way its turn is in the excerpt
    assert 17 < flag["t"] < 22
    assert any(t["speaker"] == "customer" and "husband" in t["text"] for t in flag["excerpt"])

    shown = agent_assist("review", "show", str(flag["id"]), "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert "the call did not end cleanly" in shown.stdout  # it was killed
    assert "acknowledge-disclosure" in shown.stdout and "distress   |" in shown.stdout
    assert "husband" in shown.stdout

    assert (
        "reviewed"
        in agent_assist("review", "ack", str(flag["id"]), "--store", str(store), "--by", "lee").stdout
    )
    noted = agent_assist(
        "review",
        "note",
        str(flag["id"]),
        "Checked in with Sam after the call",
        "--wellbeing",
        "--store",
        str(store),
        "--by",
        "lee",
    )
    assert noted.returncode == 0 and "agent wellbeing" in noted.stdout
    shown = agent_assist("review", "show", str(flag["id"]), "--store", str(store)).stdout
    assert "reviewed by lee" in shown and "lee [agent wellbeing]: Checked in with Sam after the call" in shown
    open_ids = [
        f["id"]
        for f in json.loads(
            agent_assist(
                "review", "list", "--store", str(store), "--unreviewed", "--shift", "today", "--json"
            ).stdout
        )
    ]
    done_ids = [
        f["id"]
        for f in json.loads(
            agent_assist("review", "list", "--store", str(store), "--reviewed", "--json").stdout
        )
    ]
    assert flag["id"] not in open_ids and done_ids == [flag["id"]]


def test_list_order_filters_and_shifts(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call("a"))
    listed = agent_assist("review", "list", "--store", url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].startswith("call a · agent sam · team east · started ")
    assert lines[2].split()[1:3] == ["critical", "crisis"] and lines[3].split()[1:3] == ["medium", "agent"]
    assert "raised by the agent: call back on [phone] tomorrow" in lines[3]
    assert "2 flag(s), 2 not reviewed" in listed.stderr
    assert "no flags match" in agent_assist("review", "list", "--store", url, "--shift", "2020-01-01").stdout
    assert agent_assist("review", "list", "--store", url, "--min-severity", "high").stdout.count("\n") == 3
    assert (
        "raised by the agent"
        not in agent_assist("review", "list", "--store", url, "--kind", "crisis").stdout
    )
    bad = agent_assist("review", "list", "--store", url, "--shift", "monday")
    assert (
        bad.returncode != 0 and "unknown shift 'monday'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    )
    since, until, _ = shift_range("2026-11-23T22:00/8h")
    assert since < until


def test_review_errors_are_one_line(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call())
    missing = agent_assist("review", "show", "99", "--store", url)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("agent-assist: error: no flag 99")
    locker = sqlite3.connect(url, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locked = agent_assist("review", "ack", "1", "--store", url)
    locker.execute("ROLLBACK")
    assert locked.returncode == 1 and len(locked.stderr.strip().splitlines()) == 1
    assert "is locked (another program is writing to it" in locked.stderr
    assert agent_assist("review", "ack", "1", "--store", url).returncode == 0  # nothing was lost


def test_export_csv_quotes_formulas(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    events = a_call()
    events[-1] = type(events[-1])(**{**events[-1].__dict__, "note": '=HYPERLINK("http://x","click")'})
    write(url, events)
    out = tmp_path / "flags.csv"
    done = agent_assist("review", "export", "--csv", "--store", url, "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["kind"] for r in rows] == ["crisis", "agent"]
    assert rows[1]["agent_note"].startswith("'=HYPERLINK")
    assert "[card]" in rows[0]["excerpt"] and "4111" not in out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_purge_from_the_command_line(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call("old", started_at=(datetime.now(UTC) - timedelta(days=40)).isoformat()) + a_call("new"))
    done = agent_assist("review", "purge", "--older-than", "30", "--store", url)
    assert done.returncode == 0 and "purged 1 call(s) and 2 flag(s) older than 30 days" in done.stdout
    store = open_store(url)
    assert {f.call_id for f in store.flags()} == {"new"}
    store.close()


def test_the_event_log_is_redacted_on_the_real_sample_call(sample_call, tmp_path: Path) -> None:
    """The demo's customer gives her street address; the event log on disk does not keep it."""
    path = tmp_path / "events.jsonl"
    log = JsonlEventLog(str(path))
    for event in sample_call.events:
        log.emit(event)
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    said = [x for x in lines if x["type"] == "utterance"]
    assert len(said) == len(sample_call.utterances)
    address = [x for x in said if "[address]" in x["text"]]
    assert len(address) == 1 and address[0]["speaker"] == "customer"
    assert "Ringwood" not in path.read_text()
    assert any(w["text"] == "[address]" for w in address[0]["words"])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_html_report_in_headless_chromium(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    events = a_call("hostile-call")
    events[5] = say(
        "hostile-call", 4, Speaker.CUSTOMER, 9.0, HOSTILE, scores(0.9, escalation=0.6, crisis=0.97)
    )
    write(url, events + a_call("calm-call")[:4])
    report = tmp_path / "report.html"
    done = agent_assist("review", "report", "--shift", "today", "--store", url, "-o", str(report))
    assert done.returncode == 0, done.stderr
    assert "2 flag(s) in 1 call(s)" in done.stderr
    page = report.read_text()
    # self-contained: nothing to fetch, no script
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert not [m for m in __import__("re").findall(r'(?:src|href)="([^"]*)"', page) if not m.startswith("#")]

    chromium = _chromium()
    assert chromium is not None
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1400",
        "--hide-scrollbars",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-500:]
    assert "<title>agent-assist: flags for review</title>" in dom.stdout  # no script renamed it
    assert (
        "&lt;script&gt;document.title='owned'&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in dom.stdout
    )
    assert "<img" not in dom.stdout and "<script" not in dom.stdout
    assert "<table" in dom.stdout and "<polyline" in dom.stdout

    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*common, f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert shot.exists(), done.stderr[-500:]
    from PyQt6.QtGui import QImage

    from tests.pixels import near, rgb

    image = QImage(str(shot))
    assert image.width() >= 1000

    every_other = rgb(image)[::2, ::2]  # every second pixel of every second row

    def pixels(colour: str) -> int:
        return int(near(every_other, colour).sum())

    assert pixels(DISTRESS_COLOUR) > 50  # the distress line of the timeline plot
    assert pixels(ESCALATION_COLOUR) > 50
    assert pixels("#eef1f4") > 500  # the ranked table's header row



def test_filters_for_a_shift_a_period_and_severities() -> None:
    chosen, label = flag_filters(shift="2026-11-23T22:00/8h", min_severity="high", reviewed=False)
    assert (chosen.since, chosen.until) == shift_range("2026-11-23T22:00/8h")[:2]
    assert label == "shift 2026-11-23 22:00-06:00"
    assert chosen.severities == ("high", "critical") and chosen.reviewed is False
    chosen, label = flag_filters(since="2026-11-01", until="2026-11-08", severities=("low",),
                                 min_severity="critical", teams=("east",))
    assert label == "from 2026-11-01 until 2026-11-08" and chosen.since < chosen.until
    assert chosen.severities == ("low", "critical") and chosen.teams == ("east",)
    assert flag_filters() == (Filters(), "all flags")


def test_report_and_export_never_write_through_a_link_and_end_up_private(tmp_path: Path) -> None:
    """Before, `-o` onto a symbolic link overwrote what it pointed at, and `-o` over a 0644 or 0666
    file kept that mode."""
    url = str(tmp_path / "flags.sqlite3")
    write(url, a_call())
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's own file\n")
    for command in (["report"], ["export", "--csv"]):
        link = tmp_path / f"out-{command[0]}"
        link.symlink_to(precious)
        done = agent_assist("review", *command, "--store", url, "-o", str(link))
        assert done.returncode == 1
        assert done.stderr.strip() == (f"agent-assist: error: {link} is a symbolic link: not written "
                                       "(give the file itself)")
        assert precious.read_text() == "the user's own file\n" and link.is_symlink()
        for mode in (0o644, 0o666):
            loose = tmp_path / f"loose-{command[0]}-{mode:o}"
            loose.write_text("old")
            loose.chmod(mode)
            done = agent_assist("review", *command, "--store", url, "-o", str(loose))
            assert done.returncode == 0, done.stderr
            assert stat.S_IMODE(loose.stat().st_mode) == 0o600 and loose.read_text() != "old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_a_store_option_naming_some_other_file_leaves_it_as_it_was(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    notes.chmod(0o644)
    done = agent_assist("review", "list", "--store", str(notes))
    assert done.returncode == 1 and "not a database, so not an agent-assist store" in done.stderr
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644 and notes.read_text() == "my notes\n"


#: What must never reach the page as itself: the bidirectional formatting characters (overrides,
#: embeddings, isolates, marks) and control characters (C0 but tab and newline, DEL, C1).
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
CONTROL = "".join(chr(c) for c in [*range(1, 9), *range(11, 32), *range(0x7f, 0xa0)])
LONG_WORD = "A" * 100_000  # one turn of a 100k-character token


def _hostile_store(tmp_path: Path) -> str:
    """A call whose every text field carries bidi and control characters, and a turn with a
    100k-character word (written unredacted: the text's shape, not its content, is the point)."""
    from agent_assist.events import Flag
    from agent_assist.store import FlagStoreSink, StoreOptions

    url = str(tmp_path / "flags.sqlite3")
    nasty = f"x{BIDI}y{CONTROL}z"
    call_id = f"call{nasty}"
    events = a_call(call_id)
    events[0] = type(events[0])(**{**events[0].__dict__, "source": f"line {nasty}"})
    events[5] = say(call_id, 4, Speaker.CUSTOMER, 9.0, f"{LONG_WORD} {nasty}", scores(0.9, crisis=0.97))
    events[-1] = Flag(t=20.0, call_id=call_id, kind="agent", severity="medium", reason="raised by the agent",
                      utterance_id="", raised_by="agent", note=f"{'n' * 3000} {nasty}")
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent=f"sam{nasty}", team=f"east{nasty}", transcript="full"),
                         redact=False)
    for event in events:
        sink.emit(event)
    sink.close()
    store.note(store.flags()[0].id, f"supervisor {nasty}", by=f"lee{nasty}")
    store.close()
    return url


def test_the_html_report_has_no_control_or_bidi_characters(tmp_path: Path) -> None:
    """Before: every one of them reached the page as itself (36 bidi and 61 control characters)."""
    url = _hostile_store(tmp_path)
    report = tmp_path / "report.html"
    done = agent_assist("review", "report", "--store", url, "-o", str(report))
    assert done.returncode == 0, done.stderr
    page = report.read_text()
    assert [c for c in page if c in BIDI or c in CONTROL] == []
    assert page.count("xyz") >= 8 and LONG_WORD in page  # the text itself is all there
    assert "overflow-wrap:anywhere" in page


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_a_100k_character_word_wraps_in_the_page(tmp_path: Path) -> None:
    """Measured in headless Chromium: the page is as wide as its window, where before the word made
    it 1,067,926 pixels wide."""
    import re

    url = _hostile_store(tmp_path)
    report = tmp_path / "report.html"
    assert agent_assist("review", "report", "--store", url, "-o", str(report)).returncode == 0
    # the page runs no script (its Content-Security-Policy says so): a copy without that line,
    # with one script added at the end that writes down how wide the page lays out
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report.read_text())
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", "<script>document.body.insertAdjacentHTML('beforeend', "
                                     "'<p id=\"width\">' + document.documentElement.scrollWidth + '</p>')"
                                     "</script></body>"))
    chromium = _chromium()
    assert chromium is not None
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,1400", "--dump-dom", measured.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'<p id="width">(\d+)</p>', dom.stdout)
    assert found, dom.stderr[-500:]
    assert int(found[1]) <= 1200


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_report_draws_a_prompt_the_agent_was_not_shown_hollow_and_lists_it_apart(tmp_path: Path) -> None:
    """Two stores of the same call, one where the overlay showed the crisis prompt and one where no
    overlay did: in Chromium the second has less of the prompts' green (a hollow tick), and its page
    lists the prompt under "not shown"."""
    from PyQt6.QtGui import QImage

    from agent_assist.events import PromptSeen, PromptState
    from agent_assist.review import PROMPT_COLOUR
    from tests.pixels import near, rgb

    chromium = _chromium()
    assert chromium is not None
    green: dict[str, int] = {}
    for case in ("shown", "not-shown"):
        url = str(tmp_path / f"{case}.sqlite3")
        events = a_call(case)
        if case == "shown":
            events.append(PromptSeen(t=11.5, call_id=case, rule="crisis-safety", prompt_t=11.0,
                                     state=PromptState.SHOWN))
        write(url, events)
        report = tmp_path / f"{case}.html"
        done = agent_assist("review", "report", "--shift", "today", "--store", url, "-o", str(report))
        assert done.returncode == 0, done.stderr
        page = report.read_text()
        heading = "Prompts shown to the agent" if case == "shown" else "Prompts the agent was not shown"
        assert f"<h3>{heading}" in page
        shot = tmp_path / f"{case}.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900",
                        "--hide-scrollbars", f"--screenshot={shot}", report.as_uri()],
                       capture_output=True, text=True, timeout=120)
        green[case] = int(near(rgb(QImage(str(shot))), PROMPT_COLOUR).sum())
    assert green["shown"] > green["not-shown"] > 0, green

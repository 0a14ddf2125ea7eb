"""The review report as a supervisor sees it, in headless Chromium: the flags by call in the DOM's
order, the agents' check-ins in their own section, the agent's long note folded but whole, and the
crisis mark measured from a screenshot (where it is, that nothing covers it, its contrast)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from agent_assist.review import CRISIS_COLOUR, SEVERITY_COLOURS
from agent_assist.store import Outcome, open_store
from tests.pixels import contrast, luminance, near_colour
from tests.review_shift import LONG_NOTE, ORDER, write_shift
from tests.test_cli import agent_assist
from tests.test_review import _chromium

pytestmark = pytest.mark.skipif(_chromium() is None,
                                reason="Chromium is not installed (apt-get install chromium)")
WINDOW = (1200, 2400)


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    chromium = _chromium()
    assert chromium is not None
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1", "--hide-scrollbars",
         *args],
        capture_output=True, text=True, timeout=120,
    )


def _report(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    url = str(tmp_path / "flags.sqlite3")
    store = open_store(url)
    ids = write_shift(store)
    store.set_outcome(ids["c-violence:crisis-family-violence"], Outcome.HANDLED_WELL, "lee")
    store.set_outcome(ids["c-violence:agent-check-in"], Outcome.FOLLOW_UP_WELLBEING, "lee")
    store.note(ids["c-violence:agent-check-in"], "Called Sam after the shift", "lee", wellbeing=True)
    store.close()
    report = tmp_path / "report.html"
    done = agent_assist("review", "report", "--store", url, "-o", str(report))
    assert done.returncode == 0, done.stderr
    return report, ids


def _measured(tmp_path: Path, report: Path) -> dict[str, list[float]]:
    """Where things are on the page, in CSS pixels: the page runs no script (its
    Content-Security-Policy), so a copy without that line runs one that writes the boxes down."""
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report.read_text())
    script = ("<script>const box = s => { const r = document.querySelector(s).getBoundingClientRect(); "
              "return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };"
              "document.body.insertAdjacentHTML('beforeend', '<pre id=\"boxes\">' + JSON.stringify({"
              "label: box('svg .crisis-mark rect'), line: box('svg .crisis-mark line'),"
              "svg: box('svg'), other: box('svg line[stroke-dasharray]')}) + '</pre>')</script>")
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", script + "</body>"))
    dom = _browser(tmp_path, "--dump-dom", measured.as_uri())
    found = re.findall(r'<pre id="boxes">(\{.*?)</pre>', dom.stdout)  # not the script's own text
    assert found, dom.stderr[-500:]
    return json.loads(found[-1])  # type: ignore[no-any-return]


def test_the_report_reads_call_by_call_with_check_ins_apart(tmp_path: Path) -> None:
    report, ids = _report(tmp_path)
    dom = _browser(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-500:]
    page = dom.stdout
    assert re.findall(r'<tbody class="call" data-call="([^"]+)">', page) == ORDER
    severity_rank = ["low", "medium", "high", "critical"]
    for call in re.findall(r'<tbody class="call".*?</tbody>', page, re.S):
        shown = re.findall(r'<span class="sev"[^>]*>(\w+)</span>', call)
        assert shown[0] == max(shown, key=severity_rank.index)  # the call's worst flag first
    flags_table = page.split('<table class="flags">')[1].split("</table>")[0]
    check_ins = page.split('<table class="check-ins">')[1].split("</table>")[0]
    in_check_ins = {int(i) for i in re.findall(r'data-flag="(\d+)"', check_ins)}
    assert in_check_ins == {ids[f"{c}:agent-check-in"] for c in ORDER}
    assert not in_check_ins & {int(i) for i in re.findall(r'data-flag="(\d+)"', flags_table)}
    order = [page.index(s) for s in ('id="crisis"', 'id="flags"', 'id="wellbeing"', f'id="call-{ORDER[0]}"')]
    assert order == sorted(order)  # the crisis banner, the flags, the check-ins, then the calls
    assert "follow up with the agent (wellbeing)" in check_ins
    crisis = ids["c-violence:crisis-family-violence"]  # its mark on the timeline names the line too
    assert (f"<title>flag {crisis}: crisis at 00:52.0; support line (region AU): 1800RESPECT 1800 737 732 · "
            "emergency 000</title>") in page
    # the agent's note: folded in the table, whole once opened (and in its call's section)
    folded = re.search(r"<details><summary>(.*?)</summary>(.*?)</details>", flags_table, re.S)
    assert folded and folded[1].endswith("…") and folded[2] == f"raised by the agent: {LONG_NOTE}"


def test_a_crisis_flag_is_the_most_visible_mark_on_its_timeline(tmp_path: Path) -> None:
    """Before, the crisis flag was a thin dashed line under the score lines, the same as any flag.
    Now: a solid line over everything, 5 pixels wide against a dashed 3 for other flags, labelled
    CRISIS in white; WCAG's 3:1 for a mark against the plot and 4.5:1 for the label's text."""
    from PyQt6.QtGui import QColor, QImage

    report, _ = _report(tmp_path)
    boxes = _measured(tmp_path, report)
    shot = tmp_path / "report.png"
    done = _browser(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.exists(), done.stderr[-500:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == WINDOW
    svg_x, svg_y, _, svg_h = boxes["svg"]
    assert svg_y + svg_h < WINDOW[1], "the first call's timeline is below the screenshot"


    # the label: crisis-red, with white text on it
    lx, ly, lw, lh = (round(v) for v in boxes["label"])
    label = [image.pixelColor(x, y) for x in range(lx + 1, lx + lw - 1) for y in range(ly + 1, ly + lh - 1)]
    assert sum(near_colour(c, CRISIS_COLOUR) for c in label) > 0.5 * len(label)
    lightest = max(label, key=luminance)
    assert contrast(lightest, QColor(CRISIS_COLOUR)) >= 4.5 and luminance(lightest) > 0.8
    # the line: crisis-red from the label down to the axis, whatever crosses it (the score lines)
    line_x = round(boxes["line"][0] + boxes["line"][2] / 2)
    bottom = round(boxes["line"][1] + boxes["line"][3])
    column = [image.pixelColor(line_x, y) for y in range(ly + lh + 2, bottom)]
    assert len(column) > 100 and all(near_colour(c, CRISIS_COLOUR) for c in column)
    background = image.pixelColor(round(svg_x + 60), round(svg_y + svg_h / 2 + 20))  # empty plot
    assert near_colour(background, "#fbfcfd", 12)
    assert contrast(column[len(column) // 2], background) >= 3.0
    # wider than any other flag's line (the dashed one of a non-crisis flag, in its severity's colour)
    mid = round(svg_y + svg_h * 0.6)
    crisis_width = sum(near_colour(image.pixelColor(x, mid), CRISIS_COLOUR)
                       for x in range(line_x - 10, line_x + 11))
    other_x = round(boxes["other"][0] + boxes["other"][2] / 2)
    colours = list(SEVERITY_COLOURS.values())
    other_width = max(sum(any(near_colour(image.pixelColor(x, y), c) for c in colours)
                          for x in range(other_x - 10, other_x + 11)) for y in range(mid - 8, mid + 8))
    assert crisis_width >= 4 and 1 <= other_width < crisis_width, (crisis_width, other_width)

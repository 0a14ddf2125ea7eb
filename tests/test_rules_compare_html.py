"""`rules replay --compare A B --html FILE`: one self-contained page with the two packs side by side
on a timeline per call; its structure, its safety (escaped, no script, 0600), and what headless
Chromium draws of it (each pack's marks in its own lane, in their colours, readable)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import pytest

from agent_assist.quality.compare import ONLY_A, ONLY_B
from tests.conftest import REPO
from tests.pixels import contrast, near_colour
from tests.test_cli import agent_assist
from tests.test_review import _chromium
from tests.test_rules_replay_logs import STRICTER, WEEK, WEEK_PACK

DEFAULT = REPO / "prompts" / "default.toml"
WINDOW = (1200, 1000)


def _page(tmp_path: Path) -> Path:
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(STRICTER, encoding="utf-8")
    page = tmp_path / "compare.html"
    result = agent_assist("rules", "replay", str(WEEK), "--compare", str(WEEK_PACK), str(stricter),
                          "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"wrote {page}\n"
    return page


def test_the_page_holds_both_packs_per_call_and_nothing_from_outside(tmp_path):
    page = _page(tmp_path)
    assert stat.S_IMODE(page.stat().st_mode) == 0o600  # what calls said, even redacted: its owner's only
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not [m for m in re.findall(r'(?:src|href)="([^"]*)"', text) if not m.startswith("#")]
    # the call with differences first, then the calm one; each with its two-lane timeline
    assert re.findall(r'<section class="call" id="call-([^"]+)"', text) == ["call-04", "calm-02"]
    assert text.count('<svg class="timeline"') == 2
    call = text.split('id="call-call-04"')[1].split("</section>")[0]
    signs = re.findall(r'<tr class="difference" data-sign="(\w+)">', call)
    assert signs == ["moved", "plus", "minus"]
    assert "escalation 0.94" in call and "switched off in B" in call and "not in A" in call
    assert "ombudsman" in call  # the customer's words
    # marks: A's lane has the one B removes, B's lane the one it adds; both have the ones they share
    assert call.count('class="prompt only-a"') == 1 and call.count('class="prompt only-b"') == 1
    assert call.count('class="prompt moved"') == 2 and call.count('class="prompt both"') == 4
    assert "The same prompts with both packs." in text.split('id="call-calm-02"')[1]


def test_text_from_a_call_is_escaped_on_the_page(tmp_path):
    said = "<script>alert(1)</script> I want a manager \u202eevil\u202c"
    turn = {"speaker": "customer", "start": 1.0, "end": 4.0, "text": said}
    calls = tmp_path / "calls.jsonl"
    calls.write_text(json.dumps({"call_id": "<b>x</b>", "turns": [turn]}) + "\n", encoding="utf-8")
    quieter = tmp_path / "quieter.toml"
    quieter.write_text('[[override]]\nid = "manager-request"\nenabled = false\n', encoding="utf-8")
    page = tmp_path / "compare.html"
    result = agent_assist("rules", "replay", str(calls), "--compare", str(DEFAULT), str(quieter),
                          "--html", str(page))
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>x</b>" not in text and "\u202e" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; I want a manager" in text and "&lt;b&gt;x&lt;/b&gt;" in text


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


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_in_chromium_each_pack_s_marks_are_in_its_lane_and_readable(tmp_path):
    """Where the marks are, read from the page in Chromium (a copy without the CSP runs a script
    that writes their boxes down), and what they look like, from a screenshot of the page itself."""
    from PyQt6.QtGui import QColor, QImage

    page = _page(tmp_path)
    script = ("<script>const box = s => { const r = document.querySelector(s).getBoundingClientRect(); "
              "return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };"
              "document.body.insertAdjacentHTML('beforeend', '<pre id=\"boxes\">' + JSON.stringify({"
              "a: box('.prompt.only-a'), b: box('.prompt.only-b'), svg: box('svg.timeline'),"
              "table: box('table')}) + '</pre>')</script>")
    measured = tmp_path / "measured.html"
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    measured.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _browser(tmp_path, "--dump-dom", measured.as_uri())
    found = re.findall(r'<pre id="boxes">(\{.*?)</pre>', dom.stdout)
    assert found, dom.stderr[-500:]
    boxes = json.loads(found[-1])
    shot = tmp_path / "compare.png"
    done = _browser(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), done.stderr[-500:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == WINDOW

    svg_x, svg_y, svg_w, svg_h = boxes["svg"]
    assert svg_y + svg_h < WINDOW[1] and svg_x + svg_w <= WINDOW[0]  # the first timeline is all on screen
    a_x, a_y, a_w, a_h = boxes["a"]
    b_x, b_y, b_w, b_h = boxes["b"]
    assert a_y + a_h < b_y  # A's lane above B's
    assert svg_y <= a_y and b_y + b_h <= svg_y + svg_h
    assert boxes["table"][1] > svg_y + svg_h  # the differences under the timeline, not over it

    def colour_at(x: float, y: float) -> QColor:
        return image.pixelColor(round(x), round(y))


    removed, added = colour_at(a_x + a_w / 2, a_y + a_h / 2), colour_at(b_x + b_w / 2, b_y + b_h / 2)
    assert near_colour(removed, ONLY_A) and near_colour(added, ONLY_B)
    lane = colour_at(a_x + 40, a_y + a_h / 2)  # the lane's background beside the mark
    assert contrast(removed, lane) >= 3.0 and contrast(added, lane) >= 3.0  # WCAG's 3:1 for a mark

"""The supervisor's after-shift review: shifts and filters, the terminal view of a flag, CSV, the
HTML report, and the store as the review commands open it.

The report is one self-contained HTML page: inline CSS and SVG, no script, no network, no external
asset, and a Content-Security-Policy that would stop a script even if one slipped in. Every piece of
text from a call goes through `html.escape`, without its control and bidirectional formatting
characters (`text.printable`), and a word of any length wraps (`overflow-wrap:anywhere`)
rather than widening the page.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from agent_assist.config import load as load_config
from agent_assist.errors import AgentAssistError
from agent_assist.sinks import clean, format_clock
from agent_assist.store import (
    SEVERITIES,
    CallRecord,
    Filters,
    FlagRecord,
    Store,
    open_store,
    utc_text,
)
from agent_assist.text import printable

_SHIFT = re.compile(
    r"^(?P<start>\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2})?)(?:/(?P<hours>\d+(?:\.\d+)?)h)?$", re.I
)


def parse_moment(text: str) -> datetime:
    """A local date or date-time ("2026-11-23", "2026-11-23 08:00")."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AgentAssistError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or 'YYYY-MM-DD HH:MM')"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def shift_range(spec: str, now: datetime | None = None) -> tuple[str, str, str]:
    """(since, until, label) in UTC for a shift: `today`, `yesterday`, a day (`2026-11-23`), or a
    start and length (`2026-11-23T22:00/8h`, a night shift), all in local time."""
    now = (now or datetime.now()).astimezone()
    spec = spec.strip().lower()
    if spec in ("today", "yesterday"):
        day = now.date() - timedelta(days=1 if spec == "yesterday" else 0)
        return _day(day, spec)
    match = _SHIFT.match(spec)
    if not match:
        raise AgentAssistError(
            f"unknown shift {spec!r}: use today, yesterday, YYYY-MM-DD or YYYY-MM-DDTHH:MM/8h"
        )
    start = parse_moment(match["start"].replace(" ", "T"))
    if match["hours"] is None and "t" not in match["start"].lower() and " " not in match["start"]:
        return _day(start.date(), start.date().isoformat())
    end = start + timedelta(hours=float(match["hours"] or 8))
    return utc_text(start), utc_text(end), f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"


def _day(day: date, label: str) -> tuple[str, str, str]:
    start = datetime(day.year, day.month, day.day).astimezone()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time()).astimezone()
    shown = f"{label} ({day.isoformat()})" if label != day.isoformat() else label
    return utc_text(start), utc_text(end), shown


def local_time(iso_utc: str | None) -> str:
    if not iso_utc:
        return ""
    moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone()
    return f"{moment:%Y-%m-%d %H:%M}"


def flag_filters(shift: str | None = None, since: str | None = None, until: str | None = None,
                 agents: tuple[str, ...] = (), teams: tuple[str, ...] = (), kinds: tuple[str, ...] = (),
                 severities: tuple[str, ...] = (), min_severity: str | None = None,
                 reviewed: bool | None = None) -> tuple[Filters, str]:
    """The store's filters for the flags a supervisor asked for, and a label saying which they are
    ("shift today (2026-11-23)", "from 2026-11-01 until 2026-11-08", "all flags"). `since` and
    `until` are local times and win over the shift's own bounds."""
    label = "all flags"
    lo = hi = None
    if shift:
        lo, hi, label = shift_range(shift)
        label = f"shift {label}"
    if since:
        lo = utc_text(parse_moment(since))
        label = f"from {since}"
    if until:
        hi = utc_text(parse_moment(until))
        label += f" until {until}"
    wanted = set(severities)
    if min_severity:
        wanted |= set(SEVERITIES[SEVERITIES.index(min_severity):])
    return Filters(since=lo, until=hi, agents=agents, teams=teams, kinds=kinds,
                   severities=tuple(s for s in SEVERITIES if s in wanted), reviewed=reviewed), label


# ------------------------------------------------------------------------------------------------
# The terminal


def list_lines(flags: Sequence[FlagRecord]) -> list[str]:
    if not flags:
        return ["no flags match"]
    lines = [
        f"{'id':>5}  {'severity':<8} {'kind':<10} {'call start':<16} {'at':>7}  {'agent':<10} "
        f"{'team':<8} {'rev':<3}  reason"
    ]
    for f in flags:
        lines.append(
            f"{f.id:>5}  {f.severity:<8} {clean(f.kind)[:10]:<10} {local_time(f.call_started_at):<16} "
            f"{format_clock(f.t):>7}  {clean(f.agent)[:10]:<10} {clean(f.team)[:8]:<8} "
            f"{'yes' if f.reviewed else '-':<3}  {clean(_reason(f))[:60]}"
        )
    return lines


def _reason(f: FlagRecord) -> str:
    if f.raised_by == "agent":
        return "raised by the agent" + (f": {f.agent_note}" if f.agent_note else "")
    return f.reason


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(points: Iterable[tuple[float, float]], length: float, width: int = 60) -> str:
    """The highest value in each of `width` slices of the call; blank where no turn was scored."""
    cells: list[float | None] = [None] * width
    for t, value in points:
        i = _slot(t, length, width)
        cells[i] = value if cells[i] is None else max(cells[i] or 0.0, value)
    return "".join(" " if v is None else _BARS[_slot(v, 1.0, 8)] for v in cells)


def _slot(t: float, length: float, width: int) -> int:
    """Which of `width` slices of 0..length `t` falls in; the first or last when it is outside
    (a store may hold any finite number: t / length can overflow to infinity)."""
    return min(width - 1, int(min(max(t / max(length, 1e-6), 0.0), 1.0) * width))


def show_lines(flag: FlagRecord, call: CallRecord) -> list[str]:
    length = call.length_s or max([flag.t, *[s[0] for s in call.scores]], default=1.0)
    state = (
        f"reviewed by {clean(flag.reviewed_by or '?')} at {local_time(flag.reviewed_at)}"
        if flag.reviewed
        else "not reviewed"
    )
    lines = [
        f"flag {flag.id}: {flag.severity.upper()} {clean(flag.kind)} ({state})",
        f"call {clean(call.call_id)} · agent {clean(call.agent) or '?'} · team {clean(call.team) or '-'} · "
        f"started {local_time(call.started_at)} · {clean(call.source)}",
        f"at {format_clock(flag.t)} of {format_clock(length)}"
        + (f" · ended: {call.end_reason}" if call.end_reason else " · the call did not end cleanly"),
        f"reason: {clean(_reason(flag))}",
        "",
        f"timeline (0 to {format_clock(length)}):",
        f"  distress   |{sparkline(((t, d) for t, d, _, _ in call.scores), length)}|",
        f"  escalation |{sparkline(((t, e) for t, _, e, _ in call.scores), length)}|",
        f"  crisis     |{sparkline(((t, c) for t, _, _, c in call.scores), length)}|",
        f"  flag       |{_marks([flag.t], length)}|",
    ]
    rated = {(f["rule"], round(f["prompt_t"], 1)): f["rating"] for f in call.feedback}
    if call.prompts:
        lines += ["", "prompts shown (and the agent's word on them):"]
        for p in call.prompts:
            rating = rated.get((p["rule"], round(p["t"], 1)))
            withdrawn = (f"  (withdrawn at {format_clock(p['retracted_t'])}: the final transcript did not "
                         "support it)") if p.get("retracted_t") is not None else ""
            lines.append(
                f"  [{format_clock(p['t'])}] {clean(p['rule'])}: {clean(p['text'])}"
                + (f"  ({rating.replace('_', ' ')})" if rating else "") + withdrawn
            )
    lines += [
        "",
        "excerpt (redacted):" if flag.excerpt else f"excerpt: none kept (transcript: {call.transcript_mode})",
    ]
    for turn in flag.excerpt:
        lines.append(
            f"  [{format_clock(float(turn.get('start', 0)))}] {clean(turn.get('speaker', '')):>8}: "
            f"{clean(turn.get('text', ''))}" + (" … (still speaking)" if turn.get("partial") else "")
        )
    if flag.notes:
        lines += ["", "notes:"]
        for n in flag.notes:
            tag = " [agent wellbeing]" if n["wellbeing"] else ""
            lines.append(f"  {local_time(n['created_at'])} {clean(n['author'])}{tag}: {clean(n['text'])}")
    return lines


def _marks(times: Iterable[float], length: float, width: int = 60) -> str:
    cells = [" "] * width
    for t in times:
        cells[_slot(t, length, width)] = "^"
    return "".join(cells)


# ------------------------------------------------------------------------------------------------
# CSV


CSV_COLUMNS = (
    "id",
    "severity",
    "kind",
    "call_id",
    "agent",
    "team",
    "call_started_at",
    "t",
    "reason",
    "rule",
    "raised_by",
    "agent_note",
    "reviewed_at",
    "reviewed_by",
    "excerpt",
    "notes",
)


def _cell(value: object) -> str:
    """A spreadsheet must not run text from a call as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(flags: Sequence[FlagRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for f in flags:
        excerpt = " | ".join(f"{t.get('speaker', '')}: {t.get('text', '')}" for t in f.excerpt)
        notes = " | ".join(f"{n['author']}: {n['text']}" for n in f.notes)
        writer.writerow(
            [
                _cell(v)
                for v in (
                    f.id,
                    f.severity,
                    f.kind,
                    f.call_id,
                    f.agent,
                    f.team,
                    f.call_started_at,
                    f"{f.t:.1f}",
                    f.reason,
                    f.rule,
                    f.raised_by,
                    f.agent_note,
                    f.reviewed_at,
                    f.reviewed_by,
                    excerpt,
                    notes,
                )
            ]
        )
    return out.getvalue()


# ------------------------------------------------------------------------------------------------
# The HTML report

SEVERITY_COLOURS = {"critical": "#7a1020", "high": "#b3261e", "medium": "#b26a00", "low": "#56606b"}
DISTRESS_COLOUR = "#c2185b"
ESCALATION_COLOUR = "#1565c0"
PROMPT_COLOUR = "#2e7d32"

_CSS = """
body{font:15px/1.45 system-ui,'DejaVu Sans',sans-serif;color:#1b1f24;margin:24px auto;max-width:1100px;
padding:0 16px;background:#fff;overflow-wrap:anywhere}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 6px;border-top:1px solid #d0d7de;
padding-top:16px}h3{font-size:16px;margin:16px 0 4px}
.meta{color:#56606b;margin:0 0 12px}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{text-align:left;padding:6px 8px;
border-bottom:1px solid #d0d7de;vertical-align:top}th{background:#eef1f4;font-weight:600}
.sev{font-weight:700;color:#fff;border-radius:4px;padding:1px 6px;font-size:13px}
.summary span{display:inline-block;margin-right:16px}
.excerpt{background:#f6f8fa;border-left:3px solid #d0d7de;padding:6px 10px;margin:6px 0;white-space:pre-wrap}
.who{color:#56606b;font-weight:600}
.legend span{margin-right:16px}.key{display:inline-block;width:14px;height:4px;vertical-align:middle;
margin-right:4px}
svg{background:#fbfcfd;border:1px solid #d0d7de;max-width:100%}
.wellbeing{color:#5b2c83;font-weight:600}
.flags td:nth-child(6),.flags td:nth-child(7){white-space:nowrap}
"""


def _e(value: object) -> str:
    """Text for the page: escaped for HTML, and without control or bidirectional formatting
    characters (an override left open reverses the rest of the page, a control character
    is not text)."""
    return html.escape(printable(str(value)), quote=True)


def _badge(severity: str) -> str:
    return (
        f'<span class="sev" style="background:{SEVERITY_COLOURS.get(severity, "#56606b")}">'
        f"{_e(severity)}</span>"
    )


def report_html(
    flags: Sequence[FlagRecord], calls: dict[str, CallRecord], title: str, subtitle: str, generated_at: str
) -> str:
    counts = {s: sum(1 for f in flags if f.severity == s) for s in reversed(SEVERITIES)}
    open_count = sum(1 for f in flags if not f.reviewed)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(subtitle)} · generated {_e(generated_at)} · transcript text is redacted</p>',
        '<p class="summary">'
        + "".join(f"<span>{_badge(s)} {n}</span>" for s, n in counts.items())
        + f"<span>{open_count} not reviewed</span></p>",
        '<h2 id="flags">Flags, most severe first</h2>',
    ]
    if not flags:
        parts.append("<p>No flags in this shift.</p>")
    else:
        parts.append(
            '<table class="flags"><thead><tr><th>#</th><th>Severity</th><th>Kind</th><th>Agent</th>'
            "<th>Team</th><th>Call start</th><th>At</th><th>Reason</th><th>Reviewed</th></tr></thead>"
            "<tbody>"
        )
        for f in flags:
            reviewed = (
                f"{_e(f.reviewed_by or '')} {_e(local_time(f.reviewed_at))}" if f.reviewed else "not yet"
            )
            parts.append(
                f'<tr><td><a href="#call-{_e(f.call_id)}">{f.id}</a></td><td>{_badge(f.severity)}</td>'
                f"<td>{_e(f.kind)}</td><td>{_e(f.agent)}</td><td>{_e(f.team)}</td>"
                f"<td>{_e(local_time(f.call_started_at))}</td><td>{_e(format_clock(f.t))}</td>"
                f"<td>{_e(_reason(f))}</td><td>{reviewed}</td></tr>"
            )
        parts.append("</tbody></table>")
    by_call: dict[str, list[FlagRecord]] = {}
    for f in flags:
        by_call.setdefault(f.call_id, []).append(f)
    for call_id, call_flags in by_call.items():
        call = calls[call_id]
        parts.append(_call_section(call, call_flags))
    parts.append("</body></html>")
    return "\n".join(parts)


def _call_section(call: CallRecord, flags: list[FlagRecord]) -> str:
    length = call.length_s or max([f.t for f in flags] + [s[0] for s in call.scores] + [1.0])
    out = [
        f'<h2 id="call-{_e(call.call_id)}">Call {_e(call.call_id)}</h2>',
        f'<p class="meta">agent {_e(call.agent or "?")} · team {_e(call.team or "-")} · started '
        f"{_e(local_time(call.started_at))} · {_e(format_clock(length))} long · {_e(call.source)}</p>",
        '<p class="legend">'
        f'<span><i class="key" style="background:{DISTRESS_COLOUR}"></i>distress</span>'
        f'<span><i class="key" style="background:{ESCALATION_COLOUR}"></i>escalation</span>'
        f'<span><i class="key" style="background:{PROMPT_COLOUR}"></i>prompt shown</span>'
        '<span><i class="key" style="background:#7a1020"></i>flag</span></p>',
        timeline_svg(call, flags, length),
    ]
    rated = {(f["rule"], round(f["prompt_t"], 1)): f["rating"] for f in call.feedback}
    if call.prompts:
        out.append(
            "<h3>Prompts shown and the agent's feedback</h3><table><thead><tr><th>At</th><th>Rule</th>"
            "<th>Prompt</th><th>Agent said</th></tr></thead><tbody>"
        )
        for p in call.prompts:
            rating = rated.get((p["rule"], round(p["t"], 1)), "")
            if p.get("retracted_t") is not None:
                rating = f"withdrawn at {format_clock(p['retracted_t'])}" + (f"; {rating}" if rating else "")
            out.append(
                f"<tr><td>{_e(format_clock(p['t']))}</td><td>{_e(p['rule'])}</td><td>{_e(p['text'])}</td>"
                f"<td>{_e(rating.replace('_', ' '))}</td></tr>"
            )
        out.append("</tbody></table>")
    for f in flags:
        out.append(f"<h3>Flag {f.id}: {_badge(f.severity)} {_e(f.kind)} at {_e(format_clock(f.t))}</h3>")
        out.append(f"<p>{_e(_reason(f))}</p>")
        if f.excerpt:
            turns = "\n".join(
                f'<span class="who">{_e(t.get("speaker", ""))}:</span> {_e(t.get("text", ""))}'
                + (" … <em>(still speaking)</em>" if t.get("partial") else "")
                for t in f.excerpt
            )
            out.append(f'<div class="excerpt">{turns}</div>')
        for n in f.notes:
            tag = ' <span class="wellbeing">agent wellbeing</span>' if n["wellbeing"] else ""
            out.append(
                f"<p>Note by {_e(n['author'])} ({_e(local_time(n['created_at']))}){tag}: {_e(n['text'])}</p>"
            )
    return "\n".join(out)


def timeline_svg(
    call: CallRecord, flags: Sequence[FlagRecord], length: float, width: int = 1000, height: int = 200
) -> str:
    """Distress and escalation over the call (0 to 1), prompts as green ticks along the top, flags as
    vertical lines in their severity's colour."""
    left, right, top, bottom = 44, 12, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + plot_w * min(max(t / max(length, 1e-6), 0.0), 1.0)

    def y(v: float) -> float:
        return top + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    out = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="score timeline of call {_e(call.call_id)}">'
    ]
    for v in (0.0, 0.5, 1.0):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#d0d7de"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#56606b">{v:.1f}</text>'
        )
    # about ten ticks, at round times; for a call longer than ten hours (or a length no call has),
    # ten ticks all the same
    rounded = (5, 10, 15, 30, 60, 120, 300, 600, 1200, 3600)
    step = next((s for s in rounded if length / s <= 10), length / 10)
    for tick in range(int(min(length / step, 10.0)) + 1):
        t = tick * step
        out.append(
            f'<text x="{x(t):.1f}" y="{height - 8}" font-size="11" text-anchor="middle" '
            f'fill="#56606b">{_e(format_clock(t)[:-2])}</text>'
        )
    for f in flags:
        colour = SEVERITY_COLOURS.get(f.severity, "#56606b")
        out.append(
            f'<line x1="{x(f.t):.1f}" x2="{x(f.t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="{colour}" '
            f'stroke-width="3" stroke-dasharray="6 3"><title>flag {f.id}: {_e(f.kind)} '
            f"{_e(f.severity)}</title></line>"
        )
    for p in call.prompts:
        out.append(
            f'<path d="M{x(p["t"]) - 6:.1f},4 L{x(p["t"]) + 6:.1f},4 L{x(p["t"]):.1f},16 Z" '
            f'fill="{PROMPT_COLOUR}"><title>{_e(format_clock(p["t"]))} {_e(p["rule"])}</title></path>'
        )
    for index, colour in ((1, DISTRESS_COLOUR), (2, ESCALATION_COLOUR)):
        points = " ".join(f"{x(s[0]):.1f},{y(s[index]):.1f}" for s in call.scores)
        if points:
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="3" '
                'stroke-linejoin="round"/>'
            )
            for s in call.scores:
                out.append(f'<circle cx="{x(s[0]):.1f}" cy="{y(s[index]):.1f}" r="3.5" fill="{colour}"/>')
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# The store, as the review commands open, read and fill it

REPORT_TITLE = "agent-assist: flags for review"


@contextlib.contextmanager
def opened_store(url: str | None) -> Iterator[Store]:
    """The store a review reads: `url`, else the configuration's store.url, else the user's own
    SQLite store in their data directory. Closed when the review is done with it."""
    config = load_config()
    store = open_store(url or config.store_url, config.store_timeout_s)
    try:
        yield store
    finally:
        store.close()


def shift_report(store: Store, filters: Filters, label: str) -> tuple[str, int, int]:
    """The HTML report of the flags `filters` choose, with the calls they came from: (the page, how
    many flags, how many calls)."""
    flags = store.flags(filters)
    calls = {f.call_id: store.call(f.call_id) for f in flags}
    page = report_html(flags, calls, title=REPORT_TITLE, subtitle=f"{label} · {store.where}",
                       generated_at=utc_text())
    return page, len(flags), len(calls)


def save(path: Path, text: str) -> None:
    """Write an export or a report that only its owner can read (it holds what calls said, even if
    redacted); a failure is one line naming the file.

    Written to a new file beside `path` (created 0600) and renamed over it: a file already there
    does not keep its looser mode, a reader never sees half a page, and a symbolic link is never
    followed to overwrite what it points at (one at `path` is refused; one put there after the
    check is replaced, not followed)."""
    shown = printable(str(path))
    if path.is_symlink():
        raise AgentAssistError(f"{shown} is a symbolic link: not written (give the file itself)")
    if path.exists() and not path.is_file():
        raise AgentAssistError(f"{shown} is not a regular file: not written")
    try:
        fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise
    except OSError as exc:
        raise AgentAssistError(f"cannot write {shown}: {exc.strerror or exc}") from None

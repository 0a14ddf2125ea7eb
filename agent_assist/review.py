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
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from agent_assist import crisis_lines
from agent_assist.config import Config
from agent_assist.config import load as load_config
from agent_assist.crisis_lines import CrisisLines
from agent_assist.errors import AgentAssistError
from agent_assist.events import FlagKind
from agent_assist.sinks import clean, format_clock
from agent_assist.store import (
    SEVERITIES,
    SEVERITY_RANK,
    CallRecord,
    Filters,
    FlagRecord,
    Outcome,
    Store,
    open_store,
    utc_text,
)
from agent_assist.text import html_text as _e
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
# The flags as a supervisor reads them: by call, and the agents' check-ins apart


@dataclass(frozen=True)
class CallFlags:
    """One call's flags in the review, its worst first, then by time."""

    call_id: str
    agent: str
    team: str
    started_at: str
    flags: tuple[FlagRecord, ...]

    @property
    def worst(self) -> FlagRecord:
        return self.flags[0]

    @property
    def not_reviewed(self) -> int:
        return sum(not f.reviewed for f in self.flags)


def _rank(f: FlagRecord) -> int:
    return SEVERITY_RANK.get(f.severity, 0)  # type: ignore[call-overload]


def by_call(flags: Sequence[FlagRecord]) -> tuple[list[CallFlags], list[FlagRecord]]:
    """The flags grouped by call, and the rules' check-ins with agents (`FlagRecord.check_in`)
    apart, so that a shift's routine check-ins do not bury its crises.

    Calls come in the order of their worst flag: the most severe, then a call with something not
    yet reviewed, then the newest call. Check-ins come not yet reviewed first, then those a reviewer
    asked to follow up, then the newest."""
    calls: dict[str, list[FlagRecord]] = {}
    check_ins = []
    for f in flags:
        if f.check_in:
            check_ins.append(f)
        else:
            calls.setdefault(f.call_id, []).append(f)
    groups = []
    for call_id, mine in calls.items():
        mine.sort(key=lambda f: (-_rank(f), f.t, f.id))
        first = mine[0]
        groups.append(CallFlags(call_id, first.agent, first.team, first.call_started_at, tuple(mine)))
    groups.sort(key=lambda g: g.started_at, reverse=True)  # stable: the newest first among equals
    groups.sort(key=lambda g: (-_rank(g.worst), g.not_reviewed == 0))
    check_ins.sort(key=lambda f: (f.call_started_at, f.t), reverse=True)
    check_ins.sort(key=lambda f: (f.reviewed, not f.follow_up))
    return groups, check_ins


def review_order(flags: Sequence[FlagRecord]) -> list[FlagRecord]:
    """The flags in the order the list shows them: call by call, then the check-ins."""
    groups, check_ins = by_call(flags)
    return [f for g in groups for f in g.flags] + check_ins


def _review_words(f: FlagRecord) -> str:
    """Where a flag's review stands, in a few words: "-" (not yet), "reviewed", or its outcomes."""
    words = {Outcome.FOLLOW_UP_WELLBEING: "follow up"}
    if f.outcomes:
        return ", ".join(words.get(o, o.words) for o in f.outcomes)
    return "reviewed" if f.reviewed else "-"


# ------------------------------------------------------------------------------------------------
# The terminal

#: A reason longer than this is cut in the list, and marked so (`review show` or `--full`).
REASON_WIDTH = 60
_CUT = "…"


def _cut(text: str, width: int | None) -> tuple[str, bool]:
    if width is None or len(text) <= width:
        return text, False
    return text[: width - 1] + _CUT, True


def list_lines(flags: Sequence[FlagRecord], full: bool = False) -> list[str]:
    """The flags call by call (the call's worst first), then the agents' check-ins. A reason
    longer than REASON_WIDTH is cut and ends in "…", unless `full`; a last line then says where
    to read it whole."""
    if not flags:
        return ["no flags match"]
    groups, check_ins = by_call(flags)
    width = None if full else REASON_WIDTH
    cut_any = False

    def row(f: FlagRecord, middle: str) -> str:
        nonlocal cut_any
        reason, cut = _cut(clean(_reason(f)), width)
        cut_any |= cut
        return f"{f.id:>5}  {middle}{format_clock(f.t):>7}  {_review_words(f):<23}  {reason}"

    lines = []
    if groups:
        lines.append(f"{'id':>5}  {'severity':<8} {'kind':<10} {'at':>7}  {'review':<23}  reason")
    for g in groups:
        lines.append(
            f"call {clean(g.call_id)} · agent {clean(g.agent) or '?'} · team {clean(g.team) or '-'} · "
            f"started {local_time(g.started_at)} · {len(g.flags)} flag(s), {g.not_reviewed} not reviewed"
        )
        for f in g.flags:
            lines.append(row(f, f"{f.severity:<8} {clean(f.kind)[:10]:<10} "))
    if check_ins:
        if lines:
            lines.append("")
        lines += [
            f"agent check-ins (wellbeing): {len(check_ins)}, {sum(not f.reviewed for f in check_ins)} not "
            "reviewed · care for the agent after a hard call, not a rating",
            f"{'id':>5}  {'agent':<10} {'team':<8} {'call':<12} {'call start':<16} {'at':>7}  "
            f"{'review':<23}  reason",
        ]
        for f in check_ins:
            lines.append(row(f, f"{clean(f.agent)[:10]:<10} {clean(f.team)[:8]:<8} "
                                f"{clean(f.call_id)[:12]:<12} {local_time(f.call_started_at):<16} "))
    if cut_any:
        lines += ["", f"reasons ending in {_CUT} are cut: `agent-assist review show ID` or "
                      "`review list --full` shows them whole"]
    return lines


def seen_note(prompt: dict[str, Any]) -> str:
    """What the agent's overlay did with a stored prompt, in words: only a prompt with a `shown`
    time was on the agent's screen (a supervisor must not coach an agent on a prompt never seen)."""
    shown, queued, dismissed = (prompt.get(k) for k in ("shown_t", "queued_t", "dismissed_t"))
    if shown is not None:
        note = f"shown at {format_clock(shown)}" + (f" after waiting from {format_clock(queued)}"
                                                     if queued is not None else "")
        return note + (f", dismissed at {format_clock(dismissed)}" if dismissed is not None else "")
    if queued is not None:
        return f"queued at {format_clock(queued)} behind other prompts, never shown"
    return "not shown: no overlay was open"


def _by_seen(call: CallRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The call's prompts: those the agent was shown, and those they were not."""
    shown = [p for p in call.prompts if p.get("shown_t") is not None]
    return shown, [p for p in call.prompts if p.get("shown_t") is None]


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


def is_crisis(flag: FlagRecord) -> bool:
    return flag.kind == FlagKind.CRISIS


def crisis_words(flag: FlagRecord, lines: CrisisLines,
                 call_flags: Sequence[FlagRecord] = ()) -> tuple[str, str]:
    """A crisis flag's heading ("CRISIS · self-harm") and the support line its rule offered
    ("support line (region AU): Lifeline 13 11 14 · emergency 000").

    A rule for any crisis (the warm transfer) offered the line of the call's earlier crisis card
    (`rules.engine.crisis_line`), so with the call's flags its heading and line are that crisis's."""
    rule = flag.rule
    if rule in lines.any_crisis:
        earlier = [f for f in call_flags if is_crisis(f) and f.call_id == flag.call_id and f.id != flag.id
                   and f.t <= flag.t
                   and lines.situation(f.rule) and lines.line(f.rule)[1]]
        if earlier:
            rule = max(earlier, key=lambda f: f.t).rule
    situation = lines.situation(rule)
    line, own = lines.line(rule)
    where = f"region {lines.region}" if lines.region != "default" else "the default pack"
    offered = (f"support line ({where}): {line}" if own
               else f"support line: {line} ({where}'s crisis line; the packs hold no line for "
                    f"rule {flag.rule or '(none)'})" if line
               else "support line: none in the packs (set one in the region's pack)")
    return "CRISIS" + (f" · {situation}" if situation else ""), offered


def show_lines(flag: FlagRecord, call: CallRecord, lines_of: CrisisLines | None = None,
               call_flags: Sequence[FlagRecord] = ()) -> list[str]:
    """`review show`: one flag, whole (`call_flags`: the call's other flags, for a crisis rule that
    offered the line of the call's earlier crisis card)."""
    length = call.length_s or max([flag.t, *[s[0] for s in call.scores]], default=1.0)
    state = (
        f"reviewed by {clean(flag.reviewed_by or '?')} at {local_time(flag.reviewed_at)}"
        if flag.reviewed
        else "not reviewed"
    )
    if flag.outcomes:
        state += "; " + ", ".join(o.words for o in flag.outcomes)
    crisis: list[str] = []
    if is_crisis(flag):
        heading, offered = crisis_words(flag, lines_of or crisis_lines.load(Config()), call_flags)
        crisis = [f"{heading}: {clean(offered)}"]
    lines = [
        f"flag {flag.id}: {flag.severity.upper()} {clean(flag.kind)} ({state})",
        *crisis,
        *(["agent check-in: a rule's check-in with the agent after a hard call"] if flag.check_in else []),
        f"call {clean(call.call_id)} · agent {clean(call.agent) or '?'} · team {clean(call.team) or '-'} · "
        f"started {local_time(call.started_at)} · {clean(call.source)}"
        + (f" · platform conversation {clean(call.conversation_id)}" if call.conversation_id else ""),
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
    for heading, prompts in zip(("prompts shown to the agent (and their word on them):",
                                 "prompts the agent was not shown:"), _by_seen(call), strict=True):
        if prompts:
            lines += ["", heading]
        for p in prompts:
            rating = rated.get((p["rule"], round(p["t"], 1)))
            withdrawn = (f"  (withdrawn at {format_clock(p['retracted_t'])}: the final transcript did not "
                         "support it)") if p.get("retracted_t") is not None else ""
            lines.append(
                f"  [{format_clock(p['t'])}] {clean(p['rule'])}: {clean(p['text'])}"
                + (f"  ({rating.replace('_', ' ')})" if rating else "") + withdrawn + f"  [{seen_note(p)}]"
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
    lines += ["", "review (who, when, what):" if flag.audit else "review: nobody has reviewed it yet"]
    for a in flag.audit:
        lines.append(f"  {local_time(a.at)} {clean(a.reviewer) or '?'}: {a.action}")
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
    "check_in",
    "outcomes",
    "reviews",
)


def _cell(value: object) -> str:
    """A spreadsheet must not run text from a call as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(flags: Sequence[FlagRecord]) -> str:
    """The flags in the list's order (`review_order`), one row each: its notes (each with its time
    and author, "[agent wellbeing]" where it is one) and its review (outcomes, and the audit: who
    did what when) in the last columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for f in review_order(flags):
        excerpt = " | ".join(f"{t.get('speaker', '')}: {t.get('text', '')}" for t in f.excerpt)
        notes = " | ".join(
            f"{n['created_at']} {n['author']}{' [agent wellbeing]' if n['wellbeing'] else ''}: {n['text']}"
            for n in f.notes
        )
        reviews = " | ".join(f"{a.at} {a.reviewer}: {a.action}" for a in f.audit)
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
                    "yes" if f.check_in else "",
                    ", ".join(o.words for o in f.outcomes),
                    reviews,
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
#: A crisis flag's mark: the boldest thing on the page. White text on it is 10.9:1, and it is
#: 10.6:1 against the plot's background (WCAG asks 4.5:1 and 3:1); tests/test_review_screens.py
#: measures both from a screenshot.
CRISIS_COLOUR = "#7a1020"
CRISIS_SCORE_COLOUR = "#6a1b9a"  # the crisis score's line, apart from distress's pink
#: A reason longer than this is folded in the report's table (a <details> opens it whole).
REPORT_REASON_WIDTH = 140

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
.flags td:nth-child(-n+4),.check-ins td:nth-child(-n+1),.check-ins td:nth-child(5),th{white-space:nowrap}
td.review{min-width:11em}
.flags tr.call-head th{background:#f6f8fa;border-top:2px solid #8c959f;font-weight:600}
.crisis-tag{background:#7a1020;color:#fff;font-weight:700;border-radius:4px;padding:1px 6px;
letter-spacing:.04em}
.crisis-banner{border:3px solid #7a1020;background:#fdf0f2;color:#1b1f24;padding:10px 14px;margin:12px 0;
border-radius:6px}
.flags tr.crisis td{background:#fdf0f2}.flags tr.crisis td:first-child{box-shadow:inset 6px 0 0 #7a1020}
.flag.crisis{border-left:6px solid #7a1020;background:#fdf0f2;padding:4px 12px;margin:12px 0}
.support{font-size:17px;font-weight:700;color:#7a1020}
.legend span.crisis-tag{margin-right:4px}
details summary{cursor:pointer}
.audit{color:#1b1f24;margin:4px 0 8px;padding-left:22px}.audit li{margin:2px 0}
.outcome{font-weight:600}
"""


def page_head(title: str, css: str, subtitle: str) -> list[str]:
    """The top of a self-contained page (the report, the packs compared): inline CSS, no script, no
    network, and a Content-Security-Policy that would stop a script even if one slipped in."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{css}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(subtitle)}</p>',
    ]


def _badge(severity: str) -> str:
    return (
        f'<span class="sev" style="background:{SEVERITY_COLOURS.get(severity, "#56606b")}">'
        f"{_e(severity)}</span>"
    )


def report_html(
    flags: Sequence[FlagRecord], calls: dict[str, CallRecord], title: str, subtitle: str, generated_at: str,
    lines: CrisisLines | None = None, views: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """The page: a crisis banner when there is a crisis, the flags call by call (the call's worst
    first, as `review list`), the agents' check-ins in their own section, then each call's timeline,
    prompts, excerpts, notes and review. `lines` names the support lines (default: the default
    configuration's, region AU). `views`: by call, who was shown its words on the supervisors'
    floor and when (`store.floor.views`), listed under the call."""
    lines = lines or crisis_lines.load(Config())
    groups, check_ins = by_call(flags)
    counts = {s: sum(1 for f in flags if f.severity == s) for s in reversed(SEVERITIES)}
    open_count = sum(1 for f in flags if not f.reviewed)
    follow_ups = sum(1 for f in flags if f.follow_up)
    parts = [
        *page_head(title, _CSS, f"{subtitle} · generated {generated_at} · transcript text is redacted"),
        '<p class="summary">'
        + "".join(f"<span>{_badge(s)} {n}</span>" for s, n in counts.items())
        + f"<span>{open_count} not reviewed</span>"
        + (f'<span><a href="#wellbeing">{len(check_ins)} agent check-in(s)</a></span>' if check_ins else "")
        + (f"<span>{follow_ups} wellbeing follow-up(s) asked</span>" if follow_ups else "")
        + "</p>",
    ]
    crises = [f for g in groups for f in g.flags if is_crisis(f)]
    if crises:
        parts.append(
            f'<div class="crisis-banner" id="crisis"><span class="crisis-tag">CRISIS</span> '
            f"{len(crises)} crisis flag(s) in this report: "
            + "; ".join(f'<a href="#flag-{f.id}">flag {f.id}</a> '
                        f"({_e(crisis_words(f, lines, crises)[0].lower())}, "
                        f"call {_e(f.call_id)}, agent {_e(f.agent or '?')})" for f in crises)
            + (f'<br><span class="meta">{_e(lines.note)}</span>' if lines.note else "")
            + "</div>"
        )
    parts.append('<h2 id="flags">Flags by call, the worst first</h2>')
    if not groups:
        parts.append("<p>No flags in this shift.</p>" if not check_ins else
                     "<p>No flags but the agents' check-ins (below).</p>")
    else:
        parts.append(
            '<table class="flags"><thead><tr><th>#</th><th>Severity</th><th>Kind</th><th>At</th>'
            "<th>Reason</th><th>Review</th></tr></thead>"
        )
        for g in groups:
            parts.append(
                f'<tbody class="call" data-call="{_e(g.call_id)}"><tr class="call-head"><th colspan="6">'
                f'Call <a href="#call-{_e(g.call_id)}">{_e(g.call_id)}</a> · agent {_e(g.agent or "?")} · '
                f"team {_e(g.team or '-')} · started {_e(local_time(g.started_at))} · "
                f"{len(g.flags)} flag(s), {g.not_reviewed} not reviewed</th></tr>"
            )
            for f in g.flags:
                kind = ('<span class="crisis-tag">CRISIS</span>' if is_crisis(f) else _e(f.kind))
                parts.append(
                    f'<tr class="flag{" crisis" if is_crisis(f) else ""}" data-flag="{f.id}">'
                    f'<td><a href="#flag-{f.id}">{f.id}</a></td><td>{_badge(f.severity)}</td>'
                    f"<td>{kind}</td><td>{_e(format_clock(f.t))}</td><td>{_folded(_reason(f))}</td>"
                    f'<td class="review">{_review_cell(f)}</td></tr>'
                )
            parts.append("</tbody>")
        parts.append("</table>")
    if check_ins:
        parts += [
            '<h2 id="wellbeing">Agent check-ins (wellbeing)</h2>',
            '<p class="meta">After a hard call a rule asks the agent to take a moment. These are for '
            "checking in with them: care for the agent, not a rating of their work.</p>",
            '<table class="check-ins"><thead><tr><th>#</th><th>Agent</th><th>Team</th><th>Call</th>'
            "<th>At</th><th>Reason</th><th>Review</th></tr></thead><tbody>",
        ]
        for f in check_ins:
            parts.append(
                f'<tr data-flag="{f.id}"><td><a href="#flag-{f.id}">{f.id}</a></td><td>{_e(f.agent)}</td>'
                f'<td>{_e(f.team)}</td><td><a href="#call-{_e(f.call_id)}">{_e(f.call_id)}</a> '
                f"({_e(local_time(f.call_started_at))})</td><td>{_e(format_clock(f.t))}</td>"
                f'<td>{_folded(_reason(f))}</td><td class="review">{_review_cell(f)}</td></tr>'
            )
        parts.append("</tbody></table>")
    shown = list(dict.fromkeys([*(g.call_id for g in groups), *(f.call_id for f in check_ins)]))
    ordered: dict[str, list[FlagRecord]] = {}
    for f in review_order(flags):
        ordered.setdefault(f.call_id, []).append(f)
    for call_id in shown:
        parts.append(_call_section(calls[call_id], ordered[call_id], lines, (views or {}).get(call_id, ())))
    parts.append("</body></html>")
    return "\n".join(parts)


def _folded(text: str) -> str:
    """A reason in the table: whole when short, else its start with a <details> that opens it
    whole (no script: the browser opens it)."""
    if len(text) <= REPORT_REASON_WIDTH:
        return _e(text)
    return (f"<details><summary>{_e(text[: REPORT_REASON_WIDTH - 1])}{_CUT}</summary>"
            f"{_e(text)}</details>")


def _review_cell(f: FlagRecord) -> str:
    if not f.reviewed:
        return "not yet"
    words = ", ".join(o.words for o in f.outcomes)
    return (f'<span class="outcome">{_e(words)}</span><br>' if words else "") + (
        f"{_e(f.reviewed_by or '')} {_e(local_time(f.reviewed_at))}")


def _call_section(call: CallRecord, flags: list[FlagRecord], lines: CrisisLines,
                  views: Sequence[Any] = ()) -> str:
    length = call.length_s or max([f.t for f in flags] + [s[0] for s in call.scores] + [1.0])
    out = [
        f'<h2 id="call-{_e(call.call_id)}">Call {_e(call.call_id)}</h2>',
        f'<p class="meta">agent {_e(call.agent or "?")} · team {_e(call.team or "-")} · started '
        f"{_e(local_time(call.started_at))} · {_e(format_clock(length))} long · {_e(call.source)}</p>",
        '<p class="legend">'
        f'<span><i class="key" style="background:{DISTRESS_COLOUR}"></i>distress</span>'
        f'<span><i class="key" style="background:{ESCALATION_COLOUR}"></i>escalation</span>'
        f'<span><i class="key" style="background:{CRISIS_SCORE_COLOUR}"></i>crisis</span>'
        '<span><span class="crisis-tag">CRISIS</span> crisis flag</span>'
        f'<span><i class="key" style="background:{PROMPT_COLOUR}"></i>prompt shown</span>'
        f'<span><i class="key" style="border:1px solid {PROMPT_COLOUR}"></i>prompt not shown</span>'
        '<span><i class="key" style="background:#7a1020"></i>flag</span></p>',
        timeline_svg(call, flags, length, lines=lines),
    ]
    if views:  # the floor's audit: every view of this call's words there
        out.append('<p class="meta views">Its words viewed on the floor by: ' + "; ".join(
            f"{_e(v.viewer)} ({_e(local_time(v.at))}, {_e(v.what)})" for v in views) + "</p>")
    rated = {(f["rule"], round(f["prompt_t"], 1)): f["rating"] for f in call.feedback}
    for heading, prompts in zip(("Prompts shown to the agent, and their feedback",
                                 "Prompts the agent was not shown"), _by_seen(call), strict=True):
        if not prompts:
            continue
        out.append(
            f"<h3>{heading}</h3><table><thead><tr><th>At</th><th>Rule</th>"
            "<th>Prompt</th><th>On the agent's screen</th><th>Agent said</th></tr></thead><tbody>"
        )
        for p in prompts:
            rating = rated.get((p["rule"], round(p["t"], 1)), "")
            if p.get("retracted_t") is not None:
                rating = f"withdrawn at {format_clock(p['retracted_t'])}" + (f"; {rating}" if rating else "")
            out.append(
                f"<tr><td>{_e(format_clock(p['t']))}</td><td>{_e(p['rule'])}</td><td>{_e(p['text'])}</td>"
                f"<td>{_e(seen_note(p))}</td><td>{_e(rating.replace('_', ' '))}</td></tr>"
            )
        out.append("</tbody></table>")
    for f in flags:
        out.append(f'<div class="flag{" crisis" if is_crisis(f) else ""}" id="flag-{f.id}">')
        if is_crisis(f):
            heading, offered = crisis_words(f, lines, flags)
            out.append(f'<h3><span class="crisis-tag">{_e(heading)}</span> Flag {f.id}: {_badge(f.severity)} '
                       f"at {_e(format_clock(f.t))}</h3>")
            out.append(f'<p class="support">{_e(offered[:1].upper() + offered[1:])}</p>')
        else:
            what = "agent check-in (wellbeing)" if f.check_in else f.kind
            out.append(f"<h3>Flag {f.id}: {_badge(f.severity)} {_e(what)} at {_e(format_clock(f.t))}</h3>")
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
        out.append(_audit_html(f))
        out.append("</div>")
    return "\n".join(out)


def _audit_html(f: FlagRecord) -> str:
    """Who reviewed the flag, when, and what they concluded: every line, oldest first."""
    if not f.audit:
        return '<p class="audit-none meta">Not reviewed yet.</p>'
    return '<p>Review:</p><ul class="audit">' + "".join(
        f"<li>{_e(local_time(a.at))} {_e(a.reviewer or '?')}: "
        + (f'<span class="outcome">{_e(a.action)}</span>' if a.outcome else _e(a.action)) + "</li>"
        for a in f.audit
    ) + "</ul>"


def timeline_svg(
    call: CallRecord, flags: Sequence[FlagRecord], length: float, width: int = 1000, height: int = 200,
    lines: CrisisLines | None = None,
) -> str:
    """Distress, escalation and crisis over the call (0 to 1), prompts as green ticks along the top,
    flags as dashed vertical lines in their severity's colour; a crisis flag, the boldest mark of
    all, as a solid line over a band, drawn over everything else and labelled CRISIS (its tooltip
    names the support line, when `lines` are given)."""
    left, right, top, bottom = 44, 12, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + plot_w * min(max(t / max(length, 1e-6), 0.0), 1.0)

    def y(v: float) -> float:
        return top + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    crises = [f for f in flags if is_crisis(f)]
    said = "".join(f"; crisis flag at {format_clock(f.t)}" for f in crises)
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="score timeline of call {_e(call.call_id)}{_e(said)}">'
    ]
    for f in crises:  # under everything: a band that marks the moment
        out.append(f'<rect class="crisis-band" x="{x(f.t) - 9:.1f}" y="{top}" width="18" height="{plot_h}" '
                   f'fill="{CRISIS_COLOUR}" fill-opacity="0.14"/>')
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
        anchor = "end" if x(t) > width - right - 16 else "middle"  # the last one stays inside
        out.append(
            f'<text x="{x(t):.1f}" y="{height - 8}" font-size="11" text-anchor="{anchor}" '
            f'fill="#56606b">{_e(format_clock(t)[:-2])}</text>'
        )
    for f in flags:
        if is_crisis(f):
            continue
        colour = SEVERITY_COLOURS.get(f.severity, "#56606b")
        out.append(
            f'<line x1="{x(f.t):.1f}" x2="{x(f.t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="{colour}" '
            f'stroke-width="3" stroke-dasharray="6 3"><title>flag {f.id}: {_e(f.kind)} '
            f"{_e(f.severity)}</title></line>"
        )
    for p in call.prompts:  # a prompt the agent never saw is drawn hollow
        paint = (f'fill="{PROMPT_COLOUR}"' if p.get("shown_t") is not None
                 else f'fill="none" stroke="{PROMPT_COLOUR}" stroke-width="1.5"')
        out.append(
            f'<path d="M{x(p["t"]) - 6:.1f},4 L{x(p["t"]) + 6:.1f},4 L{x(p["t"]):.1f},16 Z" '
            f'{paint}><title>{_e(format_clock(p["t"]))} {_e(p["rule"])} ({_e(seen_note(p))})</title></path>'
        )
    for index, colour in ((1, DISTRESS_COLOUR), (2, ESCALATION_COLOUR), (3, CRISIS_SCORE_COLOUR)):
        points = " ".join(f"{x(s[0]):.1f},{y(s[index]):.1f}" for s in call.scores)
        if points:
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="3" '
                'stroke-linejoin="round"/>'
            )
            for s in call.scores:
                out.append(f'<circle cx="{x(s[0]):.1f}" cy="{y(s[index]):.1f}" r="3.5" fill="{colour}"/>')
    for f in crises:  # over everything: the line, and its label beside it (left of it near the end)
        at = x(f.t)
        label_x = at + 6 if at + 70 < width - right else at - 70
        out.append(
            f'<g class="crisis-mark"><title>flag {f.id}: crisis at {_e(format_clock(f.t))}'
            f"{_e('; ' + crisis_words(f, lines, crises)[1]) if lines else ''}</title>"
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{CRISIS_COLOUR}" '
            f'stroke-width="5"/><rect x="{label_x:.1f}" y="{top + 2}" width="64" height="18" rx="3" '
            f'fill="{CRISIS_COLOUR}"/><text x="{label_x + 32:.1f}" y="{top + 15}" font-size="12" '
            f'font-weight="700" text-anchor="middle" fill="#ffffff">CRISIS</text></g>'
        )
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
    many flags, how many calls). Crisis flags name the support line of the configuration's region."""
    from agent_assist.store.floor import views

    flags = store.flags(filters)
    calls = {f.call_id: store.call(f.call_id) for f in flags}
    page = report_html(flags, calls, title=REPORT_TITLE, subtitle=f"{label} · {store.where}",
                       generated_at=utc_text(), lines=crisis_lines.load(load_config()),
                       views=views(store, list(calls)))
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

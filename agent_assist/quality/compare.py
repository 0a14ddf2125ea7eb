"""Two packs on the same calls: what pack B adds (+) or removes (-) against pack A, each difference
with the call time, the customer's words (redacted, as an event log has them) and the scores that
decided; for a terminal (`lines`) or as one HTML page with the two packs side by side on a timeline
per call (`page`).

A prompt of A and one of B are the same when they are of the same rule on the same turn; what is
left over on either side is a difference, and so is the same prompt a second or more apart. Beside
each, the other pack's account of the rule: not in it, switched off in it, its own condition (when
it differs), waiting there for more partials running (`confirm_partials`, for a prompt fired on a
partial), or held back there by a cooldown, a cap or a prompt of higher priority (when the
condition is the same).

The page is like the review report: inline CSS and SVG, no script, no network, no external asset,
a Content-Security-Policy that would stop a script even if one slipped in, every piece of text
escaped without its control and bidirectional formatting characters; `review.save` writes it 0600.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent_assist.events import Prompt, Speaker, Utterance
from agent_assist.quality.calls import CallResult
from agent_assist.redact import CallRedactor
from agent_assist.review import page_head
from agent_assist.rules import conditions
from agent_assist.rules.packs import Pack
from agent_assist.sinks import format_clock
from agent_assist.text import html_text as _e

WORDS_SHOWN = 160  # characters of the customer's words on a terminal line
MOVED_S = 1.0  # the same prompt this much sooner or later with B is a difference ("~")


@dataclass(frozen=True)
class Difference:
    """A prompt one pack gave and the other did not (`sign` "-": only A, "+": only B), or one both
    gave at different times ("~": `prompt` is B's)."""

    sign: str
    prompt: Prompt
    elsewhere: str  # the other pack's account of this rule
    was: Prompt | None = None  # "~": A's prompt

    @property
    def values(self) -> str:
        """The scores that decided: each signal of the rule's condition with its value then."""
        shown = ", ".join(f"{k} {v:.2f}" for k, v in self.prompt.why.get("values", {}).items())
        return shown or "a phrase"

    @property
    def words(self) -> str:
        return str(self.prompt.why.get("text", ""))

    @property
    def turn(self) -> str:
        turn = str(self.prompt.why.get("utterance_id", "")) or "call end"
        return f"{turn}, partial" if self.prompt.why.get("partial") else turn


@dataclass
class CallPair:
    """One call through both packs, redacted, with its differences in call order."""

    a: CallResult
    b: CallResult
    differences: list[Difference]
    turns: list[Utterance]  # the customer's, redacted: the timeline's middle lane

    @property
    def call_id(self) -> str:
        return self.a.call_id

    @property
    def duration(self) -> float:
        return max(self.a.duration, self.b.duration)


def redacted(result: CallResult) -> CallResult:
    """The call's events as an event log keeps them: every quoted word redacted, in call order."""
    redactor = CallRedactor()
    return replace(result, events=[redactor.event(e) for e in result.events])


def _elsewhere(prompt: Prompt, mine: Pack, other: Pack, other_name: str) -> str:
    theirs, ours = other.rules.get(prompt.rule), mine.rules.get(prompt.rule)
    if theirs is None:
        return f"not in {other_name}"
    if not theirs.enabled:
        return f"switched off in {other_name}"
    held = f"held back in {other_name} (a cooldown, a cap, or a prompt of higher priority)"
    if ours is not None and theirs.when != ours.when:
        if _holds(theirs.condition, prompt):  # its own condition holds on these scores too
            return f"{held}; its condition there holds too: when {theirs.when}"
        return f"{other_name}: when {theirs.when}"
    if prompt.why.get("partial") and theirs.confirm_partials > (ours.confirm_partials if ours else 1):
        return (f"held back in {other_name}, or later there: on a partial it waits for its condition "
                f"on {theirs.confirm_partials} partials running (confirm_partials)")
    return held


def _holds(condition: conditions.Node, prompt: Prompt) -> bool:
    """Whether `condition` holds on the scores and words that fired `prompt`; False when it reads a
    signal the prompt did not record (it cannot be told from here)."""
    values = prompt.why.get("values", {})
    wanted = conditions.signals(condition)
    if not isinstance(values, dict) or not all(s.value in values for s in wanted):
        return False
    said = prompt.why.get("said", {})
    return conditions.evaluate(condition, {s: float(values[s.value]) for s in wanted},
                               said if isinstance(said, dict) else {})


def _key(p: Prompt) -> tuple[str, str]:
    return p.rule, str(p.why.get("utterance_id", ""))


def _matched(a: list[Prompt], b: list[Prompt]
             ) -> tuple[list[Prompt], list[Prompt], list[tuple[Prompt, Prompt]]]:
    """A's prompts with no prompt of the same rule on the same turn in B, B's with none in A, and
    the pairs that match (in order: the first of A's with the first of B's)."""
    waiting: dict[tuple[str, str], list[Prompt]] = {}
    for p in b:
        waiting.setdefault(_key(p), []).append(p)
    only_a, pairs = [], []
    for p in a:
        theirs = waiting.get(_key(p))
        if theirs:
            pairs.append((p, theirs.pop(0)))
        else:
            only_a.append(p)
    return only_a, [p for left in waiting.values() for p in left], pairs


def pair(a: CallResult, b: CallResult, pack_a: Pack, pack_b: Pack) -> CallPair:
    """One call's result with each pack, redacted, and what differs: a prompt only one gave, or the
    same prompt at least `MOVED_S` sooner or later (a threshold changed on a partial's words, say)."""
    a, b = redacted(a), redacted(b)
    only_a, only_b, both = _matched(a.prompts, b.prompts)
    diffs = ([Difference("-", p, _elsewhere(p, pack_a, pack_b, "B")) for p in only_a]
             + [Difference("+", p, _elsewhere(p, pack_b, pack_a, "A")) for p in only_b]
             + [Difference("~", pb, f"A at {format_clock(pa.t)}, {pb.t - pa.t:+.1f} s with B", pa)
                for pa, pb in both if abs(pb.t - pa.t) >= MOVED_S])
    diffs.sort(key=lambda d: (d.prompt.t, d.sign))
    turns = [e for e in a.events if isinstance(e, Utterance) and e.speaker != Speaker.AGENT]
    return CallPair(a, b, diffs, turns)


def lines(pairs: Sequence[CallPair]) -> list[str]:
    """The differences, call by call, then the totals."""
    out = []
    for p in pairs:
        if not p.differences:
            continue
        out.append(f"call {p.call_id} ({format_clock(p.duration)}):")
        for d in p.differences:
            out.append(f"  {d.sign} [{format_clock(d.prompt.t)}] {d.prompt.rule} on {d.turn}: {d.values}"
                       f" ({d.elsewhere})")
            if d.words:
                words = d.words if len(d.words) <= WORDS_SHOWN else d.words[: WORDS_SHOWN - 1] + "…"
                out.append(f'      "{words}"')
    na, nb = sum(len(p.a.prompts) for p in pairs), sum(len(p.b.prompts) for p in pairs)
    changed = sum(1 for p in pairs if p.differences)
    out.append(f"{len(pairs)} calls, {changed} with differences; prompts: {na} with A, {nb} with B "
               f"({nb - na:+d})")
    return out


# ------------------------------------------------------------------------------------------------
# The page

SAME, ONLY_A, ONLY_B, MOVED, CRISIS = "#56606b", "#b42318", "#1a7f37", "#9a6700", "#8b0000"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}
.meta{color:#56606b;font-size:13px}
.key span{margin-right:16px;font-size:13px}.key i{display:inline-block;width:12px;height:12px;
vertical-align:-1px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:6px}
th,td{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}td.at,td.rule{white-space:nowrap}
.sign{font-weight:700;font-size:15px;width:18px}.minus{color:#b42318}.plus{color:#1a7f37}.moved{color:#9a6700}
.words{color:#1f2328;font-style:italic}
section.call{border-top:2px solid #d0d7de;margin-top:18px}
svg{display:block;max-width:100%;height:auto}
"""


def _tip(p: Prompt, pack: str) -> str:
    values = ", ".join(f"{k} {v:.2f}" for k, v in p.why.get("values", {}).items()) or "a phrase"
    words = str(p.why.get("text", ""))
    return f"{pack}: {format_clock(p.t)} {p.rule} ({values})" + (f' "{words}"' if words else "")


def timeline_svg(p: CallPair, width: int = 1100) -> str:
    """Pack A's prompts in the top lane and B's in the bottom, on one time axis, with the customer's
    turns between them: a prompt both gave in grey, one only A gave in red, one only B gave in
    green; a crisis prompt as a taller, darker mark. Each mark's tooltip holds its time, rule,
    scores and words."""
    left, right, lane_h = 70, 14, 34
    top_a, turns_y, top_b, axis_y = 8, 8 + lane_h + 6, 8 + lane_h + 30, 8 + 2 * lane_h + 36
    height = axis_y + 20
    length = max(p.duration, 1e-6)

    def x(t: float) -> float:
        return left + (width - left - right) * min(max(t / length, 0.0), 1.0)

    only = {id(d.prompt): d.sign for d in p.differences}
    only.update({id(d.was): d.sign for d in p.differences if d.was is not None})
    out = [f'<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="prompts of pack A and pack B over call {_e(p.call_id)}">']
    for label, y in (("pack A", top_a), ("pack B", top_b)):
        out.append(f'<rect x="{left}" y="{y}" width="{width - left - right}" height="{lane_h}" '
                   'fill="#f6f8fa"/>'
                   f'<text x="{left - 8}" y="{y + lane_h / 2 + 4:.1f}" font-size="12" text-anchor="end" '
                   f'fill="#1f2328">{label}</text>')
    out.append(f'<text x="{left - 8}" y="{turns_y + 13}" font-size="11" text-anchor="end" '
               'fill="#56606b">customer</text>')
    for u in p.turns:
        out.append(f'<rect class="turn" x="{x(u.start):.1f}" y="{turns_y + 4}" '
                   f'width="{max(x(u.end) - x(u.start), 1.0):.1f}" height="10" fill="#c9d1d9">'
                   f"<title>{_e(format_clock(u.start))} {_e(u.utterance_id)}: {_e(u.text)}</title></rect>")
    for lane, result, y in (("A", p.a, top_a), ("B", p.b, top_b)):
        for prompt in result.prompts:
            sign = only.get(id(prompt))
            colour = CRISIS if prompt.sticky and sign is None else (
                ONLY_A if sign == "-" else ONLY_B if sign == "+" else MOVED if sign == "~" else SAME)
            tall = lane_h - 4 if prompt.sticky else lane_h - 14
            kind = {"-": "only-a", "+": "only-b", "~": "moved"}.get(sign or "", "both")
            out.append(f'<rect class="prompt {kind}{" crisis" if prompt.sticky else ""}" '
                       f'data-rule="{_e(prompt.rule)}" x="{x(prompt.t) - 3:.1f}" '
                       f'y="{y + (lane_h - tall) / 2:.1f}" '
                       f'width="{7 if prompt.sticky else 6}" height="{tall}" fill="{colour}">'
                       f"<title>{_e(_tip(prompt, 'pack ' + lane))}</title></rect>")
    rounded = (5, 10, 15, 30, 60, 120, 300, 600, 1200, 3600)
    step = next((s for s in rounded if length / s <= 10), length / 10)
    for tick in range(int(min(length / step, 10.0)) + 1):
        t = tick * step
        anchor = "end" if x(t) > width - right - 16 else "middle"
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top_a}" y2="{axis_y - 8}" stroke="#d0d7de" '
                   f'stroke-width="1"/><text x="{x(t):.1f}" y="{axis_y + 6}" font-size="11" '
                   f'text-anchor="{anchor}" fill="#56606b">{_e(format_clock(t)[:-2])}</text>')
    out.append("</svg>")
    return "".join(out)


_SIGNS = {"-": ("minus", "&minus;"), "+": ("plus", "+"), "~": ("moved", "~")}


def _section(p: CallPair) -> str:
    head = (f'<section class="call" id="call-{_e(p.call_id)}" data-call="{_e(p.call_id)}">'
            f"<h2>Call {_e(p.call_id)} <span class=\"meta\">{_e(format_clock(p.duration))} · "
            f"{len(p.a.prompts)} prompts with A, {len(p.b.prompts)} with B · "
            f"{len(p.differences)} difference(s)</span></h2>{timeline_svg(p)}")
    if not p.differences:
        return head + '<p class="meta">The same prompts with both packs.</p></section>'
    rows = "".join(
        f'<tr class="difference" data-sign="{_SIGNS[d.sign][0]}">'
        f'<td class="sign {_SIGNS[d.sign][0]}">{_SIGNS[d.sign][1]}</td>'
        f'<td class="at">{_e(format_clock(d.prompt.t))}</td><td class="rule">{_e(d.prompt.rule)}<br>'
        f'<span class="meta">{_e(d.turn)}</span></td><td>{_e(d.values)}</td>'
        f'<td class="words">{_e(d.words)}</td><td>{_e(d.elsewhere)}</td></tr>'
        for d in p.differences)
    return (head + "<table><thead><tr><th></th><th>At</th><th>Rule</th><th>Scores that decided</th>"
            "<th>The customer's words</th><th>The other pack</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")


def page(pairs: Sequence[CallPair], name_a: str, name_b: str, generated_at: str) -> str:
    """The whole page: a summary, a key, then each call (those with differences first, listed at
    the top) with its two-lane timeline and its differences."""
    changed = [p for p in pairs if p.differences]
    na, nb = sum(len(p.a.prompts) for p in pairs), sum(len(p.b.prompts) for p in pairs)
    added = sum(1 for p in pairs for d in p.differences if d.sign == "+")
    removed = sum(1 for p in pairs for d in p.differences if d.sign == "-")
    title = "agent-assist: two rule packs compared"
    parts: list[Any] = [
        *page_head(title, _CSS, f"A: {name_a} · B: {name_b} · generated {generated_at} · "
                   "transcript text is redacted"),
        f'<p class="summary">{len(pairs)} calls, {len(changed)} with differences · prompts: {na} with A, '
        f"{nb} with B ({nb - na:+d}) · B adds {added}, removes {removed}</p>",
        f'<p class="key"><span><i style="background:{SAME}"></i>both packs</span>'
        f'<span><i style="background:{ONLY_A}"></i>only A (B removes it)</span>'
        f'<span><i style="background:{ONLY_B}"></i>only B (B adds it)</span>'
        f'<span><i style="background:{MOVED}"></i>both, at different times</span>'
        f'<span><i style="background:{CRISIS}"></i>crisis (taller)</span>'
        '<span><i style="background:#c9d1d9"></i>the customer speaking</span></p>',
    ]
    if changed:
        parts.append("<p>Calls with differences: " + ", ".join(
            f'<a href="#call-{_e(p.call_id)}">{_e(p.call_id)}</a>' for p in changed) + "</p>")
    parts += [_section(p) for p in [*changed, *(p for p in pairs if not p.differences)]]
    parts.append("</body></html>")
    return "\n".join(parts)

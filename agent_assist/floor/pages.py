"""The floor's pages, rendered on the server: every value from a call or a person is escaped
(`review._e`), so text in a call renders as text, never as markup. The page's one script
(`SCRIPT`, served from /floor.js under a Content-Security-Policy that allows no other) swaps in the
board the server sends by server-sent events, shows the banner, plays the optional sound, ticks the
call clocks and posts the actions with the page's CSRF token."""

from __future__ import annotations

from collections.abc import Sequence

from agent_assist.floor.board import Alert, Board, LiveCall
from agent_assist.floor.settings import Account
from agent_assist.review import _e, local_time
from agent_assist.store.floor import Claim, View

KIND_WORDS = {"crisis": "CRISIS", "escalation": "escalation", "distress": "distress", "agent": "agent's flag"}

CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1b2430}
header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#1b2430;color:#f4f6f8}
header a,header button{color:#f4f6f8}
header .who{margin-left:auto}
main{padding:1em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #d8dde3;padding:.4em .5em;text-align:left;vertical-align:middle}
th{background:#e9edf1;font-weight:600}
.banner{background:#7a1020;color:#fff;padding:.7em 1em;font-weight:700;font-size:1.1em}
.banner[hidden]{display:none}
.crisis-tag{background:#7a1020;color:#fff;border-radius:3px;padding:0 .4em;font-weight:700}
.sev{border-radius:3px;padding:0 .4em;color:#fff;background:#56606b}
.sev-high{background:#b35900}.sev-critical{background:#7a1020}
.claimed{color:#24613b;font-weight:600}
.ended{color:#56606b}
tr.alert-open td{background:#fff1f1}
.meta{color:#56606b;font-size:.9em}
form.inline{display:inline}
.note input[type=text]{width:16em}
.wall{display:grid;grid-template-columns:repeat(3,1fr);gap:2em;padding:3em}
.wall div{background:#1b2430;color:#fff;border-radius:12px;padding:2em;text-align:center}
.wall .n{font-size:6em;font-weight:700;display:block}
.wall .w{font-size:1.6em}
.checkin{background:#24613b;color:#fff;border-radius:3px;padding:0 .4em}
svg.spark{vertical-align:middle}
.key-d{border-bottom:3px solid #3b6ea5}.key-e{border-bottom:3px solid #b37400}
"""

SCRIPT = r"""
(function () {
  const csrf = document.body.dataset.csrf;
  const wall = document.body.dataset.view === 'wall';
  const banner = document.getElementById('banner');
  const sound = document.getElementById('sound');
  let received = Date.now();
  function beep() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator(); const gain = ctx.createGain();
      osc.frequency.value = 660; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no audio here */ }
  }
  function tick() {
    const gone = (Date.now() - received) / 1000;
    document.querySelectorAll('[data-t]').forEach(function (el) {
      const t = parseFloat(el.dataset.t) + (el.dataset.live === '1' ? gone : 0);
      const m = Math.floor(t / 60), s = Math.floor(t % 60);
      el.textContent = m + ':' + (s < 10 ? '0' : '') + s;
    });
  }
  function say(text) { if (banner) { banner.textContent = text; banner.hidden = false; } }
  document.addEventListener('submit', function (ev) {
    const form = ev.target;
    if (!form.classList.contains('act')) { return; }
    ev.preventDefault();
    fetch(form.action, {method: 'POST', body: new FormData(form), credentials: 'same-origin',
                        headers: {'X-CSRF-Token': csrf, 'X-Requested-With': 'fetch'}})
      .then(function (r) { return r.text().then(function (t) { if (!r.ok) { say(t); } }); });
    form.reset();
  });
  const source = new EventSource(wall ? '/events?view=wall' : '/events');
  // The board is drawn again on every change on the floor: a note being typed to an agent keeps
  // its words, its focus and its caret across that (by the call's row, which may have moved).
  function noteOf(row) { return row.querySelector('form.note input[name="text"]'); }
  source.addEventListener('board', function (ev) {
    const board = document.getElementById('board');
    const typed = {};
    board.querySelectorAll('tr[data-call]').forEach(function (row) {
      const input = noteOf(row);
      if (input && input.value) { typed[row.dataset.call] = input.value; }
    });
    const active = document.activeElement;
    const activeRow = active && active.name === 'text' ? active.closest('tr[data-call]') : null;
    const focused = activeRow ? activeRow.dataset.call : null;
    const caret = focused ? [active.selectionStart, active.selectionEnd] : null;
    board.innerHTML = ev.data;
    board.querySelectorAll('tr[data-call]').forEach(function (row) {
      const input = noteOf(row);
      if (!input) { return; }
      if (typed[row.dataset.call]) { input.value = typed[row.dataset.call]; }
      if (row.dataset.call === focused) { input.focus(); input.setSelectionRange(caret[0], caret[1]); }
    });
    received = Date.now(); tick();
  });
  source.addEventListener('alert', function (ev) {
    say(ev.data);
    if (sound && sound.checked) { beep(); }
  });
  tick();
  setInterval(tick, 1000);
})();
"""


def page(title: str, body: str, user: str = "", csrf: str = "", view: str = "board",
         sound: bool = False) -> str:
    # the wallboard hangs where anyone passing reads it: not even the signed-in supervisor's name
    name = "" if view == "wall" else f"{_e(user)} · "
    who = (f'<span class="who">{name}<a href="/logout">sign out</a></span>' if user else "")
    controls = ""
    if user and view == "board":
        controls = ('<a href="/wall">wallboard</a>'
                    f'<label><input type="checkbox" id="sound"{" checked" if sound else ""}> sound</label>')
    script = '<script src="/floor.js"></script>' if user else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{_e(title)}</title><link rel="stylesheet" href="/floor.css"></head>'
        f'<body data-csrf="{_e(csrf)}" data-view="{_e(view)}">'
        f'<header><strong>{_e(title)}</strong>{controls}{who}</header>'
        f'<div class="banner" id="banner" role="alert" hidden></div>'
        f"<main>{body}</main>{script}</body></html>"
    )


def login_page(message: str = "") -> str:
    said = f'<p class="banner" role="alert">{_e(message)}</p>' if message else ""
    return page("agent-assist floor: sign in", said + (
        '<form method="post" action="/login"><p><label>Account <input name="user" autocomplete="username" '
        'required></label></p><p><label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label></p><p><button>Sign in</button></p></form>'))


def sparkline(points: Sequence[tuple[float, float, float]], width: int = 120, height: int = 28) -> str:
    """Distress (blue) and escalation (amber) over the call's last turns, 0 to 1."""
    if len(points) < 2:
        return '<span class="meta">' + ("no turns yet" if not points else "one turn so far") + "</span>"
    first, last = points[0][0], points[-1][0]
    span = max(last - first, 1e-6)

    def line(index: int) -> str:
        return " ".join(f"{(0 if len(points) == 1 else (p[0] - first) / span) * (width - 2) + 1:.1f},"
                        f"{(1 - min(1.0, max(0.0, p[index]))) * (height - 2) + 1:.1f}" for p in points)

    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="distress and escalation over the last turns">'
            f'<polyline fill="none" stroke="#3b6ea5" stroke-width="2" points="{line(1)}"/>'
            f'<polyline fill="none" stroke="#b37400" stroke-width="2" points="{line(2)}"/></svg>')


def level(value: float) -> str:
    word = "high" if value >= 0.65 else "moderate" if value >= 0.35 else "low"
    return f"{word} ({value:.2f})"


def _clock(call: LiveCall, now: float) -> str:
    """The call's clock at `now`; the page's script ticks it on while the call is live."""
    live = call.ended_at is None
    t = call.call_t + (now - call.seen_at if live else 0.0)
    return f'<span data-t="{t:.1f}" data-live="{int(live)}"></span>'


def _claim_cell(flag_id: int, claim: Claim | None, csrf: str) -> str:
    if claim is not None:
        return (f'<span class="claimed" data-claimed-by="{_e(claim.by)}">Claimed by {_e(claim.by)} at '
                f"{_e(local_time(claim.at))}</span>")
    return (f'<form class="act inline" method="post" action="/claim/{flag_id}">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            f'<button class="claim" data-flag="{flag_id}">I\'ve got this</button></form>')


def _flag_words(kind: str, severity: str) -> str:
    tag = '<span class="crisis-tag">CRISIS</span>' if kind == "crisis" else _e(KIND_WORDS.get(kind, kind))
    return f'{tag} <span class="sev sev-{_e(severity)}">{_e(severity)}</span>'


def board_fragment(board: Board, viewer: Account, csrf: str, now: float) -> str:
    """The alerts and the calls, as the server sends them to one viewer."""
    leads = set(viewer.teams)
    out = ['<h2>Alerts</h2>']
    alerts = [a for a in board.open_alerts() if not a.flag.check_in or a.team in leads]
    if not alerts:
        out.append('<p class="meta" id="no-alerts">No crisis or high-severity flags in the last hour.</p>')
    else:
        out.append('<table id="alerts"><thead><tr><th>Flag</th><th>Agent</th><th>Team</th><th>At</th>'
                   "<th>Rule</th><th>Who has it</th><th>Review</th></tr></thead><tbody>")
        for a in alerts:
            claim = board.claims.get(a.flag.id)
            out.append(
                f'<tr class="alert{"" if claim else " alert-open"}" data-flag="{a.flag.id}" '
                f'data-kind="{_e(a.flag.kind)}"><td>{_flag_words(a.flag.kind, a.flag.severity)}</td>'
                f"<td>{_e(a.agent)}</td><td>{_e(a.team)}</td>"
                f'<td><span data-t="{a.flag.t:.1f}" data-live="0"></span></td><td>{_e(a.flag.rule)}</td>'
                f"<td>{_claim_cell(a.flag.id, claim, csrf)}</td>"
                f'<td><a href="/call/{_e(a.flag.call_id)}">call</a></td></tr>')
        out.append("</tbody></table>")
    out.append("<h2>Live calls</h2>")
    rows = board.rows()
    if not rows:
        out.append('<p class="meta" id="no-calls">No calls under way.</p>')
        return "".join(out)
    out.append('<table id="calls"><thead><tr><th>Agent</th><th>Team</th><th>Call time</th><th>Distress</th>'
               '<th>Escalation</th><th>Trend <span class="meta"><span class="key-d">distress</span> '
               '<span class="key-e">escalation</span></span></th><th>Flags</th><th>Latest prompt</th>'
               "<th>Note to the agent</th><th>Review</th></tr></thead><tbody>")
    for call in rows:
        flags = [f for f in call.flags.values() if not f.check_in or call.team in leads]
        marks = " ".join(
            ('<span class="checkin">check-in</span>' if f.check_in else _flag_words(f.kind, f.severity))
            for f in sorted(flags, key=lambda f: f.t))
        ended = ' <span class="ended">(ended)</span>' if call.ended_at is not None else ""
        note = ("" if call.ended_at is not None else
                f'<form class="act inline note" method="post" action="/note/{_e(call.call_id)}">'
                f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
                f'<input type="text" name="text" maxlength="200" required '
                f'aria-label="Note to {_e(call.agent)}" '
                f'placeholder="I\'m listening in, take your time"><button>Send</button></form>'
                + (f' <span class="meta">{call.notes} sent</span>' if call.notes else ""))
        out.append(
            f'<tr class="call" data-call="{_e(call.call_id)}" data-agent="{_e(call.agent)}">'
            f"<td>{_e(call.agent)}</td><td>{_e(call.team)}</td><td>{_clock(call, now)}{ended}</td>"
            f"<td>{level(call.distress)}</td><td>{level(call.escalation)}</td><td>{sparkline(list(call.points))}</td>"
            f'<td>{marks or "-"}</td><td class="prompt">{_e(call.prompt) or "-"}</td><td>{note}</td>'
            f'<td><a href="/call/{_e(call.call_id)}">call</a></td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


WALL_WORDS = (("live_calls", "live calls"), ("open_crisis_alerts", "open crisis alerts"),
              ("escalations_last_hour", "escalations in the last hour"))


def wall_fragment(counts: dict[str, int]) -> str:
    """Counts only: no names, no words from a call."""
    return '<div class="wall">' + "".join(
        f'<div id="{key}"><span class="n">{int(counts.get(key, 0))}</span>'
        f'<span class="w">{words}</span></div>' for key, words in WALL_WORDS) + "</div>"


def alert_text(alert: Alert) -> str:
    """The banner's line (text, not markup: the script sets it as text)."""
    what = "CRISIS" if alert.flag.kind == "crisis" else f"{alert.flag.severity} {alert.flag.kind}"
    return f"{what} on {alert.agent}'s call ({alert.team or 'no team'}): {alert.flag.rule}"


def outcome_panel(flags: Sequence[tuple[int, str, str, str]], csrf: str) -> str:
    """Outcome buttons for each flag of the call: (id, kind, severity, what it stands at)."""
    from agent_assist.store.reviews import Outcome

    if not flags:
        return ""
    rows = []
    for flag_id, kind, severity, stands in flags:
        buttons = "".join(
            f'<form class="inline" method="post" action="/outcome/{flag_id}">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            f'<input type="hidden" name="outcome" value="{_e(o.value)}">'
            f"<button>{_e(o.words)}</button></form> "
            for o in Outcome)
        rows.append(f'<tr data-flag="{flag_id}"><td>{flag_id} <code>agent-assist review show {flag_id}</code>'
                    f"</td><td>{_flag_words(kind, severity)}</td>"
                    f"<td>{_e(stands) or 'not yet'}</td><td>{buttons}</td></tr>")
    return ('<section id="outcomes"><h2>Outcomes</h2><table><thead><tr><th>Flag</th><th>Kind</th>'
            "<th>Stands at</th><th>Set</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></section>")


def views_html(views: Sequence[View]) -> str:
    if not views:
        return ""
    return ('<p class="meta views">Viewed on the floor: ' + "; ".join(
        f"{_e(v.viewer)} ({_e(local_time(v.at))})" for v in views) + "</p>")

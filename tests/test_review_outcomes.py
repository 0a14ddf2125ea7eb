"""The supervisor's review of a shift (tests/review_shift.py: 17 flags from 5 calls, 5 of them the
rules' check-ins with the agent): the flags by call, the check-ins apart, reasons whole where they
are cut, every note in the CSV and the report, crisis flags with the region's support line, the
reviewer's outcomes with their audit, and a false alarm counted against its rule by `rules evaluate`."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent_assist.events import Flag
from agent_assist.review import by_call, review_order
from agent_assist.store import Filters, FlagStoreSink, Outcome, StoreError, StoreOptions, open_store
from agent_assist.store.reviews import AuditLine, verdict
from tests.review_shift import CALLS, LONG_NOTE, ORDER, write_shift
from tests.test_cli import agent_assist
from tests.test_rules_evaluate import calls  # noqa: F401  (a fixture: labelled calls with event logs)
from tests.test_store import _old_store


def _shift(url: str) -> dict[str, int]:
    store = open_store(url)
    try:
        return write_shift(store)
    finally:
        store.close()


def test_outcomes_and_the_audit_of_who_reviewed_what(store_url: str) -> None:
    ids = _shift(store_url)
    store = open_store(store_url)
    crisis, limits = ids["c-violence:crisis-family-violence"], ids["c-manager:name-the-limits"]
    assert store.ack(crisis, "lee") and not store.ack(crisis, "kim")  # the first review stands
    store.set_outcome(crisis, Outcome.HANDLED_WELL, "kim")
    store.set_outcome(crisis, Outcome.FOLLOW_UP_WELLBEING, "kim")
    store.set_outcome(limits, Outcome.FALSE_ALARM, "lee")
    store.set_outcome(limits, Outcome.HANDLED_WELL, "kim")  # changed their mind: the latest stands
    one = store.flag(crisis)
    assert [(a.reviewer, a.outcome) for a in one.audit] == [
        ("lee", None), ("kim", Outcome.HANDLED_WELL), ("kim", Outcome.FOLLOW_UP_WELLBEING)]
    assert [a.action for a in one.audit] == ["reviewed", "handled well",
                                             "follow up with the agent (wellbeing)"]
    assert (one.reviewed_by, one.verdict, one.follow_up) == ("lee", Outcome.HANDLED_WELL, True)
    listed = {f.id: f for f in store.flags()}
    assert listed[crisis].audit == one.audit and listed[crisis].outcomes == one.outcomes
    assert listed[limits].outcomes == (Outcome.HANDLED_WELL,)
    assert [a.outcome for a in listed[limits].audit] == [Outcome.FALSE_ALARM, Outcome.HANDLED_WELL]
    # an outcome is a review: the flag counts as reviewed, by whoever first gave one
    assert (listed[limits].reviewed_by, listed[limits].reviewed) == ("lee", True)
    assert {f.id for f in store.flags(Filters(reviewed=True))} == {crisis, limits}
    json.dumps([f.to_dict() for f in store.flags()])  # the list's --json
    agents_own = ids["c-hotwater:agent"]
    with pytest.raises(StoreError, match=f"^flag {agents_own} was raised by the agent, not by a rule"):
        store.set_outcome(agents_own, Outcome.FALSE_ALARM, "lee")
    assert store.flag(agents_own).audit == ()  # nothing was written
    with pytest.raises(StoreError, match="no flag 999"):
        store.set_outcome(999, Outcome.HANDLED_WELL, "lee")
    assert store.purge(-1) == (5, 17)  # the reviews go with their flags
    assert store.db.query("SELECT COUNT(*) FROM reviews")[0][0] == 0
    store.close()


def test_a_store_reviewed_before_the_audit_keeps_who_reviewed_it(store_url: str) -> None:
    """Migration 6 gives each flag already reviewed its audit line, from reviewed_at/reviewed_by."""
    _old_store(store_url)
    if store_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("UPDATE flags SET reviewed_at = '2026-11-20T10:00:00Z', reviewed_by = 'lee'")
    else:
        with sqlite3.connect(store_url) as conn3:
            conn3.execute("UPDATE flags SET reviewed_at = '2026-11-20T10:00:00Z', reviewed_by = 'lee'")
        conn3.close()
    store = open_store(store_url)
    [old] = store.flags()
    assert old.audit == (AuditLine("2026-11-20T10:00:00Z", "lee", None),) and old.outcomes == ()
    store.set_outcome(old.id, Outcome.FALSE_ALARM, "kim")
    assert [a.reviewer for a in store.flag(old.id).audit] == ["lee", "kim"]
    store.close()


def test_the_latest_verdict_stands_and_a_follow_up_is_apart() -> None:
    lines = [AuditLine("t1", "a", Outcome.FALSE_ALARM), AuditLine("t2", "b", Outcome.FOLLOW_UP_WELLBEING)]
    assert verdict(lines) is Outcome.FALSE_ALARM
    assert verdict([*lines, AuditLine("t3", "c", Outcome.HANDLED_WELL)]) is Outcome.HANDLED_WELL
    assert verdict([AuditLine("t1", "a")]) is None


def test_the_list_groups_by_call_worst_first_and_keeps_check_ins_apart(tmp_path: Path) -> None:
    """Before: 17 lines most severe first, the calls' flags scattered among 5 routine check-ins, and
    the agent's note cut at 60 characters with nothing to say so."""
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    listed = agent_assist("review", "list", "--store", url)
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout.splitlines()
    heads = [i for i, line in enumerate(out) if line.startswith("call ")]
    assert [out[i].split()[1] for i in heads] == ORDER
    check_ins = out.index(next(line for line in out if line.startswith("agent check-ins (wellbeing): 5, ")))
    assert heads[-1] < check_ins
    for n, i in enumerate(heads):  # each call's worst flag first, then the rest
        end = heads[n + 1] if n + 1 < len(heads) else check_ins - 1
        rows = [line.split() for line in out[i + 1:end]]
        severities = [r[1] for r in rows]
        assert severities[0] == max(severities, key=["low", "medium", "high", "critical"].index)
        assert {int(r[0]) for r in rows} == {ids[f"{ORDER[n]}:{rule}"] for *_, rule in CALLS[ORDER[n]][2]
                                             if rule != "agent-check-in"}
    in_section = [int(line.split()[0]) for line in out[check_ins + 2:] if line[:5].strip().isdigit()]
    assert sorted(in_section) == sorted(ids[f"{c}:agent-check-in"] for c in CALLS)
    # the agent's long note: cut, marked, and a way to read it whole
    [noted] = [line for line in out if line.split()[:1] == [str(ids["c-hotwater:agent"])]]
    assert noted.endswith("…") and LONG_NOTE not in listed.stdout
    assert out[-1] == ("reasons ending in … are cut: `agent-assist review show ID` or `review list --full` "
                       "shows them whole")
    full = agent_assist("review", "list", "--store", url, "--full").stdout
    assert LONG_NOTE in full and "are cut" not in full
    assert LONG_NOTE in agent_assist("review", "show", str(ids["c-hotwater:agent"]), "--store", url).stdout
    # --json stays every flag, most severe first, with the review in it
    flags = json.loads(agent_assist("review", "list", "--store", url, "--json").stdout)
    assert len(flags) == 17 and {"audit", "outcomes"} <= set(flags[0])


def test_review_order_puts_check_ins_not_yet_reviewed_first(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    store = open_store(url)
    store.ack(ids["c-billing:agent-check-in"], "lee")  # the newest, but reviewed: last
    store.set_outcome(ids["c-violence:agent-check-in"], Outcome.FOLLOW_UP_WELLBEING, "lee")
    groups, check_ins = by_call(store.flags())
    assert [g.call_id for g in groups] == ORDER
    assert [f.call_id for f in check_ins] == ["c-hotwater", "c-manager", "c-selfharm",  # not reviewed
                                              "c-violence",  # a follow-up asked
                                              "c-billing"]
    assert review_order(store.flags())[-5:] == check_ins
    store.close()


def test_outcomes_from_the_command_line(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    limits, own = ids["c-manager:name-the-limits"], ids["c-hotwater:agent"]
    done = agent_assist("review", "outcome", "false-alarm", str(limits), "--store", url, "--by", "lee")
    assert done.returncode == 0 and done.stdout == f"flag {limits}: false alarm\n"
    done = agent_assist("review", "outcome", "follow-up-wellbeing", str(limits), str(own), "--store", url,
                        "--by", "kim")
    assert done.returncode == 0, done.stderr
    refused = agent_assist("review", "outcome", "false-alarm", str(own), "--store", url)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "was raised by the agent, not by a rule" in refused.stderr
    unknown = agent_assist("review", "outcome", "great-job", str(limits), "--store", url)
    assert unknown.returncode == 2
    assert "'great-job' is not one of 'handled-well', 'false-alarm'" in unknown.stderr
    shown = agent_assist("review", "show", str(limits), "--store", url).stdout
    assert f"flag {limits}: LOW escalation (reviewed by lee at " in shown
    assert "; false alarm, follow up with the agent (wellbeing))" in shown
    audit = shown.split("review (who, when, what):\n")[1].splitlines()
    assert [re.sub(r"^  \S+ \S+ ", "", line) for line in audit] == [
        "lee: false alarm", "kim: follow up with the agent (wellbeing)"]
    row = next(line for line in agent_assist("review", "list", "--store", url).stdout.splitlines()
               if line.split()[:1] == [str(limits)])
    assert "false alarm, follow up" in row
    untouched = str(ids["c-billing:agent-check-in"])
    shown = agent_assist("review", "show", untouched, "--store", url).stdout
    assert "review: nobody has reviewed it yet" in shown


def _noted(url: str, ids: dict[str, int]) -> list[tuple[int, str, str, bool]]:
    """Notes on flags of every kind: (flag, author, text, wellbeing)."""
    notes = [
        (ids["c-violence:crisis-family-violence"], "lee", "Customer safe; warm transfer done", False),
        (ids["c-violence:agent-check-in"], "lee", "Called Sam after the shift; debrief booked", True),
        (ids["c-violence:agent-check-in"], "kim", "Sam took the afternoon off", True),
        (ids["c-hotwater:agent"], "kim", "Passed to the hardship team lead", False),
        (ids["c-billing:slow-down-escalation"], "ana.k", "Routine; nothing to do", False),
        (ids["c-selfharm:crisis-self-harm"], "lee", "Ana asked for a debrief; EAP details sent", True),
    ]
    store = open_store(url)
    for flag_id, author, text, wellbeing in notes:
        store.note(flag_id, text, author, wellbeing)
    store.set_outcome(ids["c-selfharm:crisis-self-harm"], Outcome.HANDLED_WELL, "lee")
    store.close()
    return notes


def test_every_note_reaches_the_csv_and_the_report(tmp_path: Path) -> None:
    """Each note on its own flag's row of the CSV and in its flag's part of the report, with its
    author, and marked where it is about the agent's wellbeing."""
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    notes = _noted(url, ids)
    out, report = tmp_path / "flags.csv", tmp_path / "report.html"
    since = f"{datetime.now() - timedelta(hours=6):%Y-%m-%d %H:%M}"  # the shift's calls, by the filters
    for command in (["export", "--csv"], ["report"]):
        done = agent_assist("review", *command, "--since", since, "--store", url, "-o",
                            str(out if command[0] == "export" else report))
        assert done.returncode == 0, done.stderr
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(out.read_text()))}
    page = report.read_text()
    sections = _flag_sections(page)
    assert set(sections) == set(rows) == set(ids.values())
    for flag_id, author, text, wellbeing in notes:
        tag = " [agent wellbeing]" if wellbeing else ""
        assert re.search(rf"\S+ {re.escape(author + tag)}: {re.escape(text)}", rows[flag_id]["notes"]), text
        assert f"Note by {author} (" in sections[flag_id] and html.escape(text) in sections[flag_id]
        expected = ' <span class="wellbeing">agent wellbeing</span>: ' if wellbeing else "): "
        assert expected + html.escape(text) in sections[flag_id]
    assert sum(r["notes"].count(": ") for r in rows.values()) == len(notes)  # no note twice, none lost
    handled = rows[ids["c-selfharm:crisis-self-harm"]]
    assert handled["outcomes"] == "handled well" and handled["reviews"].endswith(" lee: handled well")
    assert [r["check_in"] for r in rows.values()].count("yes") == 5


def _flag_sections(page: str) -> dict[int, str]:
    """Each flag's part of the report's call sections, by its id."""
    parts = re.split(r'(?=<div class="flag[^"]*" id="flag-\d+">)|(?=<h2 )|(?=</body>)', page)
    return {int(re.match(r'<div class="flag[^"]*" id="flag-(\d+)">', p)[1]): p  # type: ignore[index]
            for p in parts if p.startswith('<div class="flag')}


def test_crisis_flags_offer_the_regions_support_line(tmp_path: Path) -> None:
    """The family-violence crisis names 1800RESPECT (AU) or the National Domestic Abuse Helpline (UK),
    the self-harm crisis Lifeline or Samaritans; a crisis rule the packs no longer hold gets the
    region's crisis line, said as such."""
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent="sam"))
    sink.emit(Flag(t=60.0, call_id="c-violence", kind="crisis", severity="critical",  # type: ignore[arg-type]
                   reason="old-site-crisis: crisis 0.9", utterance_id="", rule="old-site-crisis"))
    # the warm transfer answers any crisis: it offered the line of the call's family-violence card
    sink.emit(Flag(t=65.0, call_id="c-violence", kind="crisis", severity="critical",  # type: ignore[arg-type]
                   reason="crisis-warm-transfer: crisis 0.95", utterance_id="", rule="crisis-warm-transfer"))
    sink.close()
    unknown = next(f.id for f in store.flags() if f.rule == "old-site-crisis")
    transfer = next(f.id for f in store.flags() if f.rule == "crisis-warm-transfer")
    store.close()
    uk = tmp_path / "config.toml"
    uk.write_text('[rules]\nregion = "UK"\n')
    fv, sh = ids["c-violence:crisis-family-violence"], ids["c-selfharm:crisis-self-harm"]
    for env, fv_line, sh_line, region in (
        ({}, "1800RESPECT 1800 737 732 · emergency 000", "Lifeline 13 11 14 · emergency 000", "AU"),
        ({"AGENT_ASSIST_CONFIG": str(uk)}, "National Domestic Abuse Helpline 0808 2000 247 · emergency 999",
         "Samaritans 116 123 · emergency 999", "UK"),
    ):
        shown = agent_assist("review", "show", str(fv), "--store", url, env=env).stdout.splitlines()
        assert shown[1] == f"CRISIS · family violence: support line (region {region}): {fv_line}"
        shown = agent_assist("review", "show", str(sh), "--store", url, env=env).stdout.splitlines()
        assert shown[1] == f"CRISIS · self-harm: support line (region {region}): {sh_line}"
        shown = agent_assist("review", "show", str(unknown), "--store", url, env=env).stdout.splitlines()
        assert shown[1] == (f"CRISIS: support line: {sh_line} (region {region}'s crisis line; the packs hold "
                            "no line for rule old-site-crisis)")
        shown = agent_assist("review", "show", str(transfer), "--store", url, env=env).stdout.splitlines()
        assert shown[1] == f"CRISIS · family violence: support line (region {region}): {fv_line}"
        report = tmp_path / f"report-{region}.html"
        assert agent_assist("review", "report", "--store", url, "-o", str(report), env=env).returncode == 0
        page = report.read_text()
        assert f'<p class="support">Support line (region {region}): {html.escape(fv_line)}</p>' in page
        assert f'<p class="support">Support line (region {region}): {html.escape(sh_line)}</p>' in page
        banner = page.split('<div class="crisis-banner" id="crisis">')[1].split("</div>")[0]
        assert all(f'href="#flag-{i}"' in banner for i in (fv, sh, unknown, transfer))
        card = page.split(f'id="flag-{transfer}">')[1].split('<div class="flag')[0]
        assert f'<p class="support">Support line (region {region}): {html.escape(fv_line)}</p>' in card
        assert page.index('id="crisis"') < page.index('id="flags"')  # before anything else
    assert "crisis" not in agent_assist("review", "show", str(ids["c-manager:manager-request"]), "--store",
                                        url).stdout.splitlines()[1].lower()


def test_a_broken_site_pack_still_gives_the_regions_lines(tmp_path: Path) -> None:
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    broken = tmp_path / "site.toml"
    broken.write_text("[[rule]]\nid = 'x'\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[rules]\nregion = "NZ"\nsite_packs = ["{broken}"]\n')
    report = tmp_path / "report.html"
    done = agent_assist("review", "report", "--store", url, "-o", str(report),
                        env={"AGENT_ASSIST_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    page = report.read_text()
    assert "Support line (region NZ): Women&#x27;s Refuge 0800 733 843 · emergency 111" in page
    assert "support lines of region NZ without the site&#x27;s packs" in page
    shown = agent_assist("review", "show", str(ids["c-violence:crisis-family-violence"]), "--store", url,
                         env={"AGENT_ASSIST_CONFIG": str(config)})
    assert shown.returncode == 0 and "Women's Refuge 0800 733 843" in shown.stdout


def test_no_per_agent_scores_anywhere(tmp_path: Path) -> None:
    """Outcomes are about calls and rules, never a tally of an agent (DESIGN.md, the EU AI Act's
    line on rating workers): the summary names no agent and counts no outcome, and each outcome
    appears only on its own flag (its review cell and its audit line)."""
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    store = open_store(url)
    for key in ("c-violence:crisis-family-violence", "c-manager:manager-request", "c-violence:slow-down"):
        store.set_outcome(ids[key], Outcome.HANDLED_WELL, "lee")  # all three of sam's
    store.set_outcome(ids["c-manager:name-the-limits"], Outcome.FALSE_ALARM, "lee")
    store.close()
    report = tmp_path / "report.html"
    assert agent_assist("review", "report", "--store", url, "-o", str(report)).returncode == 0
    page = report.read_text()
    summary = page.split('<p class="summary">')[1].split("</p>")[0]
    assert not any(agent in summary for agent in ("sam", "ana", "raj"))
    assert "handled well" not in summary and "false alarm" not in summary
    assert page.count("handled well") == 3 * 2 and page.count("false alarm") == 1 * 2
    listed = agent_assist("review", "list", "--store", url)
    assert listed.stdout.count("handled well") == 3 and "sam" not in listed.stderr
    rows = list(csv.DictReader(io.StringIO(agent_assist("review", "export", "--csv", "--store", url).stdout)))
    assert len(rows) == 17  # one row per flag, no totals


def test_a_false_alarm_counts_against_the_rule_that_fired(tmp_path: Path, calls: Path) -> None:  # noqa: F811
    """`rules evaluate --store`: the labelled calls give manager-request a precision of 1.0; two of
    its flags reviewed as false alarms and one handled well bring it to 0.5 with the reviews. A flag
    only followed up for the agent's wellbeing, or the agent's own, is no label."""
    url = str(tmp_path / "flags.sqlite3")
    ids = _shift(url)
    store = open_store(url)
    sink = FlagStoreSink(store, StoreOptions(agent="ana"))
    for n, t in enumerate((10.0, 20.0)):
        sink.emit(Flag(t=t, call_id="c-billing", kind="escalation", severity="high",  # type: ignore[arg-type]
                       reason="manager-request: escalation 0.9", utterance_id=f"x{n}",
                       rule="manager-request"))
    sink.close()
    extra = [f.id for f in store.flags() if f.call_id == "c-billing" and f.rule == "manager-request"]
    for flag_id in extra:
        store.set_outcome(flag_id, Outcome.FALSE_ALARM, "lee")
    store.set_outcome(ids["c-manager:manager-request"], Outcome.HANDLED_WELL, "lee")
    store.set_outcome(ids["c-manager:name-the-limits"], Outcome.FALSE_ALARM, "lee")
    store.set_outcome(ids["c-violence:agent-check-in"], Outcome.FOLLOW_UP_WELLBEING, "lee")
    store.set_outcome(ids["c-hotwater:agent"], Outcome.HANDLED_WELL, "lee")
    store.close()
    out = tmp_path / "report.json"
    done = agent_assist("rules", "evaluate", str(calls), "--events-dir", str(calls / "events"),
                        "--store", url, "--json", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    manager = summary["rules"]["manager-request"]
    assert (manager["prompts"], manager["precision"]) == (1, 1.0)  # the labelled calls alone
    reviewed = ("reviewed", "reviewed_false_alarms", "precision_with_reviews")
    assert tuple(manager[k] for k in reviewed) == (3, 2, 0.5)
    assert tuple(summary["rules"]["name-the-limits"][k] for k in reviewed) == (1, 1, 0.0)
    assert summary["reviewed_flags"] == 4 and summary["reviewed_false_alarms"] == 3
    assert {(a["rule"], a.get("flag")) for a in summary["false_alarms"] if a["source"] == "review"} == {
        ("manager-request", extra[0]), ("manager-request", extra[1]),
        ("name-the-limits", ids["c-manager:name-the-limits"])}
    assert "reviewed flags (supervisors' outcomes): 4, 3 false alarm(s)" in done.stdout
    assert re.search(r"\n  manager-request +3 +2 +0\.50\n", done.stdout)
    # the store alone: no calls replayed
    alone = agent_assist("rules", "evaluate", "--store", url)
    assert alone.returncode == 0 and alone.stdout.startswith("reviewed flags (supervisors' outcomes): 4")
    nothing = agent_assist("rules", "evaluate")
    assert nothing.returncode == 2 and "nothing to measure: give labelled calls" in nothing.stderr
    later = agent_assist("rules", "evaluate", "--store", url, "--since", "2099-01-01")
    assert later.returncode == 0 and later.stdout == (
        "no flags reviewed as handled well or false alarm, and no prompts rated by agents: nothing to "
        "measure (`agent-assist review outcome` and the cards' Helpful / Not helpful record them)\n")

"""`rules replay` over event logs (as `replay --events` writes them): the rules run again on the
turns as they were scored on the call, with no audio and no model; and `--compare`'s detail.

tests/data/events/week.jsonl is a real event log, two calls appended by the real command:

    agent-assist replay data/samples/calls/call-04.ogg --call-id call-04 --events week.jsonl -q
    agent-assist replay data/samples/calls/calm-02.ogg --call-id calm-02 --events week.jsonl -q

(redacted as every event log is: "[account]" where a claim reference was read out).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from agent_assist import resources
from agent_assist.events import Prompt, event_from_json
from agent_assist.quality import calls as rr
from agent_assist.rules.packs import load_for_run
from agent_assist.scoring.models import shipped
from agent_assist.scoring.scorer import Scorer
from tests.conftest import DATA, REPO
from tests.test_cli import agent_assist

WEEK = DATA / "events" / "week.jsonl"
WEEK_PACK = DATA / "events" / "week-pack.toml"  # the default pack as those calls ran it
AU = resources.regions() / "au.toml"  # what the replay ran with (the default configuration's region)
# a stricter pack: the calls' own (WEEK_PACK) with these changes
STRICTER = WEEK_PACK.read_text(encoding="utf-8") + """
[[override]]
id = "deescalate-validate"
when = "escalation >= 0.9"

[[override]]
id = "manager-request"
enabled = false

[[rule]]
id = "documents-again"
when = 'customer says "three times", "sent that"'
prompt = "Say you'll find what they already sent."
principle = "trust"
source = "site"
"""


def no_scorer() -> Scorer:
    raise AssertionError("an event log with its scores needs no scoring")


def logged(path: Path, kind: type) -> list:
    return [e for e in (event_from_json(line) for line in path.read_text(encoding="utf-8").splitlines())
            if isinstance(e, kind)]


def test_an_event_log_reruns_to_the_prompts_the_call_showed():
    """The rules, run again on the log's scored turns and partials with the pack the call ran,
    give back exactly the prompts the call showed: nothing transcribed or scored again."""
    recordings = list(rr.recordings([WEEK], no_scorer))
    assert [r.call_id for r in recordings] == ["call-04", "calm-02"]
    assert all(r.partials and not r.scored_here for r in recordings)
    assert not any(isinstance(e, Prompt) for r in recordings for e in r.events)  # the log's own are set aside
    pack = load_for_run((AU, WEEK_PACK))
    again = [(r.call_id, p.rule, p.t) for r in recordings for p in rr.run(r, pack).prompts]
    shown = [(p.call_id, p.rule, p.t) for p in logged(WEEK, Prompt)]
    assert again == shown and len(shown) == 4
    assert [rule for call, rule, _ in again if call == "calm-02"] == []


def test_the_command_reads_event_logs_and_folders_of_them(tmp_path):
    result = agent_assist("rules", "replay", str(WEEK), "--rules", str(WEEK_PACK))
    assert result.returncode == 0, result.stderr
    assert "call call-04 (01:24.7)" in result.stdout and "manager-request (choice)" in result.stdout
    assert "call calm-02 (01:14.1)\n  no prompts" in result.stdout
    assert "2 calls, 2.6 min: 4 prompts" in result.stdout
    assert "partial transcripts" not in result.stdout  # the log has the call's partials
    week = tmp_path / "week"
    week.mkdir()
    shutil.copy(WEEK, week / "monday.jsonl")
    (week / "notes.txt").write_text("not a call", encoding="utf-8")
    folder = agent_assist("rules", "replay", str(week), "-q", "--rules", str(write(tmp_path, STRICTER)))
    assert folder.returncode == 0, folder.stderr
    assert folder.stdout.startswith("2 calls, 2.6 min: 4 prompts")
    assert "manager-request" not in folder.stdout and "documents-again" in folder.stdout


def write(folder: Path, text: str, name: str = "stricter.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_calls_interleaved_or_cut_off_in_one_log(tmp_path):
    """A log may hold calls whose events interleave (several at once), the same id twice (a call
    replayed twice), and a call that never ended (the program stopped): each is its own call."""
    lines = WEEK.read_text(encoding="utf-8").splitlines()
    first = [x for x in lines if json.loads(x)["call_id"] == "call-04"]
    second = [x for x in lines if json.loads(x)["call_id"] == "calm-02"]
    mixed = [x for pair in zip(first, second, strict=False) for x in pair]
    mixed += first[len(second):] + second[len(first):]
    log = write(tmp_path, "\n".join([*mixed, *first, *second[:-1]]) + "\n", "mixed.jsonl")
    calls = list(rr.event_log_calls(log))
    assert [call_id for call_id, _ in calls] == ["calm-02", "call-04", "call-04", "calm-02"]
    assert [len(events) for _, events in calls] == [len(second), len(first), len(first), len(second) - 1]


def test_a_line_that_is_not_an_event_is_one_line_with_its_number(tmp_path):
    log = write(tmp_path, WEEK.read_text(encoding="utf-8") + '{"type": "prompt", "t": "soon"}\n', "bad.jsonl")
    result = agent_assist("rules", "replay", str(log), "-q")
    assert result.returncode == 1
    assert result.stderr.startswith(f"agent-assist: error: {log}:102: not an event of an event log "
                                    "(bad prompt")
    assert len(result.stderr.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    none = agent_assist("rules", "replay", str(empty))
    assert none.returncode == 1 and "no calls (audio files or *.jsonl) in the folder" in none.stderr


def test_a_log_without_scores_is_scored_from_its_words(tmp_path):
    """A log of a pipeline that did not score: its turns are scored here, from the words alone, as
    a transcript's are, and the rules act on them."""
    lines = []
    for line in WEEK.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        event.pop("scores", None)
        lines.append(json.dumps(event))
    log = write(tmp_path, "\n".join(lines) + "\n", "unscored.jsonl")
    recordings = list(rr.recordings([log], lambda: Scorer(shipped(), use_voice=False)))
    assert all(r.scored_here for r in recordings)
    rules = {p.rule for r in recordings for p in rr.run(r, load_for_run((AU, WEEK_PACK))).prompts}
    assert "manager-request" in rules  # a phrase, and scores from the words


# -- --compare ---------------------------------------------------------------------------------------


def test_compare_shows_when_the_words_and_the_scores_that_decided(tmp_path):
    stricter = write(tmp_path, STRICTER)
    result = agent_assist("rules", "replay", str(WEEK), "--compare", str(WEEK_PACK),
                          str(stricter))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "call call-04 (01:24.7):"
    # the same prompt later: B's threshold waits for a later partial of the same turn
    assert out[1] == ("  ~ [00:35.3] deescalate-validate on u6, partial: escalation 0.94 "
                      "(A at 00:32.3, +3.0 s with B)")
    assert out[2].startswith('      "I\'ve sent that certificate three times now')
    assert out[3] == "  + [00:40.5] documents-again on u6: a phrase (not in A)"
    assert out[5] == "  - [01:02.3] manager-request on u10: a phrase (switched off in B)"
    assert out[6] == ('      "No, I want this looked at by someone in complaints today, and if it drags on '
                      "any longer I'll be taking it to the ombudsman\"")
    assert out[-1] == "2 calls, 1 with differences; prompts: 4 with A, 4 with B (+0)"
    assert "calm-02" not in result.stdout
    assert result.stderr == ""  # no progress bar where stderr is not a terminal


def test_compare_words_are_redacted_and_say_why_the_other_pack_did_not(tmp_path):
    """A transcript's words come unredacted; what compare shows of them is redacted as an event log
    is. A rule whose condition is the same in both packs but did not fire is said to be held back."""
    turn = {"speaker": "customer", "start": 1.0, "end": 6.0,
            "text": "my card number is 4111 1111 1111 1111 and I want a manager now"}
    calls = write(tmp_path, json.dumps({"call_id": "card", "turns": [turn]}) + "\n", "calls.jsonl")
    quieter = write(tmp_path, '[[override]]\nid = "manager-request"\nenabled = false\n', "quieter.toml")
    result = agent_assist("rules", "replay", str(calls), "--compare", str(REPO / "prompts" / "default.toml"),
                          str(quieter))
    assert result.returncode == 0, result.stderr
    assert "  - [00:06.5] manager-request on u1: a phrase (switched off in B)" in result.stdout
    assert "4111" not in result.stdout and "[card]" in result.stdout


def test_html_needs_compare(tmp_path):
    result = agent_assist("rules", "replay", str(WEEK), "--html", str(tmp_path / "x.html"))
    assert result.returncode == 2 and "--html draws two packs side by side" in result.stderr


def test_the_progress_bar_shows_only_on_a_terminal(monkeypatch):
    """On a terminal, a bar counts the files done and names the last; anywhere else, nothing."""
    import io
    import sys

    from agent_assist.cli.rules import _progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        with _progress(2, "replaying") as step:
            step("monday.jsonl")
            step("tuesday.jsonl")
        said = stream.getvalue()
        assert ("replaying" in said and "2/2" in said and "tuesday.jsonl" in said) is shown
        assert said == "" or shown
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with _progress(1, "replaying") as step:  # one file: no bar
        step("monday.jsonl")
    assert terminal.getvalue() == ""


def test_an_event_log_written_by_replay_events_replays_the_same(tmp_path):
    """End to end on audio: the log `replay --events` writes, given to `rules replay`, prints the
    timeline `rules replay` prints from the audio itself."""
    log = tmp_path / "events.jsonl"
    speech = DATA / "speech" / "jfk.flac"
    replayed = agent_assist("replay", str(speech), "--call-id", "jfk", "--events", str(log), "-q")
    assert replayed.returncode == 0, replayed.stderr
    from_audio = agent_assist("rules", "replay", str(speech))
    from_log = agent_assist("rules", "replay", str(log))
    assert from_log.returncode == 0, from_log.stderr
    assert from_log.stdout == from_audio.stdout and from_log.stdout.startswith("call jfk (00:11.0)")


def test_a_rule_held_back_by_its_cooldown_is_not_blamed_on_its_condition(tmp_path):
    """B fires deescalate-validate at 0.77 where A did not: A's own condition (>= 0.6) holds on the
    same scores, so A held it back (its cooldown after an earlier one); at 0.65 A's condition
    (>= 0.7 there) is what differs, and compare says that instead."""
    from agent_assist.events import Prompt
    from agent_assist.quality.compare import _elsewhere

    stricter = '[[override]]\nid = "deescalate-validate"\nwhen = "escalation >= 0.7"\n'
    a = load_for_run([write(tmp_path, stricter, "a.toml")])
    b = load_for_run(())

    def fired(escalation: float) -> Prompt:
        return Prompt(t=23.7, call_id="c", rule="deescalate-validate", principle="safety", text="…",
                      example="", priority=60, signals=("escalation",),
                      why={"utterance_id": "u6", "values": {"escalation": escalation}})

    assert _elsewhere(fired(0.77), b, a, "A") == (
        "held back in A (a cooldown, a cap, or a prompt of higher priority); its condition there holds "
        "too: when escalation >= 0.7")
    assert _elsewhere(fired(0.65), b, a, "A") == "A: when escalation >= 0.7"
    # a condition reading a signal the prompt did not record cannot be judged: its words are shown
    a2 = load_for_run([write(tmp_path, '[[override]]\nid = "deescalate-validate"\n'
                                       'when = "escalation >= 0.5 and call_s >= 30"\n', "a2.toml")])
    assert _elsewhere(fired(0.77), b, a2, "A") == "A: when escalation >= 0.5 and call_s >= 30"
    # the same condition, but A asks a partial's reading to hold on more partials running
    a3 = load_for_run([write(tmp_path, '[[override]]\nid = "deescalate-validate"\nconfirm_partials = 3\n',
                             "a3.toml")])
    on_partial = replace(fired(0.77), why={**fired(0.77).why, "partial": True})
    assert _elsewhere(on_partial, b, a3, "A") == (
        "held back in A, or later there: on a partial it waits for its condition on 3 partials running "
        "(confirm_partials)")
    assert _elsewhere(fired(0.77), b, a3, "A").startswith("held back in A (a cooldown")  # a final's

"""The floor without a browser: the board's state driven by scripted bus messages, the pages it makes
(escaped; check-ins for the team leader only; the wallboard's counts only), the settings' one-line
errors, sign-in, expiring sessions and the CSRF check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_assist.bus import BusMessage
from agent_assist.errors import AgentAssistError
from agent_assist.events import Flag, Retract
from agent_assist.floor import pages
from agent_assist.floor.auth import Sessions, check_password, csrf_ok, hash_password
from agent_assist.floor.board import ALERT_S, ENDED_S, Board
from agent_assist.floor.settings import Account, FloorSettings, load
from agent_assist.store.floor import Claim
from tests.floor_site import crisis, end, prompt, start, turn

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
LEE = Account("lee", teams=("east",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def msg(event, agent: str = "sam", team: str = "east") -> BusMessage:
    return BusMessage(event, agent, team)


def fed(*messages: tuple[BusMessage, int | None]) -> tuple[Board, Clock]:
    clock = Clock()
    board = Board(clock)
    for message, flag_id in messages:
        board.apply(message, flag_id)
    return board, clock


def test_a_call_follows_its_events_and_an_urgent_flag_goes_to_the_top():
    board, clock = fed((msg(start("c1")), None), (msg(start("c2"), "kim", "west"), None),
                       (msg(turn("c1", 1, 5.0, "words", 0.7)), None), (msg(prompt("c1", 5.0)), None))
    call = board.calls["c1"]
    assert (call.distress, call.call_t, call.prompt) == (0.7, 5.0, "Slow down; acknowledge what they shared.")
    clock.now += 1
    alert = board.apply(msg(crisis("c2", 9.0, 1), "kim", "west"), 42)
    assert alert is not None and alert.flag.id == 42 and alert.agent == "kim"
    assert board.rows()[0].call_id == "c2"  # the call with an open alert first
    board.claimed(Claim(42, "lee", "2026-11-30T05:00:00Z"))
    assert board.counts()["open_crisis_alerts"] == 0 and board.open_alerts()[0].flag.id == 42
    board.apply(msg(Retract(t=6.0, call_id="c1", rule="acknowledge-disclosure", prompt_t=5.0,
                            utterance_id="u1", reason="misheard")))
    assert board.calls["c1"].prompt == ""


def test_ended_calls_and_old_alerts_leave_the_board_and_the_wallboard_counts():
    board, clock = fed((msg(start("c1")), None), (msg(start("c2")), None), (msg(crisis("c1", 3.0, 1)), 7),
                       (msg(Flag(t=4.0, call_id="c2", kind="escalation", severity="medium", reason="r",
                                 utterance_id="u1", rule="manager-request")), 8))
    assert board.counts() == {"live_calls": 2, "open_crisis_alerts": 1, "escalations_last_hour": 1}
    board.apply(msg(end("c1", 10.0)))
    assert board.counts()["live_calls"] == 1 and "c1" in board.calls  # shown as ended a while
    clock.now += ENDED_S + 1
    assert board.expire() and "c1" not in board.calls
    clock.now += ALERT_S
    board.expire()
    assert board.counts() == {"live_calls": 1, "open_crisis_alerts": 0, "escalations_last_hour": 0}


def test_the_board_escapes_every_value_and_shows_check_ins_to_the_team_leader_only():
    check_in = Flag(t=8.0, call_id="c1", kind="agent", severity="high", reason="agent-check-in: distress",
                    utterance_id="u1", rule="agent-check-in")
    board, clock = fed((msg(start("c1"), HOSTILE, "east"), None),
                       (msg(prompt("c1", 2.0, HOSTILE), HOSTILE), None), (msg(check_in, HOSTILE), 5))
    assert not board.alerts  # a check-in is care for the agent, never an alert
    html = pages.board_fragment(board, LEE, "tok", clock.now)
    assert "<img" not in html and "<script" not in html and "&lt;img src=x" in html
    assert "check-in" in html
    other = pages.board_fragment(board, Account("kim", teams=("west",)), "tok", clock.now)
    assert "check-in" not in other


def test_the_wallboard_is_counts_only():
    board, _ = fed((msg(start("secret-call"), "named-agent", "team-x"), None),
                   (msg(prompt("secret-call", 2.0, "words of a prompt")), None))
    html = pages.wall_fragment(board.counts())
    text = re.sub(r"<[^>]+>", " ", html)
    assert not re.search(r"named-agent|team-x|secret-call|words of", html)
    assert set(re.findall(r"[a-z]+", text)) <= {"live", "calls", "open", "crisis", "alerts", "escalations",
                                                 "in", "the", "last", "hour"}


def test_a_sparkline_draws_both_lines_between_0_and_1():
    svg = pages.sparkline([(1.0, 0.0, 1.0), (2.0, 0.5, 0.5), (3.0, 1.0, 0.0)], width=102, height=22)
    points = re.findall(r'points="([^"]+)"', svg)
    assert points == ["1.0,21.0 51.0,11.0 101.0,1.0", "1.0,1.0 51.0,11.0 101.0,21.0"]
    assert "no turns yet" in pages.sparkline([])


def test_settings_from_the_configuration_file_and_their_one_line_errors(tmp_path: Path):
    path = tmp_path / "config.toml"
    hashed = hash_password("pw")
    path.write_text(f'[floor]\nport = 9000\nuser_header = "X-Remote-User"\n[floor.accounts.lee]\n'
                    f'password_hash = "{hashed}"\nteams = ["east"]\n', encoding="utf-8")
    settings = load(path)
    assert settings.bind == "127.0.0.1" and settings.port == 9000
    assert settings.account("lee").teams == ("east",)
    assert settings.account("someone").teams == ()
    for text, says in (('[floor]\nbind = 1\n', "floor.bind must be text"),
                       ('[floor]\nport = 0\n', "floor.port must be a number"),
                       ('[floor]\nwho = 1\n', "unknown setting floor.who"),
                       ('[floor.accounts.lee]\npassword_hash = "hunter2"\n', "must be an Argon2 hash"),
                       ('[floor.accounts.lee]\nteams = "east"\n', "teams must be a list")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(AgentAssistError, match=says) as caught:
            load(path)
        assert "\n" not in str(caught.value)
    assert load(tmp_path / "missing.toml") == FloorSettings()


def test_passwords_sessions_and_the_csrf_token():
    settings = FloorSettings(session_minutes=60, idle_minutes=10,
                             accounts={"lee": Account("lee", hash_password("right"))})
    assert check_password(settings, "lee", "right")
    assert not check_password(settings, "lee", "wrong") and not check_password(settings, "nobody", "right")
    clock = Clock()
    sessions = Sessions(settings, clock)
    session = sessions.start("lee")
    assert sessions.get(session.id) is session and csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "") and not csrf_ok(session, session.id)
    clock.now += 9 * 60
    assert sessions.get(session.id) is session  # active: idle time starts again
    clock.now += 11 * 60
    assert sessions.get(session.id) is None  # idle too long
    again = sessions.start("lee")
    for _ in range(7):
        clock.now += 9 * 60
        sessions.get(again.id)
    assert sessions.get(again.id) is None  # past the session's whole length, however active
    proxied = sessions.for_user("kim")
    assert sessions.for_user("kim") is proxied


def test_hash_password_prints_a_hash_the_floor_accepts():
    from click.testing import CliRunner

    from agent_assist.cli import cli

    done = CliRunner().invoke(cli, ["floor", "hash-password", "--password-stdin"], input="s3cret\n")
    assert done.exit_code == 0 and done.output.startswith("$argon2id$")
    settings = FloorSettings(accounts={"lee": Account("lee", done.output.strip())})
    assert check_password(settings, "lee", "s3cret") and not check_password(settings, "lee", "s3cret\n")
    empty = CliRunner().invoke(cli, ["floor", "hash-password", "--password-stdin"], input="")
    assert empty.exit_code == 2 and "an empty password" in empty.output

"""The supervisors' floor in a real browser (headless Chromium from Debian, driven by Selenium with
Debian's chromium-driver) against a real PostgreSQL and `agent-assist floor` in its own process:
calls appear live, a crisis flag shows within 2 s, one of two claims wins and both supervisors see
whose, a note reaches the agent's desktop, the wallboard holds no names or words, nobody gets in
without signing in, a forged action is refused and hostile text stays text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_assist.bus import NoteFeed, open_bus
from agent_assist.events import Flag, SupervisorNote
from agent_assist.sinks import EventList
from agent_assist.store import floor as floor_store
from agent_assist.store import open_store
from tests import floor_site as site
from tests.floor_site import Desk, crisis, end, prompt, start, turn, wait_for

pytestmark = pytest.mark.skipif(site.missing() is not None, reason=site.missing() or "")

HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


@pytest.fixture(scope="module")
def floor(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the floor's base URL, its store's URL)."""
    from tests import pg

    url = pg.fresh_database(pg_server)
    open_store(url).close()
    with site.floor_server(url, tmp_path_factory.mktemp("floor")) as base:
        yield base, url


@pytest.fixture(scope="module")
def lee(floor: tuple[str, str]) -> Iterator[Any]:
    driver = site.browser()
    site.sign_in(driver, floor[0], "lee")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def kim(floor: tuple[str, str]) -> Iterator[Any]:
    driver = site.browser()
    site.sign_in(driver, floor[0], "kim")
    yield driver
    driver.quit()


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _text(driver: Any, selector: str) -> str:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return " ".join(e.text for e in _css(driver, selector))
    except StaleElementReferenceException:  # the board was swapped while reading: read again
        return ""


def _click(driver: Any, selector: str) -> bool:
    """Click the first element `selector` finds; False when there is none yet or the board was
    drawn again under it (every change on the floor draws it again): try again."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        found = _css(driver, selector)
        if found:
            found[0].click()
            return True
    except StaleElementReferenceException:
        pass
    return False


def test_an_unauthenticated_request_is_sent_to_sign_in_or_refused(floor: tuple[str, str]) -> None:
    anyone = site.Http(floor[0])
    status, _, headers = anyone.request("/", headers={"Accept": "text/html"})
    assert status == 303 and headers["location"] == "/login"
    for path, data in (("/events", None), ("/wall", None), ("/call/c1", None), ("/claim/1", {"csrf": "x"}),
                       ("/note/c1", {"text": "hi"})):
        status, _, _ = anyone.request(path, data)
        assert status == 401, path
    status, page, _ = anyone.request("/login", {"user": "lee", "password": "wrong"})
    assert status == 401 and "do not match" in page


def test_a_crisis_flag_shows_within_2_s_and_of_two_claims_one_wins_visibly(floor, lee, kim) -> None:
    url = floor[1]
    desk = Desk(url, "sam", "east")
    desk.emit(start("c-claim"), turn("c-claim", 1, 5.0, "I can't do this any more", 0.7),
              prompt("c-claim", 5.0))
    wait_for(lambda: 'data-call="c-claim"' in lee.page_source, 10)
    started = time.monotonic()
    desk.emit(crisis("c-claim", 9.0, 2))  # committed and published when emit returns
    for driver in (lee, kim):
        wait_for(lambda d=driver: _css(d, 'tr.alert-open[data-kind="crisis"] button.claim'), 2.0)
    shown_after = time.monotonic() - started
    assert shown_after <= 2.0
    for driver in (lee, kim):
        banner = wait_for(lambda d=driver: _text(d, "#banner"), 2.0)
        assert "CRISIS on sam's call (east): crisis-self-harm" in banner
    first = _css(lee, "tr.alert-open button.claim")[0].get_attribute("data-flag")
    # both click at once (the two browsers' clicks sent before either answer comes back). Each page
    # keeps its claim form as it was, so a click that reaches a board already drawn again with the
    # other's claim (a loaded machine: the first answer may come back before the second click is
    # sent) is still the click its supervisor made on the board they saw, through the page's code.
    for driver in (lee, kim):
        driver.execute_script("window.seen = document.querySelector("
                              "'button.claim[data-flag=\"' + arguments[0] + '\"]').form.outerHTML", first)
    for driver in (lee, kim):
        driver.execute_script(
            "let b = document.querySelector('button.claim[data-flag=\"' + arguments[0] + '\"]');"
            "if (!b) { const held = document.createElement('div'); held.innerHTML = window.seen;"
            "          document.body.appendChild(held); b = held.querySelector('button.claim'); }"
            "b.click();", first)
    winner = open_store(url)
    claims = wait_for(lambda: floor_store.claims(winner, [int(first)]), 5)
    who = claims[int(first)].by
    loser = kim if who == "lee" else lee
    for driver in (lee, kim):
        wait_for(lambda d=driver: f"Claimed by {who}" in _text(d, f'tr[data-flag="{first}"]'), 3)
    assert "Already claimed by " + who in wait_for(lambda: _text(loser, "#banner").count("Already") and
                                                  _text(loser, "#banner"), 3)
    winner.close()
    desk.close()


def test_a_note_reaches_the_agents_desktop_redacted(floor, lee) -> None:

    url = floor[1]
    desk = Desk(url, "noor", "east")
    desk.emit(start("c-note"), turn("c-note", 1, 4.0, "hello", 0.2))
    received = EventList()
    feed = NoteFeed(url, "noor", received)  # what `run` starts: noor's desktop, listening
    assert feed.ready.wait(10)
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains

    def redrawn(element: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        return False

    def clicked() -> Any:  # the note's box, clicked (the board may be drawn again as it is found)
        try:
            found = _css(lee, 'tr[data-call="c-note"] form.note input[name="text"]')
            if found:
                found[0].click()
                return found[0]
        except StaleElementReferenceException:
            pass
        return None

    box = wait_for(clicked, 5)
    ActionChains(lee).send_keys("I'm listening in, ").perform()
    # the call goes on while the supervisor types: the board is drawn again, and the words stay
    desk.emit(turn("c-note", 2, 8.0, "still here", 0.3))
    wait_for(lambda: redrawn(box), 5)
    ActionChains(lee).send_keys("take your time. Card 4111 1111 1111 1111").perform()
    wait_for(lambda: _click(lee, 'tr[data-call="c-note"] form.note button'), 5)
    notes = wait_for(lambda: [e for e in received.events if isinstance(e, SupervisorNote)], 5)
    assert notes[0].author == "lee" and notes[0].agent == "noor" and notes[0].call_id == "c-note"
    assert "take your time" in notes[0].text and "4111" not in notes[0].text
    store = open_store(url)
    kept = floor_store.notes_of(store, "c-note")
    assert [n["text"] for n in kept] == [notes[0].text]  # recorded, as sent
    store.close()
    feed.close()
    desk.close()


def test_the_wallboard_shows_counts_and_no_names_or_words(floor, kim) -> None:
    base, url = floor
    kim.get(base + "/wall")
    before = int(wait_for(lambda: _text(kim, "#live_calls .n"), 5))
    desk = Desk(url, "walter-the-agent", "wallteam")
    desk.emit(start("c-wall-secret"), turn("c-wall-secret", 1, 3.0, "my secret words", 0.9),
              prompt("c-wall-secret", 3.0, "A prompt's own words"))
    wait_for(lambda: _text(kim, "#live_calls .n") == str(before + 1), 3)  # live, by the bus
    body = kim.find_element("tag name", "body").text
    for word in ("walter", "wallteam", "c-wall-secret", "secret words", "prompt's own", "sam", "noor", "lee",
                 "kim", "CRISIS on"):
        assert word not in body, word
    assert {"live calls", "open crisis alerts", "escalations in the last hour"} <= {
        line.strip() for line in body.splitlines()}
    desk.emit(end("c-wall-secret", 8.0))
    desk.close()


def test_a_forged_claim_without_the_pages_token_is_refused(floor) -> None:
    base, url = floor
    desk = Desk(url, "sam", "east")
    desk.emit(start("c-forged"), crisis("c-forged", 2.0, 1))
    store = open_store(url)
    flag = floor_store.flag_id(store, "c-forged", 2.0, "crisis", "crisis-self-harm", "rules")
    assert flag is not None
    forger = site.Http(base)
    forger.sign_in("kim")  # a signed-in supervisor's cookie, as a forged form from another site carries
    for data, headers in (({}, {}), ({"csrf": "guessed"}, {}), ({}, {"X-CSRF-Token": "guessed"})):
        status, said, _ = forger.request(f"/claim/{flag}", data, headers)
        assert status == 403 and "token" in said
    status, _, _ = forger.request(f"/outcome/{flag}", {"outcome": "false_alarm"})
    assert status == 403
    status, _, _ = forger.request("/note/c-forged", {"text": "forged"})
    assert status == 403
    assert floor_store.claims(store, [flag]) == {} and store.flag(flag).audit == ()
    store.close()
    desk.close()


def test_hostile_text_renders_inert_and_every_view_of_the_words_is_audited(floor, lee, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    base, url = floor
    desk = Desk(url, HOSTILE, "east")
    desk.emit(start("c-hostile"), turn("c-hostile", 1, 4.0, "they said " + HOSTILE, 0.6),
              prompt("c-hostile", 4.0), crisis("c-hostile", 6.0, 1), turn("c-hostile", 2, 8.0, HOSTILE, 0.5))
    lee.get(base + "/")
    wait_for(lambda: HOSTILE in _text(lee, 'tr[data-call="c-hostile"]'), 5)  # shown as text
    assert lee.title != "pwned" and not _css(lee, "#board img")
    wait_for(lambda: _click(lee, 'tr[data-call="c-hostile"] a[href="/call/c-hostile"]'), 5)
    wait_for(lambda: "c-hostile" in lee.title, 5)
    assert HOSTILE in lee.find_element(By.CSS_SELECTOR, ".excerpt").text
    assert lee.title != "pwned" and not _css(lee, "main img, .excerpt img, .excerpt script")
    store = open_store(url)
    views = floor_store.views(store, ["c-hostile"])["c-hostile"]
    assert [(v.viewer, v.what) for v in views] == [("lee", "call page")]
    from agent_assist.review import shift_report
    from agent_assist.store import Filters

    report, _, _ = shift_report(store, Filters(), "today")
    assert "Its words viewed on the floor by: lee (" in report
    # the outcome set there is the review's own
    flag = floor_store.flag_id(store, "c-hostile", 6.0, "crisis", "crisis-self-harm", "rules")
    lee.find_element(By.CSS_SELECTOR, f'#outcomes tr[data-flag="{flag}"] button').click()
    wait_for(lambda: store.flag(flag).outcomes, 5)
    assert [str(o) for o in store.flag(flag).outcomes] == ["handled_well"]
    assert store.flag(flag).audit[0].reviewer == "lee"
    store.close()
    desk.close()


def test_a_check_in_is_shown_only_to_the_agents_own_team_leader(floor, lee, kim) -> None:
    base, url = floor
    desk = Desk(url, "westy", "west")
    check_in = Flag(t=9.0, call_id="c-check", kind="agent", severity="medium", utterance_id="u1",
                    reason="agent-check-in: distress 0.9", rule="agent-check-in")
    desk.emit(start("c-check"), turn("c-check", 1, 8.0, "awful", 0.9), check_in)
    for driver in (lee, kim):
        driver.get(base + "/")
    wait_for(lambda: "check-in" in _text(kim, 'tr[data-call="c-check"]'), 5)  # kim leads west
    assert 'data-call="c-check"' in lee.page_source
    assert "check-in" not in _text(lee, 'tr[data-call="c-check"]')
    desk.close()


def test_the_board_and_the_wallboard_as_a_shift_shows_them(pg_server, floor, lee, kim,
                                                          tmp_path: Path) -> None:
    """A shift of five calls on a floor of its own: the board (a crisis claimed, a high escalation
    open, sparklines, the latest prompts) and the wallboard, as pictures for docs/ (written to the
    test's folder, or to docs/ with FLOOR_SCREENSHOTS=1)."""
    import os

    from tests import pg

    url = pg.fresh_database(pg_server)
    open_store(url).close()
    out = Path(__file__).parent.parent / "docs" if os.environ.get("FLOOR_SCREENSHOTS") else tmp_path
    with site.floor_server(url, tmp_path) as base:
        desks = []
        shift = [("sam.k", "east", [0.2, 0.35, 0.5, 0.62, 0.81], "crisis"),
                 ("ana.r", "east", [0.3, 0.4, 0.45, 0.5, 0.55], "escalation"),
                 ("dev.p", "west", [0.5, 0.4, 0.3, 0.25, 0.2], ""),
                 ("mei.l", "west", [0.1, 0.15, 0.2, 0.2, 0.3], ""),
                 ("tom.b", "north", [0.2, 0.3, 0.25, 0.35, 0.3], "")]
        for n, (agent, team, distress, flag) in enumerate(shift):
            call_id = f"call-{n + 1:02d}"
            desk = Desk(url, agent, team)
            desk.emit(start(call_id), *[turn(call_id, i, 10.0 * (i + 1), "words", d)
                                        for i, d in enumerate(distress)])
            words = ["Acknowledge the fear before the process.", "Offer a choice about next steps.",
                     "Summarise what you'll do.", "Check they have what they need.",
                     "Signpost the hardship team."][n]
            desk.emit(prompt(call_id, 45.0, words))
            if flag == "crisis":
                desk.emit(crisis(call_id, 50.0, 5))
            elif flag == "escalation":
                desk.emit(Flag(t=52.0, call_id=call_id, kind="escalation", severity="high", utterance_id="u5",
                               reason="manager-request: escalation 0.91", rule="manager-request"))
            desks.append(desk)
        for driver, user in ((lee, "lee"), (kim, "kim")):
            site.sign_in(driver, base, user)
        wait_for(lambda: _click(lee, 'tr[data-kind="crisis"] button.claim'), 5)
        wait_for(lambda: "Claimed by lee" in _text(lee, "#alerts"), 5)
        lee.get(base + "/")
        wait_for(lambda: _css(lee, "#calls svg.spark"), 5)
        time.sleep(1.2)  # the clocks tick once
        lee.save_screenshot(str(out / "floor-board.png"))
        kim.get(base + "/wall")
        wait_for(lambda: _text(kim, "#live_calls .n") == "5", 5)
        kim.save_screenshot(str(out / "floor-wallboard.png"))
        assert _text(kim, "#open_crisis_alerts .n") == "0"  # claimed
        for desk in desks:
            desk.close()
    for driver, user in ((lee, "lee"), (kim, "kim")):  # a cookie is the host's, whatever the port
        site.sign_in(driver, floor[0], user)
    assert (out / "floor-board.png").stat().st_size > 10_000


def test_a_bus_message_for_the_board_carries_no_word_timings(floor) -> None:
    """What the floor is sent of a turn: its redacted text, never its word timings."""
    _, url = floor
    bus = open_bus(url)
    sub = bus.subscribe(agent="timings")
    desk = Desk(url, "timings", "east")
    desk.emit(start("c-timings"), turn("c-timings", 1, 2.0, "some words", 0.1))
    got = [sub.get(timeout=5) for _ in range(2)]
    assert [m.event.type for m in got if m] == ["call_start", "utterance"]
    assert getattr(got[1].event, "words", None) == ()
    sub.close()
    bus.close()
    desk.close()


@pytest.fixture(scope="module")
def family_violence_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 27 s of the labelled call-03 (left = customer, right = agent): the customer says her
    partner reads her texts and tracks her phone, and the family-violence crisis rule fires."""
    import av
    import numpy as np

    from agent_assist.audio.resample import StreamResampler
    from tests.conftest import SAMPLES
    from tests.pulse import RATE, write_wav

    resampler = StreamResampler(RATE, 2)
    with av.open(str(SAMPLES / "calls" / "call-03.ogg")) as container:
        blocks = [resampler.resample_frame(f) for f in container.decode(audio=0)]
    audio = np.concatenate([*blocks, resampler.flush()], axis=1)[:, : 27 * RATE]
    return write_wav(tmp_path_factory.mktemp("call-03") / "call-03-start.wav", audio[0], audio[1])


def test_a_replayed_call_appears_live_and_its_crisis_flag_within_2_s(floor, lee,
                                                                    family_violence_clip) -> None:
    """`agent-assist replay --realtime --store postgresql://…`: the call is on the board while it
    plays, and its crisis flag is on the board within 2 s of reaching the store's bus."""
    import subprocess
    import sys
    import threading

    base, url = floor
    lee.get(base + "/")
    arrived: dict[str, float] = {}
    bus = open_bus(url)
    sub = bus.subscribe(agent="rita")

    def listen() -> None:
        for message in sub:
            if isinstance(message.event, Flag) and message.event.kind == "crisis":
                arrived.setdefault("flag", time.monotonic())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    replay = subprocess.Popen(
        [sys.executable, "-m", "agent_assist.cli", "replay", str(family_violence_clip), "--realtime", "-q",
         "--store", url, "--agent-id", "rita", "--team", "east", "--call-id", "replayed-03"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: 'data-call="replayed-03"' in lee.page_source or replay.poll() is not None, 90,
                 every=0.2)  # live, while it plays
        assert replay.poll() is None, replay.communicate()[1][-800:]
        seen = wait_for(lambda: _css(lee, 'tr.alert[data-kind="crisis"]') and
                        "rita" in _text(lee, "#alerts") and time.monotonic(), 60, every=0.02)
        _, err = replay.communicate(timeout=120)
    finally:
        if replay.poll() is None:
            replay.kill()
        sub.close()
        listener.join(5)
        bus.close()
    assert replay.returncode == 0, err
    assert "flag" in arrived and seen - arrived["flag"] <= 2.0
    assert "CRISIS on rita's call (east): crisis-family-violence" in _text(lee, "#banner")

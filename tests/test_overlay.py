"""The overlay with pytest-qt on Qt's offscreen platform: cards, crisis cards, feedback, flags,
settings, shortcuts, the signal bridge, and the overlay over a real replayed call."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtWidgets import QAbstractButton, QAbstractSlider, QAbstractSpinBox, QLabel, QLineEdit

from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Feedback,
    Flag,
    Partial,
    Prompt,
    PromptSeen,
    PromptState,
    Retract,
    Scores,
    Speaker,
    Utterance,
    event_from_json,
)
from agent_assist.pipeline import AgentDesk
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.sinks import EventList, JsonlEventLog
from agent_assist.ui.app import OVERLAY_STAYS, OverlayRun, ReplayControls, display_problem
from agent_assist.ui.bridge import EventBridge
from agent_assist.ui.cards import CardLook
from agent_assist.ui.model import FADED_OPACITY, CardDeck, TrendMeter, crisis_header, situation_of
from agent_assist.ui.overlay import FlagDialog, Overlay, OverlaySettings, SettingsDialog
from tests.test_cli import EXE, agent_assist

CALL = "c1"


class Clock:
    """The deck's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class PauseRecorder(ReplayControls):
    """Real replay controls (flags and feedback go through a real desk) plus a pause switch, as a
    live session has."""

    live = True

    def __init__(self, desk: AgentDesk) -> None:
        super().__init__(desk)
        self.paused = False
        self.by: list[str] = []

    def toggle_pause(self, by: str = "api") -> bool:
        self.paused = not self.paused
        self.by.append(by)
        return self.paused


def prompt(rule: str, priority: int = 60, t: float = 10.0, sticky: bool = False, call: str = CALL,
           text: str | None = None) -> Prompt:
    return Prompt(t=t, call_id=call, rule=rule, principle="safety", text=text or f"Do the {rule} thing.",
                  example="Take your time.", priority=priority, signals=("distress",),
                  why={"utterance_id": "u3", "text": "He passed away.", "values": {"distress": 0.93}},
                  support_line="Lifeline 13 11 14" if sticky else "", sticky=sticky)


def start(call: str = CALL) -> CallStart:
    return CallStart(t=0.0, call_id=call, source="test", channels={"left": Speaker.CUSTOMER},
                     started_at="2026-11-23T00:00:00+00:00", model="tiny.en")


def customer(t: float, distress: float, escalation: float, n: int) -> Utterance:
    return Utterance(t=t, call_id=CALL, utterance_id=f"u{n}", speaker=Speaker.CUSTOMER, start=t - 2,
                     end=t, text="words", scores=Scores(distress, escalation, 0.0, {}, None, False,
                                                         {"distress": distress, "escalation": escalation}))


@pytest.fixture
def settings(tmp_path: Path) -> OverlaySettings:
    return OverlaySettings(QSettings(str(tmp_path / "overlay.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def ui(qtbot, settings):
    """An overlay on a real desk whose events land in `log`; `clock` drives fading."""

    class UI:
        def __init__(self, controls_cls=ReplayControls) -> None:
            self.log = EventList()
            self.desk = AgentDesk([self.log])
            self.controls = controls_cls(self.desk)
            self.clock = Clock()
            self.bridge = EventBridge()
            self.overlay = Overlay(self.controls, self.bridge, settings, CardDeck(now=self.clock))
            qtbot.addWidget(self.overlay)
            self.overlay.show()
            self.feed(start())

        def feed(self, *events) -> None:
            for event in events:
                self.bridge.emit(event)
            qtbot.waitUntil(lambda: not self.bridge._signalled)

        def burst(self, *events) -> None:
            """Events from another thread, as the pipeline sends them: the UI takes them in one go."""
            worker = threading.Thread(target=lambda: [self.bridge.emit(e) for e in events])
            worker.start()
            worker.join()
            qtbot.waitUntil(lambda: not self.bridge._signalled)

        def shown(self) -> list[str]:
            return [c.prompt.rule for c in self.overlay.deck.shown]

        def tray(self) -> list[str]:
            return [c.prompt.rule for c in self.overlay.deck.tray]

        def feedback(self) -> list[Feedback]:
            return [e for e in self.log.events if isinstance(e, Feedback)]

        def seen(self) -> list[tuple[str, PromptState]]:
            return [(e.rule, e.state) for e in self.log.events if isinstance(e, PromptSeen)]

    return UI


def test_a_fresh_prompt_always_shows_and_what_did_not_fit_waits_in_the_tray(ui):
    u = ui()
    u.feed(prompt("a", 60, t=10))
    view = u.overlay.views[(CALL, "a", 10)]
    assert view.isVisible() and view.text.text() == "Do the a thing."
    assert view.tag.text() == "safety"
    assert not u.overlay.tray_button.isVisible()
    u.feed(prompt("b", 70, t=12), prompt("c", 55, t=14))
    assert u.shown() == ["b", "c"], "the newest shows whatever its priority; then the highest"
    assert u.tray() == ["a"] and u.overlay.tray_button.isVisible()
    assert u.overlay.tray_button.text() == "+1 more \u25be"
    u.feed(prompt("d", 70, t=20))
    assert u.shown() == ["d", "b"], "same priority: newest first"
    assert u.tray() == ["c", "a"], "newest first"
    u.feed(prompt("b", 70, t=30))
    assert u.shown() == ["b", "d"], "a rule's new prompt replaces its card"
    assert len(u.overlay.views) == 2
    assert sum(v.isVisible() for v in u.overlay.findChildren(type(view))) == 2
    assert u.overlay.tray_button.text() == "+2 more \u25be"


def test_stale_cards_give_way_by_age_as_well_as_priority():
    """The sample call's case: a manager request arriving while two 20 s old cards hold the screen
    shows, and so does the prompt after it; the faded cards wait behind the tray until they go."""
    clock = Clock()
    deck = CardDeck(now=clock)
    for rule, priority in (("bereavement", 75), ("acknowledge-disclosure", 70)):
        deck.add(prompt(rule, priority, t=20.0))
    deck.seen(tray_open=False)
    clock.t += 21  # both have faded
    deck.add(prompt("manager-request", 58, t=41.0))
    assert [c.prompt.rule for c in deck.shown] == ["manager-request", "bereavement"]
    clock.t += 1
    deck.add(prompt("explain-next-steps", 40, t=42.0))
    assert [c.prompt.rule for c in deck.shown] == ["manager-request", "explain-next-steps"], \
        "a fresh card outranks a faded one of higher priority"
    assert [c.prompt.rule for c in deck.tray] == ["acknowledge-disclosure", "bereavement"]
    clock.t += 14
    assert [c.prompt.rule for c in deck.expire()] == ["bereavement", "acknowledge-disclosure"]
    assert deck.tray == ()


def test_a_prompt_that_waited_is_shown_when_a_card_makes_room():
    clock = Clock()
    deck = CardDeck(now=clock)
    a, b, c = (deck.add(prompt(r, p, t=t)) for r, p, t in (("a", 70, 1.0), ("b", 60, 2.0), ("c", 50, 3.0)))
    assert [(card.prompt.rule, state) for card, state in deck.seen(tray_open=False)] == [
        ("b", PromptState.QUEUED), ("a", PromptState.SHOWN), ("c", PromptState.SHOWN)]
    assert deck.seen(tray_open=False) == [], "each state once"
    clock.t += 5
    deck.dismiss(a)
    assert [card.prompt.rule for card in deck.shown] == ["b", "c"]
    assert deck.seen(tray_open=False) == [(b, PromptState.SHOWN)]
    assert b.shown_at == clock.t, "it fades from when it was shown, not from when it came"
    assert deck.opacity(b) == 1.0 and c.shown_at == clock.t - 5
    del c


def test_a_prompt_that_lapses_unseen_in_the_tray_goes_and_a_withdrawn_one_goes_at_once():
    clock = Clock()
    deck = CardDeck(now=clock)
    for rule, t in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)):
        deck.add(prompt(rule, 60, t=t))
    deck.seen(tray_open=False)
    assert [card.prompt.rule for card in deck.tray] == ["b", "a"]
    assert deck.retract(CALL, "b", 2.0) is not None
    assert [card.prompt.rule for card in deck.tray] == ["a"], "never shown: gone at once, no fade"
    clock.t += 36
    assert [card.prompt.rule for card in deck.expire()] == ["a", "c", "d"]


def test_the_tray_opens_with_one_click_never_takes_focus_and_what_it_shows_counts_as_shown(ui, qtbot):
    u = ui()
    u.burst(prompt("a", 70, t=1.0), prompt("b", 60, t=2.0), prompt("c", 50, t=3.0))
    assert u.tray() == ["b"]
    assert u.seen() == [("b", PromptState.QUEUED), ("a", PromptState.SHOWN), ("c", PromptState.SHOWN)]
    flags = u.overlay.windowFlags()
    button = u.overlay.tray_button
    assert button.isVisible() and button.focusPolicy() == Qt.FocusPolicy.TabFocus
    button.click()
    tray = u.overlay.tray_view
    assert u.overlay.tray_open and tray is not None and tray.isVisible()
    assert [row.findChild(QLabel).text() for row in tray.rows] == ["Do the b thing."]
    assert u.seen()[-1] == ("b", PromptState.SHOWN), "a line of the open tray is in front of the agent"
    assert button.text() == "+1 more \u25b4" and button.accessibleName() == "Hide 1 more prompt(s)"
    assert u.overlay.windowFlags() == flags and flags & Qt.WindowType.WindowDoesNotAcceptFocus
    [dismiss] = [b for b in tray.findChildren(QAbstractButton) if b.accessibleName() == "Dismiss prompt"]
    dismiss.click()
    assert u.seen()[-1] == ("b", PromptState.DISMISSED)
    assert u.tray() == [] and not u.overlay.tray_open and not button.isVisible()
    u.feed(prompt("d", 40, t=4.0))
    assert u.tray() == ["c"] and not u.overlay.tray_open, "an emptied tray closed; it opens again on a click"
    qtbot.keyClick(u.overlay, Qt.Key.Key_T)
    assert u.overlay.tray_open and u.seen()[-1] == ("d", PromptState.SHOWN)


def test_what_the_agent_saw_reaches_the_event_log_and_the_store_through_the_recorder(qtbot, settings,
                                                                                     tmp_path):
    """The sinks a call has (`outputs.call_sinks`): the overlay's `prompt_seen` events go through the
    recorder, like its feedback, into the event log and the flag store. With no pipeline attached
    (after the call) the desk hands them to its sinks itself, the overlay among them: dismissing a
    card, so that the one waiting is shown, once waited for ever on the desk's own lock."""
    # a deadlock ends the run rather than hang it; every thread's stack is kept in the test's own
    # folder (written to the captured stderr it was lost with the process, which left only xdist's
    # "node down: Not properly terminated")
    stacks = (tmp_path / "deadlocked-stacks.txt").open("w")
    faulthandler.dump_traceback_later(120, exit=True, file=stacks)
    from agent_assist.outputs import call_sinks, close_store_sink
    from agent_assist.store import FlagStoreSink, StoreOptions, open_store

    store = FlagStoreSink(open_store(tmp_path / "flags.sqlite3"), StoreOptions(agent="sam"))
    bridge = EventBridge()
    sinks = call_sinks(store, str(tmp_path / "events.jsonl"), False, bridge)
    desk = AgentDesk(sinks)
    overlay = Overlay(ReplayControls(desk), bridge, settings, CardDeck(now=Clock()))
    qtbot.addWidget(overlay)
    overlay.show()
    events = (start(), prompt("a", 70, t=1.0), prompt("b", 60, t=2.0), prompt("c", 50, t=3.0))
    pipeline = threading.Thread(target=lambda: [s.emit(e) for e in events for s in desk.sinks])
    pipeline.start()  # on a thread of its own, as the pipeline is: the overlay takes them in one go
    pipeline.join()
    qtbot.waitUntil(lambda: len(overlay.deck.shown) == 2)
    overlay.dismiss(overlay.deck.shown[0])
    for sink in sinks:
        sink.close()
    logged = [event_from_json(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e.rule, e.state) for e in logged if isinstance(e, PromptSeen)] == [
        ("b", PromptState.QUEUED), ("a", PromptState.SHOWN), ("c", PromptState.SHOWN),
        ("a", PromptState.DISMISSED), ("b", PromptState.SHOWN)]
    seen = {p["rule"]: (p["shown_t"] is not None, p["queued_t"] is not None, p["dismissed_t"] is not None)
            for p in store.store.call(CALL).prompts}  # type: ignore[union-attr]
    assert seen == {"a": (True, False, True), "b": (True, True, False), "c": (True, False, False)}
    close_store_sink(store)
    faulthandler.cancel_dump_traceback_later()
    stacks.close()


def test_every_prompt_of_the_sample_call_is_shown(ui, sample_call):
    """The sample call's prompts, at the pace of the call: each reaches the agent's screen (on a card
    when it has room, else the tray opened at the end), the manager request and the end-of-call
    check-in among them, which the old two-card overlay dropped behind faded cards."""
    u = ui()
    began = u.clock.t
    for event in sample_call.events:
        u.clock.t = began + event.t  # the wall clock as it runs on a call
        u.overlay.tick()
        u.feed(event)
    first_shown = [rule for rule, state in u.seen() if state == PromptState.SHOWN]
    if u.overlay.deck.tray:
        u.overlay.tray_button.click()
    prompts = {e.rule for e in sample_call.events if isinstance(e, Prompt)}
    withdrawn = {e.rule for e in sample_call.events if isinstance(e, Retract)}
    shown = {rule for rule, state in u.seen() if state == PromptState.SHOWN}
    assert {"manager-request", "agent-check-in"} <= prompts
    assert prompts - withdrawn <= shown, sorted(prompts - shown)
    assert {"manager-request", "agent-check-in"} <= set(first_shown), "on a card, not only in the tray"


def test_why_shows_the_customers_words_and_signals(ui):
    u = ui()
    u.feed(prompt("a"))
    view = u.overlay.views[(CALL, "a", 10.0)]
    assert not view.why.isVisible()
    view.why_button.click()
    assert view.why.isVisible()
    assert "He passed away." in view.why.text() and "distress 0.93" in view.why.text()


def test_cards_fade_and_go_but_crisis_cards_stay_until_acknowledged(ui):
    u = ui()
    u.feed(prompt("ordinary", 60), prompt("crisis", 98, sticky=True))
    crisis = u.overlay.views[(CALL, "crisis", 10.0)]
    assert u.shown() == ["crisis", "ordinary"]
    assert crisis.objectName() == "crisisCard"
    assert crisis.support.text().replace("\u00a0", " ") == "\u260e Lifeline 13 11 14"
    u.clock.t += 25
    u.overlay.tick()
    assert FADED_OPACITY <= u.overlay.views[(CALL, "ordinary", 10.0)].effect.opacity() < 1.0
    u.clock.t += 600
    u.overlay.tick()
    assert u.shown() == ["crisis"], "ordinary cards go; a crisis card stays"
    assert crisis.effect.opacity() == 1.0
    u.feed(start("c2"))
    assert u.shown() == ["crisis"], "a new call does not clear an unacknowledged crisis card"
    assert not [b for b in crisis.findChildren(QAbstractButton) if b.accessibleName() == "Dismiss prompt"]
    crisis.ack.click()
    assert u.shown() == []
    assert u.feedback() == [Feedback(t=10.0, call_id=CALL, rule="crisis", prompt_t=10.0,
                                     rating="acknowledged")], "at the last call time seen in its call"
    assert u.seen()[-1] == ("crisis", PromptState.DISMISSED)


def test_a_retracted_prompt_fades_out_but_a_crisis_card_stays(ui):
    u = ui()
    u.feed(prompt("manager-request", 58, t=4.0), prompt("crisis", 98, t=5.0, sticky=True))
    u.feed(Retract(t=9.0, call_id=CALL, rule="manager-request", prompt_t=4.0, utterance_id="u3",
                   reason="the final transcript no longer supports it"),
           Retract(t=9.0, call_id=CALL, rule="crisis", prompt_t=5.0, utterance_id="u3", reason="x"))
    withdrawn = u.overlay.views[(CALL, "manager-request", 4.0)]
    assert withdrawn.effect.opacity() <= FADED_OPACITY
    u.clock.t += 3.5
    u.overlay.tick()
    assert u.shown() == ["crisis"], "gone after its fade; the crisis card waits for the agent"


def test_a_crisis_card_is_never_one_of_two_equal_cards(ui):
    """One crisis card in full, the newest; an ordinary prompt beside it is compact; further crisis
    prompts wait at the head of the tray, which says so, each until the one shown is acknowledged."""
    u = ui()
    u.feed(*(prompt(f"crisis{i}", 96 + i, t=10 + i, sticky=True) for i in range(3)), prompt("ordinary", t=14))
    assert u.shown() == ["crisis2", "ordinary"], "the highest priority (the most specific playbook)"
    looks = [u.overlay.views[c.key].look for c in u.overlay.deck.shown]
    assert looks == [CardLook.CRISIS, CardLook.COMPACT]
    assert u.overlay.views[(CALL, "ordinary", 14.0)].objectName() == "compactCard"
    assert u.tray() == ["crisis1", "crisis0"]
    assert u.overlay.tray_button.text() == "+2 more \u00b7 crisis waiting \u25be"
    u.feed(prompt("crisis-low", 90, t=15, sticky=True))
    assert u.shown()[0] == "crisis2" and u.tray()[:3] == ["crisis1", "crisis0", "crisis-low"], \
        "a later crisis of lower priority waits; the card in front stays"
    assert u.overlay.tray_button.property("crisis") is True
    u.overlay.views[(CALL, "crisis2", 12.0)].ack.click()
    assert u.shown() == ["crisis1", "ordinary"]
    u.overlay.views[(CALL, "crisis1", 11.0)].ack.click()
    u.overlay.views[(CALL, "crisis0", 10.0)].ack.click()
    u.overlay.views[(CALL, "crisis-low", 15.0)].ack.click()
    assert u.shown() == ["ordinary"] and u.overlay.views[(CALL, "ordinary", 14.0)].look == CardLook.FULL


def test_the_crisis_card_names_its_situation_and_shows_the_line_large(ui):
    u = ui()
    u.feed(Prompt(t=30.0, call_id=CALL, rule="crisis-family-violence", principle="safety",
                  text="Ask if it's safe to talk now.", example="", priority=100,
                  signals=("crisis", "crisis_violence"), why={}, sticky=True,
                  support_line="1800RESPECT 1800 737 732 \u00b7 emergency 000", situation="family violence"))
    view = u.overlay.views[(CALL, "crisis-family-violence", 30.0)]
    assert view.header.text() == "CRISIS \u00b7 FAMILY VIOLENCE"
    lines = view.support.text().split("\n")
    assert [line.split("\u00a0") for line in lines] == [["\u260e", "1800RESPECT", "1800", "737", "732"],
                                                       ["\u260e", "emergency", "000"]], \
        "a service to a line, never broken inside its number"
    assert view.support.font().pointSize() >= view.text.font().pointSize() + 3
    assert view.accessibleName() == "Crisis prompt: family violence. Ask if it's safe to talk now."
    # the rules name the situation (`rules.engine.situation`); the overlay shows what they named
    assert situation_of(replace(prompt("x", sticky=True), situation="threat of harm")) == "threat of harm"
    assert situation_of(replace(prompt("ordinary"), situation="self-harm")) == "", "a crisis card only"
    assert crisis_header("") == "CRISIS" and situation_of(prompt("x", sticky=True)) == ""


def test_dismissing_an_ordinary_card(ui):
    u = ui()
    u.feed(prompt("a"), prompt("b", 50))
    dismiss = [b for b in u.overlay.views[(CALL, "a", 10.0)].findChildren(QAbstractButton)
               if b.accessibleName() == "Dismiss prompt"]
    dismiss[0].click()
    assert u.shown() == ["b"]
    assert u.feedback() == [], "dismissing is not feedback"
    assert u.seen() == [("a", PromptState.SHOWN), ("b", PromptState.SHOWN), ("a", PromptState.DISMISSED)]


def test_thumbs_give_feedback_events_at_call_time(ui):
    u = ui()
    u.feed(prompt("a", t=10), customer(14.5, 0.2, 0.1, 4))
    view = u.overlay.views[(CALL, "a", 10.0)]
    view.helpful.click()
    view.not_helpful.click()
    assert u.feedback() == [
        Feedback(t=14.5, call_id=CALL, rule="a", prompt_t=10.0, rating="helpful"),
        Feedback(t=14.5, call_id=CALL, rule="a", prompt_t=10.0, rating="not_helpful"),
    ]
    assert view.not_helpful.isChecked() and not view.helpful.isChecked()


def test_flag_button_asks_for_a_note_and_flags_the_call(ui, qtbot):
    u = ui()
    u.feed(customer(42.0, 0.8, 0.9, 7))
    assert u.overlay.flag_button.isEnabled()
    u.overlay.flag_button.click()
    dialog = u.overlay.flag_dialog
    assert isinstance(dialog, FlagDialog) and dialog.isVisible()
    qtbot.keyClicks(dialog.note, "  asked for a manager   twice ")
    dialog.flag_button.click()
    assert u.log.events == [Flag(t=42.0, call_id=CALL, kind="agent", severity="medium",
                                 reason="raised by the agent", utterance_id="", raised_by="agent",
                                 note="asked for a manager twice")]
    assert "supervisor" in u.overlay.status.text()


def test_flag_dialog_cancel_flags_nothing(ui):
    u = ui()
    u.overlay.flag_button.click()
    u.overlay.flag_dialog.reject()
    assert u.log.events == []


def test_pause_button_and_listening_indicator(ui):
    u = ui(PauseRecorder)
    assert u.overlay.pause_button.isEnabled()
    u.overlay.pause_button.click()
    assert u.controls.paused and u.controls.by == ["overlay"]
    assert u.overlay.pause_button.text() == "Resume" and u.overlay.state_label.text().startswith("Paused")
    u.overlay.pause_button.click()
    assert not u.controls.paused and u.overlay.state_label.text().startswith("Listening")


def test_pause_is_disabled_over_a_recording(ui):
    assert not ui().overlay.pause_button.isEnabled()


def test_keyboard_shortcuts(ui, qtbot, settings):
    u = ui(PauseRecorder)
    u.feed(prompt("a", 60), prompt("b", 50))
    qtbot.keyClick(u.overlay, Qt.Key.Key_H)
    assert u.log.events[-1].rating == "helpful" and u.log.events[-1].rule == "a"
    qtbot.keyClick(u.overlay, Qt.Key.Key_N)
    assert u.log.events[-1].rating == "not_helpful"
    qtbot.keyClick(u.overlay, Qt.Key.Key_W)
    assert u.overlay.views[(CALL, "a", 10.0)].why.isVisible()
    qtbot.keyClick(u.overlay, Qt.Key.Key_Escape)
    assert u.shown() == ["b"]
    qtbot.keyClick(u.overlay, Qt.Key.Key_P)
    assert u.controls.paused
    before = settings.get("text_pt")
    qtbot.keyClick(u.overlay, Qt.Key.Key_Plus)
    assert settings.get("text_pt") == before + 1
    qtbot.keyClick(u.overlay, Qt.Key.Key_F)
    assert u.overlay.flag_dialog is not None and u.overlay.flag_dialog.isVisible()


def test_window_stays_on_top_and_never_takes_focus(ui):
    u = ui()
    flags = u.overlay.windowFlags()
    for flag in (Qt.WindowType.WindowStaysOnTopHint, Qt.WindowType.WindowDoesNotAcceptFocus,
                 Qt.WindowType.FramelessWindowHint, Qt.WindowType.Tool):
        assert flags & flag, flag
    assert u.overlay.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    assert all(b.focusPolicy() != Qt.FocusPolicy.StrongFocus for b in u.overlay.findChildren(QAbstractButton))
    u.overlay.set_setting("accept_focus", True)  # the agent opted in, for keyboard shortcuts
    assert not u.overlay.windowFlags() & Qt.WindowType.WindowDoesNotAcceptFocus
    assert u.overlay.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert u.overlay.isVisible()


def test_settings_and_position_persist(ui, qtbot, settings):
    u = ui()
    u.overlay.settings_button.click()
    dialog = u.overlay.settings_dialog
    assert isinstance(dialog, SettingsDialog)
    dialog.opacity.setValue(70)
    dialog.text_pt.setValue(14)
    dialog.high_contrast.setChecked(True)
    assert abs(u.overlay.windowOpacity() - 0.7) < 0.01
    assert "#000000" in u.overlay.styleSheet()
    u.overlay.resize(420, u.overlay.height())
    u.overlay.move(40, 30)
    pos = u.overlay.pos()
    u.overlay.close()

    again = Overlay(ReplayControls(AgentDesk([])), EventBridge(),
                    OverlaySettings(QSettings(settings.store.fileName(), QSettings.Format.IniFormat)))
    qtbot.addWidget(again)
    assert again.settings.get("opacity") == pytest.approx(0.7)
    assert again.settings.get("text_pt") == 14 and again.settings.get("high_contrast") is True
    assert again.width() == 420 and again.pos() == pos
    assert again.state_label.font().pointSize() == 14


def test_out_of_range_settings_are_clamped(settings, qtbot):
    settings.set("opacity", 0.01)
    settings.set("text_pt", 300)
    assert settings.get("opacity") == 0.3 and settings.get("text_pt") == 24


def test_everything_has_an_accessible_name(ui):
    u = ui()
    u.feed(prompt("a"), prompt("crisis", 98, sticky=True))
    u.overlay.flag_button.click()
    u.overlay.settings_button.click()
    kinds = (QAbstractButton, QLineEdit, QAbstractSlider, QAbstractSpinBox)
    for root in (u.overlay, u.overlay.flag_dialog, u.overlay.settings_dialog):
        widgets = [w for kind in kinds for w in root.findChildren(kind)]
        assert widgets
        unnamed = [w for w in widgets if not w.accessibleName()
                   and not isinstance(w.parent(), QAbstractSpinBox)]  # a spin box's own editor
        assert not unnamed, [(type(w).__name__, getattr(w, "text", lambda: "")()) for w in unnamed]
    assert u.overlay.views[(CALL, "crisis", 10.0)].accessibleName().startswith("Crisis prompt:")


def test_hostile_transcript_text_is_shown_as_text(ui):
    u = ui()
    u.feed(prompt("a", text="<b>bold</b><img src=x onerror=alert(1)>"))
    label = u.overlay.views[(CALL, "a", 10.0)].text
    assert label.textFormat() == Qt.TextFormat.PlainText and label.text().startswith("<b>")


def test_trend_indicator_over_the_last_minute(ui):
    u = ui()
    u.feed(*(customer(10.0 + 8 * i, 0.2 + 0.1 * i, 0.1, i) for i in range(6)))
    readings = u.overlay.trend_view.readings
    assert readings["distress"].direction == "rising" and readings["escalation"].direction == "steady"
    assert "distress high, rising" in u.overlay.trend_view.accessibleDescription()
    meter = TrendMeter()
    for i, (t, d) in enumerate([(0, 0.9), (30, 0.9), (100, 0.2), (110, 0.2)]):
        meter.add(customer(t, d, 0.0, i))
    assert [p[0] for p in meter.reading("distress").points] == [100, 110], "a minute, no more"


def test_bridge_coalesces_a_burst_and_never_waits_for_the_ui(ui, qtbot):
    u = ui()
    emitted = threading.Event()

    def pipeline() -> None:  # another thread, as the pipeline is
        for i in range(500):
            u.bridge.emit(Partial(t=i / 100, call_id=CALL, utterance_id="u9", speaker=Speaker.CUSTOMER,
                                  start=0.0, text=f"partial {i}"))
        u.bridge.emit(prompt("a"))
        emitted.set()

    bursts = u.bridge.bursts
    worker = threading.Thread(target=pipeline)
    worker.start()
    worker.join(10)
    assert emitted.is_set(), "the pipeline's thread finished while the UI thread was not running"
    drained: list = []
    original = u.bridge.drain
    u.bridge.drain = lambda: drained.extend(original()) or drained  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: u.shown() == ["a"])
    assert u.bridge.bursts - bursts == 1, "one repaint for the whole burst"
    assert [e.text for e in drained if isinstance(e, Partial)] == ["partial 499"]


def test_a_broken_overlay_shows_a_status_line_and_keeps_taking_events(ui, monkeypatch):
    u = ui()

    def broken(event):
        raise RuntimeError("card renderer broke")

    monkeypatch.setattr(u.overlay, "take", broken)
    u.feed(prompt("a"))
    assert u.overlay.status.text() == "overlay error: card renderer broke"
    monkeypatch.undo()
    u.feed(prompt("b"))
    assert u.shown() == ["b"]


def test_bridge_never_raises_into_the_pipeline():
    from PyQt6 import sip

    bridge = EventBridge()
    sip.delete(bridge)  # the overlay's Qt objects are gone; the pipeline still emits
    bridge.emit(prompt("a"))
    bridge.emit(prompt("b"))
    assert bridge.disconnected


def test_display_problem_names_what_is_missing():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem({}) == "no display (DISPLAY is not set)"
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None
    missing = display_problem({"DISPLAY": ":0"},
                              find_library=lambda name: None if name == "xcb-cursor" else name)
    assert missing == "Qt needs libxcb-cursor0 (apt-get install libxcb-cursor0)"


# -- over a real replayed call -----------------------------------------------------------------


def _poll(action, ms: int = 50) -> QTimer:
    timer = QTimer()
    timer.timeout.connect(action)
    timer.start(ms)
    return timer


def test_overlay_over_a_replayed_call_records_feedback_and_a_late_flag(qtbot, call_models, sample_clip,
                                                                        tmp_path, settings):
    """The first 30 s of the sample call with the overlay: cards come up as the prompts do, a thumbs
    up during the call and a flag after it both reach the event log on disk."""
    log_path = tmp_path / "events.jsonl"
    sinks = [JsonlEventLog(str(log_path))]
    run = OverlayRun(settings)
    desk = AgentDesk([*sinks, run.bridge])
    replay = Replay(sample_clip, desk.sinks, ReplayOptions(), models=call_models, desk=desk)
    seen: dict[str, object] = {"max_cards": 0}

    def agent() -> None:
        overlay = run.overlay
        if overlay is None:
            return
        seen["max_cards"] = max(int(seen["max_cards"]), len(overlay.views))  # type: ignore[arg-type]
        if overlay.views and "rated" not in seen:
            view = next(iter(overlay.views.values()))
            seen["rated"] = view.card.prompt.rule
            seen["visible"] = view.isVisible() and bool(view.text.text())
            view.helpful.click()
        if overlay.state == "ended" and "flagged" not in seen:
            seen["flagged"] = True
            overlay.flag(overlay.call_id, "hard call")

    timer = _poll(agent)
    end = run.run(ReplayControls(desk), replay.run, close_when_done=False, linger_s=1.0)
    timer.stop()
    for sink in sinks:
        sink.close()
    assert end.reason == EndReason.END_OF_AUDIO and end.utterances >= 5
    events = [event_from_json(line) for line in log_path.read_text().splitlines()]
    kinds = [e.type for e in events]
    prompts = [e for e in events if isinstance(e, Prompt)]
    assert prompts and seen["visible"] and 1 <= int(seen["max_cards"]) <= 2  # type: ignore[arg-type]
    feedback = [e for e in events if isinstance(e, Feedback)]
    assert [(f.rule, f.rating) for f in feedback] == [(seen["rated"], "helpful")]
    assert feedback[0].prompt_t in [p.t for p in prompts if p.rule == seen["rated"]]
    assert kinds.index("feedback") < kinds.index("call_end"), "given during the call, logged in it"
    flags = [e for e in events if isinstance(e, Flag) and e.raised_by == "agent"]
    assert [f.note for f in flags] == ["hard call"] and kinds.index("call_end") < events.index(flags[0])


def test_closing_the_overlay_leaves_the_call_running(qtbot, call_models, sample_clip, settings):
    log = EventList()
    run = OverlayRun(settings)
    desk = AgentDesk([log, run.bridge])
    replay = Replay(sample_clip, desk.sinks, ReplayOptions(), models=call_models, desk=desk)
    said: list[str] = []
    closed_at: list[float] = []

    def close_when_a_card_shows() -> None:
        if run.overlay is not None and run.overlay.views and not closed_at:
            closed_at.append(max(e.t for e in log.events))
            run.overlay.close()

    timer = _poll(close_when_a_card_shows)
    end = run.run(ReplayControls(desk), replay.run, close_when_done=False, say=said.append)
    timer.stop()
    assert said == ["overlay closed: the call carries on here (Ctrl-C to stop)"]
    assert closed_at and closed_at[0] < 29
    assert end.reason == EndReason.END_OF_AUDIO and end.t == pytest.approx(30.0, abs=0.1)
    assert log.events[-1] == end and [e for e in log.events if e.t > closed_at[0] + 1]


def test_after_the_call_the_terminal_says_the_overlay_stays_until_closed(qtbot, settings):
    run = OverlayRun(settings)
    said: list[str] = []

    asked: list[float] = []

    def stop_once_said() -> None:
        if said and not asked:
            asked.append(time.monotonic())
            run.request_quit()  # what Ctrl-C does: it used to do nothing once the call had ended
        elif asked and time.monotonic() - asked[0] > 10 and run.overlay is not None:
            run.overlay.close()  # so that a regression fails here rather than hang the suite

    timer = _poll(stop_once_said)
    assert run.run(ReplayControls(AgentDesk([])), lambda: "done", close_when_done=False,
                   say=said.append) == "done"
    timer.stop()
    assert time.monotonic() - asked[0] < 5, "Ctrl-C did not close the overlay"
    assert said == [OVERLAY_STAYS] and "close it" in OVERLAY_STAYS and "Ctrl-C" in OVERLAY_STAYS


def test_work_that_fails_closes_the_overlay_and_raises_here(qtbot, settings):
    run = OverlayRun(settings)

    def work() -> None:
        time.sleep(0.2)
        raise RuntimeError("model failed to load")

    with pytest.raises(RuntimeError, match="model failed to load"):
        run.run(ReplayControls(AgentDesk([])), work, close_when_done=False)


# -- the command line ----------------------------------------------------------------------------------


def test_replay_ui_shows_the_overlay_over_the_call(sample_clip, tmp_path):
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([*EXE, "replay", str(sample_clip), "--ui", "--linger", "0",
                           "--events", str(events)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no overlay" not in done.stderr
    assert "Offer condolences" in done.stdout  # the terminal transcript carries on beside it
    stream = [event_from_json(line) for line in events.read_text().splitlines()]
    ends = [i for i, e in enumerate(stream) if isinstance(e, CallEnd)]
    assert any(isinstance(e, Prompt) for e in stream) and len(ends) == 1
    after = stream[ends[0] + 1:]  # only the overlay's own: the check-in fired at the end, then shown
    assert all(isinstance(e, PromptSeen) for e in after)
    assert ("agent-check-in", PromptState.SHOWN) in [(e.rule, e.state) for e in after]
    stored = (tmp_path / "config" / "agent-assist" / "overlay.conf").read_text()
    assert "geometry" in stored, "the overlay remembers where it was"


def test_replay_ui_after_the_call_says_the_overlay_stays_and_ctrl_c_closes_it(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    clip = Path(__file__).parent / "data" / "speech" / "jfk.flac"
    app = subprocess.Popen([*EXE, "replay", str(clip), "--ui", "-q"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert app.stderr is not None
        said = [app.stderr.readline() for _ in range(1)]
        while said[-1] and OVERLAY_STAYS not in said[-1]:
            said.append(app.stderr.readline())
        assert OVERLAY_STAYS in said[-1], said
        app.send_signal(signal.SIGINT)
        assert app.wait(timeout=30) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def test_replay_ui_without_a_display_says_so_and_uses_the_terminal(sample_clip, tmp_path):
    """In this process (what a display is, is read from the environment): no display, no Wayland,
    no Qt platform named."""
    done = agent_assist("replay", str(sample_clip), "--ui",
                        env={"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == ("note: no overlay: no display (DISPLAY is not set); "
                                           "the transcript is shown here instead")
    assert "Offer condolences" in done.stdout


def test_a_window_remembered_on_a_monitor_that_has_gone_comes_back_on_screen(qtbot, settings):
    from PyQt6.QtGui import QGuiApplication

    first = Overlay(ReplayControls(AgentDesk([])), EventBridge(), settings)
    qtbot.addWidget(first)
    first.move(20000, 15000)  # as if it had been on a second monitor, now unplugged
    first.remember_geometry()
    again = Overlay(ReplayControls(AgentDesk([])), EventBridge(), settings)
    qtbot.addWidget(again)
    centre = again.frameGeometry().center()
    assert any(s.availableGeometry().contains(centre) for s in QGuiApplication.screens())


def test_the_window_can_be_dragged_and_remembers_where(ui, qtbot, settings):
    from PyQt6.QtCore import QPoint

    u = ui()
    u.overlay.move(100, 100)
    before = u.overlay.pos()
    grab = QPoint(150, 12)  # on the header, between the state and the buttons
    qtbot.mousePress(u.overlay, Qt.MouseButton.LeftButton, pos=grab)
    qtbot.mouseMove(u.overlay, grab + QPoint(-60, 40))
    qtbot.mouseRelease(u.overlay, Qt.MouseButton.LeftButton, pos=grab + QPoint(-60, 40))
    moved = u.overlay.pos()
    assert moved != before
    again = Overlay(ReplayControls(AgentDesk([])), EventBridge(), settings)
    qtbot.addWidget(again)
    assert again.pos() == moved

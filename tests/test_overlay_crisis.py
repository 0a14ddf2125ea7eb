"""The crisis card on real words, through the real rules (the default pack with the AU region's lines)
and the shipped classifiers: a family-violence disclosure gets the family-violence playbook, its name
in the card's header and 1800RESPECT, never the self-harm card and Lifeline, and the other way round;
after a self-harm disclosure the support-line prompt and the end-of-call check-in still show; and a
recorded call (the labelled call-03, replayed) brings up the family-violence card in the overlay.

The customers' words are the labelled calls' own (data/samples/calls/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from agent_assist import resources
from agent_assist.audio.resample import StreamResampler
from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Event,
    Prompt,
    PromptState,
    PublicEvent,
    Speaker,
    Utterance,
)
from agent_assist.pipeline import AgentDesk
from agent_assist.quality.calls import run_transcript
from agent_assist.replay import Replay, ReplayOptions
from agent_assist.rules.packs import load_for_run
from agent_assist.scoring.scorer import Scorer
from agent_assist.sinks import EventList
from agent_assist.ui.app import OverlayRun, ReplayControls
from agent_assist.ui.cards import CardLook
from tests.conftest import SAMPLES
from tests.pulse import RATE, write_wav
from tests.test_overlay import CALL, _poll, settings, ui  # noqa: F401 (fixtures)

AU = resources.regions() / "au.toml"
CALLS = SAMPLES / "calls"
OPENING = "Thanks for calling, you're through to Sam. How can I help?"


def words(call: str, kind: str) -> str:
    """The customer's words of the labelled moment of `kind` in `call`."""
    moments = json.loads((CALLS / f"{call}.json").read_text(encoding="utf-8"))["moments"]
    return next(m["words"] for m in moments if m["kind"] == kind)


def through_the_rules(classifiers, turns: list[tuple[str, str]]) -> list[PublicEvent]:
    """A call of `turns` (speaker, words), 6 s each, scored and run through the AU rules."""
    events: list[Event] = [CallStart(t=0.0, call_id=CALL, source="script", channels={}, started_at="",
                                     model="transcript")]
    for i, (who, text) in enumerate(turns, start=1):
        start = 6.0 * (i - 1)
        events.append(Utterance(t=start + 5.5, call_id=CALL, utterance_id=f"u{i}", speaker=Speaker(who),
                                start=start, end=start + 5.0, text=text))
    events.append(CallEnd(t=6.0 * len(turns) + 1, call_id=CALL, reason=EndReason.END_OF_AUDIO))
    return run_transcript(events, load_for_run([AU]), Scorer(classifiers)).events


FAMILY_VIOLENCE = ("FAMILY VIOLENCE", "1800RESPECT 1800 737 732", "Lifeline")
SELF_HARM = ("SELF-HARM", "Lifeline 13 11 14", "1800RESPECT")
DISCLOSURES = {
    "call-17 family violence": (words("call-17", "crisis-violence"), FAMILY_VIOLENCE),
    "call-11 family violence": (words("call-11", "crisis-violence"), FAMILY_VIOLENCE),
    "long-05 family violence": (words("long-05", "crisis-violence"), FAMILY_VIOLENCE),
    "violence and self-harm at once": ("He hits me when the money's late, and some days I think everyone "
                                       "would be better off without me.", FAMILY_VIOLENCE),
    "long-04 self-harm": (words("long-04", "crisis-self-harm"), SELF_HARM),
    "call-09 self-harm": (words("call-09", "crisis-self-harm"), SELF_HARM),
}


@pytest.mark.parametrize("disclosure", list(DISCLOSURES))
def test_each_disclosure_gets_its_own_playbook_and_line(ui, classifiers, disclosure):  # noqa: F811
    text, (situation, line, other_line) = DISCLOSURES[disclosure]
    events = through_the_rules(classifiers, [("agent", OPENING), ("customer", text)])
    crisis = [e for e in events if isinstance(e, Prompt) and e.sticky]
    assert crisis
    u = ui()
    u.feed(*events)
    [card] = [c for c in u.overlay.deck.shown if c.sticky]
    view = u.overlay.views[card.key]
    assert view.header.text() == f"CRISIS \u00b7 {situation}"
    shown_line = view.support.text().replace("\u00a0", " ")
    assert line in shown_line and other_line not in shown_line
    others = [u.overlay.views[c.key].look for c in u.overlay.deck.shown if not c.sticky]
    assert others in ([], [CardLook.COMPACT]), "the crisis card is never one of two equal cards"
    # a second crisis (violence and self-harm in one breath) waits behind the tray, which says so
    waiting = {c.prompt.rule for c in u.overlay.deck.tray if c.sticky}
    assert waiting == {p.rule for p in crisis} - {card.prompt.rule}


def test_after_a_self_harm_disclosure_the_support_line_and_the_check_in_still_show(ui, classifiers):  # noqa: F811
    """The rules give the crisis card, then an acknowledgement, the support-line prompt and, at the
    end, the agent's check-in (the lowest priority of all): every one is on the agent's screen."""
    events = through_the_rules(classifiers, [
        ("agent", OPENING),
        ("customer", "Hi, I'm ringing about the bill that came this week."),
        ("agent", "Sure, I can help with that. What's happening with it?"),
        ("customer", words("call-05", "crisis-self-harm")),
        ("agent", "I'm really glad you told me. Are you safe right now?"),
        ("customer", "I don't know. I'm so tired and scared, and I feel so alone with all of it."),
        ("agent", "I'm here with you. We'll go one step at a time."),
        ("customer", "Okay. Thank you. I'm sorry, I'm just so overwhelmed and upset."),
        ("agent", "There's nothing to be sorry for. Take care."),
    ])
    rules = [e.rule for e in events if isinstance(e, Prompt)]
    assert rules[0] == "crisis-self-harm" and {"signpost-support", "agent-check-in"} <= set(rules[1:])
    u = ui()
    for event in events:
        u.feed(event)
        if isinstance(event, Prompt) and event.rule == "signpost-support":
            view = u.overlay.views[(CALL, "signpost-support", event.t)]
            assert view.objectName() == "compactCard", "beside the crisis card, never its equal"
            assert "Lifeline 13 11 14" in view.text.text()
    [crisis] = [c for c in u.overlay.deck.shown if c.sticky]
    assert u.overlay.views[crisis.key].header.text() == "CRISIS \u00b7 SELF-HARM"
    u.overlay.views[crisis.key].ack.click()
    assert "agent-check-in" in u.shown()
    shown = {rule for rule, state in u.seen() if state == PromptState.SHOWN}
    assert {"crisis-self-harm", "signpost-support", "agent-check-in"} <= shown
    u.overlay.tray_button.click()  # anything still waiting is one click away
    assert set(rules) == {rule for rule, state in u.seen() if state == PromptState.SHOWN}


@pytest.fixture(scope="module")
def family_violence_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 27 s of the labelled call-03 (left = customer, right = agent), which end just after
    the customer says her partner reads her texts and tracks her phone."""
    resampler = StreamResampler(RATE, 2)
    with av.open(str(CALLS / "call-03.ogg")) as container:
        blocks = [resampler.resample_frame(f) for f in container.decode(audio=0)]
    audio = np.concatenate([*blocks, resampler.flush()], axis=1)[:, : 27 * RATE]
    return write_wav(tmp_path_factory.mktemp("call-03") / "call-03-start.wav", audio[0], audio[1])


def test_a_replayed_family_violence_call_brings_up_its_card_in_the_overlay(qtbot, call_models,
                                                                          family_violence_clip, settings):  # noqa: F811
    log = EventList()
    run = OverlayRun(settings)
    desk = AgentDesk([log, run.bridge])
    replay = Replay(family_violence_clip, desk.sinks, ReplayOptions(site_packs=(AU,)), models=call_models,
                    desk=desk)
    seen: dict[str, str] = {}

    def look() -> None:
        overlay = run.overlay
        if overlay is None or "header" in seen:
            return
        crisis = [v for v in overlay.views.values() if v.card.sticky]
        if crisis and crisis[0].header is not None and crisis[0].support is not None:
            seen["header"] = crisis[0].header.text()
            seen["line"] = crisis[0].support.text().replace("\u00a0", " ")

    timer = _poll(look)
    end = run.run(ReplayControls(desk), replay.run, close_when_done=False, linger_s=0.5, say=lambda _: None)
    timer.stop()
    assert end.reason == EndReason.END_OF_AUDIO
    assert [p.rule for p in log.events if isinstance(p, Prompt) and p.sticky] == ["crisis-family-violence"]
    assert seen["header"] == "CRISIS \u00b7 FAMILY VIOLENCE"
    assert "1800RESPECT 1800 737 732" in seen["line"] and "Lifeline" not in seen["line"]

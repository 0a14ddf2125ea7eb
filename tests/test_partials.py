"""Acting on the words as they are said, on real audio: a disclosure early in a long turn is answered
from the partial transcripts before the turn ends; a prompt the final no longer supports is withdrawn;
a replay shows the prompts a live call shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent_assist.audio.files import ChannelLayout, FileSource
from agent_assist.events import AudioChunk, Partial, Prompt, Retract, Speaker, Utterance
from agent_assist.replay import ReplayOptions, replay
from tests.conftest import SAMPLES, Collector
from tests.test_audio_files import write_audio

CALLS = SAMPLES / "calls"


def first_seconds(name: str, seconds: float, folder: Path) -> tuple[Path, dict]:
    """A labelled call's first `seconds`, as a stereo FLAC, and its labels."""
    label = json.loads((CALLS / f"{name}.json").read_text(encoding="utf-8"))
    parts: dict[Speaker, list[np.ndarray]] = {Speaker.CUSTOMER: [], Speaker.AGENT: []}
    for block in FileSource(CALLS / label["audio"], layout=ChannelLayout.STEREO).blocks():
        for chunk in block:
            if isinstance(chunk, AudioChunk):
                parts[chunk.speaker].append(chunk.samples)
    stereo = np.stack([np.concatenate(parts[s])[: int(seconds * 16000)] for s in (Speaker.CUSTOMER,
                                                                                  Speaker.AGENT)])
    return write_audio(folder / f"{name}.flac", stereo, 16000, "flac", "flac"), label


# A site rule that holds on the words so far ("the stove", before "boxes") but not on the whole
# final of the gas call's long turn: the real partial fires it and the real final withdraws it.
STOVE = "stove-before-boxes"
STOVE_PACK = f'''[[rule]]
id = "{STOVE}"
when = 'customer says "stove" and not customer says "boxes"'
on = "partial"
prompt = "Ask about the smell."
principle = "safety"
source = "test"
cooldown_s = 0
'''


@pytest.fixture(scope="module")
def gas_call(tmp_path_factory, call_models):
    """long-03: a new tenant mentions a strong smell of gas 8 s into a 23 s turn, then carries on
    about the lease; replayed unpaced, partials in lock-step, as a quality team replays it, with the
    default pack and the stove site rule. Returns the events, the labels, the audio and the pack."""
    folder = tmp_path_factory.mktemp("gas")
    pack = folder / "site.toml"
    pack.write_text(STOVE_PACK, encoding="utf-8")
    path, label = first_seconds("long-03", 46.0, folder)
    sink = Collector()
    replay(path, [sink], ReplayOptions(call_id="gas", site_packs=(pack,)), models=call_models)
    return sink, label, path, pack


def test_a_danger_early_in_a_long_turn_is_answered_on_its_second_reading_before_the_turn_ends(gas_call):
    """The crisis cards hold on two readings running (confirm_partials = 2): the partial that first
    reads the danger, then the next partial or the sentence's final; the card comes seconds
    before the customer stops talking."""
    sink, label, _, _ = gas_call
    [moment] = label["moments"]
    turn = label["turns"][moment["turn"]]
    danger = [e for e in sink.events if isinstance(e, Prompt) and e.rule == "crisis-danger"]
    assert danger, [(e.rule, e.t) for e in sink.events if isinstance(e, Prompt)]
    first = danger[0]
    assert first.sticky
    assert first.t - moment["end"] <= 3.0, "within 3 s of the end of the words, in call time"
    assert first.t < turn["end"] - 5, "well before the customer stops talking"
    readings = [e for e in sink.events if isinstance(e, (Partial, Utterance))
                and e.speaker == Speaker.CUSTOMER and e.scores is not None and e.t <= first.t]
    fired_on, before = readings[-1], readings[-2]
    assert fired_on.t == first.t and fired_on.utterance_id == before.utterance_id
    assert isinstance(before, Partial) and bool(first.why.get("partial")) is isinstance(fired_on, Partial)
    for reading in (before, fired_on):
        assert reading.scores.kind == "danger" and reading.scores.crisis >= 0.7, reading
    # the first reading holds the disclosure (its audio may end inside its last word: Moonshine heard
    # "...a really strong smell of gaff" as "gas" was being said), and the turn's final says it
    assert "strong smell" in before.text.lower()
    assert any("gas" in e.text.lower() for e in sink.events
               if isinstance(e, Utterance) and e.utterance_id == before.utterance_id)
    # the readings after it did not fire it again
    assert [e.rule for e in sink.events if isinstance(e, Prompt)].count("crisis-danger") == 1
    # a retraction withdraws only what a partial raised, and never a crisis card: with the averaged
    # model of 2026-12-02 the partial "...i've had a headache since i walked in. i've opened the back
    # door" reads distress 0.85 and raises an acknowledgement, which the sentence's final ("...so it's
    # probably fine anyway. the lease started on the first...", 0.11) withdraws
    raised = {(e.rule, e.t): e for e in sink.events if isinstance(e, Prompt)}
    for withdrawn in (e for e in sink.events if isinstance(e, Retract)):
        assert not withdrawn.rule.startswith("crisis-")
        assert raised[(withdrawn.rule, withdrawn.prompt_t)].why["partial"] is True


def test_partials_carry_scores_and_the_long_turn_is_finalised_sentence_by_sentence(gas_call):
    sink, label, _, _ = gas_call
    turn = label["turns"][label["moments"][0]["turn"]]
    finals = [e for e in sink.events if isinstance(e, Utterance) and e.speaker == Speaker.CUSTOMER
              and turn["start"] - 0.6 <= e.start < turn["end"]]
    assert len(finals) >= 2, "a 23 s turn is cut at breaths between sentences, not at 20 s"
    assert all(f.end - f.start < 20 for f in finals)
    partials = [e for e in sink.events if isinstance(e, Partial) and e.speaker == Speaker.CUSTOMER]
    # scored from the words alone once a turn has eight words; a shorter fragment waits
    assert partials and all((p.scores is not None) == (len(p.text.split()) >= 8) for p in partials)
    assert all(p.scores.acoustic is None for p in partials if p.scores is not None)
    assert not [e for e in sink.events if isinstance(e, Partial) and e.speaker == Speaker.AGENT]


def test_a_prompt_the_final_no_longer_supports_is_retracted(gas_call):
    """The stove site rule: the real partial fires it and the real final withdraws it."""
    sink, _, _, _ = gas_call
    fired = [e for e in sink.events if isinstance(e, Prompt) and e.rule == STOVE]
    retracted = [e for e in sink.events if isinstance(e, Retract) and e.rule == STOVE]
    assert fired and fired[0].why["partial"] is True
    assert [(r.prompt_t, r.utterance_id) for r in retracted] == [(fired[0].t, fired[0].why["utterance_id"])]
    final = next(e for e in sink.events if isinstance(e, Utterance)
                 and e.utterance_id == retracted[0].utterance_id)
    assert "boxes" in final.text.lower() and sink.events.index(retracted[0]) > sink.events.index(final)


@pytest.mark.system  # paced at real time (46 s)
def test_a_replay_shows_the_prompts_a_live_call_shows(gas_call, call_models):
    """The same call paced at real time (the transcriber on its own worker, partials skipped when it
    is busy): the same prompts of the default pack stand at the end, at nearly the same call times.
    (Whether a prompt that the final withdraws fires at all live depends on which partials were
    skipped, the stove rule's and, with the averaged model of 2026-12-02, an acknowledgement's: those
    are not compared.)"""
    fast, _, path, pack = gas_call
    live = Collector()
    replay(path, [live], ReplayOptions(call_id="gas", realtime=True, site_packs=(pack,)), models=call_models)

    def fired(sink: Collector) -> dict[str, float]:
        withdrawn = {(e.rule, e.prompt_t) for e in sink.events if isinstance(e, Retract)}
        out: dict[str, float] = {}
        for e in sink.events:
            if isinstance(e, Prompt) and e.rule != STOVE and (e.rule, e.t) not in withdrawn:
                out.setdefault(e.rule, e.t)
        return out

    a, b = fired(fast), fired(live)
    assert set(a) == set(b), (a, b)
    assert abs(a["crisis-danger"] - b["crisis-danger"]) <= 2.0  # a skipped partial moves it a little

"""The rules engine on scripted calls: the right prompt soon after the customer finishes, calm
calls stay calm, cooldowns and caps hold, crisis pre-empts and stays, site packs layer."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Flag,
    Partial,
    Prompt,
    Retract,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.rules.conditions import SIGNALS, Signal
from agent_assist.rules.engine import RulesEngine, crisis_line
from agent_assist.rules.packs import errors, load, load_for_run

HANG_OVER = 0.5  # the segmenter's: an utterance is final this long after its speech ends


def scores(distress: float = 0.05, escalation: float = 0.05, crisis: float = 0.0, kind: str = "self-harm",
           trend: dict[str, float] | None = None) -> Scores:
    return Scores(distress=distress, escalation=escalation, crisis=crisis,
                  text={"distress": distress, "escalation": escalation, "crisis": crisis}, acoustic=None,
                  baseline=False, trend=trend or {"distress": distress, "escalation": escalation,
                                                  "distress_rise": 0.0, "escalation_rise": 0.0},
                  kind=kind)


def customer(n: int, start: float, end: float, text: str, *, distress: float = 0.05, escalation: float = 0.05,
             crisis: float = 0.0, kind: str = "self-harm",
             trend: dict[str, float] | None = None) -> Utterance:
    scored = scores(distress, escalation, crisis, kind, trend)
    return Utterance(t=end + HANG_OVER, call_id="c", utterance_id=f"u{n}", speaker=Speaker.CUSTOMER,
                     start=start, end=end, text=text, scores=scored)


def agent(n: int, start: float, end: float, text: str) -> Utterance:
    return Utterance(t=end + HANG_OVER, call_id="c", utterance_id=f"u{n}", speaker=Speaker.AGENT, start=start,
                     end=end, text=text)


def run(events: list, site_packs: tuple[Path, ...] = ()) -> list:
    engine = RulesEngine(load_for_run(site_packs))
    start = CallStart(t=0.0, call_id="c", source="script", channels={}, started_at="", model="")
    last = max((e.t for e in events), default=0.0)
    out = []
    for event in [start, *events, CallEnd(t=last + 2, call_id="c", reason=EndReason.END_OF_AUDIO)]:
        out.extend(engine.process(event))
    return out


def prompts(out: list) -> list[Prompt]:
    return [e for e in out if isinstance(e, Prompt)]


def test_distress_gets_acknowledged_within_three_seconds():
    said = customer(2, 10.0, 13.0, "my husband passed away two months ago", distress=0.95)
    out = run([agent(1, 0.5, 4.0, "thanks for calling, how can I help"), said])
    first = prompts(out)
    assert first, "no prompt"
    assert {p.rule for p in first[:2]} == {"bereavement", "acknowledge-disclosure"}
    assert all(p.t - said.end <= 3.0 for p in first[:2])
    assert first[0].rule == "bereavement" and first[0].why["utterance_id"] == "u2"
    assert first[0].why["values"] == {"text_distress": 0.95}
    assert first[0].signals == ("customer_says", "text_distress")
    assert out.index(first[0]) == out.index(said) + 1  # right after the words that fired it


def test_escalation_gets_de_escalation_and_a_flag():
    said = customer(3, 20.0, 24.0, "this is the third time I've called, I want a manager", escalation=0.9)
    out = run([customer(1, 1.0, 3.0, "hi I'm calling about my bill"), said])
    rules = [p.rule for p in prompts(out)]
    assert rules[:2] == ["deescalate-validate", "manager-request"]
    flags = [e for e in out if isinstance(e, Flag)]
    assert flags and flags[0].kind == "escalation" and flags[0].utterance_id == "u3"
    # the flag names the rule that raised it: the prompt just before it
    assert flags[0].rule == out[out.index(flags[0]) - 1].rule and flags[0].rule in rules


def test_crisis_pre_empts_everything_and_sticks():
    said = customer(2, 5.0, 8.0, "I don't want to be alive anymore, I want to speak to a manager",
                    distress=0.99, escalation=0.9, crisis=0.97)
    out = run([said])
    shown = [p for p in prompts(out) if p.t == said.t]
    assert [p.rule for p in shown] == ["crisis-self-harm"]
    assert shown[0].sticky and "13 11 14" in shown[0].support_line
    assert any(isinstance(e, Flag) and e.kind == "crisis" and e.severity == "critical" for e in out)


def test_a_calm_call_gets_nothing():
    lines = ["hi I'd like to check my balance", "yes it's the everyday account", "thanks that's all"]
    events = []
    for i, line in enumerate(lines):
        events.append(agent(2 * i, 10.0 * i, 10.0 * i + 3, "sure, let me look that up for you"))
        events.append(customer(2 * i + 1, 10.0 * i + 4, 10.0 * i + 7, line))
    assert prompts(run(events)) == []


def test_the_support_line_waits_for_a_trend_of_more_than_one_turn():
    """A trend over one turn is that turn's own score: a calm caller's first long turn that reads
    distress 0.64 ("we're leaving the place on Elm Grove…", in the bench's long calm call) gets no
    "offer a support line before you close"; a second distressed turn does, and so does a first
    distressed turn once the next one keeps the trend up."""
    first = customer(1, 1.0, 20.0, "we're moving out of the place on elm grove and the last day there is the "
                     "thirtieth so I need the power off from then", distress=0.64)
    assert "signpost-support" not in {p.rule for p in prompts(run([first]))}
    kept_up = customer(2, 24.0, 30.0, "sorry it's all a lot at the moment", distress=0.7,
                       trend={"distress": 0.66, "escalation": 0.05, "distress_rise": 0.0,
                              "escalation_rise": 0.0})
    fired = [p for p in prompts(run([first, kept_up])) if p.rule == "signpost-support"]
    assert [p.why["utterance_id"] for p in fired] == ["u2"]


def test_cooldown_and_cap_hold():
    events = [customer(i, 30.0 * i, 30.0 * i + 3, f"I'm so upset about all of this {i}", distress=0.9)
              for i in range(1, 12)]
    fired = [p for p in prompts(run(events)) if p.rule == "acknowledge-disclosure"]
    assert len(fired) == 3  # max_per_call
    gaps = [b.t - a.t for a, b in pairwise(fired)]
    assert all(g >= 120 for g in gaps)  # cooldown_s


def test_a_new_moment_is_answered_again_within_the_cooldown_once_the_last_has_passed():
    """deescalate-validate (cooldown 120 s, rearm_s 15): anger that eased on a turn and came back is
    a new moment; anger that never eased is not prompted again, nor sooner than rearm_s."""
    def validated(levels: list[tuple[float, float]]) -> list[float]:
        events = [customer(i, t - 3, t, f"words of turn {i} here", escalation=e)
                  for i, (t, e) in enumerate(levels)]
        return [p.t for p in prompts(run(events)) if p.rule == "deescalate-validate"]

    assert validated([(10, 0.9), (20, 0.2), (30, 0.9)]) == [10.5, 30.5]  # eased at 20, back at 30
    assert validated([(10, 0.9), (20, 0.9), (30, 0.9)]) == [10.5]  # never eased: the cooldown holds
    assert validated([(10, 0.9), (14, 0.2), (20, 0.9), (30, 0.9)]) == [10.5, 30.5]  # 20 is within 15 s
    again = validated([(10, 0.9), (20, 0.2), (30, 0.9), (40, 0.2), (50, 0.9), (60, 0.2), (70, 0.9)])
    assert again == [10.5, 30.5, 50.5]  # still at most max_per_call


def test_a_site_pack_without_rearm_keeps_the_cooldown(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[[override]]\nid = "deescalate-validate"\nrearm_s = 120\n', encoding="utf-8")
    events = [customer(i, t - 3, t, "words of the turn", escalation=e)
              for i, (t, e) in enumerate([(10, 0.9), (20, 0.2), (30, 0.9)])]
    assert [p.t for p in prompts(run(events, (site,))) if p.rule == "deescalate-validate"] == [10.5]


def test_a_withdrawn_prompt_holds_no_cooldown_and_no_count():
    """A partial misheard as distress, withdrawn by its final, does not keep the real disclosure a
    minute later from being acknowledged."""
    misheard = [partial(1, t, 1.0, "she went last month she was fifteen", distress=0.9) for t in (3.0, 4.0)]
    final = customer(1, 1.0, 6.0, "she went last month, she was fifteen, she had a good long innings",
                     distress=0.3)
    later = customer(2, 60.0, 64.0, "I haven't slept since the fire, I don't know where we'll live",
                     distress=0.95)
    out = run([*misheard, final, later])
    acknowledged = [p.t for p in prompts(out) if p.rule == "acknowledge-disclosure"]
    assert acknowledged == [4.0, 64.5]
    assert [(r.rule, r.prompt_t) for r in out if isinstance(r, Retract)] == [("acknowledge-disclosure", 4.0)]


def test_a_reading_of_one_partial_raises_no_card():
    """acknowledge-disclosure and the crisis cards have confirm_partials = 2: the condition must
    hold on two partials running (a crisis card is never withdrawn, so one misreading would stay on
    the agent's screen); the turn's final needs no second reading."""
    one = [partial(1, 3.0, 1.0, "she went last month", distress=0.9),
           partial(1, 4.0, 1.0, "she went last month, she was fifteen, she had a good long", distress=0.5)]
    assert not [p for p in prompts(run(one)) if p.t < 5]
    two = [partial(1, 3.0, 1.0, "since he went last month", distress=0.9),
           partial(1, 4.0, 1.0, "since he went last month I can't get out of bed", distress=0.92)]
    assert [(p.rule, p.t) for p in prompts(run(two)) if p.rule == "acknowledge-disclosure"] == [
        ("acknowledge-disclosure", 4.0)]
    gap = [partial(1, 3.0, 1.0, "since he went", distress=0.9),
           partial(1, 4.0, 1.0, "since he went last", distress=0.5),
           partial(1, 5.0, 1.0, "since he went last month", distress=0.9)]
    assert not [p for p in prompts(run(gap)) if p.rule == "acknowledge-disclosure"]  # not running
    read = partial(1, 3.0, 1.0, "I've been saving my tablets up", crisis=0.9)
    assert not prompts(run([read]))
    misread = partial(1, 4.0, 1.0, "I've been saving my tablets up for the dog's vet", crisis=0.3)
    assert not prompts(run([read, misread]))
    held = partial(1, 4.0, 1.0, "I've been saving my tablets up for when it's time", crisis=0.92)
    assert [(p.rule, p.t) for p in prompts(run([read, held]))] == [("crisis-self-harm", 4.0)]
    final = [read, customer(1, 1.0, 4.5, "I've been saving my tablets up", crisis=0.9)]
    assert [(p.rule, p.t) for p in prompts(run(final)) if p.t < 6] == [("crisis-self-harm", 4.5 + HANG_OVER)]


def test_site_pack_layers_on_the_default(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[[override]]\nid = "acknowledge-disclosure"\nenabled = false\n\n'
                    '[[override]]\nid = "bereavement"\nprompt = "Offer condolences, in your own words."\n',
                    encoding="utf-8")
    said = customer(1, 1.0, 4.0, "my husband passed away", distress=0.95)
    rules = {p.rule: p.text for p in prompts(run([said], (site,)))}
    assert "acknowledge-disclosure" not in rules
    assert rules["bereavement"] == "Offer condolences, in your own words."


def test_same_events_same_prompts():
    events = [customer(1, 1.0, 4.0, "my husband passed away", distress=0.95),
              customer(2, 6.0, 9.0, "this is the third time I've called", escalation=0.85)]
    assert [p.to_json() for p in prompts(run(events))] == [p.to_json() for p in prompts(run(events))]


def test_sample_call_prompts_on_real_audio(sample_call):
    """The demo call, through speech recognition, classifiers and the default pack."""
    events = sample_call.events
    shown = [e for e in events if isinstance(e, Prompt)]
    by_rule = {p.rule: p for p in reversed(shown)}  # first firing of each
    utterances = {e.utterance_id: e for e in events if isinstance(e, Utterance)}
    bereaved = by_rule["bereavement"]
    said = utterances[bereaved.why["utterance_id"]]
    assert "passed away" in said.text and bereaved.t - said.end <= 3.0
    assert "manager-request" in by_rule and "deescalate-validate" in by_rule
    assert not [p for p in shown if p.rule.startswith("crisis")]
    assert shown[-1].rule == "agent-check-in"
    per_minute = len(shown) / (events[-1].t / 60)
    assert per_minute < 5, per_minute


# -- rules that act on the words heard so far -----------------------------------------------------

def partial(n: int, t: float, start: float, text: str, **values: object) -> Partial:
    return Partial(t=t, call_id="c", utterance_id=f"u{n}", speaker=Speaker.CUSTOMER, start=start, text=text,
                   scores=scores(**values))  # type: ignore[arg-type]


def test_a_crisis_early_in_a_long_turn_is_answered_from_a_partial_and_not_again_at_the_final():
    words = "I've been putting my tablets aside, I don't think I'll be around much longer"
    early = [partial(2, 5.0, 1.0, words[:60], distress=0.9, crisis=0.85),
             partial(2, 6.0, 1.0, words, distress=0.9, crisis=0.9)]
    final = customer(2, 1.0, 31.0, words + " anyway the meter reading is four two seven one",
                     distress=0.9, crisis=0.9)
    out = run([*early, final])
    fired = [p for p in prompts(out) if p.rule == "crisis-self-harm"]
    assert [p.t for p in fired] == [6.0]  # on the second partial running, 25 s before the turn ended
    assert fired[0].why["partial"] is True and fired[0].sticky
    assert not [e for e in out if isinstance(e, Retract)]
    assert [f.kind for f in out if isinstance(f, Flag) and f.t == 6.0] == ["crisis"]


def test_a_partial_that_misheard_is_retracted_by_the_final():
    heard = partial(3, 4.0, 1.0, "I want to speak to your manager about this")
    final = customer(3, 1.0, 9.0, "I want to speak to your man about the dog, he's lovely")
    out = run([heard, final])
    manager = [p for p in prompts(out) if p.rule == "manager-request"]
    assert [p.t for p in manager] == [4.0]
    retracts = [e for e in out if isinstance(e, Retract)]
    assert [(r.rule, r.prompt_t, r.utterance_id) for r in retracts] == [("manager-request", 4.0, "u3")]
    assert out.index(retracts[0]) > out.index(final)


def test_a_crisis_prompt_is_never_retracted():
    heard = [partial(4, 3.0, 1.0, "he said he'll hurt me if I", crisis=0.8, kind="violence"),
             partial(4, 4.0, 1.0, "he said he'll hurt me if I call again", crisis=0.9, kind="violence")]
    final = customer(4, 1.0, 8.0, "he said he'll hurt the dog if I call again", crisis=0.3, kind="violence")
    out = run([*heard, final])
    assert [p.rule for p in prompts(out) if p.t == 4.0] == ["crisis-family-violence"]
    assert not [e for e in out if isinstance(e, Retract)]


def test_rules_that_need_the_whole_turn_wait_for_the_final():
    heard = partial(5, 4.0, 1.0, "I already told someone all of this", escalation=0.3)
    assert all(p.t != 4.0 for p in prompts(run([heard])))  # "already told" waits for the whole turn
    final = customer(5, 1.0, 8.0, "I already told someone all of this last week", escalation=0.3)
    out = run([heard, final])
    assert "dont-make-them-repeat" in {p.rule for p in prompts(out) if p.t == final.t}


def test_each_crisis_kind_gets_its_own_playbook_and_line():
    def first(kind: str, escalation: float = 0.05) -> Prompt:
        said = customer(6, 1.0, 5.0, "some words said here", crisis=0.9, kind=kind, escalation=escalation)
        return next(p for p in prompts(run([said])) if p.t == said.t)

    assert first("self-harm").rule == "crisis-self-harm" and "Lifeline" in first("self-harm").support_line
    violence = first("violence")
    assert violence.rule == "crisis-family-violence" and "1800RESPECT" in violence.support_line
    assert first("danger").rule == "crisis-danger" and "000" in first("danger").support_line
    assert first("violence", escalation=0.95).rule == "crisis-threat"
    for kind in ("self-harm", "violence", "danger"):  # one crisis card, never two equal ones
        said = customer(6, 1.0, 5.0, "some words said here", crisis=0.95, kind=kind)
        assert len([p for p in prompts(run([said])) if p.t == said.t]) == 1


def test_a_warm_transfer_offers_the_line_of_the_crisis_the_call_is_in():
    def transfer(kind: str) -> Prompt:
        said = [customer(n, 10.0 * n, 10.0 * n + 4, "some words said here again", crisis=0.95, kind=kind)
                for n in (1, 2, 3)]
        return next(p for p in prompts(run(said)) if p.rule == "crisis-warm-transfer")

    assert "1800RESPECT" in transfer("violence").support_line  # not Lifeline after family violence
    assert "Lifeline" not in transfer("violence").support_line
    assert "Lifeline" in transfer("self-harm").support_line
    assert "000" in transfer("danger").support_line and "Lifeline" not in transfer("danger").support_line
    # with no earlier crisis card in the call, the rule's own line
    alone = RulesEngine(load_for_run(()))
    rule = alone.by_id["crisis-warm-transfer"]
    assert crisis_line(rule, "") == rule.support_line


SITE_CRISIS = """[[override]]
id = "crisis-family-violence"
situation = "abuse at home"

[[rule]]
id = "site-wandering"
when = 'crisis_danger >= 0.5 and customer says "not in her room"'
prompt = "Ask when she was last seen; offer to call 000 with them."
principle = "safety"
source = "site"
priority = 100
flag = { kind = "crisis", severity = "critical" }
"""


def test_each_crisis_card_names_its_situation_and_a_site_may_name_its_own(tmp_path):
    def card(kind: str, escalation: float = 0.05, site: tuple[Path, ...] = ()) -> Prompt:
        said = customer(6, 1.0, 5.0, "some words said here", crisis=0.9, kind=kind, escalation=escalation)
        return next(p for p in prompts(run([said], site)) if p.t == said.t)

    assert [card(k).situation for k in ("self-harm", "violence", "danger")] == \
        ["self-harm", "family violence", "immediate danger"]
    assert card("violence", escalation=0.95).situation == "threat of harm"
    calm = run([customer(2, 1.0, 5.0, "my husband passed away", distress=0.95)])
    assert prompts(calm) and all(not p.situation for p in prompts(calm))
    # a site pack renames a situation, and a crisis rule of its own is named by its signal
    site = tmp_path / "site.toml"
    site.write_text(SITE_CRISIS, encoding="utf-8")
    assert card("violence", site=(site,)).situation == "abuse at home"
    said = customer(6, 1.0, 5.0, "mum is not in her room at the home", crisis=0.6, kind="danger")
    fired = next(p for p in prompts(run([said], (site,))) if p.t == said.t)
    assert (fired.rule, fired.situation) == ("site-wandering", "immediate danger")
    # the warm transfer names the crisis the call is in
    turns = [customer(n, 10.0 * n, 10.0 * n + 4, "some words said here again", crisis=0.95, kind="danger")
             for n in (1, 2, 3)]
    transfer = next(p for p in prompts(run(turns)) if p.rule == "crisis-warm-transfer")
    assert transfer.situation == "immediate danger"


def test_the_final_does_not_fire_again_what_a_partial_of_its_turn_fired(tmp_path):
    pack = tmp_path / "site.toml"
    pack.write_text('''[[rule]]
id = "site-hardship"
when = 'customer says "hardship"'
on = "partial"
prompt = "Offer the hardship programme."
principle = "choice"
source = "site"
cooldown_s = 0
max_per_call = 5
''', encoding="utf-8")
    heard = partial(7, 3.0, 1.0, "can I get on the hardship")
    again = partial(7, 4.0, 1.0, "can I get on the hardship program")  # nor a later partial of it
    final = customer(7, 1.0, 6.0, "can I get on the hardship program please")
    later = customer(8, 10.0, 12.0, "is hardship the same as a payment plan")
    out = run([heard, again, final, later], site_packs=(pack,))
    assert [p.t for p in prompts(out) if p.rule == "site-hardship"] == [3.0, later.t]


# -- the signals the condition language names are the ones the engine measures ----------------------

def one_rule_per_signal(tmp_path: Path, on: str) -> RulesEngine:
    """An engine whose pack has a rule `sig-NAME` for each signal, firing whenever that signal has
    any value at all (a comparison with a signal not measured is false), at every moment."""
    lines = []
    for signal in Signal:
        floor = "0" if SIGNALS[signal][1] else "-1000000"
        lines.append(f'[[rule]]\nid = "sig-{signal}"\nwhen = "{signal} >= {floor}"\nprompt = "{signal}"\n'
                     f'principle = "safety"\nsource = "test"\ncooldown_s = 0\nmax_per_call = 1000\n'
                     f'on = "{on}"\n')
    path = tmp_path / f"signals-{on}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    pack, problems = load([path])
    assert not errors(problems), problems
    return RulesEngine(pack, max_prompts=len(Signal))


def measured(engine: RulesEngine, events: list) -> dict[float, set[str]]:
    """The signals the engine had a value for at each moment a rule was checked, by call time."""
    out: dict[float, set[str]] = {}
    for event in events:
        for e in engine.process(event):
            if isinstance(e, Prompt) and e.rule.startswith("sig-"):  # not the prompts of a replayed call
                out.setdefault(e.t, set()).add(e.rule.removeprefix("sig-"))
    return out


def test_the_engine_measures_every_signal_a_condition_may_name(tmp_path):
    """Over a scripted call (a customer heard by voice and words, each crisis kind, the agent
    talking over them, a repeat, the end of the call) every `Signal` has a value for some rule."""
    words = customer(2, 5.0, 9.0, "I want a manager, I have asked four times", escalation=0.8)
    assert words.scores is not None
    voice = {"distress": 0.3, "escalation": 0.9, "angry": 0.9, "sad": 0.1, "fearful": 0.3}
    voiced = replace(words, scores=replace(words.scores, acoustic=voice))
    events = [CallStart(t=0.0, call_id="c", source="script", channels={}, started_at="", model=""),
              customer(1, 1.0, 4.0, "I want a manager, I have asked four times", kind="violence"),
              agent(2, 3.5, 6.0, "let me just explain how the process works here"), voiced,
              customer(3, 10.0, 12.0, "the gas is leaking", crisis=0.9, kind="danger"),
              CallEnd(t=20.0, call_id="c", reason=EndReason.END_OF_AUDIO)]
    seen = set().union(*measured(one_rule_per_signal(tmp_path, "final"), events).values())
    assert seen == set(Signal)


def test_a_scored_partial_gives_every_signal_of_its_turn_but_the_voice(tmp_path):
    """A rule with `on = "partial"` may name any signal a turn's words give; the voice is heard
    only at the final."""
    heard = partial(1, 3.0, 1.0, "I don't want to be here anymore", distress=0.9, crisis=0.9)
    start = CallStart(t=0.0, call_id="c", source="script", channels={}, started_at="", model="")
    seen = measured(one_rule_per_signal(tmp_path, "partial"), [start, heard])[3.0]
    voice = {Signal.VOICE_DISTRESS, Signal.VOICE_ESCALATION}
    # the call's counts and peaks come from finals (`customer_turns` counts the turns before this one)
    of_the_call = ("_peak", "_count", "_s", "_ended", "_repeats", "_turns")
    per_turn = {s for s in Signal if not s.endswith(of_the_call)}
    assert seen == per_turn - voice


def test_every_signal_of_a_real_call_is_one_the_language_names(sample_call, tmp_path):
    """The demo call, scored by the real models: the engine gives it every signal."""
    seen = set().union(*measured(one_rule_per_signal(tmp_path, "final"), sample_call.events).values())
    assert seen == set(Signal)

"""The rules engine: a pipeline stage that turns scored utterances into prompts and flags.

After every final utterance (and once when the call ends) it brings the call's signals up to date,
checks every enabled rule, and shows what fired, highest priority first. On each scored partial of
a customer's turn it checks the rules marked `on = "partial"` against the words heard so far (the
call's trend and counts wait for the final), so a disclosure early in a long turn is answered while
the customer is still speaking:

* at most `max_prompts` prompts at a time (two by default); ties go to the rule defined first;
* a crisis rule (one that raises a crisis flag) pre-empts everything else at that moment, only the
  highest-priority one fires, and its prompt is `sticky`: it stays until the agent acknowledges it;
* each rule waits `cooldown_s` after firing and fires at most `max_per_call` times;
* a rule with `rearm_s` may fire again sooner, for a new moment: once its condition has failed on a
  customer's final turn since it fired (the moment it answered has passed), and `rearm_s` after it
  fired. A customer who is angry again two turns later gets the card again; one who stays angry
  through five turns does not get it five times;
* a rule with `confirm_partials` fires on a partial only when its condition has held on that many
  of the turn's partials running, so a reading that lasts one partial (words half heard: "she died
  last month…", before "…so she had a good long innings") raises no card.

A prompt fired on a partial is not fired again by that turn's final. If the final no longer supports
it (the partial misheard), a `retract` event withdraws it, except a crisis prompt, which stays until
the agent acknowledges it. A withdrawn prompt is as if it had never fired: it holds no cooldown and
counts nothing against `max_per_call`, so the moment it was mistaken for does not hide a real one.

Deterministic: the same events give the same prompts. Phrases (`customer says …`) are matched in
the utterance being judged, so a phrase fires a rule once, when it is said.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from agent_assist.events import (
    CallEnd,
    CallStart,
    Event,
    Flag,
    FlagKind,
    Partial,
    Prompt,
    Retract,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.rules import conditions
from agent_assist.rules.conditions import Signal
from agent_assist.rules.fields import MOMENT_KINDS
from agent_assist.rules.packs import Pack, Rule
from agent_assist.scoring.turns import CRISIS_KINDS

_WORD = re.compile(r"[a-z0-9']+")
REPEAT_WINDOW = 40  # customer turns searched for a repeat
VOICE_SIGNALS = (Signal.VOICE_DISTRESS, Signal.VOICE_ESCALATION)
PEAKS = {Signal.DISTRESS: Signal.DISTRESS_PEAK, Signal.ESCALATION: Signal.ESCALATION_PEAK,
         Signal.CRISIS: Signal.CRISIS_PEAK}
#: The crisis signal named after each crisis kind (`crisis_self_harm` for "self-harm", …)
CRISIS_OF_KIND = {kind: Signal(f"crisis_{kind.replace('-', '_')}") for kind in CRISIS_KINDS}


class Early(NamedTuple):
    """A prompt fired on a turn's partial, and when its rule had last fired before it (to give the
    cooldown back if the final withdraws it)."""

    prompt: Prompt
    last_before: float | None


@dataclass
class CallState:
    """What the rules can see of the call so far."""

    call_id: str = ""
    signals: dict[Signal, float] = field(default_factory=dict)
    last_fired: dict[str, float] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    last_customer: Utterance | None = None
    last_end: float = 0.0
    # the customer's recent turns (as word sets), bounded so a long call costs no more per turn
    customer_turns: deque[set[str]] = field(default_factory=lambda: deque(maxlen=REPEAT_WINDOW))
    # prompts fired on a turn's partials, by utterance id: the final neither repeats nor keeps
    # one it no longer supports
    early: dict[str, list[Early]] = field(default_factory=dict)
    # the rules (with `rearm_s`) whose condition has failed on a customer's final since they fired
    cleared: set[str] = field(default_factory=set)
    # per turn still being spoken (utterance id): how many partials running each rule's condition
    # has held on (rules with `confirm_partials` only)
    held: dict[str, dict[str, int]] = field(default_factory=dict)
    # the support line and situation of this call's latest crisis card for one kind of crisis
    # (`crisis_line`, `situation`)
    crisis_line: str = ""
    crisis_situation: str = ""


#: The crisis moments a rule can answer (`answers`), one per kind of crisis.
CRISIS_MOMENTS = frozenset(m for m in MOMENT_KINDS if m.startswith("crisis-"))


def answers_several_crises(rule: Rule) -> bool:
    """A crisis rule for whatever crisis the call is in (the warm transfer), not for one kind."""
    return len(CRISIS_MOMENTS.intersection(rule.answers)) > 1


def crisis_line(rule: Rule, earlier: str) -> str:
    """The support line a crisis rule's card offers. A rule for one kind of crisis offers its own; a
    rule for any crisis (the warm transfer: "connect you with someone who can help") offers the line
    of the call's earlier crisis card, since that is the crisis the customer is in: a warm transfer
    after a family-violence disclosure is to 1800RESPECT, not to Lifeline. Its own line is the
    fallback for a call with no earlier crisis card."""
    if answers_several_crises(rule) and earlier:
        return earlier
    return rule.support_line


#: A crisis rule with no `situation` of its own is named by the crisis signal its condition reads, or
#: the one crisis moment it answers.
SIGNAL_SITUATIONS = {Signal.CRISIS_SELF_HARM: "self-harm", Signal.CRISIS_VIOLENCE: "violence or abuse",
                     Signal.CRISIS_DANGER: "immediate danger"}
ANSWER_SITUATIONS = {"crisis-self-harm": "self-harm", "crisis-violence": "violence or abuse",
                     "crisis-danger": "immediate danger"}


def situation(rule: Rule, earlier: str) -> str:
    """What a crisis rule's card names: the rule's own `situation`; for a rule for any crisis (the
    warm transfer), the call's `earlier` crisis; else the one crisis signal its condition reads or the
    one crisis it answers; else nothing ("CRISIS" alone)."""
    if rule.situation:
        return rule.situation
    if answers_several_crises(rule):
        return earlier
    named = ({SIGNAL_SITUATIONS[s] for s in conditions.signals(rule.condition) if s in SIGNAL_SITUATIONS}
             | {ANSWER_SITUATIONS[a] for a in rule.answers if a in ANSWER_SITUATIONS})
    return named.pop() if len(named) == 1 else ""


class RulesEngine:
    """Stage: passes every event on, and adds `prompt` and `flag` events after the one that fired them.

    Rules that fire at the end of the call come just before `call_end`, which stays the last event.
    """

    droppable_input = False

    def __init__(self, pack: Pack, *, max_prompts: int = 2) -> None:
        self.rules: list[Rule] = pack.enabled
        self.by_id: dict[str, Rule] = {r.id: r for r in self.rules}
        self.partial_rules: list[Rule] = [r for r in self.rules if r.on == "partial"]
        self.rearmable: list[Rule] = [r for r in self.rules if r.rearm_s is not None]
        self.max_prompts = max_prompts
        self.state = CallState()

    def process(self, event: Event) -> Iterator[Event]:
        if not isinstance(event, CallEnd):
            yield event
        if isinstance(event, CallStart):
            self.state = CallState(call_id=event.call_id)
        elif isinstance(event, Partial):
            if event.scores is not None and event.speaker != Speaker.AGENT and self.partial_rules:
                signals = self._turn_signals(event.scores)
                signals[Signal.CUSTOMER_WORDS] = float(len(event.text.split()))
                said = {event.speaker.value: event.text}
                already = {e.prompt.rule for e in self.state.early.get(event.utterance_id, [])}
                unconfirmed = self._unconfirmed(event.utterance_id, signals, said)
                yield from self._fire(event.t, event, said, rules=self.partial_rules, signals=signals,
                                      skip=already | unconfirmed)
        elif isinstance(event, Utterance):
            self._update(event)
            if event.speaker != Speaker.AGENT:
                self.state.held.clear()  # the customer's turn is over; its partials' runs with it
            early = self.state.early.pop(event.utterance_id, [])
            yield from self._fire(event.t, event, {event.speaker.value: event.text},
                                  skip={e.prompt.rule for e in early})
            yield from self._retract(event, early)
        elif isinstance(event, CallEnd):
            self.state.signals[Signal.CALL_ENDED] = 1.0
            self.state.signals[Signal.CALL_S] = event.t
            yield from self._fire(event.t, self.state.last_customer, {})
            yield event

    # -- signals -----------------------------------------------------------------------------------

    def _update(self, u: Utterance) -> None:
        st, sig = self.state, self.state.signals
        sig[Signal.CALL_S] = u.t
        sig[Signal.SILENCE_S] = max(0.0, u.start - st.last_end)
        st.last_end = max(st.last_end, u.end)
        duration = max(u.end - u.start, 0.3)
        if u.speaker == Speaker.AGENT:
            sig[Signal.AGENT_WORDS_PER_S] = len(u.words or u.text.split()) / duration
            sig[Signal.AGENT_TALK_S] = u.end - u.start
            c = st.last_customer
            sig[Signal.OVERLAP_S] = max(0.0, min(u.end, c.end) - max(u.start, c.start)) if c else 0.0
            return
        if u.scores is None:
            return
        st.last_customer = u
        values = self._values(u.scores)
        st.signals = sig = self._turn_signals(u.scores)
        for level, peak in PEAKS.items():
            sig[peak] = max(sig.get(peak, 0.0), values[level])
        said = len(u.text.split())
        sig[Signal.CUSTOMER_WORDS] = float(said)
        sig[Signal.CUSTOMER_TURNS] = sig.get(Signal.CUSTOMER_TURNS, 0.0) + 1.0
        for rule in self.rearmable:
            if (rule.id in st.last_fired and rule.id not in st.cleared
                    and not conditions.evaluate(rule.condition, sig, {u.speaker.value: u.text})):
                st.cleared.add(rule.id)
        # a one- or two-word answer ("okay") is read by its context alone: it adds no crisis
        counts = u.scores.crisis >= 0.5 and said >= 3
        sig[Signal.CRISIS_COUNT] = sig.get(Signal.CRISIS_COUNT, 0.0) + (1.0 if counts else 0.0)
        words = set(_WORD.findall(u.text.lower()))
        if len(words) >= 4:
            sig[Signal.CUSTOMER_REPEATS] = float(
                sum(len(words & old) / len(words | old) >= 0.6 for old in st.customer_turns)
            )
            st.customer_turns.append(words)

    @staticmethod
    def _values(s: Scores) -> dict[Signal, float]:
        """The signals one customer turn's scores give (a voice part only when it was heard)."""
        values = {
            Signal.DISTRESS: s.distress,
            Signal.ESCALATION: s.escalation,
            Signal.CRISIS: s.crisis,
            Signal.TEXT_DISTRESS: s.text.get("distress", 0.0),
            Signal.TEXT_ESCALATION: s.text.get("escalation", 0.0),
            Signal.DISTRESS_TREND: s.trend.get("distress", 0.0),
            Signal.ESCALATION_TREND: s.trend.get("escalation", 0.0),
            Signal.DISTRESS_RISE: s.trend.get("distress_rise", 0.0),
            Signal.ESCALATION_RISE: s.trend.get("escalation_rise", 0.0),
        }
        # the crisis, under the name of its most likely kind; 0 under the others
        for kind, signal in CRISIS_OF_KIND.items():
            values[signal] = s.crisis if s.kind == kind else 0.0
        if s.acoustic is not None:
            values[Signal.VOICE_DISTRESS] = s.acoustic.get("distress", 0.0)
            values[Signal.VOICE_ESCALATION] = s.acoustic.get("escalation", 0.0)
        return values

    def _turn_signals(self, s: Scores) -> dict[Signal, float]:
        """The call's signals with one turn's in place. A turn the voice did not hear (a partial, a
        short one) has no voice signals, so no rule fires on an earlier turn's voice."""
        signals = {k: v for k, v in self.state.signals.items() if k not in VOICE_SIGNALS}
        signals.update(self._values(s))
        return signals

    # -- firing --------------------------------------------------------------------------------------

    def _fire(self, t: float, about: Utterance | Partial | None, said: dict[str, str], *,
              rules: list[Rule] | None = None, signals: dict[Signal, float] | None = None,
              skip: set[str] | frozenset[str] = frozenset()) -> Iterator[Event]:
        st = self.state
        signals = st.signals if signals is None else signals
        due = []
        for order, rule in enumerate(self.rules if rules is None else rules):
            if rule.id in skip or st.fired.get(rule.id, 0) >= rule.max_per_call:
                continue
            last = st.last_fired.get(rule.id)
            if last is not None and t - last < rule.cooldown_s and not self._rearmed(rule, t - last):
                continue
            if conditions.evaluate(rule.condition, signals, said):
                due.append((rule, order))
        if not due:
            return
        crisis = [(r, o) for r, o in due if r.flag and r.flag.kind == FlagKind.CRISIS]
        if crisis:
            due = crisis
        due.sort(key=lambda ro: (-ro[0].priority, ro[1]))
        # a crisis is one card, the most specific playbook, never one of two equal cards
        for rule, _ in due[: 1 if crisis else self.max_prompts]:
            last_before = st.last_fired.get(rule.id)
            st.fired[rule.id] = st.fired.get(rule.id, 0) + 1
            st.last_fired[rule.id] = t
            st.cleared.discard(rule.id)
            used = sorted(conditions.names(rule.condition))
            utterance_id = about.utterance_id if about else ""
            why: dict[str, Any] = {
                "utterance_id": utterance_id,
                "text": about.text if about else "",
                "values": {s.value: round(signals[s], 3) for s in sorted(conditions.signals(rule.condition))
                           if s in signals},
                "said": said,
            }
            if isinstance(about, Partial):
                why["partial"] = True  # fired on the words heard so far; the final may retract it
            sticky = bool(rule.flag and rule.flag.kind == FlagKind.CRISIS)
            prompt = Prompt(
                t=t,
                call_id=st.call_id,
                rule=rule.id,
                principle=rule.principle,
                text=rule.prompt,
                example=rule.example,
                priority=rule.priority,
                signals=tuple(used),
                why=why,
                support_line=crisis_line(rule, st.crisis_line) if sticky else rule.support_line,
                sticky=sticky,
                situation=situation(rule, st.crisis_situation) if sticky else "",
            )
            if isinstance(about, Partial):
                st.early.setdefault(utterance_id, []).append(Early(prompt, last_before))
            if sticky and not answers_several_crises(rule):
                st.crisis_line = rule.support_line or st.crisis_line
                st.crisis_situation = prompt.situation or st.crisis_situation
            yield prompt
            if rule.flag:
                values = ", ".join(f"{k} {v:.2f}" for k, v in why["values"].items())
                yield Flag(
                    t=t,
                    call_id=st.call_id,
                    kind=rule.flag.kind,
                    severity=rule.flag.severity,
                    reason=f"{rule.id}: {values}" if values else rule.id,
                    utterance_id=utterance_id,
                    rule=rule.id,
                )

    def _rearmed(self, rule: Rule, since: float) -> bool:
        """May `rule`, still in its cooldown `since` s after firing, fire again for a new moment?"""
        return rule.rearm_s is not None and since >= rule.rearm_s and rule.id in self.state.cleared

    def _unconfirmed(self, utterance_id: str, signals: dict[Signal, float],
                     said: dict[str, str]) -> set[str]:
        """The partial rules with `confirm_partials` whose condition has not yet held on that many
        of this turn's partials running (counted here, one partial at a time)."""
        held = self.state.held.setdefault(utterance_id, {})
        waiting = set()
        for rule in self.partial_rules:
            if rule.confirm_partials <= 1:
                continue
            runs = held[rule.id] = (held.get(rule.id, 0) + 1
                                    if conditions.evaluate(rule.condition, signals, said) else 0)
            if runs < rule.confirm_partials:
                waiting.add(rule.id)
        return waiting

    def _retract(self, final: Utterance, early: list[Early]) -> Iterator[Event]:
        """Withdraw the prompts fired on this turn's partials that its final no longer supports, and
        give back what they held: the rule's cooldown and its count."""
        st = self.state
        said = {final.speaker.value: final.text}
        for prompt, last_before in early:
            rule = self.by_id[prompt.rule]
            if prompt.sticky or conditions.evaluate(rule.condition, st.signals, said):
                continue
            st.fired[rule.id] -= 1
            if st.last_fired.get(rule.id) == prompt.t:
                if last_before is None:
                    del st.last_fired[rule.id]
                else:
                    st.last_fired[rule.id] = last_before
            yield Retract(t=final.t, call_id=self.state.call_id, rule=prompt.rule, prompt_t=prompt.t,
                          utterance_id=final.utterance_id,
                          reason="the final transcript no longer supports it")

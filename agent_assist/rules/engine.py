"""The rules engine: a pipeline stage that turns scored utterances into prompts and flags.

After every final utterance (and once when the call ends) it brings the call's signals up to date,
checks every enabled rule, and shows what fired, highest priority first. On each scored partial of
a customer's turn it checks the rules marked `on = "partial"` against the words heard so far (the
call's trend and counts wait for the final), so a disclosure early in a long turn is answered while
the customer is still speaking:

* at most `max_prompts` prompts at a time (two by default); ties go to the rule defined first;
* a crisis rule (one that raises a crisis flag) pre-empts everything else at that moment, only the
  highest-priority one fires, and its prompt is `sticky`: it stays until the agent acknowledges it;
* each rule waits `cooldown_s` after firing and fires at most `max_per_call` times.

A prompt fired on a partial is not fired again by that turn's final. If the final no longer supports
it (the partial misheard), a `retract` event withdraws it, except a crisis prompt, which stays until
the agent acknowledges it.

Deterministic: the same events give the same prompts. Phrases (`customer says …`) are matched in
the utterance being judged, so a phrase fires a rule once, when it is said.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent_assist.events import (
    CallEnd,
    CallStart,
    Event,
    Flag,
    Partial,
    Prompt,
    Retract,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.rules import conditions
from agent_assist.rules.packs import Pack, Rule
from agent_assist.scoring.turns import CRISIS_KINDS

_WORD = re.compile(r"[a-z0-9']+")
REPEAT_WINDOW = 40  # customer turns searched for a repeat
VOICE_SIGNALS = ("voice_distress", "voice_escalation")


@dataclass
class CallState:
    """What the rules can see of the call so far."""

    call_id: str = ""
    signals: dict[str, float] = field(default_factory=dict)
    last_fired: dict[str, float] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    last_customer: Utterance | None = None
    last_end: float = 0.0
    # the customer's recent turns (as word sets), bounded so a long call costs no more per turn
    customer_turns: deque[set[str]] = field(default_factory=lambda: deque(maxlen=REPEAT_WINDOW))
    # prompts fired on a turn's partials, by utterance id: the final neither repeats nor keeps
    # one it no longer supports
    early: dict[str, list[Prompt]] = field(default_factory=dict)


class RulesEngine:
    """Stage: passes every event on, and adds `prompt` and `flag` events after the one that fired them.

    Rules that fire at the end of the call come just before `call_end`, which stays the last event.
    """

    droppable_input = False

    def __init__(self, pack: Pack, *, max_prompts: int = 2) -> None:
        self.rules: list[Rule] = pack.enabled
        self.by_id: dict[str, Rule] = {r.id: r for r in self.rules}
        self.partial_rules: list[Rule] = [r for r in self.rules if r.on == "partial"]
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
                signals["customer_words"] = float(len(event.text.split()))
                already = {p.rule for p in self.state.early.get(event.utterance_id, [])}
                yield from self._fire(event.t, event, {event.speaker.value: event.text},
                                      rules=self.partial_rules, signals=signals, skip=already)
        elif isinstance(event, Utterance):
            self._update(event)
            early = self.state.early.pop(event.utterance_id, [])
            yield from self._fire(event.t, event, {event.speaker.value: event.text},
                                  skip={p.rule for p in early})
            yield from self._retract(event, early)
        elif isinstance(event, CallEnd):
            self.state.signals["call_ended"] = 1.0
            self.state.signals["call_s"] = event.t
            yield from self._fire(event.t, self.state.last_customer, {})
            yield event

    # -- signals -----------------------------------------------------------------------------------

    def _update(self, u: Utterance) -> None:
        st, sig = self.state, self.state.signals
        sig["call_s"] = u.t
        sig["silence_s"] = max(0.0, u.start - st.last_end)
        st.last_end = max(st.last_end, u.end)
        duration = max(u.end - u.start, 0.3)
        if u.speaker == Speaker.AGENT:
            sig["agent_words_per_s"] = len(u.words or u.text.split()) / duration
            sig["agent_talk_s"] = u.end - u.start
            c = st.last_customer
            sig["overlap_s"] = max(0.0, min(u.end, c.end) - max(u.start, c.start)) if c else 0.0
            return
        if u.scores is None:
            return
        st.last_customer = u
        values = self._values(u.scores)
        st.signals = sig = self._turn_signals(u.scores)
        for name in ("distress", "escalation", "crisis"):
            sig[f"{name}_peak"] = max(sig.get(f"{name}_peak", 0.0), values[name])
        said = len(u.text.split())
        sig["customer_words"] = float(said)
        # a one- or two-word answer ("okay") is read by its context alone: it adds no crisis
        counts = u.scores.crisis >= 0.5 and said >= 3
        sig["crisis_count"] = sig.get("crisis_count", 0.0) + (1.0 if counts else 0.0)
        words = set(_WORD.findall(u.text.lower()))
        if len(words) >= 4:
            sig["customer_repeats"] = float(
                sum(len(words & old) / len(words | old) >= 0.6 for old in st.customer_turns)
            )
            st.customer_turns.append(words)

    @staticmethod
    def _values(s: Scores) -> dict[str, float]:
        """The signals one customer turn's scores give (a voice part only when it was heard)."""
        values = {
            "distress": s.distress,
            "escalation": s.escalation,
            "crisis": s.crisis,
            "text_distress": s.text.get("distress", 0.0),
            "text_escalation": s.text.get("escalation", 0.0),
            "distress_trend": s.trend.get("distress", 0.0),
            "escalation_trend": s.trend.get("escalation", 0.0),
            "distress_rise": s.trend.get("distress_rise", 0.0),
            "escalation_rise": s.trend.get("escalation_rise", 0.0),
        }
        for kind in CRISIS_KINDS:  # the crisis, under the name of its most likely kind; 0 under the others
            values[f"crisis_{kind.replace('-', '_')}"] = s.crisis if s.kind == kind else 0.0
        if s.acoustic is not None:
            values["voice_distress"] = s.acoustic.get("distress", 0.0)
            values["voice_escalation"] = s.acoustic.get("escalation", 0.0)
        return values

    def _turn_signals(self, s: Scores) -> dict[str, float]:
        """The call's signals with one turn's in place. A turn the voice did not hear (a partial, a
        short one) has no voice signals, so no rule fires on an earlier turn's voice."""
        signals = {k: v for k, v in self.state.signals.items() if k not in VOICE_SIGNALS}
        signals.update(self._values(s))
        return signals

    # -- firing --------------------------------------------------------------------------------------

    def _fire(self, t: float, about: Utterance | Partial | None, said: dict[str, str], *,
              rules: list[Rule] | None = None, signals: dict[str, float] | None = None,
              skip: set[str] | frozenset[str] = frozenset()) -> Iterator[Event]:
        st = self.state
        signals = st.signals if signals is None else signals
        due = []
        for order, rule in enumerate(self.rules if rules is None else rules):
            if rule.id in skip or st.fired.get(rule.id, 0) >= rule.max_per_call:
                continue
            last = st.last_fired.get(rule.id)
            if last is not None and t - last < rule.cooldown_s:
                continue
            if conditions.evaluate(rule.condition, signals, said):
                due.append((rule, order))
        if not due:
            return
        crisis = [(r, o) for r, o in due if r.flag and r.flag.kind == "crisis"]
        if crisis:
            due = crisis
        due.sort(key=lambda ro: (-ro[0].priority, ro[1]))
        # a crisis is one card, the most specific playbook, never one of two equal cards
        for rule, _ in due[: 1 if crisis else self.max_prompts]:
            st.fired[rule.id] = st.fired.get(rule.id, 0) + 1
            st.last_fired[rule.id] = t
            used = sorted(conditions.names(rule.condition))
            utterance_id = about.utterance_id if about else ""
            why: dict[str, Any] = {
                "utterance_id": utterance_id,
                "text": about.text if about else "",
                "values": {n: round(signals[n], 3) for n in used if n in signals},
                "said": said,
            }
            if isinstance(about, Partial):
                why["partial"] = True  # fired on the words heard so far; the final may retract it
            sticky = bool(rule.flag and rule.flag.kind == "crisis")
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
                support_line=rule.support_line,
                sticky=sticky,
            )
            if isinstance(about, Partial):
                st.early.setdefault(utterance_id, []).append(prompt)
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

    def _retract(self, final: Utterance, early: list[Prompt]) -> Iterator[Event]:
        """Withdraw the prompts fired on this turn's partials that its final no longer supports."""
        said = {final.speaker.value: final.text}
        for prompt in early:
            rule = self.by_id[prompt.rule]
            if prompt.sticky or conditions.evaluate(rule.condition, self.state.signals, said):
                continue
            yield Retract(t=final.t, call_id=self.state.call_id, rule=prompt.rule, prompt_t=prompt.t,
                          utterance_id=final.utterance_id,
                          reason="the final transcript no longer supports it")

"""The rules engine: a pipeline stage that turns scored utterances into prompts and flags.

After every final utterance (and once when the call ends) it brings the call's signals up to date,
checks every enabled rule, and shows what fired, highest priority first:

* at most `max_prompts` prompts at a time (two by default); ties go to the rule defined first;
* a crisis rule (one that raises a crisis flag) pre-empts everything else at that moment, and its
  prompt is `sticky`: it stays until the agent acknowledges it;
* each rule waits `cooldown_s` after firing and fires at most `max_per_call` times.

Deterministic: the same events give the same prompts. Phrases (`customer says …`) are matched in
the utterance being judged, so a phrase fires a rule once, when it is said.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent_assist.events import CallEnd, CallStart, Event, Flag, Prompt, Speaker, Utterance
from agent_assist.rules import conditions
from agent_assist.rules.packs import Pack, Rule

_WORD = re.compile(r"[a-z0-9']+")
REPEAT_WINDOW = 40  # customer turns searched for a repeat


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


class RulesEngine:
    """Stage: passes every event on, and adds `prompt` and `flag` events after the one that fired them.

    Rules that fire at the end of the call come just before `call_end`, which stays the last event.
    """

    def __init__(self, pack: Pack, *, max_prompts: int = 2) -> None:
        self.rules: list[Rule] = pack.enabled
        self.max_prompts = max_prompts
        self.state = CallState()

    def process(self, event: Event) -> Iterator[Event]:
        if not isinstance(event, CallEnd):
            yield event
        if isinstance(event, CallStart):
            self.state = CallState(call_id=event.call_id)
        elif isinstance(event, Utterance):
            self._update(event)
            yield from self._fire(event.t, event, {event.speaker.value: event.text})
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
        s = u.scores
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
        if s.acoustic is not None:
            values["voice_distress"] = s.acoustic.get("distress", 0.0)
            values["voice_escalation"] = s.acoustic.get("escalation", 0.0)
        else:
            sig.pop("voice_distress", None)
            sig.pop("voice_escalation", None)
        sig.update(values)
        for name in ("distress", "escalation", "crisis"):
            sig[f"{name}_peak"] = max(sig.get(f"{name}_peak", 0.0), values[name])
        sig["crisis_count"] = sig.get("crisis_count", 0.0) + (1.0 if s.crisis >= 0.5 else 0.0)
        words = set(_WORD.findall(u.text.lower()))
        if len(words) >= 4:
            sig["customer_repeats"] = float(
                sum(len(words & old) / len(words | old) >= 0.6 for old in st.customer_turns)
            )
            st.customer_turns.append(words)

    # -- firing --------------------------------------------------------------------------------------

    def _fire(self, t: float, about: Utterance | None, said: dict[str, str]) -> Iterator[Event]:
        st = self.state
        due = []
        for order, rule in enumerate(self.rules):
            if st.fired.get(rule.id, 0) >= rule.max_per_call:
                continue
            last = st.last_fired.get(rule.id)
            if last is not None and t - last < rule.cooldown_s:
                continue
            if conditions.evaluate(rule.condition, st.signals, said):
                due.append((rule, order))
        if not due:
            return
        crisis = [(r, o) for r, o in due if r.flag and r.flag.kind == "crisis"]
        if crisis:
            due = crisis
        due.sort(key=lambda ro: (-ro[0].priority, ro[1]))
        for rule, _ in due[: self.max_prompts]:
            st.fired[rule.id] = st.fired.get(rule.id, 0) + 1
            st.last_fired[rule.id] = t
            used = sorted(conditions.names(rule.condition))
            utterance_id = about.utterance_id if about else ""
            why: dict[str, Any] = {
                "utterance_id": utterance_id,
                "text": about.text if about else "",
                "values": {n: round(st.signals[n], 3) for n in used if n in st.signals},
                "said": said,
            }
            sticky = bool(rule.flag and rule.flag.kind == "crisis")
            yield Prompt(
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
            if rule.flag:
                values = ", ".join(f"{k} {v:.2f}" for k, v in why["values"].items())
                yield Flag(
                    t=t,
                    call_id=st.call_id,
                    kind=rule.flag.kind,
                    severity=rule.flag.severity,
                    reason=f"{rule.id}: {values}" if values else rule.id,
                    utterance_id=utterance_id,
                )

"""The small, safe language of a rule's `when`: comparisons over signals, joined by and/or/not.

    distress >= 0.7 and not crisis >= 0.5
    escalation_rise > 0.2 or customer says "manager", "supervisor"
    agent_words_per_s > 3.2 and distress >= 0.5

Grammar (a recursive-descent parser; nothing is evaluated as Python):

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")" | comparison | phrase
    comparison := NAME OP NUMBER          OP: >= > <= < == !=
    phrase     := ("customer" | "agent") "says" STRING ("," STRING)*

Names are checked against the signals a rule may use (`Signal`, which the rules engine produces;
a test holds the two to each other), and probability signals must be compared with a number in
[0, 1], so a typo or an impossible threshold is found by the linter, not on a live call. A phrase
matches when the speaker's latest utterance contains it as whole words, ignoring case and
punctuation.

A condition is at most `MAX_LENGTH` characters and `MAX_DEPTH` parentheses or `not`s deep, and
is read in one pass, so the linter answers at once whatever it is given (a 400 KB condition took
36 s when each token re-read the rest of the text) and evaluating a rule never recurses far.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from agent_assist.text import excerpt


class Signal(StrEnum):
    """The signals a condition may name: exactly those the rules engine measures (`SIGNALS` says
    what each means)."""

    DISTRESS = "distress"
    ESCALATION = "escalation"
    CRISIS = "crisis"
    CRISIS_SELF_HARM = "crisis_self_harm"
    CRISIS_VIOLENCE = "crisis_violence"
    CRISIS_DANGER = "crisis_danger"
    TEXT_DISTRESS = "text_distress"
    TEXT_ESCALATION = "text_escalation"
    VOICE_DISTRESS = "voice_distress"
    VOICE_ESCALATION = "voice_escalation"
    DISTRESS_TREND = "distress_trend"
    ESCALATION_TREND = "escalation_trend"
    DISTRESS_RISE = "distress_rise"
    ESCALATION_RISE = "escalation_rise"
    AGENT_WORDS_PER_S = "agent_words_per_s"
    AGENT_TALK_S = "agent_talk_s"
    OVERLAP_S = "overlap_s"
    SILENCE_S = "silence_s"
    CUSTOMER_REPEATS = "customer_repeats"
    CUSTOMER_WORDS = "customer_words"
    CUSTOMER_TURNS = "customer_turns"
    CALL_S = "call_s"
    CALL_ENDED = "call_ended"
    CRISIS_COUNT = "crisis_count"
    DISTRESS_PEAK = "distress_peak"
    ESCALATION_PEAK = "escalation_peak"
    CRISIS_PEAK = "crisis_peak"

    @classmethod
    def named(cls, name: str) -> Signal | None:
        """The signal called `name`, or None."""
        try:
            return cls(name)
        except ValueError:
            return None


#: What each signal means and whether it is a probability in [0, 1].
SIGNALS: dict[Signal, tuple[str, bool]] = {
    Signal.DISTRESS: ("combined distress of the customer's latest utterance", True),
    Signal.ESCALATION: ("combined escalation of the customer's latest utterance", True),
    Signal.CRISIS: ("crisis from the words of the customer's latest utterance", True),
    Signal.CRISIS_SELF_HARM: ("crisis when its most likely kind is self-harm (suicidal thoughts, "
                              "self-harm), else 0", True),
    Signal.CRISIS_VIOLENCE: ("crisis when its most likely kind is violence (family violence, abuse, "
                             "coercive control, threats), else 0", True),
    Signal.CRISIS_DANGER: ("crisis when its most likely kind is immediate danger (gas, fire, a medical "
                           "emergency), else 0", True),
    Signal.TEXT_DISTRESS: ("distress from the words alone", True),
    Signal.TEXT_ESCALATION: ("escalation from the words alone", True),
    Signal.VOICE_DISTRESS: ("distress from the voice alone", True),
    Signal.VOICE_ESCALATION: ("escalation (anger) from the voice alone", True),
    Signal.DISTRESS_TREND: ("smoothed distress over the customer's turns", True),
    Signal.ESCALATION_TREND: ("smoothed escalation over the customer's turns", True),
    Signal.DISTRESS_RISE: ("rise of the distress trend over the last three turns (-1 to 1)", False),
    Signal.ESCALATION_RISE: ("rise of the escalation trend over the last three turns (-1 to 1)", False),
    Signal.AGENT_WORDS_PER_S: ("the agent's speaking rate in their latest utterance", False),
    Signal.AGENT_TALK_S: ("length of the agent's latest utterance (a monologue when long)", False),
    Signal.OVERLAP_S: ("seconds the agent spoke over the customer's latest utterance", False),
    Signal.SILENCE_S: ("seconds since anyone last spoke (a long silence or hold)", False),
    Signal.CUSTOMER_REPEATS: ("times the customer has said nearly the same thing this call", False),
    Signal.CUSTOMER_WORDS: ("words in the customer's latest turn (or the words so far, on a partial)", False),
    Signal.CUSTOMER_TURNS: ("the customer's scored turns so far, the latest included (on a partial, the "
                            "turns before it), so a trend can ask for more than one turn", False),
    Signal.CALL_S: ("seconds since the call started", False),
    Signal.CALL_ENDED: ("1 once the call has ended (for after-call prompts), else 0", False),
    Signal.CRISIS_COUNT: ("customer utterances of three words or more so far with crisis >= 0.5", False),
    Signal.DISTRESS_PEAK: ("highest distress of the call so far", True),
    Signal.ESCALATION_PEAK: ("highest escalation of the call so far", True),
    Signal.CRISIS_PEAK: ("highest crisis of the call so far", True),
}
SPEAKERS = ("customer", "agent")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_TOKEN = re.compile(
    r"""\s*+(?:(?P<num>-?\d++(?:\.\d++)?)|(?P<str>"(?:[^"\\]++|\\.)*+")|(?P<op>>=|<=|==|!=|>|<)
                        |(?P<punct>[(),])|(?P<name>[A-Za-z_][A-Za-z0-9_]*+))""",
    re.X,
)
_SPACE = re.compile(r"\s*+")
#: The longest condition, in characters: the default pack's longest is about 250, and a list of
#: a hundred phrases fits.
MAX_LENGTH = 4000
#: How deep parentheses and `not`s may nest: far past what a person writes, and shallow enough
#: that parsing and evaluating never come near Python's recursion limit.
MAX_DEPTH = 20


class ConditionError(ValueError):
    """A condition that does not parse or names something unknown; `column` is 1-based."""

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        super().__init__(message)
        self.column = column
        self.hint = hint


@dataclass(frozen=True)
class Compare:
    signal: Signal
    op: str
    value: float


@dataclass(frozen=True)
class Says:
    speaker: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


Node = Compare | Says | Not | And | Or


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    column: int


def _tokens(source: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(source):
        if _SPACE.match(source, pos).end() == len(source):  # type: ignore[union-attr]
            break
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            col = _SPACE.match(source, pos).end() + 1  # type: ignore[union-attr]
            char = source[col - 1]
            raise ConditionError(f"unexpected character {char!r}", col,
                                 'a phrase goes in double quotes: customer says "can\'t pay"; in a TOML '
                                 'value in double quotes write each as \\"' if char == "'" else "")
        kind = m.lastgroup or ""
        text = m.group(kind)
        out.append(_Tok(kind, text, m.start(kind) + 1))
        pos = m.end()
    out.append(_Tok("end", "", len(source) + 1))
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks = _tokens(source)
        self.i = 0
        self.depth = 0  # parentheses and `not`s open around the current token

    def deeper(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"nested more than {MAX_DEPTH} deep (parentheses and 'not')", tok.column,
                                 "write it flatter: 'not' binds tighter than 'and', 'and' than 'or'")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def word(self, text: str) -> bool:
        tok = self.peek()
        if tok.kind == "name" and tok.text.lower() == text:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise ConditionError(f"unexpected {excerpt(tok.text, 40)}; expected 'and', 'or' or the end",
                                 tok.column)
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.word("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.word("and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_expr(self) -> Node:
        tok = self.peek()
        if self.word("not"):
            self.deeper(tok)
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            self.deeper(tok)
            node = self.or_expr()
            close = self.take()
            if close.text != ")":
                raise ConditionError("missing ')'", close.column)
            self.depth -= 1
            return node
        if tok.kind != "name":
            found = tok.text or "the end"
            raise ConditionError(f"expected a signal or a speaker, found {excerpt(found, 40)}", tok.column)
        if tok.text in SPEAKERS and self.peek().kind == "name" and self.peek().text == "says":
            self.take()
            phrases = [self.string()]
            while self.peek().text == ",":
                self.take()
                phrases.append(self.string())
            return Says(tok.text, tuple(phrases))
        signal = Signal.named(tok.text)
        if signal is None:
            near = difflib.get_close_matches(tok.text, [*(s.value for s in Signal), *SPEAKERS], n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"signals: {', '.join(Signal)}"
            raise ConditionError(f"unknown signal {excerpt(tok.text, 40)}", tok.column, hint)
        op = self.take()
        if op.kind != "op":
            raise ConditionError(
                f"expected a comparison (>=, >, <=, <, ==, !=) after {excerpt(tok.text, 40)}", op.column
            )
        num = self.take()
        if num.kind != "num":
            raise ConditionError(f"expected a number after {excerpt(op.text, 40)}", num.column)
        value = float(num.text)
        if not math.isfinite(value):
            raise ConditionError(f"the number {num.text[:20]}… is too large", num.column)
        if SIGNALS[signal][1] and not 0.0 <= value <= 1.0:
            raise ConditionError(f"{signal} is a probability; {value:g} is outside [0, 1]", num.column)
        return Compare(signal, op.text, value)

    def string(self) -> str:
        tok = self.take()
        if tok.kind != "str":
            raise ConditionError('expected a quoted phrase, like "manager"', tok.column)
        phrase = _unquote(tok.text).strip()
        if not phrase:
            raise ConditionError("an empty phrase matches everything", tok.column)
        return phrase


def parse(source: str) -> Node:
    """The condition in `source`, or a `ConditionError` saying where and why it is wrong."""
    if len(source) > MAX_LENGTH:
        raise ConditionError(f"the condition is {len(source):,} characters long; at most {MAX_LENGTH:,}", 1,
                             "split it into rules of their own")
    if not source.strip():
        raise ConditionError("empty condition", 1)
    return _Parser(source).parse()


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "


def evaluate(node: Node, signals: Mapping[Signal, float], said: Mapping[str, str]) -> bool:
    """Whether `node` holds. A signal missing from `signals` makes its comparison false."""
    if isinstance(node, Compare):
        value = signals.get(node.signal)
        return value is not None and _OPS[node.op](value, node.value)
    if isinstance(node, Says):
        text = _words(said.get(node.speaker, ""))
        return any(_words(p) in text for p in node.phrases)
    if isinstance(node, Not):
        return not evaluate(node.inner, signals, said)
    if isinstance(node, And):
        return all(evaluate(p, signals, said) for p in node.parts)
    return any(evaluate(p, signals, said) for p in node.parts)


def names(node: Node) -> set[str]:
    """The signals (and `customer says`/`agent says`) a condition uses: a prompt's "why"."""
    if isinstance(node, Compare):
        return {node.signal.value}
    if isinstance(node, Says):
        return {f"{node.speaker}_says"}
    if isinstance(node, Not):
        return names(node.inner)
    return set().union(*(names(p) for p in node.parts))


def signals(node: Node) -> set[Signal]:
    """The signals a condition compares (its phrases aside)."""
    if isinstance(node, Compare):
        return {node.signal}
    if isinstance(node, Says):
        return set()
    if isinstance(node, Not):
        return signals(node.inner)
    return set().union(*(signals(p) for p in node.parts))

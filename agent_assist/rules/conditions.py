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

Names are checked against the signals a rule may use (`SIGNALS`), and probability signals must be
compared with a number in [0, 1], so a typo or an impossible threshold is found by the linter,
not on a live call. A phrase matches when the speaker's latest utterance contains it as whole
words, ignoring case and punctuation.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Signals a condition may name: what each means and whether it is a probability in [0, 1].
SIGNALS: dict[str, tuple[str, bool]] = {
    "distress": ("combined distress of the customer's latest utterance", True),
    "escalation": ("combined escalation of the customer's latest utterance", True),
    "crisis": ("crisis from the words of the customer's latest utterance", True),
    "crisis_self_harm": ("crisis when its most likely kind is self-harm (suicidal thoughts, self-harm), "
                         "else 0", True),
    "crisis_violence": ("crisis when its most likely kind is violence (family violence, abuse, coercive "
                        "control, threats), else 0", True),
    "crisis_danger": ("crisis when its most likely kind is immediate danger (gas, fire, a medical "
                      "emergency), else 0", True),
    "text_distress": ("distress from the words alone", True),
    "text_escalation": ("escalation from the words alone", True),
    "voice_distress": ("distress from the voice alone", True),
    "voice_escalation": ("escalation (anger) from the voice alone", True),
    "distress_trend": ("smoothed distress over the customer's turns", True),
    "escalation_trend": ("smoothed escalation over the customer's turns", True),
    "distress_rise": ("rise of the distress trend over the last three turns (-1 to 1)", False),
    "escalation_rise": ("rise of the escalation trend over the last three turns (-1 to 1)", False),
    "agent_words_per_s": ("the agent's speaking rate in their latest utterance", False),
    "agent_talk_s": ("length of the agent's latest utterance (a monologue when long)", False),
    "overlap_s": ("seconds the agent spoke over the customer's latest utterance", False),
    "silence_s": ("seconds since anyone last spoke (a long silence or hold)", False),
    "customer_repeats": ("times the customer has said nearly the same thing this call", False),
    "customer_words": ("words in the customer's latest turn (or the words so far, on a partial)", False),
    "call_s": ("seconds since the call started", False),
    "call_ended": ("1 once the call has ended (for after-call prompts), else 0", False),
    "crisis_count": ("customer utterances of three words or more so far with crisis >= 0.5", False),
    "distress_peak": ("highest distress of the call so far", True),
    "escalation_peak": ("highest escalation of the call so far", True),
    "crisis_peak": ("highest crisis of the call so far", True),
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
    r"""\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|==|!=|>|<)
                        |(?P<punct>[(),])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))""",
    re.X,
)


class ConditionError(ValueError):
    """A condition that does not parse or names something unknown; `column` is 1-based."""

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        super().__init__(message)
        self.column = column
        self.hint = hint


@dataclass(frozen=True)
class Compare:
    signal: str
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
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            col = pos + len(source[pos:]) - len(source[pos:].lstrip()) + 1
            raise ConditionError(f"unexpected character {source[col - 1]!r}", col)
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
            raise ConditionError(f"unexpected {tok.text!r}; expected 'and', 'or' or the end", tok.column)
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
        if self.word("not"):
            return Not(self.not_expr())
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            node = self.or_expr()
            close = self.take()
            if close.text != ")":
                raise ConditionError("missing ')'", close.column)
            return node
        if tok.kind != "name":
            found = tok.text or "the end"
            raise ConditionError(f"expected a signal or a speaker, found {found!r}", tok.column)
        if tok.text in SPEAKERS and self.peek().kind == "name" and self.peek().text == "says":
            self.take()
            phrases = [self.string()]
            while self.peek().text == ",":
                self.take()
                phrases.append(self.string())
            return Says(tok.text, tuple(phrases))
        if tok.text not in SIGNALS:
            near = difflib.get_close_matches(tok.text, [*SIGNALS, *SPEAKERS], n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"signals: {', '.join(SIGNALS)}"
            raise ConditionError(f"unknown signal {tok.text!r}", tok.column, hint)
        op = self.take()
        if op.kind != "op":
            raise ConditionError(
                f"expected a comparison (>=, >, <=, <, ==, !=) after {tok.text!r}", op.column
            )
        num = self.take()
        if num.kind != "num":
            raise ConditionError(f"expected a number after {op.text!r}", num.column)
        value = float(num.text)
        if SIGNALS[tok.text][1] and not 0.0 <= value <= 1.0:
            raise ConditionError(f"{tok.text} is a probability; {value:g} is outside [0, 1]", num.column)
        return Compare(tok.text, op.text, value)

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
    if not source.strip():
        raise ConditionError("empty condition", 1)
    return _Parser(source).parse()


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "


def evaluate(node: Node, signals: Mapping[str, float], said: Mapping[str, str]) -> bool:
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
        return {node.signal}
    if isinstance(node, Says):
        return {f"{node.speaker}_says"}
    if isinstance(node, Not):
        return names(node.inner)
    return set().union(*(names(p) for p in node.parts))

"""Fuzz: rule packs through the one path that lints and loads them, then through the engine.

Properties, on packs Hypothesis writes (from a grammar of plausible rules with wild values mixed
in) and on the default pack damaged at random:

- `load` (which is `rules lint`) never raises, whatever the file holds; every problem is one
  terminal-safe line;
- lint clean => runs: a pack with no errors loads every rule it holds (none silently dropped) and a
  scripted call runs through the rules engine, every event written as JSON, read back and printed.

Derandomised and bounded (`FUZZ`), so `make test` is reproducible and quick.
"""

from __future__ import annotations

import atexit
import io
import json
import re
import shutil
import tempfile
import tomllib
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Partial,
    PublicEvent,
    Scores,
    Speaker,
    Utterance,
    event_from_json,
)
from agent_assist.rules.conditions import Signal
from agent_assist.rules.engine import RulesEngine
from agent_assist.rules.packs import MOMENT_KINDS, PRINCIPLES, Pack, errors, load
from agent_assist.sinks import ConsoleTranscript
from tests.conftest import REPO

DEFAULT = REPO / "prompts" / "default.toml"
SHIPPED = load([DEFAULT])[0]
FUZZ = settings(max_examples=100, deadline=timedelta(seconds=5), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WORK = Path(tempfile.mkdtemp(prefix="fuzz-packs-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)  # one folder a process, removed at its end
NASTY = ["\u2028", "\x85", "\x0c", "\x1c", "\x1b[2J", "\u202e", "\x00", "\r", "\t", '"', "'", "\\", "#", "=",
         "[", "]", "{", "}", "[[rule]]", '"""', "\n", "\\u", "é", "😀"]


def toml_string(text: str) -> str:
    """`text` as a TOML basic string (escapes for quotes, backslashes and controls; the rest as is)."""
    escaped = re.sub(r'["\\\x00-\x1f\x7f]', lambda m: f"\\u{ord(m.group()):04x}", text)
    return f'"{escaped}"'


# -- what a pack may hold ---------------------------------------------------------------------------

numbers = st.one_of(st.floats(-0.5, 1.5, allow_nan=False).map(lambda f: f"{f:.3f}"),
                    st.integers(-5, 500).map(str), st.sampled_from(["1" + "0" * 400, "-0", "0.5"]))
signals = st.sampled_from([s.value for s in Signal])
words = st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,2}", fullmatch=True)


def tree(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"not {a}", inner), st.builds(lambda a: f"({a})", inner)), max_leaves=8)


# conditions that parse: known signals, thresholds in [0, 1], phrases of words
sound_conditions = tree(st.one_of(
    st.builds(lambda s, op, n: f"{s} {op} {n:.2f}", signals,
              st.sampled_from([">=", ">", "<=", "<", "==", "!="]), st.floats(0, 1)),
    st.builds(lambda who, said: f"{who} says " + ", ".join(f'"{p}"' for p in said),
              st.sampled_from(["customer", "agent"]), st.lists(words, min_size=1, max_size=3))))
# and anything a hand or a fuzzer may write
wild_conditions = st.one_of(
    tree(st.builds(lambda s, op, n: f"{s} {op} {n}", st.one_of(signals, st.sampled_from(["nosuch", "says"])),
                   st.sampled_from([">=", "=>", "=", "<"]), numbers)),
    st.lists(st.sampled_from(["distress", ">=", "0.5", "and", "or", "not", "(", ")", '"x"', ",", "customer",
                              "says", "1e9", "-", "crisis", '"', "\\"]), max_size=12).map(" ".join),
    st.builds(lambda d, wrap: wrap[0] * d + "distress >= 0.5" + wrap[1] * d, st.integers(0, 3000),
              st.sampled_from([("(", ")"), ("not ", ""), ("(not ", ")")])),
    st.text(max_size=30))

scalars = st.one_of(st.text(max_size=20).map(toml_string), st.integers(-(10**20), 10**20).map(str),
                    st.floats().map(repr), st.booleans().map(lambda b: str(b).lower()),
                    st.sampled_from(["1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "9" * 5000, "nan",
                                     "-inf"]))
wild = st.one_of(
    st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["kind", "severity", "a"]), inner, max_size=3).map(
            lambda d: "{ " + ", ".join(f"{k} = {v}" for k, v in d.items()) + " }")), max_leaves=5),
    st.integers(1, 3000).map(lambda d: "[" * d + "]" * d))
text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)


def now_and_then(draw: st.DrawFn, chance: float) -> bool:
    """True `chance` of the time (Hypothesis's own integers lean to their bounds, so not those; its
    randoms lean to 0, so that is the common case, and the one a failure shrinks to)."""
    return draw(st.randoms(use_true_random=False)).random() > 1 - chance


@st.composite
def plausible(draw: st.DrawFn, sound: st.SearchStrategy[str], chance: float = 0.03,
              other: st.SearchStrategy[str] | None = None) -> str:
    """A value of the right kind, and now and then anything at all (`other`, by default any TOML
    value): many packs have a problem or two, and enough are sound that the engine runs on many."""
    return draw((wild if other is None else other) if now_and_then(draw, chance) else sound)


FIELDS = {
    "id": plausible(st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True).map(toml_string)),
    "when": plausible(plausible(sound_conditions, 0.1, wild_conditions).map(toml_string)),
    "prompt": plausible(text.filter(str.strip).map(toml_string)),
    "example": plausible(text.map(toml_string)),
    "principle": plausible(st.sampled_from(list(PRINCIPLES)).map(toml_string)),
    "source": plausible(text.filter(str.strip).map(toml_string)),
    "priority": plausible(st.integers(-1, 101).map(str)),
    "cooldown_s": plausible(st.one_of(st.integers(-1, 90000).map(str), st.floats(0, 1e5).map(repr))),
    "max_per_call": plausible(st.integers(0, 1001).map(str)),
    "flag": plausible(st.builds(lambda k, s: f'{{ kind = "{k}", severity = "{s}" }}',
                                st.sampled_from(["crisis", "distress", "escalation", "agent"]),
                                st.sampled_from(["low", "medium", "high", "critical"]))),
    "enabled": plausible(st.booleans().map(lambda b: str(b).lower())),
    "on": plausible(st.sampled_from(["final", "partial"]).map(toml_string)),
    "answers": plausible(st.lists(st.sampled_from(MOMENT_KINDS), max_size=3).map(
        lambda xs: "[" + ", ".join(toml_string(x) for x in xs) + "]")),
}
REQUIRED = ("id", "when", "prompt", "principle", "source")
rule = st.fixed_dictionaries({k: FIELDS[k] for k in REQUIRED},
                             optional={k: v for k, v in FIELDS.items() if k not in REQUIRED})
override = st.fixed_dictionaries({"id": st.sampled_from(['"acknowledge-distress"', '"manager-request"',
                                                         '"bereavement"', '"crisis-self-harm"', '"nope"'])},
                                 optional={k: v for k, v in FIELDS.items() if k != "id"})
header = st.sampled_from(["[[{}]]", "[[{}]]", "[[{}]]", '[["{}"]]', "[[ {} ]]  # a comment", "[['{}']]"])


@st.composite
def packs(draw: st.DrawFn, overrides: bool = False) -> str:
    """A pack file: a few rules (and `overrides` of the default pack's), each under a header
    written one of several ways, now and then with a misspelt field, or all written as an inline
    list (which must be refused)."""
    entries = [("rule", r) for r in draw(st.lists(rule, max_size=4))]
    if overrides:
        entries += [("override", o) for o in draw(st.lists(override, max_size=2))]
    if entries and now_and_then(draw, 0.04):
        entries[0][1]["suport_line"] = '"a misspelt field"'
    if entries and now_and_then(draw, 0.04):
        kind = entries[0][0]
        inline = ", ".join("{ " + ", ".join(f"{k} = {v}" for k, v in e.items()) + " }"
                           for k2, e in entries if k2 == kind)
        return f"{kind} = [{inline}]\n"
    parts = []
    for kind, entry in entries:
        lines = [draw(header).format(kind)] + [f"{k} = {v}" for k, v in entry.items()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


@st.composite
def damaged_default(draw: st.DrawFn) -> str:
    """The default pack with a few pieces of damage where Hypothesis chooses."""
    text = DEFAULT.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        piece = draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=3), wild))
        text = text[:at] + piece + text[at + cut:]
    return text


# -- the properties ------------------------------------------------------------------------------

def write(text: str, name: str = "pack.toml") -> Path:
    path = WORK / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def scripted_call() -> list:
    """A call whose customer says what rules listen for, at every level of every score."""
    said = ["I want to speak to a manager", "my husband passed away", "I want to kill myself",
            "he hits me", "okay", "hardship", "x"]
    events: list = [CallStart(t=0.0, call_id="fuzz", source="fuzz", channels={}, started_at="", model="")]
    t = 0.0
    for i, text in enumerate(said * 2):
        level = (i % 5) / 4
        scored = Scores(distress=level, escalation=1 - level, crisis=level, text={"distress": level},
                        acoustic={"distress": level} if i % 2 else None, baseline=False,
                        trend={"distress": level, "distress_rise": 0.3},
                        kind=["self-harm", "violence", "danger"][i % 3])
        who = Speaker.AGENT if i % 4 == 3 else Speaker.CUSTOMER
        scores = scored if who == Speaker.CUSTOMER else None
        events.append(Partial(t=t + 1, call_id="fuzz", utterance_id=f"u{i}", speaker=who, start=t,
                              text=text.split()[0], scores=scores))
        events.append(Utterance(t=t + 3, call_id="fuzz", utterance_id=f"u{i}", speaker=who, start=t,
                                end=t + 2.5, text=text, scores=scores))
        t += 200 if i % 5 == 4 else 4
    events.append(CallEnd(t=t + 1, call_id="fuzz", reason=EndReason.END_OF_AUDIO))
    return events


def runs(pack: Pack) -> None:
    """The pack through the engine on the scripted call: every event written, read back, printed."""
    engine = RulesEngine(pack)
    console = ConsoleTranscript(io.StringIO(), show_partials=True)
    for step in scripted_call():
        for out in engine.process(step):
            if isinstance(out, PublicEvent):
                assert event_from_json(out.to_json()) == out
                console.emit(out)


def lint_then_run(paths: list[Path], written: str, base: Pack | None = None) -> None:
    pack, problems = load(paths, base)  # raises nothing, whatever the files hold
    for problem in problems:
        line = str(problem)
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line), line
    if errors(problems):
        event("lint: errors")
        return
    event("lint: clean, and run")
    data = tomllib.loads(written)
    rules = data.get("rule", [])
    assert len([r for r in pack.rules.values() if r.origin.startswith(str(paths[-1]))]) >= len(rules), \
        "a rule that lints clean was not loaded"
    runs(pack)


@FUZZ
@given(packs())
def test_written_packs_lint_without_failing_and_lint_clean_ones_run(text):
    lint_then_run([write(text)], text)


@settings(FUZZ, max_examples=80)
@given(packs(overrides=True))
def test_site_packs_on_the_default_pack_lint_and_run_alike(text):
    """A site pack layered on the default pack (loaded once here: `load` takes the files in order, so
    this is what `rules lint site.toml` checks and `run --rules site.toml` loads)."""
    lint_then_run([write(text, "site.toml")], text, Pack(dict(SHIPPED.rules), list(SHIPPED.files)))


@FUZZ
@given(damaged_default())
def test_the_damaged_default_pack_lints_without_failing_and_runs_when_clean(text):
    lint_then_run([write(text, "default.toml")], text)


@settings(FUZZ, max_examples=40)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_problem_at_most(data):
    path = WORK / "bytes.toml"
    path.write_bytes(data)
    load([path])


def test_the_default_pack_runs():
    pack, problems = load([DEFAULT])
    assert not errors(problems)
    runs(pack)
    assert json.dumps(sorted(pack.rules))  # every rule id is text

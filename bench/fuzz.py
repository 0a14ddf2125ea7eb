"""The nightly fuzz run: thousands of generated hostile inputs through `rules lint` and the readers
of `rules replay` and `classifiers score`, counting what must never happen.

    make bench-fuzz                                   # 10,000 packs + 2,500 transcripts + 2,500 tables
    .venv/bin/python bench/fuzz.py --packs 200 --transcripts 50 --tables 50   # a smoke run

Three families of cases, each generated from a fixed seed (the same run gives the same cases):

- **packs**: the default pack (prompts/default.toml) mutated one way each: a string field given a
  table, a list, a datetime or a huge integer; deep nesting; conditions 400 KB long or 5,000
  parentheses deep; `[[rule]]` written inline, quoted, misspelt or faked inside a multi-line
  string; unknown, missing and duplicate fields; random line and byte damage. Each is linted
  through the command line (`rules lint --no-default MUTANT SENTINEL`, in this process), with a
  sentinel file whose one known problem must still be reported whatever the mutant does. A mutant
  that lints clean is loaded and run through the rules engine on a scripted call, every event
  written as JSON and printed as the console prints it.
- **transcripts**: lines of `rules replay` transcript files (JSONL), valid ones with hostile
  characters in every string, and broken ones (lone surrogates, deep nesting, non-finite times,
  wrong types, 1M-character words, lines of megabytes, a FIFO).
- **tables**: `classifiers score` input (CSV, TSV, plain text) whose rows hold U+2028, NEL, form
  feeds, file separators, quotes and line breaks, and broken ones (an unterminated quote, a 17 MB
  field, bytes that are not UTF-8, a FIFO).

Counted: **internal errors** (any exception but the project's clean error, or lint's exit 70),
**hangs** (a case not done within --timeout seconds, run in a worker process that is then
replaced), **invalid passed** (a pack broken by construction that lints clean, a transcript broken
by construction that is read), **run crashes** (a pack that lints clean but fails when loaded and
run, or loses a rule), **aborted** (the sentinel's problem missing: one bad file stopped the
others being linted), **misaligned** (a reader's rows differ from the rows written, or a broken
table read without an error). Valid inputs refused are counted too, as a note.

The counts go to stdout and bench/results/fuzz.json; README's "Fuzzing" paragraph quotes them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing as mp
import os
import random
import re
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PACK = REPO / "prompts" / "default.toml"
OUTCOMES = ("ok", "internal", "hang", "invalid-passed", "run-crash", "aborted", "misaligned",
            "valid-refused")
NASTY = ["\u2028", "\u2029", "\x85", "\x0c", "\x1c", "\x1d", "\x1e", "\x0b", "\x1b[31m", "\x1b]0;x\x07",
         "\u202e", "\u2066", "\u200f", "\u061c", "\x00", "\t", "\r", "\ufeff", "é", "日本", "😀", '"',
         "'", ",", "\\", "#", "[[rule]]", " "]


# -- packs ---------------------------------------------------------------------------------------

STRING_FIELDS = ("id", "when", "prompt", "example", "principle", "source", "support_line", "on")
NUMBER_FIELDS = ("priority", "cooldown_s", "max_per_call")
NOT_A_STRING = ["{ a = 1 }", "[1, 2]", '["x"]', "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "42",
                "4.2", "true", "inf", "nan", "9" * 5000, "-" + "9" * 40, "[]", "{}"]
NOT_A_NUMBER = ['"60"', "{ a = 1 }", "[1]", "1979-05-27", "1979-05-27T07:32:00", "true", "9" * 5000, "nan",
                "inf", "-1", "-inf", "1e400"]
BAD_FLAGS = ['"crisis"', "[1]", '{ kind = "crisis" }', '{ kind = "crisis", severity = "high", extra = 1 }',
             '{ kind = [1], severity = "low" }', '{ kind = {}, severity = "low" }',
             '{ kind = "crisis", severity = 1979-05-27 }', "{}", '{ kind = "nope", severity = "low" }']
BAD_ANSWERS = ['"distress"', "[1]", '[["distress"]]', "{}", '["nope"]', "[1979-05-27]"]
BAD_CONDITIONS = ["nosuch >= 0.5", "distress >= 1.5", "distress >=", "distress >= 0.5 and",
                  "((distress >= 0.5)", 'customer says ""', "customer says", "distress 0.5", ">= 0.5",
                  "distress >= 0.5)",
                  'customer says "a" ,', "and", "not", "()", "distress >= 0.5 or or crisis >= 0.5",
                  "distress >= --1", "distress => 0.5", 'customer says "unterminated', "distress >= 0.5 $"]


def _rule_blocks(text: str) -> list[tuple[int, int]]:
    """(first line, end line) of each `[[rule]]` table of the default pack, by line index."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.strip() == "[[rule]]"]
    blocks = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        while end > start and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        blocks.append((start, end))
    return blocks


def _set_field(rng: random.Random, lines: list[str], blocks: list[tuple[int, int]], fields: tuple[str, ...],
               value: Callable[[str], str]) -> bool:
    """Give one field of one rule a new value; False when the chosen rule has none of `fields`."""
    start, end = rng.choice(blocks)
    present = [(i, m.group(1)) for i in range(start, end)
               if (m := re.match(r"([a-z_]+) = ", lines[i])) and m.group(1) in fields]
    if not present:
        return False
    i, name = rng.choice(present)
    lines[i] = f"{name} = {value(name)}"
    return True


def _nested(rng: random.Random, depth: int) -> str:
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return "{ a = " * depth + "1" + " }" * depth


def _toml_value(value: Any) -> str:
    """A TOML inline value (what the default pack holds: strings, numbers, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"


def mutate_pack(rng: random.Random, text: str) -> tuple[str, str, str]:
    """(mutation name, the mutated pack, 'invalid' or 'any'): an 'invalid' mutant must not lint
    clean; an 'any' mutant may, and then must load every rule it holds and run."""
    lines = text.split("\n")
    blocks = _rule_blocks(text)
    kind = rng.choices(
        ["wrong-type", "bad-number", "bad-flag", "bad-answers", "bad-enabled", "deep-nesting",
         "deep-condition", "long-condition", "bad-condition", "condition-edit", "inline-rules",
         "quoted-header", "fake-header",
         "sub-table", "misspelt-table", "unknown-field", "missing-field", "duplicate-id", "bad-override",
         "top-level", "huge-string", "control-chars", "surrogate", "line-damage", "char-damage", "truncate"],
        weights=[10, 6, 4, 3, 2, 5, 4, 1, 6, 6, 2, 3, 3, 2, 2, 3, 3, 2, 2, 2, 1, 3, 2, 10, 10, 3])[0]
    verdict = "invalid"
    if kind == "wrong-type":
        while not _set_field(rng, lines, blocks, STRING_FIELDS, lambda _: rng.choice(NOT_A_STRING)):
            pass
    elif kind == "bad-number":
        while not _set_field(rng, lines, blocks, NUMBER_FIELDS, lambda _: rng.choice(NOT_A_NUMBER)):
            pass
    elif kind == "bad-flag":
        while not _set_field(rng, lines, blocks, ("flag",), lambda _: rng.choice(BAD_FLAGS)):
            pass
    elif kind == "bad-answers":
        while not _set_field(rng, lines, blocks, ("answers",), lambda _: rng.choice(BAD_ANSWERS)):
            pass
    elif kind == "bad-enabled":
        start, _ = rng.choice(blocks)
        lines.insert(start + 1, "enabled = " + rng.choice(['"yes"', "1", "[true]", "1979-05-27"]))
    elif kind == "deep-nesting":
        depth = rng.choice([50, 300, 1000, 5000, 20000])
        while not _set_field(rng, lines, blocks, STRING_FIELDS + NUMBER_FIELDS + ("flag", "answers"),
                             lambda _: _nested(rng, depth)):
            pass
    elif kind == "deep-condition":
        depth = rng.choice([100, 300, 1000, 5000, 20000])
        inner = rng.choice(["(" * depth + "distress >= 0.5" + ")" * depth, "not " * depth + "distress >= 0.5",
                            "(not " * depth + "distress >= 0.5" + ")" * depth])
        _set_field(rng, lines, blocks, ("when",), lambda _: json.dumps(inner))
    elif kind == "long-condition":
        size = rng.choice([20_000, 100_000, 400_000])
        unit = rng.choice(["distress >= 0.5 and ", "crisis < 0.1 or ", " ", '"x", '])
        body = (unit * (size // len(unit)))
        inner = {"distress >= 0.5 and ": body + "distress >= 0.5", "crisis < 0.1 or ": body + "crisis < 0.1",
                 " ": "distress >= 0.5" + body, '"x", ': 'customer says ' + body + '"x"'}[unit]
        _set_field(rng, lines, blocks, ("when",), lambda _: json.dumps(inner))
    elif kind == "bad-condition":
        _set_field(rng, lines, blocks, ("when",), lambda _: json.dumps(rng.choice(BAD_CONDITIONS)))
    elif kind == "condition-edit":
        verdict = "any"

        def edited(_: str) -> str:
            source = rng.choice([r.get("when", "") for r in tomllib.loads(text)["rule"]])
            tokens = re.findall(r'"[^"]*"|\S+', source)
            i = rng.randrange(len(tokens))
            op = rng.choice(["drop", "repeat", "swap", "number"])
            if op == "drop":
                del tokens[i]
            elif op == "repeat":
                tokens.insert(i, tokens[i])
            elif op == "swap":
                j = rng.randrange(len(tokens))
                tokens[i], tokens[j] = tokens[j], tokens[i]
            else:
                tokens[i] = rng.choice(["1" + "0" * 400, "-0", "0.99999999999", "1e5", "0x1", "1_000", "-1"])
            return json.dumps(" ".join(tokens))

        _set_field(rng, lines, blocks, ("when",), edited)
    elif kind == "inline-rules":
        rules = tomllib.loads(text)["rule"]
        inline = "rule = [\n" + ",\n".join(_toml_value(r) for r in rules) + "\n]\n"
        head = "\n".join(lines[: blocks[0][0]])
        return kind, head + "\n" + inline, "invalid"
    elif kind == "quoted-header":
        verdict = "any"  # valid TOML for the same table: read as [[rule]], or refused; never dropped
        start, _ = rng.choice(blocks)
        lines[start] = rng.choice(['[["rule"]]', "[[ 'rule' ]]", '[[ "rule" ]]  # quoted',
                                   '[["r\\u0075le"]]'])
    elif kind == "fake-header":
        verdict = "any"  # a multi-line string that holds a line `[[rule]]`: valid, and every rule loads
        start, end = rng.choice(blocks)
        lines.insert(end, 'example = """\n[[rule]]\nid = "not-a-rule"\n"""')
        lines[start + 1: end] = [x for x in lines[start + 1: end] if not x.startswith("example = ")]
    elif kind == "sub-table":
        start, end = rng.choice(blocks)
        lines.insert(end, rng.choice(['[[rule.flag]]\nkind = "crisis"\nseverity = "low"',
                                      "[rule.extra]\na = 1", '[rule.answers]\nx = "distress"']))
    elif kind == "misspelt-table":
        start, _ = rng.choice(blocks)
        lines[start] = rng.choice(["[[rules]]", "[rule]", "[[Rule]]", "[[overide]]", "[[rule]"])
    elif kind == "unknown-field":
        start, _ = rng.choice(blocks)
        lines.insert(start + 1, rng.choice(["priorty = 50", "when_ = \"distress >= 0.5\"", "x = 1",
                                            "flag.extra = 1", '"prompt " = "x"']))
    elif kind == "missing-field":
        while not _set_field(rng, lines, blocks, ("id", "when", "prompt", "principle", "source"),
                             lambda _: '""'):
            pass
    elif kind == "duplicate-id":
        (a, _), (b, _) = rng.sample(blocks, 2)
        first = next(x for x in lines[a:] if x.startswith("id = "))
        i = next(i for i in range(b, len(lines)) if lines[i].startswith("id = "))
        lines[i] = first
    elif kind == "bad-override":
        lines.append(rng.choice(['[[override]]\nid = "no-such-rule"\nprompt = "x"',
                                 '[[override]]\nprompt = "x"', '[[override]]\nid = ["crisis-self-harm"]',
                                 '[[override]]\nid = "crisis-threat"\nwhen = "distress >= 0.1"',
                                 '[[override]]\nid = { a = 1 }']))
    elif kind == "top-level":
        lines.insert(rng.randrange(0, blocks[0][0] + 1), rng.choice(
            ["x = 1", "pack = 1", "rule = 1", 'override = "x"', "[other]\na = 1", "pack.name = [1]"]))
        if "pack = 1" in lines or "pack.name = [1]" in lines:
            lines = [x for x in lines if x != "[pack]" and not x.startswith(("name = ", "version = "))]
    elif kind == "huge-string":
        size = rng.choice([100_000, 1_000_000])
        word = rng.choice(["a", "word ", "é"]) * (size // 4)
        _set_field(rng, lines, blocks, ("prompt", "example", "source", "support_line", "id"),
                   lambda _: json.dumps(word))
    elif kind == "control-chars":
        verdict = "any"
        chars = rng.choice(["\\u001b[2J", "\\u202e", "\\u0000", "\\u0007", "\\u0085", "\\u2028", "\\r\\n"])
        _set_field(rng, lines, blocks, ("prompt", "example", "source", "support_line", "id"),
                   lambda n: f'"{n} {chars} text"')
    elif kind == "surrogate":
        _set_field(rng, lines, blocks, ("prompt", "example", "id"),
                   lambda _: rng.choice(['"\\ud800"', '"a\\udfff"']))
    elif kind == "line-damage":
        verdict = "any"
        i = rng.randrange(len(lines))
        op = rng.choice(["drop", "repeat", "swap"])
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        else:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
    elif kind == "char-damage":
        verdict = "any"
        joined = "\n".join(lines)
        at = rng.randrange(len(joined))
        piece = rng.choice([*NASTY, "\n", "=", "[", "]", "{", "}", "\\u", "\\ud800"])
        joined = joined[:at] + piece + joined[at + rng.choice([0, 0, 1]):]
        return kind, joined, verdict
    elif kind == "truncate":
        verdict = "any"
        joined = "\n".join(lines)
        return kind, joined[: rng.randrange(len(joined))], verdict
    return kind, "\n".join(lines), verdict


SENTINEL = '[[rule]]\nid = "sentinel"\nwhen = "distress >= 0.5"\nprompt = "x"\nprinciple = "safety"\n' \
           'source = "x"\nsentinel_field = 1\n'


def _scripted_call() -> list[Any]:
    """A call whose customer says what the default rules listen for, at every level of score."""
    from agent_assist.events import CallEnd, CallStart, EndReason, Partial, Scores, Speaker, Utterance

    said = ["I want to speak to a manager", "my husband passed away last week", "I want to kill myself",
            "he hits me and I'm scared of him", "there's a gas leak", "this is the third time I've called",
            "okay", "I can't afford the payment, hardship", "sorry sorry sorry", "can you repeat that"]
    events: list[Any] = [CallStart(t=0.0, call_id="fuzz", source="fuzz", channels={}, started_at="",
                                   model="x")]
    t = 0.0
    for i, text in enumerate(said * 2):
        level = (i % 5) / 4
        voice = {"distress": level, "escalation": level} if i % 2 else None
        trend = {"distress": level, "escalation": level, "distress_rise": 0.3, "escalation_rise": 0.3}
        scores = Scores(distress=level, escalation=1 - level, crisis=level,
                        text={"distress": level, "escalation": 1 - level}, acoustic=voice, baseline=False,
                        trend=trend, kind=["self-harm", "violence", "danger"][i % 3])
        speaker = Speaker.AGENT if i % 4 == 3 else Speaker.CUSTOMER
        heard = scores if speaker == Speaker.CUSTOMER else None
        events.append(Partial(t=t + 1, call_id="fuzz", utterance_id=f"u{i}", speaker=speaker, start=t,
                              text=text.split()[0], scores=heard))
        events.append(Utterance(t=t + 3, call_id="fuzz", utterance_id=f"u{i}", speaker=speaker, start=t,
                                end=t + 2.5, text=text, scores=heard))
        t += 400 if i % 7 == 6 else 4  # past most cooldowns now and then
    events.append(CallEnd(t=t + 1, call_id="fuzz", reason=EndReason.END_OF_AUDIO))
    return events


def _run_pack(path: Path) -> str:
    """A pack that linted clean: every rule in it loads, and a call runs through it to the end."""
    from agent_assist.events import PublicEvent, event_from_json
    from agent_assist.rules import packs
    from agent_assist.rules.engine import RulesEngine
    from agent_assist.sinks import ConsoleTranscript

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        pack, problems = packs.load([path])
        if packs.errors(problems):
            return "run-crash: lints clean but does not load"
        entries = data.get("rule", [])
        if len(pack.rules) != (len(entries) if isinstance(entries, list) else 0):
            return f"run-crash: {len(entries)} rules written, {len(pack.rules)} loaded"
        engine = RulesEngine(pack)
        console = ConsoleTranscript(io.StringIO(), show_partials=True)
        for event in _scripted_call():
            for out in engine.process(event):
                if isinstance(out, PublicEvent):
                    event_from_json(out.to_json())
                    console.emit(out)
    except Exception as exc:
        return f"run-crash: {type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def _lint(paths: list[str]) -> tuple[int, str, str]:
    """`agent-assist rules lint --no-default PATHS`, in this process: (exit status, stdout, stderr)."""
    from click.testing import CliRunner

    from agent_assist.cli import main

    no_config = {"AGENT_ASSIST_CONFIG": "/nonexistent/agent-assist.toml"}
    with CliRunner().isolation(env=no_config) as (out, err, _):
        try:
            main(["rules", "lint", "--no-default", *paths])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")


def pack_case(rng: random.Random, work: Path) -> tuple[str, str]:
    """(outcome, detail) of one mutated pack."""
    special = rng.random()
    sentinel = work / "sentinel.toml"
    sentinel.write_text(SENTINEL, encoding="utf-8")
    path = work / "mutant.toml"
    if special < 0.004:  # what is not a file
        kind = rng.choice(["fifo", "directory", "device", "not-utf8"])
        path = work / f"{kind}.toml"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            path.mkdir()
        elif kind == "device":
            path = Path("/dev/null")
        else:
            path.write_bytes(b'[[rule]]\nid = "\xff\xfe"\n')
        text, verdict = "", "invalid"
    else:
        kind, text, verdict = mutate_pack(rng, DEFAULT_PACK.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, out, err = _lint([str(path), str(sentinel)])
    if code not in (0, 1):
        return ("internal" if code == 70 else "aborted"), f"{kind}: exit {code}: {err.strip()[:300]}"
    if "sentinel_field" not in out:
        return "aborted", f"{kind}: the sentinel's problem is missing: {err.strip()[:300]}"
    mutant_errors = [line for line in out.splitlines() if ": error: " in line and "sentinel" not in line]
    if mutant_errors:
        return "ok", kind
    if verdict == "invalid":
        return "invalid-passed", f"{kind}: {text[:0]}lints clean"
    outcome = _run_pack(path)
    return ("ok", kind) if outcome == "ok" else ("run-crash", f"{kind}: {outcome}")


# -- transcripts -----------------------------------------------------------------------------------

def _text(rng: random.Random, letters: int = 12) -> str:
    parts = [rng.choice(["hello", "manager", "I", "want", "my", "card", "please", "x" * rng.randrange(1, 30)])
             for _ in range(rng.randrange(1, letters))]
    for _ in range(rng.randrange(0, 4)):
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(NASTY))
    return "a " + " ".join(parts)  # starts with a word: never blank


def transcript_case(rng: random.Random, work: Path) -> tuple[str, str]:
    from agent_assist.errors import AgentAssistError
    from agent_assist.quality.calls import transcript_calls

    calls = [{"call_id": f"c{n}{rng.choice(['', ' ', 'é', '/x'])}",
              "turns": [{"speaker": rng.choice(["customer", "agent", "other"]), "start": i * 2.0,
                         "end": i * 2.0 + 1.5, "text": _text(rng)} for i in range(rng.randrange(1, 5))]}
             for n in range(rng.randrange(1, 4))]
    kind = rng.choices(["valid", "surrogate", "deep", "non-finite", "wrong-type", "huge-word", "huge-line",
                        "fifo", "device"], weights=[40, 8, 8, 8, 16, 4, 1, 1, 1])[0]
    lines = [json.dumps(c, ensure_ascii=rng.random() < 0.5) for c in calls]
    path = work / "calls.jsonl"
    if kind == "surrogate":
        where = rng.choice(['"text": "', '"call_id": "'])
        i = rng.randrange(len(lines))
        lines[i] = lines[i].replace(where, where + rng.choice(["\\ud800", "\\udfff", "x\\udbff"]), 1)
    elif kind == "deep":
        depth = rng.choice([1000, 10000, 100000])
        i = rng.randrange(len(lines))
        lines[i] = rng.choice([lines[i][:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}",
                               '{"call_id": "x", "turns": ' + "[" * depth + "]" * depth + "}",
                               '{"call_id": ' + '{"a": ' * depth + "1" + "}" * depth + ', "turns": []}'])
    elif kind == "non-finite":
        i = rng.randrange(len(lines))
        wrong = rng.choice(["NaN", "Infinity", "-Infinity", "1e309"])
        lines[i] = re.sub(r'"end": [0-9.]+', '"end": ' + wrong, lines[i], count=1)
    elif kind == "wrong-type":
        i = rng.randrange(len(lines))
        call = json.loads(lines[i])
        field, value = rng.choice([("call_id", [1]), ("call_id", {"a": 1}), ("call_id", None),
                                   ("turns", {}), ("turns", "x"), ("turns", [1]), ("text", [1, 2]),
                                   ("text", {"a": 1}), ("text", 42), ("speaker", ["customer"]),
                                   ("start", "soon"), ("start", True), ("end", [1])])
        if field in ("call_id", "turns"):
            call[field] = value
        else:
            call["turns"][0][field] = value
        lines[i] = json.dumps(call)
    elif kind == "huge-word":
        call = json.loads(lines[0])
        call["turns"][0]["text"] = "a" * rng.choice([200_000, 1_000_000])
        lines[0] = json.dumps(call)
    elif kind == "huge-line":
        call = json.loads(lines[0])
        call["turns"] = [{"speaker": "customer", "start": 0, "end": 1, "text": "word " * 2000}] * 2500
        lines[0] = json.dumps(call)  # about 25 MB on one line
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/null")
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        got = [(call_id, events) for call_id, events in transcript_calls(path)]
    except AgentAssistError as exc:
        return ("valid-refused", f"{kind}: {str(exc)[:200]}") if kind == "valid" else ("ok", kind)
    except Exception as exc:
        return "internal", f"{kind}: {type(exc).__name__}: {str(exc)[:200]}"
    if kind != "valid":
        return "invalid-passed", f"{kind}: read without an error"
    want = [(str(c["call_id"]), [t["text"].strip() for t in sorted(c["turns"], key=lambda t: t["end"])])
            for c in calls]
    have = [(call_id, [e.text for e in events if hasattr(e, "text")]) for call_id, events in got]
    return ("ok", kind) if have == want else ("misaligned", f"{kind}: {want!r:.200} read as {have!r:.200}")


# -- tables ----------------------------------------------------------------------------------------

def table_case(rng: random.Random, work: Path) -> tuple[str, str]:
    from agent_assist.errors import AgentAssistError
    from agent_assist.scoring.textfile import read_turns

    kind = rng.choices(["csv", "tsv", "text", "unterminated", "huge-field", "not-utf8", "fifo", "device"],
                       weights=[40, 15, 30, 10, 2, 2, 1, 1])[0]
    rows = [_text(rng) for _ in range(rng.randrange(1, 8))]
    if rng.random() < 0.2:
        rows.insert(rng.randrange(len(rows) + 1), "")
    path = work / ("in.tsv" if kind == "tsv" else "in.txt" if kind == "text" else "in.csv")
    expect_error = kind not in ("csv", "tsv", "text")
    if kind in ("csv", "tsv", "unterminated", "huge-field"):
        if kind == "unterminated":
            rows = [r.replace('"', "") for r in rows]
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter="\t" if kind == "tsv" else ",",
                            lineterminator=rng.choice(["\n", "\r\n"]))
        writer.writerow(["text", "label"])
        for row in rows:
            writer.writerow([row, "x"])
        body = out.getvalue()
        if kind == "unterminated":
            at = body.index("\n") + 1
            at = rng.choice([m.end() for m in re.finditer(r"\n", body[:-1])] or [at])
            body = body[:at] + '"' + body[at:]
        elif kind == "huge-field":
            body += "a" * rng.choice([200_000, 17_000_000]) + ",x\n"
        path.write_text(body, encoding="utf-8")
    elif kind == "text":
        rows = [r.replace("\r", "").replace("\n", "") for r in rows]
        path.write_text("".join(r + rng.choice(["\n", "\r\n"]) for r in rows), encoding="utf-8")
    elif kind == "not-utf8":
        path.write_bytes(b"text\nfine\n\xff\xfe\xfd broken\n")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path = Path("/dev/null")
    try:
        turns = read_turns(path)
    except AgentAssistError as exc:
        return ("ok", kind) if expect_error else ("valid-refused", f"{kind}: {str(exc)[:200]}")
    except Exception as exc:
        return "internal", f"{kind}: {type(exc).__name__}: {str(exc)[:200]}"
    if expect_error:
        what = "misaligned" if kind == "unterminated" else "invalid-passed"
        return what, f"{kind}: read as {len(turns)} rows without an error"
    have = [t.text for t in turns]
    return ("ok", kind) if have == rows else ("misaligned", f"{kind}: {rows!r:.200} read as {have!r:.200}")


# -- running ---------------------------------------------------------------------------------------

FAMILIES: dict[str, Callable[[random.Random, Path], tuple[str, str]]] = {
    "packs": pack_case, "transcripts": transcript_case, "tables": table_case}


def _worker(conn: Any, seed: int) -> None:
    sys.setrecursionlimit(1000)
    while True:
        job = conn.recv()
        if job is None:
            return
        family, index = job
        rng = random.Random(f"{seed}:{family}:{index}")
        with tempfile.TemporaryDirectory(prefix="fuzz-") as work:
            try:
                outcome, detail = FAMILIES[family](rng, Path(work))
            except Exception as exc:
                outcome, detail = "internal", f"harness: {type(exc).__name__}: {exc!s:.200}"
        conn.send((outcome, detail))


class Pool:
    """One worker process at a time; a case past the timeout is a hang, and the worker is replaced."""

    def __init__(self, seed: int, timeout: float) -> None:
        self.seed, self.timeout = seed, timeout
        self.ctx = mp.get_context("fork")
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.seed), daemon=True)
        self.proc.start()

    def run(self, family: str, index: int) -> tuple[str, str, float]:
        began = time.monotonic()
        self.conn.send((family, index))
        if self.conn.poll(self.timeout):
            try:
                outcome, detail = self.conn.recv()
                return outcome, detail, time.monotonic() - began
            except EOFError:
                outcome, detail = "internal", "the worker died (out of memory?)"
        else:
            outcome, detail = "hang", f"not done in {self.timeout:g} s"
        self.proc.kill()
        self.proc.join()
        self._start()
        return outcome, detail, time.monotonic() - began

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--transcripts", type=int, default=2_500)
    parser.add_argument("--tables", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a case may take before it "
                        "counts as a hang")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fuzz.json")
    parser.add_argument("--examples", type=int, default=3, help="failures to show per family and outcome")
    args = parser.parse_args(argv)
    pool = Pool(args.seed, args.timeout)
    report: dict[str, Any] = {"seed": args.seed, "timeout_s": args.timeout, "families": {}}
    began = time.monotonic()
    try:
        for family, n in (("packs", args.packs), ("transcripts", args.transcripts), ("tables", args.tables)):
            counts: Counter[str] = Counter()
            examples: dict[str, list[str]] = {}
            slowest = 0.0
            for index in range(n):
                outcome, detail, took = pool.run(family, index)
                counts[outcome] += 1
                slowest = max(slowest, took)
                if outcome != "ok" and len(examples.setdefault(outcome, [])) < args.examples:
                    examples[outcome].append(f"#{index} {detail}")
            report["families"][family] = {"cases": n, **{o: counts[o] for o in OUTCOMES},
                                          "slowest_s": round(slowest, 2), "examples": examples}
            line = ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if o != "ok")
            print(f"{family}: {n} cases: {line}; slowest {slowest:.2f} s", flush=True)
            for outcome, shown in examples.items():
                for text in shown:
                    print(f"  {outcome}: {text!r:.400}")
    finally:
        pool.close()
    total = Counter[str]()
    for fam in report["families"].values():
        total.update({o: fam[o] for o in OUTCOMES})
    report["total"] = dict(total)
    report["seconds"] = round(time.monotonic() - began, 1)
    bad = sum(total[o] for o in OUTCOMES if o not in ("ok", "valid-refused"))
    print(f"total: {sum(total.values())} cases in {report['seconds']:.0f} s: "
          + ", ".join(f"{o} {total[o]}" for o in OUTCOMES if o != "ok"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

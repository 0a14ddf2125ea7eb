"""Write the fuzz corpus: the nastiest rule packs, transcripts and tables the fuzzers found, as
small files that tests/fuzz/test_fuzz_corpus.py replays on every run.

    .venv/bin/python tests/data/fuzz/make_corpus.py

Names say what a file must do: `bad-*` is refused with a clean error (a pack: at least one lint
error), `ok-*` is read (a pack: lints clean, loads every rule and runs). An `ok-*` transcript or
table has a `<name>.expected.json` beside it: the call ids and turn texts, or the row texts, that
must come back, one for one. The cases too big for a small file (a 400 KB condition, a 1M-character
word, a 17 MB field) and those that are not files (a FIFO, a device) are built by the test itself.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

HERE = Path(__file__).parent

RULE = '''id = "{id}"
when = "distress >= 0.5"
prompt = "Acknowledge what they shared."
principle = "safety"
source = "fuzz corpus"
'''


def rule(rule_id: str, **fields: str) -> str:
    lines = RULE.format(id=rule_id).splitlines()
    for key, value in fields.items():
        lines = [line for line in lines if not line.startswith(f"{key} = ")] + [f"{key} = {value}"]
    return "\n".join(lines) + "\n"


PACKS = {
    # rules never loaded while lint passed
    "bad-inline-rules": 'rule = [{ id = "a", when = "distress >= 0.5", prompt = "p", principle = "safety", '
                        'source = "s" }]\n',
    "bad-rule-as-one-table": "[rule]\n" + rule("a"),
    "bad-misspelt-table": "[[rules]]\n" + rule("a"),
    "bad-sub-table": "[[rule]]\n" + rule("a") + '[[rule.flag]]\nkind = "crisis"\nseverity = "high"\n',
    "bad-pack-not-a-table": "pack = 1\n[[rule]]\n" + rule("a"),
    # internal errors: recursion, huge integers
    "bad-deep-array": "[[rule]]\n" + rule("a", when="[" * 3000 + "]" * 3000),
    "bad-deep-inline-table": "[[rule]]\n" + rule("a", flag="{ a = " * 800 + "1" + " }" * 800),
    "bad-deep-parentheses": "[[rule]]\n" + rule("a", when=f'"{"(" * 300}distress >= 0.5{")" * 300}"'),
    "bad-many-nots": "[[rule]]\n" + rule("a", when='"' + "not " * 2000 + 'distress >= 0.5"'),
    "bad-huge-integer": "[[rule]]\n" + rule("a", priority="9" * 5000),
    "bad-huge-threshold": "[[rule]]\n" + rule("a", when='"call_s >= 1' + "0" * 400 + '"'),
    # lint-clean packs that crashed the engine: values of the wrong type
    "bad-datetime-prompt": "[[rule]]\n" + rule("a", prompt="1979-05-27T07:32:00Z"),
    "bad-date-id": "[[rule]]\n" + rule("a", id="1979-05-27"),
    "bad-table-source": "[[rule]]\n" + rule("a", source="{ a = 1 }"),
    "bad-list-principle": "[[rule]]\n" + rule("a", principle='["safety"]'),
    "bad-list-when": "[[rule]]\n" + rule("a", when='["distress >= 0.5"]'),
    "bad-flag-extra-key": "[[rule]]\n" + rule("a", flag='{ kind = "distress", severity = "low", x = 1 }'),
    "bad-flag-table-kind": "[[rule]]\n" + rule("a", flag='{ kind = {}, severity = "low" }'),
    "bad-answers-nested": "[[rule]]\n" + rule("a", answers='[["distress"]]'),
    "bad-nan-cooldown": "[[rule]]\n" + rule("a", cooldown_s="nan"),
    "bad-string-priority": "[[rule]]\n" + rule("a", priority='"60"'),
    "bad-enabled-string": "[[rule]]\n" + rule("a", enabled='"yes"'),
    "bad-on-list": "[[rule]]\n" + rule("a", on='["partial"]'),
    "bad-escape-in-prompt": "[[rule]]\n" + rule("a", prompt='"\\u001b[2J cleared"'),
    "bad-surrogate-escape": "[[rule]]\n" + rule("a", prompt='"\\ud800"'),
    "bad-override-without-id": '[[override]]\nprompt = "x"\n',
    "bad-override-id-table": "[[override]]\nid = { a = 1 }\n",
    "bad-condition-soup": "[[rule]]\n" + rule("a", when='"distress >= 0.5 or or ( crisis"'),
    "bad-unknown-top-level": 'x = 1\n[[rule]]\n' + rule("a"),
    # sound, written oddly: every rule loads
    "ok-quoted-headers": '[["rule"]]\n' + rule("a") + "\n[[ 'rule' ]]  # quoted\n" + rule("b")
                         + '\n[["r\\u0075le"]]\n' + rule("c"),
    "ok-header-inside-a-string": "[[rule]]\n" + rule("a", example='"""\n[[rule]]\nid = "not-a-rule"\n"""')
                                 + "\n[[rule]]\n" + rule("b"),
    "ok-array-across-lines": "[[rule]]\n" + rule("a", answers='[\n  "distress",\n  # [[rule]]\n  "grief",\n]')
                             + "\n[[rule]]\n" + rule("b"),
    "ok-bidi-and-separators": "[[rule]]\n" + rule("a", prompt='"Say \\u202eit\\u202c back \\u2028 gently"'),
}


def calls_line(call: object, ascii_only: bool = True) -> str:
    return json.dumps(call, ensure_ascii=ascii_only) + "\n"


def a_call(text: str = "I want to speak to a manager", call_id: str = "c1") -> dict:
    return {"call_id": call_id, "turns": [{"speaker": "customer", "start": 0.5, "end": 2.0, "text": text}]}


TRANSCRIPTS: dict[str, str | bytes] = {
    "bad-lone-surrogate": calls_line(a_call()).replace("manager", "manager\\ud800"),
    "bad-surrogate-call-id": calls_line(a_call()).replace('"c1"', '"c1\\udfff"'),
    "bad-deep-nesting": '{"call_id": "x", "turns": ' + "[" * 3000 + "]" * 3000 + "}\n",
    "bad-deep-object": '{"call_id": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + ', "turns": []}\n',
    "bad-nan-time": calls_line(a_call()).replace('"start": 0.5', '"start": NaN'),
    "bad-infinite-time": calls_line(a_call()).replace('"end": 2.0', '"end": Infinity'),
    "bad-overflowing-time": calls_line(a_call()).replace('"end": 2.0', '"end": 1e309'),
    "bad-bool-time": calls_line(a_call()).replace('"start": 0.5', '"start": true'),
    "bad-text-is-list": calls_line({**a_call(), "turns": [{"speaker": "customer", "start": 0, "end": 1,
                                                          "text": ["a", "b"]}]}),
    "bad-text-is-number": calls_line({**a_call(), "turns": [{"speaker": "customer", "start": 0, "end": 1,
                                                            "text": 42}]}),
    "bad-call-id-object": calls_line({**a_call(), "call_id": {"a": 1}}),
    "bad-turns-object": calls_line({**a_call(), "turns": {"a": 1}}),
    "bad-speaker-list": calls_line({**a_call(), "turns": [{"speaker": ["customer"], "start": 0, "end": 1,
                                                          "text": "hi"}]}),
    "bad-not-an-object": "[1, 2, 3]\n",
    "bad-not-utf8": calls_line(a_call()).encode() + b'{"call_id": "\xff\xfe"}\n',
    "bad-second-line": calls_line(a_call()) + "{not json\n",
    "ok-separators": "".join(calls_line(a_call(t, f"c{i}"), ascii_only=False) for i, t in enumerate(
        ["line\u2028separator", "next\x85line", "form\x0cfeed", "file\x1cseparator", "para\u2029graph",
         "escape \x1b[2J and \x1b]0;title\x07", "bidi \u202edesrever\u202c", "quote \" and \\ back"])),
    "ok-crlf": calls_line(a_call("first")).replace("\n", "\r\n") + calls_line(a_call("second", "c2")),
}


def table(rows: list[list[str]], terminator: str = "\n") -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=terminator).writerows(rows)
    return out.getvalue()


TABLES: dict[str, str | bytes] = {
    "bad-unterminated-quote.csv": 'text\nfirst\n"second, never closed\nthird\nfourth\n',
    "bad-quote-then-text.csv": 'text\n"quoted"then more\nnext\n',
    "bad-not-utf8.csv": b"text\nfine\n\xff\xfe broken\n",
    "bad-missing-column.csv": "id,text\n1,fine\n2\n",
    "ok-separators.txt": "".join(t + "\n" for t in ["one\u2028two", "three\x85four", "five\x0csix",
                                                     "seven\x1ceight", "nine\u2029ten", "lone\rreturn",
                                                     "", "eleven"]),
    "ok-separators.csv": table([["text", "label"], ["one\u2028two", "a"], ["three\x85four", "b"],
                                ["five\x0csix", "c"], ["seven\x1ceight", "d"], ["quoted\nbreak", "e"],
                                ["quoted \"quote\"", "f"], ["lone\rreturn", "g"]]),
    "ok-crlf.csv": table([["text"], ["first"], ["second\r\nline"], [""], ["third"]], "\r\n"),
    "ok-bom.csv": "\ufefftext\nfirst\nsecond\n",
}


def main() -> None:
    for folder, cases in (("packs", PACKS), ("transcripts", TRANSCRIPTS), ("tables", TABLES)):
        (HERE / folder).mkdir(exist_ok=True)
        for name, content in cases.items():
            suffix = {"packs": ".toml", "transcripts": ".jsonl", "tables": ""}[folder]
            path = HERE / folder / (name + suffix)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    ok_transcripts = {"ok-separators": [[f"c{i}", [t]] for i, t in enumerate(
        ["line\u2028separator", "next\x85line", "form\x0cfeed", "file\x1cseparator", "para\u2029graph",
         "escape \x1b[2J and \x1b]0;title\x07", "bidi \u202edesrever\u202c", "quote \" and \\ back"])],
                      "ok-crlf": [["c1", ["first"]], ["c2", ["second"]]]}
    for name, expected in ok_transcripts.items():
        (HERE / "transcripts" / f"{name}.jsonl.expected.json").write_text(json.dumps(expected) + "\n")
    ok_tables = {"ok-separators.txt": ["one\u2028two", "three\x85four", "five\x0csix", "seven\x1ceight",
                                       "nine\u2029ten", "lone\rreturn", "", "eleven"],
                 "ok-separators.csv": ["one\u2028two", "three\x85four", "five\x0csix", "seven\x1ceight",
                                       "quoted\nbreak", "quoted \"quote\"", "lone\rreturn"],
                 "ok-crlf.csv": ["first", "second\r\nline", "", "third"],
                 "ok-bom.csv": ["first", "second"]}
    for name, expected in ok_tables.items():
        (HERE / "tables" / f"{name}.expected.json").write_text(json.dumps(expected) + "\n")


if __name__ == "__main__":
    main()

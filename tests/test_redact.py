"""Redaction on realistic transcript lines, written the ways speech-to-text writes numbers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent_assist.events import PUBLIC_EVENT_TYPES, CallStart, Prompt
from agent_assist.redact import CallRedactor, luhn, medicare, redact, redact_words, tfn

TODAY = date(2026, 11, 23)

# (what the customer said, as speech-to-text wrote it) -> (what may be written to disk)
CASES = [
    # payment cards: Luhn-checked, typed, grouped, spoken, doubled, in pieces
    ("My card number is 4111 1111 1111 1111.", "My card number is [card]."),
    ("It's 4111-1111-1111-1111, expiry 12 27", "It's [card], expiry 12 27"),
    ("yeah it's 5555555555554444", "yeah it's [card]"),
    ("four one one one, one one one one, one one one one, one one one one", "[card]"),
    ("so it's four triple one, one one one one, one one one one, one one one one", "so it's [card]"),
    ("37828224631 0005 is the amex", "[card] is the amex"),
    ("Visa ending, 4539 1488 0343 6467 thanks", "Visa ending, [card] thanks"),
    ("the security code is 123", "the security code is [card]"),
    ("reference number 4111 1111 1111 1112", "reference number [account]"),  # fails Luhn: still a number
    ("I paid 1,250 dollars on the 3rd", "I paid 1,250 dollars on the 3rd"),
    # phone numbers
    ("you can call me on 0412 345 678", "you can call me on [phone]"),
    ("my mobile's oh four one two, three four five, six seven eight", "my mobile's [phone]"),
    ("It's +61 412 345 678.", "It's [phone]."),
    ("the landline is (02) 9876 5432", "the landline is [phone]"),
    ("zero two nine eight seven six five four three two", "[phone]"),
    ("phone me at 9876 5432 after five", "phone me at [phone] after five"),
    ("I've called 3 times this week", "I've called 3 times this week"),
    # email
    ("it's jane.citizen@example.com.au", "it's [email]"),
    ("jane dot citizen at gmail dot com", "[email]"),
    ("J underscore smith 84 at outlook dot com", "[email]"),
    ("I'm at home at the moment", "I'm at home at the moment"),
    # dates of birth
    ("My date of birth is the 12th of March 1985", "My date of birth is [dob]"),
    ("I was born on March 12, 1985", "I was born on [dob]"),
    ("twelfth of march nineteen eighty five", "[dob]"),
    ("DOB 12/03/1985", "DOB [dob]"),
    ("it's 03/04/92", "it's [dob]"),
    ("I called on the 3rd of November 2026", "I called on the 3rd of November 2026"),
    ("my birthday's the 4th of July", "my birthday's [dob]"),
    # Australian identifiers
    ("my tax file number is 123 456 782", "my tax file number is [tfn]"),
    ("TFN 87654321", "TFN [tfn]"),
    ("Medicare number 2123 45670 1", "Medicare number [medicare]"),
    ("it's 2123456701", "it's [medicare]"),
    ("BSB 062-000 account 1234 5678", "BSB [bsb] account [account]"),
    ("the BSB is zero six two zero zero zero", "the BSB is [bsb]"),
    ("account number 12345678", "account number [account]"),
    ("my account was charged 250 dollars", "my account was charged 250 dollars"),
    # street addresses
    ("I live at 12a Wattle Street, Fitzroy VIC 3065", "I live at [address]"),
    ("Unit 4/27 Smith Rd, Parramatta NSW 2150 is the address", "[address] is the address"),
    ("it's forty two Wallaby Way, Sydney", "it's [address]"),
    ("Unit 5 31. Lark Street.", "[address]"),  # a partial transcript's full stop after the number
    ("I was on the road for 3 hours", "I was on the road for 3 hours"),
    # several in one line, and hostile text untouched
    ("card 4111111111111111 and mobile 0412345678", "card [card] and mobile [phone]"),
    ("<script>alert(1)</script> 0412 345 678", "<script>alert(1)</script> [phone]"),
    ("", ""),
]


@pytest.mark.parametrize(("said", "written"), CASES, ids=[c[0][:40] or "empty" for c in CASES])
def test_redaction_cases(said: str, written: str) -> None:
    assert redact(said, today=TODAY).text == written


def test_context_carries_from_the_agents_question_to_the_customers_answer() -> None:
    call = CallRedactor(today=TODAY)
    assert call.redact("Can I take your date of birth?", t=10.0).text == "Can I take your date of birth?"
    assert call.redact("the 4th of July", t=13.0).text == "[dob]"
    call.redact("Could you tell me the address the power is connected to?", t=15.0)
    assert call.redact("42 -mile street, Ringwood.", t=17.0).text == "[address]."  # as whisper heard it
    assert redact("42 -mile street, Ringwood.").text == "[address]."  # not asked: a house number is enough
    call.redact("And the card number?", t=20.0)
    assert call.redact("4111 1111", t=24.0).text == "[card]"  # read in two turns
    assert call.redact("1111 1111", t=27.0).text == "[card]"
    call.redact("And the security code on the back?", t=30.0)
    assert call.redact("737", t=33.0).text == "[card]"
    assert call.redact("It was 3 or 4 weeks ago", t=70.0).text == "It was 3 or 4 weeks ago"
    assert call.redact("737", t=75.0).text == "737"  # the card talk is long past
    assert call.redact("12345678", t=80.0).text == "[phone]"  # eight digits need no context


def test_words_follow_the_text() -> None:
    words = ["call", "me", "on", "0412", "345", "678,", "thanks"]
    result = redact(" ".join(words), today=TODAY)
    assert result.text == "call me on [phone], thanks"
    assert redact_words(words, result) == ["call", "me", "on", "[phone]", "[phone]", "[phone]", "thanks"]


def test_checksums() -> None:
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert tfn("123456782") and not tfn("123456789")
    assert medicare("2123456701") and not medicare("2123456711")


#: given names in lower case after a weak cue, as Moonshine (and at times Whisper) writes them;
#: names that are also words ("grace", "jack", "mark") only before a pause or the end
LOWER_CASE_NAMES = [
    ("transport and licensing, this is grace.", "transport and licensing, this is [name]."),
    ("Hey, grace", "Hey, [name]"),
    ("hi, grace. i've moved house", "hi, [name]. i've moved house"),
    ("tilly", "tilly"),  # a name alone says nothing of whose it is
    ("silver gum home care this is tilly", "silver gum home care this is [name]"),
    ("hi tilly it's about my dad", "hi [name] it's about my dad"),
    ("thanks, jack.", "thanks, [name]."),
    ("this is jack speaking", "this is [name] speaking"),
    ("I'm grace", "I'm [name]"),
    ("okay, grace, let me check", "okay, [name], let me check"),
    ("it's tilly", "it's [name]"),
    ("this is grace miller.", "this is [name]."),
    ("you spoke to lachlan last week", "you spoke to [name] last week"),
    ("this is mark.", "this is [name]."),
]
ORDINARY_PHRASES = [
    "this is great", "I'm will-ing to pay", "hi there", "the grace period ends friday", "I'm sure",
    "this is it", "hey mate", "this is mark my words", "this is grace period stuff", "hi jack how are you",
    "it's ruby red", "it's summer", "thanks love", "thank you darl", "No, princess, it works",
    "hello this is harper valley national bank", "i'm hoping you can help", "thanks heaps",
    "okay, great, that's sorted", "yeah, sure.",
]


@pytest.mark.parametrize(("said", "written"), LOWER_CASE_NAMES)
def test_a_lower_case_given_name_after_a_weak_cue_is_taken(said: str, written: str) -> None:
    assert redact(said).text == written


@pytest.mark.parametrize("said", ORDINARY_PHRASES)
def test_ordinary_words_after_a_weak_cue_stay(said: str) -> None:
    assert redact(said).text == said


def test_the_given_names_are_the_built_list() -> None:
    """given_names.txt (data/given_names/build.py) holds names, not the everyday words among them."""
    from agent_assist.redaction.reading import lexicon
    lex = lexicon()
    assert len(lex.given_names) > 10_000 and {"tilly", "liam", "isla", "niamh", "rohan"} <= lex.given_names
    assert {"grace", "jack", "mark", "rose"} <= lex.given_name_words
    assert not {"will", "hope", "love", "honey", "bill", "summer", "nan", "ute", "unknown"} \
        & (lex.given_names | lex.given_name_words)


def test_long_hostile_text_is_quick() -> None:
    import time

    text = ("1 " * 5000) + ("A " * 5000) + "x@" * 2000
    started = time.perf_counter()
    redact(text, today=TODAY)
    assert time.perf_counter() - started < 5.0


# -- every field that carries words is redacted before anything is written ---------------------

CARD = "4111 1111 1111 1111"
#: Text fields written by the product or a rule author, never by a person on the call: kept as they
#: are. A new text field must be named here or in its event's `spoken`, so none is forgotten.
AUTHORED = {
    "type", "call_id", "utterance_id", "model", "started_at", "version", "rule", "principle", "text",
    "example", "support_line", "kind", "severity", "reason", "raised_by", "rating", "by", "device",
    "state", "message", "what", "error", "speaker", "channels", "parties", "signals",
    "situation",  # a crisis rule's own words from its pack
    "author", "agent",  # a supervisor's and an agent's account names (a note's words are spoken)
    "conversation_id", "participant_id",  # the contact-centre platform's ids of a served call
}


def _instance(cls: type) -> Any:
    """An event of type `cls` with a card number in every field it declares spoken."""
    import dataclasses
    import typing

    from agent_assist import events

    hints = typing.get_type_hints(cls, vars(events))
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.name in cls.spoken:
            if f.name == "words":
                values[f.name] = tuple(events.Word(w, 1.0 + i, 1.5 + i, 0.9)
                                       for i, w in enumerate(CARD.split()))
            elif f.name == "why":
                values[f.name] = {"utterance_id": "u1", "text": f"card {CARD}", "values": {"escalation": 0.9},
                                  "said": {"customer": f"manager now, my card is {CARD}", "agent": CARD}}
            else:
                values[f.name] = f"my card is {CARD}"
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        elif hint is float:
            values[f.name] = 1.0
        elif hint is bool:
            values[f.name] = False
        elif f.name == "speaker":
            values[f.name] = events.Speaker.CUSTOMER
        elif f.name == "reason" and cls is events.CallEnd:
            values[f.name] = events.EndReason.ENDED
        elif f.name == "rating":
            values[f.name] = "helpful"
        elif hint is int:
            values[f.name] = 1
        else:
            values[f.name] = {} if "dict" in str(hint) else () if "tuple" in str(hint) else "x"
    if cls is events.Utterance:
        values["text"] = CARD
    return cls(**values)


@pytest.mark.parametrize("cls", sorted(PUBLIC_EVENT_TYPES.values(), key=lambda c: c.type),
                         ids=lambda c: c.type)
def test_every_spoken_field_of_every_event_is_redacted(cls: type) -> None:
    import dataclasses
    import typing

    from agent_assist import events

    hints = typing.get_type_hints(cls, vars(events))
    for f in dataclasses.fields(cls):
        if f.name in cls.spoken or f.name in AUTHORED:
            continue
        assert "str" not in str(hints[f.name]) and "dict" not in str(hints[f.name]), (
            f"{cls.type}.{f.name} holds text: name it in {cls.__name__}.spoken or in AUTHORED")
    event = _instance(cls)
    written = CallRedactor(today=TODAY).event(event).to_json()
    digits = "".join(c for c in written if c.isdigit())
    assert "4111" not in written and "41111111" not in digits, written
    for name in cls.spoken:  # what was redacted still says what it was
        if name != "source":
            assert "[card]" in json.dumps(json.loads(written)[name]), written


def test_a_prompt_that_quotes_a_card_number_is_written_without_it(tmp_path: Path) -> None:
    """The defect first found: `why.said` carried the raw utterance into the event log."""
    from agent_assist.sinks import JsonlEventLog

    log = tmp_path / "events.jsonl"
    sink = JsonlEventLog(str(log))
    sink.emit(CallStart(t=0.0, call_id="c1", source="x.wav", channels={}, started_at="", model=""))
    said = f"I want a manager and my card is {CARD}"
    sink.emit(Prompt(t=3.0, call_id="c1", rule="manager-request", principle="choice", text="Respect it.",
                     example="", priority=58, signals=(), why={"utterance_id": "u1", "text": said,
                                                             "values": {}, "said": {"customer": said}}))
    sink.close()
    text = log.read_text(encoding="utf-8")
    assert "4111" not in text and text.count("[card]") == 2


def test_an_event_log_is_readable_by_its_owner_alone(tmp_path):
    """It holds redacted transcripts, which are still about a person: 0600 like the store, under
    the usual umask, and an existing looser file is tightened."""
    import os
    import stat

    from agent_assist.sinks import JsonlEventLog

    old = os.umask(0o022)
    try:
        fresh, loose = tmp_path / "fresh.jsonl", tmp_path / "loose.jsonl"
        loose.write_text("", encoding="utf-8")
        loose.chmod(0o666)
        for path in (fresh, loose):
            JsonlEventLog(str(path)).close()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)

"""HTTP Message Signatures on the AudioHook handshake: the protocol documentation's own example
(the vector the vendored reference verifier is tested with), and every way a request is refused."""

from __future__ import annotations

import base64

import pytest

from agent_assist.server.signature import (
    InnerList,
    Item,
    SignatureError,
    Token,
    parse_dictionary,
    sign,
    verify,
)

API_KEY = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh"
SECRET = base64.b64decode("TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
SECRETS = {API_KEY: SECRET}
# AudioHook documentation, example 1 (app/audiohook/test/httpsignature/signature-verifier.test.ts)
EXAMPLE = {
    "host": "audiohook.example.com",
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": API_KEY,
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" '
                       '"audiohook-session-id" "audiohook-correlation-id" "x-api-key");'
                       'keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";'
                       'alg="hmac-sha256";created=1641013200;expires=3282026430',
}
TARGET = "/api/v1/voicebiometrics/ws"
THEN = 1641013201.0  # a second after the example was signed


def lookup(headers: dict[str, str]):
    return lambda name: [headers[name]] if name in headers else []


def test_the_protocol_documentations_example_verifies():
    assert verify(TARGET, lookup(EXAMPLE), SECRETS, now=lambda: THEN) == API_KEY


@pytest.mark.parametrize("change, says", [
    ({"audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c1"}, "unknown API key or bad signature"),
    ({"host": "evil.example.com"}, "unknown API key or bad signature"),
    ({"signature": "sig1=:AAAAyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"},
     "unknown API key or bad signature"),
    ({"x-api-key": "c29tZW9uZSBlbHNl"}, "keyid is not the X-API-KEY"),
    ({"signature": "sig2=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:"}, "no signature labelled sig1"),
    ({"signature-input": 'sig1=("@request-target" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
                         'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";created=1641013200'}, "does not cover @authority"),
    ({"signature-input": "sig1=(not a list"}, "malformed structured field"),
])
def test_a_changed_request_is_refused(change, says):
    with pytest.raises(SignatureError, match=says):
        verify(TARGET, lookup({**EXAMPLE, **change}), SECRETS, now=lambda: THEN)


def test_another_target_is_refused():
    with pytest.raises(SignatureError, match="bad signature"):
        verify("/api/v1/audiohook/ws", lookup(EXAMPLE), SECRETS, now=lambda: THEN)


def test_an_unknown_key_is_refused_as_a_bad_signature_is():
    with pytest.raises(SignatureError, match="unknown API key or bad signature"):
        verify(TARGET, lookup(EXAMPLE), {"another-key": SECRET}, now=lambda: THEN)


def test_a_stale_or_future_signature_is_refused():
    with pytest.raises(SignatureError, match="expired"):
        verify(TARGET, lookup(EXAMPLE), SECRETS, now=lambda: THEN + 60)
    with pytest.raises(SignatureError, match="in the future"):
        verify(TARGET, lookup(EXAMPLE), SECRETS, now=lambda: THEN - 60)


def test_unsigned_requests_only_for_a_key_with_an_empty_secret():
    unsigned = {k: v for k, v in EXAMPLE.items() if not k.startswith("signature")}
    with pytest.raises(SignatureError, match="not signed"):
        verify(TARGET, lookup(unsigned), SECRETS)
    assert verify(TARGET, lookup(unsigned), {API_KEY: b""}) == API_KEY
    with pytest.raises(SignatureError, match="no X-API-KEY"):
        verify(TARGET, lookup({"host": "x"}), SECRETS)


def test_what_sign_makes_verifies_and_a_short_nonce_does_not():
    headers = {k: EXAMPLE[k] for k in ("host", "audiohook-organization-id", "audiohook-session-id",
                                       "audiohook-correlation-id", "x-api-key")}
    signed = {**headers, **sign("/api/v1/audiohook/ws?x=1", headers, API_KEY, SECRET)}
    assert verify("/api/v1/audiohook/ws?x=1", lookup(signed), SECRETS) == API_KEY
    short = {**headers, **sign("/ws", headers, API_KEY, SECRET, nonce="short")}
    with pytest.raises(SignatureError, match="nonce"):
        verify("/ws", lookup(short), SECRETS)


def test_structured_field_dictionaries_parse_as_rfc_8941_says():
    parsed = parse_dictionary('a=("x" tok);p=1;q=?0, b=:AAE=:, c, d=-1.5;k="v\\"w"')
    assert parsed["a"] == InnerList([Item("x", []), Item(Token("tok"), [])], [("p", 1), ("q", False)])
    assert parsed["b"] == Item(b"\x00\x01", [])
    assert parsed["c"] == Item(True, [])
    assert parsed["d"] == Item(-1.5, [("k", 'v"w')])
    for bad in ('a=("x"', "a=:@@:", "A=1", "a=1,", 'a="\x01"'):
        with pytest.raises(SignatureError):
            parse_dictionary(bad)

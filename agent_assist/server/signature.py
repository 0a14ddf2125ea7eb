"""HTTP Message Signatures on the AudioHook handshake, verified as the protocol specifies.

The platform signs the GET that opens the WebSocket (draft-ietf-httpbis-message-signatures, HMAC-
SHA256 with the client secret, base64-decoded, as the key). The signature base is rebuilt here from
the parsed `Signature-Input`, exactly as the vendored reference server does
(`app/audiohook/src/httpsignature/signature-verifier.ts`, `app/src/authenticator.ts`):

```
"@request-target": /api/v1/audiohook/ws
"@authority": audiohook.example.com
"audiohook-organization-id": d7934305-0972-4844-938e-9060eef73d05
"audiohook-session-id": e160e428-53e2-487c-977d-96989bf5c99d
"audiohook-correlation-id": 30b0e395-84d3-4570-ac13-9a62d8f514c0
"x-api-key": SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh
"@signature-params": ("@request-target" "@authority" …);keyid="…";nonce="…";alg="hmac-sha256";
                     created=…;expires=…   (one line)
```

The signature must cover those six components, name the request's API key as `keyid`, carry a
nonce of at least 22 characters, and be fresh (created at most 10 s ago, not in the future, not
expired; 3 s of clock skew allowed). An unknown key is checked against a random key, so it takes as
long as a known one and fails the same way. A key configured with an empty secret may connect
unsigned (as the protocol allows).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_CLOCK_SKEW_S = 3
MAX_SIGNATURE_AGE_S = 10
MIN_NONCE = 22
REQUIRED = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
            "audiohook-correlation-id", "x-api-key")


class SignatureError(Exception):
    """Why a request is refused (401), in one line."""


# -- RFC 8941 structured fields: what Signature and Signature-Input use ------------------------------


@dataclass(frozen=True)
class Token:
    value: str


BareItem = int | float | str | bytes | bool | Token
Params = list[tuple[str, BareItem]]


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Params


@dataclass(frozen=True)
class InnerList:
    items: list[Item]
    params: Params


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?\d{1,15}(\.\d{1,3})?")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def fail(self, what: str) -> SignatureError:
        return SignatureError(f"malformed structured field ({what} at character {self.i})")

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def spaces(self, ows: bool = False) -> None:
        while self.peek() == " " or (ows and self.peek() == "\t"):
            self.i += 1

    def key(self) -> str:
        match = _KEY.match(self.text, self.i)
        if match is None:
            raise self.fail("a key")
        self.i = match.end()
        return match.group()

    def bare(self) -> BareItem:
        c = self.peek()
        if c == '"':
            out, self.i = [], self.i + 1
            while True:
                c = self.peek()
                if not c:
                    raise self.fail("an unterminated string")
                self.i += 1
                if c == "\\":
                    nxt = self.peek()
                    if nxt not in ('"', "\\"):
                        raise self.fail("a bad escape")
                    out.append(nxt)
                    self.i += 1
                elif c == '"':
                    return "".join(out)
                elif not " " <= c <= "~":
                    raise self.fail("a character outside a string's")
                else:
                    out.append(c)
        if c == ":":
            end = self.text.find(":", self.i + 1)
            if end < 0:
                raise self.fail("an unterminated byte sequence")
            chunk = self.text[self.i + 1:end]
            if not re.fullmatch(r"[A-Za-z0-9+/=]*", chunk):
                raise self.fail("a bad byte sequence")
            self.i = end + 1
            try:
                return base64.b64decode(chunk, validate=True)
            except ValueError:
                raise self.fail("a bad byte sequence") from None
        if c == "?":
            value = self.text[self.i + 1:self.i + 2]
            if value not in ("0", "1"):
                raise self.fail("a bad boolean")
            self.i += 2
            return value == "1"
        match = _NUMBER.match(self.text, self.i)
        if match is not None and (c == "-" or c.isdigit()):
            self.i = match.end()
            return float(match.group()) if match.group(1) else int(match.group())
        match = _TOKEN.match(self.text, self.i)
        if match is not None:
            self.i = match.end()
            return Token(match.group())
        raise self.fail("an item")

    def params(self) -> Params:
        out: Params = []
        while self.peek() == ";":
            self.i += 1
            self.spaces()
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare()
            out = [(k, v) for k, v in out if k != key] + [(key, value)]
        return out

    def member(self) -> Item | InnerList:
        if self.peek() == "(":
            self.i += 1
            items: list[Item] = []
            while True:
                self.spaces()
                if self.peek() == ")":
                    self.i += 1
                    return InnerList(items, self.params())
                items.append(Item(self.bare(), self.params()))
                if self.peek() not in (" ", ")"):
                    raise self.fail("an inner list")
        return Item(self.bare(), self.params())

    def dictionary(self) -> dict[str, Item | InnerList]:
        out: dict[str, Item | InnerList] = {}
        self.spaces()
        while self.i < len(self.text):
            key = self.key()
            if self.peek() == "=":
                self.i += 1
                out[key] = self.member()
            else:
                out[key] = Item(True, self.params())
            self.spaces(ows=True)
            if self.i >= len(self.text):
                break
            if self.peek() != ",":
                raise self.fail("a dictionary")
            self.i += 1
            self.spaces(ows=True)
            if self.i >= len(self.text):
                raise self.fail("a trailing comma")
        return out


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    return _Parser(text.strip()).dictionary()


def _bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if "." in f"{value:.3f}" else str(value)
    return str(value)


def _params(params: Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_bare(v)}" for k, v in params)


def _item(item: Item) -> str:
    return _bare(item.value) + _params(item.params)


def _inner(inner: InnerList) -> str:
    return "(" + " ".join(_item(i) for i in inner.items) + ")" + _params(inner.params)


# -- verification ------------------------------------------------------------------------------------


def _canonical(values: list[str]) -> str:
    return ", ".join(re.sub(r"[ \t]*\r\n[ \t]+", " ", v.strip()) for v in values)


#: The request as the verifier sees it: its path (with any query) and its header fields, each name
#: lower-case with all its values.
HeaderLookup = Callable[[str], list[str]]


def verify(target: str, headers: HeaderLookup, secrets: Mapping[str, bytes],
           now: Callable[[], float] = time.time) -> str:
    """The API key of a request whose signature is good; `SignatureError` saying why not otherwise.

    `secrets` maps each API key to its client secret (bytes; empty: the key may connect unsigned)."""
    api_keys = headers("x-api-key")
    if not api_keys:
        raise SignatureError("no X-API-KEY header")
    api_key = _canonical(api_keys)
    inputs, signatures = headers("signature-input"), headers("signature")
    if not inputs and not signatures:
        if secrets.get(api_key) == b"":
            return api_key
        raise SignatureError("the request is not signed")
    if not inputs or not signatures:
        raise SignatureError("Signature and Signature-Input must come together")
    parsed_inputs = parse_dictionary(_canonical(inputs))
    parsed_signatures = parse_dictionary(_canonical(signatures))
    if not parsed_inputs:
        raise SignatureError("an empty Signature-Input")
    label, base = next(iter(parsed_inputs.items()))
    signature = parsed_signatures.get(label)
    if not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        raise SignatureError(f"no signature labelled {label}")
    if not isinstance(base, InnerList):
        raise SignatureError("Signature-Input must be an inner list")
    parameters: dict[str, Any] = {}
    for key, value in base.params:
        if key not in ("alg", "created", "expires", "keyid", "nonce"):
            raise SignatureError(f"unknown signature parameter {key}")
        if key in ("created", "expires"):
            good = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            good = isinstance(value, str)
        if not good:
            raise SignatureError(f"signature parameter {key} has the wrong type")
        parameters[key] = value
    t = now()
    created, expires = parameters.get("created"), parameters.get("expires")
    if created is None:
        raise SignatureError("the signature has no created time")
    if created > t + MAX_CLOCK_SKEW_S:
        raise SignatureError("the signature was created in the future (check the clocks)")
    expired = expires is not None and expires < t + MAX_CLOCK_SKEW_S
    if expired or created + MAX_SIGNATURE_AGE_S < t + MAX_CLOCK_SKEW_S:
        raise SignatureError("the signature has expired")
    lines, seen = [], set()
    for item in base.items:
        name = item.value
        if not isinstance(name, str) or item.params:
            raise SignatureError("a covered component must be a plain string")
        if name in seen:
            raise SignatureError(f"{name} is covered twice")
        seen.add(name)
        if name == "@request-target":
            value = target
        elif name == "@authority":
            value = _canonical(headers("host"))
        elif name.startswith("@") or name == "signature":
            raise SignatureError(f"component {name} is not supported")
        else:
            values = headers(name)
            if not values:
                raise SignatureError(f"header {name} is signed but absent")
            value = _canonical(values)
        lines.append(f"{_bare(name)}: {value}")
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join(missing)}")
    lines.append(f'"@signature-params": {_inner(base)}')
    if len(parameters.get("nonce", "")) < MIN_NONCE:
        raise SignatureError("the signature's nonce is missing or too short")
    if parameters.get("keyid") != api_key:
        raise SignatureError("the signature's keyid is not the X-API-KEY")
    if parameters.get("alg", "hmac-sha256") != "hmac-sha256":
        raise SignatureError("only hmac-sha256 signatures are supported")
    known = api_key in secrets
    hmac_key = secrets[api_key] if known else os.urandom(32)  # the same work for an unknown key
    expected = hmac.new(hmac_key, "\n".join(lines).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature.value) or not known:
        raise SignatureError("unknown API key or bad signature")
    return api_key


def sign(target: str, headers: Mapping[str, str], api_key: str, secret: bytes, *,
         created: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The Signature and Signature-Input headers the platform would send (for tests and the
    benchmark's own clients; the reference client signs with its own code)."""
    created = int(time.time()) if created is None else created
    nonce = nonce or base64.b64encode(os.urandom(18)).decode()
    values = {"@request-target": target, "@authority": headers["host"],
              **{k: headers[k] for k in REQUIRED[2:]}}
    base = InnerList([Item(c, []) for c in REQUIRED],
                     [("keyid", api_key), ("nonce", nonce), ("alg", "hmac-sha256"), ("created", created),
                      ("expires", created + 30)])
    lines = [f"{_bare(c)}: {values[c]}" for c in REQUIRED] + [f'"@signature-params": {_inner(base)}']
    digest = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    return {"signature-input": f"sig1={_inner(base)}",
            "signature": f"sig1=:{base64.b64encode(digest).decode()}:"}

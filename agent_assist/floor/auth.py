"""Who is looking at the floor: password sign-in (Argon2id hashes from the configuration file) or a
reverse proxy's authenticated user header, sessions that expire, and the CSRF token every action
(claim, note, outcome) must carry.

Sessions live in the server's memory: a restarted floor asks everyone to sign in again, which is
the safe way round. The session id is a random 256-bit token in an HttpOnly, SameSite=Strict
cookie; the CSRF token is another, given to the page and checked on every POST (a forged form from
another site has the cookie but not the token).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent_assist.floor.settings import FloorSettings

COOKIE = "agent_assist_floor"
_hasher = PasswordHasher()
# a hash to check against when the account does not exist, so a wrong name takes as long as a wrong
# password (and says nothing about which accounts exist)
_DUMMY = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(settings: FloorSettings, name: str, password: str) -> bool:
    account = settings.accounts.get(name)
    hashed = account.password_hash if account is not None and account.password_hash else _DUMMY
    try:
        ok = _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and hashed is not _DUMMY


@dataclass
class Session:
    id: str
    user: str
    csrf: str
    started: float
    last_seen: float


class Sessions:
    """The signed-in sessions: each ends `session_minutes` after sign-in, or `idle_minutes` after
    its last request, whichever is first."""

    def __init__(self, settings: FloorSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            self._sessions[session.id] = session
        return session

    def for_user(self, user: str) -> Session:
        """Behind a proxy that names the user on every request: that user's session, started on
        their first request (its CSRF token stays the page's until it expires)."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            found = next((s for s in self._sessions.values() if s.user == user), None)
            if found is not None:
                found.last_seen = now
                return found
        return self.start(user)

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is not None:
                session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _expire(self, now: float) -> None:
        whole, idle = self.settings.session_minutes * 60, self.settings.idle_minutes * 60
        for sid in [s.id for s in self._sessions.values()
                    if now - s.started > whole or now - s.last_seen > idle]:
            del self._sessions[sid]


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), str(token).encode())

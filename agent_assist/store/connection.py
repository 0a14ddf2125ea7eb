"""The flag store's connection: one small interface over SQLite and PostgreSQL, and the one-line
errors both give.

* **SQLite** (the default), one file in the user's data directory (platformdirs), permissions 0600,
  WAL journal with `synchronous=FULL`: a flag is committed before the next sink (the overlay) sees
  it, so killing the process loses nothing already flagged.
* **PostgreSQL** (`postgresql://…`) for a whole floor: every agent's desktop writes to one server.
  Every call to it has a deadline (`timeout_s`, 5 s by default): the connection's own
  (connect_timeout), the server's (statement_timeout, lock_timeout), TCP's (keepalives,
  tcp_user_timeout) and, because a server that has stopped answering runs none of its own and its
  kernel still answers TCP's, ours (`_Watchdog`). Past it the call fails as a dropped connection
  does, and the sink keeps the events for later.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from agent_assist.errors import AgentAssistError


class StoreError(AgentAssistError):
    """The store cannot be opened or written (locked, unreachable, newer schema, bad URL).
    `transient`: it may work again later (a lock, a server that is down). `retry_after`: seconds
    to leave it alone first (a server that stopped answering: each try costs its deadline)."""

    def __init__(self, message: str, transient: bool = False, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("agent-assist")) / "flags.sqlite3"


# ------------------------------------------------------------------------------------------------
# The two databases behind one small interface


class _Database:
    """A connection with `?` parameters, one transaction at a time, safe to share between threads."""

    id_column = ""
    where = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def transaction(self, slow: bool = False) -> Iterator[None]:
        """One transaction. `slow`: one that may take long (a purge, a migration), given
        `SLOW_S` rather than the store's usual deadline."""
        raise NotImplementedError
        yield

    def version(self) -> int:
        raise NotImplementedError

    def set_version(self, version: int) -> None:
        raise NotImplementedError

    def migration_lock(self) -> None:
        """Held until the transaction ends."""

    def scrub(self) -> bool:
        """Make what was deleted unrecoverable from the files on disk; False when another program
        stops that for now."""
        return True

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Database):
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__()
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _claim(path, self.where)
            self.conn = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            try:
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                self.conn.close()
                if "not a database" in str(exc) and not _sqlite_header(path):
                    raise _not_a_database(self.where) from None
                raise
            if not version and self.conn.execute(
                "SELECT COUNT(*) FROM sqlite_master"
            ).fetchone()[0]:
                self.conn.close()
                raise StoreError(f"flag store {self.where}: a database of some other program, not an "
                                 "agent-assist store (left as it was)")
            os.chmod(path, 0o600)  # ours: only its owner may read it
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise sqlite3.OperationalError(f"cannot use the WAL journal here ({mode})")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA secure_delete = ON")  # purged text is overwritten, not left behind
        except (OSError, sqlite3.Error) as exc:
            raise _store_error(self.where, exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise _store_error(self.where, exc) from None

    @contextlib.contextmanager
    def transaction(self, slow: bool = False) -> Iterator[None]:
        with self.lock:
            self.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    def scrub(self) -> bool:
        """Deleted rows are zeroed where they lay (secure_delete), but in WAL mode that happens in
        new copies of their pages in the -wal file: the main file keeps the old copies until a
        checkpoint, which SQLite runs on its own only when the last connection closes (never,
        while an agent's session is running). So: copy every page back now, and empty the -wal
        file, whose older frames hold the text too. Waits for readers up to the busy timeout."""
        busy, _, _ = self.query("PRAGMA wal_checkpoint(TRUNCATE)")[0]
        return not busy

    def version(self) -> int:
        return int(self.query("PRAGMA user_version")[0][0])

    def set_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version)}")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA optimize")
            self.conn.close()


#: The deadline of a purge or a migration on PostgreSQL: one statement may take this long there.
SLOW_S = 120.0


class _Watchdog:
    """A deadline on waiting for a server: while armed, a wait for an answer longer than the
    deadline has the connection's socket shut down, so the waiting call fails at once (psycopg
    raises, the connection is broken, and the next transaction connects anew).

    A server that has stopped answering (SIGSTOP, a hung host, a network that drops packets
    without a reset) would otherwise hold the caller for as long as it stays that way: its
    statement_timeout is its own and does not run, and its kernel answers TCP keepalives. One
    thread per connection, asleep while no call is waiting."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: tuple[float, float, int] | None = None  # (deadline, seconds, socket)
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fired = False

    @contextlib.contextmanager
    def armed(self, fd: int, seconds: float) -> Iterator[None]:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-deadline", daemon=True)
                self._thread.start()
            self._armed = (time.monotonic() + seconds, seconds, fd)
            self.fired = False
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._armed = None

    def answered(self) -> None:
        """The server answered: the deadline starts again (it bounds each wait, not a whole
        transaction of quick statements)."""
        with self._cond:
            if self._armed is not None:
                _, seconds, fd = self._armed
                self._armed = (time.monotonic() + seconds, seconds, fd)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._armed is None:
                    self._cond.wait()
                    continue
                deadline, _, fd = self._armed
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._armed = None
                self.fired = True
                _shut_down(fd)


def _shut_down(fd: int) -> None:
    """Shut a socket down under whoever is waiting on it (they see the connection closed)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Postgres(_Database):
    id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__()
        import psycopg

        self._psycopg = psycopg
        self.where = _hide_password(url)
        self._url, self._timeout_s = url, timeout_s
        self._watchdog = _Watchdog()
        self._waiting = 0  # calls of this thread under the watchdog (a transaction's statements)
        try:
            with self.lock:
                self._connect()
            self.execute("CREATE TABLE IF NOT EXISTS agent_assist_schema (version INTEGER NOT NULL)")
        except BaseException:
            self.close()  # and its watchdog's thread
            raise

    def _connect(self) -> None:
        seconds = self._timeout_s
        try:
            self.conn = self._psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(seconds)),  # libpq's least is 2 s
                keepalives=1,  # a peer gone without a word (TCP only; a Unix socket has none)
                keepalives_idle=max(1, math.ceil(seconds)),
                keepalives_interval=1,
                keepalives_count=3,
                tcp_user_timeout=max(1, int(seconds * 1000)),  # data sent and never acknowledged
            )
        except self._psycopg.errors.ConnectionTimeout:
            raise self._no_answer() from None
        except self._psycopg.Error as exc:
            raise _store_error(self.where, exc) from None
        with self._deadline():
            self.execute(f"SET statement_timeout = {max(1, int(seconds * 1000))}")
            self.execute(f"SET lock_timeout = {max(1, int(seconds * 1000))}")

    def _no_answer(self) -> StoreError:
        return StoreError(
            f"flag store {self.where}: no answer within {self._timeout_s:g} s (is the server running, "
            "and the network up?)", transient=True, retry_after=self._timeout_s)

    @contextlib.contextmanager
    def _deadline(self, seconds: float | None = None) -> Iterator[None]:
        """Calls made inside wait for the server `seconds` (the store's timeout) at most each."""
        with self.lock:
            if self._waiting:
                self._waiting += 1
                try:
                    yield
                finally:
                    self._waiting -= 1
                return
            if self.conn.closed or self.conn.broken:  # the server restarted, or the network dropped
                self._connect()
            self._waiting = 1
            try:
                with self._watchdog.armed(self.conn.pgconn.socket, seconds or self._timeout_s):
                    yield
            finally:
                self._waiting = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._deadline():
            try:
                cursor = self.conn.execute(sql.replace("?", "%s"), tuple(params))
            except self._psycopg.Error as exc:
                raise self._no_answer() if self._watchdog.fired else _store_error(self.where, exc) from None
            self._watchdog.answered()
            return cursor

    @contextlib.contextmanager
    def transaction(self, slow: bool = False) -> Iterator[None]:
        with self._deadline(SLOW_S if slow else None):
            try:
                with self.conn.transaction():
                    if slow:
                        self.execute(f"SET LOCAL statement_timeout = {int(SLOW_S * 1000)}")
                    yield
            except self._psycopg.Error as exc:
                raise self._no_answer() if self._watchdog.fired else _store_error(self.where, exc) from None

    def migration_lock(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(4242017)")

    def version(self) -> int:
        rows = self.query("SELECT version FROM agent_assist_schema")
        return int(rows[0][0]) if rows else 0

    def set_version(self, version: int) -> None:
        self.execute("DELETE FROM agent_assist_schema")
        self.execute("INSERT INTO agent_assist_schema (version) VALUES (?)", (version,))

    def close(self) -> None:
        self._watchdog.close()
        if hasattr(self, "conn"):  # not when the first connect failed
            with contextlib.suppress(self._psycopg.Error):
                self.conn.close()




def _claim(path: Path, where: str) -> None:
    """Make sure `path` is a store this may use (new, empty, or a SQLite database), before anything
    touches it: a user's other file given by mistake keeps its content and its mode. A new file is
    created 0600, so SQLite gives its -wal and -shm files that mode too.

    An existing file is never opened here: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, SQLite's included. A second store opened on a file this
    process already has open (the event bus beside the flag store) would then leave the first
    connection unlocked, and another program's reader closing its own connection would take
    itself for the last one and discard the write-ahead log, the flags in it with it. SQLite reads
    the header itself when the connection first reads (`_not_a_database`)."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device is never opened
        raise StoreError(f"flag store {where}: not a regular file (left as it was)")


def _sqlite_header(path: Path) -> bool:
    """Whether `path` starts as a SQLite database does; read only once SQLite has failed to open
    it, when no connection of this process can hold a lock on it (see `_claim`)."""
    with open(path, "rb") as file:
        return file.read(16) == b"SQLite format 3\x00"


def _not_a_database(where: str) -> StoreError:
    return StoreError(f"flag store {where}: not a database, so not an agent-assist store (left as it "
                      "was; give the path of a store, or of a file that does not exist yet)")


def _hide_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _store_error(where: str, exc: Exception) -> StoreError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    transient = False
    if "locked" in low or "busy" in low or "lock timeout" in low:
        hint = "another program is writing to it; try again, or close the other program"
        transient = True
    elif "permission" in low or "readonly" in low or "read-only" in low:
        hint = "check the file's owner and permissions"
    elif "connect" in low or "could not translate" in low or "connection" in low:
        hint = "is the server running and the URL right?"
        transient = True
    elif "not a database" in low or "malformed" in low:
        hint = "the file is not an agent-assist store, or is damaged"
    else:
        hint = ""
    return StoreError(f"flag store {where}: {text}" + (f" ({hint})" if hint else ""), transient)



def connect(target: str | Path | None = None, timeout_s: float = 5.0) -> _Database:
    """`target`: a PostgreSQL URL, a SQLite file path (or `sqlite:///path`), or None for the default
    file in the user's data directory."""
    if target is None or str(target) == "":
        return _SQLite(default_path(), timeout_s)
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                "PostgreSQL needs the psycopg package (pip install 'psycopg[binary]')"
            ) from None
        return _Postgres(text, timeout_s)
    if "://" in text and not text.startswith("sqlite://"):
        raise StoreError(f"unknown store {text!r}: give a file path or a postgresql:// URL")
    return _SQLite(Path(text.removeprefix("sqlite://")).expanduser(), timeout_s)

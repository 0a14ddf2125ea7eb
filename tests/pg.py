"""A real PostgreSQL server for the store's tests: Debian's postgresql package, a throwaway cluster in
a temporary folder, listening only on a Unix socket there."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_counter = itertools.count()


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def missing() -> str | None:
    """Why no server can be started here, or None."""
    if binaries() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg package is not installed"
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start a cluster in a new folder of /tmp (short, so the socket path fits, and outside pytest's
    root-only folders, so the server's own user can reach it); yields a URL for its `postgres`
    database."""
    bin_dir = binaries()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="aa-pg-"))
    data, sock = root / "data", root / "sock"
    data.mkdir(parents=True)
    sock.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (root, data, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    log = root / "server.log"
    proc = subprocess.Popen(
        _as_server_user(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(sock),
                "-h",
                "",
                "-p",
                "5432",
                "-c",
                "fsync=on",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"postgresql:///postgres?host={sock}&port=5432&user=postgres"
    try:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    name = f"aa_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.replace("/postgres?", f"/{name}?", 1)


def _processes(server_url: str) -> list[int]:
    """The server's postmaster and every process it started (backends, checkpointer, ...)."""
    from urllib.parse import parse_qs, urlsplit

    sock = Path(parse_qs(urlsplit(server_url).query)["host"][0])
    postmaster = int((sock.parent / "data" / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def frozen(server_url: str) -> Iterator[None]:
    """The server stops answering, as a hung host does: every one of its processes is stopped
    (SIGSTOP), its connections stay open, and its kernel still accepts what is sent. Resumed
    (SIGCONT) on the way out."""
    stopped = _processes(server_url)
    # run as root, the server's parent is `runuser`, which stops itself when its child stops (as
    # su does) and must be resumed too, or it never passes on the SIGTERM that ends the server
    parent = int(Path(f"/proc/{stopped[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])
    runuser = Path(f"/proc/{parent}/comm").read_text().strip() == "runuser"
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in [*stopped, *([parent] if runuser else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

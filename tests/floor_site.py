"""A floor to test against: a real PostgreSQL database, `agent-assist floor` in its own process with
two supervisors' accounts, headless Chromium from Debian driven by Selenium (its chromium-driver:
nothing is downloaded), and a desk writing a call through the real recorder, store and bus."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent_assist.bus import BusWriter, open_bus
from agent_assist.events import (
    CallEnd,
    CallStart,
    EndReason,
    Flag,
    Prompt,
    PublicEvent,
    Scores,
    Speaker,
    Utterance,
)
from agent_assist.floor.auth import hash_password
from agent_assist.recorder import Recorder
from agent_assist.store import FlagStoreSink, StoreOptions, open_store

PASSWORDS = {"lee": "lee-secret-1", "kim": "kim-secret-2"}
TEAMS = {"lee": ["east"], "kim": ["west"]}


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "Chromium and its driver are not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, port: int) -> Path:
    lines = ["[floor]", f"port = {port}"]
    for name, password in PASSWORDS.items():
        lines += [f"[floor.accounts.{name}]", f'password_hash = "{hash_password(password)}"',
                  f"teams = {TEAMS[name]!r}".replace("'", '"')]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def floor_server(store_url: str, folder: Path) -> Iterator[str]:
    """`agent-assist floor` on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    env = {**os.environ, "AGENT_ASSIST_CONFIG": str(write_config(folder, port))}
    log = (folder / "floor.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "agent_assist.cli", "floor", "--store", store_url],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=2).close()
            break
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                said = (folder / "floor.log").read_text()[-800:]
                raise RuntimeError(f"the floor did not start: {said}") from None
            time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Http:
    """A plain HTTP client with its own cookies (a supervisor without a browser, or a forger)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())

    def request(self, path: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def sign_in(self, user: str) -> None:
        status, _, _ = self.request("/login", {"user": user, "password": PASSWORDS[user]})
        assert status == 303


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def browser(width: int = 1400, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never fetches a browser or a driver
    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-dev-shm-usage",
                f"--window-size={width},{height}",
                "--force-device-scale-factor=1", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def sign_in(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(PASSWORDS[user])
    driver.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: driver.find_elements(By.ID, "board"), 10)


def wait_for(check: Any, seconds: float, every: float = 0.02) -> Any:
    """`check()`'s first true value within `seconds` (AssertionError past it)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(every)


def scores(distress: float, escalation: float = 0.1, crisis: float = 0.0) -> Scores:
    return Scores(distress, escalation, crisis, {"distress": distress, "escalation": escalation,
                                                 "crisis": crisis}, None, False,
                  {"distress": distress, "escalation": escalation})


class Desk:
    """An agent's desktop writing a call as `run` does: the recorder (redacting), the store, then the
    bus."""

    def __init__(self, url: str, agent: str, team: str, transcript: str = "full") -> None:
        self.store = open_store(url)
        sink = FlagStoreSink(self.store, StoreOptions(agent=agent, team=team, transcript=transcript),
                             redact=False)
        self.recorder = Recorder([sink, BusWriter(open_bus(url), agent, team, transcript)])

    def emit(self, *events: PublicEvent) -> None:
        for event in events:
            self.recorder.emit(event)
        assert self.recorder.flush(10)

    def close(self) -> None:
        self.recorder.close()
        self.store.close()


def start(call_id: str) -> CallStart:
    return CallStart(t=0.0, call_id=call_id, source="desk", channels={"left": Speaker.CUSTOMER},
                     started_at="2026-11-30T05:00:00+00:00", model="tiny.en")


def turn(call_id: str, n: int, t: float, text: str, distress: float, crisis: float = 0.0) -> Utterance:
    return Utterance(t=t, call_id=call_id, utterance_id=f"u{n}", speaker=Speaker.CUSTOMER, start=t - 2, end=t,
                     text=text, scores=scores(distress, 0.2, crisis))


def prompt(call_id: str, t: float, text: str = "Slow down; acknowledge what they shared.") -> Prompt:
    return Prompt(t=t, call_id=call_id, rule="acknowledge-disclosure", principle="safety", text=text,
                  example="", priority=60, signals=("distress",), why={})


def crisis(call_id: str, t: float, n: int) -> Flag:
    return Flag(t=t, call_id=call_id, kind="crisis", severity="critical",
                reason="crisis-self-harm: crisis 0.97", utterance_id=f"u{n}", rule="crisis-self-harm")


def end(call_id: str, t: float) -> CallEnd:
    return CallEnd(t=t, call_id=call_id, reason=EndReason.END_OF_AUDIO, utterances=2)

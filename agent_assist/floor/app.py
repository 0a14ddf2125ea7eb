"""`agent-assist floor`: the supervisors' live page, a Starlette app served by uvicorn.

```
desktops / server ──commit──► store ──NOTIFY──► Floor._listen (a thread): Board.apply
                                                     │ urgent flag: pushed at once, with a banner
                                                     ▼ anything else: at most every PUSH_S
browsers ◄──server-sent events── per viewer: the board's HTML (or the wallboard's counts)
browsers ──POST claim / note / outcome (CSRF token)──► store (+ the bus, for a note)
```

The board is loaded from the store once, after subscribing to the bus (so nothing falls between),
and then follows the bus: no polling of the store (on SQLite the bus itself reads a table; see
`agent_assist.bus`). Claims are read back from the store as they are made, and the store decides
which of two simultaneous claims wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_assist.bus import Bus, BusMessage, open_bus
from agent_assist.events import Flag, SupervisorNote
from agent_assist.floor import pages
from agent_assist.floor.auth import COOKIE, Session, Sessions, check_password, csrf_ok
from agent_assist.floor.board import Board
from agent_assist.floor.settings import Account, FloorSettings
from agent_assist.redact import CallRedactor
from agent_assist.review import report_html
from agent_assist.store import Store, StoreError, open_store, utc_text
from agent_assist.store import floor as floor_store
from agent_assist.store.reviews import Outcome

log = logging.getLogger(__name__)

#: The board is sent to the browsers at most this often (an urgent flag goes at once).
PUSH_S = 0.25
#: A comment on every open stream this often, so proxies keep it open and a gone browser is noticed.
KEEPALIVE_S = 15.0
#: Board updates a browser may be behind before the oldest are dropped (it gets the newest anyway).
CLIENT_QUEUE = 20
NOTE_MAX = 200

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# the call's page is the review report (inline styles, no script)
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


@dataclass(eq=False)
class Client:
    """One open page: whose it is, and what it is sent."""

    account: Account
    csrf: str
    wall: bool
    queue: asyncio.Queue[tuple[str, str] | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: int = 0

    def send(self, kind: str, data: str) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((kind, data))


class Floor:
    """The floor's state: the store, the bus, the board, the sessions and the open pages."""

    def __init__(self, store_url: str | None, settings: FloorSettings, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.store: Store = open_store(store_url, timeout_s)
        try:
            self.bus: Bus = open_bus(store_url, timeout_s)
        except BaseException:
            self.store.close()
            raise
        self.subscription = self.bus.subscribe()  # first: nothing published while loading is missed
        self.board = Board()
        self.lock = threading.Lock()
        self.sessions = Sessions(settings)
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._dirty = False
        self.pushed = 0
        with self.lock:
            calls = floor_store.live_calls(self.store)
            alerts = floor_store.recent_alerts(self.store)
            ids = [f.id for c in calls for f in c.flags] + [a.flag.id for a in alerts]
            self.board.load(calls, alerts, floor_store.claims(self.store, ids),
                            floor_store.recent_counts(self.store)["escalations_last_hour"])
        self._thread = threading.Thread(target=self._listen, name="floor-bus", daemon=True)

    # -- the bus, on a thread of its own ----------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread.start()

    def _listen(self) -> None:
        for message in self.subscription:
            try:
                self.take(message)
            except Exception:  # one bad event must not stop the board
                log.exception("floor: could not show %s", message.event.type)

    def take(self, message: BusMessage) -> None:
        event = message.event
        flag_id = None
        if isinstance(event, Flag):
            try:
                flag_id = floor_store.flag_id(self.store, event.call_id, event.t, str(event.kind), event.rule,
                                              event.raised_by)
            except StoreError as exc:
                log.warning("floor: %s", exc)
        with self.lock:
            alert = self.board.apply(message, flag_id)
        banner = pages.alert_text(alert) if alert is not None and not alert.flag.check_in else None
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.changed, banner)

    # -- pushing to the pages (the event loop) -------------------------------------------------------

    def changed(self, banner: str | None = None) -> None:
        if banner is None:
            self._dirty = True
            return
        self.push()
        for client in list(self.clients):
            if not client.wall:
                client.send("alert", banner)

    def push(self) -> None:
        self._dirty = False
        self.pushed += 1
        now = time.monotonic()
        with self.lock:
            counts = self.board.counts()
            for client in list(self.clients):
                client.send("board", pages.wall_fragment(counts) if client.wall else
                            pages.board_fragment(self.board, client.account, client.csrf, now))

    async def pusher(self) -> None:
        while True:
            await asyncio.sleep(PUSH_S)
            with self.lock:
                expired = self.board.expire()
            if self._dirty or expired:
                self.push()

    def end_streams(self) -> None:
        """Every open page's stream ends (on the event loop)."""
        for client in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)

    def close(self) -> None:
        self.subscription.close()
        self._thread.join(timeout=3)
        self.bus.close()
        self.store.close()


# ------------------------------------------------------------------------------------------------
# Requests


def _session(floor: Floor, request: Request) -> Session | None:
    header = floor.settings.user_header
    if header:
        user = request.headers.get(header, "").strip()
        return floor.sessions.for_user(user) if user else None
    return floor.sessions.get(request.cookies.get(COOKIE))


def _unauthenticated(request: Request) -> Response:
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/login", status_code=303)
    return PlainTextResponse("sign in first (/login)", status_code=401)


def _html(text: str, status: int = 200, csp: str = PAGE_CSP) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers={
        "Content-Security-Policy": csp, "X-Frame-Options": "DENY", "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})


async def _action(floor: Floor, request: Request) -> tuple[Session | None, dict[str, str], Response | None]:
    """A POST's session and form, or the response refusing it (401 without a session, 403 without
    the page's CSRF token)."""
    session = _session(floor, request)
    if session is None:
        return None, {}, PlainTextResponse("sign in first (/login)", status_code=401)
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not csrf_ok(session, request.headers.get("x-csrf-token") or form.get("csrf")):
        return None, {}, PlainTextResponse("refused: the page's security token is missing or wrong "
                                           "(reload the page)", status_code=403)
    return session, form, None


def _done(request: Request, text: str, status: int = 200, back: str = "/") -> Response:
    """A fetch from the page gets `text`; a plain form post is sent back to `back`."""
    if request.headers.get("x-requested-with") == "fetch" or status >= 400:
        return PlainTextResponse(text, status_code=status)
    return RedirectResponse(back, status_code=303)


def build_app(floor: Floor) -> Starlette:
    settings = floor.settings

    async def board_page(request: Request) -> Response:
        session = _session(floor, request)
        if session is None:
            return _unauthenticated(request)
        account = settings.account(session.user)
        with floor.lock:
            body = pages.board_fragment(floor.board, account, session.csrf, time.monotonic())
        return _html(pages.page("agent-assist floor", f'<div id="board">{body}</div>', session.user,
                                session.csrf, "board", settings.sound))

    async def wall_page(request: Request) -> Response:
        session = _session(floor, request)
        if session is None:
            return _unauthenticated(request)
        with floor.lock:
            body = pages.wall_fragment(floor.board.counts())
        return _html(pages.page("agent-assist floor: wallboard", f'<div id="board">{body}</div>',
                                session.user, session.csrf, "wall"))

    async def events(request: Request) -> Response:
        session = _session(floor, request)
        if session is None:
            return PlainTextResponse("sign in first (/login)", status_code=401)
        wall = request.query_params.get("view") == "wall"
        client = Client(settings.account(session.user), session.csrf, wall)
        floor.clients.add(client)

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        if floor.sessions.get(session.id) is None and not settings.user_header:
                            return  # the session expired: the page reconnects and is refused
                        yield ": still here\n\n"
                        continue
                    if item is None:
                        return
                    kind, data = item
                    yield f"event: {kind}\n" + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"
            finally:
                floor.clients.discard(client)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return _html(pages.login_page())
        form = await request.form()
        user, password = str(form.get("user", "")).strip(), str(form.get("password", ""))
        if not await run_in_threadpool(check_password, settings, user, password):
            log.warning("floor: a failed sign-in as %r", user[:64])
            return _html(pages.login_page("That account and password do not match."), 401)
        session = floor.sessions.start(user)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session.id, max_age=int(settings.session_minutes * 60), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        floor.sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def claim(request: Request) -> Response:
        session, _, refused = await _action(floor, request)
        if refused is not None or session is None:
            return refused or _unauthenticated(request)
        flag = int(request.path_params["flag_id"])
        try:
            won, standing = await run_in_threadpool(floor_store.claim, floor.store, flag, session.user)
        except StoreError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        with floor.lock:
            floor.board.claimed(standing)
        floor.push()
        if not won:
            return _done(request, f"Already claimed by {standing.by} at {pages.local_time(standing.at)}", 409)
        return _done(request, f"Claimed by {standing.by}")

    async def note(request: Request) -> Response:
        session, form, refused = await _action(floor, request)
        if refused is not None or session is None:
            return refused or _unauthenticated(request)
        call_id = request.path_params["call_id"]
        text = " ".join(form.get("text", "").split())[:NOTE_MAX]
        if not text:
            return PlainTextResponse("a note needs some words", status_code=400)
        with floor.lock:
            live = floor.board.calls.get(call_id)
            target = (live.agent, live.team, live.call_t) if live is not None else None
        if target is None:
            return PlainTextResponse("that call is not on the board (it may have ended)", status_code=404)
        agent, team, t = target
        note = CallRedactor().event(SupervisorNote(t=round(t, 3), call_id=call_id, text=text,
                                                   author=session.user, agent=agent))
        assert isinstance(note, SupervisorNote)
        try:
            await run_in_threadpool(floor.store.add_supervisor_note, note)
        except StoreError as exc:
            return PlainTextResponse(f"not sent: {exc}", status_code=503)
        if not await run_in_threadpool(floor.bus.publish, note, agent=agent, team=team):
            return PlainTextResponse("recorded, but the event bus is not reachable: the agent has not "
                                     "seen it", status_code=503)
        return _done(request, f"Note sent to {agent}")

    async def call_page(request: Request) -> Response:
        session = _session(floor, request)
        if session is None:
            return _unauthenticated(request)
        call_id = request.path_params["call_id"]
        account = settings.account(session.user)
        try:
            text = await run_in_threadpool(_call_page, floor, call_id, account, session)
        except StoreError as exc:
            return _html(pages.page("agent-assist floor", f"<p>{pages._e(exc)}</p>", session.user), 404)
        return _html(text, csp=REPORT_CSP)

    async def outcome(request: Request) -> Response:
        session, form, refused = await _action(floor, request)
        if refused is not None or session is None:
            return refused or _unauthenticated(request)
        flag_id = int(request.path_params["flag_id"])
        try:
            chosen = Outcome(form.get("outcome", ""))
        except ValueError:
            return PlainTextResponse(f"outcome must be one of {', '.join(o.value for o in Outcome)}", 400)
        try:
            flag = await run_in_threadpool(floor.store.flag, flag_id)
            if flag.check_in and flag.team not in settings.account(session.user).teams:
                return PlainTextResponse("only the agent's own team leader sees their check-ins", 403)
            await run_in_threadpool(floor.store.set_outcome, flag_id, chosen, session.user)
        except StoreError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return _done(request, f"{chosen.words}", back=f"/call/{flag.call_id}")

    async def script(_request: Request) -> Response:
        return Response(pages.SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    async def style(_request: Request) -> Response:
        return Response(pages.CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        floor.start(asyncio.get_running_loop())
        task = asyncio.create_task(floor.pusher())
        try:
            yield
        finally:
            task.cancel()
            floor.end_streams()
            await run_in_threadpool(floor.close)

    return Starlette(routes=[
        Route("/", board_page), Route("/wall", wall_page), Route("/events", events),
        Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout),
        Route("/claim/{flag_id:int}", claim, methods=["POST"]),
        Route("/note/{call_id}", note, methods=["POST"]),
        Route("/outcome/{flag_id:int}", outcome, methods=["POST"]),
        Route("/call/{call_id}", call_page),
        Route("/floor.js", script), Route("/floor.css", style),
    ], lifespan=lifespan)


def _call_page(floor: Floor, call_id: str, account: Account, session: Session) -> str:
    """The call's review (the report's page for this call), with its outcomes to set. The view is
    written to the audit before the page is made."""
    store = floor.store
    call = store.call(call_id)  # StoreError when there is no such call
    leads = set(account.teams)
    flags = [store.flag(f.id) for f in floor_store.flags_of(store, call_id)]
    flags = [f for f in flags if not f.check_in or f.team in leads]  # check-ins: the team leader's only
    floor_store.audit_view(store, session.user, call_id, "call page")
    views = floor_store.views(store, [call_id])
    page = report_html(flags, {call_id: call}, title=f"Call {call_id}", subtitle=f"agent {call.agent} · "
                       f"team {call.team or '-'} · from the floor", generated_at=utc_text(), views=views)
    panel = pages.outcome_panel(
        [(f.id, f.kind, f.severity, ", ".join(o.words for o in f.outcomes)) for f in flags], session.csrf)
    notes = floor_store.notes_of(store, call_id)
    sent = ("<section id=\"notes\"><h2>Notes sent to the agent</h2><ul>" + "".join(
        f"<li>{pages._e(n['author'])} ({pages._e(pages.local_time(n['created_at']))}): "
        f"{pages._e(n['text'])}</li>" for n in notes) + "</ul></section>") if notes else ""
    top = f'<p><a href="/">back to the board</a></p>{panel}{sent}'
    return page.replace("<body>", f"<body>{top}", 1)


def serve(floor: Floor, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(build_app(floor), host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=2, proxy_headers=False, server_header=False)
    uvicorn.Server(config).run()

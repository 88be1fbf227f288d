"""The console's shared parts: its settings and secret, the templates, the session and CSRF machinery, and
the dependencies every staff route uses (who is logged in, may they, is the form genuine)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from bot.console import labels
from bot.deps import RuntimeDep
from bot.settings import ConsoleSettings
from handlers.hours import OfficeHours
from storage import queue
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow
from storage.staff import Role, StaffAccount, StaffSession

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "kc_session"
LOGIN_COOKIE = "kc_login"  # a nonce that binds the login form's CSRF token to this browser
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


class NotAuthenticatedError(Exception):
    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("not authenticated")
        self.expired = expired


class ForbiddenError(Exception):
    def __init__(self, reason: str = "forbidden") -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfError(Exception):
    pass


class NotFoundError(Exception):
    pass


class Console:
    """Built once by `mount_console`; kept on `app.state.console`."""

    def __init__(self, settings: ConsoleSettings, *, office_hours: OfficeHours, public_url: str) -> None:
        self.settings = settings
        secret = settings.session_secret.get_secret_value() if settings.session_secret else None
        self.secret = secret.encode() if secret else secrets.token_bytes(32)
        self.office_hours = office_hours
        self.public_url = public_url.rstrip("/")
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(labels=labels, Role=Role)
        self.templates.filters.update(
            jst=lambda v, fmt="%Y-%m-%d %H:%M": labels.local(v, office_hours.tz, fmt),
            duration=labels.duration,
        )

    # ----- passwords
    def hash_password(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_password(self, stored: str | None, password: str) -> bool:
        """Constant work whether or not the account exists."""
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    # ----- tokens
    def digest(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()

    def login_token(self, nonce: str) -> str:
        return hmac.new(self.secret, b"login:" + nonce.encode(), hashlib.sha256).hexdigest()

    @property
    def idle(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.idle_timeout_minutes)

    @property
    def max_age(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.session_max_hours)

    def set_cookie(self, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=self.settings.secure_cookies,
            path="/",
        )

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=self.settings.secure_cookies)

    # ----- rendering
    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("me", getattr(request.state, "staff", None))
        context.setdefault("csrf", getattr(request.state, "csrf", ""))
        context.setdefault("path", request.url.path)
        context.setdefault("poll_seconds", self.settings.poll_seconds)
        context.setdefault("alert_backlog", _alert_backlog(request) if context.get("me") else None)
        if context["me"] is not None and "failures" not in context:
            context["failures"] = _failures(request)
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _alert_backlog(request: Request) -> Any:
    """Staff alerts the Telegram bridge could not post (only when the bridge runs)."""
    if getattr(request.app.state, "telegram", None) is None:
        return None
    from storage.bridge import undelivered_alerts

    with request.app.state.runtime.sessions() as s:
        backlog = undelivered_alerts(s)
    return backlog if backlog.total else None


def _failures(request: Request) -> dict[str, int] | None:
    """For the header: channel events given up and replies that did not (or may not) reach the parent."""
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        return None
    try:
        with rt.sessions() as s:
            return {"events": queue.failed_event_count(s), "deliveries": queue.failed_delivery_count(s)}
    except SQLAlchemyError:  # the page (an error page, perhaps) still renders without the counts
        return None


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


@dataclass
class Authed:
    staff: StaffAccount
    session_id: str
    csrf: str

    @property
    def name(self) -> str:
        return self.staff.username


def check_session(
    sessions: Any, console: Console, token: str | None, *, touch: bool
) -> tuple[StaffAccount, StaffSession]:
    """The staff member behind a session cookie, or NotAuthenticatedError; `touch` counts it as activity.
    The live-update stream calls this again while it runs, so an ended session is noticed there too."""
    if not token:
        raise NotAuthenticatedError()
    digest = console.digest(token)
    now = utcnow()
    failure: NotAuthenticatedError | None = None
    with transaction(sessions) as s:  # commits the end of a dead session before we refuse
        row = staffdb.get_session(s, digest=digest)
        staff = staffdb.get_staff(s, staff_id=row.staff_id) if row is not None else None
        if row is None:
            failure = NotAuthenticatedError(expired=True)
        elif staff is None or not staff.active:
            staffdb.end_session(s, digest=digest)
            failure = NotAuthenticatedError()
        elif now - row.last_seen_at > console.idle or now - row.created_at > console.max_age:
            staffdb.end_session(s, digest=digest)
            staffdb.audit(s, actor=staff.username, action="session_expired", record_type="session")
            failure = NotAuthenticatedError(expired=True)
        elif touch:
            staffdb.touch_session(s, row=row, now=now)
    if failure is not None:
        raise failure
    assert row is not None and staff is not None
    return staff, row


def current_staff(request: Request, rt: RuntimeDep, console: ConsoleDep) -> Authed:
    """The logged-in staff member; polls (paths ending .json) do not count as activity for the idle timeout.
    An open live-update stream does (it re-checks and touches the session while it runs), up to the
    maximum session age: a console left open on the queue stays logged in for the working day."""
    staff, row = check_session(
        rt.sessions, console, request.cookies.get(SESSION_COOKIE), touch=not request.url.path.endswith(".json")
    )
    request.state.staff = staff
    request.state.csrf = row.csrf_token
    return Authed(staff, row.id, row.csrf_token)


StaffDep = Annotated[Authed, Depends(current_staff)]


async def checked_form(request: Request, who: StaffDep) -> Authed:
    """For every state-changing request: the per-session CSRF token, from the form or X-CSRF-Token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, who.csrf):
        raise CsrfError()
    return who


FormStaffDep = Annotated[Authed, Depends(checked_form)]


def require(*roles: Role) -> Callable[[Authed], Authed]:
    """A dependency: the staff member has one of `roles`."""

    def check(who: StaffDep) -> Authed:
        if who.staff.role not in roles:
            raise ForbiddenError("role")
        return who

    return check


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    return target


def login_redirect(request: Request, *, expired: bool) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/login?next={quote(target, safe='')}" + ("&expired=1" if expired else "")
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def wants_json(request: Request) -> bool:
    """Polls (paths ending .json), the live-update stream, clients asking for JSON, and JSON requests
    (webhooks) get JSON errors."""
    return (
        request.url.path.endswith(".json")
        or request.url.path == "/cases/events"  # an EventSource cannot follow a login redirect: 401, the page says so
        or "application/json" in request.headers.get("accept", "")
        or "application/json" in request.headers.get("content-type", "")
    )


def install_error_pages(app: Any) -> None:
    async def not_authenticated(request: Request, exc: Exception) -> Response:
        expired = isinstance(exc, NotAuthenticatedError) and exc.expired
        if wants_json(request):
            return JSONResponse({"error": "not authenticated", "expired": expired}, status_code=401)
        if request.method == "GET":
            return login_redirect(request, expired=expired)
        console = get_console(request)  # a form sent after the session ended: a page, not JSON
        return console.render(
            request, "error.html", status_code=401, title="ログインしてください", message=labels.LOGIN_AGAIN
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        console = get_console(request)
        return console.render(
            request, "error.html", status_code=403, title="権限がありません", message=labels.FORBIDDEN
        )

    async def csrf(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"error": "csrf"}, status_code=403)
        console = get_console(request)
        return console.render(
            request, "error.html", status_code=403, title="送信を受け付けられません", message=labels.CSRF
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"error": "not found"}, status_code=404)
        console = get_console(request)
        return console.render(request, "error.html", status_code=404, title="見つかりません", message=labels.NOT_FOUND)

    app.add_exception_handler(NotAuthenticatedError, not_authenticated)
    app.add_exception_handler(ForbiddenError, forbidden)
    app.add_exception_handler(CsrfError, csrf)
    app.add_exception_handler(NotFoundError, not_found)

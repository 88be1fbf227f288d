"""/login and /logout. The login form carries a token bound to a nonce cookie (CSRF before a session
exists). Attempts are counted per account and per client address before the password is checked (atomically:
parallel guesses cannot pass the threshold); the last allowed failure locks the account (or blocks the
address) for a while that doubles with each consecutive lockout. Every failure gets the same answer."""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from bot.console.core import LOGIN_COOKIE, SESSION_COOKIE, Console, ConsoleDep, FormStaffDep, safe_next
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow

router = APIRouter()
# One answer for every failed login: a wrong password, an unknown or inactive user, a locked account and a
# blocked address look the same from outside (the audit log and the staff page tell the supervisor which).
BAD_LOGIN = (
    "ユーザー名またはパスワードが正しくないか、続けて失敗したため一時的にログインできません。"
    "時間をおいてお試しいただくか、管理者にお問い合わせください。"
)


def _login_page(
    request: Request,
    console: Console,
    *,
    next_url: str,
    error: str | None = None,
    info: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = console.render(
        request,
        "login.html",
        status_code=status,
        me=None,
        login_token=console.login_token(nonce),
        next_url=next_url,
        error=error,
        info=info,
    )
    console.set_cookie(response, LOGIN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, console: ConsoleDep, next: str = "/cases", expired: str | None = None) -> HTMLResponse:
    info = "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。" if expired else None
    return _login_page(request, console, next_url=safe_next(next), info=info)


@router.post("/login")
def login(
    request: Request,
    rt: RuntimeDep,
    console: ConsoleDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/cases",
) -> Response:
    next_url = safe_next(next)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(csrf_token, console.login_token(nonce)):
        return _login_page(
            request,
            console,
            next_url=next_url,
            error="フォームの有効期限が切れました。もう一度ログインしてください。",
            status=403,
        )
    username = username.strip().lower()[:32]
    address = client_address(request)
    settings = console.settings
    now = utcnow()
    lockout = dt.timedelta(minutes=settings.lockout_minutes)
    cap = dt.timedelta(minutes=max(settings.lockout_max_minutes, settings.lockout_minutes))
    accounts = staffdb.Backoff(settings.lockout_threshold, lockout, cap)
    addresses = staffdb.Backoff(settings.address_threshold, lockout, cap)
    window = dt.timedelta(minutes=settings.address_window_minutes)
    # 1. count the attempt (address, then account) and commit, before any password is checked
    with transaction(rt.sessions) as s:
        by_address = staffdb.reserve_address_attempt(
            s, address=address, threshold=addresses.threshold, window=window, now=now
        )
        staff = staffdb.get_staff_by_username(s, username=username) if username else None
        staff_id = staff.id if staff is not None and staff.active else None
        by_account = None
        if by_address is not None and staff_id is not None:
            by_account = staffdb.reserve_login_attempt(s, staff_id=staff_id, threshold=accounts.threshold, now=now)
    # 2. the password check (the same work in every case: no timing tells which usernames exist)
    if by_address is None or staff_id is None or by_account is None or staff is None:
        console.verify_password(None, password)
        ok = False
    else:
        ok = console.verify_password(staff.password_hash, password)
    # 3. record the outcome
    with transaction(rt.sessions) as s:
        if not ok:
            _record_failure(
                s,
                username=username,
                staff_id=staff_id,
                address=address,
                now=now,
                by_address=by_address,
                by_account=by_account,
                policies=(accounts, addresses),
            )
            staff = None
        else:
            staff = staffdb.get_staff(s, staff_id=staff_id or 0)
            if staff is None or not staff.active:  # deactivated meanwhile
                ok = False
            else:
                if console.hasher.check_needs_rehash(staff.password_hash):
                    staff.password_hash = console.hash_password(password)
                staffdb.record_login_success(s, staff=staff, now=now)
                staffdb.release_address_attempt(s, address=address)
                old = request.cookies.get(SESSION_COOKIE)
                if old:
                    staffdb.end_session(s, digest=console.digest(old))
                staffdb.purge_idle_sessions(s, idle_before=now - console.idle)  # dead ones, left by closed browsers
                staffdb.purge_login_throttle(s, before=now - dt.timedelta(days=1))
                token = secrets.token_urlsafe(32)
                staffdb.create_session(
                    s, staff=staff, digest=console.digest(token), csrf_token=secrets.token_urlsafe(32)
                )
                staffdb.audit(s, actor=staff.username, action="login", record_type="session")
    error = BAD_LOGIN
    if not ok:
        return _login_page(request, console, next_url=next_url, error=error, status=401)
    response = RedirectResponse(next_url, status_code=303)
    console.set_cookie(response, SESSION_COOKIE, token)
    console.clear_cookie(response, LOGIN_COOKIE)
    return response


def client_address(request: Request) -> str:
    """The client's address as uvicorn reports it (behind a reverse proxy, uvicorn takes it from
    X-Forwarded-For when the proxy's address is in `FORWARDED_ALLOW_IPS`; README: Staff console). An IPv6
    client counts by its /64: one host holds a whole /64 and could otherwise spray from endless addresses."""
    host = request.client.host if request.client is not None else "-"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _record_failure(
    s: Session,
    *,
    username: str,
    staff_id: int | None,
    address: str,
    now: dt.datetime,
    by_address: int | None,
    by_account: int | None,
    policies: tuple[staffdb.Backoff, staffdb.Backoff],
) -> None:
    """Audit a failed login and advance the lockouts (policies: accounts, addresses). The audit says why (for
    the supervisor); the person trying always sees the same message."""
    accounts, addresses = policies
    actor = username if staff_id is not None else "-"
    if by_address is None:
        staffdb.audit(s, actor=actor, action="login_blocked", record_type="session", detail="address blocked")
        return
    blocked = staffdb.record_address_failure(s, address=address, attempt=by_address, policy=addresses, now=now)
    if blocked is not None:
        # the address is what the supervisor needs to act on; it is the client's, never a parent's
        staffdb.audit(
            s,
            actor="-",
            action="address_blocked",
            record_type="session",
            detail=f"{address} for {int(blocked.total_seconds() // 60)} min",
        )
    if staff_id is None:
        staffdb.audit(s, actor="-", action="login_failed", record_type="session", detail="unknown or inactive user")
    elif by_account is None:
        staffdb.audit(s, actor=actor, action="login_locked", record_type="session")
    else:
        locked = staffdb.record_login_failure(s, staff_id=staff_id, attempt=by_account, policy=accounts, now=now)
        staffdb.audit(
            s,
            actor=actor,
            action="lockout" if locked else "login_failed",
            record_type="session",
            detail=None if locked is None else f"for {int(locked.total_seconds() // 60)} min",
        )


@router.post("/logout")
def logout(who: FormStaffDep, rt: RuntimeDep, console: ConsoleDep) -> RedirectResponse:
    with transaction(rt.sessions) as s:
        staffdb.end_session(s, digest=who.session_id)
        staffdb.audit(s, actor=who.name, action="logout", record_type="session")
    response = RedirectResponse("/login", status_code=303)
    console.clear_cookie(response, SESSION_COOKIE)
    return response

"""/login and /logout. The login form carries a token bound to a nonce cookie (CSRF before a session
exists); failures are counted per account and lock it for a while after the configured number."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console.core import LOGIN_COOKIE, SESSION_COOKIE, Console, ConsoleDep, FormStaffDep, safe_next
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow

router = APIRouter()
BAD_LOGIN = "ユーザー名またはパスワードが正しくありません。"


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
    now = utcnow()
    settings = console.settings
    with transaction(rt.sessions) as s:
        staff = staffdb.get_staff_by_username(s, username=username) if username else None
        if staff is not None and staffdb.is_locked(staff, now=now):
            console.verify_password(None, password)
            staffdb.audit(s, actor=staff.username, action="login_locked", record_type="session")
            until = staff.locked_until
            error = "ログインに続けて失敗したため、このアカウントは一時的にロックされています。" + (
                f"{_minutes_left(until, now)}分ほど後にお試しいただくか、管理者にロック解除を依頼してください。"
                if until
                else ""
            )
            ok = False
        elif staff is None or not staff.active:
            console.verify_password(None, password)
            staffdb.audit(s, actor="-", action="login_failed", record_type="session", detail="unknown or inactive user")
            error, ok = BAD_LOGIN, False
        elif not console.verify_password(staff.password_hash, password):
            locked = staffdb.record_login_failure(
                s,
                staff=staff,
                threshold=settings.lockout_threshold,
                lockout=dt.timedelta(minutes=settings.lockout_minutes),
                now=now,
            )
            staffdb.audit(
                s, actor=staff.username, action="lockout" if locked else "login_failed", record_type="session"
            )
            error, ok = BAD_LOGIN, False
        else:
            if console.hasher.check_needs_rehash(staff.password_hash):
                staff.password_hash = console.hash_password(password)
            staffdb.record_login_success(s, staff=staff, now=now)
            old = request.cookies.get(SESSION_COOKIE)
            if old:
                staffdb.end_session(s, digest=console.digest(old))
            staffdb.purge_idle_sessions(s, idle_before=now - console.idle)  # dead ones, left by closed browsers
            token = secrets.token_urlsafe(32)
            staffdb.create_session(s, staff=staff, digest=console.digest(token), csrf_token=secrets.token_urlsafe(32))
            staffdb.audit(s, actor=staff.username, action="login", record_type="session")
            error, ok = "", True
    if not ok:
        return _login_page(request, console, next_url=next_url, error=error, status=401)
    response = RedirectResponse(next_url, status_code=303)
    console.set_cookie(response, SESSION_COOKIE, token)
    console.clear_cookie(response, LOGIN_COOKIE)
    return response


def _minutes_left(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, int((until - now).total_seconds() // 60) + 1)


@router.post("/logout")
def logout(who: FormStaffDep, rt: RuntimeDep, console: ConsoleDep) -> RedirectResponse:
    with transaction(rt.sessions) as s:
        staffdb.end_session(s, digest=who.session_id)
        staffdb.audit(s, actor=who.name, action="logout", record_type="session")
    response = RedirectResponse("/login", status_code=303)
    console.clear_cookie(response, SESSION_COOKIE)
    return response

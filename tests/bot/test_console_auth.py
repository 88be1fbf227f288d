"""Logging in and staying logged in: argon2 passwords, cookie flags, the login form's CSRF token, lockout
after repeated failures, idle timeout, logout, and CSRF on every state-changing form."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.console.login import BAD_LOGIN
from bot.runtime import bootstrap
from bot.settings import Settings
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow
from storage.staff import AuditEntry, InternalNote, StaffAccount
from tests.e2e.kit import (
    CSRF_RE,
    PASSWORD,
    age_sessions,
    client,
    console_app,
    login,
    make_staff,
    parent_opens_case,
    session_for,
    staff_settings,
    staffed_console,
)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    limits = {"lockout_threshold": 3, "lockout_minutes": 15, "idle_timeout_minutes": 30}
    async with staffed_console(settings, ("sato", "concierge"), names={"sato": "佐藤"}, **limits) as a:
        yield a


def audit_actions(app: FastAPI, actor: str | None = None) -> list[str]:
    with app.state.runtime.sessions() as s:
        rows = staffdb.audit_entries(s, actor=actor, limit=1000)
    return [r.action for r in reversed(rows)]


async def try_login(app: FastAPI, username: str, password: str) -> tuple[int, str]:
    async with client(app) as c:
        page = await c.get("/login")
        token = CSRF_RE.search(page.text)
        assert token is not None
        r = await c.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})
        return r.status_code, r.text


async def test_login_sets_a_hardened_session_cookie_and_lands_on_the_queue(app: FastAPI) -> None:
    async with client(app) as c:
        page = await c.get("/login")
        assert page.status_code == 200 and "職員ログイン" in page.text
        assert (
            page.headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        )
        token = CSRF_RE.search(page.text)
        assert token is not None
        r = await c.post(
            "/login", data={"username": "SATO", "password": PASSWORD, "csrf_token": token.group(1), "next": "/records"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/records"
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("kc_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie
        queue = await c.get("/cases")
        assert queue.status_code == 200 and "受付一覧" in queue.text and "佐藤" in queue.text
    assert audit_actions(app, "sato") == ["login", "view"]
    with app.state.runtime.sessions() as s:
        staff = staffdb.get_staff_by_username(s, username="sato")
        assert staff is not None and staff.password_hash.startswith("$argon2id$") and staff.last_login_at is not None


async def test_secure_cookies_when_configured(settings: Settings) -> None:
    s = staff_settings(settings, secure_cookies=True)
    rt = bootstrap(s, migrate=False)
    try:
        make_staff(rt.sessions, "sato", "concierge")
        async with console_app(s, rt) as application, client(application) as c:
            page = await c.get("/login")
            assert "Secure" in page.headers["set-cookie"]
            token = CSRF_RE.search(page.text)
            assert token is not None
            # httpx keeps Secure cookies to https: the login nonce is sent by hand here
            nonce = page.headers["set-cookie"].split(";")[0].split("=", 1)[1]
            r = await c.post(
                "/login",
                data={"username": "sato", "password": PASSWORD, "csrf_token": token.group(1)},
                headers={"cookie": f"kc_login={nonce}"},
            )
            assert r.status_code == 303
            assert all("Secure" in v for v in r.headers.get_list("set-cookie"))
    finally:
        rt.close()


async def test_login_form_needs_its_token(app: FastAPI) -> None:
    async with client(app) as c:
        await c.get("/login")
        r = await c.post("/login", data={"username": "sato", "password": PASSWORD, "csrf_token": "forged"})
        assert r.status_code == 403 and "kc_session" not in r.headers.get("set-cookie", "").split("=")[0]
    async with client(app) as c:  # no nonce cookie at all (a cross-site form post)
        r = await c.post("/login", data={"username": "sato", "password": PASSWORD, "csrf_token": "x"})
        assert r.status_code == 403
    assert "login" not in audit_actions(app)


async def test_wrong_password_and_unknown_user_get_the_same_answer(app: FastAPI) -> None:
    code, text = await try_login(app, "sato", "wrong-password-1")
    code2, text2 = await try_login(app, "nobody", "wrong-password-1")
    assert code == code2 == 401
    assert BAD_LOGIN in text and BAD_LOGIN in text2
    assert text.count(BAD_LOGIN) == 1  # said once, not twice
    with app.state.runtime.sessions() as s:
        entries = list(s.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]
    assert [(e.actor, e.action) for e in entries] == [("sato", "login_failed"), ("-", "login_failed")]
    assert all("wrong-password" not in (e.detail or "") and "nobody" not in (e.detail or "") for e in entries)


async def test_lockout_after_repeated_failures_then_expiry(app: FastAPI) -> None:
    for _ in range(3):
        code, _ = await try_login(app, "sato", "wrong-password-1")
        assert code == 401
    code, text = await try_login(app, "sato", PASSWORD)  # the right password does not help while locked
    assert code == 401 and BAD_LOGIN in text  # the same answer as a wrong password: nothing to enumerate
    assert audit_actions(app, "sato") == ["login_failed", "login_failed", "lockout", "login_locked"]
    with transaction(app.state.runtime.sessions) as s:
        staff = staffdb.get_staff_by_username(s, username="sato")
        assert staff is not None and staff.locked_until is not None
        staff.locked_until = utcnow() - dt.timedelta(seconds=1)
        s.add(staff)
    code, _ = await try_login(app, "sato", PASSWORD)
    assert code == 303


async def test_idle_session_expires_and_polls_do_not_keep_it_alive(app: FastAPI) -> None:
    me = await login(app, "sato")
    async with me:
        assert (await me.client.get("/cases")).status_code == 200
        age_sessions(app.state.runtime.sessions, "sato", 20)
        assert (await me.client.get("/cases/queue.json")).status_code == 200  # a poll: not activity
        age_sessions(app.state.runtime.sessions, "sato", 31)
        r = await me.client.get("/cases")
        assert r.status_code == 303 and r.headers["location"].endswith("&expired=1")
        page = await me.client.get(r.headers["location"])
        assert "一定時間操作がなかったため" in page.text
        assert (await me.client.get("/cases/queue.json")).status_code == 401
    assert audit_actions(app, "sato")[-1] == "session_expired"


async def test_activity_keeps_the_session(app: FastAPI) -> None:
    me = await session_for(app, "sato")
    async with me:
        age_sessions(app.state.runtime.sessions, "sato", 29)
        assert (await me.client.get("/cases")).status_code == 200  # counts as activity
        age_sessions(app.state.runtime.sessions, "sato", 0)
        assert (await me.client.get("/cases")).status_code == 200


async def test_logout_ends_the_session_server_side(app: FastAPI) -> None:
    me = await session_for(app, "sato")
    async with me:
        token = me.client.cookies.get("kc_session")
        r = await me.post("/logout")
        assert r.status_code == 303 and r.headers["location"] == "/login"
    async with client(app) as c:  # the old cookie, replayed
        c.cookies.set("kc_session", token or "")
        assert (await c.get("/cases")).status_code == 303


async def test_csrf_is_checked_on_every_form(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "csrf-parent")
    me = await session_for(app, "sato")
    other = await session_for(app, "sato")  # a second session: its token is not this session's
    async with me, other:
        for token in ("", "forged", other.csrf):
            r = await me.client.post(f"/cases/{case_id}/notes", data={"text": "メモ", "csrf_token": token})
            assert r.status_code == 403 and "送信を受け付けられません" in r.text
        r = await me.client.post(
            f"/cases/{case_id}/notes", data={"text": "ヘッダーで送るメモ"}, headers={"x-csrf-token": me.csrf}
        )
        assert r.status_code == 303
    with app.state.runtime.sessions() as s:
        notes = list(s.exec(select(InternalNote)))
    assert [n.text for n in notes] == ["ヘッダーで送るメモ"]


async def test_next_is_never_an_open_redirect(app: FastAPI) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        async with client(app) as c:
            page = await c.get("/login", params={"next": target})
            token = CSRF_RE.search(page.text)
            assert token is not None
            r = await c.post(
                "/login", data={"username": "sato", "password": PASSWORD, "csrf_token": token.group(1), "next": target}
            )
            assert r.headers["location"] == "/cases"


async def test_deactivated_staff_lose_their_sessions(app: FastAPI) -> None:
    me = await session_for(app, "sato")
    async with me:
        assert (await me.client.get("/cases")).status_code == 200
        with transaction(app.state.runtime.sessions) as s:
            staff = s.exec(select(StaffAccount).where(StaffAccount.username == "sato")).one()
            staffdb.update_staff(s, staff=staff, active=False)
        assert (await me.client.get("/cases")).status_code == 303
    code, _ = await try_login(app, "sato", PASSWORD)
    assert code == 401

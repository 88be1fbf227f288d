"""Login hardening (security review F5, F6): attempts are counted atomically before the password is checked, so
parallel guesses cannot pass the lockout threshold; throttling per account and per client address with a
doubling backoff; one answer for every failed login; the supervisor sees locked accounts and failing addresses."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bot.console.login import BAD_LOGIN
from bot.settings import Settings
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import utcnow
from tests.e2e.kit import CSRF_RE, PASSWORD, login, make_staff, staffed_console

THRESHOLD = 5


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    limits = {"lockout_threshold": THRESHOLD, "lockout_minutes": 15, "address_threshold": 12}
    async with staffed_console(settings, ("sato", "concierge"), ("boss", "supervisor"), **limits) as a:
        yield a


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def login_form(c: httpx.AsyncClient) -> str:
    page = await c.get("/login")
    token = CSRF_RE.search(page.text)
    assert token is not None
    return token.group(1)


async def attempt(app: FastAPI, username: str, password: str, *, address: str = "192.0.2.10") -> httpx.Response:
    async with client_from(app, address) as c:
        token = await login_form(c)
        return await c.post("/login", data={"username": username, "password": password, "csrf_token": token})


def actions(app: FastAPI, actor: str) -> list[str]:
    with app.state.runtime.sessions() as s:
        return [r.action for r in reversed(staffdb.audit_entries(s, actor=actor, limit=1000))]


def error_text(r: httpx.Response) -> str:
    """The page without its per-request tokens: what tells one failure from another, if anything."""
    return re.sub(r'value="[^"]{20,}"', "", r.text)


async def test_parallel_guesses_cannot_pass_the_threshold(app: FastAPI) -> None:
    """The review's attack: 59 wrong guesses in parallel, then the right password. The lost update on the
    counter let the right password in; now at most THRESHOLD guesses get a password check."""
    clients = [client_from(app, f"198.51.100.{i}") for i in range(59)]  # many addresses: the account lock alone
    try:
        tokens = await asyncio.gather(*(login_form(c) for c in clients))
        results = await asyncio.gather(
            *(
                c.post("/login", data={"username": "sato", "password": f"guess-{i}", "csrf_token": t})
                for i, (c, t) in enumerate(zip(clients, tokens, strict=True))
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    assert {r.status_code for r in results} == {401}
    r = await attempt(app, "sato", PASSWORD, address="203.0.113.7")
    assert r.status_code == 401 and BAD_LOGIN in r.text
    done = actions(app, "sato")
    checked = [a for a in done if a in ("login_failed", "lockout")]
    assert len(checked) == THRESHOLD and done.count("lockout") == 1
    assert done.count("login_locked") == 59 - THRESHOLD + 1


def test_attempts_are_reserved_atomically_across_threads(sessions: SessionFactory) -> None:
    """Storage level, on both databases: 40 threads reserving at once get exactly THRESHOLD attempts."""
    staff_id = make_staff(sessions, "sato", "concierge")
    now = utcnow()
    got: list[int | None] = []
    start = threading.Barrier(40)

    def reserve() -> None:
        start.wait()
        with transaction(sessions) as s:
            got.append(staffdb.reserve_login_attempt(s, staff_id=staff_id, threshold=THRESHOLD, now=now))

    threads = [threading.Thread(target=reserve) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(n for n in got if n is not None) == list(range(1, THRESHOLD + 1))
    assert got.count(None) == 40 - THRESHOLD


async def test_every_failure_gets_the_same_answer(app: FastAPI) -> None:
    """Wrong password, unknown user, locked account and blocked address look alike from outside."""
    wrong = await attempt(app, "sato", "wrong-password")
    unknown = await attempt(app, "nobody", "wrong-password")
    for _ in range(THRESHOLD):
        await attempt(app, "sato", "wrong-password", address="192.0.2.99")
    locked = await attempt(app, "sato", "wrong-password")
    locked_right = await attempt(app, "sato", PASSWORD)
    pages = {error_text(r) for r in (wrong, unknown, locked, locked_right)}
    assert len(pages) == 1 and BAD_LOGIN in pages.pop()
    assert {r.status_code for r in (wrong, unknown, locked, locked_right)} == {401}


async def test_an_address_spraying_passwords_is_blocked_with_backoff(app: FastAPI, settings: Settings) -> None:
    """Spraying below each account's threshold (a guess or two per username) is caught per address; another
    address is not affected; the next block after expiry lasts twice as long."""
    names = ["sato", "boss", "nobody", "admin", "suzuki", "tanaka"]
    for i in range(12):
        r = await attempt(app, names[i % len(names)], f"spray-{i}", address="192.0.2.66")
        assert r.status_code == 401
    r = await attempt(app, "boss", PASSWORD, address="192.0.2.66")  # the right password from the blocked address
    assert r.status_code == 401 and BAD_LOGIN in r.text
    r = await attempt(app, "boss", PASSWORD, address="192.0.2.67")
    assert r.status_code == 303
    with app.state.runtime.sessions() as s:
        row = s.get(staffdb.LoginThrottle, "192.0.2.66")
        assert row is not None and row.blocked_until is not None and row.blocks == 1
        first = row.blocked_until - row.last_failure_at
        sato = staffdb.get_staff_by_username(s, username="sato")
        assert sato is not None and not staffdb.is_locked(sato, now=utcnow())  # no account reached its threshold
    assert dt.timedelta(minutes=14) < first <= dt.timedelta(minutes=15)
    with transaction(app.state.runtime.sessions) as s:  # the block runs out
        row = s.get(staffdb.LoginThrottle, "192.0.2.66")
        assert row is not None
        row.blocked_until = utcnow() - dt.timedelta(seconds=1)
        s.add(row)
    for i in range(12):
        await attempt(app, names[i % len(names)], f"again-{i}", address="192.0.2.66")
    with app.state.runtime.sessions() as s:
        row = s.get(staffdb.LoginThrottle, "192.0.2.66")
        assert row is not None and row.blocked_until is not None and row.blocks == 2
        second = row.blocked_until - row.last_failure_at
    assert dt.timedelta(minutes=29) < second <= dt.timedelta(minutes=30)
    assert actions(app, "-").count("address_blocked") == 2


async def lock_then_expire(app: FastAPI, *, address: str, times: int, minutes: int) -> None:
    """Guess until sato is locked (for the `times`-th time, for `minutes`), then let the lockout run out."""
    for _ in range(THRESHOLD):
        await attempt(app, "sato", "wrong", address=address)
    with transaction(app.state.runtime.sessions) as s:
        sato = staffdb.get_staff_by_username(s, username="sato")
        assert sato is not None and sato.locked_until is not None and sato.lockouts == times
        assert dt.timedelta(minutes=minutes - 1) < sato.locked_until - utcnow() <= dt.timedelta(minutes=minutes)
        sato.locked_until = utcnow() - dt.timedelta(seconds=1)
        s.add(sato)


async def test_an_ipv6_client_counts_by_its_64_prefix(app: FastAPI) -> None:
    """Rotating through the addresses of one /64 does not escape the address limit."""
    for i in range(12):
        await attempt(app, f"user{i}", "wrong", address=f"2001:db8:1:2::{i + 1:x}")
    r = await attempt(app, "boss", PASSWORD, address="2001:db8:1:2::ffff")
    assert r.status_code == 401
    assert (await attempt(app, "boss", PASSWORD, address="2001:db8:1:3::1")).status_code == 303
    with app.state.runtime.sessions() as s:
        assert s.get(staffdb.LoginThrottle, "2001:db8:1:2::/64") is not None


async def test_account_lockouts_double(app: FastAPI) -> None:
    await lock_then_expire(app, address="192.0.2.1", times=1, minutes=15)
    await lock_then_expire(app, address="192.0.2.2", times=2, minutes=30)
    sessions = app.state.runtime.sessions
    assert (await attempt(app, "sato", PASSWORD)).status_code == 303  # success resets the backoff
    with sessions() as s:
        sato = staffdb.get_staff_by_username(s, username="sato")
        assert sato is not None and sato.lockouts == 0 and sato.failed_logins == 0


async def test_the_supervisor_sees_locked_accounts_and_failing_addresses(app: FastAPI) -> None:
    for _ in range(THRESHOLD):
        await attempt(app, "sato", "wrong", address="192.0.2.5")
    for i in range(12):
        await attempt(app, f"user{i}", "wrong", address="192.0.2.77")
    boss = await login(app, "boss")
    async with boss:
        page = await boss.client.get("/staff")
        assert page.status_code == 200
        watch = page.text.split('id="login-watch"', 1)[1].split("</section>", 1)[0]
        assert "ロック中のアカウント" in watch and "sato" in watch
        assert "192.0.2.77" in watch and "ブロック中" in watch and "192.0.2.5" in watch
        r = await boss.post("/staff/addresses/unblock", {"address": "192.0.2.77"})
        assert r.status_code == 303
    assert "view" in actions(app, "boss") and "unblock" in actions(app, "boss")
    assert (await attempt(app, "boss", PASSWORD, address="192.0.2.77")).status_code == 303
    concierge = await attempt(app, "sato", PASSWORD, address="192.0.2.200")
    assert concierge.status_code == 401  # still locked: only the supervisor's unlock or time lifts it

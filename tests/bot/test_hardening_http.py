"""The HTTP shell (security review F12, F13): security headers on every response, Japanese error pages for
browsers and JSON for JSON requests, no public API description, no server banner; slow or incomplete requests
time out under the real uvicorn, and a client that goes away is logged in one line."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bot.app import create_app
from bot.console.core import SECURITY_HEADERS
from bot.hardening import server_options
from bot.runtime import bootstrap
from bot.settings import HttpSettings, Settings
from tests.e2e.kit import client, free_port, login, settle, staff_settings, staffed_console

HEADERS = [k.lower() for k in SECURITY_HEADERS if k != "Cache-Control"]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, ("sato", "concierge")) as a:

        @a.get("/boom-for-test")
        def boom() -> None:
            raise RuntimeError("a bug")

        yield a


def assert_hardened(r: httpx.Response, what: str) -> None:
    for name in HEADERS:
        assert name in r.headers, f"{what}: no {name}"
    assert "cache-control" in r.headers, what
    assert "server" not in r.headers, what


async def test_every_kind_of_response_carries_the_security_headers(app: FastAPI) -> None:
    async with client(app) as anon:
        assert_hardened(await anon.get("/login"), "page")
        redirect = await anon.get("/cases")
        assert redirect.status_code == 303
        assert_hardened(redirect, "redirect")
        unauth_json = await anon.get("/cases/queue.json")
        assert unauth_json.status_code == 401
        assert_hardened(unauth_json, "401 json")
        health = await anon.get("/healthz")
        assert health.status_code == 200
        assert_hardened(health, "health")
        static = await anon.get("/static/console/console.css")
        assert static.status_code == 200 and static.headers["cache-control"] == "no-cache"
        assert_hardened(static, "static")
        missing = await anon.get("/no-such-page", headers={"accept": "text/html"})
        assert missing.status_code == 404
        assert_hardened(missing, "404")
        not_allowed = await anon.put("/login")
        assert not_allowed.status_code == 405
        assert_hardened(not_allowed, "405")
    async with client(app) as c:
        c._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        crash = await c.get("/boom-for-test", headers={"accept": "text/html"})
        assert crash.status_code == 500 and crash.headers["content-type"].startswith("text/html")
        assert "エラーが発生しました" in crash.text and "RuntimeError" not in crash.text
        assert_hardened(crash, "500")
    me = await login(app, "sato")
    async with me:
        poll = await me.client.get("/cases/queue.json")
        assert poll.status_code == 200
        assert_hardened(poll, "json poll")
        assert_hardened(await me.post("/logout"), "logout redirect")


async def test_errors_are_japanese_pages_for_browsers_and_json_for_json(app: FastAPI) -> None:
    async with client(app) as anon:
        page = await anon.get("/no-such-page", headers={"accept": "text/html,application/xhtml+xml"})
        assert page.headers["content-type"].startswith("text/html") and "見つかりません" in page.text
        assert '<html lang="ja">' in page.text and "detail" not in page.text
        late = await anon.post("/logout", headers={"accept": "text/html"})  # a form sent after the session ended
        assert late.status_code == 401 and late.headers["content-type"].startswith("text/html")
        assert "ログインしてください" in late.text
        poll = await anon.post("/logout", headers={"accept": "application/json"})
        assert poll.status_code == 401 and poll.json()["error"] == "not authenticated"
        api = await anon.get("/no-such-page", headers={"accept": "application/json"})
        assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
        assert api.json() == {"error": "見つかりません"}
        bad = await anon.get("/login", params={"next": "/x"}, headers={"accept": "text/html"})
        assert bad.status_code == 200


async def test_no_public_api_description(app: FastAPI) -> None:
    async with client(app) as anon:
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            r = await anon.get(path)
            assert r.status_code == 404, path
            assert "paths" not in r.text


# ----- under the real uvicorn, with the settings `concierge serve` uses

LIMITS = HttpSettings(
    head_timeout_seconds=1.0,
    body_timeout_seconds=1.0,
    keep_alive_seconds=1.0,
    limit_concurrency=6,
    max_head_bytes=4096,
)


@contextmanager
def served(settings: Settings) -> Iterator[int]:
    s = staff_settings(settings).model_copy(update={"http": LIMITS})
    rt = bootstrap(s, migrate=False)
    application = create_app(s, runtime=rt)
    port = free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="info", lifespan="on", **server_options(s)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        settle()
        rt.close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_all(sock: socket.socket, limit: float = 8.0) -> tuple[bytes, float]:
    """Everything until the server closes; and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - start


def test_no_server_banner_under_uvicorn(settings: Settings) -> None:
    with served(settings) as port:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert r.status_code == 200 and "server" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"


def test_slow_or_incomplete_requests_time_out(settings: Settings) -> None:
    with served(settings) as port:
        idle = connect(port)  # connects and says nothing
        data, took = read_all(idle)
        assert data == b"" and took < 4, took
        idle.close()

        trickle = connect(port)  # the headers a byte at a time: the deadline is not extended by each byte
        start = time.monotonic()
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        closed = False
        for byte in head:
            try:
                trickle.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - start > 6:
                break
        if not closed:
            data, _ = read_all(trickle, 4)
            assert b"200 OK" not in data
        assert time.monotonic() - start < 6
        trickle.close()

        slow_body = connect(port)  # a body that never completes gets 408 and the connection is closed
        slow_body.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nusername=sato"
        )
        data, took = read_all(slow_body)
        assert data.startswith(b"HTTP/1.1 408"), data[:100]
        assert "時間切れです".encode() in data and took < 4
        slow_body.close()

        kept = connect(port)  # an idle kept-alive connection is closed after keep_alive_seconds
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, took = read_all(kept)
        assert data.startswith(b"HTTP/1.1 200") and took < 4
        kept.close()


def test_connections_beyond_the_limit_get_503(settings: Settings) -> None:
    with served(settings) as port:
        held = [connect(port) for _ in range(LIMITS.limit_concurrency)]
        try:
            time.sleep(0.2)  # let the server accept them
            extra = connect(port)
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = read_all(extra)
            assert data.startswith(b"HTTP/1.1 503"), data[:80]
            extra.close()
        finally:
            for sock in held:
                sock.close()


def test_oversized_headers_are_refused(settings: Settings) -> None:
    with served(settings) as port, connect(port) as sock:  # a head larger than the limit, arriving in parts
        try:
            for part in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 3000, b"a" * 3000, b"\r\n\r\n"):
                sock.sendall(part)
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, _ = read_all(sock)
        assert data.startswith(b"HTTP/1.1 400"), data[:80]


def test_a_client_disconnect_is_one_log_line(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with served(settings) as port:
        sock = connect(port)
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000\r\n\r\nusername=sato"
        )
        time.sleep(0.2)
        sock.close()
        deadline = time.monotonic() + 5
        while not any("client disconnected" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
    lines = [r for r in caplog.records if "disconnect" in r.getMessage().lower()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info is not None or "Traceback" in r.getMessage()]
    assert not [r for r in caplog.records if "ClientDisconnect" in r.getMessage()]

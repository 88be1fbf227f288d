"""The web app's outer shell: security headers on every response, Japanese error pages (JSON only for JSON
requests), 400 instead of 500 for values out of range, a deadline for reading a request body, one log line for
a client that went away, and the uvicorn options that bound slow or incomplete requests.

`install(app, settings)` wires the middleware and error handlers; `server_options(settings)` is what
`concierge serve` passes to uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.console import STATIC_PATH
from bot.console.bounds import BadValueError
from bot.console.core import SECURITY_HEADERS, get_console, wants_json
from bot.settings import Settings

log = logging.getLogger("concierge.http")

# (title, message) of the error page per status; anything else gets the generic pair
ERRORS: dict[int, tuple[str, str]] = {
    400: ("入力内容を確認してください", "番号や日付が扱える範囲の外にあるか、形式が正しくありません。"),
    404: ("見つかりません", "お探しのページは見つかりませんでした。"),
    405: ("この操作はできません", "このページではこの操作を受け付けていません。"),
    408: ("時間切れです", "送信に時間がかかりすぎたため、受け付けられませんでした。もう一度お試しください。"),
    413: ("送信内容が大きすぎます", "送信できる大きさを超えています。"),
    500: ("エラーが発生しました", "処理中にエラーが発生しました。時間をおいてもう一度お試しください。"),
    503: ("ただいま混み合っています", "しばらくしてからもう一度お試しください。"),
}
GENERIC = ("リクエストを処理できませんでした", "もう一度お試しください。")
_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"]


class BodyTimeoutError(Exception):
    """The request body did not arrive within the deadline."""


class SecurityHeaders:
    """Adds the security headers to every response (pages, JSON, errors, redirects, static files, health)
    that does not set them itself. Static files may be cached (revalidated); nothing else is."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra = [(b"strict-transport-security", b"max-age=31536000")] if hsts else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PATH + "/")
        cache = b"no-cache" if static else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in (*_HEADERS, *self.extra) if k not in have]
                if b"cache-control" not in have:
                    headers.append((b"cache-control", cache))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyDeadline:
    """A request's body must arrive within `seconds` of the request's start (a slow or stalled upload would
    otherwise hold a worker and a connection for ever); the app then sees `BodyTimeoutError` and answers 408.
    Only reading the body is timed: waiting for a disconnect after it is not."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        done = False

        async def timed_receive() -> Message:
            nonlocal done
            if done:
                return await receive()
            try:
                # never less than a moment: a message already waiting (the rest of the body, or a disconnect)
                # is delivered even when the app comes to read it late
                message = await asyncio.wait_for(receive(), timeout=max(0.05, deadline - loop.time()))
            except TimeoutError:
                raise BodyTimeoutError() from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        await self.app(scope, timed_receive, send)


def error_response(request: Request, status: int, *, headers: Mapping[str, str] | None = None) -> Response:
    """The error answer: JSON for JSON requests, otherwise the console's Japanese page."""
    title, message = ERRORS.get(status, GENERIC)
    if wants_json(request):
        return JSONResponse({"error": title}, status_code=status, headers=dict(headers or {}))
    response = get_console(request).render(request, "error.html", status_code=status, title=title, message=message)
    response.headers.update(headers or {})
    return response


def install(app: FastAPI, settings: Settings) -> None:
    """Error handlers and the outer middleware. Call after the console is mounted."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI turns any failure while reading a declared form body into a 400: look at the cause
        if isinstance(exc.__cause__, BodyTimeoutError):
            return await body_timeout(request, exc.__cause__)
        if isinstance(exc.__cause__, ClientDisconnect):
            return await disconnected(request, exc.__cause__)
        return error_response(request, exc.status_code, headers=exc.headers)

    async def bad_value(request: Request, exc: Exception) -> Response:
        # a parameter that fails validation, or one that passed it but does not fit the database or the
        # calendar (an id past 64 bits, a year past 9999): the client's mistake, never a 500
        log.info("refused a value out of range: %s %s (%s)", request.method, request.url.path, type(exc).__name__)
        return error_response(request, 400)

    async def body_timeout(request: Request, exc: Exception) -> Response:
        log.info("request body not received in time: %s %s", request.method, request.url.path)
        return error_response(request, 408, headers={"Connection": "close"})

    async def disconnected(request: Request, exc: Exception) -> Response:
        # the client went away while we read its body: one line, not a traceback; nobody reads the answer
        log.info("client disconnected before its request was read: %s %s", request.method, request.url.path)
        return Response(status_code=400, headers={"Connection": "close"})

    async def server_error(request: Request, exc: Exception) -> Response:
        # runs outside the middleware (Starlette's ServerErrorMiddleware), so the headers are added here; the
        # traceback is still logged by the server
        response = error_response(request, 500)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app.add_exception_handler(StarletteHTTPException, http_error)

    async def statement_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StatementError)
        if isinstance(exc.orig, OverflowError | ValueError):  # a bound value the driver cannot represent
            return await bad_value(request, exc)
        raise exc

    for kind in (RequestValidationError, BadValueError, OverflowError, DataError):
        app.add_exception_handler(kind, bad_value)
    app.add_exception_handler(StatementError, statement_error)
    app.add_exception_handler(BodyTimeoutError, body_timeout)
    app.add_exception_handler(ClientDisconnect, disconnected)
    app.add_exception_handler(Exception, server_error)
    app.add_middleware(BodyDeadline, seconds=settings.http.body_timeout_seconds)
    app.add_middleware(SecurityHeaders, hsts=settings.console.secure_cookies)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's head: uvicorn times out only idle kept-alive
    connections, so a client that connects and sends nothing (or its headers a byte at a time) kept its
    connection for ever. The deadline runs from the connection (or the end of the previous response) and is
    not extended by further bytes."""

    def __init__(self, *args: Any, head_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        waiting = self.cycle is None or self.cycle.response_complete  # still waiting for a request's head
        if waiting and not self.transport.is_closing():
            log.info("connection closed: request headers not received within %.0f s", self.head_timeout)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle:
            self._arm_head_timer()  # bytes of a new request: its head has to be complete in time
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_head_timer()  # the head is in: the body deadline (BodyDeadline) takes over

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm_head_timer()  # uvicorn's keep-alive timeout covers the idle time until the next request

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for `concierge serve` (and the tests that run the real server)."""
    conf = settings.http
    return {
        "http": functools.partial(TimedH11Protocol, head_timeout=conf.head_timeout_seconds),
        "timeout_keep_alive": max(1, round(conf.keep_alive_seconds)),
        "limit_concurrency": conf.limit_concurrency,
        "h11_max_incomplete_event_size": conf.max_head_bytes,
        "server_header": False,  # no "server: uvicorn" banner
        "timeout_graceful_shutdown": 20,
    }

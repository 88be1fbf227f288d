"""Logging for operations: one line per event, text or JSON (`LOG__FORMAT`), each with its request id.

- `RequestId` (pure ASGI middleware) takes the caller's `X-Request-ID` when it is a plain token (a reverse
  proxy's `$request_id`), otherwise makes one, sends it back in the response and puts it on every line logged
  while the request is handled; at the end it logs one access line: method, route template, status, duration.
  The route *template* (`/cases/{case_id}`), never the raw path or query string, which may carry an address.
- Formatters put a record on one line: newlines in a message are escaped, and an exception is logged as its
  class name and the stack of file:line:function, never its message (a database error quotes the parameters
  it was given, which can be a parent's text).
Our own modules already log ids and class names only; uvicorn's access log (client address, raw path) is
replaced by the line above.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import time
import traceback
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.settings import LogSettings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
QUIET_ROUTES = frozenset({"/healthz", "/metrics"})  # scraped every few seconds: logged at DEBUG
ACCESS = logging.getLogger("concierge.http")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def _stack(record: logging.LogRecord) -> tuple[str | None, str | None]:
    if not record.exc_info or record.exc_info[0] is None:
        return None, None
    kind, _, tb = record.exc_info
    frames = " < ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in reversed(traceback.extract_tb(tb))
    )
    return kind.__name__, frames


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "msg": record.getMessage(),
        }
        kind, frames = _stack(record)
        if kind is not None:
            obj["exc"] = kind
            obj["stack"] = frames
        return json.dumps(obj, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: Any) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        kind, frames = _stack(record)
        if kind is not None:
            line += f" exc={kind} at {frames}"
        return line.replace("\r", "\\r").replace("\n", "\\n")


def formatter(conf: LogSettings) -> logging.Formatter:
    return JsonFormatter() if conf.format == "json" else TextFormatter()


def configure(conf: LogSettings) -> None:
    """The process's logging: one handler on the root logger; uvicorn's loggers go through it too."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(conf))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(conf.level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)  # follow LOG__LEVEL
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True  # replaced by RequestId's line (no client address, no raw path)


class RequestId:
    """Gives every HTTP request an id (on its log lines and in `X-Request-ID`) and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = {"code": 500}
        started = time.perf_counter()

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, stamp)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(no route)"
            level = logging.DEBUG if template in QUIET_ROUTES else logging.INFO
            ms = (time.perf_counter() - started) * 1000
            ACCESS.log(level, "%s %s %d %.1fms", scope.get("method", "-"), template, status["code"], ms)
            request_id.reset(token)

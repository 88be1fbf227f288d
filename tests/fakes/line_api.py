"""A fake LINE Messaging API: a real HTTP server on 127.0.0.1 (aiohttp, in its own thread) that the real
line-bot-sdk talks to when `Configuration(host=fake.url)`.

It checks what LINE checks and we rely on (the bearer token, 1..5 messages, text ≤ 5,000 UTF-16 units,
≤ 13 quick-reply items with labels ≤ 20 and postback data ≤ 300, flex altText, URI schemes, rich menu
size/areas/image), rejects reply tokens it did not issue or that were used, answers 409 to a repeated
`X-Line-Retry-Key` (push, multicast, broadcast), and can be told to fail or stall the next N calls. Multicast
(≤ 500 ids), broadcast and the monthly quota endpoints are there for notices; `rate_limit()` answers 429 with
LINE's body above N requests per second (a sliding one-second window). Bodies are the documented ones so
the SDK's models parse them. `python -m tests.fakes.line_api --port 8090` runs it alone (benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

TOKEN = "test-channel-access-token"
SECRET = "test-channel-secret"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "line"
MESSAGE_TYPES = {"text", "sticker", "image", "video", "audio", "location", "imagemap", "template", "flex"}
URI_SCHEMES = ("http://", "https://", "tel:", "mailto:", "line://")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class _Rule:
    status: int | None  # None: stall only
    remaining: int
    prefix: str
    delay: float = 0.0


@dataclass
class Sent:
    """One message object as a chat received it, in order."""

    chat: str
    via: str  # reply | push
    message: dict[str, Any]


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    loading: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # issued reply token -> chat id
    used_tokens: set[str] = field(default_factory=set)
    retry_keys: dict[str, str] = field(default_factory=dict)  # accepted key -> request id
    rules: list[_Rule] = field(default_factory=list)
    rich_menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    default_rich_menu: str | None = None
    multicasts: list[dict[str, Any]] = field(default_factory=list)  # accepted bodies, with the retry key
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)  # monotonic times of accepted multicasts
    limited: int = 0  # calls answered 429 by the rate limit
    usage: int = 0  # messages counted against the monthly quota
    late: list[_Rule] = field(default_factory=list)  # handled at once, answered late
    arrived: list[str] = field(default_factory=list)  # paths of requests as they arrive (before any answer)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # one per accepted reply or push request


class FakeLineAPI:
    def __init__(
        self, token: str = TOKEN, *, host: str = "127.0.0.1", port: int = 0, strict_tokens: bool = True
    ) -> None:
        self.token = token
        self.strict_tokens = strict_tokens  # False: any unused reply token is good (benchmarks)
        self.host = host
        self.port = port
        self._state = _State()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.quota: int | None = None  # None: type "none" (unlimited)
        self.followers = 0  # what a broadcast reaches and counts against the quota
        self._rate: float | None = None
        self._rate_prefix = "/v2/bot/message/multicast"
        self._recent: list[float] = []
        self.latency = 0.0  # seconds every message call is answered late (handled at once, as LINE would)

    # ----- lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeLineAPI:
        self._thread = threading.Thread(target=self._run, name="fake-line-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake LINE API did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeLineAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[self._timing])
        app.router.add_post("/v2/bot/message/reply", self._reply)
        app.router.add_post("/v2/bot/message/push", self._push)
        app.router.add_post("/v2/bot/message/multicast", self._multicast)
        app.router.add_post("/v2/bot/message/broadcast", self._broadcast)
        app.router.add_get("/v2/bot/message/quota", self._quota)
        app.router.add_get("/v2/bot/message/quota/consumption", self._consumption)
        app.router.add_get("/__notices", self._notice_stats)
        app.router.add_post("/v2/bot/chat/loading/start", self._loading)
        app.router.add_post("/v2/bot/richmenu", self._create_rich_menu)
        app.router.add_post("/v2/bot/richmenu/{id}/content", self._rich_menu_image)
        app.router.add_delete("/v2/bot/richmenu/{id}", self._delete_rich_menu)
        app.router.add_post("/v2/bot/user/all/richmenu/{id}", self._set_default)
        app.router.add_get("/v2/bot/user/all/richmenu", self._get_default)
        app.router.add_get("/__stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._ready.set()
        await self._stop.wait()
        await self._runner.cleanup()

    # ----- test controls
    def issue_token(self, chat_id: str) -> str:
        """A reply token as a webhook event would carry it, valid once for `chat_id`."""
        token = uuid.uuid4().hex
        with self._lock:
            self._state.tokens[token] = chat_id
        return token

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._state.used_tokens.add(token)

    def fail_next(self, status: int, count: int = 1, path: str = "/v2/bot/message") -> None:
        """The next `count` calls under `path` answer `status` (and do nothing)."""
        with self._lock:
            self._state.rules.append(_Rule(status, count, path))

    def stall_next(self, seconds: float, count: int = 1, path: str = "/v2/bot/message") -> None:
        """The next `count` calls under `path` are handled normally, but answered `seconds` late."""
        with self._lock:
            self._state.rules.append(_Rule(None, count, path, delay=seconds))

    def answer_late_next(self, seconds: float, count: int = 1, path: str = "/v2/bot/message") -> None:
        """The next `count` calls under `path` take effect at once but are answered `seconds` late (a caller
        killed meanwhile never learns that LINE accepted them; aiohttp lets the handler finish)."""
        with self._lock:
            self._state.late.append(_Rule(None, count, path, delay=seconds))

    def arrived(self, path: str = "/v2/bot/message") -> int:
        """How many calls under `path` have arrived, answered or not."""
        with self._lock:
            return sum(1 for p in self._state.arrived if p.startswith(path))

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Accepted reply and push requests: via, chat, reply token or retry key (duplicates show here)."""
        with self._lock:
            return list(self._state.accepted)

    def rate_limit(self, per_second: float | None, path: str = "/v2/bot/message/multicast") -> None:
        """Calls under `path` beyond `per_second` in any one-second window get 429 (None: no limit)."""
        with self._lock:
            self._rate = per_second
            self._rate_prefix = path
            self._recent = []

    def reset(self) -> None:
        with self._lock:
            self._state = _State()
            self._recent = []

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._state.calls)

    @property
    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.replies)

    @property
    def pushes(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.pushes)

    @property
    def loading(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.loading)

    @property
    def rich_menus(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._state.rich_menus)

    @property
    def images(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._state.images)

    @property
    def default_rich_menu(self) -> str | None:
        with self._lock:
            return self._state.default_rich_menu

    @property
    def multicasts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.multicasts)

    @property
    def broadcasts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.broadcasts)

    @property
    def limited(self) -> int:
        with self._lock:
            return self._state.limited

    def multicast_ids(self) -> list[str]:
        """Every user id of every accepted multicast, repeats included (a repeat is a duplicate delivery)."""
        with self._lock:
            return [uid for body in self._state.multicasts for uid in body["to"]]

    def received(self, chat_id: str) -> list[Sent]:
        """Every message object that reached `chat_id`, by reply or push, in arrival order."""
        with self._lock:
            return [s for s in self._state.sent if s.chat == chat_id]

    def texts(self, chat_id: str) -> list[str]:
        return [s.message["text"] for s in self.received(chat_id) if s.message["type"] == "text"]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Block until `predicate(self)` is true (for tests against a running app's own loop)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError("the fake LINE API did not see what was expected")
            time.sleep(0.02)

    # ----- plumbing
    @web.middleware
    async def _timing(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._locked() as st:
            st.arrived.append(request.path)
            rule = next((r for r in st.late if r.remaining > 0 and request.path.startswith(r.prefix)), None)
            if rule is not None:
                rule.remaining -= 1
            st.late = [r for r in st.late if r.remaining > 0]
        response: web.StreamResponse = await handler(request)
        delay = (rule.delay if rule is not None else 0.0) + (
            self.latency if request.path.startswith("/v2/bot/message") else 0.0
        )
        if delay:
            await asyncio.sleep(delay)
        return response

    @contextmanager
    def _locked(self) -> Iterator[_State]:
        with self._lock:
            yield self._state

    async def _prelude(self, request: web.Request) -> tuple[web.Response | None, Any]:
        """Auth, injected faults and delays; returns (an early response or None, the parsed body)."""
        raw = await request.read()
        body: Any
        try:
            body = json.loads(raw) if raw and "json" in (request.content_type or "") else raw
        except ValueError:
            body = None
        rule: _Rule | None = None
        with self._locked() as st:
            for r in st.rules:
                if r.remaining > 0 and request.path.startswith(r.prefix):
                    r.remaining -= 1
                    rule = r
                    break
            st.rules = [r for r in st.rules if r.remaining > 0]
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._record(
                request, body, _error(401, "Authentication failed. Confirm that the access token")
            ), body
        if rule is not None and rule.delay:
            await asyncio.sleep(rule.delay)
        if rule is not None and rule.status is not None:
            return self._record(request, body, _error(rule.status, f"injected failure {rule.status}")), body
        if body is None:
            return self._record(request, body, _error(400, "The request body has 1 error(s)")), body
        return None, body

    def _record(self, request: web.Request, body: Any, response: web.Response) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._locked() as st:
            st.calls.append(Call(request.method, request.path, response.status, headers, body))
        response.headers.setdefault("x-line-request-id", str(uuid.uuid4()))
        return response

    # ----- messaging
    async def _reply(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        problems = _check_messages(body)
        token = body.get("replyToken") if isinstance(body, dict) else None
        if problems:
            return self._record(request, body, _error(400, "The request body has errors", problems))
        with self._locked() as st:
            chat = st.tokens.get(token) if isinstance(token, str) else None
            if chat is None and not self.strict_tokens and isinstance(token, str):
                chat = "?"
            if chat is None or not isinstance(token, str) or token in st.used_tokens:
                bad = True
            else:
                bad = False
                st.used_tokens.add(token)
                st.replies.append(body)
                st.sent += [Sent(chat, "reply", m) for m in body["messages"]]
                st.accepted.append({"via": "reply", "chat": chat, "token": token})
        if bad:
            return self._record(request, body, _error(400, "Invalid reply token"))
        return self._record(request, body, _sent(body["messages"]))

    async def _push(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        problems = _check_messages(body)
        to = body.get("to") if isinstance(body, dict) else None
        if not isinstance(to, str) or not re.fullmatch(r"[UCR][0-9a-f]{32}", to):
            problems.append({"message": "invalid 'to'", "property": "to"})
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                problems.append({"message": "The retry key must be a UUID", "property": "X-Line-Retry-Key"})
        if problems:
            return self._record(request, body, _error(400, "The request body has errors", problems))
        request_id = str(uuid.uuid4())
        with self._locked() as st:
            accepted = st.retry_keys.get(key) if key else None
            if accepted is None:
                if key:
                    st.retry_keys[key] = request_id
                st.pushes.append({**body, "retry_key": key})
                st.sent += [Sent(str(to), "push", m) for m in body["messages"]]
                st.accepted.append({"via": "push", "chat": to, "retry_key": key})
        if accepted is not None:
            response = web.json_response(
                {"message": "The retry key is already accepted", "sentMessages": _sent_list(body["messages"])},
                status=409,
            )
            response.headers["x-line-accepted-request-id"] = accepted
            return self._record(request, body, response)
        response = _sent(body["messages"])
        response.headers["x-line-request-id"] = request_id
        return self._record(request, body, response)

    def _over_rate(self, path: str) -> bool:
        with self._lock:
            if self._rate is None or not path.startswith(self._rate_prefix):
                return False
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < 1.0]
            if len(self._recent) >= self._rate:
                self._state.limited += 1
                return True
            self._recent.append(now)
            return False

    def _retry_key_problems(self, request: web.Request) -> list[dict[str, str]]:
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None:
            try:
                uuid.UUID(key)
            except ValueError:
                return [{"message": "The retry key must be a UUID", "property": "X-Line-Retry-Key"}]
        return []

    def _already(self, request: web.Request, body: Any, accepted: str) -> web.Response:
        response = web.json_response({"message": "The retry key is already accepted"}, status=409)
        response.headers["x-line-accepted-request-id"] = accepted
        return self._record(request, body, response)

    async def _multicast(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        if self._over_rate(request.path):
            return self._record(request, body, _error(429, "The API rate limit has been exceeded. Try again later."))
        problems = _check_messages(body)
        to = body.get("to") if isinstance(body, dict) else None
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            problems.append({"message": "Size must be between 1 and 500", "property": "to"})
        elif not all(isinstance(u, str) and re.fullmatch(r"U[0-9a-f]{32}", u) for u in to):
            problems.append({"message": "invalid user id", "property": "to"})
        problems += self._retry_key_problems(request)
        if problems:
            return self._record(request, body, _error(400, "The request body has errors", problems))
        assert isinstance(to, list)
        key = request.headers.get("X-Line-Retry-Key")
        request_id = str(uuid.uuid4())
        with self._locked() as st:
            accepted = st.retry_keys.get(key) if key else None
            over = self.quota is not None and st.usage + len(to) * len(body["messages"]) > self.quota
            if accepted is None and not over:
                if key:
                    st.retry_keys[key] = request_id
                st.usage += len(to) * len(body["messages"])
                st.multicasts.append({**body, "retry_key": key})
                st.accepted_at.append(time.monotonic())
                st.sent += [Sent(str(u), "multicast", m) for u in to for m in body["messages"]]
        if accepted is not None:
            return self._already(request, body, accepted)
        if over:
            return self._record(request, body, _error(429, "You have reached your monthly limit."))
        response = web.json_response({}, status=200)
        response.headers["x-line-request-id"] = request_id
        return self._record(request, body, response)

    async def _broadcast(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        if self._over_rate(request.path):
            return self._record(request, body, _error(429, "The API rate limit has been exceeded. Try again later."))
        problems = _check_messages(body) + self._retry_key_problems(request)
        if problems:
            return self._record(request, body, _error(400, "The request body has errors", problems))
        key = request.headers.get("X-Line-Retry-Key")
        request_id = str(uuid.uuid4())
        with self._locked() as st:
            accepted = st.retry_keys.get(key) if key else None
            if accepted is None:
                if key:
                    st.retry_keys[key] = request_id
                st.usage += self.followers * len(body["messages"])
                st.broadcasts.append({**body, "retry_key": key})
                st.sent += [Sent("*broadcast*", "broadcast", m) for m in body["messages"]]
        if accepted is not None:
            return self._already(request, body, accepted)
        response = web.json_response({}, status=200)
        response.headers["x-line-request-id"] = request_id
        return self._record(request, body, response)

    async def _quota(self, request: web.Request) -> web.Response:
        early, _ = await self._prelude(request)
        if early is not None:
            return early
        body: dict[str, Any] = {"type": "none"} if self.quota is None else {"type": "limited", "value": self.quota}
        return self._record(request, None, web.json_response(body))

    async def _consumption(self, request: web.Request) -> web.Response:
        early, _ = await self._prelude(request)
        if early is not None:
            return early
        with self._locked() as st:
            usage = st.usage
        return self._record(request, None, web.json_response({"totalUsage": usage}))

    async def _notice_stats(self, request: web.Request) -> web.Response:
        """Multicast figures for a benchmark in another process (not part of LINE's API)."""
        with self._locked() as st:
            ids = [uid for body in st.multicasts for uid in body["to"]]
            times = list(st.accepted_at)
            limited = st.limited
        return web.json_response(
            {
                "requests": len(times),
                "ids": len(ids),
                "unique_ids": len(set(ids)),
                "first": times[0] if times else None,
                "last": times[-1] if times else None,
                "limited": limited,
                "id_list": ids if request.query.get("ids") else None,
            }
        )

    async def _loading(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        seconds = body.get("loadingSeconds", 5) if isinstance(body, dict) else None
        chat = body.get("chatId") if isinstance(body, dict) else None
        if not isinstance(chat, str) or not chat.startswith("U") or seconds not in range(5, 61, 5):
            return self._record(request, body, _error(400, "The request body has 1 error(s)"))
        with self._locked() as st:
            st.loading.append(body)
        return self._record(request, body, web.json_response({}, status=202))

    async def _stats(self, request: web.Request) -> web.Response:
        """Counts for a benchmark running in another process (not part of LINE's API)."""
        with self._locked() as st:
            counts = {"replies": len(st.replies), "pushes": len(st.pushes), "loading": len(st.loading)}
            counts["messages"] = len(st.sent)
            accepted = list(st.accepted) if request.query.get("accepted") else None
        if accepted is not None:  # every accepted reply/push request: duplicates are counted from these
            return web.json_response({**counts, "accepted": accepted})
        return web.json_response(counts)

    # ----- rich menus
    async def _create_rich_menu(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        problems = _check_rich_menu(body)
        if problems:
            return self._record(request, body, _error(400, "The request body has errors", problems))
        menu_id = "richmenu-" + uuid.uuid4().hex
        with self._locked() as st:
            st.rich_menus[menu_id] = body
        return self._record(request, body, web.json_response({"richMenuId": menu_id}))

    async def _rich_menu_image(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        menu_id = request.match_info["id"]
        with self._locked() as st:
            menu = st.rich_menus.get(menu_id)
        if menu is None:
            return self._record(request, b"", _error(404, "Not found"))
        data = body if isinstance(body, bytes) else b""
        problem = _check_image(data, request.content_type, menu["size"])
        if problem:
            return self._record(request, b"", _error(400, problem))
        with self._locked() as st:
            st.images[menu_id] = data
        return self._record(request, f"<{len(data)} bytes>", web.json_response({}))

    async def _delete_rich_menu(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        with self._locked() as st:
            found = st.rich_menus.pop(request.match_info["id"], None) is not None
            st.images.pop(request.match_info["id"], None)
        return self._record(request, body, web.json_response({}) if found else _error(404, "Not found"))

    async def _set_default(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        menu_id = request.match_info["id"]
        with self._locked() as st:
            if menu_id not in st.rich_menus:
                status = 404
            elif menu_id not in st.images:
                status = 400  # LINE: an image must be uploaded first
            else:
                status = 200
                st.default_rich_menu = menu_id
        if status != 200:
            return self._record(request, body, _error(status, "cannot set the default rich menu"))
        return self._record(request, body, web.json_response({}))

    async def _get_default(self, request: web.Request) -> web.Response:
        early, body = await self._prelude(request)
        if early is not None:
            return early
        menu = self.default_rich_menu
        if menu is None:
            return self._record(request, body, _error(404, "no default rich menu"))
        return self._record(request, body, web.json_response({"richMenuId": menu}))


# ----- payload checks (what LINE would refuse with 400)


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def _sent_list(messages: list[Any]) -> list[dict[str, str]]:
    return [{"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex} for _ in messages]


def _sent(messages: list[Any]) -> web.Response:
    return web.json_response({"sentMessages": _sent_list(messages)})


def _check_messages(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"message": "must be an object", "property": ""}]
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return [{"message": "Size must be between 1 and 5", "property": "messages"}]
    problems: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("type") not in MESSAGE_TYPES:
            problems.append({"message": "invalid message type", "property": f"{where}.type"})
            continue
        if m["type"] == "text":
            text = m.get("text")
            if not isinstance(text, str) or not text or utf16_len(text) > 5000:
                problems.append({"message": "Length must be between 1 and 5000", "property": f"{where}.text"})
        if m["type"] == "flex":
            alt = m.get("altText")
            if not isinstance(alt, str) or not alt or utf16_len(alt) > 400:
                problems.append({"message": "Length must be between 1 and 400", "property": f"{where}.altText"})
            problems += _check_flex(m.get("contents"), f"{where}.contents")
        if "quickReply" in m:
            items = m["quickReply"].get("items") if isinstance(m["quickReply"], dict) else None
            if not isinstance(items, list) or not 1 <= len(items) <= 13:
                problems.append({"message": "Size must be between 1 and 13", "property": f"{where}.quickReply.items"})
                continue
            for j, item in enumerate(items):
                problems += _check_action(item.get("action"), f"{where}.quickReply.items[{j}].action")
    return problems


def _check_flex(contents: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(contents, dict):
        return [{"message": "must be a container", "property": where}]
    if contents.get("type") == "carousel":
        bubbles = contents.get("contents")
        if not isinstance(bubbles, list) or not 1 <= len(bubbles) <= 12:
            return [{"message": "Size must be between 1 and 12", "property": f"{where}.contents"}]
        return [p for i, b in enumerate(bubbles) for p in _check_flex(b, f"{where}.contents[{i}]")]
    if contents.get("type") != "bubble":
        return [{"message": "invalid container type", "property": f"{where}.type"}]
    problems: list[dict[str, str]] = []
    for part in ("header", "hero", "body", "footer"):
        box = contents.get(part)
        if box is None:
            continue
        for i, comp in enumerate(box.get("contents", [])):
            if comp.get("type") == "text" and not comp.get("text"):
                problems.append({"message": "text must not be empty", "property": f"{where}.{part}.contents[{i}]"})
            if "action" in comp:
                problems += _check_action(comp["action"], f"{where}.{part}.contents[{i}].action")
    return problems


def _check_action(action: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(action, dict):
        return [{"message": "must be an action", "property": where}]
    label = action.get("label")
    kind = action.get("type")
    problems: list[dict[str, str]] = []
    if label is not None and (not isinstance(label, str) or not 1 <= utf16_len(label) <= 20):
        problems.append({"message": "Length must be between 1 and 20", "property": f"{where}.label"})
    if kind == "postback":
        data = action.get("data")
        if not isinstance(data, str) or not 1 <= len(data) <= 300:
            problems.append({"message": "Length must be between 1 and 300", "property": f"{where}.data"})
        display = action.get("displayText")
        if display is not None and (not isinstance(display, str) or not 1 <= utf16_len(display) <= 300):
            problems.append({"message": "Length must be between 1 and 300", "property": f"{where}.displayText"})
    elif kind == "uri":
        uri = action.get("uri")
        if not isinstance(uri, str) or not uri.startswith(URI_SCHEMES) or len(uri) > 1000:
            problems.append({"message": "invalid uri", "property": f"{where}.uri"})
    elif kind == "message":
        text = action.get("text")
        if not isinstance(text, str) or not 1 <= utf16_len(text) <= 300:
            problems.append({"message": "Length must be between 1 and 300", "property": f"{where}.text"})
    else:
        problems.append({"message": "unsupported action type", "property": f"{where}.type"})
    return problems


def _int(value: object) -> int:
    return value if isinstance(value, int) else -1


def _check_rich_menu(menu: Any) -> list[dict[str, str]]:
    if not isinstance(menu, dict):
        return [{"message": "must be an object", "property": ""}]
    problems: list[dict[str, str]] = []
    size = menu.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or not 800 <= width <= 2500 or height < 250:
        return [{"message": "invalid size", "property": "size"}]
    if width / height < 1.45:
        problems.append({"message": "width/height must be at least 1.45", "property": "size"})
    for key, limit in (("name", 300), ("chatBarText", 14)):
        value = menu.get(key)
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            problems.append({"message": f"Length must be between 1 and {limit}", "property": key})
    if not isinstance(menu.get("selected"), bool):
        problems.append({"message": "must be a boolean", "property": "selected"})
    areas = menu.get("areas")
    if not isinstance(areas, list) or not 1 <= len(areas) <= 20:
        return [*problems, {"message": "Size must be between 1 and 20", "property": "areas"}]
    for i, area in enumerate(areas):
        b = area.get("bounds") or {}
        x, y, w, h = (_int(b.get(k)) for k in ("x", "y", "width", "height"))
        if min(x, y, w, h) < 0 or x + w > width or y + h > height:
            problems.append({"message": "area out of the menu", "property": f"areas[{i}].bounds"})
        problems += _check_action(area.get("action"), f"areas[{i}].action")
    return problems


def _check_image(data: bytes, content_type: str, size: dict[str, int]) -> str | None:
    if content_type not in ("image/png", "image/jpeg"):
        return "Content-Type must be image/png or image/jpeg"
    if not data or len(data) > 1024 * 1024:
        return "the image must be at most 1 MB"
    if content_type == "image/png":
        if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
            return "not a PNG image"
        width, height = struct.unpack(">II", data[16:24])
        if (width, height) != (size["width"], size["height"]):
            return "the image size does not match the rich menu size"
    return None


# ----- what LINE sends us: webhook bodies from the fixture files


def user_id() -> str:
    return "U" + uuid.uuid4().hex


def group_id() -> str:
    return "C" + uuid.uuid4().hex


def event_id() -> str:
    """A fresh webhookEventId (LINE uses ULIDs: 26 characters of Crockford base32)."""
    return uuid.uuid4().hex.upper()[:26]


def webhook(
    fixture: str,
    *,
    user: str | None = None,
    group: str | None = None,
    reply_token: str | None = None,
    text: str | None = None,
    data: str | None = None,
    webhook_event_id: str | None = None,
    redelivery: bool | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """A webhook body from tests/fixtures/line/<fixture>.json with the ids and content a test needs."""
    body: dict[str, Any] = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
    for ev in body["events"]:
        source = ev.get("source", {})
        if user is not None:
            source["userId"] = user
        if group is not None and "groupId" in source:
            source["groupId"] = group
        if group is not None and "roomId" in source:
            source["roomId"] = "R" + group[1:]
        if "replyToken" in ev and reply_token is not None:
            ev["replyToken"] = reply_token
        if text is not None:
            ev["message"]["text"] = text
        if data is not None:
            ev["postback"]["data"] = data
        ev["webhookEventId"] = webhook_event_id or event_id()
        if redelivery is not None:
            ev["deliveryContext"]["isRedelivery"] = redelivery
        ev["timestamp"] = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


# ----- our side: the LINE channel wired as the app wires it, for tests


class LineHarness:
    """The LINE route, an Inbox and the adapter, built by `bot.runtime.build_services` as the app's lifespan does,
    without the background loop: a test decides when work happens (`drain`). Requests go through httpx's
    ASGI transport to the real route; the adapter talks to `fake` over HTTP."""

    def __init__(self, fake: FakeLineAPI, settings: Any, runtime: Any, **inbox_options: Any) -> None:
        import httpx
        from fastapi import FastAPI

        from bot.runtime import build_services
        from bot.settings import LineSettings
        from handlers.channels import line

        self.fake = fake
        line_settings = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        self.settings = settings.model_copy(update={"line": line_settings})
        self.runtime = runtime
        inbox_options.setdefault("backoff_base", 0.0)
        # The app's own wiring (bot.runtime.build_services), without the scheduler and never started.
        self.services = build_services(runtime, self.settings, scheduler=False, **inbox_options)
        self.inbox = self.services.inbox
        [self.plugin] = [p for p in self.services.plugins if p.adapter.name == line.CHANNEL]
        assert isinstance(self.plugin.adapter, line.LineAdapter)
        self.adapter: line.LineAdapter = self.plugin.adapter
        self.app = FastAPI()
        for router in self.services.routers():
            self.app.include_router(router)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")

    async def post(self, body: bytes, *, signature: str | None = "sign", headers: dict[str, str] | None = None) -> Any:
        """POST a raw body; signature "sign" signs it correctly, None leaves the header out."""
        from handlers.channels.line import WEBHOOK_PATH, sign

        h = {"content-type": "application/json"}
        if signature == "sign":
            h["x-line-signature"] = sign(SECRET, body)
        elif signature is not None:
            h["x-line-signature"] = signature
        h.update(headers or {})
        return await self.client.post(WEBHOOK_PATH, content=body, headers=h)

    async def send(self, fixture: str, *, user: str, group: str | None = None, **values: Any) -> Any:
        """Post a signed webhook from a fixture, with a reply token the fake issued for the chat."""
        values.setdefault("reply_token", self.fake.issue_token(group or user))
        response = await self.post(encode(webhook(fixture, user=user, group=group, **values)))
        assert response.status_code == 200, response.text
        return response

    async def drain(self) -> None:
        await self.inbox.drain()

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.services.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="run the fake LINE Messaging API")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", default=TOKEN)
    parser.add_argument("--any-reply-token", action="store_true", help="accept reply tokens it did not issue")
    parser.add_argument("--multicast-rate", type=float, default=None, help="429 above this many multicasts/s")
    parser.add_argument("--quota", type=int, default=None, help="monthly message limit (default: none)")
    parser.add_argument("--latency", type=float, default=0.0, help="answer message calls this many seconds late")
    args = parser.parse_args()
    fake = FakeLineAPI(args.token, port=args.port, strict_tokens=not args.any_reply_token)
    fake.latency = args.latency
    fake.quota = args.quota
    fake.rate_limit(args.multicast_rate)
    fake.start()
    print(f"fake LINE API on {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 (stdlib, in its own thread) that the real
python-telegram-bot talks to when its `base_url` points here.

Requests arrive as `{base}{token}/{method}` with form-encoded parameters (strings as they are, everything
else JSON-encoded), as PTB sends them. Answers are valid Bot API JSON (`{"ok": true, "result": ...}` or
`{"ok": false, "error_code": ..., "description": ...}`) so PTB's models parse them. It knows its chats: the
staff forum supergroup (topics must be created there before messages go into them), further groups added with
`add_chat`, and private chats of users who have started the bot (`start_private`). Each chat has the bot's
membership and rights (`configure_chat`), and the methods refuse as the real Bot API does: 400 "chat not
found" for an unknown chat, 400 "the chat is not a forum", 400 "not enough rights to create a topic" without
the admin right, 400 "not enough rights to send text messages" when restricted, 403 when the bot was removed,
403 "bot can't initiate conversation with a user" for a user who never started it. Updates for long polling
are queued with `push_update`; `staff_update` builds one as Telegram would send it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456:test-telegram-token"
CHAT_ID = -1001234567890
BOT_ID = 123456
NUMERIC = {
    "chat_id",
    "message_thread_id",
    "offset",
    "limit",
    "timeout",
    "icon_color",
    "reply_to_message_id",
    "user_id",
}
JSONISH = {
    "disable_notification",
    "link_preview_options",
    "allowed_updates",
    "reply_markup",
    "drop_pending_updates",
    "reply_parameters",
}
TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)


@dataclass
class Chat:
    """A chat the fake knows, with the bot's standing in it."""

    id: int
    type: str = "supergroup"
    title: str = "staff"
    is_forum: bool = True
    bot_status: str = "administrator"  # creator | administrator | member | restricted | left | kicked
    can_manage_topics: bool = True
    can_send_messages: bool = True


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class Sent:
    chat_id: int
    thread_id: int | None
    text: str
    disable_notification: bool
    message_id: int
    reply_to: int | None = None


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    remaining: int
    retry_after: int | None = None


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    topics: dict[int, str] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)


def _decode(params: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in NUMERIC:
            out[key] = int(value)
        elif key in JSONISH:
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


class FakeTelegramAPI:
    def __init__(self, token: str = TOKEN, *, chat_id: int = CHAT_ID) -> None:
        self.token = token
        self.chat_id = chat_id
        self._state = _State()
        self._state.chats[chat_id] = Chat(chat_id)
        self._lock = threading.Lock()
        self._ids = itertools.count(100)
        self._threads = itertools.count(7000)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._update_ids = itertools.count(1)

    # ----- lifecycle
    @property
    def base_url(self) -> str:
        """What TELEGRAM_API_BASE_URL should be: PTB appends the token and the method."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/bot"

    def start(self) -> FakeTelegramAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                ctype = self.headers.get("content-type", "")
                if "json" in ctype and body:
                    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(body).items()}
                else:
                    params = dict(parse_qsl(body, keep_blank_values=True))
                status, payload = fake._dispatch(urlsplit(self.path).path, params)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeTelegramAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- test controls and views
    def fail_next(
        self,
        method: str,
        status: int = 400,
        description: str = "Bad Request",
        count: int = 1,
        retry_after: int | None = None,
    ) -> None:
        with self._lock:
            self._state.failures.append(_Failure(method, status, description, count, retry_after))

    def configure_chat(self, chat_id: int | None = None, **values: Any) -> None:
        """Change a chat: is_forum, type, bot_status, can_manage_topics, can_send_messages."""
        with self._lock:
            chat = self._state.chats[chat_id or self.chat_id]
            for key, value in values.items():
                assert hasattr(chat, key), key
                setattr(chat, key, value)

    def add_chat(self, chat_id: int, **values: Any) -> None:
        """Another group the bot is in (by default a plain supergroup without topics, the bot a member)."""
        values = {"is_forum": False, "bot_status": "member", "can_manage_topics": False, **values}
        with self._lock:
            self._state.chats[chat_id] = Chat(chat_id, **values)

    def remove_chat(self, chat_id: int | None = None) -> None:
        """The chat is gone for the bot (wrong id, deleted group)."""
        with self._lock:
            self._state.chats.pop(chat_id or self.chat_id, None)

    def start_private(self, user_id: int) -> None:
        """The user opened a chat with the bot and pressed Start: the bot may write to them now."""
        with self._lock:
            self._state.chats[user_id] = Chat(user_id, type="private", title="", is_forum=False, bot_status="member")

    def to_chat(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def push_update(self, update: dict[str, Any]) -> None:
        with self._lock:
            self._state.updates.append(update)

    def staff_update(
        self,
        user_id: int,
        text: str | None,
        *,
        thread_id: int | None = None,
        chat_id: int | None = None,
        reply_to: Sent | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An update as Telegram sends it for a message in the staff supergroup (in a topic if thread_id).
        A message in a topic refers to the topic's first message unless it replies to another (`reply_to`);
        `text=None` with e.g. `photo=[...]` or `sticker={...}` is a message without text."""
        chat = {"id": chat_id or self.chat_id, "type": "supergroup", "title": "staff", "is_forum": True}
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Staff"},
            **extra,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            message["reply_to_message"] = {
                "message_id": thread_id,
                "date": int(time.time()),
                "chat": chat,
                "from": self._bot(),
                "message_thread_id": thread_id,
                "forum_topic_created": {"name": self.topics.get(thread_id, "topic"), "icon_color": TOPIC_COLORS[0]},
            }
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to.message_id,
                "date": int(time.time()),
                "chat": chat,
                "from": self._bot(),
                "text": reply_to.text,
                **({"message_thread_id": thread_id} if thread_id is not None else {}),
            }
        return {"update_id": next(self._update_ids), "message": message}

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._state.calls)

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._state.sent)

    @property
    def topics(self) -> dict[int, str]:
        with self._lock:
            return dict(self._state.topics)

    @property
    def webhook(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state.webhook)

    def in_topic(self, thread_id: int) -> list[Sent]:
        return [s for s in self.sent if s.thread_id == thread_id]

    def delete_topic(self, thread_id: int) -> None:
        with self._lock:
            self._state.topics.pop(thread_id, None)

    # ----- the API
    def _dispatch(self, path: str, raw: dict[str, str]) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix) :]
        try:
            params = _decode(raw)
        except (ValueError, json.JSONDecodeError):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse parameters"}
        with self._lock:
            self._state.calls.append(Call(method, params))
            for rule in self._state.failures:
                if rule.method == method and rule.remaining > 0:
                    rule.remaining -= 1
                    body: dict[str, Any] = {"ok": False, "error_code": rule.status, "description": rule.description}
                    if rule.retry_after is not None:
                        body["parameters"] = {"retry_after": rule.retry_after}
                    return rule.status, body
        if method == "getUpdates":
            return self._get_updates(params)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        with self._lock:
            result: tuple[int, dict[str, Any]] = handler(params)
        return result

    @staticmethod
    def _ok(result: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": True, "result": result}

    @staticmethod
    def _bad(description: str) -> tuple[int, dict[str, Any]]:
        return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}

    def _bot(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "コンシェルジュ通知",
            "username": "kc_staff_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_getMe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._ok(self._bot())

    def _m_setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not str(params.get("url", "")).startswith(("http://", "https://")):
            return self._bad("bad webhook: an HTTPS URL must be provided for webhook")
        self._state.webhook = params
        return self._ok(True)

    def _m_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._state.webhook = {}
        return self._ok(True)

    def _chat_or_error(self, chat_id: Any) -> Chat | tuple[int, dict[str, Any]]:
        chat = self._state.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            return self._bad("chat not found")
        if chat.type == "private":
            return chat
        if chat.bot_status == "kicked":
            return self._forbidden(f"bot was kicked from the {chat.type} chat")
        if chat.bot_status == "left":
            return self._forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    @staticmethod
    def _forbidden(description: str) -> tuple[int, dict[str, Any]]:
        return 403, {"ok": False, "error_code": 403, "description": f"Forbidden: {description}"}

    def _chat_json(self, chat: Chat) -> dict[str, Any]:
        out: dict[str, Any] = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            out["first_name"] = "Staff"
        else:
            out["title"] = chat.title
            if chat.is_forum:
                out["is_forum"] = True
        return out

    def _m_getChat(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self._chat_or_error(params.get("chat_id"))
        if not isinstance(chat, Chat):
            return chat
        full = {
            **self._chat_json(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        return self._ok(full)

    def _m_getChatMember(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self._chat_or_error(params.get("chat_id"))
        if not isinstance(chat, Chat):
            return chat
        if params.get("user_id") != BOT_ID:
            return self._bad("user not found")
        member: dict[str, Any] = {"user": self._bot(), "status": chat.bot_status}
        if chat.bot_status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": False,
                    "can_restrict_members": False,
                    "can_promote_members": False,
                    "can_change_info": False,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                    "can_pin_messages": True,
                    "can_manage_topics": chat.can_manage_topics,
                }
            )
        elif chat.bot_status == "restricted":
            member.update(
                {
                    "is_member": True,
                    "can_change_info": False,
                    "can_invite_users": False,
                    "can_pin_messages": False,
                    "can_send_messages": chat.can_send_messages,
                    "can_send_polls": False,
                    "can_send_other_messages": False,
                    "can_add_web_page_previews": False,
                    "can_manage_topics": False,
                    "until_date": 0,
                    "can_send_audios": False,
                    "can_send_documents": False,
                    "can_send_photos": False,
                    "can_send_videos": False,
                    "can_send_video_notes": False,
                    "can_send_voice_notes": False,
                    "can_edit_tag": False,
                    "can_react_to_messages": False,
                }
            )
        return self._ok(member)

    def _may_manage_topics(self, chat: Chat) -> bool:
        return chat.bot_status == "creator" or (chat.bot_status == "administrator" and chat.can_manage_topics)

    def _m_createForumTopic(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self._chat_or_error(params.get("chat_id"))
        if not isinstance(chat, Chat):
            return chat
        if not chat.is_forum:
            return self._bad("the chat is not a forum")
        if not self._may_manage_topics(chat):
            return self._bad("not enough rights to create a topic")
        name = str(params.get("name", ""))
        if not 1 <= len(name) <= 128:
            return self._bad("TOPIC_NAME_INVALID")
        if "icon_color" in params and params["icon_color"] not in TOPIC_COLORS:
            return self._bad("TOPIC_ICON_COLOR_INVALID")
        thread = next(self._threads)
        self._state.topics[thread] = name
        return self._ok({"message_thread_id": thread, "name": name, "icon_color": params.get("icon_color", 7322096)})

    def _m_editForumTopic(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self._chat_or_error(params.get("chat_id"))
        if not isinstance(chat, Chat):
            return chat
        if not self._may_manage_topics(chat):
            return self._bad("not enough rights to edit a topic")
        thread = params.get("message_thread_id")
        if thread not in self._state.topics:
            return self._bad("message thread not found")
        if "name" in params:
            self._state.topics[thread] = str(params["name"])
        return self._ok(True)

    def _m_sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = params.get("chat_id")
        chat = self._chat_or_error(chat_id)
        if not isinstance(chat, Chat):
            if isinstance(chat_id, int) and chat_id > 0:  # a user who never started the bot
                return self._forbidden("bot can't initiate conversation with a user")
            return chat
        if chat.type != "private" and (chat.bot_status == "restricted" and not chat.can_send_messages):
            return self._bad("not enough rights to send text messages to the chat")
        text = str(params.get("text", ""))
        if not 1 <= len(text) <= 4096:
            return self._bad("message text is empty" if not text else "message is too long")
        thread = params.get("message_thread_id")
        if thread is not None and (not chat.is_forum or thread not in self._state.topics):
            return self._bad("message thread not found")
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        message_id = next(self._ids)
        quiet = bool(params.get("disable_notification", False))
        self._state.sent.append(Sent(chat.id, thread, text, quiet, message_id, reply_to))
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat_json(chat),
            "from": self._bot(),
            "text": text,
        }
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        return self._ok(message)

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                if self._state.webhook:
                    return 409, {
                        "ok": False,
                        "error_code": 409,
                        "description": "Conflict: can't use getUpdates method while webhook is active",
                    }
                found = [u for u in self._state.updates if u["update_id"] >= offset]
                self._state.updates = found  # confirmed ones are dropped, as Telegram does
            if found or time.monotonic() >= deadline:
                return self._ok(found)
            time.sleep(0.05)

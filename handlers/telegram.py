"""The Telegram staff bridge: alerts to the staff supergroup, one forum topic per case, and case work from
the topic by staff whose Telegram user id is linked to a staff account.

Alerts are driven by StaffAlert rows: an alert is delivered only once Telegram accepted the post
(`delivered_at`); a refused or failed post leaves it pending with its error, and it is retried (urgent ones
every round, the rest with a growing pause). An alert that cannot go into its case's topic (the topic was
deleted, the group has no topics, the bot may not manage topics) goes to the General topic. Complaints never
go to the shared group: to TELEGRAM_COMPLAINT_CHAT_ID, or as direct messages to the linked supervisors and
complaint-intake staff. `check_setup` says exactly what is wrong with the chat and the bot's rights; the
bridge runs it at start and `concierge serve` prints it.

Nothing reaches a parent by accident: only `/reply TEXT` in a case topic (or `/reply N TEXT` in General)
goes to the parent; anything else written in a topic stays among staff. A reply is confirmed in the topic
only once the parent's channel accepted it (「保護者に届きました」), and a refusal is reported there
(「保護者に届きませんでした：理由」). Every command acts at most once per Telegram message (TelegramAction).

Updates (webhook or long polling) are stored as inbound events keyed by update_id before anything else, so
a redelivered update is dropped, and processed from that queue; the webhook answers at once. Logs carry ids
and error descriptions only, never message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import re
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from handlers import casework, channels
from handlers.hours import OfficeHours
from storage import bridge as bridgedb
from storage import crud, queue
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import (
    OPEN_CASE_STATUSES,
    Case,
    Priority,
    StaffAlert,
    utcnow,
)
from storage.models import Message as CaseMessage

if TYPE_CHECKING:
    from bot.settings import Settings, TelegramSettings
    from knowledge.models import KnowledgeBase

log = logging.getLogger("concierge.telegram")
WEBHOOK_PATH = "/webhooks/telegram"
CHANNEL = "telegram"  # inbound events of the bridge (never claimed by the parents' inbox: it has no such adapter)
URGENT_COLOR = 16478047  # one of the six colours the Bot API allows for topic icons (red)
MAX_CONTENT = 600
MAX_DEPTH = 32  # a Telegram update nests a few levels; deeper bodies are not updates
SURROGATES = re.compile("[\ud800-\udfff]")  # lone halves: JSON allows them, UTF-8 and the databases do not
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # Telegram's rule for secret_token
TAKE_OVER = ("引き継ぐ", "引継ぎ", "force")
CONFIRM_BOOKED = ("予約あり", "確認", "force")
COMMANDS = ("/claim", "/note", "/reply", "/resolve", "/reopen")
VIA = "telegram"
MAX_REPLY = casework.MAX_REPLY  # as in the console (and LINE's limit for one text)
MAX_NOTE = casework.MAX_NOTE
LOST_AFTER = dt.timedelta(minutes=2)  # a /reply never queued (the process stopped half-way) is reported then
TOPICS_RETRY = 300.0  # seconds before trying to make topics again after the group refused them
MAX_PAUSE = 600.0  # longest wait between attempts for a refused non-urgent alert

PRIORITY = {"urgent": "緊急", "normal": "通常"}
KINDS = {"consultation": "相談", "complaint": "要望・苦情", "records_export": "記録の開示請求"}
LANGS = {"ja": "日本語", "en": "英語"}
HELP = (
    "このトピックで使えるコマンド：\n"
    "・/reply 本文 … 保護者に返信（保護者のチャネルに送信し、届いたらここでお知らせします）\n"
    "・/note 本文 … 内部メモ（保護者には送信されません）\n"
    "・/claim … このケースを担当する（担当者がいるときは「/claim 引き継ぐ」）\n"
    "・/resolve … 解決にして会話をBotに戻す（確定した予約があるときは確認します）\n"
    "・/reopen … 終了したケースを再開する\n"
    "コマンドのない書き込みは職員の間だけに残り、保護者には送信されません。\n"
    "全体（General）では受付番号を付けて使えます（例：/reply 12 本文）。"
)
PLAIN_HINT = (
    "ℹ️ この書き込みは職員の間だけに残ります（保護者には送信されていません）。"
    "保護者への返信は「/reply 本文」で送ってください。"
)
MEDIA_ONLY = "ℹ️ Botが扱えるのはテキストだけです。写真・スタンプ・ファイルは保護者に送信されず、保存もしていません。"
FORBIDDEN = "⛔ この操作の権限がありません。"
WHAT_TO_DO = (
    "コンソールで会話を確認し、必要なら電話など別の方法で連絡してください。一時的な問題なら /reply でもう一度送れます。"
)


def settings_problems(settings: Settings) -> list[str]:
    """Configuration that can never work (checked before anything starts)."""
    tg = settings.telegram
    problems: list[str] = []
    if tg.mode == "webhook":
        if tg.webhook_secret is None:
            problems.append("TELEGRAM_WEBHOOK_SECRET is required in webhook mode")
        elif not SECRET_RE.match(tg.webhook_secret.get_secret_value()):
            problems.append("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule)")
        if not settings.public_url.lower().startswith("https://"):
            problems.append(
                "PUBLIC_URL must be an https:// URL in webhook mode (Telegram posts webhooks only to HTTPS)"
            )
    if tg.complaint_chat_id is not None and tg.complaint_chat_id == tg.staff_chat_id:
        problems.append("TELEGRAM_COMPLAINT_CHAT_ID must not be the shared staff chat (complaints stay with intake)")
    return problems


async def check_setup(bot: Bot, tg: TelegramSettings, *, complaint_recipients: int | None = None) -> list[str]:
    """What is wrong with the staff chat and the bot's rights, in plain words; empty when all is well. Used
    at start by the bridge (logged) and by `concierge serve` (printed); a future `concierge doctor` can too."""
    try:
        me = await bot.get_me()
    except Forbidden:
        return ["TELEGRAM_BOT_TOKEN is refused by Telegram (check the token from @BotFather)"]
    except TelegramError as exc:
        if "token" in str(exc).lower() or "unauthorized" in str(exc).lower():
            return ["TELEGRAM_BOT_TOKEN is refused by Telegram (check the token from @BotFather)"]
        return [f"Telegram cannot be reached ({type(exc).__name__}); alerts wait until it can"]
    assert tg.staff_chat_id is not None
    problems = await _check_chat(bot, me.id, tg.staff_chat_id, "TELEGRAM_STAFF_CHAT_ID", forum=True)
    if tg.complaint_chat_id is not None:
        problems += await _check_chat(bot, me.id, tg.complaint_chat_id, "TELEGRAM_COMPLAINT_CHAT_ID", forum=False)
    elif complaint_recipients == 0:
        problems.append(
            "complaints have nowhere to go on Telegram: set TELEGRAM_COMPLAINT_CHAT_ID, or link a supervisor or "
            "complaint-intake account (`concierge staff link`) whose user has started a chat with the bot"
        )
    return problems


async def _check_chat(bot: Bot, bot_id: int, chat_id: int, name: str, *, forum: bool) -> list[str]:
    try:
        chat = await bot.get_chat(chat_id)
    except ChatMigrated as exc:
        return [f"{name}={chat_id}: the group was upgraded to a supergroup; its id is now {exc.new_chat_id}"]
    except (BadRequest, Forbidden) as exc:
        return [
            f"{name}={chat_id}: {exc.message} — is the bot a member of that group? "
            "(supergroup ids start with -100; add the bot, then check the id)"
        ]
    except TelegramError as exc:
        return [f"{name}={chat_id}: could not be checked ({type(exc).__name__})"]
    problems: list[str] = []
    if forum and chat.type != "supergroup":
        problems.append(f"{name}={chat_id} is a {chat.type} chat, not a supergroup with topics")
    elif forum and not chat.is_forum:
        problems.append(
            f"{name}={chat_id}: topics are off in this group; turn on Topics in the group settings "
            "(until then alerts go to the chat without topics)"
        )
    try:
        member = await bot.get_chat_member(chat_id, bot_id)
    except TelegramError as exc:
        return [*problems, f"{name}={chat_id}: the bot's rights could not be read ({type(exc).__name__})"]
    status = member.status
    if status in ("left", "kicked"):
        return [*problems, f"{name}={chat_id}: the bot is not a member of the group (status {status}); add it"]
    can_post = getattr(member, "can_send_messages", True) is not False
    if status == "restricted" and not can_post:
        problems.append(f"{name}={chat_id}: the bot may not send messages there; allow it to post")
    if forum and status not in ("administrator", "creator"):
        problems.append(
            f"{name}={chat_id}: the bot is not an administrator; make it an admin with 'Manage topics' "
            "(alerts go to the General topic until then)"
        )
    elif forum and status == "administrator" and not getattr(member, "can_manage_topics", False):
        problems.append(
            f"{name}={chat_id}: the bot lacks the admin right 'Manage topics' (alerts go to the General topic)"
        )
    return problems


async def check_telegram(settings: Settings, sessions: SessionFactory | None = None) -> list[str]:
    """`check_setup` with a bot of its own (for the command line)."""
    tg = settings.telegram
    assert tg.bot_token is not None
    bot = _bot(tg)
    recipients = None
    if sessions is not None and tg.complaint_chat_id is None:
        with contextlib.suppress(Exception), sessions() as s:  # a database not migrated yet: skip this part
            recipients = len(_complaint_recipients(s))
    with contextlib.suppress(TelegramError):  # check_setup reports it
        await bot.initialize()
    try:
        return await check_setup(bot, tg, complaint_recipients=recipients)
    finally:
        with contextlib.suppress(TelegramError, RuntimeError):
            await bot.shutdown()


def _bot(tg: TelegramSettings) -> Bot:
    assert tg.bot_token is not None
    if tg.api_base_url:
        base = tg.api_base_url
        return Bot(tg.bot_token.get_secret_value(), base_url=base, base_file_url=_file_url(base))
    return Bot(tg.bot_token.get_secret_value())


def _file_url(base: str) -> str:
    return base.rstrip("/").removesuffix("/bot") + "/file/bot"


def _complaint_recipients(s: Session) -> list[int]:
    """Telegram ids of the people complaints go to when there is no complaint chat."""
    rows = staffdb.telegram_staff(s)
    return [
        r.telegram_user_id
        for r in rows
        if r.telegram_user_id is not None
        and r.role != staffdb.Role.AUDITOR
        and (r.role == staffdb.Role.SUPERVISOR or r.complaint_intake)
    ]


@dataclass
class AlertBatch:
    """The pending alerts of one case, posted as one message."""

    case_id: int
    alert_ids: list[int]
    kinds: list[str]
    thread_id: int | None
    topic_name: str
    text: str
    loud: bool
    complaint: bool = False
    recipients: list[int] = field(default_factory=list)
    rename: bool = False  # the case became urgent: the topic gets the 🚨 name
    crisis: str | None = None  # the case's crisis category as announced


class _Refused(Exception):
    """A post Telegram refused; `chat_level` when every further post to that chat would fail too."""

    def __init__(self, error: str, *, chat_level: bool) -> None:
        super().__init__(error)
        self.error = error
        self.chat_level = chat_level


@dataclass
class _State:
    ready: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    updates: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    first_round: asyncio.Event = field(default_factory=asyncio.Event)


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns about the int/timedelta migration on access
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _parse_command(text: str) -> tuple[str | None, str]:
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None, stripped
    head, _, rest = stripped.partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    return head.split("@", 1)[0].lower(), rest.strip()


def _case_number(arg: str) -> tuple[int | None, str]:
    """`12 本文`, `#12 本文` or `受付12 本文` → (12, "本文")."""
    match = re.match(r"^(?:#|受付|受付番号)?\s*(\d{1,9})(?:\s+|$)", arg)
    if match is None:
        return None, arg
    return int(match.group(1)), arg[match.end() :].strip()


def _error_text(exc: TelegramError) -> str:
    return f"{type(exc).__name__}: {exc.message}"[:255]


def _thread_gone(exc: BadRequest) -> bool:
    text = exc.message.lower()
    return any(w in text for w in ("thread not found", "topic_deleted", "topic_closed", "topic_id_invalid"))


def _chat_level(exc: TelegramError) -> bool:
    """Errors that every post to this chat would meet (wrong chat, bot removed, no right to post)."""
    if isinstance(exc, Forbidden):
        return True
    text = exc.message.lower()
    return any(
        w in text
        for w in (
            "chat not found",
            "not enough rights to send",
            "have no rights to send",
            "chat_write_forbidden",
            "bot is not a member",
            "need administrator rights",
        )
    )


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply `value` nests (iterative, stops past `limit`)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return level
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _clean(text: str) -> str:
    """Lone surrogates become U+FFFD (the databases refuse them)."""
    return SURROGATES.sub("\ufffd", text)


def _int(value: Any) -> bool:
    return type(value) is int and -(2**53) < value < 2**53


def _shape_ok(data: dict[str, Any]) -> bool:
    """The parts of a `message` update the bridge reads have the Bot API's types."""
    msg = data.get("message")
    if msg is None:
        return False  # only messages are asked for (allowed_updates); anything else is ignored
    if not isinstance(msg, dict) or not _int(msg.get("message_id")) or not _int(msg.get("date")):
        return False
    chat = msg.get("chat")
    if not isinstance(chat, dict) or not _int(chat.get("id")) or not isinstance(chat.get("type"), str):
        return False
    sender = msg.get("from")
    if sender is not None and (
        not isinstance(sender, dict) or not _int(sender.get("id")) or not isinstance(sender.get("is_bot"), bool)
    ):
        return False
    if "text" in msg and not isinstance(msg["text"], str):
        return False
    if "message_thread_id" in msg and not _int(msg["message_thread_id"]):
        return False
    reply = msg.get("reply_to_message")
    return reply is None or isinstance(reply, dict)


def parse_update(body: bytes) -> tuple[int, str] | str:
    """(update_id, payload to store) for a well-formed message update; else "malformed" (400) or "ignored"
    (200: Telegram would only retry it)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return "malformed"
    if not isinstance(data, dict) or not _int(data.get("update_id")) or data["update_id"] < 0:
        return "malformed"
    if _depth(data) > MAX_DEPTH or not _shape_ok(data):
        return "ignored"
    msg = data["message"]
    if isinstance(msg.get("text"), str):
        msg["text"] = _clean(msg["text"])
    return int(data["update_id"]), json.dumps({"update_id": data["update_id"], "message": msg})


class TelegramBridge:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        *,
        kb: KnowledgeBase | None = None,
        on_reply: Callable[[], None] | None = None,
        send_interval: float = 1.0,
        office_minutes: Callable[[OfficeHours, dt.datetime, dt.datetime], int] | None = None,
    ) -> None:
        tg = settings.telegram
        if tg.bot_token is None or tg.staff_chat_id is None:
            raise ValueError("TELEGRAM_BOT_TOKEN and TELEGRAM_STAFF_CHAT_ID are required")
        problems = settings_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        self.settings = tg
        self.chat_id: int = tg.staff_chat_id
        self.sessions = sessions
        self.kb = kb
        self.on_reply = on_reply
        self.send_interval = send_interval
        self.retry_base = 5.0  # seconds before a refused non-urgent alert is tried again (doubling per attempt)
        self.public_url = settings.public_url.rstrip("/")
        self.office_hours = settings.office_hours.config()
        self.tz = self.office_hours.tz
        self.reply_target = settings.console.reply_target_minutes
        self.office_minutes = office_minutes
        self.worker = f"telegram-{uuid.uuid4().hex[:8]}"
        self.problems: list[str] = []
        builder = Application.builder().token(tg.bot_token.get_secret_value())
        if tg.api_base_url:
            builder = builder.base_url(tg.api_base_url).base_file_url(_file_url(tg.api_base_url))
        if tg.mode == "webhook":
            builder = builder.updater(None)
        self.app = builder.build()
        self.app.add_handler(MessageHandler(filters.ALL, self._on_polled))
        self.app.add_error_handler(self._on_error)
        self._state: _State | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._round = asyncio.Lock()  # one alert round at a time, or an alert could be posted twice
        self._updates_lock = asyncio.Lock()
        self._settle = asyncio.Lock()
        self._topics_off_until = 0.0
        self._hinted: set[tuple[int, int]] = set()  # (user, thread) told once that plain text stays among staff
        self._overdue_checked = 0.0

    # ----- lifecycle
    @property
    def ready(self) -> bool:
        return self._state is not None and self._state.ready

    async def start(self) -> None:
        """Connect in the background (Telegram being down must not stop the web app), then post alerts."""
        logging.getLogger("httpx").setLevel(logging.WARNING)  # httpx logs request URLs, which hold the token
        self._state = _State()
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._run(), name="telegram")]

    async def wait_ready(self) -> None:
        """Until connected and the first alert round is over (tests wrap this in a timeout)."""
        assert self._state is not None
        await self._state.connected.wait()
        await self._state.first_round.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(TelegramError, RuntimeError):
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
        with contextlib.suppress(TelegramError, RuntimeError):
            await self.app.shutdown()
        if self._state is not None:
            self._state.ready = False

    def wake(self) -> None:
        """Start an alert round now (from any thread)."""
        if self._state is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._state.wake.set)

    def _wake_updates(self) -> None:
        if self._state is not None:
            self._state.updates.set()

    async def _connect(self) -> None:
        await self.app.initialize()
        recipients = await anyio.to_thread.run_sync(self._recipient_count)
        self.problems = await check_setup(self.app.bot, self.settings, complaint_recipients=recipients)
        for problem in self.problems:
            log.error("telegram setup: %s", problem)
        if not self.problems:
            log.info("telegram setup: staff chat is a forum; the bot may post and manage topics")
        if self.settings.mode == "webhook":
            assert self.settings.webhook_secret is not None
            await self.app.bot.set_webhook(
                url=self.public_url + WEBHOOK_PATH,
                secret_token=self.settings.webhook_secret.get_secret_value(),
                allowed_updates=["message"],
            )
        else:
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=["message"], error_callback=self._polling_error)
        await self.app.start()

    def _recipient_count(self) -> int | None:
        if self.settings.complaint_chat_id is not None:
            return None
        with self.sessions() as s:
            return len(_complaint_recipients(s))

    async def _run(self) -> None:
        assert self._state is not None
        state = self._state
        delay = 1.0
        while True:
            try:
                await self._connect()
                break
            except (TelegramError, OSError) as exc:
                log.warning("telegram: connecting failed (%s); retrying in %.0f s", type(exc).__name__, delay)
                with contextlib.suppress(TelegramError, RuntimeError):
                    await self.app.shutdown()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)
        state.ready = True
        state.connected.set()
        log.info("telegram: bridge running (%s)", self.settings.mode)
        self._tasks.append(asyncio.create_task(self._update_loop(), name="telegram-updates"))
        while True:
            try:
                await self.deliver_alerts()
                await self.settle_replies()
            except Exception as exc:  # keep the loop alive; the alerts stay pending
                log.warning("telegram: alert round failed: %s", type(exc).__name__)
            state.first_round.set()
            timeout = self.settings.alert_poll_seconds
            if await anyio.to_thread.run_sync(self._replies_in_flight):
                timeout = min(timeout, 1.0)  # a reply's outcome is told within a second or so
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), timeout=timeout)
            state.wake.clear()

    async def _update_loop(self) -> None:
        assert self._state is not None
        state = self._state
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(self._recover)
        while True:
            try:
                await self.process_updates()
            except Exception as exc:
                log.warning("telegram: update round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.updates.wait(), timeout=self.settings.alert_poll_seconds)
            state.updates.clear()

    def _recover(self) -> None:
        with transaction(self.sessions) as s:
            queue.recover_stale(s, older_than=dt.timedelta(minutes=2))

    def _replies_in_flight(self) -> int:
        with self.sessions() as s:
            return bridgedb.replies_in_flight(s)

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("telegram: polling error: %s", type(exc).__name__)

    # ----- intake: every update is stored (keyed by update_id) before it is processed
    def accept(self, update_id: int, payload: str, sender: int | None) -> bool:
        """Store an update; False when this update_id was stored before (Telegram's retry, or a replay)."""
        with transaction(self.sessions) as s:
            return queue.store_event(
                s, channel=CHANNEL, event_key=str(update_id), sender_key=f"telegram:{sender or 0}", payload=payload
            )

    async def _on_polled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        parsed = parse_update(json.dumps(update.to_dict()).encode())
        if isinstance(parsed, str):
            return
        sender = update.effective_user.id if update.effective_user else None
        await anyio.to_thread.run_sync(self.accept, parsed[0], parsed[1], sender)
        self._wake_updates()

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: update failed: %s", type(context.error).__name__)

    async def process_updates(self) -> int:
        """Process every stored update (one at a time, in order per sender); returns how many."""
        async with self._updates_lock:  # one at a time in this process (SQLite has no row locks to share work)
            return await self._process_updates()

    async def _process_updates(self) -> int:
        done = 0
        while True:
            claimed = await anyio.to_thread.run_sync(self._claim)
            if claimed is None:
                return done
            event_id, payload = claimed
            try:
                await self._process(payload)
            except Exception as exc:
                log.warning("telegram: update event %s failed: %s", event_id, type(exc).__name__)
                await anyio.to_thread.run_sync(self._fail, event_id, type(exc).__name__)
            else:
                await anyio.to_thread.run_sync(self._finish, event_id)
            done += 1

    def updates_waiting(self) -> int:
        """Stored updates not processed yet."""
        with self.sessions() as s:
            return queue.unfinished_event_count(s, channel=CHANNEL)

    def _claim(self) -> tuple[int, str] | None:
        with transaction(self.sessions) as s:
            event = queue.claim_event(s, worker=self.worker, channels=[CHANNEL])
            if event is None or event.id is None:
                return None
            return event.id, event.payload

    def _finish(self, event_id: int) -> None:
        with transaction(self.sessions) as s:
            queue.finish_event(s, event_id=event_id)

    def _fail(self, event_id: int, error: str) -> None:
        with transaction(self.sessions) as s:
            queue.fail_event(s, event_id=event_id, error=error, max_attempts=3)

    async def _process(self, payload: str) -> None:
        try:
            update = Update.de_json(json.loads(payload), self.app.bot)
        except Exception as exc:  # an odd update is dropped, not retried
            log.warning("telegram: update ignored: %s", type(exc).__name__)
            return
        msg = update.message
        user = msg.from_user if msg is not None else None
        if msg is None or user is None or user.is_bot:
            return
        if msg.chat.type == "private":
            return  # direct messages only carry complaint alerts to intake staff; nothing is read there
        if msg.chat_id != self.chat_id:
            return
        thread = msg.message_thread_id if msg.is_topic_message else None
        if msg.text is None and msg.effective_attachment is None:
            return  # a service message (someone joined, a pin, a topic edited): nothing to answer
        answer = await anyio.to_thread.run_sync(
            lambda: self.staff_action(
                user.id,
                thread,
                msg.text or "",
                message_id=msg.message_id,
                media=msg.text is None,
                reply_to_bot=self._replies_to_bot(msg),
            )
        )
        if answer is not None:
            try:
                await self._send(
                    self.chat_id,
                    answer,
                    thread,
                    loud=False,
                    reply_to=msg.message_id,
                )
            except TelegramError as exc:  # the action is done; only its answer is lost
                log.warning("telegram: answer not posted: %s", type(exc).__name__)

    def _replies_to_bot(self, msg: Message) -> bool:
        """A Telegram reply to one of the bot's posts (not the topic's own first message, which every message in
        a topic refers to)."""
        target = msg.reply_to_message
        return (
            target is not None
            and target.forum_topic_created is None
            and target.from_user is not None
            and target.from_user.id == self.app.bot.id
        )

    # ----- what staff write in the supergroup
    def staff_action(
        self,
        telegram_user_id: int,
        thread_id: int | None,
        text: str,
        *,
        message_id: int,
        media: bool = False,
        reply_to_bot: bool = False,
    ) -> str | None:
        """What a message in the staff chat does; the answer to post, or None to stay silent."""
        command, arg = _parse_command(text)
        with transaction(self.sessions) as s:
            who = staffdb.get_staff_by_telegram(s, telegram_user_id=telegram_user_id)
            if who is None:
                log.info("telegram: message from an unlinked user ignored")
                return None
            if media:
                return MEDIA_ONLY
            case_id = staffdb.case_for_topic(s, chat_id=self.chat_id, thread_id=thread_id) if thread_id else None
            in_topic = case_id is not None
            if command in ("/help", "/start"):
                return HELP
            if command is None:  # talk among staff stays there; in a case topic the bot says so once
                key = (telegram_user_id, thread_id or 0)
                if in_topic and (reply_to_bot or key not in self._hinted):
                    if len(self._hinted) > 10_000:
                        self._hinted.clear()
                    self._hinted.add(key)
                    return PLAIN_HINT
                return None
            if not in_topic:
                number, arg = _case_number(arg)
                if number is None:
                    return f"全体（General）では受付番号を付けてください（例：{command} 12 …）。\n\n{HELP}"
                case_id = number
            assert case_id is not None
            case = crud.get_case(s, case_id=case_id)
            if case is None or case.id is None:
                return f"受付番号 {case_id} のケースは見つかりません。"
            if not staffdb.can_view_case(who, case):
                return FORBIDDEN
            if command not in COMMANDS:
                return HELP
            holder = self._name(s, case.assignee) if case.assignee else ""
        try:
            return self._command(who, case_id, command, arg, message_id, thread_id)
        except casework.Refused as exc:
            return self._refusal(exc, command, case_id, holder)

    def _command(
        self, who: staffdb.StaffAccount, case_id: int, command: str, arg: str, message_id: int, thread_id: int | None
    ) -> str | None:
        """One command as one staff use case, in one transaction with this Telegram message's action row (a
        refusal rolls both back, so the message may be sent again once corrected)."""
        me = who.display_name or who.username
        with transaction(self.sessions) as s:
            action = bridgedb.start_action(
                s,
                chat_id=self.chat_id,
                tg_message_id=message_id,
                thread_id=thread_id,
                case_id=case_id,
                staff=who.username,
                action=command[1:],
            )
            if action is None or action.id is None:
                return None  # this message was acted on before
            if command == "/claim":
                done = casework.claim(
                    s, actor=who, case_id=case_id, take_over=arg.strip().lower() in TAKE_OVER, via=VIA
                )
                if done.already:
                    return f"✋ 受付番号 {case_id} は既に {me} さんの担当です。"
                if done.before is not None:
                    return f"✋ {me} さんが {self._name(s, done.before)} さんから引き継ぎました（受付番号 {case_id}）。"
                return f"✋ {me} さんが担当します（受付番号 {case_id}）。"
            if command == "/note":
                casework.note(s, actor=who, case_id=case_id, text=arg, via=VIA)
                return "📝 内部メモを保存しました（保護者には送信されません）。"
            if command == "/reopen":
                casework.reopen(s, actor=who, case_id=case_id, via=VIA)
                answer = f"🔁 受付番号 {case_id} を再開しました。保護者からのメッセージはこのトピックに届きます。"
            elif command == "/resolve":
                confirmed = arg.strip().lower() in CONFIRM_BOOKED
                casework.resolve(s, actor=who, case_id=case_id, confirm_booked=confirmed, via=VIA)
                answer = f"✅ 受付番号 {case_id} を解決にしました。会話はBotに戻りました。"
            else:
                message = casework.reply(
                    s, actor=who, case_id=case_id, text=arg, office_hours=self.office_hours, via=VIA
                )
                bridgedb.set_reply_message(s, action_id=action.id, message_id=message)
                answer = None  # told once the parent's channel accepted or refused it (settle_replies)
        self._replied()
        if command == "/reply":
            self.wake()
        return answer

    def _refusal(self, exc: casework.Refused, command: str, case_id: int, holder: str) -> str:
        """A refused use case in the staff chat's words."""
        code = exc.code
        if code == "forbidden":
            return FORBIDDEN
        if code == "not_found":
            return f"受付番号 {case_id} のケースは見つかりません。"
        if code == "taken":
            return (
                f"このケース（受付番号 {case_id}）は {holder} さんが担当しています。"
                "引き継ぐときは「/claim 引き継ぐ」と送ってください。"
            )
        if code == "booked":
            return (
                f"⚠️ 受付番号 {case_id} には確定した予約がまだ残っています（{exc.detail}件）。"
                "終了しても予約は残り、保護者が予約について連絡するとケースは再開されます。"
                "終了してよければ「/resolve 予約あり」と送ってください。"
            )
        if code == "closed":
            if command == "/reply":
                return "このケースは終了しています。返信は送信していません。"
            return "このケースは既に終了しています。"
        if code == "no_channel":
            return "このケースは窓口・電話で受け付けたため、チャットでは返信できません。"
        if code == "empty":
            return "使い方：/note メモの本文" if command == "/note" else "使い方：/reply 保護者への返信の本文"
        if code == "too_long":
            if command == "/note":
                return (
                    f"⚠️ メモが長すぎます（{int(exc.detail):,}文字、上限{MAX_NOTE:,}文字）。"
                    "保存していません。分けて送ってください。"
                )
            return f"⚠️ 返信が長すぎます（{int(exc.detail):,}文字、上限{MAX_REPLY:,}文字）。送信していません。"
        if code == "open":
            return f"受付番号 {case_id} は終了していません。"
        if code == "busy":
            return f"この保護者には対応中の別のケース（受付番号 {exc.detail}）があるため、再開できません。"
        return HELP

    def _replied(self) -> None:
        if self.on_reply is not None:
            self.on_reply()

    def _name(self, s: Session, username: str) -> str:
        row = staffdb.get_staff_by_username(s, username=username)
        return (row.display_name or row.username) if row is not None else username

    # ----- reply outcomes back in the topic
    async def settle_replies(self) -> int:
        """Tell the topic what became of each /reply: accepted by the parent's channel, or not (and why)."""
        async with self._settle:  # one teller at a time, or an outcome could be told twice
            return await self._settle_replies()

    async def _settle_replies(self) -> int:
        outcomes = await anyio.to_thread.run_sync(self._settled)
        told = 0
        for o in outcomes:
            text = _outcome_text(o)
            try:
                try:
                    await self._send(o.chat_id, text, o.thread_id, loud=o.outcome != "sent", reply_to=o.tg_message_id)
                except BadRequest as exc:
                    if o.thread_id is None or not _thread_gone(exc):
                        raise
                    await self._send(o.chat_id, text, None, loud=o.outcome != "sent", reply_to=None)
            except TelegramError as exc:
                log.warning("telegram: reply outcome not posted yet: %s", type(exc).__name__)
                return told
            await anyio.to_thread.run_sync(self._reported, o.action_id, o.outcome)
            told += 1
        return told

    def _settled(self) -> list[bridgedb.ReplyOutcome]:
        with self.sessions() as s:
            return bridgedb.settled_replies(s, lost_after=LOST_AFTER)

    def _reported(self, action_id: int, outcome: str) -> None:
        with transaction(self.sessions) as s:
            bridgedb.mark_reported(s, action_id=action_id, outcome=outcome)

    # ----- alerts to staff
    async def deliver_alerts(self) -> int:
        """Post every pending alert that is due (grouped per case); returns how many posts were made."""
        async with self._round:
            await anyio.to_thread.run_sync(self._sweep)
            return await self._deliver_round()

    async def _deliver_round(self) -> int:
        batches = await anyio.to_thread.run_sync(self._collect)
        posted = 0
        for batch in batches:
            try:
                via = await (self._post_complaint(batch) if batch.complaint else self._post_staff(batch))
            except RetryAfter as exc:
                log.warning("telegram: flood control, waiting")
                await anyio.to_thread.run_sync(self._failed, batch.alert_ids, "RetryAfter")
                await asyncio.sleep(min(_seconds(exc), 60.0))
                break
            except _Refused as exc:
                log.error("telegram: alert for case %s refused: %s", batch.case_id, exc.error)
                await anyio.to_thread.run_sync(self._failed, batch.alert_ids, exc.error)
                if exc.chat_level:
                    break  # every further post would be refused too: try again next round
                continue
            except (NetworkError, TelegramError) as exc:
                log.warning("telegram: alerts paused: %s", type(exc).__name__)
                await anyio.to_thread.run_sync(self._failed, batch.alert_ids, type(exc).__name__)
                break
            await anyio.to_thread.run_sync(self._delivered, batch.alert_ids, via, batch.crisis)
            posted += 1
            if self.send_interval:
                await asyncio.sleep(self.send_interval)
        return posted

    async def _send(
        self, chat_id: int, text: str, thread: int | None, *, loud: bool, reply_to: int | None = None
    ) -> Message:
        return await self.app.bot.send_message(
            chat_id,
            text,
            message_thread_id=thread,
            disable_notification=not loud,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None,
        )

    async def _post(self, chat_id: int, text: str, thread: int | None, loud: bool) -> None:
        """A post whose refusal is classified: BadRequest/Forbidden become _Refused (thread errors stay)."""
        try:
            await self._send(chat_id, text, thread, loud=loud)
        except BadRequest as exc:
            if thread is not None and _thread_gone(exc):
                raise
            raise _Refused(_error_text(exc), chat_level=_chat_level(exc)) from None
        except Forbidden as exc:
            raise _Refused(_error_text(exc), chat_level=True) from None

    async def _post_staff(self, batch: AlertBatch) -> str:
        if batch.thread_id is not None:
            try:
                await self._post(self.chat_id, batch.text, batch.thread_id, batch.loud)
            except BadRequest:  # the topic is gone (deleted or closed): a new one, or General
                log.warning("telegram: topic of case %s is gone; making a new one", batch.case_id)
                await anyio.to_thread.run_sync(self._forget_topic, batch.case_id)
            else:
                if batch.rename:
                    await self._rename(batch)
                return "topic"
        thread = await self._new_topic(batch)
        if thread is not None:
            await self._post(self.chat_id, batch.text, thread, batch.loud)
            return "topic"
        await self._post(self.chat_id, _general(batch), None, batch.loud)
        return "general"

    async def _new_topic(self, batch: AlertBatch) -> int | None:
        """A forum topic for the case; None when the group cannot have one now (the alert goes to General)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._topics_off_until:
            return None
        try:
            topic = await self.app.bot.create_forum_topic(
                self.chat_id, batch.topic_name, icon_color=URGENT_COLOR if batch.loud else None
            )
        except BadRequest as exc:
            if _chat_level(exc):
                raise _Refused(_error_text(exc), chat_level=True) from None
            log.error("telegram: no topic for case %s (%s); posting in General", batch.case_id, _error_text(exc))
            self._topics_off_until = loop.time() + TOPICS_RETRY
            return None
        except Forbidden as exc:
            raise _Refused(_error_text(exc), chat_level=True) from None
        thread = topic.message_thread_id
        await anyio.to_thread.run_sync(self._remember_topic, batch.case_id, thread)
        return thread

    async def _rename(self, batch: AlertBatch) -> None:
        assert batch.thread_id is not None
        try:
            await self.app.bot.edit_forum_topic(self.chat_id, batch.thread_id, name=batch.topic_name)
        except TelegramError as exc:  # the alert itself is posted; the name is cosmetic
            log.warning("telegram: topic of case %s not renamed: %s", batch.case_id, type(exc).__name__)

    async def _post_complaint(self, batch: AlertBatch) -> str:
        """Complaints: to the intake chat, or to each linked intake person directly; never the shared group."""
        if self.settings.complaint_chat_id is not None:
            await self._post(self.settings.complaint_chat_id, batch.text, None, batch.loud)
            return "complaint_chat"
        if not batch.recipients:
            raise _Refused("no complaint recipient linked", chat_level=False)
        reached = 0
        error = ""
        for user_id in batch.recipients:
            try:
                await self._post(user_id, batch.text, None, batch.loud)
                reached += 1
            except _Refused as exc:  # the person has not started a chat with the bot, or blocked it
                error = exc.error
        if not reached:
            raise _Refused(error or "no complaint recipient reachable", chat_level=False)
        return "dm"

    def _sweep(self) -> None:
        """Alerts the database implies: a consultation re-classified as a complaint leaves the shared group
        (its topic is forgotten; intake is told), an urgent case whose crisis no post announced yet (a new
        category, however it was set), and a parent waiting past the reply target."""
        with transaction(self.sessions) as s:
            for case in staffdb.cases_with_topic(s, kind=staffdb.COMPLAINT):
                assert case.id is not None
                staffdb.drop_case_topic(s, case_id=case.id)
                crud.add_alert(s, case=case, kind="reclassified")
            for case in bridgedb.unannounced_crises(s):
                crud.add_alert(s, case=case, kind="urgent")
            now = utcnow()
            if (now.timestamp() - self._overdue_checked) < 30:
                return
            self._overdue_checked = now.timestamp()
            for case in bridgedb.waiting_cases(s):
                assert case.id is not None and case.waiting_since is not None
                if self.office_minutes is not None:
                    waited = self.office_minutes(self.office_hours, case.waiting_since, now)
                else:
                    waited = int((now - case.waiting_since).total_seconds() // 60)
                if waited < self.reply_target:
                    continue
                last = bridgedb.last_alert_at(s, case_id=case.id, kind="overdue")
                if last is None or last < case.waiting_since:
                    crud.add_alert(s, case=case, kind="overdue")

    def _collect(self) -> list[AlertBatch]:
        now = utcnow()
        with transaction(self.sessions) as s:
            alerts = crud.pending_alerts(s)
            by_case: dict[int, list[StaffAlert]] = {}
            for a in alerts:
                by_case.setdefault(a.case_id, []).append(a)
            batches = []
            recipients: list[int] | None = None
            for case_id, rows in by_case.items():
                case = crud.get_case(s, case_id=case_id)
                if case is None:
                    continue
                if not _due(rows, case, now, self.retry_base):
                    continue
                topic = staffdb.case_topic(s, case_id=case_id)
                batch = self._batch(s, case, rows, topic.thread_id if topic else None)
                if batch.complaint and self.settings.complaint_chat_id is None:
                    if recipients is None:
                        recipients = _complaint_recipients(s)
                    batch.recipients = recipients
                batches.append(batch)
            batches.sort(key=lambda b: (not b.loud, b.case_id))  # urgent first: a round may stop early
            return batches

    def _batch(self, s: Session, case: Case, rows: list[StaffAlert], thread: int | None) -> AlertBatch:
        assert case.id is not None
        kinds = [r.kind for r in rows]
        complaint = case.kind == staffdb.COMPLAINT
        urgent_case = case.priority == Priority.URGENT
        topic_label = self._topic_label(case.topic)
        lines: list[str] = []
        if "urgent" in kinds:
            lines.append(f"🚨 緊急の相談です　受付番号 {case.id}")
            if case.crisis_category:
                lines.append(f"危機の種類：{self._crisis_label(case.crisis_category)}")
        if "new_case" in kinds:
            lines.append(f"{'📮' if complaint else '🆕'} 新しい{KINDS.get(case.kind, '相談')}　受付番号 {case.id}")
        if "reclassified" in kinds:
            lines.append(f"📮 相談が要望・苦情に分類されました　受付番号 {case.id}")
        if "records_request" in kinds:
            lines.append(f"📂 記録の開示請求がありました　受付番号 {case.id}")
        messages = kinds.count("parent_message")
        if messages:
            mark = "🚨💬 緊急のケースで" if urgent_case else "💬 "
            lines.append(f"{mark}保護者から新しいメッセージ（{messages}件）　受付番号 {case.id}")
        if "overdue" in kinds:
            lines.append(f"⏰ 返信の目標時間（{self.reply_target}分）を過ぎています　受付番号 {case.id}")
        if "appointment" in kinds:
            lines.append(self._appointment_line(s, case.id))
        waited = "—"
        if case.waiting_since is not None and case.status in OPEN_CASE_STATUSES:
            waited = f"{max(0, int((utcnow() - case.waiting_since).total_seconds() // 60))}分"
        assignee = self._name(s, case.assignee) if case.assignee else "未担当"
        lines += [
            f"優先度：{PRIORITY.get(case.priority, case.priority)}　種別：{KINDS.get(case.kind, case.kind)}",
            f"分野：{topic_label}　経路：{channels.label(case.channel)}　言語：{LANGS.get(case.lang, case.lang)}",
            f"待ち時間：{waited}　担当：{assignee}",
            f"コンソール：{self.public_url}/cases/{case.id}",
        ]
        if self.settings.allow_content:
            inbound = [m for m in crud.transcript(s, case_id=case.id) if m.direction == "in"]
            latest = inbound[-max(1, min(messages, 3)) :] if inbound else []
            for m in latest:
                lines.append(f"内容：{_clip(m)}")
        if complaint:
            lines.append("対応はコンソールで行ってください。")
        elif case.channel != staffdb.OFFICE_CHANNEL:
            lines.append("保護者への返信：/reply 本文（それ以外の書き込みは保護者に送信されません）")
        loud = "urgent" in kinds or "overdue" in kinds or (urgent_case and messages > 0)
        name = f"{'🚨 ' if urgent_case else ''}受付{case.id} {topic_label}"[:128]
        return AlertBatch(
            case_id=case.id,
            alert_ids=[r.id for r in rows if r.id is not None],
            kinds=kinds,
            thread_id=thread,
            topic_name=name,
            text="\n".join(lines),
            loud=loud,
            complaint=complaint,
            rename=thread is not None and "urgent" in kinds,
            crisis=case.crisis_category,
        )

    def _appointment_line(self, s: Session, case_id: int) -> str:
        slots = staffdb.slots_for_case(s, case_id=case_id)
        booked = [x for x in slots if x.status == staffdb.SlotStatus.BOOKED]
        newest = max(slots, key=lambda x: x.id or 0) if slots else None
        if booked and newest is not None and (newest.status == staffdb.SlotStatus.BOOKED or newest in booked):
            slot = max(booked, key=lambda x: x.booked_at or x.created_at)
            local = slot.starts_at.astimezone(self.tz)
            return f"📅 予約が確定しました：{local:%m月%d日 %H:%M}（{slot.minutes}分）"
        return "📅 提示した予約日時はどれも都合が合わないとの回答です"

    def _topic_label(self, topic: str | None) -> str:
        if not topic:
            return "相談"
        if self.kb is not None and topic in self.kb.topics:
            return self.kb.topics[topic].title.split("（")[0]
        return topic

    def _crisis_label(self, category: str) -> str:
        if self.kb is not None:
            for c in self.kb.crisis.categories:
                if c.id == category:
                    return c.label.get("ja") or category
        return category

    def _remember_topic(self, case_id: int, thread_id: int) -> None:
        with transaction(self.sessions) as s:
            staffdb.set_case_topic(s, case_id=case_id, chat_id=self.chat_id, thread_id=thread_id)

    def _forget_topic(self, case_id: int) -> None:
        with transaction(self.sessions) as s:
            staffdb.drop_case_topic(s, case_id=case_id)

    def _delivered(self, alert_ids: list[int], via: str, crisis: str | None) -> None:
        with transaction(self.sessions) as s:
            bridgedb.mark_delivered(s, alert_ids=alert_ids, via=via, crisis=crisis)

    def _failed(self, alert_ids: list[int], error: str) -> None:
        with transaction(self.sessions) as s:
            bridgedb.record_failure(s, alert_ids=alert_ids, error=error)

    # ----- the webhook route
    def router(self, max_body_bytes: int = 1_000_000) -> APIRouter:
        router = APIRouter()
        secret = self.settings.webhook_secret.get_secret_value().encode() if self.settings.webhook_secret else b""

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> Response:
            """Verify, store (keyed by update_id), acknowledge: the work happens from the queue."""
            got = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
            if not secret or not hmac.compare_digest(got, secret):
                log.warning("telegram webhook refused: bad or missing secret token")
                return JSONResponse({"error": "forbidden"}, status_code=403)
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse({"error": "request body too large"}, status_code=413)
            parsed = parse_update(body)
            if parsed == "malformed":
                log.warning("telegram webhook refused: malformed update")
                return JSONResponse({"error": "malformed update"}, status_code=400)
            if isinstance(parsed, str):
                return JSONResponse({"ignored": True})
            update_id, payload = parsed
            sender = json.loads(payload)["message"].get("from", {}).get("id")
            await anyio.to_thread.run_sync(self.accept, update_id, payload, sender)
            self._wake_updates()
            return JSONResponse({})

        return router


def _due(rows: list[StaffAlert], case: Case, now: dt.datetime, base: float) -> bool:
    """Urgent alerts are tried every round until posted; others wait longer after each refusal."""
    if any(r.kind == "urgent" for r in rows) or case.priority == Priority.URGENT:
        return True
    for r in rows:
        if r.attempted_at is None or r.attempts == 0:
            return True
        pause = min(base * 2 ** min(r.attempts, 10), MAX_PAUSE)
        if now >= r.attempted_at + dt.timedelta(seconds=pause):
            return True
    return False


def _general(batch: AlertBatch) -> str:
    """The alert as posted in the General topic (no topic could be used): commands need the case number."""
    return (
        f"{batch.text}\n（トピックに投稿できないため全体に投稿しています。"
        f"操作は受付番号を付けて：/reply {batch.case_id} 本文）"
    )


def _reason(error: str | None) -> str:
    """The parent's channel's refusal in words staff can act on."""
    e = (error or "").lower()
    if "invalid recipient" in e or e.startswith("smtp 5"):
        return "メールアドレスが受け付けられませんでした（宛先の誤りか受信拒否）"
    if e.startswith(("push 4", "reply 4")) and "429" not in e:
        return "LINEが受け付けませんでした（ブロックまたは友だち解除の可能性があります）"
    if e.startswith(("push", "reply", "smtp")) or "timeout" in e:
        return "送信先のサーバーに何度試してもつながりませんでした"
    return f"送信エラー（{error or '不明'}）"


def _outcome_text(o: bridgedb.ReplyOutcome) -> str:
    if o.outcome == "sent":
        return f"📨 保護者に届きました（受付番号 {o.case_id}）。"
    if o.outcome == "failed":
        return f"⚠️ 保護者に届きませんでした：{_reason(o.error)}（受付番号 {o.case_id}）\n{WHAT_TO_DO}"
    return (
        f"⚠️ この返信が送信されたか確認できませんでした（受付番号 {o.case_id}）。"
        "コンソールの会話記録で確認し、届いていなければもう一度送ってください。"
    )


def _clip(message: CaseMessage) -> str:
    text = " ".join(message.text.split())
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def build(
    settings: Settings,
    sessions: SessionFactory,
    *,
    kb: KnowledgeBase | None = None,
    on_reply: Callable[[], None] | None = None,
    office_minutes: Callable[[OfficeHours, dt.datetime, dt.datetime], int] | None = None,
) -> TelegramBridge:
    """The bridge for the app's lifespan (when TELEGRAM_BOT_TOKEN and TELEGRAM_STAFF_CHAT_ID are set)."""
    return TelegramBridge(settings, sessions, kb=kb, on_reply=on_reply, office_minutes=office_minutes)

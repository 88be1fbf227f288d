"""The Telegram staff bridge: alerts to the staff supergroup, one forum topic per case, and case work from
the topic by staff whose Telegram user id is linked to a staff account.

Alerts are driven by StaffAlert rows (pending until posted, then `delivered_at` is set), so nothing is lost
across restarts. They carry the case number, priority, kind, topic, channel, waiting time and a console link;
message text only when TELEGRAM_ALLOW_CONTENT is set. Urgent cases are announced loudly (🚨, with a
notification); the rest arrive silently.

In a case's topic a linked staff member can write to reply to the parent (relayed by
`handlers.staff.reply_to_parent`), `/note TEXT` for an internal note, `/claim` and `/resolve`; everything is
audited with via="telegram". Messages from anyone else, or outside the staff chat, are ignored. Updates come
by webhook (POST /webhooks/telegram with X-Telegram-Bot-Api-Secret-Token) or long polling, per settings.
Logs carry ids and error class names only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from telegram import LinkPreviewOptions, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from handlers import staff as staff_actions
from storage import crud
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import OPEN_CASE_STATUSES, CaseStatus, Message, StaffAlert, utcnow

if TYPE_CHECKING:
    from bot.settings import Settings
    from knowledge.models import KnowledgeBase

log = logging.getLogger("concierge.telegram")
WEBHOOK_PATH = "/webhooks/telegram"
URGENT_COLOR = 16478047  # one of the six colours the Bot API allows for topic icons (red)
MAX_CONTENT = 600

PRIORITY = {"urgent": "緊急", "normal": "通常"}
KINDS = {"consultation": "相談", "complaint": "要望・苦情"}
CHANNELS = {"line": "LINE", "email": "メール", "console": "コンソール", "office": "窓口・電話"}
LANGS = {"ja": "日本語", "en": "英語"}
HELP = (
    "このトピックで使えるコマンド：\n"
    "・そのまま書く … 保護者に返信（保護者のチャネルに送信されます）\n"
    "・/note 本文 … 内部メモ（保護者には送信されません）\n"
    "・/claim … このケースを担当する\n"
    "・/resolve … 解決にして会話をBotに戻す"
)


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


@dataclass
class _State:
    ready: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)


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


class TelegramBridge:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        *,
        kb: KnowledgeBase | None = None,
        on_reply: Callable[[], None] | None = None,
        send_interval: float = 1.0,
    ) -> None:
        tg = settings.telegram
        if tg.bot_token is None or tg.staff_chat_id is None:
            raise ValueError("TELEGRAM_BOT_TOKEN and TELEGRAM_STAFF_CHAT_ID are required")
        if tg.mode == "webhook" and tg.webhook_secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET is required in webhook mode")
        self.settings = tg
        self.chat_id: int = tg.staff_chat_id
        self.sessions = sessions
        self.kb = kb
        self.on_reply = on_reply
        self.send_interval = send_interval
        self.public_url = settings.public_url.rstrip("/")
        self.tz = settings.office_hours.config().tz
        builder = Application.builder().token(tg.bot_token.get_secret_value())
        if tg.api_base_url:
            base = tg.api_base_url
            builder = builder.base_url(base).base_file_url(base.rstrip("/").removesuffix("/bot") + "/file/bot")
        if tg.mode == "webhook":
            builder = builder.updater(None)
        self.app = builder.build()
        self.app.add_handler(MessageHandler(filters.Chat(chat_id=self.chat_id) & filters.TEXT, self._on_message))
        self.app.add_error_handler(self._on_error)
        self._state: _State | None = None
        self._task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()  # one alert round at a time, or an alert could be posted twice

    # ----- lifecycle
    @property
    def ready(self) -> bool:
        return self._state is not None and self._state.ready

    async def start(self) -> None:
        """Connect in the background (Telegram being down must not stop the web app), then post alerts."""
        logging.getLogger("httpx").setLevel(logging.WARNING)  # httpx logs request URLs, which hold the token
        self._state = _State()
        self._task = asyncio.create_task(self._run(), name="telegram")

    async def wait_ready(self) -> None:
        """Until connected (tests wrap this in a timeout)."""
        assert self._state is not None
        await self._state.connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
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
        if self._state is not None:
            self._state.wake.set()

    async def _connect(self) -> None:
        await self.app.initialize()
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
        while True:
            try:
                await self.deliver_alerts()
            except Exception as exc:  # keep the loop alive; the alerts stay pending
                log.warning("telegram: alert round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), timeout=self.settings.alert_poll_seconds)
            state.wake.clear()

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("telegram: polling error: %s", type(exc).__name__)

    # ----- alerts to staff
    async def deliver_alerts(self) -> int:
        """Post every pending alert (grouped per case); returns how many posts were made."""
        async with self._round:
            return await self._deliver_round()

    async def _deliver_round(self) -> int:
        batches = await anyio.to_thread.run_sync(self._collect)
        posted = 0
        for batch in batches:
            try:
                thread = batch.thread_id
                if thread is None:
                    topic = await self.app.bot.create_forum_topic(
                        self.chat_id, batch.topic_name, icon_color=URGENT_COLOR if batch.loud else None
                    )
                    thread = topic.message_thread_id
                    await anyio.to_thread.run_sync(self._remember_topic, batch.case_id, thread)
                await self.app.bot.send_message(
                    self.chat_id,
                    batch.text,
                    message_thread_id=thread,
                    disable_notification=not batch.loud,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except RetryAfter as exc:
                log.warning("telegram: flood control, waiting")
                await asyncio.sleep(min(_seconds(exc), 60.0))
                break
            except BadRequest as exc:
                if batch.thread_id is not None and "thread" in exc.message.lower():
                    log.warning("telegram: topic of case %s is gone; a new one will be made", batch.case_id)
                    await anyio.to_thread.run_sync(self._forget_topic, batch.case_id)
                    continue
                log.error("telegram: alert for case %s refused: %s", batch.case_id, type(exc).__name__)
                await anyio.to_thread.run_sync(self._mark, batch.alert_ids)  # a poison alert must not block
                continue
            except (Forbidden, NetworkError) as exc:
                log.warning("telegram: alerts paused: %s", type(exc).__name__)
                break
            await anyio.to_thread.run_sync(self._mark, batch.alert_ids)
            posted += 1
            if self.send_interval:
                await asyncio.sleep(self.send_interval)
        return posted

    def _collect(self) -> list[AlertBatch]:
        with transaction(self.sessions) as s:
            alerts = crud.pending_alerts(s)
            by_case: dict[int, list[StaffAlert]] = {}
            for a in alerts:
                by_case.setdefault(a.case_id, []).append(a)
            batches = []
            for case_id, rows in by_case.items():
                case = crud.get_case(s, case_id=case_id)
                if case is None:
                    continue
                topic = staffdb.case_topic(s, case_id=case_id)
                batches.append(self._batch(s, case, rows, topic.thread_id if topic else None))
            return batches

    def _batch(self, s: Any, case: Any, rows: list[StaffAlert], thread: int | None) -> AlertBatch:
        kinds = [r.kind for r in rows]
        urgent = "urgent" in kinds
        topic_label = self._topic_label(case.topic)
        lines: list[str] = []
        if urgent:
            lines.append(f"🚨 緊急の相談です　受付番号 {case.id}")
        elif "new_case" in kinds:
            lines.append(f"🆕 新しい{KINDS.get(case.kind, '相談')}　受付番号 {case.id}")
        messages = kinds.count("parent_message")
        if messages:
            lines.append(f"💬 保護者から新しいメッセージ（{messages}件）　受付番号 {case.id}")
        if "appointment" in kinds:
            lines.append(self._appointment_line(s, case.id))
        waited = "—"
        if case.waiting_since is not None and case.status in OPEN_CASE_STATUSES:
            waited = f"{max(0, int((utcnow() - case.waiting_since).total_seconds() // 60))}分"
        lines += [
            f"優先度：{PRIORITY.get(case.priority, case.priority)}　種別：{KINDS.get(case.kind, case.kind)}",
            f"分野：{topic_label}　経路：{CHANNELS.get(case.channel, case.channel)}"
            f"　言語：{LANGS.get(case.lang, case.lang)}",
            f"待ち時間：{waited}　担当：{case.assignee or '未担当'}",
            f"コンソール：{self.public_url}/cases/{case.id}",
        ]
        if self.settings.allow_content:
            inbound = [m for m in crud.transcript(s, case_id=case.id) if m.direction == "in"]
            latest = inbound[-max(1, min(messages, 3)) :] if inbound else []
            for m in latest:
                lines.append(f"内容：{_clip(m)}")
        name = f"{'🚨 ' if urgent else ''}受付{case.id} {topic_label}"[:128]
        return AlertBatch(
            case_id=case.id,
            alert_ids=[r.id for r in rows if r.id is not None],
            kinds=kinds,
            thread_id=thread,
            topic_name=name,
            text="\n".join(lines),
            loud=urgent,
        )

    def _appointment_line(self, s: Any, case_id: int) -> str:
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

    def _remember_topic(self, case_id: int, thread_id: int) -> None:
        with transaction(self.sessions) as s:
            staffdb.set_case_topic(s, case_id=case_id, chat_id=self.chat_id, thread_id=thread_id)

    def _forget_topic(self, case_id: int) -> None:
        with transaction(self.sessions) as s:
            staffdb.drop_case_topic(s, case_id=case_id)

    def _mark(self, alert_ids: list[int]) -> None:
        now = utcnow()
        with transaction(self.sessions) as s:
            for alert_id in alert_ids:
                row = s.get(StaffAlert, alert_id)
                if row is not None and row.delivered_at is None:
                    row.delivered_at = now
                    s.add(row)

    # ----- staff writing in the supergroup
    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        user = update.effective_user
        if msg is None or user is None or user.is_bot or msg.chat_id != self.chat_id or not msg.text:
            return
        thread = msg.message_thread_id if msg.is_topic_message else None
        try:
            answer = await anyio.to_thread.run_sync(self.staff_action, user.id, thread, msg.text)
        except Exception as exc:
            log.error("telegram: staff action failed: %s", type(exc).__name__)
            answer = "⚠️ 処理できませんでした。お手数ですがコンソールから操作してください。"
        if answer is not None:
            await self.app.bot.send_message(self.chat_id, answer, message_thread_id=thread)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: update failed: %s", type(context.error).__name__)

    def staff_action(self, telegram_user_id: int, thread_id: int | None, text: str) -> str | None:
        """What a message in the staff chat does; the answer to post in the topic, or None to stay silent."""
        command, arg = _parse_command(text)
        with transaction(self.sessions) as s:
            who = staffdb.get_staff_by_telegram(s, telegram_user_id=telegram_user_id)
            if who is None:
                log.info("telegram: message from an unlinked user ignored")
                return None
            if thread_id is None:
                return HELP if command in ("/help", "/start") else None
            case_id = staffdb.case_for_topic(s, chat_id=self.chat_id, thread_id=thread_id)
            case = crud.get_case(s, case_id=case_id) if case_id is not None else None
            if case is None or case.id is None:
                return None
            case_id = case.id
            username = who.username
            is_open = case.status in OPEN_CASE_STATUSES
            office = case.channel == staffdb.OFFICE_CHANNEL
            may_reply = staffdb.can_reply(who, case)
            may_manage = staffdb.can_manage_case(who, case)
            if command == "/claim":
                if not may_manage:
                    return "⛔ この操作の権限がありません。"
                staffdb.set_assignee(s, case=case, assignee=username)
                if case.status == CaseStatus.NEW:
                    crud.set_case_status(s, case=case, status=CaseStatus.IN_PROGRESS)
                staffdb.audit(s, actor=username, action="claim", record_type="case", record_id=case_id, via="telegram")
                return f"✋ {who.display_name or username} さんが担当します（受付番号 {case_id}）。"
            if command == "/note":
                if not may_reply:
                    return "⛔ この操作の権限がありません。"
                if not arg:
                    return "使い方：/note メモの本文"
                note = staffdb.add_note(s, case_id=case_id, author=username, text=arg[:10000])
                staffdb.audit(
                    s,
                    actor=username,
                    action="create",
                    record_type="note",
                    record_id=note.id,
                    detail=f"case {case_id}",
                    via="telegram",
                )
                return "📝 内部メモを保存しました（保護者には送信されません）。"
            if command in ("/help", "/start"):
                return HELP
            if command == "/resolve":
                if not may_manage:
                    return "⛔ この操作の権限がありません。"
                if not is_open:
                    return "このケースは既に終了しています。"
                if office:
                    crud.set_case_status(s, case=case, status=CaseStatus.RESOLVED)
            elif command is not None:
                return HELP
            elif not may_reply:
                return "⛔ この操作の権限がありません。"
            elif not is_open:
                return "このケースは終了しています。返信は送信していません。"
            elif office:
                return "このケースは窓口・電話で受け付けたため、チャットでは返信できません。"
        if command == "/resolve":
            if not office:
                staff_actions.resolve_case(self.sessions, case_id=case_id, status=CaseStatus.RESOLVED)
            with transaction(self.sessions) as s:
                staffdb.audit(
                    s,
                    actor=username,
                    action="resolve",
                    record_type="case",
                    record_id=case_id,
                    detail="resolved",
                    via="telegram",
                )
            self._replied()
            return f"✅ 受付番号 {case_id} を解決にしました。会話はBotに戻りました。"
        message_id = staff_actions.reply_to_parent(self.sessions, case_id=case_id, text=arg[:5000], staff=username)
        with transaction(self.sessions) as s:
            staffdb.audit(
                s,
                actor=username,
                action="reply",
                record_type="case",
                record_id=case_id,
                detail=f"message {message_id}",
                via="telegram",
            )
        self._replied()
        return f"📨 保護者に送信しました（受付番号 {case_id}）。送信状況はコンソールで確認できます。"

    def _replied(self) -> None:
        if self.on_reply is not None:
            self.on_reply()

    # ----- the webhook route
    def router(self, max_body_bytes: int = 1_000_000) -> APIRouter:
        router = APIRouter()
        secret = self.settings.webhook_secret.get_secret_value().encode() if self.settings.webhook_secret else b""

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> Response:
            got = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
            if not secret or not hmac.compare_digest(got, secret):
                log.warning("telegram webhook refused: bad or missing secret token")
                return JSONResponse({"error": "forbidden"}, status_code=403)
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse({"error": "request body too large"}, status_code=413)
            if not self.ready:
                return JSONResponse({"error": "starting"}, status_code=503)
            try:
                update = Update.de_json(json.loads(body), self.app.bot)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("telegram webhook refused: %s", type(exc).__name__)
                return JSONResponse({"error": "malformed update"}, status_code=400)
            await self.app.process_update(update)
            return JSONResponse({})

        return router


def _clip(message: Message) -> str:
    text = " ".join(message.text.split())
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def build(
    settings: Settings,
    sessions: SessionFactory,
    *,
    kb: KnowledgeBase | None = None,
    on_reply: Callable[[], None] | None = None,
) -> TelegramBridge:
    """The bridge for the app's lifespan (when TELEGRAM_BOT_TOKEN and TELEGRAM_STAFF_CHAT_ID are set)."""
    return TelegramBridge(settings, sessions, kb=kb, on_reply=on_reply)

"""Sending staff notices: plan a run, then deliver it in batches, resumably and without duplicates.

1. `plan_run` writes one `NoticeDelivery` per recipient in the same transaction as the `NoticeRun` (chunked
   inserts), so a run is either fully planned or not at all.
2. `NoticeSender.send_run` claims batches: a LINE multicast of ≤500 user ids (one language each), one LINE
   broadcast, or an email batch. Just before a batch is formed the recipients' subscription and topic are read
   again: those who left are `skipped`. The batch (with its UUID `retry_key`) is committed *before* the call,
   so after a crash (kill -9) a resume repeats the very same call with the same X-Line-Retry-Key: LINE answers
   409 for a call it already accepted, which counts as sent. Zero duplicates, zero misses on LINE.
   Email has no such key: each message is marked sent right after the SMTP server took it, so a crash can
   repeat at most the one message in flight (with the same Message-ID, which mail clients collapse).
3. 429, 5xx and timeouts are retried with exponential backoff and the same key; other 4xx fail the batch
   (`retry_failed` reopens it, same key). Rates are token buckets per channel (`NoticeSettings`).
4. Per channel a lane: one producer forms `claim_ahead` batches per transaction just ahead of the calls (that is
   when subscriptions are re-read), `line_concurrency` senders make the calls, one finisher records results in
   groups. Two processes on one run are harmless: PostgreSQL's SKIP LOCKED keeps new batches apart, and a
   batch both repeat carries one retry key.

Broadcast (decided when planning, checked again before the call): only for "everyone on LINE" — topic
general, no language or age filter, a single text, and no LINE follower who turned general notices off. A
broadcast reaches every follower and cannot leave anyone out, so one opt-out means multicast instead.

Logs carry ids, counts and status codes only: never user ids, addresses or text.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, any_, bindparam, func, insert, text, tuple_, update
from sqlalchemy import select as sa_select  # more columns than sqlmodel's select() types
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handlers import channels
from handlers.types import BulkAdapter, Capabilities, DeliveryError
from storage import lifecycle
from storage import notices as store
from storage.db import SessionFactory, transaction
from storage.models import Contact, utcnow
from storage.notices import (
    BatchStatus,
    DeliveryStatus,
    Notice,
    NoticeBatch,
    NoticeDelivery,
    NoticeKind,
    NoticeRun,
    NoticeStatus,
    RunStatus,
)

if TYPE_CHECKING:
    from bot.settings import NoticeSettings, Settings

log = logging.getLogger("concierge.notices")
ANALYZE_ABOVE = 5000  # recipients
PG_PRODUCERS = 3  # batch-forming transactions at once on PostgreSQL
FINISH_EVERY = 0.05  # seconds: sent batches are recorded in groups, at most this late
NO_SYNC = {"synchronize_session": False}  # bulk updates: no ORM objects of these rows are held


# ----- rate limiting


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take()` waits for one. Shared by a channel's senders.

    A bucket that may save up a few tokens makes up for late wake-ups (a busy event loop), which a bucket of one
    loses for good; so that the saved tokens never add up to more than the API allows, no more than `cap` calls
    (`rate` less a small margin for network jitter) go out in any one second (LINE limits per second)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        cap: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate * 0.05)
        self.cap = cap if cap is not None else max(1, int(rate * 0.98) if rate >= 50 else int(rate))
        self._clock = clock
        self._tokens = 1.0
        self._at = clock()
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if self._tokens >= 1.0 and len(self._sent) < self.cap:
                    self._tokens -= 1.0
                    self._sent.append(now)
                    return
                wait = (1.0 - self._tokens) / self.rate if self._tokens < 1.0 else 0.0
                if len(self._sent) >= self.cap:
                    wait = max(wait, 1.0 - (now - self._sent[0]))
                await asyncio.sleep(max(wait, 0.0005))


# ----- the channels' side


@dataclass(frozen=True)
class Quota:
    """This month's LINE message quota: `limit` None means no limit (type "none")."""

    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


async def read_quota(settings: Settings) -> Quota | None:
    """The LINE monthly quota and consumption, or None when LINE is off or unreachable."""
    from handlers.channels.line import build_sender

    line = build_sender(settings, _no_sessions)
    if line is None:
        return None
    try:
        limit, used = await line.quota()
        return Quota(limit=limit, used=used)
    except Exception as exc:  # an estimate goes on without it
        log.info("LINE quota not read: %s %s", type(exc).__name__, getattr(exc, "status", "") or "")
        return None
    finally:
        await line.aclose()


def _no_sessions() -> Session:
    raise RuntimeError("reading the LINE quota opens no database")


def line_quota(settings: Settings) -> Quota | None:
    """`read_quota` for synchronous callers (console, CLI); not from inside a running event loop."""
    return asyncio.run(read_quota(settings))


# ----- planning


def delivery_lang(notice: Notice, lang: str | None) -> str:
    """The text language a recipient gets: theirs when the notice has it, else Japanese."""
    return lang if lang and notice.texts.get(lang) else store.DEFAULT_LANG


def plan_run(
    session: Session,
    *,
    notice: Notice,
    planned_for: dt.datetime,
    settings: NoticeSettings,
    on: dt.date | None = None,
    contact_ids: Sequence[int] | None = None,
) -> NoticeRun:
    """The run for (notice, planned_for) with a delivery per recipient; an existing run with that key is
    returned as it is. `contact_ids` overrides the segment (age reminders). No commit."""
    assert notice.id is not None
    key = store.run_key(notice_id=notice.id, planned_for=planned_for)
    existing = session.exec(select(NoticeRun).where(col(NoticeRun.key) == key)).first()
    if existing is not None:
        return existing
    ids = list(contact_ids) if contact_ids is not None else store.recipients(session, notice=notice, on=on)
    broadcast = (
        settings.line_broadcast
        and contact_ids is None
        and notice.kind != NoticeKind.AGE
        and store.broadcast_eligible(session, notice=notice)
    )
    run = NoticeRun(notice_id=notice.id, key=key, planned_for=planned_for, broadcast=broadcast)
    session.add(run)
    session.flush()
    assert run.id is not None
    info = store.contact_langs(session, contact_ids=ids)
    now = utcnow()
    rows = [
        {
            "run_id": run.id,
            "contact_id": cid,
            "channel": info[cid][0],
            "lang": delivery_lang(notice, info[cid][1]),
            "status": DeliveryStatus.PENDING.value,
            "updated_at": now,
        }
        for cid in ids
        if cid in info
    ]
    chunk = max(1, settings.plan_chunk)
    for start in range(0, len(rows), chunk):
        session.connection().execute(insert(NoticeDelivery), rows[start : start + chunk])
    run.total = len(rows)
    run.status = RunStatus.SENDING
    run.heartbeat_at = utcnow()  # planning a large audience takes a while: the sender's clock starts now
    session.add(run)
    if notice.kind == NoticeKind.ONCE and notice.status == NoticeStatus.SCHEDULED:
        notice.status = NoticeStatus.SENDING
        notice.updated_at = now
        session.add(notice)
    log.info("notice %s: run %s planned, %d recipients, broadcast=%s", notice.id, run.id, len(rows), broadcast)
    return run


# ----- sending


@dataclass
class RunResult:
    run_id: int
    notice_id: int
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    done: bool = False


@dataclass
class _Claim:
    batch_id: int
    retry_key: str
    lang: str
    mode: str  # multicast | broadcast | email
    members: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, external id)


@dataclass
class Cursor:
    """Where a producer's last claim ended, in (language, id) order."""

    at: tuple[str, int] | None = None


@dataclass
class _Done:
    batch_id: int
    ok: bool
    reason: str | None
    attempts: int


class NoticeSender:
    """Delivers planned runs. Per channel a lane: one producer forms batches (a few at a time, in one
    transaction) just ahead of the senders, N senders make the calls, one finisher records results in groups.
    `aclose()` when done."""

    def __init__(
        self, *, settings: Settings, sessions: SessionFactory, senders: Mapping[str, BulkAdapter] | None = None
    ) -> None:
        self.settings = settings
        self.config = settings.notices
        self.sessions = sessions
        # The channels that send notices, by name (handlers.channels.build_senders); a channel with bulk
        # capability that is missing here is not configured, and its deliveries fail as "channel_off".
        self.senders = dict(senders or {})
        self.tz = ZoneInfo(settings.office_hours.timezone)
        self.buckets = {c.channel: TokenBucket(self._rate(c.channel)) for c in self._channels()}

    @classmethod
    def from_settings(cls, settings: Settings, sessions: SessionFactory) -> NoticeSender:
        return cls(settings=settings, sessions=sessions, senders=channels.build_senders(settings, sessions))

    async def aclose(self) -> None:
        for sender in self.senders.values():
            await sender.aclose()

    @staticmethod
    def _channels() -> list[Capabilities]:
        return [c for c in channels.all_capabilities() if c.bulk > 0]

    def _rate(self, channel: str) -> float:
        """Calls a second allowed on `channel`: NoticeSettings' `<channel>_multicast_per_second` or
        `<channel>_per_second`."""
        for name in (f"{channel}_multicast_per_second", f"{channel}_per_second"):
            value = getattr(self.config, name, None)
            if isinstance(value, int | float) and value > 0:
                return float(value)
        return 1.0

    def _concurrency(self, channel: str) -> int:
        value = getattr(self.config, f"{channel}_concurrency", 1)
        return max(1, int(value))

    def _batch_size(self, caps: Capabilities) -> int:
        """Recipients per claimed batch: the channel's bulk size, or for one-at-a-time channels
        NoticeSettings' `<channel>_batch_size` (each recipient is still recorded on its own)."""
        if caps.bulk > 1:
            return caps.bulk
        return max(1, int(getattr(self.config, f"{caps.channel}_batch_size", 1)))

    # --- entry points
    async def send_notice(self, notice_id: int, *, planned_for: dt.datetime | None = None) -> RunResult | None:
        """Plan (or find) the run of `planned_for` (default: the notice's send_at, else now) and send it.
        None when the notice may not be sent (draft, awaiting approval, cancelled, sent)."""
        run_id = await asyncio.to_thread(self._plan, notice_id, planned_for)
        if run_id is None:
            return None
        return await self.send_run(run_id)

    def _plan(self, notice_id: int, planned_for: dt.datetime | None) -> int | None:
        for _ in range(2):  # a second process planning the same key at the same moment: read theirs
            try:
                with transaction(self.sessions) as session:
                    notice = store.get_notice(session, notice_id=notice_id)
                    if notice is None or not store.may_send(notice):
                        return None
                    when = planned_for or notice.send_at or utcnow()
                    run = plan_run(
                        session,
                        notice=notice,
                        planned_for=when,
                        settings=self.config,
                        on=when.astimezone(self.tz).date(),
                    )
                    return run.id
            except IntegrityError:
                continue
        return None

    async def send_run(self, run_id: int) -> RunResult:
        """Deliver what is still pending in the run; a resume is the same call. Batches formed before (by a
        process that died) go first, unchanged and with their retry keys. While it runs, the run's heartbeat is
        renewed: a run whose heartbeat stops has lost its sender (scheduler/notices.py resumes it)."""
        beat = asyncio.create_task(self._heartbeat(run_id), name=f"notice-run-{run_id}-heartbeat")
        try:
            return await self._send_run(run_id)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, run_id: int) -> None:
        while True:
            try:
                await asyncio.to_thread(self._beat, run_id)
            except Exception as exc:  # the database busy or away for a moment: the next beat may pass
                log.warning("notice run %s: heartbeat failed: %s", run_id, type(exc).__name__)
            await asyncio.sleep(max(0.1, self.config.heartbeat_seconds))

    def _beat(self, run_id: int) -> None:
        with transaction(self.sessions) as session:
            session.exec(
                update(NoticeRun).where(col(NoticeRun.id) == run_id).values(heartbeat_at=utcnow()),
                execution_options=NO_SYNC,
            )

    async def _send_run(self, run_id: int) -> RunResult:
        notice = await asyncio.to_thread(self._notice_of_run, run_id)
        await asyncio.to_thread(self._analyze, run_id)
        earlier = await asyncio.to_thread(self._open_batches, run_id)
        lanes: list[Any] = []
        for caps in self._channels():
            name = caps.channel
            if name not in self.senders:
                await asyncio.to_thread(self._fail_channel, run_id, name)
            elif caps.broadcast and await asyncio.to_thread(self._use_broadcast, run_id, notice):
                lanes.append(self._lane(run_id, notice, name, "broadcast", None, 1, earlier.get(name, [])))
            elif caps.bulk > 1:
                n = self._concurrency(name)
                lanes.append(self._lane(run_id, notice, name, "multicast", caps.bulk, n, earlier.get(name, [])))
            else:
                size = self._batch_size(caps)
                lanes.append(self._lane(run_id, notice, name, "single", size, 1, earlier.get(name, [])))
        await asyncio.gather(*lanes)
        return await asyncio.to_thread(self._finish_run, run_id)

    # --- a lane: producer -> senders -> finisher
    async def _lane(
        self,
        run_id: int,
        notice: Notice,
        channel: str,
        mode: str,
        size: int | None,
        senders: int,
        earlier: list[_Claim],
    ) -> None:
        ahead = max(1, self.config.claim_ahead) if size is not None else 1
        todo: asyncio.Queue[_Claim | None] = asyncio.Queue(maxsize=max(ahead, senders) + senders)
        done: asyncio.Queue[_Done | None] = asyncio.Queue()

        async def produce_one() -> None:
            cursor = Cursor()
            while True:
                claims = await asyncio.to_thread(
                    self._claim_batches, run_id, notice, channel, mode, size, ahead, cursor
                )
                if not claims:
                    return
                for claim in claims:
                    await todo.put(claim)

        async def produce() -> None:
            for claim in earlier:
                await todo.put(claim)
            # PostgreSQL: forming batches costs mostly server time, and SKIP LOCKED keeps two producers apart.
            # SQLite has one writer: one producer.
            producers = PG_PRODUCERS if size is not None and self._dialect() == "postgresql" else 1
            await asyncio.gather(*(produce_one() for _ in range(producers)))
            for _ in range(senders):
                await todo.put(None)

        async def send() -> None:
            while (claim := await todo.get()) is not None:
                await done.put(await self._deliver(run_id, notice, channel, claim))

        async def finish() -> None:
            while True:
                items = [await done.get()]
                if items[0] is not None:
                    await asyncio.sleep(FINISH_EVERY)  # record a few batches per transaction
                while not done.empty():
                    items.append(done.get_nowait())
                results = [i for i in items if i is not None]
                if results:
                    await asyncio.to_thread(self._finish_batches, results)
                if len(results) < len(items):
                    return

        finisher = asyncio.create_task(finish())
        tasks = [asyncio.create_task(produce()), *(asyncio.create_task(send()) for _ in range(senders))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        finally:
            await done.put(None)  # what was sent is recorded even when something failed
            await finisher

    async def _deliver(self, run_id: int, notice: Notice, channel: str, claim: _Claim) -> _Done:
        if not claim.members:
            return _Done(claim.batch_id, True, None, 0)
        text = notice.text_for(claim.lang)
        sender = self.senders[channel]
        bucket = self.buckets[channel]
        if sender.capabilities.bulk == 1:
            return await self._deliver_each(run_id, sender, bucket, claim, text)
        to = [] if claim.mode == "broadcast" else [m[1] for m in claim.members]
        call = functools.partial(sender.send_bulk, to, text, lang=claim.lang, key=claim.retry_key)
        ok, reason, attempts = await self._with_retries(bucket, call)
        return _Done(claim.batch_id, ok, reason, attempts)

    async def _deliver_each(
        self, run_id: int, sender: BulkAdapter, bucket: TokenBucket, claim: _Claim, text: str
    ) -> _Done:
        """One call per recipient, each recorded right after it: a crash repeats at most the one in flight,
        under the same key."""
        failures: list[str] = []
        attempts = 0
        for delivery_id, address in claim.members:
            send = functools.partial(sender.send_bulk, [address], text, lang=claim.lang, key=f"{run_id}.{delivery_id}")
            ok, reason, n = await self._with_retries(bucket, send)
            attempts += n
            if not ok:
                failures.append(reason or "failed")
            await asyncio.to_thread(self._mark, delivery_id, ok=ok, reason=reason)
        return _Done(claim.batch_id, len(failures) < len(claim.members), failures[0] if failures else None, attempts)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.config.backoff_max_seconds, self.config.backoff_seconds * 2 ** (attempt - 1)))

    async def _with_retries(self, bucket: TokenBucket, call: Callable[[], Any]) -> tuple[bool, str | None, int]:
        """(ok, reason, attempts): the same call (same retry key) repeated on 429/5xx/timeouts."""
        reason: str | None = None
        attempts = max(1, self.config.retry_attempts)
        for attempt in range(1, attempts + 1):
            await bucket.take()
            try:
                await call()
                return True, None, attempt
            except DeliveryError as exc:
                reason = exc.reason[:64]
                if not exc.retry:
                    return False, reason, attempt
                if attempt < attempts:
                    await asyncio.sleep(self._backoff(attempt))
        return False, f"{reason}:gave_up", attempts

    # --- database steps (in threads)
    def _notice_of_run(self, run_id: int) -> Notice:
        with self.sessions() as session:
            run = session.get(NoticeRun, run_id)
            if run is None:
                raise LookupError(f"no notice run {run_id}")
            notice = session.get(Notice, run.notice_id)
            assert notice is not None
            return notice

    def _dialect(self) -> str:
        with self.sessions() as session:
            return str(session.get_bind().dialect.name)

    def _analyze(self, run_id: int) -> None:
        """PostgreSQL: a large run has just added most of the table's rows; without fresh statistics the
        planner picks sequential scans for the batch updates until autovacuum gets to it."""
        with transaction(self.sessions) as session:
            run = session.get(NoticeRun, run_id)
            if run is not None and run.total >= ANALYZE_ABOVE and session.get_bind().dialect.name == "postgresql":
                session.connection().execute(text("ANALYZE noticedelivery"))

    def _open_batches(self, run_id: int) -> dict[str, list[_Claim]]:
        """Batches formed earlier and not finished, by channel, with their members still pending."""
        out: dict[str, list[_Claim]] = {}
        with self.sessions() as session:
            batches = session.exec(
                select(NoticeBatch)
                .where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.status) == BatchStatus.PENDING)
                .order_by(col(NoticeBatch.id))
            ).all()
            for b in batches:
                assert b.id is not None
                claim = _Claim(b.id, b.retry_key, b.lang, b.mode, self._members(session, b.id))
                out.setdefault(b.channel, []).append(claim)
        return out

    def _use_broadcast(self, run_id: int, notice: Notice) -> bool:
        with transaction(self.sessions) as session:
            run = session.get(NoticeRun, run_id)
            assert run is not None
            if not run.broadcast:
                return False
            formed = session.exec(
                select(NoticeBatch.id).where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.mode) == "broadcast")
            ).first()
            if formed is not None or store.broadcast_eligible(session, notice=notice):
                return True
            run.broadcast = False  # someone opted out since planning: multicast leaves them out
            session.add(run)
            log.info("notice run %s: broadcast no longer possible, using multicast", run_id)
            return False

    def _fail_channel(self, run_id: int, channel: str) -> None:
        """The channel is not configured: its pending deliveries (and formed batches) fail."""
        now = utcnow()
        with transaction(self.sessions) as session:
            session.exec(
                update(NoticeDelivery)
                .where(
                    col(NoticeDelivery.run_id) == run_id,
                    col(NoticeDelivery.channel) == channel,
                    col(NoticeDelivery.status) == DeliveryStatus.PENDING,
                )
                .values(status=DeliveryStatus.FAILED, reason="channel_off", updated_at=now),
                execution_options=NO_SYNC,
            )
            session.exec(
                update(NoticeBatch)
                .where(
                    col(NoticeBatch.run_id) == run_id,
                    col(NoticeBatch.channel) == channel,
                    col(NoticeBatch.status) == BatchStatus.PENDING,
                )
                .values(status=BatchStatus.FAILED, error="channel_off"),
                execution_options=NO_SYNC,
            )

    def _claim_batches(
        self,
        run_id: int,
        notice: Notice,
        channel: str,
        mode: str,
        size: int | None,
        count: int,
        cursor: Cursor | None = None,
    ) -> list[_Claim]:
        """New batches (up to `count` of `size`, one language each) from pending deliveries; just before, the
        recipients' subscription and topic are read again and those who left are marked skipped. Committed
        before any call is made. Empty when nothing is left or the notice was cancelled."""
        with transaction(self.sessions) as session:
            current = session.get(Notice, notice.id)
            if current is None or current.status == NoticeStatus.CANCELLED:
                return []  # batches formed earlier still go out; nothing new
            query = (
                sa_select(
                    col(NoticeDelivery.id),
                    col(NoticeDelivery.contact_id),
                    col(NoticeDelivery.lang),
                    col(Contact.external_id),
                    col(Contact.subscribed),
                    col(lifecycle.NoticeTopic.enabled),
                )
                .join(Contact, col(Contact.id) == col(NoticeDelivery.contact_id))
                .outerjoin(
                    lifecycle.NoticeTopic,
                    (col(lifecycle.NoticeTopic.contact_id) == col(NoticeDelivery.contact_id))
                    & (col(lifecycle.NoticeTopic.topic) == notice.topic),
                )
                .where(
                    col(NoticeDelivery.run_id) == run_id,
                    col(NoticeDelivery.status) == DeliveryStatus.PENDING,
                    col(NoticeDelivery.channel) == channel,
                    col(NoticeDelivery.batch_id).is_(None),
                )
                .order_by(col(NoticeDelivery.lang), col(NoticeDelivery.id))
            )
            if size is not None:
                query = query.limit(size * count)
            while True:
                step = query
                if cursor is not None and cursor.at is not None:
                    # Start past what this producer has taken: PostgreSQL keeps the index entries of the rows
                    # already sent until vacuum, and scanning them again on every claim would grow with the run.
                    step = query.where(tuple_(col(NoticeDelivery.lang), col(NoticeDelivery.id)) > cursor.at)
                rows = list(session.connection().execute(step.with_for_update(skip_locked=True, of=NoticeDelivery)))
                if not rows:
                    return []
                if cursor is not None:
                    cursor.at = (str(rows[-1][2]), int(rows[-1][0] or 0))
                # lifecycle.audience's rule, read now: subscribed, and the topic on (its default when unset).
                default_on = notice.topic in lifecycle.DEFAULT_ON
                wanted = {r[1] for r in rows if r[4] and (default_on if r[5] is None else r[5])}
                now = utcnow()
                gone = [r for r in rows if r[1] not in wanted]
                for reason, ids in (
                    ("unsubscribed", [r[0] for r in gone if not r[4]]),
                    ("topic_off", [r[0] for r in gone if r[4]]),
                ):
                    for start in range(0, len(ids), 1000):
                        session.connection().execute(
                            update(NoticeDelivery)
                            .where(col(NoticeDelivery.id).in_(ids[start : start + 1000]))
                            .values(status=DeliveryStatus.SKIPPED, reason=reason, updated_at=now),
                            execution_options=NO_SYNC,
                        )
                keep = [r for r in rows if r[1] in wanted]
                if keep:
                    break
            groups: list[tuple[str, list[tuple[int, str]]]] = []
            for r in keep:
                lang = store.DEFAULT_LANG if mode == "broadcast" else str(r[2])
                member = (int(r[0] or 0), str(r[3]))
                if groups and groups[-1][0] == lang and (size is None or len(groups[-1][1]) < size):
                    groups[-1][1].append(member)
                else:
                    groups.append((lang, [member]))
            batches = [
                NoticeBatch(
                    run_id=run_id, channel=channel, mode=mode, lang=lang, retry_key=str(uuid.uuid4()), size=len(members)
                )
                for lang, members in groups
            ]
            session.add_all(batches)
            session.flush()
            postgres = session.get_bind().dialect.name == "postgresql"
            claims: list[_Claim] = []
            for batch, (lang, members) in zip(batches, groups, strict=True):
                assert batch.id is not None
                # The members are consecutive in (language, id) order among the pending unbatched deliveries and
                # the skipped ones are no longer pending, so an id range names exactly them (no long IN list).
                scope = [
                    col(NoticeDelivery.run_id) == run_id,
                    col(NoticeDelivery.status) == DeliveryStatus.PENDING,
                    col(NoticeDelivery.channel) == channel,
                    col(NoticeDelivery.batch_id).is_(None),
                ]
                if mode != "broadcast":
                    scope += [
                        col(NoticeDelivery.lang) == lang,
                        col(NoticeDelivery.id) >= members[0][0],
                        col(NoticeDelivery.id) <= members[-1][0],
                    ]
                if postgres:
                    # Two producers' SKIP LOCKED claims may interleave within a range: name the rows exactly (one
                    # array parameter), so an update never waits on, or deadlocks with, the other's locked rows.
                    ids = [m[0] for m in members]
                    scope.append(col(NoticeDelivery.id) == any_(bindparam("member_ids", ids, type_=ARRAY(Integer))))
                session.connection().execute(
                    update(NoticeDelivery).where(*scope).values(batch_id=batch.id, updated_at=now),
                    execution_options=NO_SYNC,
                )
                claims.append(_Claim(batch.id, batch.retry_key, lang, mode, members))
            return claims

    @staticmethod
    def _members(session: Session, batch_id: int) -> list[tuple[int, str]]:
        rows = session.exec(
            select(NoticeDelivery.id, Contact.external_id)
            .join(Contact, col(Contact.id) == col(NoticeDelivery.contact_id))
            .where(col(NoticeDelivery.batch_id) == batch_id, col(NoticeDelivery.status) == DeliveryStatus.PENDING)
            .order_by(col(NoticeDelivery.id))
        )
        return [(int(i), str(e)) for i, e in rows if i is not None]

    def _finish_batches(self, results: list[_Done]) -> None:
        now = utcnow()
        with transaction(self.sessions) as session:
            for r in results:
                session.connection().execute(
                    update(NoticeBatch)
                    .where(col(NoticeBatch.id) == r.batch_id)
                    .values(
                        status=BatchStatus.SENT if r.ok else BatchStatus.FAILED,
                        attempts=col(NoticeBatch.attempts) + r.attempts,
                        error=r.reason,
                        sent_at=now if r.ok else None,
                    ),
                    execution_options=NO_SYNC,
                )
                session.connection().execute(
                    update(NoticeDelivery)
                    .where(
                        col(NoticeDelivery.batch_id) == r.batch_id, col(NoticeDelivery.status) == DeliveryStatus.PENDING
                    )
                    .values(
                        status=DeliveryStatus.SENT if r.ok else DeliveryStatus.FAILED,
                        reason=None if r.ok else r.reason,
                        updated_at=now,
                    ),
                    execution_options=NO_SYNC,
                )

    def _mark(self, delivery_id: int, *, ok: bool, reason: str | None) -> None:
        with transaction(self.sessions) as session:
            session.exec(
                update(NoticeDelivery)
                .where(col(NoticeDelivery.id) == delivery_id)
                .values(
                    status=DeliveryStatus.SENT if ok else DeliveryStatus.FAILED,
                    reason=reason,
                    updated_at=utcnow(),
                ),
                execution_options=NO_SYNC,
            )

    def _finish_run(self, run_id: int) -> RunResult:
        with transaction(self.sessions) as session:
            run = session.get(NoticeRun, run_id)
            assert run is not None
            notice = session.get(Notice, run.notice_id)
            assert notice is not None
            if notice.status == NoticeStatus.CANCELLED:
                session.exec(
                    update(NoticeDelivery)
                    .where(
                        col(NoticeDelivery.run_id) == run_id,
                        col(NoticeDelivery.status) == DeliveryStatus.PENDING,
                        col(NoticeDelivery.batch_id).is_(None),
                    )
                    .values(status=DeliveryStatus.SKIPPED, reason="cancelled", updated_at=utcnow()),
                    execution_options=NO_SYNC,
                )
            counts = store.delivery_counts(session, run_id=run_id)
            open_batches = session.exec(
                select(func.count())
                .select_from(NoticeBatch)
                .where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.status) == BatchStatus.PENDING)
            ).one()
            done = counts[DeliveryStatus.PENDING] == 0 and int(open_batches) == 0
            run.sent = counts[DeliveryStatus.SENT]
            run.failed = counts[DeliveryStatus.FAILED]
            run.skipped = counts[DeliveryStatus.SKIPPED]
            if done and run.status != RunStatus.DONE:
                run.status = RunStatus.DONE
                run.finished_at = utcnow()
                if notice.kind == NoticeKind.ONCE and notice.status == NoticeStatus.SENDING:
                    notice.status = NoticeStatus.SENT
                    notice.updated_at = utcnow()
                    session.add(notice)
            session.add(run)
            log.info(
                "notice %s run %s: sent %d, failed %d, skipped %d, pending %d",
                run.notice_id,
                run_id,
                run.sent,
                run.failed,
                run.skipped,
                counts[DeliveryStatus.PENDING],
            )
            return RunResult(
                run_id=run_id,
                notice_id=run.notice_id,
                total=run.total,
                sent=run.sent,
                failed=run.failed,
                skipped=run.skipped,
                pending=counts[DeliveryStatus.PENDING],
                done=done,
            )


# ----- synchronous entry points (scheduler jobs, CLI)


async def _with_sender(settings: Settings, sessions: SessionFactory, work: Callable[[NoticeSender], Any]) -> Any:
    sender = NoticeSender.from_settings(settings, sessions)
    try:
        return await work(sender)
    finally:
        await sender.aclose()


def send_now(
    settings: Settings, sessions: SessionFactory, *, notice_id: int, planned_for: dt.datetime | None = None
) -> RunResult | None:
    """Plan and send one run of a notice (None when it may not be sent)."""
    result: RunResult | None = asyncio.run(
        _with_sender(settings, sessions, lambda s: s.send_notice(notice_id, planned_for=planned_for))
    )
    return result


def unfinished_runs(session: Session, *, notice_id: int | None = None) -> list[int]:
    query = select(NoticeRun.id).where(col(NoticeRun.status) != RunStatus.DONE)
    if notice_id is not None:
        query = query.where(col(NoticeRun.notice_id) == notice_id)
    return [i for i in session.exec(query.order_by(col(NoticeRun.id))) if i is not None]


def retry_failed(session: Session, *, run_id: int) -> int:
    """Failed batches of a run go back to pending (same retry keys), so a resume tries them again; returns
    how many deliveries were reopened. No commit."""
    batch_ids = [
        b
        for b in session.exec(
            select(NoticeBatch.id).where(
                col(NoticeBatch.run_id) == run_id, col(NoticeBatch.status) == BatchStatus.FAILED
            )
        )
        if b is not None
    ]
    if not batch_ids:
        return 0
    session.exec(
        update(NoticeBatch).where(col(NoticeBatch.id).in_(batch_ids)).values(status=BatchStatus.PENDING, error=None),
        execution_options=NO_SYNC,
    )
    result = session.exec(
        update(NoticeDelivery)
        .where(col(NoticeDelivery.batch_id).in_(batch_ids), col(NoticeDelivery.status) == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, reason=None, updated_at=utcnow()),
        execution_options=NO_SYNC,
    )
    run = session.get(NoticeRun, run_id)
    if run is not None and run.status == RunStatus.DONE:
        run.status = RunStatus.SENDING
        run.finished_at = None
        session.add(run)
    return int(getattr(result, "rowcount", 0) or 0)


def resume(
    settings: Settings, sessions: SessionFactory, *, run_id: int | None = None, run_ids: Sequence[int] | None = None
) -> list[RunResult]:
    """Finish runs (default: every unfinished one, after a crash or a stop): stored batches are repeated with
    their retry keys, then the pending deliveries are sent."""
    if run_ids is not None:
        ids = list(run_ids)
    elif run_id is not None:
        ids = [run_id]
    else:
        with sessions() as session:
            ids = unfinished_runs(session)

    async def work(sender: NoticeSender) -> list[RunResult]:
        return [await sender.send_run(i) for i in ids]

    results: list[RunResult] = asyncio.run(_with_sender(settings, sessions, work))
    return results

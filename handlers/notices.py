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
   (`storage.notice_runs.retry_failed` reopens it, same key). Rates are token buckets per channel (`NoticeSettings`).
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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from handlers import channels
from handlers.types import BulkAdapter, Capabilities, DeliveryError
from storage import notice_runs as runs
from storage import notices as store
from storage.db import SessionFactory, transaction
from storage.models import utcnow
from storage.notice_runs import BatchResult, Claimed, Cursor
from storage.notices import DeliveryStatus, Notice, NoticeKind, NoticeRun, NoticeStatus, RunStatus

if TYPE_CHECKING:
    from bot.settings import NoticeSettings, Settings

log = logging.getLogger("concierge.notices")
ANALYZE_ABOVE = 5000  # recipients
PG_PRODUCERS = 3  # batch-forming transactions at once on PostgreSQL
FINISH_EVERY = 0.05  # seconds: sent batches are recorded in groups, at most this late


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

    def slow_down(self) -> None:
        """The API answered "too many requests": drop what was saved up, so the next calls go at the plain rate."""
        self._tokens = min(self._tokens, 0.0)

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
    existing = runs.find_run(session, key=key)
    if existing is not None:
        return existing
    ids = list(contact_ids) if contact_ids is not None else store.recipients(session, notice=notice, on=on)
    broadcast = (
        settings.line_broadcast
        and contact_ids is None
        and notice.kind != NoticeKind.AGE
        and store.broadcast_eligible(session, notice=notice, broadcast_channel=channels.broadcast_channel())
    )
    run = NoticeRun(notice_id=notice.id, key=key, planned_for=planned_for, broadcast=broadcast)
    session.add(run)
    session.flush()
    assert run.id is not None
    info = store.contact_langs(session, contact_ids=ids)
    now = utcnow()
    planned = [runs.Recipient(cid, info[cid][0], delivery_lang(notice, info[cid][1])) for cid in ids if cid in info]
    run.total = runs.add_deliveries(session, run_id=run.id, recipients=planned, chunk=settings.plan_chunk)
    run.status = RunStatus.SENDING
    run.heartbeat_at = utcnow()  # planning a large audience takes a while: the sender's clock starts now
    session.add(run)
    if notice.kind == NoticeKind.ONCE and notice.status == NoticeStatus.SCHEDULED:
        notice.status = NoticeStatus.SENDING
        notice.updated_at = now
        session.add(notice)
    log.info("notice %s: run %s planned, %d recipients, broadcast=%s", notice.id, run.id, run.total, broadcast)
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
            runs.renew_heartbeat(session, run_id=run_id)

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
        earlier: list[Claimed],
    ) -> None:
        ahead = max(1, self.config.claim_ahead) if size is not None else 1
        todo: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=max(ahead, senders) + senders)
        done: asyncio.Queue[BatchResult | None] = asyncio.Queue()

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

    async def _deliver(self, run_id: int, notice: Notice, channel: str, claim: Claimed) -> BatchResult:
        if not claim.members:
            return BatchResult.of(run_id, claim, ok=True, reason=None, attempts=0)
        text = notice.text_for(claim.lang)
        sender = self.senders[channel]
        bucket = self.buckets[channel]
        if sender.capabilities.bulk == 1:
            return await self._deliver_each(run_id, sender, bucket, claim, text)
        to = [] if claim.mode == "broadcast" else [m[1] for m in claim.members]
        call = functools.partial(sender.send_bulk, to, text, lang=claim.lang, key=claim.retry_key)
        ok, reason, attempts = await self._with_retries(bucket, call)
        return BatchResult.of(run_id, claim, ok=ok, reason=reason, attempts=attempts)

    async def _deliver_each(
        self, run_id: int, sender: BulkAdapter, bucket: TokenBucket, claim: Claimed, text: str
    ) -> BatchResult:
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
        ok = len(failures) < len(claim.members)
        return BatchResult.of(run_id, claim, ok=ok, reason=failures[0] if failures else None, attempts=attempts)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.config.backoff_max_seconds, self.config.backoff_seconds * 2 ** (attempt - 1)))

    def _retry_wait(self, bucket: TokenBucket, exc: DeliveryError, attempt: int) -> float:
        """A first "too many requests" means a few calls bunched up on the way (the bucket keeps under the
        limit as sent, not as received): every sender slows down and this call goes again at the next free
        slot, not after a backoff that would stall the run's tail. Repeated, or any other failure: backoff."""
        if exc.rate_limited and attempt == 1:
            bucket.slow_down()
            return 1.0 / bucket.rate
        return self._backoff(attempt)

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
                    await asyncio.sleep(self._retry_wait(bucket, exc, attempt))
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
            if run is not None and run.total >= ANALYZE_ABOVE:
                runs.refresh_statistics(session)

    def _open_batches(self, run_id: int) -> dict[str, list[Claimed]]:
        """Batches formed earlier and not finished, by channel, with their members still pending."""
        out: dict[str, list[Claimed]] = {}
        with self.sessions() as session:
            for channel, claim in runs.open_batches(session, run_id=run_id):
                out.setdefault(channel, []).append(claim)
        return out

    def _use_broadcast(self, run_id: int, notice: Notice) -> bool:
        with transaction(self.sessions) as session:
            run = session.get(NoticeRun, run_id)
            assert run is not None
            if not run.broadcast:
                return False
            if runs.broadcast_formed(session, run_id=run_id) or store.broadcast_eligible(
                session, notice=notice, broadcast_channel=channels.broadcast_channel()
            ):
                return True
            run.broadcast = False  # someone opted out since planning: multicast leaves them out
            session.add(run)
            log.info("notice run %s: broadcast no longer possible, using multicast", run_id)
            return False

    def _fail_channel(self, run_id: int, channel: str) -> None:
        """The channel is not configured: its pending deliveries (and formed batches) fail."""
        with transaction(self.sessions) as session:
            runs.fail_channel(session, run_id=run_id, channel=channel, reason="channel_off")

    def _claim_batches(
        self,
        run_id: int,
        notice: Notice,
        channel: str,
        mode: str,
        size: int | None,
        count: int,
        cursor: Cursor | None = None,
    ) -> list[Claimed]:
        """New batches (up to `count` of `size`, one language each) from pending deliveries; just before, the
        recipients' subscription and topic are read again and those who left are marked skipped. Committed
        before any call is made. Empty when nothing is left or the notice was cancelled."""
        with transaction(self.sessions) as session:
            current = store.get_notice(session, notice_id=notice.id or 0)
            if current is None or current.status == NoticeStatus.CANCELLED:
                return []  # batches formed earlier still go out; nothing new
            return runs.claim_batches(
                session, run_id=run_id, notice=notice, channel=channel, mode=mode, size=size, count=count, cursor=cursor
            )

    def _finish_batches(self, results: list[BatchResult]) -> None:
        with transaction(self.sessions) as session:
            runs.finish_batches(session, results=results)

    def _mark(self, delivery_id: int, *, ok: bool, reason: str | None) -> None:
        with transaction(self.sessions) as session:
            runs.mark_delivery(session, delivery_id=delivery_id, ok=ok, reason=reason)

    def _finish_run(self, run_id: int) -> RunResult:
        with transaction(self.sessions) as session:
            run = session.get(NoticeRun, run_id)
            assert run is not None
            notice = session.get(Notice, run.notice_id)
            assert notice is not None
            if notice.status == NoticeStatus.CANCELLED:
                runs.skip_unbatched(session, run_id=run_id, reason="cancelled")
            counts = store.delivery_counts(session, run_id=run_id)
            done = counts[DeliveryStatus.PENDING] == 0 and runs.open_batch_count(session, run_id=run_id) == 0
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
            ids = runs.unfinished_runs(session)

    async def work(sender: NoticeSender) -> list[RunResult]:
        return [await sender.send_run(i) for i in ids]

    results: list[RunResult] = asyncio.run(_with_sender(settings, sessions, work))
    return results

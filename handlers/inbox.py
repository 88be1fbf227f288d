"""The durable path between webhooks and the engine, and between the engine and the channels.

Routes call `accept` (store, then acknowledge); every new message is screened for crisis words there, and a
hit goes to the crisis lane, claimed before everything else. A worker loop claims stored events one at a
time, senders taking turns, runs the engine, and in the same transaction queues the replies and marks the
event done, so an event is processed once even if the process dies half-way. Each loop keeps a heartbeat:
work of a worker whose heartbeat stopped is claimed again within `dead_after` (seconds), work of a stuck
one after `stale_after`. Deliveries are claimed and sent by the same loop; failures are retried with
backoff and end as 'failed', counted for the concierge to see (as are events given up). Logs carry ids
and error class names only, never message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
from sqlmodel import Session

from handlers.engine import Engine
from handlers.types import (
    FAILED,
    SENT,
    ChannelAdapter,
    Delivery,
    DeliveryError,
    Reply,
    recorded_lines,
    replies_from_json,
    replies_to_json,
)
from storage import crud, queue
from storage.db import SessionFactory, transaction

log = logging.getLogger("concierge.inbox")


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    event_key: str
    sender_key: str
    payload: str
    text: str | None = None  # what the parent wrote, screened for crisis words at intake (never stored apart)


class Inbox:
    def __init__(
        self,
        sessions: SessionFactory,
        engine: Engine,
        adapters: Mapping[str, ChannelAdapter],
        *,
        worker_id: str | None = None,
        max_attempts: int = 5,
        max_delivery_attempts: int = 6,
        stale_after: dt.timedelta = dt.timedelta(minutes=2),
        dead_after: dt.timedelta = dt.timedelta(seconds=10),
        heartbeat_interval: float = 2.0,
        poll_interval: float = 0.5,
        backoff_base: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.engine = engine
        self.adapters = dict(adapters)
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.max_attempts = max_attempts
        self.max_delivery_attempts = max_delivery_attempts
        self.stale_after = stale_after
        self.dead_after = dead_after
        self.heartbeat_interval = heartbeat_interval
        self._after_sender: str | None = None  # the round-robin cursor over senders
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self._wake: asyncio.Event | None = None
        self._stopping = False

    # ----- intake (called by routes, in a worker thread)
    def accept(self, channel: str, events: list[IncomingEvent]) -> int:
        """Store events before the webhook is acknowledged; returns how many were new. A message with crisis
        words goes to the crisis lane (claimed before any other)."""
        rows = [(e.event_key, e.sender_key, e.payload, self._lane(e.text)) for e in events]
        with transaction(self.sessions) as s:
            return queue.store_events(s, channel=channel, events=rows)

    def _lane(self, text: str | None) -> int:
        # The cheap screen first: most messages have no crisis word at all and skip the analyser here
        # (the engine assesses every message in full anyway).
        crisis = self.engine.crisis
        if text and crisis.screen(text) and crisis.detect(text) is not None:
            return queue.CRISIS_LANE
        return queue.NORMAL_LANE

    def unfinished(self, channel: str, keys: list[str]) -> set[str]:
        """Which of these stored events are not processed yet."""
        with self.sessions() as s:
            return queue.unfinished_keys(s, channel=channel, keys=keys)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ----- processing
    def recover(self) -> int:
        with transaction(self.sessions) as s:
            return queue.recover_stale(s, older_than=self.stale_after) + queue.recover_dead(
                s, dead_after=self.dead_after
            )

    def beat(self) -> int:
        """Heartbeat, then take back the work of workers whose heartbeat stopped."""
        with transaction(self.sessions) as s:
            queue.beat(s, worker=self.worker_id)
        with transaction(self.sessions) as s:
            return queue.recover_dead(s, dead_after=self.dead_after)

    def process_one(self) -> bool:
        """Claim and process one stored event; False when there was none."""
        with transaction(self.sessions) as s:
            event = queue.claim_event(
                s, worker=self.worker_id, channels=list(self.adapters), after_sender=self._after_sender
            )
            if event is None:
                return False
            assert event.id is not None
            self._after_sender = event.sender_key
            event_id, channel, payload = event.id, event.channel, event.payload
        adapter = self.adapters[channel]
        try:
            parsed = adapter.parse_event(payload)
            message = parsed.message
            if message is None:
                with transaction(self.sessions) as s:
                    queue.finish_event(s, event_id=event_id, worker=self.worker_id)
                return True

            def before_commit(session: Session, replies: list[Reply]) -> None:
                if replies:
                    # The transcript lines of these replies stay queued until the channel accepted them; the
                    # first one is linked to the row, so a failure's reason shows beside it.
                    lines = recorded_lines(replies)
                    queue.enqueue_outbound(
                        session,
                        channel=channel,
                        recipient=message.sender_id,
                        payload=replies_to_json(replies),
                        retry_key=str(uuid.uuid4()),
                        reply_token=parsed.reply_token,
                        context=parsed.context,
                        message_id=lines[0] if lines else None,
                    )
                queue.finish_event(session, event_id=event_id, worker=self.worker_id)

            self.engine.handle(message, before_commit=before_commit)
        except queue.ClaimLostError:
            log.warning("event %s (%s) was taken over by another worker; its turn was rolled back", event_id, channel)
        except Exception as exc:
            log.warning("event %s (%s) failed: %s", event_id, channel, type(exc).__name__)
            with transaction(self.sessions) as s:
                given_up = queue.fail_event(
                    s, event_id=event_id, error=type(exc).__name__, max_attempts=self.max_attempts
                )
            if given_up:
                log.error(
                    "event %s (%s) given up after %d attempts: counted for staff", event_id, channel, self.max_attempts
                )
        return True

    async def deliver_one(self) -> bool:
        """Claim and deliver one queued reply; False when there was none due."""

        def claim() -> tuple[int, str, Delivery, list[int], int] | None:
            with transaction(self.sessions) as s:
                row = queue.claim_outbound(s, channels=list(self.adapters), worker=self.worker_id)
                if row is None:
                    return None
                assert row.id is not None
                delivery = Delivery(
                    recipient=row.recipient,
                    replies=replies_from_json(row.payload),
                    retry_key=row.retry_key,
                    reply_token=row.reply_token,
                    context=row.context,
                    reply_unconfirmed=row.reply_state == queue.ReplyState.RECLAIMED,
                )
                lines = recorded_lines(delivery.replies)
                if row.message_id is not None and row.message_id not in lines:
                    lines.append(row.message_id)
                return row.id, row.channel, delivery, lines, row.attempts

        claimed = await anyio.to_thread.run_sync(claim)
        if claimed is None:
            return False
        out_id, channel, delivery, lines, attempts = claimed
        try:
            await self.adapters[channel].deliver(delivery)
        except DeliveryError as exc:
            log.warning("delivery %s (%s) failed: %s", out_id, channel, exc.reason)
            await anyio.to_thread.run_sync(self._settle_failure, out_id, lines, attempts, exc)
            return True
        except Exception as exc:  # an adapter bug must not stop the loop
            log.error("delivery %s (%s) crashed: %s", out_id, channel, type(exc).__name__)
            failure = DeliveryError(type(exc).__name__, retry=False)
            await anyio.to_thread.run_sync(self._settle_failure, out_id, lines, attempts, failure)
            return True

        def done() -> None:
            with transaction(self.sessions) as s:
                queue.finish_outbound(s, outbound_id=out_id)
                _mark_lines(s, lines, SENT)

        await anyio.to_thread.run_sync(done)
        return True

    def _settle_failure(self, out_id: int, lines: list[int], attempts: int, exc: DeliveryError) -> None:
        delay = dt.timedelta(seconds=self.backoff_base * 2 ** (attempts - 1))
        with transaction(self.sessions) as s:
            again = exc.retry and queue.retry_outbound(
                s,
                outbound_id=out_id,
                error=exc.reason,
                delay=delay,
                max_attempts=self.max_delivery_attempts,
                drop_token=exc.token_spent,
            )
            if not again:
                queue.fail_outbound(s, outbound_id=out_id, error=exc.reason)
                _mark_lines(s, lines, FAILED)

    def stop(self) -> None:
        """Finish the event or delivery in hand, then leave `run` (so nothing is sent twice)."""
        self._stopping = True
        self.wake()

    async def run(self) -> None:
        """The worker loop: until `stop()` (graceful) or cancellation."""
        self._wake = asyncio.Event()
        await anyio.to_thread.run_sync(self.beat)
        await anyio.to_thread.run_sync(self.recover)
        heart = asyncio.create_task(self._heartbeat(), name="inbox-heartbeat")
        try:
            await self._loop()
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart
            with contextlib.suppress(Exception):  # best effort: a stale heartbeat expires by itself
                await anyio.to_thread.run_sync(self._forget)

    def _forget(self) -> None:
        with transaction(self.sessions) as s:
            queue.forget_worker(s, worker=self.worker_id)

    async def _heartbeat(self) -> None:
        """Beats apart from the work loop (a slow delivery must not make this worker look dead)."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                if await anyio.to_thread.run_sync(self.beat):
                    self.wake()
            except Exception as exc:  # the database may be away for a moment: try again next beat
                log.warning("heartbeat failed: %s", type(exc).__name__)

    async def _loop(self) -> None:
        assert self._wake is not None
        last_recover = asyncio.get_running_loop().time()
        while not self._stopping:
            worked = await anyio.to_thread.run_sync(self.process_one)
            if self._stopping:
                break
            worked = await self.deliver_one() or worked
            now = asyncio.get_running_loop().time()
            if now - last_recover > self.stale_after.total_seconds():
                await anyio.to_thread.run_sync(self.recover)
                last_recover = now
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                self._wake.clear()

    async def drain(self) -> None:
        """Process and deliver everything due now (tests, benchmarks)."""
        while True:
            worked = await anyio.to_thread.run_sync(self.process_one)
            worked = await self.deliver_one() or worked
            if not worked:
                return


def _mark_lines(session: Session, message_ids: list[int], status: str) -> None:
    """The delivery state of the transcript lines a delivery carried."""
    crud.set_delivery(session, message_ids=message_ids, delivery=status)

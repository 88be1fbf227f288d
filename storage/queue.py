"""Durable inbound events and outbound deliveries: store before acknowledging, claim once, retry after a crash.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the work without taking the
same row; on SQLite (one process) the clause is left out. One sender's events are claimed in order: an
event waits while an earlier one of the same sender is unfinished. Senders take turns (round-robin over
`sender_key` from a cursor the worker keeps), and events in the crisis lane (0) go before all others, so a
burst from one sender delays nobody else. Work claimed by a worker whose heartbeat stopped is reclaimed
within seconds; work of a live but stuck worker after `stale_after`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import Insert, delete, exists, func, literal_column, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.models import EventStatus, InboundEvent, OutboundMessage, WorkerHeartbeat, utcnow

UNFINISHED = (EventStatus.PENDING, EventStatus.PROCESSING)
CRISIS_LANE = 0
NORMAL_LANE = 1


class ReplyState:
    """OutboundMessage.reply_state: what is known about the use of a delivery's reply token."""

    ATTEMPTED = "attempted"  # claimed with its token: a reply call may have reached the platform
    RECLAIMED = "reclaimed"  # claimed again after an attempt that never settled (the worker died mid-call)


def store_event(
    session: Session, *, channel: str, event_key: str, sender_key: str, payload: str, lane: int = NORMAL_LANE
) -> bool:
    """Store an event; False when the same (channel, key) is already stored (a redelivery)."""
    row = InboundEvent(channel=channel, event_key=event_key, sender_key=sender_key, payload=payload, lane=lane)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


@functools.cache
def _store_statement(dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id on the bare table, built once per dialect: run as an
    executemany on the session's connection it skips the ORM's bulk-insert path and reuses the compiled
    statement (several times faster per webhook than an ORM insert of the same rows)."""
    table = InboundEvent.__table__  # type: ignore[attr-defined]
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt: Insert = make(table).on_conflict_do_nothing(index_elements=["channel", "event_key"]).returning(table.c.id)
    return stmt


def store_events(session: Session, *, channel: str, events: list[tuple[str, str, str, int]]) -> int:
    """Store (event_key, sender_key, payload, lane) rows in one statement; keys already stored (redeliveries)
    are skipped. Returns how many were new."""
    if not events:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return sum(
            store_event(session, channel=channel, event_key=k, sender_key=s, payload=p, lane=lane)
            for k, s, p, lane in events
        )
    now = utcnow()
    unique = {e[0]: e for e in events}  # the same key twice in one webhook is one event
    rows = [
        {
            "channel": channel,
            "event_key": k,
            "sender_key": s,
            "payload": p,
            "status": EventStatus.PENDING.value,
            "attempts": 0,
            "received_at": now,
            "lane": lane,
        }
        for k, s, p, lane in unique.values()
    ]
    result = session.connection().execute(_store_statement(dialect), rows)
    return len(result.all())


def unfinished_keys(session: Session, *, channel: str, keys: list[str]) -> set[str]:
    """The keys among `keys` whose events are stored and still pending or being processed."""
    if not keys:
        return set()
    query = select(InboundEvent.event_key).where(
        InboundEvent.channel == channel,
        col(InboundEvent.event_key).in_(keys),
        col(InboundEvent.status).in_(UNFINISHED),
    )
    return set(session.exec(query))


def _locking(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"


def unfinished_event_count(session: Session, *, channel: str) -> int:
    """Stored events of `channel` not processed yet."""
    return int(
        session.exec(
            select(func.count())
            .select_from(InboundEvent)
            .where(col(InboundEvent.channel) == channel, col(InboundEvent.status).in_(UNFINISHED))
        ).one()
    )


def claim_event(
    session: Session, *, worker: str, channels: list[str] | None = None, after_sender: str | None = None
) -> InboundEvent | None:
    """The next event to process, marked as processing: an event of the crisis lane if any is ready, else
    the first ready event of the next sender after `after_sender` (round-robin; from the start when there is
    none after it). Ready: pending, and nothing earlier of the same sender unfinished."""
    earlier = aliased(InboundEvent)
    blocked = exists().where(
        col(earlier.sender_key) == col(InboundEvent.sender_key),
        col(earlier.id) < col(InboundEvent.id),
        col(earlier.status).in_(UNFINISHED),
    )
    ready = select(InboundEvent).where(InboundEvent.status == EventStatus.PENDING, ~blocked)
    if channels is not None:
        ready = ready.where(col(InboundEvent.channel).in_(channels))
    normal = ready.where(InboundEvent.lane != literal_column(str(CRISIS_LANE)))
    # The lane as a literal, so the planner can use the partial index of crisis-lane rows.
    queries = [ready.where(InboundEvent.lane == literal_column(str(CRISIS_LANE))).order_by(col(InboundEvent.id))]
    if after_sender is not None:
        queries.append(
            normal.where(col(InboundEvent.sender_key) > after_sender).order_by(
                col(InboundEvent.sender_key), col(InboundEvent.id)
            )
        )
    queries.append(normal.order_by(col(InboundEvent.sender_key), col(InboundEvent.id)))
    event = None
    for query in queries:
        query = query.limit(1)
        if _locking(session):
            query = query.with_for_update(skip_locked=True, of=InboundEvent)
        event = session.exec(query).first()
        if event is not None:
            break
    if event is None:
        return None
    event.status = EventStatus.PROCESSING
    event.claimed_by = worker
    event.claimed_at = utcnow()
    event.attempts += 1
    session.add(event)
    return event


class ClaimLostError(RuntimeError):
    """The event was taken back from this worker (its heartbeat looked dead): its turn must not commit."""


def finish_event(session: Session, *, event_id: int, worker: str | None = None) -> None:
    """Done: the payload (which may hold message text) is erased. With `worker`, only while that worker still
    holds the claim: otherwise ClaimLostError, so the transaction with the replies rolls back and the worker
    that took the event over answers it alone."""
    query = update(InboundEvent).where(col(InboundEvent.id) == event_id)
    if worker is not None:
        query = query.where(col(InboundEvent.claimed_by) == worker, col(InboundEvent.status) == EventStatus.PROCESSING)
    result = session.execute(query.values(status=EventStatus.DONE, payload="", processed_at=utcnow(), error=None))
    if worker is not None and not result.rowcount:  # type: ignore[attr-defined]
        raise ClaimLostError("event claimed by another worker")


def fail_event(session: Session, *, event_id: int, error: str, max_attempts: int) -> bool:
    """Back to pending, or failed (True) once the attempts are used up; failed events are counted for staff."""
    event = session.get(InboundEvent, event_id)
    if event is None:
        return False
    event.error = error[:255]
    given_up = event.attempts >= max_attempts
    if given_up:
        event.status = EventStatus.FAILED
        event.payload = ""
        event.processed_at = utcnow()
    else:
        event.status = EventStatus.PENDING
    session.add(event)
    return given_up


def failed_event_count(session: Session, *, channel: str | None = None) -> int:
    """Events given up after their attempts (kept, without content, until the processed-records purge):
    staff see the number in the console header and in the health details."""
    query = select(func.count()).select_from(InboundEvent).where(InboundEvent.status == EventStatus.FAILED)
    if channel is not None:
        query = query.where(InboundEvent.channel == channel)
    return int(session.exec(query).one())


def failed_delivery_count(session: Session, *, channel: str | None = None) -> int:
    """Replies that did not reach the parent (or may not have: a reply cut off by a crash), until purged."""
    query = select(func.count()).select_from(OutboundMessage).where(OutboundMessage.status == EventStatus.FAILED)
    if channel is not None:
        query = query.where(OutboundMessage.channel == channel)
    return int(session.exec(query).one())


def beat(session: Session, *, worker: str) -> None:
    """The worker's heartbeat (see recover_dead)."""
    now = utcnow()
    if session.execute(
        update(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == worker).values(seen_at=now)
    ).rowcount:  # type: ignore[attr-defined]
        return
    session.add(WorkerHeartbeat(worker_id=worker, seen_at=now))


def forget_worker(session: Session, *, worker: str) -> None:
    session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == worker))


def recover_stale(session: Session, *, older_than: dt.timedelta) -> int:
    """Events and deliveries left 'processing' longer than `older_than` go back to pending."""
    cutoff = utcnow() - older_than
    return _release(session, InboundEvent.claimed_at < cutoff, OutboundMessage.claimed_at < cutoff)  # type: ignore[operator]


def recover_dead(session: Session, *, dead_after: dt.timedelta) -> int:
    """Events and deliveries claimed by a worker without a heartbeat for `dead_after` (killed, machine gone)
    go back to pending: in seconds, not after `stale_after`. A claim younger than `dead_after` is left alone
    (its worker may not have beaten yet). Old heartbeats are removed."""
    cutoff = utcnow() - dead_after
    alive = select(WorkerHeartbeat.worker_id).where(col(WorkerHeartbeat.seen_at) >= cutoff)
    n = _release(
        session,
        (col(InboundEvent.claimed_at) < cutoff) & col(InboundEvent.claimed_by).not_in(alive),
        (col(OutboundMessage.claimed_at) < cutoff)
        & (col(OutboundMessage.claimed_by).is_(None) | col(OutboundMessage.claimed_by).not_in(alive)),
    )
    session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.seen_at) < utcnow() - 10 * dead_after))
    return n


def _release(session: Session, events: Any, deliveries: Any) -> int:
    a = session.execute(
        update(InboundEvent)
        .where(col(InboundEvent.status) == EventStatus.PROCESSING, events)
        .values(status=EventStatus.PENDING)
    )
    b = session.execute(
        update(OutboundMessage)
        .where(col(OutboundMessage.status) == EventStatus.PROCESSING, deliveries)
        .values(status=EventStatus.PENDING)
    )
    return int(getattr(a, "rowcount", 0) or 0) + int(getattr(b, "rowcount", 0) or 0)


def enqueue_outbound(
    session: Session,
    *,
    channel: str,
    recipient: str,
    payload: str,
    retry_key: str,
    reply_token: str | None = None,
    context: str | None = None,
    case_id: int | None = None,
    message_id: int | None = None,
) -> OutboundMessage:
    row = OutboundMessage(
        channel=channel,
        recipient=recipient,
        payload=payload,
        retry_key=retry_key,
        reply_token=reply_token,
        context=context,
        case_id=case_id,
        message_id=message_id,
    )
    session.add(row)
    session.flush()
    return row


def outbound_contexts(
    session: Session, *, channel: str, recipient: str, limit: int, since: dt.datetime | None = None
) -> list[str]:
    """The stored contexts (a channel's record of what was sent, e.g. mail headers) of the latest deliveries to
    `recipient` on `channel`, newest first; only those created at `since` or later when given."""
    query = select(OutboundMessage.context).where(
        col(OutboundMessage.channel) == channel,
        col(OutboundMessage.recipient) == recipient,
        col(OutboundMessage.context).is_not(None),
    )
    if since is not None:
        query = query.where(col(OutboundMessage.created_at) >= since)
    rows = session.exec(query.order_by(col(OutboundMessage.id).desc()).limit(limit)).all()
    return [r for r in rows if r is not None]


def set_outbound_context(session: Session, *, channel: str, retry_key: str, context: str) -> None:
    """Leave a channel's record of what it sent on the delivery with `retry_key`."""
    session.execute(
        update(OutboundMessage)
        .where(col(OutboundMessage.retry_key) == retry_key, col(OutboundMessage.channel) == channel)
        .values(context=context)
    )


def claim_outbound(
    session: Session, *, channels: list[str] | None = None, worker: str | None = None
) -> OutboundMessage | None:
    """The next due delivery, marked as processing. A reply token is marked as being used before the call
    (committed with the claim): when the worker dies mid-call, the next claim knows the token may be spent
    (ReplyState.RECLAIMED) and must not fall back to a push that could deliver the reply twice."""
    now = utcnow()
    earlier = aliased(OutboundMessage)
    # One parent's replies leave in order: a row waits while an earlier one to the same recipient is unfinished.
    blocked = exists().where(
        col(earlier.channel) == col(OutboundMessage.channel),
        col(earlier.recipient) == col(OutboundMessage.recipient),
        col(earlier.id) < col(OutboundMessage.id),
        col(earlier.status).in_(UNFINISHED),
    )
    query = select(OutboundMessage).where(
        OutboundMessage.status == EventStatus.PENDING, col(OutboundMessage.not_before) <= now, ~blocked
    )
    if channels is not None:
        query = query.where(col(OutboundMessage.channel).in_(channels))
    query = query.order_by(col(OutboundMessage.id)).limit(1)
    if _locking(session):
        query = query.with_for_update(skip_locked=True, of=OutboundMessage)
    row = session.exec(query).first()
    if row is None:
        return None
    row.status = EventStatus.PROCESSING
    row.claimed_at = now
    row.claimed_by = worker
    row.attempts += 1
    if row.reply_token is not None:
        row.reply_state = ReplyState.RECLAIMED if row.reply_state is not None else ReplyState.ATTEMPTED
    session.add(row)
    return row


def finish_outbound(session: Session, *, outbound_id: int) -> None:
    session.execute(
        update(OutboundMessage)
        .where(col(OutboundMessage.id) == outbound_id)
        .values(status=EventStatus.DONE, payload="", sent_at=utcnow(), error=None, reply_token=None)
    )


def retry_outbound(
    session: Session, *, outbound_id: int, error: str, delay: dt.timedelta, max_attempts: int, drop_token: bool
) -> bool:
    """Back to pending after `delay`; False (and failed) when the attempts are used up."""
    row = session.get(OutboundMessage, outbound_id)
    if row is None:
        return False
    row.error = error[:255]
    if drop_token:
        row.reply_token = None
        row.reply_state = None
    # A kept token keeps its state: the next claim marks it RECLAIMED (the last call may have reached LINE).
    if row.attempts >= max_attempts:
        _failed(row)
        session.add(row)
        return False
    row.status = EventStatus.PENDING
    row.not_before = utcnow() + delay
    session.add(row)
    return True


def fail_outbound(session: Session, *, outbound_id: int, error: str) -> None:
    row = session.get(OutboundMessage, outbound_id)
    if row is not None:
        _failed(row)
        row.error = error[:255]
        session.add(row)


def _failed(row: OutboundMessage) -> None:
    """A final failure keeps no text: what staff wrote stays in the case transcript under its basis (and goes
    with it); a bot reply is not kept at all. Only the status, the error and the ids remain."""
    row.status = EventStatus.FAILED
    row.payload = ""
    row.reply_token = None


def reopen_failed_outbound(session: Session, *, message_id: int, payload: str) -> OutboundMessage | None:
    """A failed delivery of a transcript line, queued again with its own retry key (so a send that did reach
    the platform is not repeated) and a fresh count of attempts; None when that line has no failed delivery."""
    row = session.exec(
        select(OutboundMessage)
        .where(OutboundMessage.message_id == message_id, OutboundMessage.status == EventStatus.FAILED)
        .order_by(col(OutboundMessage.id).desc())
    ).first()
    if row is None:
        return None
    row.status = EventStatus.PENDING
    row.payload = payload
    row.reply_token = None  # a staff reply is pushed; a spent token must not be tried again
    row.attempts = 0
    row.error = None
    row.not_before = utcnow()
    row.claimed_at = None
    session.add(row)
    session.flush()
    return row


def delivery_errors(session: Session, *, message_ids: list[int]) -> dict[int, str]:
    """The reason of the latest failed delivery per transcript line (a status or class name, never content)."""
    if not message_ids:
        return {}
    rows = session.exec(
        select(OutboundMessage.message_id, OutboundMessage.error)
        .where(col(OutboundMessage.message_id).in_(message_ids))
        .where(OutboundMessage.status == "failed")
        .order_by(col(OutboundMessage.id))
    ).all()
    return {mid: error or "" for mid, error in rows if mid is not None}

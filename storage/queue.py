"""Durable inbound events and outbound deliveries: store before acknowledging, claim once, retry after a crash.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers share the work without taking the
same row; on SQLite (one process) the clause is left out. One sender's events are claimed in order: an
event waits while an earlier one of the same sender is unfinished.
"""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import Insert, exists, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.models import EventStatus, InboundEvent, OutboundMessage, utcnow

UNFINISHED = (EventStatus.PENDING, EventStatus.PROCESSING)


def store_event(session: Session, *, channel: str, event_key: str, sender_key: str, payload: str) -> bool:
    """Store an event; False when the same (channel, key) is already stored (a redelivery)."""
    row = InboundEvent(channel=channel, event_key=event_key, sender_key=sender_key, payload=payload)
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


def store_events(session: Session, *, channel: str, events: list[tuple[str, str, str]]) -> int:
    """Store (event_key, sender_key, payload) rows in one statement; keys already stored (redeliveries) are
    skipped. Returns how many were new."""
    if not events:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return sum(store_event(session, channel=channel, event_key=k, sender_key=s, payload=p) for k, s, p in events)
    now = utcnow()
    unique = {k: (k, s, p) for k, s, p in events}  # the same key twice in one webhook is one event
    rows = [
        {
            "channel": channel,
            "event_key": k,
            "sender_key": s,
            "payload": p,
            "status": EventStatus.PENDING.value,
            "attempts": 0,
            "received_at": now,
        }
        for k, s, p in unique.values()
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


def claim_event(session: Session, *, worker: str, channels: list[str] | None = None) -> InboundEvent | None:
    """The oldest pending event whose sender has nothing earlier unfinished, marked as processing."""
    earlier = aliased(InboundEvent)
    blocked = exists().where(
        col(earlier.sender_key) == col(InboundEvent.sender_key),
        col(earlier.id) < col(InboundEvent.id),
        col(earlier.status).in_(UNFINISHED),
    )
    query = select(InboundEvent).where(InboundEvent.status == EventStatus.PENDING, ~blocked)
    if channels is not None:
        query = query.where(col(InboundEvent.channel).in_(channels))
    query = query.order_by(col(InboundEvent.id)).limit(1)
    if _locking(session):
        query = query.with_for_update(skip_locked=True, of=InboundEvent)
    event = session.exec(query).first()
    if event is None:
        return None
    event.status = EventStatus.PROCESSING
    event.claimed_by = worker
    event.claimed_at = utcnow()
    event.attempts += 1
    session.add(event)
    return event


def finish_event(session: Session, *, event_id: int) -> None:
    """Done: the payload (which may hold message text) is erased."""
    session.execute(
        update(InboundEvent)
        .where(col(InboundEvent.id) == event_id)
        .values(status=EventStatus.DONE, payload="", processed_at=utcnow(), error=None)
    )


def fail_event(session: Session, *, event_id: int, error: str, max_attempts: int) -> None:
    event = session.get(InboundEvent, event_id)
    if event is None:
        return
    event.error = error[:255]
    if event.attempts >= max_attempts:
        event.status = EventStatus.FAILED
        event.payload = ""
        event.processed_at = utcnow()
    else:
        event.status = EventStatus.PENDING
    session.add(event)


def recover_stale(session: Session, *, older_than: dt.timedelta) -> int:
    """Events and deliveries left 'processing' by a worker that died go back to pending."""
    cutoff = utcnow() - older_than
    a = session.execute(
        update(InboundEvent)
        .where(col(InboundEvent.status) == EventStatus.PROCESSING, col(InboundEvent.claimed_at) < cutoff)
        .values(status=EventStatus.PENDING)
    )
    b = session.execute(
        update(OutboundMessage)
        .where(col(OutboundMessage.status) == EventStatus.PROCESSING, col(OutboundMessage.claimed_at) < cutoff)
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


def claim_outbound(session: Session, *, channels: list[str] | None = None) -> OutboundMessage | None:
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
    row.attempts += 1
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
    if row.attempts >= max_attempts:
        row.status = EventStatus.FAILED
        session.add(row)
        return False
    row.status = EventStatus.PENDING
    row.not_before = utcnow() + delay
    session.add(row)
    return True


def fail_outbound(session: Session, *, outbound_id: int, error: str) -> None:
    row = session.get(OutboundMessage, outbound_id)
    if row is not None:
        row.status = EventStatus.FAILED
        row.error = error[:255]
        session.add(row)


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

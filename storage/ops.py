"""Read-only figures about the running service, for /metrics and /healthz?details=1.

Every function is a few aggregate queries over a passed-in session: counts by channel and status, ages of the
oldest waiting rows, and latency buckets of the events processed in a recent window. Nothing here returns an
id, an address or any text: only channel names, status names and numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, select, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from storage.models import (
    OPEN_CASE_STATUSES,
    Case,
    EventStatus,
    InboundEvent,
    OutboundMessage,
    StaffAlert,
    StatEvent,
    utcnow,
)
from storage.notices import NoticeDelivery, NoticeRun

WAITING = (EventStatus.PENDING, EventStatus.PROCESSING)


@dataclass
class Latency:
    """Cumulative bucket counts (one per bound, then +Inf = count), and the sum of seconds."""

    buckets: list[int]
    count: int
    total: float


@dataclass
class Snapshot:
    events: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, status) -> rows
    oldest_waiting: dict[str, float] = field(default_factory=dict)  # channel -> seconds
    latency: dict[str, Latency] = field(default_factory=dict)  # channel -> recent processing latency
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_delivery: dict[str, float] = field(default_factory=dict)  # pending replies, channel -> seconds
    notice_deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    notice_runs: dict[str, int] = field(default_factory=dict)
    open_cases: dict[str, int] = field(default_factory=dict)  # priority -> open cases
    failed_events_recent: int = 0  # events given up within the window
    failed_deliveries_recent: int = 0  # replies given up within the window (claimed then, failed at once)
    urgent_total: int = 0
    alerts_undelivered: int = 0
    oldest_alert: float = 0.0


def _seconds(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float)
    return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)


def _age(oldest: dt.datetime | None, now: dt.datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max(0.0, (now - oldest).total_seconds())


def _grouped(session: Session, column: Any, *keys: Any) -> list[tuple[Any, ...]]:
    query = select(*keys, func.count(column)).group_by(*keys)
    return [tuple(r) for r in session.execute(query)]


def latency(session: Session, *, since: dt.datetime, bounds: Sequence[float]) -> dict[str, Latency]:
    """Received-to-processed seconds of the events finished since `since`, by channel."""
    dialect = session.get_bind().dialect.name
    seconds = _seconds(col(InboundEvent.processed_at), col(InboundEvent.received_at), dialect)
    parts = [func.sum(case((seconds <= b, 1), else_=0)) for b in bounds]
    query = (
        select(col(InboundEvent.channel), func.count(), func.coalesce(func.sum(seconds), 0.0), *parts)
        .where(and_(col(InboundEvent.processed_at) >= since, col(InboundEvent.status) == EventStatus.DONE))
        .group_by(col(InboundEvent.channel))
    )
    out: dict[str, Latency] = {}
    for row in session.execute(query):
        channel, count, total, *buckets = tuple[Any, ...](row)
        out[str(channel)] = Latency(buckets=[int(b or 0) for b in buckets], count=int(count), total=float(total))
    return out


def snapshot(
    session: Session, *, window: dt.timedelta, bounds: Sequence[float], now: dt.datetime | None = None
) -> Snapshot:
    now = now or utcnow()
    snap = Snapshot()
    ev = InboundEvent
    for channel, status, n in _grouped(session, col(ev.id), col(ev.channel), col(ev.status)):
        snap.events[(str(channel), str(status))] = int(n)
    waiting = (
        select(col(ev.channel), func.min(col(ev.received_at)))
        .where(col(ev.status).in_(WAITING))
        .group_by(col(ev.channel))
    )
    for channel, oldest in session.execute(waiting):
        snap.oldest_waiting[str(channel)] = _age(oldest, now)
    snap.latency = latency(session, since=now - window, bounds=bounds)
    since = now - window
    recent = select(func.count()).where(col(ev.status) == EventStatus.FAILED, col(ev.processed_at) >= since)
    snap.failed_events_recent = int(session.execute(recent).scalar_one())

    out = OutboundMessage
    for channel, status, n in _grouped(session, col(out.id), col(out.channel), col(out.status)):
        snap.deliveries[(str(channel), str(status))] = int(n)
    pending = (
        select(col(out.channel), func.min(col(out.created_at)))
        .where(col(out.status).in_(WAITING))
        .group_by(col(out.channel))
    )
    for channel, oldest in session.execute(pending):
        snap.oldest_delivery[str(channel)] = _age(oldest, now)
    given_up = select(func.count()).where(col(out.status) == EventStatus.FAILED, col(out.claimed_at) >= since)
    snap.failed_deliveries_recent = int(session.execute(given_up).scalar_one())

    nd = NoticeDelivery
    for channel, status, n in _grouped(session, col(nd.id), col(nd.channel), col(nd.status)):
        snap.notice_deliveries[(str(channel), str(status))] = int(n)
    for status, n in _grouped(session, col(NoticeRun.id), col(NoticeRun.status)):
        snap.notice_runs[str(status)] = int(n)

    open_cases = (
        select(col(Case.priority), func.count())
        .where(col(Case.status).in_(OPEN_CASE_STATUSES))
        .group_by(col(Case.priority))
    )
    for priority, n in session.execute(open_cases):
        snap.open_cases[str(priority)] = int(n)
    urgent = select(func.count()).select_from(StatEvent).where(col(StatEvent.outcome) == "urgent")
    snap.urgent_total = int(session.execute(urgent).scalar_one())
    alerts = select(func.count(), func.min(col(StaffAlert.created_at))).where(col(StaffAlert.delivered_at).is_(None))
    count, oldest = session.execute(alerts).one()
    snap.alerts_undelivered = int(count)
    snap.oldest_alert = _age(oldest, now)
    return snap


def scheduler_leader_present(session: Session, *, lock_key: int) -> bool | None:
    """Whether any process holds the scheduler's advisory lock (PostgreSQL); None where it cannot be seen."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    # pg_try_advisory_lock(bigint) shows in pg_locks with the key split in two 32-bit halves (objsubid 1)
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = :high AND objid = :low AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    params = {"high": (lock_key >> 32) & 0xFFFFFFFF, "low": lock_key & 0xFFFFFFFF}
    return bool(session.execute(query, params).scalar_one())

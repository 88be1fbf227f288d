"""Sending a notice run: its deliveries, the batches claimed from them and their results.

Keyword-only functions over a passed-in session; no commits here (the caller owns the transaction). The
sending itself (rates, retries, lanes) is handlers/notices.py; this module is the SQL it needs. Bulk updates
are run with `synchronize_session=False`: no ORM objects of these rows are held by the callers.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Update, any_, bindparam, func, insert, text, tuple_, update
from sqlalchemy import select as sa_select  # labelled columns, read by name
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from storage import lifecycle
from storage.models import Contact, utcnow
from storage.notices import (
    DEFAULT_LANG,
    AgeReminderSent,
    BatchStatus,
    DeliveryStatus,
    Notice,
    NoticeBatch,
    NoticeDelivery,
    NoticeRun,
    RunStatus,
)

NO_SYNC = {"synchronize_session": False}
SKIP_CHUNK = 1000  # delivery ids per UPDATE … IN (…)


@dataclass(frozen=True)
class Recipient:
    """One delivery to plan: the contact, its channel and the language of the text it gets."""

    contact_id: int
    channel: str
    lang: str


@dataclass
class Claimed:
    """A batch formed from pending deliveries (or found formed after a crash), ready for its one call."""

    batch_id: int
    retry_key: str
    lang: str
    mode: str  # multicast | broadcast | single
    members: list[tuple[int, str]] = field(default_factory=list)  # (delivery id, external id)

    def span(self) -> tuple[str, int, int] | None:
        """(language, lowest id, highest id) of the members, through which the run's index finds them again
        (a broadcast's members span every language: None)."""
        if self.mode == "broadcast" or not self.members:
            return None
        ids = [m[0] for m in self.members]
        return self.lang, min(ids), max(ids)


@dataclass
class Cursor:
    """Where a producer's last claim ended, in (language, id) order."""

    at: tuple[str, int] | None = None


@dataclass(frozen=True)
class BatchResult:
    """What the call of a batch came to. `run_id` and `span` (Claimed.span) find its deliveries through the
    run's index; `members` False: the batch had none left to record."""

    batch_id: int
    ok: bool
    reason: str | None
    attempts: int
    run_id: int = 0
    span: tuple[str, int, int] | None = None
    members: bool = True

    @classmethod
    def of(cls, run_id: int, claim: Claimed, *, ok: bool, reason: str | None, attempts: int) -> BatchResult:
        return cls(claim.batch_id, ok, reason, attempts, run_id, claim.span(), bool(claim.members))


# ----- runs


def find_run(session: Session, *, key: str) -> NoticeRun | None:
    return session.exec(select(NoticeRun).where(col(NoticeRun.key) == key)).first()


def add_deliveries(session: Session, *, run_id: int, recipients: Sequence[Recipient], chunk: int) -> int:
    """One pending delivery per recipient, inserted `chunk` rows per statement; returns how many."""
    now = utcnow()
    rows = [
        {
            "run_id": run_id,
            "contact_id": r.contact_id,
            "channel": r.channel,
            "lang": r.lang,
            "status": DeliveryStatus.PENDING.value,
            "updated_at": now,
        }
        for r in recipients
    ]
    step = max(1, chunk)
    for start in range(0, len(rows), step):
        session.connection().execute(insert(NoticeDelivery), rows[start : start + step])
    return len(rows)


def renew_heartbeat(session: Session, *, run_id: int) -> None:
    session.exec(
        update(NoticeRun).where(col(NoticeRun.id) == run_id).values(heartbeat_at=utcnow()),
        execution_options=NO_SYNC,
    )


def refresh_statistics(session: Session) -> None:
    """PostgreSQL: fresh planner statistics of the deliveries table (no-op elsewhere)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(text("ANALYZE noticedelivery"))


def unfinished_runs(session: Session, *, notice_id: int | None = None) -> list[int]:
    query = select(NoticeRun.id).where(col(NoticeRun.status) != RunStatus.DONE)
    if notice_id is not None:
        query = query.where(col(NoticeRun.notice_id) == notice_id)
    return [i for i in session.exec(query.order_by(col(NoticeRun.id))) if i is not None]


def orphaned_runs(session: Session, *, quiet_since: dt.datetime) -> list[int]:
    """Unfinished runs whose heartbeat is older than `quiet_since`. Runs from before the heartbeat existed
    fall back to their last batch formed or sent, or their start."""
    last_batch = (
        select(func.max(func.coalesce(col(NoticeBatch.sent_at), col(NoticeBatch.created_at))))
        .where(col(NoticeBatch.run_id) == col(NoticeRun.id))
        .scalar_subquery()
    )
    alive_at = func.coalesce(col(NoticeRun.heartbeat_at), last_batch, col(NoticeRun.started_at))
    query = select(NoticeRun.id).where(col(NoticeRun.status) != RunStatus.DONE, alive_at < quiet_since)
    return [i for i in session.exec(query.order_by(col(NoticeRun.id))) if i is not None]


def open_batch_count(session: Session, *, run_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(NoticeBatch)
            .where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.status) == BatchStatus.PENDING)
        ).one()
    )


def broadcast_formed(session: Session, *, run_id: int) -> bool:
    """Whether the run's broadcast batch exists already (it is then repeated, never replaced)."""
    found = session.exec(
        select(NoticeBatch.id).where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.mode) == "broadcast")
    ).first()
    return found is not None


# ----- batches


def open_batches(session: Session, *, run_id: int) -> list[tuple[str, Claimed]]:
    """(channel, batch) of the batches formed earlier and not finished, with their members still pending."""
    batches = session.exec(
        select(NoticeBatch)
        .where(col(NoticeBatch.run_id) == run_id, col(NoticeBatch.status) == BatchStatus.PENDING)
        .order_by(col(NoticeBatch.id))
    ).all()
    members = batch_members(session, run_id=run_id, batch_ids=[b.id for b in batches if b.id is not None])
    return [(b.channel, Claimed(b.id, b.retry_key, b.lang, b.mode, members.get(b.id, []))) for b in batches if b.id]


def batch_members(session: Session, *, run_id: int, batch_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """Per batch, (delivery id, external id) of its deliveries still pending, in id order (one pass over the
    run's pending deliveries: batch_id has no index of its own)."""
    if not batch_ids:
        return {}
    rows = session.exec(
        select(NoticeDelivery.batch_id, NoticeDelivery.id, Contact.external_id)
        .join(Contact, col(Contact.id) == col(NoticeDelivery.contact_id))
        .where(
            col(NoticeDelivery.run_id) == run_id,
            col(NoticeDelivery.status) == DeliveryStatus.PENDING,
            col(NoticeDelivery.batch_id).in_(batch_ids),
        )
        .order_by(col(NoticeDelivery.id))
    )
    out: dict[int, list[tuple[int, str]]] = {}
    for batch, delivery, external in rows:
        if batch is not None and delivery is not None:
            out.setdefault(int(batch), []).append((int(delivery), str(external)))
    return out


def _deliveries() -> Any:
    return NoticeDelivery.__table__  # type: ignore[attr-defined]


def _batches() -> Any:
    return NoticeBatch.__table__  # type: ignore[attr-defined]


@functools.cache
def _assign_statement(*, exact: bool, ranged: bool) -> Update:
    """UPDATE the pending unbatched deliveries of a run and channel (in a language's id range with `ranged`,
    also named one by one with `exact`) into a batch. Built once on the bare table and run as one executemany
    per claim: building the expression per batch costs more than the statement itself."""
    table = _deliveries()
    d = table.c
    where = [
        d.run_id == bindparam("p_run_id"),
        d.status == DeliveryStatus.PENDING.value,
        d.channel == bindparam("p_channel"),
        d.batch_id.is_(None),
    ]
    if ranged:
        where += [d.lang == bindparam("p_lang"), d.id >= bindparam("p_lo"), d.id <= bindparam("p_hi")]
    if exact:
        where.append(d.id == any_(bindparam("p_ids", type_=ARRAY(Integer))))
    stmt: Update = update(table).where(*where).values(batch_id=bindparam("p_batch_id"), updated_at=bindparam("p_now"))
    return stmt


@functools.cache
def _finish_batch_statement() -> Update:
    """The batch's result (one executemany per group of results)."""
    b = _batches().c
    batch: Update = (
        update(_batches())
        .where(b.id == bindparam("p_batch_id"))
        .values(
            status=bindparam("p_batch_status"),
            attempts=b.attempts + bindparam("p_attempts", type_=Integer),
            error=bindparam("p_error"),
            sent_at=bindparam("p_sent_at"),
        )
    )
    return batch


@functools.cache
def _finish_members_statement(*, ranged: bool) -> Update:
    """The batch's pending deliveries' result, found through the run's index: in the batch's language and id
    range with `ranged`, else among all the run's pending deliveries (a broadcast)."""
    d = _deliveries().c
    where = [d.run_id == bindparam("p_run_id"), d.status == DeliveryStatus.PENDING.value]
    if ranged:
        where += [d.lang == bindparam("p_lang"), d.id >= bindparam("p_lo"), d.id <= bindparam("p_hi")]
    where.append(d.batch_id == bindparam("p_batch_id"))
    members: Update = (
        update(_deliveries())
        .where(*where)
        .values(status=bindparam("p_status"), reason=bindparam("p_reason"), updated_at=bindparam("p_now"))
    )
    return members


def claim_batches(
    session: Session,
    *,
    run_id: int,
    notice: Notice,
    channel: str,
    mode: str,
    size: int | None,
    count: int,
    cursor: Cursor | None = None,
) -> list[Claimed]:
    """New batches (up to `count` of `size`, one language each; `size` None: one batch of everyone) from the
    run's pending deliveries on `channel`. Just before, the recipients' subscription and topic are read again
    and those who left are marked skipped. Empty when nothing is left. Rows another transaction holds are
    skipped (PostgreSQL's SKIP LOCKED), so two producers never form the same batch."""
    delivery_id = col(NoticeDelivery.id)
    delivery_lang = col(NoticeDelivery.lang)
    columns: list[Any] = [
        delivery_id.label("delivery_id"),
        col(NoticeDelivery.contact_id).label("contact_id"),
        delivery_lang.label("lang"),
        col(Contact.external_id).label("external_id"),
        col(Contact.subscribed).label("subscribed"),
        col(lifecycle.NoticeTopic.enabled).label("topic_on"),
    ]
    query = (
        sa_select(*columns)
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
        .order_by(delivery_lang, delivery_id)
    )
    if size is not None:
        query = query.limit(size * count)
    # lifecycle.audience's rule, read now: subscribed, and the topic on (its default when unset).
    default_on = notice.topic in lifecycle.DEFAULT_ON
    connection = session.connection()
    while True:
        step = query
        if cursor is not None and cursor.at is not None:
            # Start past what this producer has taken: PostgreSQL keeps the index entries of the rows already
            # sent until vacuum, and scanning them again on every claim would grow with the run.
            step = query.where(tuple_(delivery_lang, delivery_id) > cursor.at)
        rows = connection.execute(step.with_for_update(skip_locked=True, of=NoticeDelivery)).all()
        if not rows:
            return []
        if cursor is not None:
            cursor.at = (str(rows[-1][2]), int(rows[-1][0]))
        now = utcnow()
        keep: list[tuple[int, str, str]] = []  # (delivery id, language, external id)
        unsubscribed: list[int] = []
        topic_off: list[int] = []
        # Unpacked by name (attribute access on 100,000 result rows would cost more than the query).
        for delivery, _contact, lang, external, subscribed, topic_on in rows:
            if not subscribed:
                unsubscribed.append(delivery)
            elif not (default_on if topic_on is None else topic_on):
                topic_off.append(delivery)
            else:
                keep.append((delivery, lang, external))
        for reason, ids in (("unsubscribed", unsubscribed), ("topic_off", topic_off)):
            for start in range(0, len(ids), SKIP_CHUNK):
                connection.execute(
                    update(NoticeDelivery)
                    .where(delivery_id.in_(ids[start : start + SKIP_CHUNK]))
                    .values(status=DeliveryStatus.SKIPPED, reason=reason, updated_at=now),
                    execution_options=NO_SYNC,
                )
        if keep:
            break
    groups: list[tuple[str, list[tuple[int, str]]]] = []
    for delivery, lang, external in keep:
        if mode == "broadcast":
            lang = DEFAULT_LANG
        if groups and groups[-1][0] == lang and (size is None or len(groups[-1][1]) < size):
            groups[-1][1].append((delivery, external))
        else:
            groups.append((lang, [(delivery, external)]))
    batches = [
        NoticeBatch(
            run_id=run_id, channel=channel, mode=mode, lang=lang, retry_key=str(uuid.uuid4()), size=len(members)
        )
        for lang, members in groups
    ]
    session.add_all(batches)
    session.flush()
    # The members are consecutive in (language, id) order among the pending unbatched deliveries and the skipped
    # ones are no longer pending, so an id range names exactly them (no long IN list). On PostgreSQL two
    # producers' SKIP LOCKED claims may interleave within a range: the rows are also named exactly (one array
    # parameter), so an update never waits on, or deadlocks with, the other's locked rows.
    exact = session.get_bind().dialect.name == "postgresql"
    ranged = mode != "broadcast"
    params: list[dict[str, Any]] = []
    claims: list[Claimed] = []
    for batch, (lang, members) in zip(batches, groups, strict=True):
        assert batch.id is not None
        row: dict[str, Any] = {"p_run_id": run_id, "p_channel": channel, "p_batch_id": batch.id, "p_now": now}
        if ranged:
            row.update(p_lang=lang, p_lo=members[0][0], p_hi=members[-1][0])
        if exact:
            row["p_ids"] = [m[0] for m in members]
        params.append(row)
        claims.append(Claimed(batch.id, batch.retry_key, lang, mode, members))
    connection.execute(_assign_statement(exact=exact, ranged=ranged), params)
    return claims


def finish_batches(session: Session, *, results: Sequence[BatchResult]) -> None:
    """Record the calls' outcomes: each batch and its pending deliveries turn sent or failed."""
    if not results:
        return
    now = utcnow()
    connection = session.connection()
    connection.execute(
        _finish_batch_statement(),
        [
            {
                "p_batch_id": r.batch_id,
                "p_batch_status": (BatchStatus.SENT if r.ok else BatchStatus.FAILED).value,
                "p_attempts": r.attempts,
                "p_error": r.reason,
                "p_sent_at": now if r.ok else None,
            }
            for r in results
        ],
    )
    for ranged in (True, False):
        params: list[dict[str, Any]] = []
        for r in results:
            if not r.members or (r.span is not None) != ranged:
                continue
            row: dict[str, Any] = {
                "p_run_id": r.run_id,
                "p_batch_id": r.batch_id,
                "p_status": (DeliveryStatus.SENT if r.ok else DeliveryStatus.FAILED).value,
                "p_reason": None if r.ok else r.reason,
                "p_now": now,
            }
            if r.span is not None:
                row.update(p_lang=r.span[0], p_lo=r.span[1], p_hi=r.span[2])
            params.append(row)
        if params:
            connection.execute(_finish_members_statement(ranged=ranged), params)


def mark_delivery(session: Session, *, delivery_id: int, ok: bool, reason: str | None) -> None:
    """One delivery of a one-at-a-time channel, recorded right after its call."""
    session.exec(
        update(NoticeDelivery)
        .where(col(NoticeDelivery.id) == delivery_id)
        .values(status=DeliveryStatus.SENT if ok else DeliveryStatus.FAILED, reason=reason, updated_at=utcnow()),
        execution_options=NO_SYNC,
    )


def fail_channel(session: Session, *, run_id: int, channel: str, reason: str) -> None:
    """The run's pending deliveries on `channel`, and its batches formed there, fail with `reason`."""
    now = utcnow()
    session.exec(
        update(NoticeDelivery)
        .where(
            col(NoticeDelivery.run_id) == run_id,
            col(NoticeDelivery.channel) == channel,
            col(NoticeDelivery.status) == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, reason=reason, updated_at=now),
        execution_options=NO_SYNC,
    )
    session.exec(
        update(NoticeBatch)
        .where(
            col(NoticeBatch.run_id) == run_id,
            col(NoticeBatch.channel) == channel,
            col(NoticeBatch.status) == BatchStatus.PENDING,
        )
        .values(status=BatchStatus.FAILED, error=reason),
        execution_options=NO_SYNC,
    )


def skip_unbatched(session: Session, *, run_id: int, reason: str) -> None:
    """The run's pending deliveries in no batch yet are skipped with `reason` (a cancelled notice)."""
    session.exec(
        update(NoticeDelivery)
        .where(
            col(NoticeDelivery.run_id) == run_id,
            col(NoticeDelivery.status) == DeliveryStatus.PENDING,
            col(NoticeDelivery.batch_id).is_(None),
        )
        .values(status=DeliveryStatus.SKIPPED, reason=reason, updated_at=utcnow()),
        execution_options=NO_SYNC,
    )


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
        .where(
            col(NoticeDelivery.run_id) == run_id,
            col(NoticeDelivery.status) == DeliveryStatus.FAILED,
            col(NoticeDelivery.batch_id).in_(batch_ids),
        )
        .values(status=DeliveryStatus.PENDING, reason=None, updated_at=utcnow()),
        execution_options=NO_SYNC,
    )
    run = session.get(NoticeRun, run_id)
    if run is not None and run.status == RunStatus.DONE:
        run.status = RunStatus.SENDING
        run.finished_at = None
        session.add(run)
    return int(getattr(result, "rowcount", 0) or 0)


# ----- age reminders


def reminded(session: Session, *, notice_id: int) -> set[tuple[int, dt.date]]:
    """(contact id, child month) pairs the age notice was already planned for."""
    rows = session.exec(
        select(col(AgeReminderSent.contact_id), col(AgeReminderSent.child_month)).where(
            col(AgeReminderSent.notice_id) == notice_id
        )
    )
    return {(c, m) for c, m in rows}

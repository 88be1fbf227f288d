"""The Telegram bridge's records: alert delivery attempts, the undelivered-alert count (console header,
/healthz), staff actions taken once per Telegram message, and the reply outcomes still to be told in the
topic. Keyword-only functions over a passed-in session; the caller commits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import (
    OPEN_CASE_STATUSES,
    Case,
    Message,
    OutboundMessage,
    Priority,
    StaffAlert,
    TelegramAction,
    utcnow,
)

UNDELIVERED_AFTER = dt.timedelta(minutes=2)  # a healthy bridge posts within seconds


@dataclass(frozen=True)
class AlertBacklog:
    total: int
    urgent: int  # of which for urgent cases (or kind "urgent")


def undelivered_alerts(
    session: Session, *, older_than: dt.timedelta = UNDELIVERED_AFTER, now: dt.datetime | None = None
) -> AlertBacklog:
    """Alerts Telegram has not accepted within `older_than`: refused, failing, or nobody to send them to."""
    cutoff = (now or utcnow()) - older_than
    urgent = (col(StaffAlert.kind) == "urgent") | (col(Case.priority) == Priority.URGENT)
    rows = session.exec(
        select(urgent, func.count())
        .select_from(StaffAlert)
        .join(Case, col(Case.id) == col(StaffAlert.case_id))
        .where(col(StaffAlert.delivered_at).is_(None), col(StaffAlert.created_at) <= cutoff)
        .group_by(urgent)
    ).all()
    counts = {bool(flag): int(n) for flag, n in rows}
    return AlertBacklog(total=sum(counts.values()), urgent=counts.get(True, 0))


def mark_delivered(
    session: Session, *, alert_ids: list[int], via: str, crisis: str | None = None, now: dt.datetime | None = None
) -> None:
    """Posted: `crisis` is the case's crisis category the post announced (for urgent alerts)."""
    at = now or utcnow()
    for row in session.exec(select(StaffAlert).where(col(StaffAlert.id).in_(alert_ids))):
        if row.delivered_at is None:
            row.delivered_at = at
            row.delivered_via = via
            row.crisis_category = crisis if row.kind == "urgent" else None
            session.add(row)


def unannounced_crises(session: Session) -> list[Case]:
    """Open urgent cases whose current crisis no urgent alert announced or will announce: never alerted as
    urgent, or the category changed since the last urgent post (whoever changed it: the engine, the console)."""
    out = []
    cases = session.exec(
        select(Case).where(
            col(Case.status).in_(OPEN_CASE_STATUSES),
            Case.priority == Priority.URGENT,
            col(Case.crisis_category).is_not(None),
        )
    )
    for case in cases:
        rows = list(
            session.exec(
                select(StaffAlert)
                .where(StaffAlert.case_id == case.id, StaffAlert.kind == "urgent")
                .order_by(col(StaffAlert.id).desc())
            )
        )
        if any(r.delivered_at is None for r in rows):
            continue  # a post is on its way and will show the current category
        if not rows or (rows[0].crisis_category is not None and rows[0].crisis_category != case.crisis_category):
            out.append(case)
    return out


def record_failure(session: Session, *, alert_ids: list[int], error: str, now: dt.datetime | None = None) -> None:
    """A refused or failed post: the alerts stay pending (never marked delivered) and are retried."""
    at = now or utcnow()
    for row in session.exec(select(StaffAlert).where(col(StaffAlert.id).in_(alert_ids))):
        row.attempts += 1
        row.attempted_at = at
        row.last_error = error[:255]
        session.add(row)


def last_alert_at(session: Session, *, case_id: int, kind: str) -> dt.datetime | None:
    return session.exec(
        select(func.max(StaffAlert.created_at)).where(StaffAlert.case_id == case_id, StaffAlert.kind == kind)
    ).one()


def waiting_cases(session: Session) -> list[Case]:
    """Open cases in which a parent waits for the concierge."""
    return list(
        session.exec(select(Case).where(col(Case.status).in_(OPEN_CASE_STATUSES), col(Case.waiting_since).is_not(None)))
    )


# ----- staff actions from Telegram messages


def start_action(
    session: Session,
    *,
    chat_id: int,
    tg_message_id: int,
    thread_id: int | None,
    case_id: int,
    staff: str,
    action: str,
) -> TelegramAction | None:
    """Claim the one action of this Telegram message; None when it was taken before (a redelivery)."""
    row = TelegramAction(
        chat_id=chat_id,
        tg_message_id=tg_message_id,
        thread_id=thread_id,
        case_id=case_id,
        staff=staff,
        action=action,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def drop_action(session: Session, *, action_id: int) -> None:
    row = session.get(TelegramAction, action_id)
    if row is not None:
        session.delete(row)


def set_reply_message(session: Session, *, action_id: int, message_id: int) -> None:
    row = session.get(TelegramAction, action_id)
    if row is not None:
        row.reply_message_id = message_id
        session.add(row)


@dataclass(frozen=True)
class ReplyOutcome:
    action_id: int
    chat_id: int
    thread_id: int | None
    tg_message_id: int
    case_id: int | None
    outcome: str  # sent | failed | unknown
    error: str | None  # the channel's error (a code or class name), for failed


def settled_replies(
    session: Session, *, lost_after: dt.timedelta, now: dt.datetime | None = None
) -> list[ReplyOutcome]:
    """Replies from Telegram whose fate is known and not yet told in the topic: accepted by the parent's
    channel, refused by it, or never queued (the process stopped between the claim and the queue)."""
    cutoff = (now or utcnow()) - lost_after
    rows = session.exec(
        select(TelegramAction, Message.delivery)
        .join(Message, col(Message.id) == col(TelegramAction.reply_message_id), isouter=True)
        .where(TelegramAction.action == "reply", col(TelegramAction.reported).is_(None))
        .order_by(col(TelegramAction.id))
    ).all()
    out: list[ReplyOutcome] = []
    for action, delivery in rows:
        assert action.id is not None
        if action.reply_message_id is None:
            if action.created_at > cutoff:
                continue
            outcome, error = "unknown", None
        elif delivery in ("sent", "failed"):
            outcome = delivery
            error = None
            if delivery == "failed":
                error = session.exec(
                    select(OutboundMessage.error)
                    .where(OutboundMessage.message_id == action.reply_message_id)
                    .order_by(col(OutboundMessage.id).desc())
                ).first()
        else:
            continue
        out.append(
            ReplyOutcome(
                action.id, action.chat_id, action.thread_id, action.tg_message_id, action.case_id, outcome, error
            )
        )
    return out


def replies_in_flight(session: Session) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(TelegramAction)
            .where(TelegramAction.action == "reply", col(TelegramAction.reported).is_(None))
        ).one()
    )


def mark_reported(session: Session, *, action_id: int, outcome: str, now: dt.datetime | None = None) -> None:
    row = session.get(TelegramAction, action_id)
    if row is not None:
        row.reported = outcome
        row.reported_at = now or utcnow()
        session.add(row)

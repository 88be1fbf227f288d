"""Retention as data: each kind of record the disposal log names, the rows of it that are due, and what is done
to them (deleted, or their content blanked while the row stays for its own period).

`KINDS` is the table; `dispose` counts every kind first and then acts, so a dry run adds up to the real one
(deleting a case takes its transcript along, which is still counted as `case_message`). `pending_expired` is the
one rule for "an expired pre-consent message", used by the sweep and by the engine's `crud.take_pending`.
No commits here: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, update
from sqlmodel import Session, SQLModel, col, select

from storage.models import (
    Case,
    CaseStatus,
    EventStatus,
    FaqFeedback,
    FeedbackStatus,
    InboundEvent,
    Message,
    OutboundMessage,
    PendingMessage,
)

CLOSED = (CaseStatus.RESOLVED, CaseStatus.REFERRED)
FINISHED = (EventStatus.DONE, EventStatus.FAILED)


@dataclass(frozen=True)
class Retention:
    """How long each record type is kept (from the retention settings)."""

    case_years: int = 5
    transcript_years: int = 1
    pending_minutes: int = 30
    processed_days: int = 30
    feedback_days: int = 90  # FAQ feedback (anonymous, redacted questions the bot could not answer)


class Action(StrEnum):
    DELETE = "delete"  # the rows go
    BLANK = "blank"  # the rows stay, the listed columns are emptied


def years_before(moment: dt.datetime, years: int) -> dt.datetime:
    """The same calendar moment `years` earlier (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def pending_expired(*, now: dt.datetime, max_hold: dt.timedelta) -> ColumnElement[bool]:
    """A pre-consent message is expired once its own window has run out or it has been held `max_hold` (the
    retention period, which the notice promises): a window stored under a longer setting does not outlive a
    shorter one, and a message the sweep would erase is never used."""
    return or_(col(PendingMessage.expires_at) <= now, col(PendingMessage.created_at) <= now - max_hold)


Selection = Callable[[Retention, dt.datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class Kind:
    """One row of the retention table."""

    kind: str
    table: type[SQLModel]
    selection: Selection
    action: Action
    blank: dict[str, Any] = field(default_factory=dict)  # for BLANK: column -> emptied value


def _cases_due(r: Retention, now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        col(Case.status).in_(CLOSED),
        col(Case.resolved_at).is_not(None),
        col(Case.resolved_at) <= years_before(now, r.case_years),
    )


def _transcripts_due(r: Retention, now: dt.datetime) -> ColumnElement[bool]:
    # Cases old enough to go whole are counted under case/case_message (so a dry run adds up).
    resolved = select(Case.id).where(
        col(Case.status).in_(CLOSED),
        col(Case.resolved_at).is_not(None),
        col(Case.resolved_at) <= years_before(now, r.transcript_years),
        col(Case.resolved_at) > years_before(now, r.case_years),
    )
    return col(Message.case_id).in_(resolved)


def _processed_before(r: Retention, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=r.processed_days)


KINDS: tuple[Kind, ...] = (
    # Case records: 5 years after resolution, with everything attached to the case (foreign keys cascade).
    Kind("case", Case, _cases_due, Action.DELETE),
    Kind(
        "case_message",
        Message,
        lambda r, now: col(Message.case_id).in_(select(Case.id).where(_cases_due(r, now))),
        Action.DELETE,
    ),
    # Transcripts of resolved cases: 1 year; the case record stays.
    Kind("transcript_message", Message, _transcripts_due, Action.DELETE),
    Kind(
        "pending_message",
        PendingMessage,
        lambda r, now: pending_expired(now=now, max_hold=dt.timedelta(minutes=r.pending_minutes)),
        Action.DELETE,
    ),
    # Payloads are erased when an event is processed; this catches any left behind.
    Kind(
        "inbound_payload",
        InboundEvent,
        lambda r, now: and_(col(InboundEvent.status).in_(FINISHED), col(InboundEvent.payload) != ""),
        Action.BLANK,
        {"payload": ""},
    ),
    Kind(
        "inbound_event",
        InboundEvent,
        lambda r, now: and_(
            col(InboundEvent.status).in_(FINISHED),
            func.coalesce(col(InboundEvent.processed_at), col(InboundEvent.received_at)) <= _processed_before(r, now),
        ),
        Action.DELETE,
    ),
    # A finished delivery keeps no text: it stays only in the transcript (under its basis).
    Kind(
        "outbound_payload",
        OutboundMessage,
        lambda r, now: and_(col(OutboundMessage.status).in_(FINISHED), col(OutboundMessage.payload) != ""),
        Action.BLANK,
        {"payload": "", "reply_token": None},
    ),
    Kind(
        "outbound_message",
        OutboundMessage,
        lambda r, now: and_(
            col(OutboundMessage.status).in_(FINISHED),
            func.coalesce(col(OutboundMessage.sent_at), col(OutboundMessage.created_at)) <= _processed_before(r, now),
        ),
        Action.DELETE,
    ),
    # FAQ feedback: kept for review at most `feedback_days`; the held question of the last answer (waiting for
    # a 👎 or 「違う」) is normally deleted by the next turn, and at the latest after the pre-consent window.
    Kind(
        "faq_feedback",
        FaqFeedback,
        lambda r, now: and_(
            col(FaqFeedback.status) != FeedbackStatus.HELD,
            col(FaqFeedback.at) <= now - dt.timedelta(days=r.feedback_days),
        ),
        Action.DELETE,
    ),
    Kind(
        "faq_feedback_held",
        FaqFeedback,
        lambda r, now: and_(
            col(FaqFeedback.status) == FeedbackStatus.HELD,
            col(FaqFeedback.at) <= now - dt.timedelta(minutes=r.pending_minutes),
        ),
        Action.DELETE,
    ),
)
BY_NAME: dict[str, Kind] = {k.kind: k for k in KINDS}


def dispose(
    session: Session, *, retention: Retention, now: dt.datetime, kinds: tuple[str, ...], dry_run: bool = False
) -> dict[str, int]:
    """Count the due rows of each named kind, then (unless `dry_run`) act on them; returns the counts."""
    chosen = [BY_NAME[name] for name in kinds if name in BY_NAME]
    counts: dict[str, int] = {}
    for k in chosen:
        where = k.selection(retention, now)
        counts[k.kind] = int(session.execute(select(func.count()).select_from(k.table).where(where)).scalar_one())
    if dry_run:
        return counts
    for k in chosen:
        if not counts[k.kind]:
            continue
        where = k.selection(retention, now)
        if k.action == Action.DELETE:
            session.execute(delete(k.table).where(where))
        else:
            session.execute(update(k.table).where(where).values(**k.blank))
    return counts

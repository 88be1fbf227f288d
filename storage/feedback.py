"""FAQ feedback: keyword-only functions over a passed-in session (no commits; the caller owns the transaction).

Rows are anonymous by construction (storage.models.FaqFeedback has no contact, case or user column); the
text handed to `add` is already redacted (handlers/feedback.py does that, with knowledge/redact.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from storage.models import FaqFeedback, FaqVote, FeedbackStatus, utcnow

REVIEWED = (FeedbackStatus.NEW,)


def add(
    session: Session,
    *,
    kind: str,
    question: str,
    channel: str,
    lang: str,
    entry_id: str | None = None,
    candidates: Sequence[str] = (),
    status: FeedbackStatus = FeedbackStatus.NEW,
    at: dt.datetime | None = None,
) -> FaqFeedback:
    row = FaqFeedback(
        kind=kind,
        question=question,
        channel=channel,
        lang=lang,
        entry_id=entry_id,
        candidates=",".join(candidates)[:512],
        status=status,
        at=at or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, *, feedback_id: int) -> FaqFeedback | None:
    return session.get(FaqFeedback, feedback_id)


def promote(session: Session, *, feedback_id: int, kind: str, entry_id: str | None = None) -> FaqFeedback | None:
    """A held row becomes kept feedback of `kind` (a 👎, 「違う」 or a request for a person followed it)."""
    row = session.get(FaqFeedback, feedback_id)
    if row is None or row.status != FeedbackStatus.HELD:
        return None
    if entry_id is not None and row.entry_id != entry_id:
        return None  # a 👎 under an older answer: it is counted, the held question is not about it
    row.kind = kind
    row.status = FeedbackStatus.NEW
    session.add(row)
    return row


def drop_held(session: Session, *, feedback_id: int) -> None:
    session.execute(
        delete(FaqFeedback).where(col(FaqFeedback.id) == feedback_id, col(FaqFeedback.status) == FeedbackStatus.HELD)
    )


def list_open(session: Session, *, limit: int = 2000) -> list[FaqFeedback]:
    """Feedback waiting for review, newest first."""
    stmt = (
        select(FaqFeedback)
        .where(col(FaqFeedback.status) == FeedbackStatus.NEW)
        .order_by(col(FaqFeedback.at).desc(), col(FaqFeedback.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


@dataclass(frozen=True)
class Group:
    """Similar questions together: the newest one stands for the group."""

    rows: list[FaqFeedback]

    @property
    def newest(self) -> FaqFeedback:
        return self.rows[0]

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows if r.id is not None]

    @property
    def count(self) -> int:
        return len(self.rows)


def list_grouped(
    session: Session,
    *,
    key: Callable[[str], str],
    similar: Callable[[str, str], float],
    threshold: float,
    limit: int = 2000,
) -> list[Group]:
    """Open feedback in groups of similar questions (newest group first, newest question first in each).

    `key(text) -> str` gives a question's comparison form (the matcher's normaliser) and
    `similar(a, b) -> float` a 0-100 similarity (rapidfuzz); questions at least `threshold` alike share a group.
    """
    return group_rows(list_open(session, limit=limit), key=key, similar=similar, threshold=threshold)


def group_rows(
    rows: Sequence[FaqFeedback], *, key: Callable[[str], str], similar: Callable[[str, str], float], threshold: float
) -> list[Group]:
    """`rows` (newest first) in groups: a row joins the first group whose first question it is alike enough."""
    groups: list[tuple[str, list[FaqFeedback]]] = []
    for row in rows:
        k = key(row.question)
        for gkey, members in groups:
            if similar(k, gkey) >= threshold:
                members.append(row)
                break
        else:
            groups.append((k, [row]))
    return [Group(members) for _, members in groups]


def _mark(session: Session, *, ids: Sequence[int], status: FeedbackStatus, used_entry: str | None) -> int:
    rows = list(
        session.exec(
            select(FaqFeedback).where(col(FaqFeedback.id).in_(list(ids)), col(FaqFeedback.status) == FeedbackStatus.NEW)
        )
    )
    now = utcnow()
    for row in rows:
        row.status = status
        row.used_entry = used_entry
        row.handled_at = now
        session.add(row)
    return len(rows)


def dismiss(session: Session, *, ids: Sequence[int]) -> int:
    return _mark(session, ids=ids, status=FeedbackStatus.DISMISSED, used_entry=None)


def mark_used(session: Session, *, ids: Sequence[int], entry_id: str) -> int:
    return _mark(session, ids=ids, status=FeedbackStatus.USED, used_entry=entry_id)


def vote(
    session: Session, *, entry_id: str, helpful: bool, channel: str, lang: str, at: dt.datetime | None = None
) -> None:
    session.add(FaqVote(entry_id=entry_id, helpful=helpful, channel=channel, lang=lang, at=at or utcnow()))


@dataclass(frozen=True)
class Votes:
    entry_id: str
    helpful: int
    unhelpful: int

    @property
    def total(self) -> int:
        return self.helpful + self.unhelpful

    @property
    def rate(self) -> float | None:
        """👍 / (👍 + 👎), None without votes."""
        return self.helpful / self.total if self.total else None


def counts_per_entry(session: Session, *, start: dt.datetime, end: dt.datetime) -> list[Votes]:
    """👍 and 👎 per entry in [start, end), most votes first."""
    stmt = (
        select(FaqVote.entry_id, FaqVote.helpful, func.count())
        .where(col(FaqVote.at) >= start, col(FaqVote.at) < end)
        .group_by(col(FaqVote.entry_id), col(FaqVote.helpful))
    )
    table: dict[str, list[int]] = {}
    for entry_id, is_helpful, n in session.execute(stmt):
        table.setdefault(entry_id, [0, 0])[0 if is_helpful else 1] += int(n)
    out = [Votes(e, up, down) for e, (up, down) in table.items()]
    out.sort(key=lambda v: (-v.total, v.entry_id))
    return out


def unanswered(session: Session, *, start: dt.datetime, end: dt.datetime) -> list[FaqFeedback]:
    """Questions kept in [start, end) (any review status but held), newest first: the report's
    "questions not answered"."""
    stmt = (
        select(FaqFeedback)
        .where(
            col(FaqFeedback.at) >= start,
            col(FaqFeedback.at) < end,
            col(FaqFeedback.status) != FeedbackStatus.HELD,
        )
        .order_by(col(FaqFeedback.at).desc())
    )
    return list(session.exec(stmt))


def purge_older(session: Session, *, days: int, now: dt.datetime | None = None) -> int:
    """Delete feedback older than `days` (the retention job does this through storage/retention.py)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    result = session.execute(delete(FaqFeedback).where(col(FaqFeedback.at) <= cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

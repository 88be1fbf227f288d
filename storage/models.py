"""Tables. Personal data is kept to what the service needs: a channel id per contact, and message
content only under consent (or the life-and-safety exception, recorded on the row)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# SQLite would otherwise give a new row the largest id + 1, so deleting the newest case (erasure) would hand
# its number to the next one and make audit rows ambiguous. PostgreSQL's sequences never go back.
NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConversationStateName(StrEnum):
    FAQ = "faq"
    CLARIFY = "clarify"
    CONSENT = "consent"
    HANDOFF = "handoff"
    URGENT = "urgent"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class CaseStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_PARENT = "waiting_parent"
    RESOLVED = "resolved"
    REFERRED = "referred"


OPEN_CASE_STATUSES = (CaseStatus.NEW, CaseStatus.IN_PROGRESS, CaseStatus.WAITING_PARENT)


class Priority(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class Basis(StrEnum):
    """Why content may be kept: the parent's consent, or the life-and-safety exception."""

    CONSENT = "consent"
    LIFE_SAFETY = "life_safety"


class Contact(SQLModel, table=True):
    """A parent as a channel knows them: no name, no phone number, just the channel's id."""

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_contact_channel_external"),
        NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=255)
    lang: str | None = Field(default=None, max_length=16)
    subscribed: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)


class ConversationState(SQLModel, table=True):
    """Where a contact's conversation stands; holds ids, never message text."""

    contact_id: int = Field(primary_key=True, foreign_key="contact.id", ondelete="CASCADE")
    state: str = Field(default=ConversationStateName.FAQ, max_length=16)
    fallbacks: int = 0
    options: str = Field(default="", max_length=1024)  # entry ids offered in clarify, comma separated
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL")
    expires_at: dt.datetime | None = None
    updated_at: dt.datetime = Field(default_factory=utcnow)
    consent_unclear: int = 0  # unclear answers to the open consent question (the second one counts as no)
    notice_lang: str | None = Field(default=None, max_length=16)  # the language the open consent notice was shown in
    last_at: dt.datetime | None = None  # the message time of the last turn: a long gap starts a new conversation
    # The held FAQ feedback row of the last answer (FaqFeedback.id, no foreign key): a 👎 or 「違う」 in the
    # next turn keeps it for review, then this is cleared; the row itself names no contact.
    feedback_id: int | None = None


class PendingMessage(SQLModel, table=True):
    """The message that led to a handoff, held before consent for at most the pre-consent window."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True, ondelete="CASCADE")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime = Field(index=True)


class ConsentRecord(SQLModel, table=True):
    """The consent ledger: append-only, the latest row per contact is in force."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    notice_version: str = Field(max_length=32)
    status: str = Field(max_length=16)
    at: dt.datetime = Field(default_factory=utcnow)
    notice_lang: str | None = Field(default=None, max_length=16)  # the language the notice was shown in
    # Which text of the version was shown (chat, mail, month-chat, month-mail) and the SHA-256 of it: with the
    # version and the language they point at the exact text in knowledge/kb/consent. None on a withdrawal.
    notice_wording: str | None = Field(default=None, max_length=16)
    notice_sha256: str | None = Field(default=None, max_length=64)


class Case(SQLModel, table=True):
    """A consultation handed to the concierge (the queue is the open cases)."""

    __table_args__ = (Index("ix_case_queue", "status", "priority", "waiting_since"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=32)
    kind: str = Field(default="consultation", max_length=32)
    status: str = Field(default=CaseStatus.NEW, max_length=16)
    priority: str = Field(default=Priority.NORMAL, max_length=16)
    topic: str | None = Field(default=None, max_length=64)
    lang: str = Field(default="ja", max_length=16)
    crisis_category: str | None = Field(default=None, max_length=32)
    basis: str = Field(default=Basis.CONSENT, max_length=16)
    basis_reason: str | None = Field(default=None, max_length=255)
    assignee: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    waiting_since: dt.datetime | None = Field(default_factory=utcnow)
    resolved_at: dt.datetime | None = None


class Message(SQLModel, table=True):
    """A line of a case's transcript; written only under a case's basis."""

    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    direction: str = Field(max_length=8)  # in | out
    author: str = Field(max_length=16)  # parent | bot | staff
    text: str = Field(sa_column=Column(Text, nullable=False))
    basis: str = Field(default=Basis.CONSENT, max_length=16)
    delivery: str | None = Field(default=None, max_length=16)  # outbound: pending | sent | failed
    created_at: dt.datetime = Field(default_factory=utcnow)


class StaffAlert(SQLModel, table=True):
    """Something the concierge should see now (new case, urgent case, a parent wrote)."""

    __table_args__ = (Index("ix_staffalert_pending", "delivered_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)
    delivered_at: dt.datetime | None = None  # set only once Telegram accepted the post
    delivered_via: str | None = Field(default=None, max_length=16)  # topic | general | complaint_chat | dm
    attempts: int = 0  # refused or failed posts (the alert stays pending and is retried)
    attempted_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, max_length=255)  # an error class or Bot API description
    crisis_category: str | None = Field(default=None, max_length=32)  # the case's crisis when this was posted


class StatEvent(SQLModel, table=True):
    """An anonymous counter: no contact, no text. Kept for statistics after records are disposed of."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    channel: str = Field(max_length=32)
    topic: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=16)
    lang: str = Field(max_length=16)
    after_hours: bool = False
    seconds: int | None = None  # for outcome first_reply: the delay until staff first answered


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class InboundEvent(SQLModel, table=True):
    """A channel event stored before it is acknowledged; its payload is erased once processed."""

    __table_args__ = (
        UniqueConstraint("channel", "event_key", name="uq_inbound_channel_key"),
        # Claiming (storage/queue.py): senders in turn, and the few crisis-lane rows in a partial index of
        # their own (as many indexes to keep up per stored event as before the crisis lane).
        Index("ix_inbound_fair", "status", "sender_key", "id"),
        Index("ix_inbound_crisis", "status", "id", sqlite_where=text("lane = 0"), postgresql_where=text("lane = 0")),
        Index("ix_inbound_sender", "sender_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    event_key: str = Field(max_length=255)
    sender_key: str = Field(max_length=255)  # one sender's events are processed in order
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=EventStatus.PENDING, max_length=16)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=255)  # a class name, never content
    received_at: dt.datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: dt.datetime | None = None
    processed_at: dt.datetime | None = None
    # Fair claiming (storage/queue.py): lane 0 holds messages with crisis words and goes first; within a lane
    # senders take turns (round-robin over sender_key), so one sender's burst does not hold the others back.
    lane: int = Field(default=1)


class OutboundMessage(SQLModel, table=True):
    """Replies waiting for delivery through a channel; the payload is erased once delivered."""

    __table_args__ = (Index("ix_outbound_claim", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    recipient: str = Field(max_length=255)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of replies
    reply_token: str | None = Field(default=None, max_length=255)
    context: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # channel data (e.g. thread)
    retry_key: str = Field(max_length=64, unique=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", ondelete="SET NULL")
    message_id: int | None = Field(default=None, foreign_key="message.id", ondelete="SET NULL")
    status: str = Field(default=EventStatus.PENDING, max_length=16)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=255)
    created_at: dt.datetime = Field(default_factory=utcnow)
    not_before: dt.datetime = Field(default_factory=utcnow)
    claimed_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    claimed_by: str | None = Field(default=None, max_length=64)  # the worker delivering it (heartbeat)
    # The reply token's fate, written before and after the reply call: "attempted" (a call may have reached
    # the platform), "refused" (the platform answered that the token is dead: pushing is safe).
    reply_state: str | None = Field(default=None, max_length=16)


class WorkerHeartbeat(SQLModel, table=True):
    """A worker loop's sign of life: work claimed by a worker whose heartbeat stopped is reclaimed in
    seconds instead of after the long `stale_after`."""

    worker_id: str = Field(primary_key=True, max_length=64)
    seen_at: dt.datetime = Field(default_factory=utcnow, index=True)


class TelegramAction(SQLModel, table=True):
    """A staff command taken from one Telegram message (Telegram bridge): at most one action per message, so a
    redelivered or re-processed update never acts twice. For /reply it follows the reply to the parent until
    the channel accepted or refused it, and remembers whether the topic was told."""

    __table_args__ = (UniqueConstraint("chat_id", "tg_message_id", name="uq_telegramaction_message"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    tg_message_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    thread_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True, ondelete="CASCADE")
    staff: str = Field(max_length=32)
    action: str = Field(max_length=16)  # reply | note | claim | resolve
    reply_message_id: int | None = Field(default=None, foreign_key="message.id", ondelete="SET NULL")
    reported: str | None = Field(
        default=None, max_length=16
    )  # reply outcome told in the topic: sent | failed | unknown
    created_at: dt.datetime = Field(default_factory=utcnow)
    reported_at: dt.datetime | None = None


class FeedbackStatus(StrEnum):
    HELD = "held"  # the last answered question, waiting for a 👎 or 「違う」 (deleted with the next turn)
    NEW = "new"  # kept for review
    USED = "used"  # added to an entry as an example question
    DISMISSED = "dismissed"


class FaqFeedback(SQLModel, table=True):
    """A question the bot could not answer well, kept for the concierge to improve the FAQ: anonymous FAQ data,
    not a record about a person. It has no contact, case or user column (and nothing derived from one), its
    text is redacted before it is written (knowledge/redact.py), crisis messages never get here, and it goes
    after `RETENTION__FEEDBACK_DAYS`."""

    __table_args__ = (Index("ix_faqfeedback_status_at", "status", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=16)  # fallback | clarify | wrong | person | unhelpful | answered (held)
    status: str = Field(default=FeedbackStatus.NEW, max_length=16)
    channel: str = Field(max_length=32)
    lang: str = Field(max_length=16)
    question: str = Field(sa_column=Column(Text, nullable=False))  # redacted
    entry_id: str | None = Field(default=None, max_length=64)  # the entry the bot answered with
    candidates: str = Field(default="", max_length=512)  # the entries offered in a clarify, comma separated
    used_entry: str | None = Field(default=None, max_length=64)  # the entry it became an example of
    handled_at: dt.datetime | None = None


class FaqVote(SQLModel, table=True):
    """One 👍 or 👎 on 「役に立ちましたか？」 under an answer: an anonymous counter (entry, time, channel), kept
    for the statistics like `StatEvent`."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    entry_id: str = Field(max_length=64, index=True)
    helpful: bool
    channel: str = Field(max_length=32)
    lang: str = Field(max_length=16)


# Read by the metrics at scrape time (storage/ops.py): the events processed in the last minutes.
Index("ix_inbound_processed", InboundEvent.processed_at)  # type: ignore[arg-type]

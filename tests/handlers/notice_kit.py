"""Helpers for the notice tests: settings wired to the fake LINE API and SMTP sink, and seeded parents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.settings import EmailSettings, LineSettings, NoticeSettings, Settings
from storage import crud, lifecycle
from storage.db import SessionFactory, transaction
from storage.models import ConsentStatus, Contact
from tests.fakes.line_api import SECRET, FakeLineAPI, user_id
from tests.fakes.mailservers import CONCIERGE, SMTPSink


def wired(
    settings: Settings, *, fake: FakeLineAPI | None = None, smtp: SMTPSink | None = None, **notices: object
) -> Settings:
    """`settings` with LINE on the fake, email on the sink, and fast retries."""
    values: dict[str, object] = {
        "line_multicast_per_second": 1000.0,
        "backoff_seconds": 0.01,
        "email_per_second": 1000.0,
    }
    values.update(notices)
    update: dict[str, object] = {"notices": NoticeSettings(**values)}
    if fake is not None:
        update["line"] = LineSettings(
            channel_secret=SECRET,
            channel_access_token=fake.token,
            api_base_url=fake.url,
        )
    if smtp is not None:
        update["email"] = EmailSettings(
            email_address=CONCIERGE,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
        )
    return settings.model_copy(update=update)


@dataclass(frozen=True)
class Parent:
    id: int
    external_id: str
    channel: str
    lang: str | None


def add_parents(
    sessions: SessionFactory,
    count: int,
    *,
    channel: str = "line",
    lang: str | None = None,
    subscribed: bool = True,
    topics: dict[str, bool] | None = None,
    child_month: dt.date | None = None,
) -> list[Parent]:
    out: list[Parent] = []
    with transaction(sessions) as session:
        for _ in range(count):
            external = user_id() if channel == "line" else f"parent{len(out)}.{user_id()[1:9]}@example.jp"
            contact = Contact(channel=channel, external_id=external, lang=lang, subscribed=subscribed)
            session.add(contact)
            session.flush()
            assert contact.id is not None
            for topic, on in (topics or {}).items():
                lifecycle.set_topic(session, contact_id=contact.id, topic=topic, enabled=on)
            if child_month is not None:
                crud.record_consent(session, contact=contact, status=ConsentStatus.GRANTED, notice_version="2026-11")
                session.flush()
                lifecycle.set_child_month(
                    session, contact_id=contact.id, month=child_month, kind=lifecycle.MonthKind.BIRTH
                )
            out.append(Parent(contact.id, external, channel, lang))
    return out

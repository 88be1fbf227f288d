"""Storage contract: the same tests run on SQLite and PostgreSQL (the `db` fixture is parametrised)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select

from storage import crud, retention
from storage.db import SessionFactory, transaction
from storage.models import Basis, CaseStatus, ConsentStatus, PendingMessage, Priority, utcnow


def test_contact_is_unique_per_channel_and_id(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        a = crud.get_or_create_contact(s, channel="line", external_id="U1")
        b = crud.get_or_create_contact(s, channel="line", external_id="U1")
        c = crud.get_or_create_contact(s, channel="email", external_id="U1")
    assert a.id == b.id != c.id


def test_consent_ledger_latest_row_is_in_force(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        contact = crud.get_or_create_contact(s, channel="line", external_id="U1")
        assert contact.id is not None
        assert not crud.has_consent(s, contact_id=contact.id)
        crud.record_consent(s, contact=contact, status=ConsentStatus.GRANTED, notice_version="v1")
        assert crud.has_consent(s, contact_id=contact.id)
        crud.record_consent(s, contact=contact, status=ConsentStatus.WITHDRAWN, notice_version="v1")
        assert not crud.has_consent(s, contact_id=contact.id)
        history = crud.consent_history(s, contact_id=contact.id)
    assert [r.status for r in history] == ["granted", "withdrawn"]


HOLD = dt.timedelta(minutes=30)


def test_pending_message_is_erased_when_taken_and_unusable_after_expiry(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        contact = crud.get_or_create_contact(s, channel="line", external_id="U1")
        assert contact.id is not None
        crud.hold_pending(s, contact_id=contact.id, text="相談です", ttl=HOLD)
        assert crud.take_pending(s, contact_id=contact.id, max_hold=HOLD) == "相談です"
        assert crud.take_pending(s, contact_id=contact.id, max_hold=HOLD) is None
        crud.hold_pending(s, contact_id=contact.id, text="古い", ttl=dt.timedelta(seconds=-1))
        assert crud.take_pending(s, contact_id=contact.id, max_hold=HOLD) is None
        assert s.exec(select(PendingMessage)).all() == []


def test_one_rule_says_when_a_pre_consent_message_has_expired(sessions: SessionFactory) -> None:
    """The engine and the sweep agree at the edges: at its window's end, or once held the retention period
    (a window stored under a longer setting), the message is neither used nor kept."""
    now = utcnow()
    held = {
        "window_ends_now": (now - dt.timedelta(minutes=10), now),
        "held_the_full_period": (now - HOLD, now + dt.timedelta(hours=1)),
        "just_inside": (now - HOLD + dt.timedelta(seconds=1), now + dt.timedelta(seconds=1)),
    }
    with transaction(sessions) as s:
        contacts = {}
        for name, (created, expires) in held.items():
            contact = crud.get_or_create_contact(s, channel="line", external_id=name)
            assert contact.id is not None
            contacts[name] = contact.id
            s.add(PendingMessage(contact_id=contact.id, text=name, created_at=created, expires_at=expires))
    with transaction(sessions) as s:
        counts = retention.dispose(s, retention=retention.Retention(), now=now, kinds=("pending_message",))
        assert counts == {"pending_message": 2}
        assert [p.text for p in s.exec(select(PendingMessage))] == ["just_inside"]
    with transaction(sessions) as s:
        for name in held:
            s.add(
                PendingMessage(contact_id=contacts[name], text=name, created_at=held[name][0], expires_at=held[name][1])
            )
    with transaction(sessions) as s:
        taken = {name: crud.take_pending(s, contact_id=contacts[name], max_hold=HOLD, now=now) for name in held}
    assert taken == {"window_ends_now": None, "held_the_full_period": None, "just_inside": "just_inside"}


def test_queue_orders_urgent_first_then_longest_waiting(sessions: SessionFactory) -> None:
    now = utcnow()
    with transaction(sessions) as s:
        ids = []
        for i, (prio, waited) in enumerate([(Priority.NORMAL, 50), (Priority.NORMAL, 90), (Priority.URGENT, 5)]):
            contact = crud.get_or_create_contact(s, channel="line", external_id=f"U{i}")
            case = crud.create_case(s, contact=contact, lang="ja", topic=None, priority=prio)
            case.waiting_since = now - dt.timedelta(minutes=waited)
            s.add(case)
            ids.append(case.id)
        resolved = crud.create_case(
            s, contact=crud.get_or_create_contact(s, channel="line", external_id="U9"), lang="ja", topic=None
        )
        crud.set_case_status(s, case=resolved, status=CaseStatus.RESOLVED)
    with sessions() as s:
        order = [c.id for c in crud.queue(s)]
    assert order == [ids[2], ids[1], ids[0]]


def test_transcript_keeps_the_basis_of_each_line(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        contact = crud.get_or_create_contact(s, channel="line", external_id="U1")
        case = crud.create_case(
            s,
            contact=contact,
            lang="ja",
            topic=None,
            priority=Priority.URGENT,
            basis=Basis.LIFE_SAFETY,
            basis_reason="life_safety:dv",
        )
        crud.add_message(s, case=case, direction="in", author="parent", text="助けて", basis=Basis.LIFE_SAFETY)
        assert case.id is not None
        lines = crud.transcript(s, case_id=case.id)
    assert [(m.text, m.basis) for m in lines] == [("助けて", "life_safety")]


def test_stat_events_hold_no_contact(sessions: SessionFactory) -> None:
    at = utcnow()
    with transaction(sessions) as s:
        crud.count_event(s, channel="line", outcome="answer", lang="ja", topic="child_allowance", after_hours=False)
    with sessions() as s:
        rows = crud.stat_events(s, since=at - dt.timedelta(minutes=1), until=at + dt.timedelta(minutes=1))
    assert len(rows) == 1
    assert set(rows[0].model_dump()) == {"id", "at", "channel", "topic", "outcome", "lang", "after_hours", "seconds"}

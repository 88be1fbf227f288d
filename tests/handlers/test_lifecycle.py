"""Records lifecycle on SQLite and PostgreSQL: retention disposal with its log, the pre-consent sweep, erasure
with its legal exceptions (and the completion of a partial erasure), export, and notice segments."""

from __future__ import annotations

import datetime as dt
import json

from sqlmodel import Session, select

from handlers import lifecycle
from handlers.lifecycle import Retention, erase_contact, export_contact, purge_records, sweep_records, years_before
from storage import crud, queue
from storage import lifecycle as store
from storage.db import SessionFactory, transaction
from storage.lifecycle import DisposalLog, MonthKind, RecordRequest, RequestStatus
from storage.models import (
    Basis,
    Case,
    CaseStatus,
    ConsentRecord,
    ConsentStatus,
    Contact,
    ConversationState,
    EventStatus,
    InboundEvent,
    Message,
    OutboundMessage,
    PendingMessage,
    Priority,
    StaffAlert,
    StatEvent,
    utcnow,
)

NOW = dt.datetime(2026, 11, 26, 3, 30, tzinfo=dt.UTC)
RETENTION = Retention()
V = "2026-11"


def _contact(s: Session, external_id: str, channel: str = "line") -> Contact:
    contact = crud.get_or_create_contact(s, channel=channel, external_id=external_id)
    assert contact.id is not None
    return contact


def _case(s: Session, contact: Contact, *, resolved_ago: dt.timedelta | None, lines: int = 2, **kw: object) -> Case:
    case = crud.create_case(s, contact=contact, lang="ja", topic="parenting_worries", **kw)  # type: ignore[arg-type]
    for i in range(lines):
        crud.add_message(s, case=case, direction="in", author="parent", text=f"相談{i}", basis=Basis.CONSENT)
    crud.add_alert(s, case=case, kind="new_case")
    if resolved_ago is not None:
        crud.set_case_status(s, case=case, status=CaseStatus.RESOLVED)
        case.resolved_at = NOW - resolved_ago
        s.add(case)
    s.flush()
    return case


def _all(sessions: SessionFactory, model: type) -> list:  # type: ignore[type-arg]
    with sessions() as s:
        return list(s.exec(select(model)))


def test_years_before_handles_leap_days() -> None:
    assert years_before(dt.datetime(2028, 2, 29, tzinfo=dt.UTC), 1) == dt.datetime(2027, 2, 28, tzinfo=dt.UTC)
    assert years_before(NOW, 5) == dt.datetime(2021, 11, 26, 3, 30, tzinfo=dt.UTC)


def test_purge_disposes_of_what_is_due_and_logs_kinds_and_counts(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        parent = _contact(s, "U1")
        old = _case(s, parent, resolved_ago=dt.timedelta(days=5 * 366), lines=3)
        mid = _case(s, parent, resolved_ago=dt.timedelta(days=400), lines=2)
        recent = _case(s, parent, resolved_ago=dt.timedelta(days=30), lines=1)
        open_case = _case(s, parent, resolved_ago=None, lines=1)
        ids = (old.id, mid.id, recent.id, open_case.id)
        s.add(PendingMessage(contact_id=parent.id or 0, text="前の", created_at=NOW, expires_at=NOW))
        queue.store_event(s, channel="line", event_key="e1", sender_key="line:U1", payload="{}")
        queue.store_event(s, channel="line", event_key="e2", sender_key="line:U1", payload="{...}")
        for event in s.exec(select(InboundEvent)):
            event.status = EventStatus.DONE
            event.processed_at = NOW - dt.timedelta(days=40 if event.event_key == "e1" else 1)
            event.payload = "" if event.event_key == "e1" else "left behind"
            s.add(event)
        failed = queue.enqueue_outbound(s, channel="line", recipient="U1", payload="[本文]", retry_key="k1")
        failed.status = EventStatus.FAILED  # failed under an older version, which left its text behind
        s.add(failed)
        done = queue.enqueue_outbound(s, channel="line", recipient="U1", payload="[]", retry_key="k2")
        queue.finish_outbound(s, outbound_id=done.id or 0)
        done.created_at = done.sent_at = NOW - dt.timedelta(days=60)
        s.add(done)
        crud.count_event(s, channel="line", outcome="handoff", lang="ja", topic="parenting_worries", after_hours=False)

    dry = purge_records(sessions, retention=RETENTION, notice_version=V, now=NOW, dry_run=True)
    assert dry["case"] == 1 and _all(sessions, DisposalLog) == [] and len(_all(sessions, Case)) == 4

    counts = purge_records(sessions, retention=RETENTION, notice_version=V, now=NOW)
    assert {k: v for k, v in counts.items() if k != "erasure_completed"} == {
        "case": 1,
        "case_message": 3,
        "transcript_message": 2,
        "pending_message": 1,
        "inbound_payload": 1,
        "inbound_event": 1,
        "outbound_payload": 1,
        "outbound_message": 1,
        "faq_feedback": 0,
        "faq_feedback_held": 0,
        "child_month": 0,
    }
    assert counts == dry | {"erasure_completed": 0}
    with sessions() as s:
        assert {c.id for c in s.exec(select(Case))} == set(ids[1:])
        kept = {m.case_id for m in s.exec(select(Message))}
        assert kept == {ids[2], ids[3]}  # the year-old transcript is gone, its case record stays
        assert [a.case_id for a in s.exec(select(StaffAlert))] == list(ids[1:])
        assert [o.payload for o in s.exec(select(OutboundMessage))] == [""]
        assert len(list(s.exec(select(StatEvent)))) == 1  # anonymous counters are not records to dispose of
        log = list(s.exec(select(DisposalLog)))
    assert [entry.kind for entry in log] == list(lifecycle.PURGE_KINDS)  # every kind, zeros included
    assert all(entry.source == "scheduler" and entry.at == NOW for entry in log)
    # Nothing in the log but kinds, counts and times.
    assert set(DisposalLog.model_fields) == {"id", "at", "kind", "count", "source"}
    again = purge_records(sessions, retention=RETENTION, notice_version=V, now=NOW)
    assert sum(v for v in again.values()) == 0


def test_sweep_removes_expired_buffers_and_months_without_consent(sessions: SessionFactory) -> None:
    now = utcnow()
    with transaction(sessions) as s:
        a, b = _contact(s, "U1"), _contact(s, "U2")
        crud.hold_pending(s, contact_id=a.id or 0, text="待ち", ttl=dt.timedelta(minutes=30))
        s.add(
            PendingMessage(
                contact_id=b.id or 0,
                text="古い",
                created_at=now - dt.timedelta(minutes=31),
                expires_at=now + dt.timedelta(hours=1),
            )
        )
        for contact in (a, b):
            crud.record_consent(s, contact=contact, status=ConsentStatus.GRANTED, notice_version=V)
            store.set_child_month(s, contact_id=contact.id or 0, month=dt.date(2025, 4, 9), kind=MonthKind.BIRTH)
        crud.record_consent(s, contact=b, status=ConsentStatus.WITHDRAWN, notice_version=V)

    counts = sweep_records(sessions, retention=RETENTION, now=now)
    assert counts == {"pending_message": 1, "faq_feedback_held": 0, "child_month": 1}
    with sessions() as s:
        assert [p.text for p in s.exec(select(PendingMessage))] == ["待ち"]
        months = {p.contact_id: p.child_month for p in s.exec(select(store.NoticeProfile))}
        assert months == {a.id: dt.date(2025, 4, 1), b.id: None}
        assert [(e.kind, e.count) for e in s.exec(select(DisposalLog))] == [("pending_message", 1), ("child_month", 1)]
    assert sweep_records(sessions, retention=RETENTION) == {
        "pending_message": 0,
        "faq_feedback_held": 0,
        "child_month": 0,
    }
    assert len(_all(sessions, DisposalLog)) == 2  # nothing to sweep: nothing logged


def test_the_month_is_refused_without_consent(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        contact = _contact(s, "U1")
        try:
            store.set_child_month(s, contact_id=contact.id or 0, month=dt.date(2025, 4, 1), kind=MonthKind.BIRTH)
        except store.ConsentRequiredError:
            pass
        else:
            raise AssertionError("stored without consent")


def test_erasure_removes_everything_and_records_the_legal_exceptions(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        parent, other = _contact(s, "U1"), _contact(s, "U2")
        crud.record_consent(s, contact=parent, status=ConsentStatus.GRANTED, notice_version=V)
        _case(s, parent, resolved_ago=dt.timedelta(days=10))
        _case(s, parent, resolved_ago=None)
        crisis = _case(
            s,
            parent,
            resolved_ago=dt.timedelta(days=3),
            priority=Priority.URGENT,
            basis=Basis.LIFE_SAFETY,
            crisis_category="abuse",
        )
        kept_case = _case(s, other, resolved_ago=None)
        crud.get_state(s, contact_id=parent.id or 0)
        crud.hold_pending(s, contact_id=parent.id or 0, text="前の", ttl=dt.timedelta(minutes=30))
        store.set_topic(s, contact_id=parent.id or 0, topic="health", enabled=True)
        store.set_child_month(s, contact_id=parent.id or 0, month=dt.date(2025, 4, 1), kind=MonthKind.BIRTH)
        queue.store_event(s, channel="line", event_key="e1", sender_key="line:U1", payload="")
        queue.store_event(s, channel="line", event_key="e2", sender_key="line:U2", payload="")
        for event in s.exec(select(InboundEvent)):
            event.status = EventStatus.DONE
            s.add(event)
        queue.enqueue_outbound(s, channel="line", recipient="U1", payload="[返信]", retry_key="k1")
        crud.count_event(s, channel="line", outcome="handoff", lang="ja", topic=None, after_hours=True)
        parent.subscribed = True
        cid = parent.id

    with transaction(sessions) as s:
        contact = crud.get_contact(s, contact_id=cid or 0)
        assert contact is not None
        result = erase_contact(s, contact=contact, requested_by="parent", notice_version=V, now=NOW)

    assert result.status == RequestStatus.DONE
    assert result.counts == {
        "case": 2,
        "case_message": 4,
        "pending_message": 1,
        "notice_settings": 2,
        "inbound_event": 1,
        "outbound_message": 1,
        "contact_id": 1,
    }
    assert [(e["record"], e["count"]) for e in result.exceptions] == [("consent_ledger", 2), ("crisis_case", 1)]
    with sessions() as s:
        contact = crud.get_contact(s, contact_id=cid or 0)
        assert contact is not None and contact.external_id == f"erased:{cid}" and not contact.subscribed
        assert contact.lang is None
        assert {c.id for c in s.exec(select(Case))} == {crisis.id, kept_case.id}
        ledger = [r.status for r in s.exec(select(ConsentRecord).where(ConsentRecord.contact_id == cid))]
        assert ledger == ["granted", "withdrawn"]  # kept, and erasure ended the consent
        assert s.get(ConversationState, cid) is None and s.get(store.NoticeProfile, cid) is None
        assert [e.sender_key for e in s.exec(select(InboundEvent))] == ["line:U2"]
        assert list(s.exec(select(OutboundMessage))) == []
        assert len(list(s.exec(select(StatEvent)))) == 1
        (request,) = s.exec(select(RecordRequest))
    assert request.kind == "erase" and request.requested_by == "parent" and request.done_at == NOW
    assert json.loads(request.exceptions)[1]["case_ids"] == [crisis.id]
    assert "相談" not in request.counts + request.exceptions.replace("相談の記録", "")

    # The same LINE user writing again is a new contact with nothing attached.
    with transaction(sessions) as s:
        fresh = crud.get_or_create_contact(s, channel="line", external_id="U1")
        assert fresh.id != cid and crud.open_case_for(s, contact_id=fresh.id or 0) is None


def test_erasure_with_an_open_crisis_case_is_completed_once_the_case_closes(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        parent = _contact(s, "U1")
        crisis = _case(
            s, parent, resolved_ago=None, priority=Priority.URGENT, basis=Basis.LIFE_SAFETY, crisis_category="self_harm"
        )
        _case(s, parent, resolved_ago=dt.timedelta(days=1))
        state = crud.get_state(s, contact_id=parent.id or 0)
        state.case_id = crisis.id
        s.add(state)
        result = erase_contact(s, contact=parent, requested_by="staff:sato", notice_version=V, now=NOW)
        cid = parent.id
    assert result.status == RequestStatus.PARTIAL
    assert [e["record"] for e in result.exceptions] == ["crisis_case", "contact_id"]
    with sessions() as s:
        contact = crud.get_contact(s, contact_id=cid or 0)
        assert contact is not None and contact.external_id == "U1"  # the concierge can still reply
        assert s.get(ConversationState, cid) is not None  # the parent's messages still reach the case
        assert {c.id for c in s.exec(select(Case))} == {crisis.id}

    assert purge_records(sessions, retention=RETENTION, notice_version=V, now=NOW)["erasure_completed"] == 0
    with transaction(sessions) as s:
        case = crud.get_case(s, case_id=crisis.id or 0)
        assert case is not None
        crud.set_case_status(s, case=case, status=CaseStatus.RESOLVED)
    assert purge_records(sessions, retention=RETENTION, notice_version=V, now=NOW)["erasure_completed"] == 1
    with sessions() as s:
        contact = crud.get_contact(s, contact_id=cid or 0)
        assert contact is not None and contact.external_id == f"erased:{cid}"
        (request,) = s.exec(select(RecordRequest))
        assert request.status == RequestStatus.DONE and request.counts_dict()["case"] == 1
        assert {c.id for c in s.exec(select(Case))} == {crisis.id}  # the crisis record stays for its period


def test_export_has_everything_kept_about_the_contact(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        parent = _contact(s, "U1")
        crud.record_consent(s, contact=parent, status=ConsentStatus.GRANTED, notice_version=V)
        case = _case(s, parent, resolved_ago=None, lines=1)
        crud.add_message(s, case=case, direction="out", author="staff:sato", text="お返事です", basis=Basis.CONSENT)
        store.set_child_month(s, contact_id=parent.id or 0, month=dt.date(2027, 3, 1), kind=MonthKind.DUE)
        data = lifecycle.record_export(s, contact=parent, requested_by="staff:sato")
        other = export_contact(s, contact=_contact(s, "U2"))
    assert data["contact"]["external_id"] == "U1"
    assert [c["status"] for c in data["consent"]] == ["granted"]
    (exported,) = data["cases"]
    assert [(m["author"], m["text"]) for m in exported["messages"]] == [("parent", "相談0"), ("staff", "お返事です")]
    assert data["notices"]["child_month"] == "2027-03" and data["notices"]["child_month_kind"] == "due"
    assert data["requests"][0]["kind"] == "export"
    assert other["cases"] == [] and other["consent"] == []
    text = lifecycle.render_export(data)
    assert "お返事です" in text and "相談員" in text and "2027-03" in text
    with sessions() as s:
        (request,) = s.exec(select(RecordRequest))
    assert request.status == RequestStatus.DONE and request.counts_dict() == {
        "case": 1,
        "case_message": 2,
        "consent_record": 1,
    }


def test_audience_by_topic_channel_language_and_age(sessions: SessionFactory) -> None:
    on = dt.date(2026, 11, 26)
    with transaction(sessions) as s:
        follower = _contact(s, "U1")  # a LINE follower who changed nothing
        follower.subscribed = True
        quiet = _contact(s, "U2")  # turned general notices off
        quiet.subscribed = True
        store.set_topic(s, contact_id=quiet.id or 0, topic="general", enabled=False)
        mail = _contact(s, "a@example.jp", channel="email")  # email: opted in to health notices, in English
        mail.subscribed = True
        mail.lang = "en"
        store.set_topic(s, contact_id=mail.id or 0, topic="health", enabled=True)
        store.set_notice_lang(s, contact_id=mail.id or 0, lang="en")
        never = _contact(s, "b@example.jp", channel="email")  # never opted in
        store.set_topic(s, contact_id=never.id or 0, topic="health", enabled=True)
        baby = _contact(s, "U3")  # 18 months old, under consent
        baby.subscribed = True
        store.set_topic(s, contact_id=baby.id or 0, topic="health", enabled=True)
        crud.record_consent(s, contact=baby, status=ConsentStatus.GRANTED, notice_version=V)
        store.set_child_month(s, contact_id=baby.id or 0, month=dt.date(2025, 5, 1), kind=MonthKind.BIRTH)
        ids = {name: c.id for name, c in (("follower", follower), ("quiet", quiet), ("mail", mail), ("baby", baby))}

        assert store.audience(s, topic="general") == [ids["follower"], ids["mail"], ids["baby"]]
        assert store.audience(s, topic="health") == [ids["mail"], ids["baby"]]
        assert store.audience(s, topic="health", channel="email") == [ids["mail"]]
        assert store.audience(s, topic="health", lang="en") == [ids["mail"]]
        assert store.audience(s, topic="general", lang="ja") == [ids["follower"], ids["baby"]]
        assert store.audience(s, topic="health", age_months=(18, 18), on=on) == [ids["baby"]]
        assert store.audience(s, topic="health", age_months=(0, 12), on=on) == []
        crud.record_consent(s, contact=baby, status=ConsentStatus.WITHDRAWN, notice_version=V)
        assert store.audience(s, topic="health", age_months=(18, 18), on=on) == []
    assert store.months_between(dt.date(2027, 3, 1), dt.date(2026, 11, 1)) == -4

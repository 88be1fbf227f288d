"""Records lifecycle: retention disposal, the pre-consent sweep, erasure and export on request.

Disposal (`purge_records`, daily) removes what its retention period has run out for: case records 5 years after
resolution, transcripts of resolved cases after 1 year, processed channel events and deliveries after
`processed_days`; the sweep (`sweep_records`, every few minutes) removes pre-consent buffers older than 30
minutes and children's months whose consent is no longer in force. Both write the disposal log: kind, count,
time, never content.

Erasure (`erase_contact`, by chat command or staff) removes everything about a contact, except two legal
exceptions recorded in the erasure log:
- the consent ledger rows (proof of what was agreed and when; they hold no content), with the contact reduced
  to a tombstone without its channel id;
- crisis cases (life and child safety: the record of an abuse/DV/self-harm concern stays for its retention
  period). While such a case is still open the channel id is kept as well, so the concierge can still reach the
  parent; the erasure is then `partial` and the daily purge completes it once the case is closed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from handlers import channels, consent
from storage import crud
from storage import lifecycle as store
from storage import retention as retention_table
from storage.db import SessionFactory, transaction
from storage.lifecycle import RequestKind, RequestStatus
from storage.models import Contact, utcnow
from storage.retention import Retention, years_before

__all__ = ["Retention", "years_before"]  # re-exported: callers configure retention through this module

log = logging.getLogger("concierge.lifecycle")

ERASED_PREFIX = "erased:"

# The kinds of the disposal log, in the order they are disposed of: the retention table, then the months kept
# without consent in force.
PURGE_KINDS = (*(k.kind for k in retention_table.KINDS), "child_month")
SWEEP_KINDS = ("pending_message", "faq_feedback_held", "child_month")

LEDGER_REASON = (
    "同意の記録（いつ同意・取り消しをしたか）は、記録の適法性を示す証拠として保存（内容・連絡先IDは含まない）"
)
CRISIS_REASON = "命や子どもの安全に関わる相談の記録は、要保護児童等の支援のため保存期間の満了まで保存"
OPEN_CRISIS_REASON = "緊急の相談が続いているため、相談員が連絡できるよう連絡先IDを相談の終了まで保存（終了後に削除）"


# ----- disposal


def _dispose(
    session: Session, *, retention: Retention, now: dt.datetime, dry_run: bool, kinds: tuple[str, ...]
) -> dict[str, int]:
    counts = retention_table.dispose(session, retention=retention, now=now, kinds=kinds, dry_run=dry_run)
    if "child_month" in kinds:
        counts["child_month"] = store.drop_months_without_consent(session, dry_run=dry_run)
    return counts


def purge_records(
    sessions: SessionFactory,
    *,
    retention: Retention,
    notice_version: str | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    source: str = "scheduler",
) -> dict[str, int]:
    """Dispose of everything due, in one transaction; the log gets every kind, zero counts included, so it shows
    that disposal ran. Partial erasures whose crisis case has closed are completed. Returns the counts."""
    now = now or utcnow()
    with transaction(sessions) as session:
        counts = _dispose(session, retention=retention, now=now, dry_run=dry_run, kinds=PURGE_KINDS)
        if dry_run:
            session.rollback()
            return counts
        for kind in PURGE_KINDS:
            store.log_disposal(session, kind=kind, count=counts[kind], source=source, at=now)
        counts["erasure_completed"] = complete_erasures(session, notice_version=notice_version, now=now)
    return counts


def sweep_records(
    sessions: SessionFactory, *, retention: Retention, now: dt.datetime | None = None, source: str = "scheduler"
) -> dict[str, int]:
    """The frequent sweep: pre-consent buffers past their window, months without consent. Logs non-zero counts."""
    now = now or utcnow()
    with transaction(sessions) as session:
        counts = _dispose(session, retention=retention, now=now, dry_run=False, kinds=SWEEP_KINDS)
        for kind, n in counts.items():
            if n:
                store.log_disposal(session, kind=kind, count=n, source=source, at=now)
    return counts


# ----- erasure


@dataclass
class ErasureResult:
    request_id: int
    status: RequestStatus
    counts: dict[str, int] = field(default_factory=dict)
    exceptions: list[dict[str, Any]] = field(default_factory=list)


find_contact = crud.find_contact


def erase_contact(
    session: Session,
    *,
    contact: Contact,
    requested_by: str,
    notice_version: str | None = None,
    now: dt.datetime | None = None,
    request: store.RecordRequest | None = None,
) -> ErasureResult:
    """Erase everything about `contact` (see the module docstring for what stays and why), in the caller's
    transaction. `request` continues an earlier partial erasure."""
    now = now or utcnow()
    assert contact.id is not None
    cid = contact.id
    if request is None:
        request = store.add_request(
            session,
            kind=RequestKind.ERASE,
            status=RequestStatus.REQUESTED,
            contact=contact,
            requested_by=requested_by,
            at=now,
        )
    counts: dict[str, int] = dict(request.counts_dict())

    def add(kind: str, n: int) -> None:
        if n:
            counts[kind] = counts.get(kind, 0) + n

    crisis = store.crisis_cases(session, contact_id=cid)
    open_crisis = store.crisis_cases(session, contact_id=cid, open_only=True)
    for kind, n in store.delete_cases(session, contact_id=cid, keep_crisis=True).items():
        add(kind, n)
    add("pending_message", crud.clear_pending(session, contact_id=cid))
    add("notice_settings", store.delete_notice_settings(session, contact_id=cid))
    contact.subscribed = False
    traffic = store.delete_channel_traffic(
        session,
        channel=contact.channel,
        sender_key=channels.sender_key(contact.channel, contact.external_id),  # the channel's adapter says
        recipient=contact.external_id,
    )
    for kind, n in traffic.items():
        add(kind, n)

    # Erasure ends consent: nothing more is recorded under it, not even on a kept crisis case.
    consent.withdraw(session, contact=contact, version=notice_version or consent.current_version())
    exceptions: list[dict[str, Any]] = []
    kept = consent.ledger_kept(session, contact_id=cid)
    if kept:
        exceptions.append({"record": "consent_ledger", "count": kept, "reason": LEDGER_REASON})
    if crisis:
        exceptions.append(
            {
                "record": "crisis_case",
                "count": len(crisis),
                "case_ids": sorted(c.id for c in crisis if c.id is not None),
                "reason": CRISIS_REASON,
            }
        )
    if open_crisis:
        exceptions.append({"record": "contact_id", "count": 1, "reason": OPEN_CRISIS_REASON})
        status = RequestStatus.PARTIAL
    else:
        crud.drop_state(session, contact_id=cid)
        contact.external_id = f"{ERASED_PREFIX}{cid}"
        contact.lang = None
        contact.last_seen_at = now
        add("contact_id", 1)
        status = RequestStatus.DONE
    session.add(contact)
    store.finish_request(session, request=request, status=status, counts=counts, exceptions=exceptions, at=now)
    session.flush()
    assert request.id is not None
    log.info("erasure %s of contact %s: %s", request.id, cid, status.value)
    return ErasureResult(request.id, status, counts, exceptions)


def complete_erasures(session: Session, *, notice_version: str | None = None, now: dt.datetime | None = None) -> int:
    """Finish partial erasures whose crisis cases are closed now; returns how many were completed."""
    done = 0
    for request in store.requests(session, kind=RequestKind.ERASE, status=RequestStatus.PARTIAL):
        contact = crud.get_contact(session, contact_id=request.contact_ref)
        if contact is None:
            store.finish_request(session, request=request, status=RequestStatus.DONE, at=now)
            done += 1
            continue
        if store.crisis_cases(session, contact_id=request.contact_ref, open_only=True):
            continue
        result = erase_contact(
            session,
            contact=contact,
            requested_by=request.requested_by,
            notice_version=notice_version,
            now=now,
            request=request,
        )
        done += result.status == RequestStatus.DONE
    return done


# ----- export


def export_contact(session: Session, *, contact: Contact) -> dict[str, Any]:
    """Everything kept about a contact, for the parent (through staff): contact, consent ledger, cases with
    their transcripts, notice settings, and earlier erasure/export requests."""
    assert contact.id is not None
    cid = contact.id
    cases = store.cases_of(session, contact_id=cid)
    profile = store.get_profile(session, contact_id=cid)
    return {
        "contact": {
            "id": cid,
            "channel": contact.channel,
            "external_id": contact.external_id,
            "lang": contact.lang,
            "subscribed": contact.subscribed,
            "created_at": _iso(contact.created_at),
            "last_seen_at": _iso(contact.last_seen_at),
        },
        # Each answer with the exact notice text it was given to.
        "consent": [{**row, "at": _iso(row["at"])} for row in consent.ledger(session, contact_id=cid)],
        "cases": [
            {
                "id": c.id,
                "kind": c.kind,
                "status": c.status,
                "priority": c.priority,
                "topic": c.topic,
                "basis": c.basis,
                "created_at": _iso(c.created_at),
                "resolved_at": _iso(c.resolved_at),
                "messages": [
                    {
                        "at": _iso(m.created_at),
                        "direction": m.direction,
                        "author": "staff" if m.author.startswith("staff") else m.author,
                        "text": m.text,
                        "basis": m.basis,
                    }
                    for m in crud.transcript(session, case_id=c.id or 0)
                ],
            }
            for c in cases
        ],
        "notices": {
            "subscribed": contact.subscribed,
            "topics": store.topic_settings(session, contact_id=cid),
            "lang": profile.lang if profile else None,
            "child_month": profile.child_month.strftime("%Y-%m") if profile and profile.child_month else None,
            "child_month_kind": profile.child_month_kind if profile else None,
        },
        "requests": [
            {"id": r.id, "kind": r.kind, "status": r.status, "at": _iso(r.requested_at)}
            for r in store.requests(session, contact_ref=cid)
        ],
    }


WORDING_JA = {
    "chat": "チャット",
    "mail": "メール",
    "month-chat": "誕生月の登録",
    "month-mail": "誕生月の登録（メール）",
}


def render_export(data: dict[str, Any]) -> str:
    """A plain-text summary of an export for the concierge to check and send (Japanese)."""
    contact = data["contact"]
    lines = [
        "記録の開示（このアカウントについて保存している記録）",
        f"チャネル：{contact['channel']}　登録日：{contact['created_at'][:10]}",
        "",
        "■ 同意の記録",
    ]
    status_ja = {"granted": "同意", "declined": "同意しない", "withdrawn": "取り消し"}
    for r in data["consent"]:
        lines.append(f"・{r['at'][:16]} {status_ja.get(r['status'], r['status'])}（{r['notice_version']}版）")
        if r.get("notice_text"):
            lines.append(f"    表示した同意文（{r['notice_lang']}、{WORDING_JA.get(r['notice_wording'], '')}）：")
            lines += [f"    {line}" for line in r["notice_text"].splitlines()]
    if not data["consent"]:
        lines.append("・なし")
    lines += ["", "■ ご相談の記録"]
    for case in data["cases"]:
        lines.append(f"・受付番号 {case['id']}（{case['created_at'][:10]}、状態：{case['status']}）")
        for m in case["messages"]:
            who = {"parent": "あなた", "bot": "自動応答", "staff": "相談員"}.get(m["author"], m["author"])
            lines.append(f"    {m['at'][:16]} {who}：{m['text']}")
    if not data["cases"]:
        lines.append("・なし")
    notices = data["notices"]
    on = [t for t, v in notices["topics"].items() if v]
    lines += [
        "",
        "■ お知らせの設定",
        f"・受け取り：{'オン' if notices['subscribed'] else 'オフ'}　話題：{', '.join(on) or 'なし'}",
        f"・誕生月・予定月：{notices['child_month'] or '登録なし'}",
    ]
    return "\n".join(lines) + "\n"


def record_export(session: Session, *, contact: Contact, requested_by: str) -> dict[str, Any]:
    """Staff export: the data, logged as a done export request."""
    request = store.add_request(
        session, kind=RequestKind.EXPORT, status=RequestStatus.REQUESTED, contact=contact, requested_by=requested_by
    )
    data = export_contact(session, contact=contact)
    counts = {"case": len(data["cases"]), "case_message": sum(len(c["messages"]) for c in data["cases"])}
    counts["consent_record"] = len(data["consent"])
    store.finish_request(session, request=request, status=RequestStatus.DONE, counts=counts)
    return data


def request_export(session: Session, *, contact: Contact, requested_by: str = "parent") -> tuple[int, int | None]:
    """A parent's request in the chat: logged for staff, and put in the concierge queue (on the open case if
    there is one, else as a case of kind `records_export` with no content). Returns (request id, case id)."""
    assert contact.id is not None
    request = store.add_request(
        session, kind=RequestKind.EXPORT, status=RequestStatus.REQUESTED, contact=contact, requested_by=requested_by
    )
    case = crud.open_case_for(session, contact_id=contact.id)
    if case is None:
        case = crud.create_case(
            session, contact=contact, lang=contact.lang or "ja", topic="privacy", kind="records_export"
        )
        crud.add_alert(session, case=case, kind="new_case")
    else:
        crud.add_alert(session, case=case, kind="records_request")
    request.case_ref = case.id
    session.add(request)
    assert request.id is not None
    return request.id, case.id


def pending_exports(session: Session) -> list[store.RecordRequest]:
    return store.requests(session, kind=RequestKind.EXPORT, status=RequestStatus.REQUESTED)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

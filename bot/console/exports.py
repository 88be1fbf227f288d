"""/cases/{id}/records-requests: a parent's records-export request (記録開示の依頼) handled on the case page.

Prepare (the export is built from what is kept about the contact and shown for review), then either deliver it
through the parent's channel (as a staff reply, through the same outbox and delivery tracking as any reply) or
mark it handed over in person. Every step is audited (counts only, never the content)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Request
from sqlmodel import Session

from bot.console.core import ForbiddenError, FormStaffDep, NotFoundError
from bot.console.views import back, load_case
from bot.deps import RuntimeDep
from handlers import staff
from handlers.lifecycle import export_contact, render_export
from storage import crud
from storage import lifecycle as store
from storage import staff as staffdb
from storage.db import transaction
from storage.lifecycle import RecordRequest, RequestKind, RequestStatus
from storage.models import Case

router = APIRouter()
RECORD_TYPE = "records_request"
MAX_CHAT = 5000  # what one reply may carry; a longer export is handed over in person


def open_requests(session: Session, *, case: Case) -> list[RecordRequest]:
    """The case's export requests that staff have not finished."""
    return [
        r
        for r in store.requests(session, contact_ref=case.contact_id, kind=RequestKind.EXPORT)
        if r.case_ref == case.id and r.status == RequestStatus.REQUESTED
    ]


def prepared(session: Session, *, case: Case) -> tuple[str, dict[str, int]]:
    """The export as the parent would receive it, and its counts (for the log)."""
    contact = crud.get_contact(session, contact_id=case.contact_id)
    if contact is None:
        raise NotFoundError()
    data = export_contact(session, contact=contact)
    counts = {"case": len(data["cases"]), "case_message": sum(len(c["messages"]) for c in data["cases"])}
    counts["consent_record"] = len(data["consent"])
    return render_export(data), counts


def page_context(session: Session, *, case: Case, review: int | None, actor: str) -> dict[str, Any]:
    """For the case page: the open requests and, when one is under review, the prepared text (audited)."""
    requests = open_requests(session, case=case)
    context: dict[str, Any] = {"records_requests": requests, "export_review": None}
    chosen = next((r for r in requests if r.id == review), None)
    if chosen is not None:
        text, counts = prepared(session, case=case)
        context["export_review"] = {"id": chosen.id, "text": text, "too_long": len(text) > MAX_CHAT}
        detail = f"受付番号 {case.id}、確認（やりとり{counts['case_message']}件）"
        staffdb.audit(
            session, actor=actor, action="export", record_type=RECORD_TYPE, record_id=chosen.id, detail=detail
        )
    return context


class _Finished(Exception):
    """The request is not open on this case (finished meanwhile, or another case's)."""


def _load(session: Session, *, case_id: int, request_id: int, who: Any) -> tuple[Case, RecordRequest]:
    case = load_case(session, case_id=case_id, staff=who.staff, allowed=staffdb.can_manage_case)
    found = next((r for r in open_requests(session, case=case) if r.id == request_id), None)
    if found is None:
        raise _Finished()
    return case, found


@router.post("/cases/{case_id}/records-requests/{request_id}/deliver")
async def deliver(request: Request, case_id: int, request_id: int, who: FormStaffDep, rt: RuntimeDep) -> Any:
    """Send the prepared export to the parent through their channel, and finish the request."""

    def work() -> Any:
        with transaction(rt.sessions) as s:
            try:
                case, _ = _load(s, case_id=case_id, request_id=request_id, who=who)
            except _Finished:
                return back(case_id, error="bad_value", anchor="#records-request")
            if case.channel == staffdb.OFFICE_CHANNEL:
                raise ForbiddenError("no channel")
            text, counts = prepared(s, case=case)
        if len(text) > MAX_CHAT:
            return back(case_id, error="too_long", anchor="#records-request")
        message_id = staff.reply_to_parent(rt.sessions, case_id=case_id, text=text, staff=who.name)
        with transaction(rt.sessions) as s:
            _, found = _load(s, case_id=case_id, request_id=request_id, who=who)
            store.finish_request(s, request=found, status=RequestStatus.DONE, counts=counts)
            staffdb.audit(
                s,
                actor=who.name,
                action="send",
                record_type=RECORD_TYPE,
                record_id=request_id,
                detail=f"受付番号 {case_id}、チャットで送付（メッセージ {message_id}）",
            )
        return back(case_id, "export_sent", anchor="#transcript")

    response = await anyio.to_thread.run_sync(work)
    inbox = getattr(request.app.state, "inbox", None)
    if inbox is not None:
        inbox.wake()
    return response


@router.post("/cases/{case_id}/records-requests/{request_id}/handed")
def handed(
    case_id: int, request_id: int, who: FormStaffDep, rt: RuntimeDep, confirm: Annotated[str, Form()] = ""
) -> Any:
    """The export was printed and handed to the parent in person (identity checked at the counter)."""
    with transaction(rt.sessions) as s:
        try:  # permission first, before the form is looked at
            case, found = _load(s, case_id=case_id, request_id=request_id, who=who)
        except _Finished:
            return back(case_id, error="bad_value", anchor="#records-request")
        if confirm != "yes":
            return back(case_id, error="bad_value", anchor="#records-request")
        _, counts = prepared(s, case=case)
        store.finish_request(s, request=found, status=RequestStatus.DONE, counts=counts)
        staffdb.audit(
            s,
            actor=who.name,
            action="export",
            record_type=RECORD_TYPE,
            record_id=request_id,
            detail=f"受付番号 {case_id}、窓口で手渡し",
        )
    return back(case_id, "export_handed", anchor="#records-request")

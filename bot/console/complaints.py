"""/complaints: 要望・苦情. Complaint cases are routed to the complaint-intake staff and visible to the
supervisor; each records its steps 受付 → 対応 → 結果報告. Staff open one here for a complaint received by
phone or at the desk; a parent's complaint in the chat arrives as a normal handoff and is re-classified."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from bot.console import labels
from bot.console.cases import MAX_FIELD, parse_date
from bot.console.core import ConsoleDep, ForbiddenError, FormStaffDep, StaffDep
from bot.console.views import case_row, message_text, staff_names
from bot.deps import RuntimeDep
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow
from storage.staff import ComplaintStepKind

router = APIRouter()


@router.get("/complaints", response_class=HTMLResponse)
def complaints_page(
    request: Request, who: StaffDep, rt: RuntimeDep, console: ConsoleDep, msg: str | None = None
) -> HTMLResponse:
    if not staffdb.sees_complaints(who.staff):
        raise ForbiddenError("complaints")
    now = utcnow()
    with transaction(rt.sessions) as s:
        names = staff_names(s)
        items = []
        for case in staffdb.cases(s, kind=staffdb.COMPLAINT):
            assert case.id is not None
            steps = staffdb.complaint_steps(s, case_id=case.id)
            done = {st.step for st in steps}
            items.append(
                {
                    "row": case_row(case, console=console, kb=rt.kb, names=names, now=now),
                    "steps": [(label, key in done) for key, label in labels.COMPLAINT_STEPS.items()],
                    "last": steps[-1] if steps else None,
                }
            )
        staffdb.audit(s, actor=who.name, action="view", record_type="complaints")
    return console.render(
        request,
        "complaints.html",
        items=items,
        flash=message_text(msg),
        can_open=staffdb.can_open_cases(who.staff),
        methods=labels.COMPLAINT_METHODS,
        today=dt.datetime.now(console.office_hours.tz).date().isoformat(),
    )


@router.post("/complaints")
def open_complaint(
    who: FormStaffDep,
    rt: RuntimeDep,
    received_on: Annotated[str, Form()] = "",
    method: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """A complaint received outside the chat: a case of kind complaint with its 受付 step."""
    if not staffdb.can_open_cases(who.staff):
        raise ForbiddenError("open case")
    day = parse_date(received_on)
    back_to = "/complaints" if staffdb.sees_complaints(who.staff) else "/cases"
    if day is None or not summary.strip():
        return RedirectResponse(f"{back_to}?msg=bad_value", status_code=303)
    method = method if method in labels.COMPLAINT_METHODS else "その他"
    with transaction(rt.sessions) as s:
        case = staffdb.open_office_case(s, kind=staffdb.COMPLAINT)
        assert case.id is not None
        step = staffdb.add_complaint_step(
            s,
            case_id=case.id,
            author=who.name,
            step=ComplaintStepKind.RECEIVED,
            step_on=day,
            summary=f"（{method}）{summary.strip()[:MAX_FIELD]}",
        )
        crud.add_alert(s, case=case, kind="new_case")
        staffdb.audit(s, actor=who.name, action="create", record_type="case", record_id=case.id, detail="complaint")
        staffdb.audit(s, actor=who.name, action="create", record_type="complaint_step", record_id=step.id)
        case_id = case.id
    if staffdb.sees_complaints(who.staff):
        return RedirectResponse(f"/cases/{case_id}?msg=complaint_opened", status_code=303)
    return RedirectResponse("/cases?msg=complaint_opened", status_code=303)

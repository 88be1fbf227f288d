"""/cases: the queue, the case page and everything staff do to a case.

Every view, edit and export of a case or its records writes an audit entry (no content). What staff do to
a case (claim, assign, reply, resolve, reopen, offer slots...) is a use case in `handlers.casework`: the
routes read the form, call it and turn its refusals into the page's messages or confirmation steps;
internal notes are another table with no path to the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session

from bot.console import canned, exports, labels
from bot.console.bounds import in_years
from bot.console.core import SECURITY_HEADERS, ConsoleDep, ForbiddenError, FormStaffDep, NotFoundError, StaffDep
from bot.console.views import (
    Check,
    QueueFilter,
    back,
    case_number,
    load_case,
    may_search_transcripts,
    message_text,
    queue_rows,
    staff_names,
    topic_label,
    transcript_context,
)
from bot.deps import RuntimeDep
from handlers import appointments, casework
from handlers.consent import status as consent_status
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import OPEN_CASE_STATUSES, Case, utcnow
from storage.staff import ComplaintStepKind, Role

router = APIRouter()
MAX_REPLY = casework.MAX_REPLY
MAX_FIELD = 10000
VIEWS = ("all", "mine", "unassigned", "closed")


def parse_date(value: str) -> dt.date | None:
    """A date field; None when it is not a date or out of the years we handle."""
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return None
    return day if in_years(day) else None


def parse_local(value: str, console: Any) -> dt.datetime | None:
    """An <input type=datetime-local> value, read in the office's time zone."""
    try:
        naive = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if not in_years(naive):
        return None
    return naive.replace(tzinfo=console.office_hours.tz) if naive.tzinfo is None else naive


def _check(rt: Any, case_id: int, who: Any, allowed: Check) -> Case:
    """Permission first, before any input is looked at (nothing is revealed to those who may not act)."""
    with rt.sessions() as s:
        return load_case(s, case_id=case_id, staff=who.staff, allowed=allowed)


def _complaint_manager(staff: staffdb.StaffAccount, case: Case) -> bool:
    return case.kind == staffdb.COMPLAINT and staffdb.can_manage_case(staff, case)


def _wake(request: Request) -> None:
    inbox = getattr(request.app.state, "inbox", None)
    if inbox is not None:
        inbox.wake()


# ----- the queue


@router.get("/", include_in_schema=False)
def home(who: StaffDep) -> RedirectResponse:
    return RedirectResponse("/cases", status_code=303)


VIEW_LABELS = {"all": "すべて", "mine": "自分の担当", "unassigned": "未担当", "closed": "終了したケース"}


@router.get("/cases", response_class=HTMLResponse)
def queue_page(
    request: Request,
    who: StaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    view: Annotated[str, Query()] = "all",
    msg: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """The queue, with its filters and search; the view, the filters and the kind of search (never the
    searched text) are audited."""
    view = view if view in VIEWS else "all"
    filters = QueueFilter.parse(request.query_params)
    with transaction(rt.sessions) as s:
        rows = queue_rows(s, staff=who.staff, view=view, console=console, kb=rt.kb, filters=filters)
        names = staff_names(s)
        staff_list = [a for a in staffdb.list_staff(s) if a.active and a.role != Role.AUDITOR]
        described = filters.describe(kb=rt.kb, names=names)
        detail = f"表示：{VIEW_LABELS[view]}" + (f"、{described}" if described else "")
        staffdb.audit(
            s,
            actor=who.name,
            action="search" if filters.q else "view",
            record_type="queue",
            detail=f"{detail}（{len(rows)}件）" if filters.active else detail,
        )
    return console.render(
        request,
        "queue.html",
        rows=rows,
        view=view,
        views=VIEW_LABELS,
        filters=filters,
        stream_filters=filters.query() if not filters.q else "",
        topics=[(k, topic_label(rt.kb, k)) for k in rt.kb.topics],
        staff=staff_list,
        can_search_text=may_search_transcripts(who.staff),
        searched_text=bool(filters.q) and case_number(filters.q) is None,
        flash=message_text(msg),
        can_open=staffdb.can_open_cases(who.staff),
        methods=labels.COMPLAINT_METHODS,
        today=dt.datetime.now(console.office_hours.tz).date().isoformat(),
    )


@router.get("/cases/queue.json")
def queue_json(request: Request, who: StaffDep, rt: RuntimeDep, console: ConsoleDep, view: str = "all") -> JSONResponse:
    """Polled by the queue page when it cannot stream: what the (audited) page view shows, filtered alike
    (the transcript search is not repeated here)."""
    view = view if view in VIEWS else "all"
    filters = replace(QueueFilter.parse(request.query_params), q="")
    with rt.sessions() as s:
        rows = queue_rows(s, staff=who.staff, view=view, console=console, kb=rt.kb, filters=filters)
    return JSONResponse({"rows": rows, "at": utcnow().isoformat()}, headers={"Cache-Control": "no-store"})


# ----- the case page


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: int,
    who: StaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    msg: str | None = None,
    error: str | None = None,
    detail: str = "",
    confirm: str | None = None,
    outcome: str = "resolved",
    review: int | None = None,
) -> HTMLResponse:
    me = who.staff
    with transaction(rt.sessions) as s:
        case = load_case(s, case_id=case_id, staff=me)
        names = staff_names(s)
        consent = consent_status(s, contact_id=case.contact_id)
        context: dict[str, Any] = {
            "case": case,
            **transcript_context(s, case=case, console=console, kb=rt.kb, names=names),
            "topic": topic_label(rt.kb, case.topic),
            "notes": staffdb.notes_for(s, case_id=case_id),
            "consultation": staffdb.consultation_record(s, case_id=case_id),
            "support": staffdb.support_entries(s, case_id=case_id),
            "conferences": staffdb.conferences(s, case_id=case_id),
            "referrals": staffdb.referrals(s, case_id=case_id),
            "steps": staffdb.complaint_steps(s, case_id=case_id),
            "slots": staffdb.slots_for_case(s, case_id=case_id),
            "consent": labels.CONSENT.get(consent, "—"),
            "names": names,
            "canned": canned.for_case(s, case=case, office_hours=console.office_hours),
            "assignable": [
                a
                for a in staffdb.list_staff(s)
                if a.active and a.role in (Role.CONCIERGE, Role.ASSISTANT, Role.SUPERVISOR)
            ],
        }
        context["booked"] = [
            labels.local(x.starts_at, console.office_hours.tz, "ja")
            for x in appointments.upcoming_bookings(s, case_id=case_id)
        ]
        staffdb.audit(s, actor=me.username, action="view", record_type="case", record_id=case_id)
        if staffdb.can_manage_case(me, case):
            context.update(exports.page_context(s, case=case, review=review, actor=me.username))
    is_open = case.status in OPEN_CASE_STATUSES
    asking = None  # the confirmation step a refused action asked for
    if is_open and staffdb.can_manage_case(me, case):
        if confirm == "taken" and case.assignee not in (None, me.username):
            asking = "taken"
        elif confirm == "booked" and context["booked"] and outcome in casework.OUTCOMES:
            asking = "booked"
    return console.render(
        request,
        "case.html",
        **context,
        is_open=is_open,
        can_reply=staffdb.can_reply(me, case) and is_open and case.channel != staffdb.OFFICE_CHANNEL,
        can_note=staffdb.can_reply(me, case),
        can_manage=staffdb.can_manage_case(me, case),
        can_export=staffdb.can_manage_case(me, case) or me.role == Role.AUDITOR,
        has_chat=case.channel != staffdb.OFFICE_CHANNEL,
        flash=message_text(msg),
        error=message_text(error, detail=detail[:80]) if error else None,
        today=dt.datetime.now(console.office_hours.tz).date().isoformat(),
        step_kinds=labels.COMPLAINT_STEPS,
        asking=asking,
        outcome=outcome if outcome in casework.OUTCOMES else "resolved",
    )


@router.get("/cases/{case_id}/deliveries.json")
def deliveries_json(case_id: int, who: StaffDep, rt: RuntimeDep) -> JSONResponse:
    """Delivery status of the staff lines (ids and states only), polled by the case page."""
    with rt.sessions() as s:
        load_case(s, case_id=case_id, staff=who.staff)
        rows = [
            {"id": m.id, "delivery": m.delivery, "label": labels.DELIVERY.get(m.delivery or "", "")}
            for m in crud.transcript(s, case_id=case_id)
            if m.direction == "out" and m.delivery
        ]
    return JSONResponse({"messages": rows}, headers={"Cache-Control": "no-store"})


@router.get("/cases/{case_id}/export")
def export_case(case_id: int, who: StaffDep, rt: RuntimeDep, console: ConsoleDep) -> Response:
    """The case's records and transcript as one text document (相談記録票), for the file or a printout."""
    me = who.staff
    tz = console.office_hours.tz

    def allowed(st: staffdb.StaffAccount, c: Any) -> bool:
        return staffdb.can_manage_case(st, c) or (st.role == Role.AUDITOR and staffdb.can_view_case(st, c))

    with transaction(rt.sessions) as s:
        case = load_case(s, case_id=case_id, staff=me, allowed=allowed)
        names = staff_names(s)
        lines = [
            f"相談記録票　受付番号 {case.id}",
            f"種別：{labels.KINDS.get(case.kind, case.kind)}　状態：{labels.STATUSES.get(case.status, case.status)}"
            f"　優先度：{labels.PRIORITIES.get(case.priority, case.priority)}",
            f"受付：{labels.local(case.created_at, tz)}　経路：{labels.CHANNELS.get(case.channel, case.channel)}"
            f"　分野：{topic_label(rt.kb, case.topic)}　担当：{case.assignee or '—'}",
            f"記録の根拠：{labels.BASES.get(case.basis, case.basis)}"
            + (f"（{case.basis_reason}）" if case.basis_reason else ""),
            "",
        ]
        rec = staffdb.consultation_record(s, case_id=case_id)
        if rec is not None:
            lines += [
                "■ 相談記録",
                f"相談日：{rec.consulted_on}",
                f"家族の状況：{rec.situation}",
                f"相談内容：{rec.request}",
                f"家族の希望：{rec.wishes}",
                f"支援の方向性：{rec.direction}",
                "",
            ]
        for e in staffdb.support_entries(s, case_id=case_id):
            lines += ["■ 支援記録", f"{e.entry_on}（{e.author}）", f"経過：{e.progress}", f"所感：{e.impression}", ""]
        for c in staffdb.conferences(s, case_id=case_id):
            lines += [
                "■ ケース会議記録",
                f"開催日：{c.held_on}　参加者：{c.participants}",
                f"家族の意向：{c.family_intent}",
                f"状態：{c.family_state}",
                f"課題：{c.issues}",
                f"目標：{c.goals}",
                f"具体的な支援：{c.support}",
                "",
            ]
        for r in staffdb.referrals(s, case_id=case_id):
            lines += ["■ つなぎ（関係機関）", f"{r.referred_on}　{r.agency}", f"合意内容：{r.agreed}", ""]
        for st in staffdb.complaint_steps(s, case_id=case_id):
            lines += [f"■ 苦情対応：{labels.COMPLAINT_STEPS.get(st.step, st.step)}", f"{st.step_on}　{st.summary}", ""]
        lines.append("■ やりとり")
        for m in crud.transcript(s, case_id=case_id):
            who_label = labels.author(m.author, names)
            basis = labels.BASES.get(m.basis, m.basis)
            lines.append(f"[{labels.local(m.created_at, tz)}] {who_label}（根拠：{basis}）: {m.text}")
        staffdb.audit(s, actor=me.username, action="export", record_type="case", record_id=case_id)
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="case-{case_id}.txt"'
    return PlainTextResponse("\n".join(lines) + "\n", headers=headers)


# ----- talking to the parent, notes, who holds it and where it stands (the use cases in handlers.casework)


def _act(
    rt: Any,
    case_id: int,
    work: Callable[[Session], Any],
    *,
    ok: str,
    anchor: str = "",
    target: str | None = None,
    confirm: str = "",
    error_anchor: str | None = None,
    tz: Any = None,
) -> RedirectResponse:
    """One staff use case in one transaction (its change and its audit row together); a refusal becomes
    the case page with its message, or with the confirmation step it asks for."""
    try:
        with transaction(rt.sessions) as s:
            work(s)
    except casework.Refused as exc:
        if exc.code == "not_found":
            raise NotFoundError() from None
        if exc.code == "forbidden":
            raise ForbiddenError("case") from None
        if exc.code in ("taken", "booked"):
            return RedirectResponse(f"/cases/{case_id}?confirm={exc.code}{confirm}#actions", status_code=303)
        if exc.code == "overlap":
            when = labels.local(dt.datetime.fromisoformat(exc.detail), tz, "ja")
            url = f"/cases/{case_id}?error=overlap&detail={quote(when)}#appointments"
            return RedirectResponse(url, status_code=303)
        detail = f"&detail={quote(exc.detail)}" if exc.code == "busy" else ""
        where = anchor if error_anchor is None else error_anchor
        return RedirectResponse(f"/cases/{case_id}?error={quote(exc.code)}{detail}{where}", status_code=303)
    if target is not None:
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}msg={ok}", status_code=303)
    return back(case_id, ok, anchor=anchor)


@router.post("/cases/{case_id}/reply")
async def reply(
    request: Request,
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    text: Annotated[str, Form()] = "",
) -> RedirectResponse:
    def work(s: Session) -> None:
        casework.reply(s, actor=who.staff, case_id=case_id, text=text, office_hours=console.office_hours)

    response = await anyio.to_thread.run_sync(
        lambda: _act(rt, case_id, work, ok="sent", anchor="#transcript", error_anchor="#reply")
    )
    _wake(request)
    return response


@router.post("/cases/{case_id}/notes")
def add_note(case_id: int, who: FormStaffDep, rt: RuntimeDep, text: Annotated[str, Form()] = "") -> RedirectResponse:
    return _act(
        rt,
        case_id,
        lambda s: casework.note(s, actor=who.staff, case_id=case_id, text=text),
        ok="noted",
        anchor="#notes",
    )


@router.post("/cases/{case_id}/messages/{message_id}/resend")
async def resend(
    request: Request, case_id: int, message_id: int, who: FormStaffDep, rt: RuntimeDep
) -> RedirectResponse:
    """Send a failed staff reply again, through the same outbound queue as any reply."""

    def work(s: Session) -> None:
        casework.resend(s, actor=who.staff, case_id=case_id, message_id=message_id)

    response = await anyio.to_thread.run_sync(lambda: _act(rt, case_id, work, ok="resent", anchor="#transcript"))
    _wake(request)
    return response


def _next(value: str | None, case_id: int) -> str:
    return value if value in ("/cases", "/cases?view=mine", "/cases?view=unassigned") else f"/cases/{case_id}"


@router.post("/cases/{case_id}/claim")
def claim(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    next: Annotated[str | None, Form()] = None,
    take_over: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Claim the case; a colleague's case is taken over only after the confirmation step."""

    def work(s: Session) -> None:
        casework.claim(s, actor=who.staff, case_id=case_id, take_over=take_over == "1")

    return _act(rt, case_id, work, ok="claimed", target=_next(next, case_id))


@router.post("/cases/{case_id}/assign")
def assign(case_id: int, who: FormStaffDep, rt: RuntimeDep, assignee: Annotated[str, Form()] = "") -> RedirectResponse:
    def work(s: Session) -> None:
        casework.assign(s, actor=who.staff, case_id=case_id, assignee=assignee)

    return _act(rt, case_id, work, ok="assigned")


@router.post("/cases/{case_id}/release")
def release(case_id: int, who: FormStaffDep, rt: RuntimeDep) -> RedirectResponse:
    return _act(rt, case_id, lambda s: casework.release(s, actor=who.staff, case_id=case_id), ok="released")


@router.post("/cases/{case_id}/status")
def set_status(
    case_id: int, who: FormStaffDep, rt: RuntimeDep, status: Annotated[str, Form()] = ""
) -> RedirectResponse:
    def work(s: Session) -> None:
        casework.set_status(s, actor=who.staff, case_id=case_id, status=status)

    return _act(rt, case_id, work, ok="status")


@router.post("/cases/{case_id}/resolve")
async def resolve(
    request: Request,
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    outcome: Annotated[str, Form()] = "resolved",
    confirm_booked: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """End the case; with a booked appointment still to come, only after the confirmation step."""

    def work(s: Session) -> None:
        casework.resolve(s, actor=who.staff, case_id=case_id, outcome=outcome, confirm_booked=confirm_booked == "1")

    extra = f"&outcome={quote(outcome)}"
    response = await anyio.to_thread.run_sync(lambda: _act(rt, case_id, work, ok="resolved", confirm=extra))
    _wake(request)
    return response


@router.post("/cases/{case_id}/reopen")
def reopen(case_id: int, who: FormStaffDep, rt: RuntimeDep) -> RedirectResponse:
    """A resolved case comes back to the queue."""
    return _act(rt, case_id, lambda s: casework.reopen(s, actor=who.staff, case_id=case_id), ok="reopened")


@router.post("/cases/{case_id}/kind")
def reclassify(case_id: int, who: FormStaffDep, rt: RuntimeDep, kind: Annotated[str, Form()] = "") -> RedirectResponse:
    _check(rt, case_id, who, staffdb.can_manage_case)
    if kind not in (staffdb.CONSULTATION, staffdb.COMPLAINT):
        return back(case_id, error="bad_value")
    with transaction(rt.sessions) as s:
        case = load_case(s, case_id=case_id, staff=who.staff, allowed=staffdb.can_manage_case)
        before = case.kind
        staffdb.set_case_kind(s, case=case, kind=kind)
        if kind == staffdb.COMPLAINT and before != kind and not who.staff.complaint_intake:
            staffdb.set_assignee(s, case=case, assignee=None)  # routed to complaint intake
        staffdb.audit(
            s, actor=who.name, action="reclassify", record_type="case", record_id=case_id, detail=f"{before}->{kind}"
        )
        still_visible = staffdb.can_view_case(who.staff, case)
    if not still_visible:
        return RedirectResponse("/cases?msg=reclassified", status_code=303)
    return back(case_id, "saved")


# ----- the guideline's records


def _text(value: str) -> str:
    return value.strip()[:MAX_FIELD]


@router.post("/cases/{case_id}/records/consultation")
def save_consultation(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    consulted_on: Annotated[str, Form()] = "",
    situation: Annotated[str, Form()] = "",
    request_text: Annotated[str, Form(alias="request")] = "",
    wishes: Annotated[str, Form()] = "",
    direction: Annotated[str, Form()] = "",
) -> RedirectResponse:
    _check(rt, case_id, who, staffdb.can_manage_case)
    day = parse_date(consulted_on)
    if day is None:
        return back(case_id, error="bad_date", anchor="#consultation")
    with transaction(rt.sessions) as s:
        load_case(s, case_id=case_id, staff=who.staff, allowed=staffdb.can_manage_case)
        existed = staffdb.consultation_record(s, case_id=case_id) is not None
        rec = staffdb.save_consultation_record(
            s,
            case_id=case_id,
            author=who.name,
            consulted_on=day,
            situation=_text(situation),
            request=_text(request_text),
            wishes=_text(wishes),
            direction=_text(direction),
        )
        staffdb.audit(
            s,
            actor=who.name,
            action="edit" if existed else "create",
            record_type="consultation_record",
            record_id=rec.id,
            detail=f"case {case_id}",
        )
    return back(case_id, "saved", anchor="#consultation")


def _add_entry(
    rt: Any,
    who: Any,
    case_id: int,
    *,
    anchor: str,
    day_text: str,
    valid: bool,
    record_type: str,
    create: Callable[[Session, dt.date], Any],
    allowed: Check = staffdb.can_manage_case,
    invalid: str = "empty",
) -> RedirectResponse:
    """One entry of the case's records from a form: permission first, then the date and the required fields,
    then the row and its audit line in one transaction."""
    _check(rt, case_id, who, allowed)
    day = parse_date(day_text)
    if day is None:
        return back(case_id, error="bad_date", anchor=anchor)
    if not valid:
        return back(case_id, error=invalid, anchor=anchor)
    with transaction(rt.sessions) as s:
        load_case(s, case_id=case_id, staff=who.staff, allowed=allowed)
        row = create(s, day)
        staffdb.audit(
            s, actor=who.name, action="create", record_type=record_type, record_id=row.id, detail=f"case {case_id}"
        )
    return back(case_id, "saved", anchor=anchor)


@router.post("/cases/{case_id}/records/support")
def add_support(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    entry_on: Annotated[str, Form()] = "",
    progress: Annotated[str, Form()] = "",
    impression: Annotated[str, Form()] = "",
) -> RedirectResponse:
    return _add_entry(
        rt,
        who,
        case_id,
        anchor="#support",
        day_text=entry_on,
        valid=bool(progress.strip()),
        record_type="support_entry",
        create=lambda s, day: staffdb.add_support_entry(
            s, case_id=case_id, author=who.name, entry_on=day, progress=_text(progress), impression=_text(impression)
        ),
    )


@router.post("/cases/{case_id}/records/conference")
def add_conference(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    held_on: Annotated[str, Form()] = "",
    participants: Annotated[str, Form()] = "",
    family_intent: Annotated[str, Form()] = "",
    family_state: Annotated[str, Form()] = "",
    issues: Annotated[str, Form()] = "",
    goals: Annotated[str, Form()] = "",
    support: Annotated[str, Form()] = "",
) -> RedirectResponse:
    return _add_entry(
        rt,
        who,
        case_id,
        anchor="#conference",
        day_text=held_on,
        valid=bool(participants.strip()),
        record_type="conference",
        create=lambda s, day: staffdb.add_conference(
            s,
            case_id=case_id,
            author=who.name,
            held_on=day,
            participants=_text(participants),
            family_intent=_text(family_intent),
            family_state=_text(family_state),
            issues=_text(issues),
            goals=_text(goals),
            support=_text(support),
        ),
    )


@router.post("/cases/{case_id}/referrals")
def add_referral(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    agency: Annotated[str, Form()] = "",
    referred_on: Annotated[str, Form()] = "",
    agreed: Annotated[str, Form()] = "",
) -> RedirectResponse:
    return _add_entry(
        rt,
        who,
        case_id,
        anchor="#referrals",
        day_text=referred_on,
        valid=bool(agency.strip()),
        record_type="referral",
        create=lambda s, day: staffdb.add_referral(
            s, case_id=case_id, author=who.name, agency=agency.strip()[:128], referred_on=day, agreed=_text(agreed)
        ),
    )


@router.post("/cases/{case_id}/complaint-steps")
def add_complaint_step(
    case_id: int,
    who: FormStaffDep,
    rt: RuntimeDep,
    step: Annotated[str, Form()] = "",
    step_on: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
) -> RedirectResponse:
    return _add_entry(
        rt,
        who,
        case_id,
        anchor="#complaint",
        day_text=step_on,
        valid=step in tuple(ComplaintStepKind) and bool(summary.strip()),
        record_type="complaint_step",
        allowed=_complaint_manager,
        invalid="bad_value",
        create=lambda s, day: staffdb.add_complaint_step(
            s, case_id=case_id, author=who.name, step=ComplaintStepKind(step), step_on=day, summary=_text(summary)
        ),
    )


# ----- appointments (原則予約制)


@router.post("/cases/{case_id}/appointments")
async def offer(request: Request, case_id: int, who: FormStaffDep, rt: RuntimeDep, console: ConsoleDep) -> Response:
    await anyio.to_thread.run_sync(_check, rt, case_id, who, staffdb.can_manage_case)
    form = await request.form()
    starts: list[dt.datetime] = []
    for i in range(1, appointments.MAX_SLOTS + 1):
        raw = form.get(f"slot{i}")
        if isinstance(raw, str) and raw.strip():
            when = parse_local(raw, console)
            if when is None:
                return back(case_id, error="bad_date", anchor="#appointments")
            starts.append(when)
    minutes_raw = form.get("minutes")
    place_raw = form.get("place")
    minutes = (
        int(minutes_raw) if isinstance(minutes_raw, str) and minutes_raw.isdigit() and len(minutes_raw) < 4 else 30
    )
    place = place_raw.strip()[:128] if isinstance(place_raw, str) else ""

    def work(s: Session) -> None:
        casework.offer(
            s,
            actor=who.staff,
            case_id=case_id,
            starts=starts,
            minutes=minutes,
            place=place,
            tz=console.office_hours.timezone,
        )

    response = await anyio.to_thread.run_sync(
        lambda: _act(rt, case_id, work, ok="offered", anchor="#appointments", tz=console.office_hours.tz)
    )
    _wake(request)
    return response


@router.post("/cases/{case_id}/appointments/{slot_id}/cancel")
def cancel_slot(case_id: int, slot_id: int, who: FormStaffDep, rt: RuntimeDep) -> RedirectResponse:
    def work(s: Session) -> None:
        casework.cancel_slot(s, actor=who.staff, case_id=case_id, slot_id=slot_id)

    return _act(rt, case_id, work, ok="cancelled", anchor="#appointments")

"""/records: which cases have which of the guideline's records, a monthly report for the supervisor
(counts only), and the supervisor's CSV export of the 相談記録 (audited like every export)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from bot.console import labels
from bot.console.core import SECURITY_HEADERS, Authed, ConsoleDep, ForbiddenError, StaffDep, require
from bot.console.views import staff_names, topic_label
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.db import transaction
from storage.staff import Role

router = APIRouter()


def _month(value: str | None, tz: dt.tzinfo) -> dt.date:
    try:
        if value:
            return dt.date.fromisoformat(value + "-01")
    except ValueError:
        pass
    return dt.datetime.now(tz).date().replace(day=1)


def _bounds(first: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(first, dt.time(), tzinfo=tz), dt.datetime.combine(nxt, dt.time(), tzinfo=tz)


@router.get("/records", response_class=HTMLResponse)
def records_page(
    request: Request,
    who: StaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    month: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    if who.staff.role == Role.ASSISTANT:
        raise ForbiddenError("records")
    tz = console.office_hours.tz
    first = _month(month, tz)
    start, end = _bounds(first, tz)
    with transaction(rt.sessions) as s:
        in_month = staffdb.cases_created_between(s, start=start, end=end, newest_first=True)
        visible = [c for c in in_month if staffdb.can_view_case(who.staff, c)]
        ids = [c.id for c in visible if c.id is not None]
        counts = staffdb.record_counts(s, case_ids=ids)
        report = None
        if who.staff.role in (Role.SUPERVISOR, Role.AUDITOR):
            agencies = Counter(r.agency for cid in ids for r in staffdb.referrals(s, case_id=cid))
            booked = staffdb.slots_between(s, start=start, end=end)
            report = {
                "cases": len(visible),
                "urgent": sum(1 for c in visible if c.priority == "urgent"),
                "complaints": sum(1 for c in visible if c.kind == staffdb.COMPLAINT),
                "by_status": Counter(labels.STATUSES.get(c.status, c.status) for c in visible).most_common(),
                "by_channel": Counter(labels.CHANNELS.get(c.channel, c.channel) for c in visible).most_common(),
                "by_topic": Counter(topic_label(rt.kb, c.topic) for c in visible).most_common(10),
                "agencies": agencies.most_common(),
                "appointments": len(booked),
            }
        names = staff_names(s)
        staffdb.audit(s, actor=who.name, action="view", record_type="records", detail=f"month {first:%Y-%m}")
    prev = (first - dt.timedelta(days=1)).replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return console.render(
        request,
        "records.html",
        cases=visible,
        counts=counts,
        report=report,
        names=names,
        month=first,
        prev=f"{prev:%Y-%m}",
        next=f"{nxt:%Y-%m}",
        topics={c.id: topic_label(rt.kb, c.topic) for c in visible},
        can_export=who.staff.role == Role.SUPERVISOR,
    )


def _cell(value: object) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: such text is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/records/export.csv")
def export_records(
    who: Annotated[Authed, Depends(require(Role.SUPERVISOR))],
    rt: RuntimeDep,
    console: ConsoleDep,
    month: Annotated[str | None, Query()] = None,
) -> Response:
    """相談記録 of the month's cases as CSV (UTF-8 with BOM, for Excel)."""
    tz = console.office_hours.tz
    first = _month(month, tz)
    start, end = _bounds(first, tz)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "受付番号",
            "種別",
            "受付日時",
            "経路",
            "分野",
            "状態",
            "担当",
            "相談日",
            "家族の状況",
            "相談内容",
            "家族の希望",
            "支援の方向性",
            "つなぎ先",
        ]
    )
    with transaction(rt.sessions) as s:
        rows = staffdb.consultation_records_between(s, start=start, end=end)
        for row in rows:
            case, rec = row.case, row.record
            agencies = "、".join(r.agency for r in staffdb.referrals(s, case_id=case.id))
            writer.writerow(
                [
                    _cell(v)
                    for v in [
                        case.id,
                        labels.KINDS.get(case.kind, case.kind),
                        labels.local(case.created_at, tz),
                        labels.CHANNELS.get(case.channel, case.channel),
                        topic_label(rt.kb, case.topic),
                        labels.STATUSES.get(case.status, case.status),
                        case.assignee or "",
                        rec.consulted_on.isoformat() if rec else "",
                        rec.situation if rec else "",
                        rec.request if rec else "",
                        rec.wishes if rec else "",
                        rec.direction if rec else "",
                        agencies,
                    ]
                ]
            )
        staffdb.audit(
            s,
            actor=who.name,
            action="export",
            record_type="consultation_record",
            detail=f"month {first:%Y-%m}, {len(rows)} case(s)",
        )
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="records-{first:%Y-%m}.csv"'
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers)

"""/appointments: the week's appointments as a simple calendar (booked slots, and slots still on offer)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from bot.console import labels
from bot.console.core import ConsoleDep, StaffDep
from bot.deps import RuntimeDep
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.staff import SlotStatus

router = APIRouter()


@router.get("/appointments", response_class=HTMLResponse)
def calendar(
    request: Request,
    who: StaffDep,
    rt: RuntimeDep,
    console: ConsoleDep,
    week: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    hours = console.office_hours
    tz = hours.tz
    today = dt.datetime.now(tz).date()
    try:
        day = dt.date.fromisoformat(week) if week else today
    except ValueError:
        day = today
    monday = day - dt.timedelta(days=day.weekday())
    start = dt.datetime.combine(monday, dt.time(), tzinfo=tz)
    end = start + dt.timedelta(days=7)
    days: list[dict[str, Any]] = [
        {
            "date": monday + dt.timedelta(days=i),
            "label": labels.local(monday + dt.timedelta(days=i), tz, "ja"),
            "items": [],
        }
        for i in range(7)
    ]
    with transaction(rt.sessions) as s:
        slots = staffdb.slots_between(s, start=start, end=end, statuses=(SlotStatus.BOOKED, SlotStatus.OFFERED))
        for slot in slots:
            case = crud.get_case(s, case_id=slot.case_id)
            visible = case is not None and staffdb.can_view_case(who.staff, case)
            if slot.status == SlotStatus.OFFERED and not visible:
                continue
            local = slot.starts_at.astimezone(tz)
            days[(local.date() - monday).days]["items"].append(
                {
                    "time": f"{local:%H:%M}–{(local + dt.timedelta(minutes=slot.minutes)):%H:%M}",
                    "status": slot.status,
                    "status_label": labels.SLOTS.get(slot.status, slot.status),
                    "case_id": slot.case_id if visible else None,  # others' bookings show as busy only
                    "place": slot.place if visible else "",
                    "by": slot.offered_by if visible else "",
                }
            )
        staffdb.audit(s, actor=who.name, action="view", record_type="calendar", detail=f"week {monday}")
    return console.render(
        request,
        "appointments.html",
        days=days,
        today=today,
        monday=monday,
        prev=(monday - dt.timedelta(days=7)).isoformat(),
        next=(monday + dt.timedelta(days=7)).isoformat(),
        hours=f"{hours.opens:%H:%M}〜{hours.closes:%H:%M}",
    )

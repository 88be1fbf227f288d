"""/audit: the audit log, read-only (auditor and supervisor). There is no route that changes it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from bot.console.core import Authed, ConsoleDep, require
from bot.console.views import staff_names
from bot.deps import RuntimeDep
from storage import staff as staffdb
from storage.db import transaction
from storage.staff import Role

router = APIRouter()
PAGE = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    who: Annotated[Authed, Depends(require(Role.AUDITOR, Role.SUPERVISOR))],
    rt: RuntimeDep,
    console: ConsoleDep,
    actor: Annotated[str | None, Query()] = None,
    record_type: Annotated[str | None, Query()] = None,
    record_id: Annotated[str | None, Query()] = None,
    before: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    with transaction(rt.sessions) as s:
        entries = staffdb.audit_entries(
            s,
            actor=actor or None,
            record_type=record_type or None,
            record_id=record_id or None,
            limit=PAGE,
            before_id=before,
        )
        filters = "、".join(f"{k}={v}" for k, v in (("職員", actor), ("種類", record_type), ("番号", record_id)) if v)
        staffdb.audit(s, actor=who.name, action="view", record_type="audit", detail=filters or None)
        names = staff_names(s)
    older = entries[-1].id if len(entries) == PAGE else None
    return console.render(
        request,
        "audit.html",
        entries=entries,
        actor=actor or "",
        record_type=record_type or "",
        record_id=record_id or "",
        older=older,
        names=names,
    )

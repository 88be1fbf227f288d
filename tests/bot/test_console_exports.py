"""A parent's records-export request handled on the case page, on both databases: prepared and reviewed
(audited), then sent through the parent's channel as a tracked reply or marked handed over in person; the
request is finished either way, and staff who may not manage the case cannot do either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from handlers.lifecycle import request_export
from storage import crud
from storage import lifecycle as store
from storage.db import transaction
from storage.lifecycle import RequestKind
from storage.models import Case, Message
from storage.staff import AuditEntry
from tests.e2e.kit import parent_opens_case, session_for, staffed_console


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, ("sato", "concierge"), ("kansa", "auditor")) as a:
        yield a


def requested(app: FastAPI, sender: str) -> tuple[int, int]:
    rt = app.state.runtime
    case_id = parent_opens_case(rt.engine, sender, "保育園の申し込みについて相談したいです")
    with transaction(rt.sessions) as s:
        case = s.get(Case, case_id)
        assert case is not None
        contact = crud.get_contact(s, contact_id=case.contact_id)
        assert contact is not None
        request_id, on_case = request_export(s, contact=contact)
    assert on_case == case_id
    return case_id, request_id


def status(app: FastAPI, request_id: int) -> str:
    with app.state.runtime.sessions() as s:
        found = [r for r in store.requests(s, kind=RequestKind.EXPORT) if r.id == request_id]
        return found[0].status


def audit_of(app: FastAPI, request_id: int) -> list[tuple[str, str, str | None]]:
    with app.state.runtime.sessions() as s:
        rows = s.exec(
            select(AuditEntry).where(
                AuditEntry.record_type == "records_request", AuditEntry.record_id == str(request_id)
            )
        )
        return sorted(((e.actor, e.action, e.detail) for e in rows), key=lambda t: t[1])


async def test_prepare_review_and_send_through_the_parents_channel(app: FastAPI) -> None:
    case_id, request_id = requested(app, "p-export")
    me = await session_for(app, "sato")
    async with me:
        page = await me.client.get(f"/cases/{case_id}")
        assert "記録開示の依頼" in page.text and "開示する記録を準備して確認する" in page.text
        assert "記録の開示（このアカウントについて保存している記録）" not in page.text  # not built until asked
        review = await me.client.get(f"/cases/{case_id}", params={"review": request_id})
        assert "記録の開示（このアカウントについて保存している記録）" in review.text
        assert "保育園の申し込みについて相談したいです" in review.text
        r = await me.post(f"/cases/{case_id}/records-requests/{request_id}/deliver")
        assert r.status_code == 303 and "msg=export_sent" in r.headers["location"]
        again = await me.post(f"/cases/{case_id}/records-requests/{request_id}/deliver")
        assert "error=bad_value" in again.headers["location"]  # finished: nothing to send twice
    assert status(app, request_id) == "done"
    with app.state.runtime.sessions() as s:
        sent = s.exec(select(Message).where(Message.case_id == case_id, Message.author == "staff:sato")).one()
        assert sent.text.startswith("記録の開示") and sent.delivery in ("pending", "sent")
    trail = audit_of(app, request_id)
    assert [a for _, a, _ in trail] == ["export", "send"]
    assert all("保育園" not in (d or "") for _, _, d in trail)


async def test_handed_over_in_person_and_the_auditor_cannot(app: FastAPI) -> None:
    case_id, request_id = requested(app, "p-counter")
    auditor = await session_for(app, "kansa")
    async with auditor:
        page = await auditor.client.get(f"/cases/{case_id}")
        assert "開示する記録を準備して確認する" not in page.text
        r = await auditor.post(f"/cases/{case_id}/records-requests/{request_id}/handed", {"confirm": "yes"})
        assert r.status_code == 403
    me = await session_for(app, "sato")
    async with me:
        r = await me.post(f"/cases/{case_id}/records-requests/{request_id}/handed")
        assert "error=bad_value" in r.headers["location"] and status(app, request_id) == "requested"
        r = await me.post(f"/cases/{case_id}/records-requests/{request_id}/handed", {"confirm": "yes"})
        assert "msg=export_handed" in r.headers["location"]
        assert (
            "記録開示の依頼"
            not in (await me.client.get(f"/cases/{case_id}")).text.split("<main>", 1)[1].split('class="columns"', 1)[0]
        )
    assert status(app, request_id) == "done"
    assert audit_of(app, request_id) == [("sato", "export", f"受付番号 {case_id}、窓口で手渡し")]

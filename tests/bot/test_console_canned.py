"""定型文 on both databases: supervisors keep them (others are refused), every change is audited without the
text, and the case page offers them filled in for the case (受付番号, the office hours)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from storage import canned as canned_db
from storage.staff import AuditEntry
from tests.e2e.kit import parent_opens_case, session_for, staffed_console


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, ("sato", "concierge"), ("boss", "supervisor"), ("kansa", "auditor")) as a:
        yield a


async def test_supervisors_keep_canned_replies_and_the_case_page_fills_them(app: FastAPI) -> None:
    rt = app.state.runtime
    body = "受付番号 {受付番号} で承りました。受付時間は {受付時間} です。"
    boss = await session_for(app, "boss")
    async with boss:
        r = await boss.post("/canned", {"title": "受付のお礼", "body": body})
        assert r.status_code == 303 and r.headers["location"] == "/canned?msg=saved"
        assert (await boss.post("/canned", {"title": "", "body": "x"})).headers["location"].endswith("bad_value")
        page = await boss.client.get("/canned")
        assert "受付のお礼" in page.text and "追加する" in page.text
    with rt.sessions() as s:
        rows = canned_db.list_canned(s)
        assert [c.title for c in rows] == ["受付のお礼"]
        canned_id = rows[0].id
        entries = sorted(s.exec(select(AuditEntry).where(AuditEntry.record_type == "canned")), key=lambda e: e.id or 0)
        assert [(e.actor, e.action) for e in entries] == [("boss", "create"), ("boss", "view")]
        assert all("承りました" not in (e.detail or "") for e in entries)

    case_id = parent_opens_case(rt.engine, "p-canned")
    me = await session_for(app, "sato")
    async with me:
        r = await me.post("/canned", {"title": "勝手に", "body": "x"})
        assert r.status_code == 403
        r = await me.post(f"/canned/{canned_id}", {"title": "変更", "body": "x", "active": "1"})
        assert r.status_code == 403
        page = await me.client.get(f"/cases/{case_id}")
        hours = rt.settings.office_hours.config() if hasattr(rt, "settings") else None
        assert f"受付番号 {case_id} で承りました。受付時間は " in page.text
        assert "{受付番号}" not in page.text and "{受付時間}" not in page.text
        assert hours is None or f"{hours.opens:%H:%M}〜{hours.closes:%H:%M}" in page.text
        listing = await me.client.get("/canned")
        assert listing.status_code == 200 and "追加する" not in listing.text  # read-only for concierges
    auditor = await session_for(app, "kansa")
    async with auditor:
        assert (await auditor.client.get("/canned")).status_code == 403

    async with await session_for(app, "boss") as boss:
        r = await boss.post(f"/canned/{canned_id}", {"title": "受付のお礼", "body": body})  # unticked: stopped
        assert r.status_code == 303
    with rt.sessions() as s:
        assert canned_db.list_canned(s) == []
        assert len(canned_db.list_canned(s, include_inactive=True)) == 1

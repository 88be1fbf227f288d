"""The queue at a glance, on both databases: the parent's latest message (only under consent), the new-message
marker, the topic from the first real question (not from 「相談員と話したい」), the crisis in Japanese, badges
for a records request, a withdrawn consent and a booked appointment; filters and search, both audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from handlers.lifecycle import request_export
from handlers.types import InboundMessage
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case, utcnow
from storage.staff import AuditEntry
from tests.e2e.kit import parent_opens_case, session_for, staffed_console


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("sato", "concierge"), ("yamada", "assistant"), ("boss", "supervisor"))
    async with staffed_console(settings, *accounts, names={"sato": "佐藤", "yamada": "山田"}) as a:
        yield a


def row_for(rows: list[dict[str, object]], case_id: int) -> dict[str, object]:
    return next(r for r in rows if r["id"] == case_id)


def last_audit(app: FastAPI) -> AuditEntry:
    with app.state.runtime.sessions() as s:
        found = s.exec(select(AuditEntry).order_by(AuditEntry.id.desc())).first()  # type: ignore[union-attr]
        assert found is not None
        return found


async def test_the_queue_shows_what_each_case_is_about(app: FastAPI) -> None:
    rt = app.state.runtime
    long_text = "保育園の入園申し込みの書類はどこでもらえますか。" * 3
    nursery = parent_opens_case(rt.engine, "p-nursery", long_text)
    crisis_parent = "p-dv"
    rt.engine.handle(InboundMessage("console", crisis_parent, text="夫から暴力を受けていて家にいるのが怖いです"))
    with transaction(rt.sessions) as s:
        case = s.get(Case, nursery)
        assert case is not None
        # the handoff phrase 「相談員と話したい」 did not name the topic; the first real question did
        assert case.topic is not None and case.topic != "about"
        urgent = next(c for c in crud.queue(s) if c.priority == "urgent")
        contact = crud.get_contact(s, contact_id=case.contact_id)
        assert contact is not None
        request_export(s, contact=contact)
        slot = staffdb.offer_slots(
            s, case_id=nursery, starts=[utcnow() + dt.timedelta(days=2)], minutes=30, place="", offered_by="sato"
        )[0]
        staffdb.book_slot(s, slot=slot, now=utcnow())
    me = await session_for(app, "sato")
    async with me:
        rows = (await me.client.get("/cases/queue.json")).json()["rows"]
        row = row_for(rows, nursery)
        assert row["preview"] == long_text[:40] + "…"
        assert row["new_message"] and row["export_request"] and row["booked"] and not row["withdrawn"]
        assert row["topic"] not in ("—", "子育て支援コンシェルジュとは")
        top = row_for(rows, urgent.id or 0)
        assert top["crisis"] == "配偶者等からの暴力（DV）" and top["preview"] is None and top["preview_hidden"]

        page = await me.client.get("/cases")
        for text in ("記録開示の依頼", "予約あり", "新着", "配偶者等からの暴力（DV）", long_text[:40]):
            assert text in page.text
        assert "（dv）" not in page.text and ">dv<" not in page.text and "life_safety" not in page.text

        # opened: no longer new; the parent writes again: new again, then withdraws consent
        await me.client.get(f"/cases/{nursery}")
        assert not row_for((await me.client.get("/cases/queue.json")).json()["rows"], nursery)["new_message"]
        rt.engine.handle(InboundMessage("console", "p-nursery", text="同意を取り消したいです"))
        row = row_for((await me.client.get("/cases/queue.json")).json()["rows"], nursery)
        assert row["withdrawn"] and row["preview"] is None and row["preview_hidden"]
        assert "同意取り消し" in (await me.client.get("/cases")).text


async def test_filters_and_search_are_audited_and_search_text_needs_the_role(app: FastAPI) -> None:
    rt = app.state.runtime
    first = parent_opens_case(rt.engine, "p-a", "夜泣きがひどくて眠れません")
    second = parent_opens_case(rt.engine, "p-b", "保育園の申し込みについて知りたいです")
    with transaction(rt.sessions) as s:
        case = s.get(Case, second)
        assert case is not None
        staffdb.set_assignee(s, case=case, assignee="yamada")
    me = await session_for(app, "sato")
    async with me:
        page = await me.client.get("/cases", params={"assignee": "yamada"})
        assert f'data-case-id="{second}"' in page.text and f'data-case-id="{first}"' not in page.text
        entry = last_audit(app)
        assert (entry.action, entry.record_type) == ("view", "queue")
        assert entry.detail == "表示：すべて、担当=山田（1件）"

        page = await me.client.get("/cases", params={"q": "夜泣き"})
        assert f'data-case-id="{first}"' in page.text and f'data-case-id="{second}"' not in page.text
        entry = last_audit(app)
        assert entry.action == "search" and entry.detail == "表示：すべて、やりとりを検索（1件）"
        assert "夜泣き" not in (entry.detail or "")  # never the searched text

        page = await me.client.get("/cases", params={"q": f"#{second}"})
        assert f'data-case-id="{second}"' in page.text and f'data-case-id="{first}"' not in page.text
        assert last_audit(app).detail == "表示：すべて、受付番号で検索（1件）"

        rows = (await me.client.get("/cases/queue.json", params={"status": "new", "channel": "line"})).json()["rows"]
        assert rows == []  # console parents only

    helper = await session_for(app, "yamada")  # an assistant sees their own case, but cannot search text
    async with helper:
        page = await helper.client.get("/cases", params={"q": "保育園"})
        assert f'data-case-id="{second}"' not in page.text
        assert "やりとりの検索は、あなたの役割では使えません" in page.text
        page = await helper.client.get("/cases", params={"q": str(second)})
        assert f'data-case-id="{second}"' in page.text

"""/kb: the knowledge base for staff, against the real app: entries by topic with a search, the reminder of
sources not confirmed for a year, 「試してみる」 (what the bot answers now, stored nowhere) and the open-data CSV
(audited). Every role reads; assistants do not export; nobody unauthenticated sees it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlmodel import SQLModel, select

from bot.console.kb import MAX_SOURCE_AGE_DAYS
from bot.settings import Settings
from knowledge.exchange import export_csv
from storage import staff as staffdb
from tests.e2e.kit import client, session_for, staffed_console


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("boss", "supervisor"), ("kansa", "auditor"), ("sato", "concierge"), ("yamada", "assistant"))
    async with staffed_console(settings, *accounts) as a:
        yield a


async def test_every_role_reads_the_entries_by_topic_and_searches(app: FastAPI) -> None:
    kb = app.state.runtime.kb
    for who in ("boss", "kansa", "sato", "yamada"):
        login = await session_for(app, who)
        async with login:
            page = await login.client.get("/kb")
            assert page.status_code == 200, who
            assert f"知識ベース <small>{len(kb.entries)}件</small>" in page.text
    sato = await session_for(app, "sato")
    async with sato:
        found = await sato.client.get("/kb", params={"q": "病児保育"})
        rows = found.text.count('<a href="/kb/') - found.text.count('<a href="/kb/try')
        assert 0 < rows < len(kb.entries)
        entry = next(iter(kb.entries.values()))
        by_topic = await sato.client.get("/kb", params={"topic": entry.topic})
        assert f'href="/kb/{entry.id}"' in by_topic.text
        detail = await sato.client.get(f"/kb/{entry.id}")
        assert detail.status_code == 200
        assert all(q in detail.text for q in entry.questions["ja"][:3])
        assert (await sato.client.get("/kb/no-such-entry")).status_code == 404


async def test_stale_sources_are_listed_for_rechecking(app: FastAPI) -> None:
    kb = app.state.runtime.kb
    today = dt.date.today()
    stale = {e.id for e in kb.entries.values() if (today - e.source.checked).days > MAX_SOURCE_AGE_DAYS + 1}
    fresh = {e.id for e in kb.entries.values() if (today - e.source.checked).days < MAX_SOURCE_AGE_DAYS - 1}
    boss = await session_for(app, "boss")
    async with boss:
        page = await boss.client.get("/kb", params={"stale": "true"})
    assert all(f'href="/kb/{i}"' in page.text for i in stale)
    assert not any(f'href="/kb/{i}"' in page.text for i in fresh)
    if stale:
        assert "日を過ぎた項目が" in page.text


async def test_trying_a_question_shows_the_bots_answer_and_stores_nothing(app: FastAPI) -> None:
    rt = app.state.runtime
    question = "児童手当はいつ振り込まれますか"
    decision = rt.engine.classify(question)
    with rt.sessions() as s:
        before = {t.name: len(s.exec(select(t)).all()) for t in SQLModel.metadata.sorted_tables}  # type: ignore[call-overload]
    sato = await session_for(app, "sato")
    async with sato:
        page = await sato.client.get("/kb/try", params={"q": question})
        assert page.status_code == 200
        assert "回答する" in page.text and f'href="/kb/{decision.entry_id}"' in page.text
        assert "保護者に届く返信（LINE）" in page.text
        urgent = await sato.client.get("/kb/try", params={"q": "もう死にたい"})
        assert "緊急（緊急連絡先を示し、職員に通知）" in urgent.text
    with rt.sessions() as s:
        after = {t.name: len(s.exec(select(t)).all()) for t in SQLModel.metadata.sorted_tables}  # type: ignore[call-overload]
    # only bookkeeping may change (the staff session, the inbox worker's heartbeat); no case, message,
    # counter or event
    ignore = {"staffsession", "workerheartbeat"}
    assert {k: v for k, v in after.items() if k not in ignore} == {k: v for k, v in before.items() if k not in ignore}


async def test_the_open_data_csv_is_downloaded_and_audited(app: FastAPI) -> None:
    rt = app.state.runtime
    kansa = await session_for(app, "kansa")
    async with kansa:
        r = await kansa.client.get("/kb/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="faq-opendata.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf") and r.content.decode("utf-8") == export_csv(rt.kb)
    with rt.sessions() as s:
        done = {(e.actor, e.action, e.record_type) for e in staffdb.audit_entries(s, limit=50)}
    assert ("kansa", "export", "kb") in done
    yamada = await session_for(app, "yamada")
    async with yamada:
        assert (await yamada.client.get("/kb/export.csv")).status_code == 403
        assert "オープンデータCSV" not in (await yamada.client.get("/kb")).text


async def test_nobody_unauthenticated_sees_the_kb_pages(app: FastAPI) -> None:
    async with client(app) as anon:
        for path in ("/kb", "/kb/try?q=x", "/kb/export.csv"):
            r = await anon.get(path)
            assert r.status_code in (303, 401), path

"""/reports: the monthly statistics page and its CSV, against the real app on SQLite and PostgreSQL.

The supervisor and the auditor read it, concierges and assistants do not; the 5-per-day measure is on the
page; the CSV is byte for byte what `concierge report --csv` writes; views and downloads are audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.reports import month_report, to_csv
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from tests.e2e.kit import session_for, staffed_console

JST = dt.timezone(dt.timedelta(hours=9))


def seed_counters(rt: Runtime) -> None:
    """October 2026: 6 answers a day, one after-hours handoff by email; two days of September."""
    with transaction(rt.sessions) as db:
        for day in range(1, 32):
            at = dt.datetime(2026, 10, day, 11, 0, tzinfo=JST)
            for _ in range(6):
                crud.count_event(
                    db,
                    channel="line",
                    outcome="answer",
                    lang="ja",
                    topic="child_allowance",
                    after_hours=False,
                    at=at,
                )
        crud.count_event(
            db,
            channel="email",
            outcome="handoff",
            lang="en",
            topic=None,
            after_hours=True,
            at=dt.datetime(2026, 10, 2, 20, tzinfo=JST),
        )
        for day in (3, 4):
            crud.count_event(
                db,
                channel="line",
                outcome="answer",
                lang="ja",
                topic=None,
                after_hours=False,
                at=dt.datetime(2026, 9, day, 10, tzinfo=JST),
            )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("boss", "supervisor"), ("kansa", "auditor"), ("sato", "concierge"), ("yamada", "assistant"))
    async with staffed_console(settings, *accounts, setup=seed_counters) as a:
        yield a


async def test_supervisor_sees_the_month_with_the_daily_measure_and_charts(app: FastAPI) -> None:
    boss = await session_for(app, "boss")
    async with boss:
        page = await boss.client.get("/reports", params={"month": "2026-10"})
        assert page.status_code == 200
        text = page.text
        assert "月次統計 2026年10月" in text
        assert "1日5件" in text and "6.0件" in text and "目安以上" in text
        assert "187件" in text and "31日" in text
        assert text.count("<svg") >= 6  # gauge, daily chart, four breakdowns
        assert "http://" not in text and "https://" not in text  # nothing loaded from elsewhere
        assert 'href="/reports/2026-10.csv"' in text
        assert 'href="/reports?month=2026-09"' in text and 'href="/reports?month=2026-11"' in text
        assert "LINE" in text and "メール" in text and "英語" in text and "相談員へ" in text and "分野なし" in text

        sept = await boss.client.get("/reports", params={"month": "2026-09"})
        assert "目安未満" in sept.text and "2件" in sept.text

        bad = await boss.client.get("/reports", params={"month": "2026-13"})
        assert bad.status_code == 200 and "YYYY-MM" in bad.text


async def test_csv_is_the_cli_csv_in_japanese_and_audited(app: FastAPI) -> None:
    rt = app.state.runtime
    kansa = await session_for(app, "kansa")
    async with kansa:
        r = await kansa.client.get("/reports/2026-10.csv")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert 'filename="report-2026-10.csv"' in r.headers["content-disposition"]
        assert r.content.startswith(b"\xef\xbb\xbf")
        with rt.sessions() as s:
            expected = to_csv(
                month_report(
                    s,
                    month="2026-10",
                    office_hours=rt.settings.office_hours.config(),
                    daily_target=rt.settings.reports.daily_target,
                )
            )
        lines = expected.splitlines()
        assert "summary,consultations,187" in lines and "summary,meets_target,yes" in lines  # the CLI's keys
        got = r.content.decode("utf-8-sig").splitlines()
        assert len(got) == len(lines)  # the same rows, in Japanese
        assert got[0] == "区分,項目,値"
        assert "概要,相談件数,187" in got and "概要,目安以上,はい" in got
        assert not any(word in r.text for word in ("summary", "consultations", "first_reply", "line,", "ja,"))
        assert (await kansa.client.get("/reports/2026-13.csv")).status_code == 404
        page = await kansa.client.get("/reports", params={"month": "2026-10"})
        assert page.status_code == 200 and '<form method="post"' not in page.text.split("</header>")[1]
    with rt.sessions() as s:
        done = {(e.actor, e.action, e.record_type, e.detail) for e in staffdb.audit_entries(s, limit=100)}
    assert ("kansa", "export", "report", "month 2026-10") in done
    assert ("kansa", "view", "report", "month 2026-10") in done


async def test_concierge_and_assistant_have_no_reports(app: FastAPI) -> None:
    for username in ("sato", "yamada"):
        who = await session_for(app, username)
        async with who:
            assert (await who.client.get("/reports")).status_code == 403
            assert (await who.client.get("/reports/2026-10.csv")).status_code == 403
            cases = await who.client.get("/cases")
            assert 'href="/reports"' not in cases.text
    boss = await session_for(app, "boss")
    async with boss:
        assert 'href="/reports"' in (await boss.client.get("/cases")).text


async def test_logged_out_is_sent_to_login(app: FastAPI) -> None:
    from tests.e2e.kit import client

    async with client(app) as c:
        r = await c.get("/reports?month=2026-10")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")

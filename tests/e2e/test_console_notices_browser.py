"""Notices and the monthly report in a real browser: Playwright driving Debian's Chromium (headless) against
the real app under uvicorn on 127.0.0.1, with the fake LINE API answering the quota.

A concierge composes a notice in the form (the timing fields follow the chosen kind), sees how it reaches
parents and how many parents on each channel, with the LINE messages against the monthly quota, and submits
it; a supervisor approves it. The supervisor also opens the monthly report with its charts. Screenshots are
saved (KC_SCREENSHOTS=dir to keep them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from bot.runtime import Runtime, bootstrap
from bot.settings import LineSettings, Settings
from storage import crud, lifecycle
from storage import notices as noticedb
from storage import staff as staffdb
from storage.db import transaction
from storage.notices import NoticeStatus
from tests.e2e.kit import PASSWORD, live_server, make_staff, staff_settings
from tests.fakes.line_api import SECRET, FakeLineAPI

JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[str, Runtime]]:
    with FakeLineAPI() as fake:
        fake.quota = 1000
        line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        s = staff_settings(settings).model_copy(update={"line": line})
        rt = bootstrap(s, migrate=False)
        try:
            make_staff(rt.sessions, "sato", "concierge", name="佐藤")
            make_staff(rt.sessions, "boss", "supervisor", name="所長")
            with transaction(rt.sessions) as db:
                for channel, external in (
                    ("line", "U-1"),
                    ("line", "U-2"),
                    ("line", "U-3"),
                    ("email", "p@example.org"),
                ):
                    c = crud.get_or_create_contact(db, channel=channel, external_id=external)
                    assert c.id is not None
                    lifecycle.set_subscribed(db, contact=c, subscribed=True)
                    lifecycle.set_topic(db, contact_id=c.id, topic="events", enabled=True)
                for day in range(1, 29):
                    for i in range(3 + day % 5):
                        crud.count_event(
                            db,
                            channel="line" if i % 3 else "email",
                            outcome="handoff" if i == 0 else "answer",
                            lang="en" if i == 4 else "ja",
                            topic="child_allowance" if i % 2 else None,
                            after_hours=i == 1,
                            at=dt.datetime(2026, 10, day, 11, i, tzinfo=JST),
                        )
            with live_server(create_app(s, runtime=rt)) as base:
                yield base, rt
        finally:
            rt.close()


def log_in(page: Page, base: str, username: str, start: str) -> None:
    page.goto(base + start)
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(base + start)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="ログアウト").click()
    expect(page.get_by_label("ユーザー名")).to_be_visible()


def test_compose_count_and_approve_a_notice_in_the_browser(
    world: tuple[str, Runtime], browser: Browser, shots: Path
) -> None:
    base, rt = world
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())  # the confirmation before submit and approve
    log_in(page, base, "sato", "/notices")
    expect(page.get_by_text("お知らせはありません。")).to_be_visible()
    page.get_by_role("link", name="お知らせを作成").click()
    expect(page).to_have_url(base + "/notices/new")

    form = page.locator("form.notice-form")
    form.get_by_label("件名").fill("12月の親子ふれあい広場")
    form.get_by_label("本文（日本語・必須）").fill("12月10日（水）10時から、親子ふれあい広場を開きます。")
    form.get_by_label("本文（英語").fill("Parent-child play space: Wed 10 Dec, from 10:00.")
    form.get_by_label("分野").select_option(label="イベント・講座")
    # the timing fields follow the kind
    expect(form.locator(".kind-part[data-kind=recurring]")).to_be_hidden()
    form.get_by_label("定期（繰り返し）").check()
    # a schedule picker, not cron: 毎週 shows the weekdays, 毎月 the day; cron waits under 詳細
    expect(form.get_by_label("毎週")).to_be_checked()
    expect(form.get_by_label("水", exact=True)).to_be_visible()
    expect(form.get_by_label("時刻（日本時間）")).to_be_visible()
    expect(form.get_by_label("cron形式：分 時 日 月 曜日、日本時間")).to_be_hidden()
    form.get_by_label("毎月").check()
    expect(form.get_by_label("水", exact=True)).to_be_hidden()
    expect(form.get_by_label("日にち")).to_be_visible()
    form.get_by_text("詳細（cron形式で指定する）").click()
    expect(form.get_by_label("cron形式：分 時 日 月 曜日、日本時間")).to_be_visible()
    expect(form.locator(".kind-part[data-kind=once]")).to_be_hidden()
    form.get_by_label("1回").check()
    form.get_by_label("日時を指定").check()
    form.get_by_label("送信日時（日本時間）").fill("2030-12-01T10:00")
    page.screenshot(path=str(shots / "notice-compose.png"), full_page=True)
    form.get_by_role("button", name="下書きを保存して確認へ").click()

    expect(page.get_by_test_id("notice-status")).to_have_text("下書き")
    expect(page.get_by_test_id("recipient-total")).to_have_text("4人")
    expect(page.locator("tr[data-channel=line] td")).to_have_text("3人")
    expect(page.locator("tr[data-channel=email] td")).to_have_text("1人")
    expect(page.get_by_test_id("line-messages")).to_have_text("3通")
    expect(page.get_by_test_id("line-remaining")).to_have_text("1000通")
    expect(page.locator(".bubble").first).to_have_text("12月10日（水）10時から、親子ふれあい広場を開きます。")
    expect(page.get_by_text("1回：2030-12-01 10:00")).to_be_visible()
    page.screenshot(path=str(shots / "notice-preview.png"), full_page=True)
    page.get_by_role("button", name="送信を申請（承認へ）").click()
    expect(page.get_by_test_id("notice-status")).to_have_text("承認待ち")
    expect(page.get_by_text("承認待ちです。作成者以外の管理者が承認します。")).to_be_visible()
    expect(page.get_by_role("button", name="承認して配信する")).to_have_count(0)
    log_out(page)

    log_in(page, base, "boss", "/notices")
    row = page.locator("table.notices tbody tr").first
    expect(row).to_contain_text("12月の親子ふれあい広場")
    expect(row).to_contain_text("承認待ち")
    expect(row).to_contain_text("2030-12-01 10:00")
    row.get_by_role("link", name="12月の親子ふれあい広場").click()
    page.get_by_role("button", name="承認して配信する").click()
    expect(page.get_by_text("承認しました。配信を予約しました。")).to_be_visible()
    expect(page.get_by_test_id("notice-status")).to_have_text("配信予定")
    page.screenshot(path=str(shots / "notice-approved.png"), full_page=True)

    with rt.sessions() as s:
        notices = noticedb.list_notices(s)
        assert [(n.status, n.created_by, n.approved_by, n.topic) for n in notices] == [
            (NoticeStatus.SCHEDULED, "sato", "boss", "events")
        ]
        send_at = notices[0].send_at
        assert send_at is not None
        assert send_at.replace(tzinfo=send_at.tzinfo or dt.UTC) == dt.datetime(2030, 12, 1, 1, 0, tzinfo=dt.UTC)
        trail = {(e.actor, e.action) for e in staffdb.audit_entries(s, record_type="notice", limit=100)}
    assert {("sato", "create"), ("sato", "submit"), ("boss", "approve"), ("boss", "send")} <= trail

    # the monthly report, charts drawn by the server
    page.goto(base + "/reports?month=2026-10")
    expect(page.get_by_role("heading", name="月次統計 2026年10月")).to_be_visible()
    expect(page.get_by_test_id("per-open-day")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(6)
    page.screenshot(path=str(shots / "reports.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="CSVで書き出す").click()
    csv_path = shots / "report-2026-10.csv"
    info.value.save_as(csv_path)
    assert "概要,対象月,2026-10" in csv_path.read_text(encoding="utf-8-sig")  # Japanese headings
    context.close()

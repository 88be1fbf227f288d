"""Live updates in a real browser (Debian's Chromium under Playwright, the app under uvicorn, LINE parents
through the fake LINE API): an urgent case arriving in an open queue raises the console (title badge,
banner, a desktop notification after asking permission, red past its short target, flagged until claimed);
a reply LINE refuses shows 未達 with the reason and other ways to reach the parent, is resent with 再送 and
then delivered; a parent's new message shows on the open case page without a reload; a console whose
session ended says so with a login link."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from bot.settings import Settings
from storage.db import transaction
from storage.models import Case, utcnow
from storage.staff import StaffSession
from tests.e2e.kit import line_console
from tests.e2e.test_console_browser import Parent, log_in
from tests.fakes.line_api import FakeLineAPI

# The browser's Notification API, recorded: headless Chromium shows no permission prompt to click.
NOTIFICATIONS = """
window.__asked = 0; window.__shown = [];
class RecordedNotification {
  constructor(title, options) { window.__shown.push({ title: title, body: (options || {}).body || "" }); }
}
RecordedNotification.permission = "default";
RecordedNotification.requestPermission = function () {
  window.__asked += 1; RecordedNotification.permission = "granted"; return Promise.resolve("granted");
};
window.Notification = RecordedNotification;
"""


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[str, FakeLineAPI, Any]]:
    with line_console(settings) as world:
        yield world


def only_case(rt: Any, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.sessions() as s:
            found = s.exec(select(Case)).first()
            if found is not None and found.id is not None:
                return int(found.id)
        time.sleep(0.05)
    raise AssertionError("no case opened")


def page_for(browser: Browser) -> Page:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 900})
    context.add_init_script(NOTIFICATIONS)
    return context.new_page()


def test_an_urgent_case_raises_the_open_queue(world: tuple[str, FakeLineAPI, Any], browser: Browser) -> None:
    base, fake, rt = world
    page = page_for(browser)
    log_in(page, base, "sato")
    expect(page.get_by_text("該当するケースはありません。")).to_be_visible()
    expect(page.locator("#sound-toggle")).to_have_text("🔔 通知音：オン")
    page.locator("body[data-stream='open']").wait_for(state="attached")  # a selector: no eval under the CSP

    parent = Parent(base, fake)
    parent.send("text", text="子どもを叩いてしまいそうで怖い")
    case_id = only_case(rt)
    arrived = time.monotonic()
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_be_visible(timeout=2_000)  # pushed by the stream within two seconds of the case existing
    print(f"urgent case shown {time.monotonic() - arrived:.2f}s after it was opened")
    expect(row).to_have_class("urgent flagged sla-ok")
    expect(page).to_have_title("(🚨1) 受付一覧 | 子育て支援コンシェルジュ 職員コンソール")
    expect(page.locator("#urgent-alarm")).to_contain_text(f"受付番号 {case_id}")
    page.wait_for_function("window.__shown.length === 1")
    assert page.evaluate("window.__asked") == 1  # permission asked when the first urgent case came
    shown = page.evaluate("window.__shown[0]")
    assert str(case_id) in shown["title"] and "叩いて" not in shown["title"] + shown["body"]

    # past the urgent target (10 minutes, real time): the row turns red on the open page
    with transaction(rt.sessions) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.waiting_since = utcnow() - dt.timedelta(minutes=11)
        s.add(case)
    expect(row).to_have_class("urgent flagged sla-over", timeout=3_000)
    expect(row).to_contain_text("目標超過")
    expect(row).to_contain_text("10分")
    red = row.locator("td").nth(2).evaluate("td => getComputedStyle(td).backgroundColor")
    assert red not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")

    # the sound is switched off for this person, and stays off after a reload
    page.locator("#sound-toggle").click()
    expect(page.locator("#sound-toggle")).to_have_text("🔕 通知音：オフ")
    page.reload()
    expect(page.locator("#sound-toggle")).to_have_text("🔕 通知音：オフ")
    expect(page).to_have_title("(🚨1) 受付一覧 | 子育て支援コンシェルジュ 職員コンソール")

    # flagged until someone claims it
    row.get_by_role("button", name="担当する").click()
    expect(page.locator(".flash")).to_contain_text("担当になりました")
    expect(page).to_have_title("受付一覧 | 子育て支援コンシェルジュ 職員コンソール")
    expect(page.locator("#urgent-alarm")).to_be_hidden()
    expect(page.locator(f'tr[data-case-id="{case_id}"]')).not_to_have_class("urgent flagged sla-over")

    # the session ends (here: removed on the server): the open page says so, with a login link
    with transaction(rt.sessions) as s:
        for session_row in s.exec(select(StaffSession)):
            s.delete(session_row)
    expect(page.locator("#session-ended")).to_be_visible(timeout=5_000)
    expect(page.locator("#session-ended")).to_contain_text("ログインの有効期限が切れた")
    link = page.locator("#session-ended a")
    expect(link).to_have_attribute("href", re.compile(r"^/login\?next=%2Fcases.*&expired=1$"))
    page.context.close()


def test_a_reply_line_refuses_is_shown_undelivered_and_resent(
    world: tuple[str, FakeLineAPI, Any], browser: Browser
) -> None:
    base, fake, rt = world
    parent = Parent(base, fake)
    parent.opens_case("夜泣きがひどくて、毎晩2時間おきに起こされています")
    case_id = only_case(rt)
    page = page_for(browser)
    log_in(page, base, "sato")
    page.goto(f"{base}/cases/{case_id}")
    expect(page.locator(".transcript")).to_contain_text("毎晩2時間おきに")
    page.locator("body[data-stream='open']").wait_for(state="attached")  # a selector: no eval under the CSP

    # the parent writes while the case page is open: it appears without a reload
    parent.send("text", text="昼寝もしてくれません")
    expect(page.locator(".transcript")).to_contain_text("昼寝もしてくれません", timeout=4_000)

    page.get_by_role("navigation", name="このケースの主な操作").get_by_role("button", name="担当する").click()
    fake.fail_next(400, path="/v2/bot/message/push")  # LINE refuses the push (e.g. the parent blocked us)
    page.get_by_label("返信（保護者のLINEに送信されます）").fill("佐藤です。お昼寝のことも聞かせてください。")
    page.get_by_role("button", name="送信する").click()
    failed = page.locator(".msg.failed")
    expect(failed).to_be_visible(timeout=10_000)  # the page learns it from the stream
    expect(failed.locator(".delivery")).to_have_text("送信失敗")
    expect(failed).to_contain_text("未達")
    expect(failed).to_contain_text("友だち登録が解除されたかブロックされている可能性")
    expect(failed).to_contain_text("ほかの連絡方法")
    expect(page.locator("#case-wait")).to_contain_text("未達")
    assert all("お昼寝のことも" not in t for t in fake.texts(parent.id))

    page.goto(f"{base}/cases")
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_contain_text("未達")
    expect(row.locator(".wait")).not_to_have_text("—")  # the parent is still waiting: the reply never arrived

    page.goto(f"{base}/cases/{case_id}")
    page.locator(".msg.failed").get_by_role("button", name="再送").click()
    expect(page.locator(".flash")).to_contain_text("返信をもう一度送ります")
    parent.wait_for_text("佐藤です。お昼寝のことも")
    expect(page.locator(".msg.staff .delivery").last).to_have_text("送信済み", timeout=10_000)
    expect(page.locator(".msg.failed")).to_have_count(0)
    assert sum("お昼寝のことも" in t for t in fake.texts(parent.id)) == 1
    page.goto(f"{base}/cases")
    expect(page.locator(f'tr[data-case-id="{case_id}"]')).not_to_contain_text("未達")
    page.context.close()

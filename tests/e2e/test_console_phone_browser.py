"""The console on a phone and from the keyboard, in Debian's Chromium under Playwright (the app under
uvicorn, LINE parents through the fake LINE API): at 390 px the queue is a list of cards that never scrolls
sideways (document scrollWidth measured) with 担当する in reach; the case page keeps 担当する/解決 in a bar on
screen; the records are tabs that work by keyboard; a withdrawn consent shows a banner and a message sent
after it a placeholder line; an unknown address is a Japanese 404 page. Screenshots of the queue and the case
page at 1366 and 390 px go to KC_SCREENSHOTS (the README's come from here)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError
from sqlmodel import select

from bot.settings import Settings
from storage import canned as canned_db
from storage.db import transaction
from storage.models import Case
from tests.e2e.kit import line_console
from tests.e2e.test_console_browser import Parent, log_in
from tests.fakes.line_api import FakeLineAPI

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[str, FakeLineAPI, Any]]:
    with line_console(settings) as world:
        yield world


def cases(rt: Any, count: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.sessions() as s:
            found = [c.id for c in s.exec(select(Case).order_by(Case.id))]  # type: ignore[arg-type]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError("cases not opened")


def page_at(browser: Browser, viewport: dict[str, int]) -> Page:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport=viewport)  # type: ignore[arg-type]
    return context.new_page()


def no_sideways_scroll(page: Page) -> int:
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    assert width <= PHONE["width"], f"the page is {width}px wide at {PHONE['width']}px"
    return width


def retried(action: Callable[[], Any], attempts: int = 5) -> Any:
    """An action on an element that the live updates may swap out under it: tried again on a fresh element."""
    for attempt in range(attempts):
        try:
            return action()
        except PlaywrightError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def test_the_queue_and_the_case_page_on_a_phone_and_a_desk(
    world: tuple[str, FakeLineAPI, Any], browser: Browser, shots: Path
) -> None:
    base, fake, rt = world
    first, second = Parent(base, fake), Parent(base, fake)
    first.opens_case("保育園の入園申し込みの書類はどこでもらえますか？締め切りも知りたいです。")
    second.send("text", text="子どもを叩いてしまいそうで怖い")
    ids = cases(rt, 2)
    first.wait_for_text("受付番号")

    desk = page_at(browser, DESKTOP)
    log_in(desk, base, "sato")
    for case_id in ids:
        expect(desk.locator(f'tr[data-case-id="{case_id}"]')).to_be_visible(timeout=5_000)
    expect(desk.locator("#queue")).to_contain_text("保育園の入園申し込みの書類はどこでもらえますか？")
    expect(desk.locator("#queue")).to_contain_text("子どもを傷つけてしまいそうな不安")  # the crisis in Japanese
    desk.screenshot(path=str(shots / "queue-1366.png"), full_page=True)

    phone = page_at(browser, PHONE)
    log_in(phone, base, "sato")
    card = phone.locator(f'tr[data-case-id="{ids[0]}"]')
    expect(card).to_be_visible(timeout=5_000)
    width = no_sideways_scroll(phone)
    print(f"queue at 390px: document scrollWidth {width}px")
    claim = card.get_by_role("button", name="担当する")
    expect(claim).to_be_visible()
    # scrolled and measured in one step, again while the live stream re-renders the queue under it
    rect = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rect = retried(
            lambda: claim.evaluate(
                "b => { b.scrollIntoView({block: 'center'}); const r = b.getBoundingClientRect();"
                " return [r.left, r.right, r.top, r.bottom, innerWidth, innerHeight]; }"
            )
        )
        left, right, top, bottom, _, height_px = rect
        if right > left and bottom > top and top >= 0 and bottom <= height_px:
            break
        phone.wait_for_timeout(200)
    assert rect is not None
    left, right, top, bottom, _, height_px = rect
    assert top >= 0 and bottom <= height_px, rect  # on screen once scrolled to
    assert left >= 0 and right <= PHONE["width"], rect  # in reach without sideways scrolling
    expect(card).to_have_css("display", "block")  # a card, not a table row (waits out a re-render of the row)
    phone.screenshot(path=str(shots / "queue-390.png"), full_page=True)

    # the case page on the phone: the bar with 担当する/解決 stays on screen while the transcript scrolls
    phone.goto(f"{base}/cases/{ids[0]}")
    bar = phone.get_by_role("navigation", name="このケースの主な操作")
    expect(bar.get_by_role("button", name="担当する")).to_be_in_viewport()
    expect(bar.get_by_role("button", name="解決")).to_be_in_viewport()
    phone.mouse.wheel(0, 2500)
    expect(bar.get_by_role("button", name="解決")).to_be_in_viewport()
    no_sideways_scroll(phone)
    bar.get_by_role("link", name="返信を書く").click()
    expect(phone.locator("#reply-text")).to_be_in_viewport()
    phone.goto(f"{base}/cases/{ids[0]}")
    expect(phone.locator(".transcript")).to_contain_text("保育園の入園申し込み")
    phone.screenshot(path=str(shots / "case-390.png"), full_page=False)

    # the records are tabs, by keyboard too
    desk.goto(f"{base}/cases/{ids[0]}")
    consultation, support = desk.locator("#consultation"), desk.locator("#support")
    expect(consultation).to_be_visible()
    expect(support).to_be_hidden()
    desk.get_by_role("tab", name="相談記録").focus()
    desk.keyboard.press("ArrowRight")
    expect(desk.get_by_role("tab", name="支援記録")).to_be_focused()
    expect(support).to_be_visible()
    expect(consultation).to_be_hidden()
    desk.keyboard.press("ArrowLeft")
    expect(consultation).to_be_visible()

    # the parent withdraws consent and writes again: a banner, and a line for the message not recorded
    first.send("text", text="同意を取り消します")
    first.wait_for_text("取り消")
    first.send("text", text="この内容は記録されないはず")
    expect(desk.locator(".transcript")).to_contain_text("同意がないため内容は記録していません", timeout=5_000)
    expect(desk.locator(".transcript")).not_to_contain_text("この内容は記録されないはず")
    desk.goto(f"{base}/cases/{ids[0]}")
    expect(desk.get_by_role("alert").filter(has_text="保護者が同意を取り消しました")).to_be_visible()
    desk.screenshot(path=str(shots / "case-1366.png"), full_page=False)
    desk.context.close()
    phone.context.close()


def test_an_unknown_address_is_a_japanese_page(world: tuple[str, FakeLineAPI, Any], browser: Browser) -> None:
    base, _, _ = world
    page = page_at(browser, DESKTOP)
    log_in(page, base, "sato")
    response = page.goto(f"{base}/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="見つかりません")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("link", name="受付一覧へ戻る")).to_be_visible()
    assert "Not Found" not in page.content()
    favicon = httpx.get(f"{base}/favicon.ico", timeout=10)
    assert favicon.status_code == 200 and favicon.headers["content-type"].startswith("image/svg+xml")
    page.context.close()


def test_a_canned_reply_is_inserted_by_click_and_by_slash_and_sent_with_ctrl_enter(
    world: tuple[str, FakeLineAPI, Any], browser: Browser
) -> None:
    base, fake, rt = world
    with transaction(rt.sessions) as s:
        canned_db.save_canned(s, title="受付のお礼", body="受付番号 {受付番号} で承りました。", by="boss")
        canned_db.save_canned(s, title="面談のご案内", body="面談は予約制です。受付時間は {受付時間} です。", by="boss")
    parent = Parent(base, fake)
    parent.opens_case("夜泣きがひどくて眠れません")
    case_id = cases(rt, 1)[0]
    page = page_at(browser, DESKTOP)
    log_in(page, base, "sato")
    page.goto(f"{base}/cases/{case_id}")
    box = page.locator("#reply-text")

    page.get_by_role("button", name="定型文「受付のお礼」を挿入").click()
    expect(box).to_have_value(f"受付番号 {case_id} で承りました。")

    box.press("End")
    box.press_sequentially(" /面談")
    menu = page.get_by_role("listbox", name="定型文の候補")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("option")).to_have_text(["面談のご案内"])
    box.press("Enter")
    expect(menu).to_be_hidden()
    value = box.input_value()
    assert value.startswith(f"受付番号 {case_id} で承りました。 面談は予約制です。受付時間は ")
    assert "/面談" not in value and "{受付時間}" not in value

    box.press("Control+Enter")
    expect(page.locator(".flash")).to_contain_text("返信を送りました")
    parent.wait_for_text("面談は予約制です")
    page.context.close()

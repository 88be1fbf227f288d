"""The public FAQ in Debian's Chromium on a 390 px phone: no horizontal scrolling on the list, the entry page
or a search; an answer opens with a tap and shows a phone link; keyboard search works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.runtime import Runtime
from tests.e2e.kit import sqlite_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Runtime]]:
    with sqlite_site(tmp_path_factory.mktemp("faq")) as site:
        yield site


def phone(browser: Browser) -> Page:
    context = browser.new_context(
        locale="ja-JP", viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    return context.new_page()


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"


def test_the_faq_on_a_phone(site: tuple[str, Runtime], browser: Browser, shots: Path) -> None:
    base, rt = site
    page = phone(browser)
    page.goto(base + "/faq")
    expect(page).to_have_title("子育てのよくある質問")
    no_horizontal_scroll(page)
    page.screenshot(path=str(shots / "faq-390.png"), full_page=False)

    entry = next(e for e in rt.kb.entries.values() if e.open_data and e.contacts)
    item = page.locator(f"details#{entry.id}")
    item.locator("summary").tap()
    expect(item).to_have_attribute("open", "")
    expect(item.locator(".answer")).to_be_visible()
    no_horizontal_scroll(page)

    # keyboard only: the search field, a query, Enter
    page.get_by_label("質問をさがす").focus()
    page.keyboard.type("一時預かりの料金はいくら？")
    page.keyboard.press("Enter")
    expect(page.locator("h1.results")).to_contain_text("一時預かりの料金")
    first = page.locator("details.item").first
    expect(first).to_have_attribute("open", "")
    expect(first.locator("a.tel").first).to_be_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=str(shots / "faq-search-390.png"), full_page=False)

    page.goto(f"{base}/faq/{entry.id}?lang=en")
    no_horizontal_scroll(page)
    page.context.close()

"""The KB editor in Chromium at 1,366 px: a concierge adds another entry's question and is told which entry it
matches, takes it out, saves the edit and sees it answered by 「試してみる」. KC_SCREENSHOTS=docs/screenshots
keeps kb-edit-1366.png for the README."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from bot.app import create_app
from bot.runtime import Runtime, bootstrap
from bot.settings import Settings
from tests.e2e.kit import live_server, make_staff, staff_settings
from tests.e2e.test_console_browser import log_in

ENTRY = "nursery-application"
MARK = "（この一文は今日の変更で加わりました）"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    plain = Settings(database_url=f"sqlite:///{tmp_path / 'concierge.db'}", _env_file=None)  # type: ignore[call-arg]
    settings = staff_settings(plain)
    rt = bootstrap(settings)
    try:
        make_staff(rt.sessions, "sato", "concierge", name="佐藤")
        with live_server(create_app(settings, runtime=rt)) as base:
            yield base, rt
    finally:
        rt.close()


def test_a_conflicting_question_is_refused_then_the_edit_is_saved(
    site: tuple[str, Runtime], browser: Browser, shots: Path
) -> None:
    base, rt = site
    stolen = rt.kb.entries["child-allowance-payday"].questions["ja"][0]
    page = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900}).new_page()
    log_in(page, base, "sato")
    page.goto(f"{base}/kb/{ENTRY}")
    page.get_by_role("link", name="編集する").click()
    expect(page).to_have_url(f"{base}/kb/{ENTRY}/edit")
    questions = page.locator("textarea[name=q_ja]")
    original = questions.input_value()
    questions.fill(original + "\n" + stolen)
    page.get_by_label("変更の理由（履歴に残ります）").fill("よくある聞き方を足す")
    page.get_by_role("button", name="保存する").click()
    errors = page.get_by_test_id("kb-errors")
    expect(errors).to_contain_text(f"この質問「{stolen}」は別の項目")
    page.locator("textarea[name=q_ja]").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "kb-edit-1366.png"), full_page=False)
    assert rt.live.revision == 1

    page.locator("textarea[name=q_ja]").fill(original)
    answer = page.locator("textarea[name=a_ja]")
    answer.fill(answer.input_value() + MARK)
    page.get_by_role("button", name="保存する").click()
    expect(page).to_have_url(f"{base}/kb/{ENTRY}?msg=saved")
    expect(page.get_by_role("status").first).to_contain_text("保存しました")
    page.goto(f"{base}/kb/try?q=保育園の申し込み方法を教えてください")
    expect(page.get_by_test_id("try-result")).to_contain_text(ENTRY)
    expect(page.locator("pre.reply-preview").first).to_contain_text(MARK)

"""A parent on the console channel (a terminal) and the concierge in a real browser: the staff reply written on
the case page reaches the parent's terminal as `staff> …`, and the page shows it 送信済み once it was printed."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from bot.app import create_app
from bot.runtime import bootstrap
from bot.settings import Settings
from handlers.channels import console
from tests.e2e.kit import live_server, make_staff, parent_opens_case, staff_settings
from tests.e2e.test_console_browser import log_in


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[str, Any, io.StringIO]]:
    s = staff_settings(settings, poll_seconds=1.0)
    rt = bootstrap(s, migrate=False)
    app = create_app(s, runtime=rt)
    terminal = io.StringIO()
    try:
        make_staff(rt.sessions, "sato", "concierge", name="佐藤")
        with live_server(app) as base:
            # the terminal of `concierge serve --console`: its adapter joins the running inbox
            app.state.inbox.adapters[console.CHANNEL] = console.ConsoleAdapter(terminal, sender_id="p-term")
            yield base, rt, terminal
    finally:
        rt.close()


def test_a_console_parent_receives_the_reply_written_in_the_browser(
    world: tuple[str, Any, io.StringIO], browser: Browser
) -> None:
    base, rt, terminal = world
    case_id = parent_opens_case(rt.engine, "p-term", "夜泣きがひどくて、毎晩2時間おきに起こされています")
    page = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900}).new_page()
    log_in(page, base, "sato")
    page.goto(f"{base}/cases/{case_id}")
    expect(page.locator(".transcript")).to_contain_text("毎晩2時間おきに")
    page.get_by_label("返信（保護者のターミナル（試用チャット）に送信されます）").fill(
        "佐藤です。夜泣きのこと、もう少し聞かせてください。"
    )
    page.get_by_role("button", name="送信する").click()
    deadline = time.monotonic() + 20
    while "staff> 佐藤です。夜泣きのこと" not in terminal.getvalue():
        assert time.monotonic() < deadline, "the reply never reached the terminal"
        time.sleep(0.05)
    expect(page.locator(".msg.staff .delivery").last).to_have_text("送信済み", timeout=10_000)
    page.context.close()

"""The console end to end in a real browser: Playwright driving Debian's Chromium (headless) against the
real app under uvicorn on 127.0.0.1, with a parent on LINE played through the fake LINE API.

A parent asks for a person on LINE and consents; the concierge logs in, sees the case appear in the queue
without reloading, opens it, replies, and the reply reaches the parent by push (its delivery state turns to
送信済み on the page). An assistant cannot see the unassigned case; an auditor can read but not reply; a
forged CSRF token is refused; an idle session expires. Screenshots of the queue and the case page are saved
(KC_SCREENSHOTS=dir to keep them)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from bot.app import create_app
from bot.runtime import bootstrap
from bot.settings import LineSettings, Settings
from handlers.channels.line import WEBHOOK_PATH, sign
from storage.models import Case, Message
from tests.e2e.kit import PASSWORD, age_sessions, live_server, make_staff, staff_settings
from tests.fakes.line_api import SECRET, FakeLineAPI, encode, user_id, webhook


class Parent:
    """A LINE user, as the platform would post their events to our webhook."""

    def __init__(self, base: str, fake: FakeLineAPI) -> None:
        self.base, self.fake, self.id = base, fake, user_id()

    def send(self, fixture: str, **values: str) -> None:
        body = encode(webhook(fixture, user=self.id, reply_token=self.fake.issue_token(self.id), **values))
        headers = {"x-line-signature": sign(SECRET, body), "content-type": "application/json"}
        r = httpx.post(self.base + WEBHOOK_PATH, content=body, headers=headers, timeout=60)
        assert r.status_code == 200

    def wait_for_text(self, needle: str) -> None:
        self.fake.wait_for(lambda f: any(needle in t for t in f.texts(self.id)), timeout=20)

    def opens_case(self, text: str) -> None:
        """Asks for a person, consents and writes `text` (the case is opened by the engine)."""
        self.send("text", text="相談員と話したい")
        self.wait_for_text("記録について確認")
        self.send("postback", data="consent:yes")
        self.wait_for_text("受付番号")
        self.send("text", text=text)


def log_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/cases")
    expect(page).to_have_url(f"{base}/login?next=%2Fcases")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()
    expect(page).to_have_url(base + "/cases")


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[str, FakeLineAPI, object]]:
    with FakeLineAPI() as fake:
        line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        s = staff_settings(settings, poll_seconds=1.0).model_copy(update={"line": line})
        rt = bootstrap(s, migrate=False)
        try:
            make_staff(rt.sessions, "sato", "concierge", name="佐藤")
            make_staff(rt.sessions, "yamada", "assistant", name="山田")
            make_staff(rt.sessions, "kansa", "auditor", name="監査")
            with live_server(create_app(s, runtime=rt)) as base:
                yield base, fake, rt
        finally:
            rt.close()


def test_concierge_answers_a_line_parent_in_the_browser(
    world: tuple[str, FakeLineAPI, object], browser: Browser, shots: Path
) -> None:
    base, fake, rt = world
    started = time.monotonic()
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1360, "height": 900})
    page = context.new_page()
    log_in(page, base, "sato")
    expect(page.get_by_text("該当するケースはありません。")).to_be_visible()

    # a parent on LINE asks for a person while the queue page is open
    parent = Parent(base, fake)
    parent.opens_case("夜泣きがひどくて、毎晩2時間おきに起こされています")
    with rt.sessions() as s:  # type: ignore[attr-defined]
        case_id = s.exec(select(Case)).one().id
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_be_visible(timeout=10_000)  # appeared without a reload (polling)
    expect(row).to_contain_text("LINE")
    expect(row).to_contain_text("未担当")
    page.screenshot(path=str(shots / "queue.png"), full_page=True)

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{base}/cases/{case_id}")
    expect(page.locator(".transcript")).to_contain_text("毎晩2時間おきに起こされています")
    expect(page.locator(".transcript")).to_contain_text("根拠：同意")
    page.get_by_role("button", name="担当する").first.click()
    expect(page.locator(".flash")).to_contain_text("担当になりました")
    page.get_by_label("返信（保護者のLINEに送信されます）").fill(
        "保育士の佐藤です。夜泣きのこと、詳しく聞かせてください。"
    )
    page.get_by_role("button", name="送信する").click()
    expect(page.locator(".flash")).to_contain_text("返信を送りました")
    parent.wait_for_text("保育士の佐藤です。夜泣きのこと")
    push = fake.pushes[-1]
    assert push["to"] == parent.id
    expect(page.locator(".delivery").last).to_have_text("送信済み", timeout=10_000)
    page.get_by_label("メモを追加").fill("次回は保健師と同席を提案する")
    page.get_by_role("button", name="メモを保存").click()
    expect(page.locator("ul.notes")).to_contain_text("次回は保健師と同席を提案する")
    assert all("保健師と同席" not in t for t in fake.texts(parent.id))
    page.screenshot(path=str(shots / "case.png"), full_page=True)
    with rt.sessions() as s:  # type: ignore[attr-defined]
        staff_line = s.exec(select(Message).where(Message.author == "staff:sato")).one()
    assert staff_line.delivery == "sent"

    # CSRF: a form whose token was tampered with is refused, nothing is stored
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')")
    page.get_by_label("メモを追加").fill("偽のメモ")
    page.get_by_role("button", name="メモを保存").click()
    expect(page.get_by_role("heading", name="送信を受け付けられません")).to_be_visible()
    page.goto(f"{base}/cases/{case_id}")
    expect(page.locator("ul.notes")).not_to_contain_text("偽のメモ")

    # an assistant cannot see a case that is not assigned to them
    assistant = browser.new_context(locale="ja-JP").new_page()
    log_in(assistant, base, "yamada")
    expect(assistant.get_by_text("該当するケースはありません。")).to_be_visible()
    assistant.goto(f"{base}/cases/{case_id}")
    expect(assistant.get_by_role("heading", name="権限がありません")).to_be_visible()
    expect(assistant.locator("body")).not_to_contain_text("夜泣き")

    # an auditor reads the case but has no reply box, and a reply they post anyway is refused
    auditor = browser.new_context(locale="ja-JP").new_page()
    log_in(auditor, base, "kansa")
    auditor.goto(f"{base}/cases/{case_id}")
    expect(auditor.locator(".transcript")).to_contain_text("毎晩2時間おきに")
    expect(auditor.locator("textarea")).to_have_count(0)
    status = auditor.evaluate(
        """async (id) => {
            const body = new URLSearchParams({text: '監査担当の返信', csrf_token: document.body.dataset.csrf});
            const r = await fetch(`/cases/${id}/reply`, {method: 'POST', body});
            return r.status;
        }""",
        case_id,
    )
    assert status == 403
    auditor.goto(f"{base}/audit?record_type=case&record_id={case_id}")
    expect(auditor.locator("table.audit")).to_contain_text("返信")
    expect(auditor.locator("table.audit")).to_contain_text("sato")
    assert all("監査担当の返信" not in t for t in fake.texts(parent.id))

    # the concierge's session expires after the idle timeout
    age_sessions(rt.sessions, "sato", 31)  # type: ignore[attr-defined]
    page.goto(f"{base}/cases/{case_id}")
    expect(page).to_have_url(f"{base}/login?next=%2Fcases%2F{case_id}&expired=1")
    expect(page.get_by_text("一定時間操作がなかったため")).to_be_visible()
    context.close()
    print(f"browser flow took {time.monotonic() - started:.1f}s; screenshots in {shots}")
    if os.environ.get("KC_SCREENSHOTS"):
        shutil.copy(shots / "queue.png", shots / "queue-latest.png")

"""/notices against the real app (SQLite and PostgreSQL): compose, preview with recipient counts, submit,
approval by a supervisor who did not write it, cancel, the runs and per-recipient results, roles, CSRF and
the audit trail (no text in it)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bot.runtime import bootstrap
from bot.settings import Settings
from storage import crud, lifecycle
from storage import notices as noticedb
from storage import staff as staffdb
from storage.db import SessionFactory, transaction
from storage.models import utcnow
from storage.notices import NoticeBatch, NoticeDelivery, NoticeRun, NoticeStatus
from tests.e2e.kit import Login, console_app, make_staff, session_for, staff_settings, staffed_console

TEXT = "12月の親子ふれあい広場は10日（水）10時からです。"
LOCATION = re.compile(r"/notices/(\d+)")


# LINE user ids as LINE shapes them ("U" + 32 hex digits), keyed by short names for the tests
LINE_IDS = {name: "U" + f"{n:032x}" for n, name in enumerate(("U-a", "U-b", "U-c", "U-gone", "U-off"), start=0xA1)}


def parents(sessions: SessionFactory) -> dict[str, int]:
    """Three LINE and two email followers, one unsubscribed, one who turned general notices off; returns
    short name -> internal contact number."""
    ids: dict[str, int] = {}
    with transaction(sessions) as s:
        for channel, name, subscribed, general in (
            ("line", "U-a", True, True),
            ("line", "U-b", True, True),
            ("line", "U-c", True, True),
            ("email", "a@example.org", True, True),
            ("email", "b@example.org", True, True),
            ("line", "U-gone", False, True),
            ("line", "U-off", True, False),
        ):
            c = crud.get_or_create_contact(s, channel=channel, external_id=LINE_IDS.get(name, name))
            assert c.id is not None
            lifecycle.set_subscribed(s, contact=c, subscribed=subscribed)
            if not general:
                lifecycle.set_topic(s, contact_id=c.id, topic="general", enabled=False)
            ids[name] = c.id
    return ids


def no_personal_data(html: str) -> bool:
    return not any(v in html for v in LINE_IDS.values()) and "example.org" not in html


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (
        ("sato", "concierge"),
        ("suzuki", "concierge"),
        ("boss", "supervisor"),
        ("boss2", "supervisor"),
        ("kansa", "auditor"),
        ("yamada", "assistant"),
    )
    async with staffed_console(settings, *accounts) as a:
        yield a


def form(**values: str) -> dict[str, str]:
    base = {"title": "ふれあい広場のご案内", "text_ja": TEXT, "topic": "general", "kind": "once", "when": "now"}
    base.update(values)
    return base


async def compose(who: Login, **values: str) -> int:
    r = await who.post("/notices", form(**values))
    assert r.status_code == 303, r.text
    found = LOCATION.search(r.headers["location"])
    assert found is not None
    return int(found.group(1))


def audit_trail(app: FastAPI) -> list[tuple[str, str, str | None]]:
    with app.state.runtime.sessions() as s:
        return [
            (e.actor, e.action, e.record_id)
            for e in staffdb.audit_entries(s, record_type="notice", limit=500)
            if e.action != "view"
        ]


def status_of(app: FastAPI, notice_id: int) -> str:
    with app.state.runtime.sessions() as s:
        notice = noticedb.get_notice(s, notice_id=notice_id)
        assert notice is not None
        return notice.status


async def test_compose_preview_submit_and_approve(app: FastAPI) -> None:
    parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        new = await sato.client.get("/notices/new")
        assert new.status_code == 200 and "イベント・講座" in new.text and 'name="csrf_token"' in new.text
        notice_id = await compose(sato, text_en="The parent-child play space opens on the 10th at 10:00.")
        page = await sato.client.get(f"/notices/{notice_id}", params={"msg": "created"})
        assert page.status_code == 200
        assert TEXT in page.text and "parent-child play space" in page.text  # as a parent would see it
        assert "下書き" in page.text and "4人" not in page.text
        total = re.search(r'data-testid="recipient-total">(\d+)人', page.text)
        assert total is not None and total.group(1) == "5"
        assert re.search(r'data-channel="line"><th>LINE</th><td>3人', page.text)
        assert re.search(r'data-channel="email"><th>メール</th><td>2人', page.text)
        assert "この配信で使う数" in page.text
        assert no_personal_data(page.text)
        assert "送信を申請" in page.text and "承認して配信する" not in page.text

        r = await sato.post(f"/notices/{notice_id}/submit")
        assert r.status_code == 303 and "msg=submitted" in r.headers["location"]
        assert status_of(app, notice_id) == NoticeStatus.AWAITING_APPROVAL
        # a concierge cannot approve, not even by posting the form
        assert (await sato.post(f"/notices/{notice_id}/approve")).status_code == 403
        mine = await sato.client.get(f"/notices/{notice_id}")
        assert "承認待ちです" in mine.text and "承認して配信する" not in mine.text

    boss = await session_for(app, "boss")
    async with boss:
        listed = await boss.client.get("/notices", params={"status": "awaiting_approval"})
        assert "ふれあい広場のご案内" in listed.text and "一般のお知らせ" in listed.text and "承認待ち" in listed.text
        page = await boss.client.get(f"/notices/{notice_id}")
        assert "承認して配信する" in page.text
        r = await boss.post(f"/notices/{notice_id}/approve")
        assert r.status_code == 303 and "msg=approved" in r.headers["location"]
    assert status_of(app, notice_id) == NoticeStatus.SCHEDULED
    with app.state.runtime.sessions() as s:
        notice = noticedb.get_notice(s, notice_id=notice_id)
        assert notice is not None and notice.approved_by == "boss"
    trail = audit_trail(app)
    for entry in [
        ("sato", "create", str(notice_id)),
        ("sato", "submit", str(notice_id)),
        ("boss", "approve", str(notice_id)),
        ("boss", "send", str(notice_id)),
    ]:
        assert entry in trail
    with app.state.runtime.sessions() as s:
        details = [f"{e.detail}" for e in staffdb.audit_entries(s, limit=500)]
    assert all("ふれあい" not in d for d in details)


async def test_a_supervisor_cannot_approve_their_own_notice(app: FastAPI) -> None:
    parents(app.state.runtime.sessions)
    boss = await session_for(app, "boss")
    async with boss:
        notice_id = await compose(boss)
        await boss.post(f"/notices/{notice_id}/submit")
        r = await boss.post(f"/notices/{notice_id}/approve")
        assert r.status_code == 303 and "error=own" in r.headers["location"]
        page = await boss.client.get(r.headers["location"])
        assert "自分で作成または編集したお知らせは承認できません" in page.text
    assert status_of(app, notice_id) == NoticeStatus.AWAITING_APPROVAL
    boss2 = await session_for(app, "boss2")
    async with boss2:
        assert (await boss2.post(f"/notices/{notice_id}/approve")).status_code == 303
    assert status_of(app, notice_id) == NoticeStatus.SCHEDULED


async def test_a_supervisor_who_edited_a_notice_cannot_approve_it(app: FastAPI) -> None:
    """Security review F7: a supervisor rewrote a concierge's notice and approved it himself. Whoever wrote or
    edited the current text needs someone else's approval, also when the author submits it again."""
    parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato)
        await sato.post(f"/notices/{notice_id}/submit")
    boss = await session_for(app, "boss")
    async with boss:
        r = await boss.post(f"/notices/{notice_id}/edit", form(text_ja="上長が書き換えた本文です。"))
        assert r.status_code == 303
        await boss.post(f"/notices/{notice_id}/submit")
        assert status_of(app, notice_id) == NoticeStatus.AWAITING_APPROVAL
        page = await boss.client.get(f"/notices/{notice_id}")
        assert "承認して配信する" not in page.text and "承認待ちです" in page.text
        r = await boss.post(f"/notices/{notice_id}/approve")
        assert r.status_code == 303 and "error=own" in r.headers["location"]
    assert status_of(app, notice_id) == NoticeStatus.AWAITING_APPROVAL
    with app.state.runtime.sessions() as s:
        notice = noticedb.get_notice(s, notice_id=notice_id)
        assert notice is not None and notice.editors == ["boss"] and notice.created_by == "sato"
        with pytest.raises(noticedb.NoticeError):  # the storage rule holds without the console too
            noticedb.approve_notice(s, notice=notice, approver="boss")
        s.rollback()
    boss2 = await session_for(app, "boss2")
    async with boss2:
        assert "承認して配信する" in (await boss2.client.get(f"/notices/{notice_id}")).text
        r = await boss2.post(f"/notices/{notice_id}/approve")
        assert r.status_code == 303 and "msg=approved" in r.headers["location"]
    assert status_of(app, notice_id) == NoticeStatus.SCHEDULED


async def test_form_errors_come_back_in_japanese_with_what_was_typed(app: FastAPI) -> None:
    sato = await session_for(app, "sato")
    async with sato:
        r = await sato.post("/notices", form(text_ja="", title="下書きタイトル"))
        assert r.status_code == 200 and "日本語の本文を入力してください" in r.text and "下書きタイトル" in r.text
        past = await sato.post("/notices", form(when="at", send_at="2020-01-01T10:00"))
        assert past.status_code == 200 and "未来の日時" in past.text
        cron = await sato.post("/notices", form(kind="recurring", cron="every monday"))
        assert cron.status_code == 200 and "cron形式" in cron.text
        band = await sato.post("/notices", form(age_min="12", age_max="6"))
        assert band.status_code == 200 and "月齢の範囲" in band.text
        age = await sato.post("/notices", form(kind="age"))
        assert age.status_code == 200 and "誕生月から何か月" in age.text
        topic = await sato.post("/notices", form(topic="lottery"))
        assert topic.status_code == 200
    with app.state.runtime.sessions() as s:
        assert noticedb.list_notices(s) == []


async def test_send_time_is_typed_in_japan_time_and_stored_in_utc(app: FastAPI) -> None:
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato, when="at", send_at="2030-01-15T10:00", misfire="skip")
        recurring = await compose(sato, kind="recurring", cron="0 10 1 * *", topic="events", channel="line")
        weekly = await compose(sato, kind="recurring", cron="30 9 * * 1")
        page = await sato.client.get(f"/notices/{weekly}")
        found = re.search(r"<dt>次の送信</dt><dd>(\d{4}-\d\d-\d\d) 09:30</dd>", page.text)
        assert found is not None and dt.date.fromisoformat(found.group(1)).weekday() == 0  # cron's 1 is Monday
        age = await compose(
            sato, kind="age", offset_months="4", offset_days="0", topic="health", age_min="0", age_max="12"
        )
        listed = await sato.client.get("/notices")
        assert "2030-01-15 10:00" in listed.text and "定期：毎月1日 10:00" in listed.text
        assert "定期：毎週月曜 09:30" in listed.text  # the rule in words, not in cron
        assert (
            "誕生月から4か月後" in listed.text
            and "LINE・すべての言語" in listed.text
            and "月齢0〜12か月" in listed.text
        )
        edit = await sato.client.get(f"/notices/{notice_id}/edit")
        assert 'value="2030-01-15T10:00"' in edit.text
    with app.state.runtime.sessions() as s:
        n = noticedb.get_notice(s, notice_id=notice_id)
        assert n is not None and n.send_at is not None and n.misfire == "skip"
        at = n.send_at if n.send_at.tzinfo else n.send_at.replace(tzinfo=dt.UTC)
        assert at == dt.datetime(2030, 1, 15, 1, 0, tzinfo=dt.UTC)
        r = noticedb.get_notice(s, notice_id=recurring)
        assert r is not None and r.cron == "0 10 1 * *" and r.channel == "line" and r.topic == "events"
        a = noticedb.get_notice(s, notice_id=age)
        assert a is not None and (a.age_offset_months, a.age_min_months, a.age_max_months) == (4, 0, 12)


async def test_editing_a_notice_awaiting_approval_sends_it_back_to_draft(app: FastAPI) -> None:
    parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato)
        await sato.post(f"/notices/{notice_id}/submit")
        r = await sato.post(f"/notices/{notice_id}/edit", form(text_ja="訂正：11日（木）です。"))
        assert r.status_code == 303 and "msg=saved" in r.headers["location"]
    assert status_of(app, notice_id) == NoticeStatus.DRAFT
    suzuki = await session_for(app, "suzuki")  # another concierge may not edit or cancel it
    async with suzuki:
        assert (await suzuki.client.get(f"/notices/{notice_id}/edit")).status_code == 403
        assert (await suzuki.post(f"/notices/{notice_id}/edit", form())).status_code == 403
        assert (await suzuki.post(f"/notices/{notice_id}/cancel")).status_code == 403
    assert ("sato", "edit", str(notice_id)) in audit_trail(app)


async def test_nobody_to_send_to_is_refused_and_cancel_works(app: FastAPI) -> None:
    parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        empty = await compose(sato, topic="nursery")  # nobody turned nursery notices on
        r = await sato.post(f"/notices/{empty}/submit")
        assert "error=nobody" in r.headers["location"]
        assert status_of(app, empty) == NoticeStatus.DRAFT

        notice_id = await compose(sato)
        await sato.post(f"/notices/{notice_id}/submit")
        r = await sato.post(f"/notices/{notice_id}/cancel")
        assert r.status_code == 303 and "msg=cancelled" in r.headers["location"]
        assert status_of(app, notice_id) == NoticeStatus.CANCELLED
        again = await sato.post(f"/notices/{notice_id}/cancel")
        assert "error=invalid" in again.headers["location"]
        page = await sato.client.get(f"/notices/{notice_id}")
        assert "取り消し" in page.text and "配信を取り消す" not in page.text
    assert ("sato", "cancel", str(notice_id)) in audit_trail(app)


async def test_runs_show_per_recipient_results_without_personal_data(app: FastAPI) -> None:
    ids = parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato)
    with transaction(app.state.runtime.sessions) as s:
        run = NoticeRun(
            notice_id=notice_id,
            key=noticedb.run_key(notice_id=notice_id, planned_for=utcnow()),
            planned_for=utcnow(),
            status="done",
            total=3,
            sent=1,
            failed=1,
            skipped=1,
            finished_at=utcnow(),
        )
        s.add(run)
        s.flush()
        assert run.id is not None
        for external, status, reason in (
            ("U-a", "sent", None),
            ("a@example.org", "failed", "550"),
            ("U-b", "skipped", "unsubscribed"),
        ):
            channel = "email" if "@" in external else "line"
            s.add(
                NoticeDelivery(run_id=run.id, contact_id=ids[external], channel=channel, status=status, reason=reason)
            )
        run_id = run.id
    kansa = await session_for(app, "kansa")
    async with kansa:
        page = await kansa.client.get(f"/notices/{notice_id}")
        assert page.status_code == 200
        assert f"#{run_id}" in page.text and f"#{ids['U-a']}" in page.text and f"#{ids['a@example.org']}" in page.text
        assert "配信停止済み" in page.text and "550" in page.text and "失敗" in page.text
        assert no_personal_data(page.text)
        failed = await kansa.client.get(f"/notices/{notice_id}", params={"run": run_id, "state": "failed"})
        assert f"#{ids['a@example.org']}" in failed.text and f"<td>#{ids['U-a']}</td>" not in failed.text
        listed = await kansa.client.get("/notices")
        row = listed.text.split(f'href="/notices/{notice_id}"', 1)[1].split("</tr>", 1)[0]
        assert "<td>1</td>" in row


async def test_roles_and_csrf(app: FastAPI) -> None:
    parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato)
        forged = await sato.client.post("/notices", data={**form(), "csrf_token": "forged"})
        assert forged.status_code == 403
        assert (await sato.client.post(f"/notices/{notice_id}/submit", data={})).status_code == 403
        assert 'href="/notices"' in (await sato.client.get("/cases")).text
    yamada = await session_for(app, "yamada")
    async with yamada:
        for url in ("/notices", "/notices/new", f"/notices/{notice_id}"):
            assert (await yamada.client.get(url)).status_code == 403
        assert (await yamada.post("/notices", form())).status_code == 403
        assert 'href="/notices"' not in (await yamada.client.get("/cases")).text
    kansa = await session_for(app, "kansa")
    async with kansa:
        page = await kansa.client.get(f"/notices/{notice_id}")
        assert page.status_code == 200 and 'method="post" action="/notices' not in page.text
        assert "お知らせを作成" not in (await kansa.client.get("/notices")).text
        assert (await kansa.client.get("/notices/new")).status_code == 403
        assert (await kansa.post("/notices", form())).status_code == 403
        assert (await kansa.post(f"/notices/{notice_id}/cancel")).status_code == 403
        assert (await kansa.client.get("/notices/99999")).status_code == 404
    with app.state.runtime.sessions() as s:
        views = [e for e in staffdb.audit_entries(s, record_type="notice", limit=500) if e.action == "view"]
    assert {e.actor for e in views} >= {"kansa"}


async def test_preview_shows_line_messages_against_the_monthly_quota(settings: Settings) -> None:
    from bot.settings import LineSettings
    from tests.fakes.line_api import SECRET, FakeLineAPI

    with FakeLineAPI() as fake:
        fake.quota = 1000
        line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        s = staff_settings(settings).model_copy(update={"line": line})
        rt = bootstrap(s, migrate=False)
        try:
            make_staff(rt.sessions, "sato", "concierge")
            parents(rt.sessions)
            async with console_app(s, rt) as app:
                sato = await session_for(app, "sato")
                async with sato:
                    notice_id = await compose(sato)
                    page = await sato.client.get(f"/notices/{notice_id}")
                    assert 'data-testid="line-messages">3通' in page.text  # one opt-out: multicast to 3
                    assert 'data-testid="line-remaining">1000通' in page.text and "上限 1000通" in page.text
                    assert "今月の残りを超えています" not in page.text
                    fake.quota = 2
                    tight = await sato.client.get(f"/notices/{notice_id}")
                    assert 'data-testid="line-remaining">2通' in tight.text and "今月の残りを超えています" in tight.text
                    fake.quota = None
                    unlimited = await sato.client.get(f"/notices/{notice_id}")
                    assert "今月の上限：なし" in unlimited.text
                    email_only = await compose(sato, channel="email")
                    mail = await sato.client.get(f"/notices/{email_only}")
                    assert "LINEのメッセージ数" not in mail.text
        finally:
            rt.close()


async def test_approval_and_cancel_write_the_job_when_a_separate_process_runs_jobs(settings: Settings) -> None:
    """Scheduler mode "external": the web process does not run jobs but still writes the notice's job to
    the shared store, where `concierge scheduler` picks it up; a cancel removes it."""
    from scheduler.jobs import build_service
    from scheduler.notices import job_id

    base = staff_settings(settings)
    s = base.model_copy(update={"scheduler": base.scheduler.model_copy(update={"mode": "external"})})
    rt = bootstrap(s, migrate=False)
    try:
        make_staff(rt.sessions, "sato", "concierge")
        make_staff(rt.sessions, "boss", "supervisor")
        parents(rt.sessions)
        async with console_app(s, rt) as app:
            assert app.state.scheduler is None
            sato = await session_for(app, "sato")
            boss = await session_for(app, "boss")
            async with sato, boss:
                notice_id = await compose(sato, when="at", send_at="2030-01-15T10:00")
                await sato.post(f"/notices/{notice_id}/submit")
                store = build_service(s, rt.sessions)
                try:
                    assert store.get(job_id(notice_id)) is None  # nothing before approval
                    await boss.post(f"/notices/{notice_id}/approve")
                    job = store.get(job_id(notice_id))
                    assert job is not None and job.next_run_time is not None
                    assert job.next_run_time.astimezone(dt.UTC) == dt.datetime(2030, 1, 15, 1, 0, tzinfo=dt.UTC)
                    await sato.post(f"/notices/{notice_id}/cancel")
                    assert store.get(job_id(notice_id)) is None
                finally:
                    store.stop()
    finally:
        rt.close()


async def test_an_approved_notice_goes_out_through_the_running_scheduler(settings: Settings) -> None:
    """Mode "auto": the web process runs the jobs; "send now" goes out right after the approval, and the
    notice page then shows the run and each recipient's result."""
    from bot.settings import LineSettings
    from tests.e2e.kit import until
    from tests.fakes.line_api import SECRET, FakeLineAPI

    with FakeLineAPI() as fake:
        line = LineSettings(channel_secret=SECRET, channel_access_token=fake.token, api_base_url=fake.url)
        base = staff_settings(settings)
        sched = base.scheduler.model_copy(update={"mode": "auto", "poll_seconds": 0.2, "retry_seconds": 0.2})
        s = base.model_copy(update={"line": line, "scheduler": sched})
        rt = bootstrap(s, migrate=False)
        try:
            make_staff(rt.sessions, "sato", "concierge")
            make_staff(rt.sessions, "boss", "supervisor")
            ids = parents(rt.sessions)
            async with console_app(s, rt) as app:
                await until(lambda: app.state.scheduler.is_leader, timeout=20)
                sato = await session_for(app, "sato")
                boss = await session_for(app, "boss")
                async with sato, boss:
                    notice_id = await compose(sato, channel="line")
                    await sato.post(f"/notices/{notice_id}/submit")
                    await boss.post(f"/notices/{notice_id}/approve")
                    await until(lambda: len(fake.multicast_ids()) >= 3, timeout=30)
                    assert sorted(fake.multicast_ids()) == sorted(LINE_IDS[n] for n in ("U-a", "U-b", "U-c"))
                    await until(lambda: status_of(app, notice_id) == NoticeStatus.SENT, timeout=30)
                    page = await sato.client.get(f"/notices/{notice_id}")
                    assert "送信済み" in page.text and f"<td>#{ids['U-a']}</td>" in page.text
                    assert no_personal_data(page.text)
        finally:
            rt.close()


async def test_without_required_approval_the_author_chooses_per_notice(settings: Settings) -> None:
    """When the deployment does not require approval (NOTICES__REQUIRE_APPROVAL=false), the form offers the
    per-notice choice; a notice sent without approval is scheduled on submit and audited as a send."""
    base = staff_settings(settings)
    s = base.model_copy(update={"notices": base.notices.model_copy(update={"require_approval": False})})
    rt = bootstrap(s, migrate=False)
    try:
        make_staff(rt.sessions, "sato", "concierge")
        parents(rt.sessions)
        async with console_app(s, rt) as app:
            sato = await session_for(app, "sato")
            async with sato:
                assert 'name="requires_approval"' in (await sato.client.get("/notices/new")).text
                direct = await compose(sato)  # the box left unticked
                page = await sato.client.get(f"/notices/{direct}")
                assert "配信する" in page.text and "送信を申請" not in page.text
                r = await sato.post(f"/notices/{direct}/submit")
                assert "msg=scheduled" in r.headers["location"]
                assert status_of(app, direct) == NoticeStatus.SCHEDULED
                checked = await compose(sato, requires_approval="1")
                await sato.post(f"/notices/{checked}/submit")
                assert status_of(app, checked) == NoticeStatus.AWAITING_APPROVAL
            assert ("sato", "send", str(direct)) in audit_trail(app)
    finally:
        rt.close()


async def test_a_notice_whose_deliveries_all_failed_is_shown_failed_and_resent(app: FastAPI) -> None:
    ids = parents(app.state.runtime.sessions)
    sato = await session_for(app, "sato")
    async with sato:
        notice_id = await compose(sato)
    with transaction(app.state.runtime.sessions) as s:
        notice = noticedb.get_notice(s, notice_id=notice_id)
        assert notice is not None
        notice.status = NoticeStatus.SENT
        s.add(notice)
        run = NoticeRun(
            notice_id=notice_id,
            key=noticedb.run_key(notice_id=notice_id, planned_for=utcnow()),
            planned_for=utcnow(),
            status="done",
            total=1,
            failed=1,
            finished_at=utcnow(),
        )
        s.add(run)
        s.flush()
        assert run.id is not None
        batch = NoticeBatch(run_id=run.id, channel="email", mode="email", retry_key="k-all-failed", status="failed")
        s.add(batch)
        s.flush()
        s.add(
            NoticeDelivery(
                run_id=run.id,
                contact_id=ids["a@example.org"],
                channel="email",
                status="failed",
                reason="550",
                batch_id=batch.id,
            )
        )
        run_id = run.id
    kansa = await session_for(app, "kansa")
    async with kansa:
        listed = await kansa.client.get("/notices")
        row = listed.text.split(f'href="/notices/{notice_id}"', 1)[1].split("</tr>", 1)[0]
        assert "送信失敗" in row and "送信済み</span>" not in row
        page = await kansa.client.get(f"/notices/{notice_id}")
        assert 'data-testid="notice-status">送信失敗' in page.text
        assert "/resend" not in page.text  # the auditor reads only
    async with await session_for(app, "sato") as sato:
        page = await sato.client.get(f"/notices/{notice_id}")
        assert f'action="/notices/{notice_id}/runs/{run_id}/resend"' in page.text
        r = await sato.post(f"/notices/{notice_id}/runs/{run_id}/resend")
        assert r.status_code == 303 and r.headers["location"] == f"/notices/{notice_id}?msg=resent"
    assert ("sato", "resend", str(notice_id)) in audit_trail(app)

"""Editing the live KB in the console, against the real app on both databases: a saved edit is a revision
the bot answers with at once; the checks of `kb check` refuse a conflicting question with a clear message;
「試してみる」 compares the answer now with the draft's; revisions roll back one entry or the whole KB; with
approval required an edit waits for another supervisor; auditors and assistants only read. All audited."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bot.runtime import Runtime
from bot.settings import Settings
from storage import kb as kbdb
from storage import staff as staffdb
from storage.db import transaction
from tests.bot.test_kb_live import entry_form
from tests.e2e.kit import session_for, staffed_console

ENTRY = "nursery-application"
QUESTION = "保育園の申し込み方法を教えてください"
MARK = "（この一文は今日の変更で加わりました）"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    accounts = (
        ("boss", "supervisor"),
        ("boss2", "supervisor"),
        ("kansa", "auditor"),
        ("sato", "concierge"),
        ("yamada", "assistant"),
    )
    async with staffed_console(settings, *accounts) as a:
        yield a


def _rt(app: FastAPI) -> Runtime:
    rt: Runtime = app.state.runtime
    return rt


def _audited(app: FastAPI, action: str) -> list[staffdb.AuditEntry]:
    with transaction(_rt(app).sessions) as s:
        return [a for a in staffdb.audit_entries(s, record_type="kb") if a.action == action]


async def test_a_saved_edit_is_a_revision_answered_at_once(app: FastAPI) -> None:
    rt = _rt(app)
    entry = rt.kb.entries[ENTRY]
    sato = await session_for(app, "sato")
    async with sato:
        page = await sato.client.get(f"/kb/{ENTRY}")
        assert f'href="/kb/{ENTRY}/edit"' in page.text
        editor = await sato.client.get(f"/kb/{ENTRY}/edit")
        assert editor.status_code == 200 and entry.answer["ja"] in editor.text
        form = entry_form(entry, a_ja=entry.answer["ja"] + MARK, comment="説明を足す")
        saved = await sato.post(f"/kb/{ENTRY}/edit", form)
        assert saved.status_code == 303 and saved.headers["location"] == f"/kb/{ENTRY}?msg=saved"
        shown = await sato.client.get(saved.headers["location"])
        assert "保存しました" in shown.text and MARK in shown.text
        tried = await sato.client.get("/kb/try", params={"q": QUESTION})
        assert MARK in tried.text
        unchanged = await sato.post(f"/kb/{ENTRY}/edit", form)
        assert unchanged.headers["location"] == f"/kb/{ENTRY}?msg=unchanged"
    assert MARK in rt.kb.entries[ENTRY].answer["ja"]
    assert MARK in rt.engine.kb.entries[ENTRY].answer["ja"]
    assert rt.live.revision == 2
    with transaction(rt.sessions) as s:
        (revision, _seed) = kbdb.revisions(s)
    assert (revision.staff_name, revision.comment, revision.change) == ("sato", "説明を足す", "edit")
    (edit,) = _audited(app, "edit")
    assert (edit.actor, edit.record_id, edit.detail) == ("sato", f"entry:{ENTRY}", "revision 2")


async def test_a_question_matching_another_entry_is_refused_with_a_clear_message(app: FastAPI) -> None:
    rt = _rt(app)
    entry = rt.kb.entries[ENTRY]
    other = rt.kb.entries["child-allowance-payday"]
    stolen = other.questions["ja"][0]
    questions = "\n".join([*entry.questions["ja"], stolen])
    sato = await session_for(app, "sato")
    async with sato:
        refused = await sato.post(f"/kb/{ENTRY}/edit", entry_form(entry, q_ja=questions))
        assert refused.status_code == 422
        assert f"この質問「{stolen}」は別の項目「{stolen}」（child-allowance-payday）に一致します" in refused.text
        assert "保存できません" in refused.text
        too_long = await sato.post(f"/kb/{ENTRY}/edit", entry_form(entry, a_ja="あ" * 450))
        assert too_long.status_code == 422 and "450文字あります。400文字以内" in too_long.text
        phone = await sato.post(f"/kb/{ENTRY}/edit", entry_form(entry, a_ja="お電話は 0138-99-9999 へ。"))
        assert "電話番号 0138-99-9999 は、どの問い合わせ先にもありません" in phone.text
        no_en = await sato.post(f"/kb/{ENTRY}/edit", entry_form(entry, a_en=""))
        assert "回答（英語）がありません" in no_en.text or "回答（en）がありません" in no_en.text
    assert rt.live.revision == 1
    assert rt.kb.entries[ENTRY] == entry


async def test_trying_a_draft_shows_the_answer_now_and_with_the_draft(app: FastAPI) -> None:
    rt = _rt(app)
    entry = rt.kb.entries[ENTRY]
    sato = await session_for(app, "sato")
    async with sato:
        form = entry_form(entry, a_ja=entry.answer["ja"] + MARK, action="try", try_q=QUESTION)
        page = await sato.post(f"/kb/{ENTRY}/edit", form)
    assert page.status_code == 200
    assert "今の答え" in page.text and "下書きでの答え" in page.text
    assert page.text.count(MARK) >= 2  # the textarea and the draft's reply, not the answer now
    assert rt.live.revision == 1 and MARK not in rt.kb.entries[ENTRY].answer["ja"]


async def test_a_new_entry_and_a_new_contact(app: FastAPI) -> None:
    rt = _rt(app)
    sato = await session_for(app, "sato")
    async with sato:
        contact = {
            "contact_id": "test_madoguchi",
            "name_ja": "テスト窓口",
            "name_en": "Test Desk",
            "phone": "0138-11-2222",
            "hours_ja": "平日 9:00〜17:00",
            "hours_en": "Weekdays 9:00-17:00",
        }
        saved = await sato.post("/kb/contacts/new", contact)
        assert saved.status_code == 303, saved.text
        assert "test_madoguchi" in rt.kb.contacts
        form = {
            "entry_id": "test-new-entry",
            "topic": rt.kb.entries[ENTRY].topic,
            "q_ja": "きりんの塗り絵はどこでもらえますか\nきりんの塗り絵がほしい",
            "a_ja": "テスト窓口でお渡しします。電話 0138-11-2222。",
            "q_en": "Where can I get the giraffe colouring sheet?",
            "a_en": "Ask the Test Desk.",
            "contacts": ["test_madoguchi"],
            "source_url": "https://www.city.hakodate.hokkaido.jp/",
            "source_checked": "2026-11-30",
            "open_data": "1",
            "action": "save",
        }
        created = await sato.post("/kb/new", form)
        assert created.status_code == 303, created.text[-3000:]
        again = await sato.post("/kb/new", form)
        assert again.status_code == 422 and "すでにあります" in again.text
    assert rt.kb.entries["test-new-entry"].contacts == ["test_madoguchi"]
    decision = rt.engine.classify("きりんの塗り絵はどこでもらえますか")
    assert decision.entry_id == "test-new-entry"


async def test_revisions_roll_back_one_entry_or_the_whole_kb(app: FastAPI) -> None:
    rt = _rt(app)
    first = rt.kb.entries[ENTRY]
    second = rt.kb.entries["child-allowance-payday"]
    sato = await session_for(app, "sato")
    async with sato:
        await sato.post(f"/kb/{ENTRY}/edit", entry_form(first, a_ja=first.answer["ja"] + MARK))
        ja2 = second.answer["ja"] + "（追記）"
        await sato.post(f"/kb/{second.id}/edit", entry_form(second, a_ja=ja2))
        assert rt.live.revision == 3
        listing = await sato.client.get("/kb/revisions")
        assert listing.status_code == 200 and "全体をこの時点に戻す" in listing.text
        diff = await sato.client.get("/kb/revisions/2")
        assert '<span class="add">+' in diff.text and MARK in diff.text
        history = await sato.client.get(f"/kb/{ENTRY}/history")
        assert "リビジョン2" in history.text
        one = await sato.post(f"/kb/revisions/1/rollback/entry/{ENTRY}")
        assert one.headers["location"] == "/kb/revisions?msg=rolled_back"
        assert rt.kb.entries[ENTRY] == first and rt.kb.entries[second.id].answer["ja"] == ja2
        whole = await sato.post("/kb/revisions/1/rollback")
        assert whole.headers["location"] == "/kb/revisions?msg=rolled_back"
    assert rt.kb.entries[second.id] == second and rt.live.revision == 5
    details = [a.record_id for a in _audited(app, "rollback")]
    assert details == ["all", f"entry:{ENTRY}"]  # newest first


async def test_with_approval_required_an_edit_waits_for_another_supervisor(app: FastAPI) -> None:
    rt = _rt(app)
    entry = rt.kb.entries[ENTRY]
    boss, boss2, sato = [await session_for(app, u) for u in ("boss", "boss2", "sato")]
    async with boss, boss2, sato:
        assert (await sato.post("/kb/settings", {"require_approval": "1"})).status_code == 403
        assert (await boss.post("/kb/settings", {"require_approval": "1"})).status_code == 303
        saved = await boss2.post(f"/kb/{ENTRY}/edit", entry_form(entry, a_ja=entry.answer["ja"] + MARK))
        assert saved.headers["location"] == f"/kb/{ENTRY}?msg=pending"
        assert rt.live.revision == 1 and MARK not in rt.kb.entries[ENTRY].answer["ja"]
        with transaction(rt.sessions) as s:
            (proposal,) = kbdb.pending(s)
        page = await boss2.client.get("/kb/pending")
        assert "自分の編集は承認できません" in page.text
        assert (await boss2.post(f"/kb/pending/{proposal.id}/approve")).status_code == 403
        assert (await sato.post(f"/kb/pending/{proposal.id}/approve")).status_code == 403
        approved = await boss.post(f"/kb/pending/{proposal.id}/approve")
        assert approved.headers["location"] == "/kb/pending?msg=approved"
    assert MARK in rt.kb.entries[ENTRY].answer["ja"] and rt.live.revision == 2
    with transaction(rt.sessions) as s:
        (revision, _seed) = kbdb.revisions(s)
    assert (revision.change, revision.staff_name) == ("approve", "boss")
    assert [a.actor for a in _audited(app, "approve")] == ["boss"]
    assert [a.actor for a in _audited(app, "propose")] == ["boss2"]


async def test_auditors_and_assistants_read_but_do_not_edit(app: FastAPI) -> None:
    rt = _rt(app)
    entry = rt.kb.entries[ENTRY]
    for who in ("kansa", "yamada"):
        login = await session_for(app, who)
        async with login:
            assert (await login.client.get(f"/kb/{ENTRY}/edit")).status_code == 403, who
            assert (await login.client.get("/kb/new")).status_code == 403, who
            assert (await login.post(f"/kb/{ENTRY}/edit", entry_form(entry, a_ja="書き換え"))).status_code == 403
            assert (await login.post("/kb/revisions/1/rollback")).status_code == 403, who
            assert (await login.client.get("/kb/revisions")).status_code == 200, who
            assert (await login.client.get("/kb/revisions/1")).status_code == 200, who
            page = await login.client.get(f"/kb/{ENTRY}")
            assert f'href="/kb/{ENTRY}/edit"' not in page.text
    assert rt.live.revision == 1

"""/feedback against the real app on SQLite and PostgreSQL: similar questions grouped with what the bot did;
concierges and supervisors act, auditors read, assistants have no access; 「例文として追加」 changes the next
answer at once (and a conflicting question is refused in Japanese); a draft entry comes out as checked YAML;
every action is audited without the question text."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from sqlmodel import select

from bot.settings import Settings
from knowledge.models import Entry
from storage import feedback as store
from storage import kb as kbdb
from storage.models import FaqFeedback, FeedbackStatus
from storage.staff import AuditEntry
from tests.dialog import Dialog
from tests.e2e.kit import session_for, staffed_console

FALLBACK = "ベビーカーを借りられる場所は"  # not answered by the sample KB (a fallback)
TARGET = "indoor-play"


@pytest.fixture
def kb_copy(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "kb"
    shutil.copytree(settings.kb_path, folder)
    return settings.model_copy(update={"kb_path": folder})


@pytest.fixture
async def app(kb_copy: Settings) -> AsyncIterator[FastAPI]:
    accounts = (("boss", "supervisor"), ("kansa", "auditor"), ("sato", "concierge"), ("yamada", "assistant"))
    async with staffed_console(kb_copy, *accounts) as a:
        yield a


def ask(app: FastAPI, *questions: str) -> None:
    d = Dialog(app.state.runtime.engine, sender=f"p-{len(questions)}-{questions[0][:3]}")
    for q in questions:
        d.send(q)


def open_ids(app: FastAPI) -> list[int]:
    with app.state.runtime.sessions() as s:
        return [r.id for r in store.list_open(s)]


async def test_similar_questions_are_grouped_and_roles_are_kept(app: FastAPI) -> None:
    ask(app, FALLBACK)
    ask(app, "ベビーカーを借りられる場所はありますか")
    ask(app, "公園の遊具が壊れています")
    for who in ("boss", "sato", "kansa"):
        login = await session_for(app, who)
        async with login:
            page = await login.client.get("/feedback")
        assert page.status_code == 200, who
        assert page.text.count('data-testid="feedback-group"') == 2
        assert "2件" in page.text and "候補を示して聞き返した" in page.text and "答えられなかった" in page.text
        assert ('action="/feedback/example"' in page.text) == (who != "kansa")
        assert 'href="/feedback"' in page.text  # in the navigation
    yamada = await session_for(app, "yamada")
    async with yamada:
        assert (await yamada.client.get("/feedback")).status_code == 403
        assert 'href="/feedback"' not in (await yamada.client.get("/kb")).text
        refused = await yamada.client.post(
            "/feedback/dismiss", data={"csrf_token": yamada.csrf, "ids": ",".join(map(str, open_ids(app)))}
        )
        assert refused.status_code == 403
    kansa = await session_for(app, "kansa")
    async with kansa:
        refused = await kansa.client.post(
            "/feedback/dismiss", data={"csrf_token": kansa.csrf, "ids": ",".join(map(str, open_ids(app)))}
        )
        assert refused.status_code == 403
    assert len(open_ids(app)) == 3


async def test_adding_an_example_changes_the_next_answer_at_once(app: FastAPI, kb_copy: Settings) -> None:
    rt = app.state.runtime
    assert rt.engine.classify(FALLBACK).action in ("clarify", "fallback")  # not answered yet
    ask(app, FALLBACK)
    ids = ",".join(map(str, open_ids(app)))
    sato = await session_for(app, "sato")
    async with sato:
        done = await sato.client.post(
            "/feedback/example",
            data={"csrf_token": sato.csrf, "ids": ids, "entry_id": TARGET, "question": FALLBACK, "lang": "ja"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/feedback?done=example"
        page = await sato.client.get(done.headers["location"])
        assert "例文として追加しました" in page.text and 'data-testid="feedback-group"' not in page.text
    decision = rt.engine.classify(FALLBACK)
    assert (decision.action, decision.entry_id) == ("answer", TARGET)
    d = Dialog(rt.engine, sender="next-parent")
    (reply, *_) = d.send(FALLBACK)
    assert reply.entry_id == TARGET
    with rt.sessions() as s:
        stored = kbdb.get_item(s, kind=kbdb.ENTRY, item_id=TARGET)
        (revision, *_) = kbdb.revisions(s, limit=1)
    assert stored is not None and FALLBACK in stored["questions"]["ja"], "a revision of the live KB"
    assert (revision.staff_name, revision.comment) == ("sato", "FAQフィードバックから例文を追加")
    with rt.sessions() as s:
        (row,) = s.exec(select(FaqFeedback).where(FaqFeedback.status != FeedbackStatus.HELD)).all()
        audit = s.exec(select(AuditEntry).where(AuditEntry.record_type == "faq_feedback")).all()
    assert (row.status, row.used_entry) == ("used", TARGET)
    assert [a.action for a in audit if a.action != "view"] == ["add_example"]
    assert all(FALLBACK not in (a.detail or "") and "ベビーカー" not in (a.detail or "") for a in audit)


async def test_a_conflicting_question_is_refused_with_a_clear_message(app: FastAPI, kb_copy: Settings) -> None:
    rt = app.state.runtime
    question = "一時預かりの料金はいくら？"  # temporary-care-fee's own example
    ask(app, "公園の遊具が壊れています")
    before = rt.kb.entries["library-storytime"].questions
    with rt.sessions() as s:
        latest = kbdb.latest_revision(s)
    sato = await session_for(app, "sato")
    async with sato:
        page = await sato.client.post(
            "/feedback/example",
            data={
                "csrf_token": sato.csrf,
                "ids": ",".join(map(str, open_ids(app))),
                "entry_id": "library-storytime",
                "question": question,
                "lang": "ja",
            },
        )
    assert page.status_code == 200
    assert "例文として追加できません" in page.text and "temporary-care-fee" in page.text
    assert rt.kb.entries["library-storytime"].questions == before
    with rt.sessions() as s:
        assert kbdb.latest_revision(s) == latest, "no revision written"
    assert rt.engine.classify(question).entry_id == "temporary-care-fee"
    assert len(open_ids(app)) == 1, "the feedback stays open"


async def test_dismiss_and_draft_a_new_entry(app: FastAPI) -> None:
    ask(app, "公園の遊具が壊れています")
    ask(app, FALLBACK)
    first, second = open_ids(app)
    boss = await session_for(app, "boss")
    async with boss:
        form = await boss.client.get("/feedback/draft", params={"ids": str(first)})
        assert form.status_code == 200 and FALLBACK in form.text
        bad = await boss.client.post(
            "/feedback/draft",
            data={"csrf_token": boss.csrf, "ids": str(first), "entry_id": "indoor-play", "topic": "", "questions": ""},
        )
        assert "すでに使われています" in bad.text and "分野を選んでください" in bad.text
        made = await boss.client.post(
            "/feedback/draft",
            data={
                "csrf_token": boss.csrf,
                "ids": str(first),
                "entry_id": "stroller-rental",
                "topic": "support_center_playroom",
                "lang": "ja",
                "questions": f"{FALLBACK}\nベビーカーの貸し出しはありますか",
                "answer": "キッズプラザではベビーカーの貸し出しはしていません。",
                "url": "https://hakodate-miraiproject.jp/kidsplaza-kosodate",
                "contact": "concierge",
            },
        )
        assert made.status_code == 200 and 'data-testid="draft-yaml"' in made.text, made.text[-2000:]
        dismissed = await boss.client.post("/feedback/dismiss", data={"csrf_token": boss.csrf, "ids": str(second)})
        assert dismissed.status_code == 303
    snippet = made.text.split('data-testid="draft-yaml">', 1)[1].split("</pre>", 1)[0]
    import html

    (entry,) = yaml.safe_load(html.unescape(snippet))
    parsed = Entry.model_validate(entry)
    assert parsed.id == "stroller-rental" and parsed.questions["ja"][0] == FALLBACK
    assert open_ids(app) == [first]
    with app.state.runtime.sessions() as s:
        actions = [a.action for a in s.exec(select(AuditEntry).where(AuditEntry.record_type == "faq_feedback"))]
    assert {"draft_view", "draft_entry", "dismiss"} <= set(actions)


async def test_the_monthly_report_shows_questions_not_answered_and_helpful_rates(app: FastAPI) -> None:
    ask(app, "公園の遊具が壊れています")
    rt = app.state.runtime
    d = Dialog(rt.engine, sender="voter")
    d.send("一時預かりの料金は？")
    d.send("[helpful:up:temporary-care-fee]")
    month = f"{d.now:%Y-%m}"
    boss = await session_for(app, "boss")
    async with boss:
        page = await boss.client.get("/reports", params={"month": month})
        download = await boss.client.get(f"/reports/{month}.csv")
    assert 'data-testid="faq-feedback"' in page.text and "答えられなかった質問：1件" in page.text
    assert "一時預かりの料金はいくら？" in page.text and "100%" in page.text
    body = download.content.decode("utf-8-sig")
    assert "答えられなかった質問,件数,1" in body and "役に立った割合,temporary-care-fee,1.000" in body

"""FAQ feedback through the real engine on SQLite and PostgreSQL: what is kept (fallback, clarify, an answer
followed by 「違う」, a person or 👎), redacted before it is written, never a crisis message, never linked to a
contact, purged after 90 days; and the 👍/👎 buttons through the real LINE adapter and the fake LINE API."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.engine import Engine
from handlers.feedback import is_wrong
from handlers.lifecycle import purge_records, sweep_records
from scheduler.jobs import retention
from storage import feedback as store
from storage.models import ConversationState, FaqFeedback, FaqVote, FeedbackStatus, utcnow
from tests.dialog import Dialog, verify_dialog
from tests.fakes.line_api import FakeLineAPI, LineHarness, user_id
from tests.handlers.dialog_kit import rows


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


def kept(runtime: Runtime) -> list[FaqFeedback]:
    return [r for r in rows(runtime, FaqFeedback) if r.status != FeedbackStatus.HELD]


def test_a_fallback_is_kept_redacted_with_what_the_bot_did(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("山田花子です。公園の遊具が壊れています、090-1234-5678に電話ください", "fallback")])
    (row,) = kept(runtime)
    assert row.kind == "fallback" and row.lang == "ja" and row.entry_id is None
    assert "山田" not in row.question and "花子" not in row.question and "090" not in row.question
    assert "〔名前〕" in row.question and "〔電話番号〕" in row.question and "遊具" in row.question


def test_a_clarify_is_kept_with_the_entries_offered(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("子どもの服を安く手に入れたい", "clarify")])
    (row,) = kept(runtime)
    assert row.kind == "clarify" and row.question == "子どもの服を安く手に入れたい"
    assert row.candidates and all(c in engine.kb.entries for c in row.candidates.split(","))


def test_an_answer_followed_by_chigau_keeps_the_question_with_the_entry(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("キッズプラザの駐車場は何台", "answer#kidsplaza-fees"),
            ("違います", "info~別の言葉"),
        ],
    )
    (row,) = kept(runtime)
    assert (row.kind, row.entry_id, row.question) == ("wrong", "kidsplaza-fees", "キッズプラザの駐車場は何台")
    assert all(s.feedback_id is None for s in rows(runtime, ConversationState))


def test_an_answer_followed_by_a_request_for_a_person_is_kept(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("キッズプラザの駐車場は何台", "answer"), ("相談員と話したい", "consent")])
    (row,) = kept(runtime)
    assert (row.kind, row.entry_id) == ("person", "kidsplaza-fees")


def test_a_good_answer_keeps_nothing_and_its_held_question_goes_with_the_next_turn(
    engine: Engine, runtime: Runtime
) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("一時預かりの料金は？", "answer")])
    (held,) = rows(runtime, FaqFeedback)
    assert held.status == FeedbackStatus.HELD
    (state,) = rows(runtime, ConversationState)
    assert state.feedback_id == held.id
    verify_dialog(d, [("ありがとう", "info"), ("絵本の読み聞かせ会はありますか", "answer")])
    assert kept(runtime) == []
    assert len(rows(runtime, FaqFeedback)) == 1, "only the newest answer's question waits"


@pytest.mark.parametrize(
    "message",
    [
        "もう死にたい。公園の遊具が壊れています",  # urgent
        "夫にぶたれて顔が腫れている",  # urgent (dv)
        "育児に疲れて限界です。公園の遊具はどこに言えば",  # distress
        "夜泣きが続いて限界です。一時預かりの料金を教えてください",  # distress with an FAQ answer
    ],
)
def test_crisis_messages_are_never_kept(engine: Engine, runtime: Runtime, message: str) -> None:
    d = Dialog(engine)
    d.send(message)
    d.send("違う")
    d.send("[helpful:down:temporary-care-fee]")
    assert rows(runtime, FaqFeedback) == []


def test_a_crisis_word_in_an_ordinary_looking_question_is_left_out(engine: Engine) -> None:
    """The keeper refuses whatever the crisis detector or its screen flags, even where the engine answered."""
    assert engine.feedback._allowed("子どもを叩いてしまいそうで、保育園はどこ", "ja") is None
    assert engine.feedback._allowed("保育園はどこ", "ja") == "保育園はどこ"
    assert engine.feedback._allowed("Xin chào, nhà trẻ ở đâu", "vi") is None  # not a KB language


def test_the_feedback_tables_have_no_link_to_a_person(runtime: Runtime) -> None:
    personal = {"contact_id", "case_id", "user_id", "sender", "sender_id", "external_id", "sender_key", "user"}
    insp = inspect(runtime.db)
    for table in ("faqfeedback", "faqvote"):
        columns = {c["name"] for c in insp.get_columns(table)}
        assert not columns & personal, table
        assert not any("hash" in c or "contact" in c or "user" in c for c in columns), table
        assert insp.get_foreign_keys(table) == [], table
    # Nor does anything point at a kept row: the conversation state's reference is a plain id, not a key.
    fks = insp.get_foreign_keys("conversationstate")
    assert all(fk["referred_table"] != "faqfeedback" for fk in fks)


def test_feedback_goes_after_90_days_and_a_held_question_with_the_sweep(settings: Settings, runtime: Runtime) -> None:
    now = utcnow()
    with runtime.sessions() as s:
        for days in (91, 89):
            store.add(
                s,
                kind="fallback",
                question=f"{days}日前の質問",
                channel="line",
                lang="ja",
                at=now - dt.timedelta(days=days),
            )
        store.add(
            s,
            kind="answered",
            question="待っている質問",
            channel="line",
            lang="ja",
            status=FeedbackStatus.HELD,
            at=now - dt.timedelta(minutes=31),
        )
        s.commit()
    assert settings.retention.feedback_days == 90
    swept = sweep_records(runtime.sessions, retention=retention(settings), now=now)
    assert swept["faq_feedback_held"] == 1
    assert sorted(r.question for r in rows(runtime, FaqFeedback)) == ["89日前の質問", "91日前の質問"]
    counts = purge_records(runtime.sessions, retention=retention(settings), now=now)
    assert counts["faq_feedback"] == 1
    assert [r.question for r in rows(runtime, FaqFeedback)] == ["89日前の質問"]


def test_purge_older_than_n_days_spares_the_newer_ones(runtime: Runtime) -> None:
    now = utcnow()
    with runtime.sessions() as s:
        for days in (10, 3):
            store.add(
                s, kind="fallback", question=f"{days}", channel="line", lang="ja", at=now - dt.timedelta(days=days)
            )
        assert store.purge_older(s, days=5, now=now) == 1
        s.commit()
    assert [r.question for r in rows(runtime, FaqFeedback)] == ["3"]


@pytest.mark.parametrize("text", ["違う", "違います", "ちがう", "いや、違う", "それじゃない", "That's not it", "wrong"])
def test_chigau_is_read(text: str) -> None:
    assert is_wrong(text)


@pytest.mark.parametrize("text", ["違う保育園に移りたい", "保育園が違うと料金は違いますか", "no"])
def test_a_question_with_chigau_in_it_is_a_question(text: str) -> None:
    assert not is_wrong(text)


# ----- 👍/👎 through the LINE adapter and the fake LINE API


@pytest.fixture
async def harness(fake: FakeLineAPI, settings: Settings, runtime: Runtime) -> AsyncIterator[LineHarness]:
    h = LineHarness(fake, settings, runtime)
    yield h
    await h.aclose()


def quick_reply(message: dict[str, object]) -> list[tuple[str, str]]:
    qr = message.get("quickReply")
    assert isinstance(qr, dict)
    return [(item["action"]["label"], item["action"]["data"]) for item in qr["items"]]


async def test_thumbs_up_and_down_on_line_are_counted_and_a_thumbs_down_keeps_the_question(
    harness: LineHarness, fake: FakeLineAPI, runtime: Runtime
) -> None:
    user = user_id()
    await harness.send("text", user=user, text="一時預かりの料金は？")
    await harness.drain()
    last = fake.received(user)[-1].message
    buttons = quick_reply(last)
    assert ("👍 役に立った", "helpful:up:temporary-care-fee") in buttons
    assert ("👎 役に立たなかった", "helpful:down:temporary-care-fee") in buttons
    assert len(buttons) <= 13 and all(len(label) <= 20 for label, _ in buttons)

    await harness.send("postback", user=user, data="helpful:down:temporary-care-fee")
    await harness.drain()
    assert "お役に立てず" in fake.texts(user)[-1]
    (row,) = kept(runtime)
    assert (row.kind, row.entry_id, row.question, row.channel) == (
        "unhelpful",
        "temporary-care-fee",
        "一時預かりの料金は?",
        "line",
    )

    other = user_id()
    await harness.send("text", user=other, text="絵本の読み聞かせ会はありますか")
    await harness.send("postback", user=other, data="helpful:up:library-storytime")
    await harness.drain()
    assert "ありがとうございます" in fake.texts(other)[-1]
    assert len(kept(runtime)) == 1, "a 👍 keeps no question"
    votes = sorted((v.entry_id, v.helpful) for v in rows(runtime, FaqVote))
    assert votes == [("library-storytime", True), ("temporary-care-fee", False)]
    with runtime.sessions() as s:
        counts = {
            v.entry_id: (v.helpful, v.unhelpful, v.rate)
            for v in store.counts_per_entry(s, start=utcnow() - dt.timedelta(hours=1), end=utcnow())
        }
        held = s.exec(select(FaqFeedback).where(FaqFeedback.status == FeedbackStatus.HELD)).all()
    assert counts == {"temporary-care-fee": (0, 1, 0.0), "library-storytime": (1, 0, 1.0)}
    assert held == [], "the 👍 turn released the held question"


async def test_email_answers_carry_no_thumbs(engine: Engine) -> None:
    reply = engine.replies_for(engine.classify("一時預かりの料金は？"), channel="email")[0]
    assert not any(c.data.startswith("helpful:") for c in reply.choices)

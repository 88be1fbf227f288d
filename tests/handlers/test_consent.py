"""Consent only by a clear yes, in every channel: the one decision (yes / no / unclear) and the dialogs."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from handlers.engine import Engine
from handlers.texts import ConsentAnswer, PhraseBook
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from storage import crud
from storage.models import Case, ConsentRecord, Message, PendingMessage
from tests.dialog import Dialog, verify_dialog
from tests.handlers.dialog_kit import rows


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


@pytest.fixture(scope="module")
def book(kb: KnowledgeBase) -> PhraseBook:
    return PhraseBook(kb.phrases, Normalizer(kb.synonyms))


CLEAR_YES = [
    "はい",
    "ハイ",
    "はい。",
    "はい！",
    "はい、同意します",
    "はい、同意します。よろしくお願いします",
    "同意します",
    "同意します🙇",
    "はい（同意する）",
    "はい 同意します",
    "はい、お願いします",
    "yes",
    "Yes, I agree.",
    "I agree",
    "yes please",
    "是，我同意",
    "네, 동의합니다",
    "Có, tôi đồng ý",
    "Oo, pumapayag ako",
    "Sim, concordo",
    "हो, म सहमत छु",
    "Ya, saya setuju",
    "ใช่ ยินยอมค่ะ",
]
CLEAR_NO = [
    "いいえ",
    "いいえ。",
    "いいえ、やっぱりいいです",
    "いいえ、結構です",
    "やめておきます",
    "うーん、やめておきます",
    "同意しません",
    "記録しないでください",
    "No",
    "no thanks",
    "No, I don't agree",
    "不同意",
    "아니요",
    "Không đồng ý",
    "Hindi po",
    "Não, obrigado",
    "Tidak setuju",
    "ไม่ยินยอม",
]
UNCLEAR = [
    "大丈夫です",
    "大丈夫",
    "いいです",
    "いいですよ",
    "結構です",
    "けっこうです",
    "OK",
    "ok",
    "オッケー",
    "うーん",
    "うーん…",
    "sure",
    "fine",
    "お願いします",
    "よろしくお願いします",
    "はい、でもやっぱりやめておきます",
    "Yes, but no",
    "わかりました",
]


@pytest.mark.parametrize("reply", CLEAR_YES)
def test_a_clear_yes_in_any_language_is_yes(book: PhraseBook, reply: str) -> None:
    assert book.consent_answer(reply) == ConsentAnswer.YES


@pytest.mark.parametrize("reply", CLEAR_NO)
def test_a_clear_no_in_any_language_is_no(book: PhraseBook, reply: str) -> None:
    assert book.consent_answer(reply) == ConsentAnswer.NO


@pytest.mark.parametrize("reply", UNCLEAR)
def test_words_that_often_mean_no_thanks_are_unclear(book: PhraseBook, reply: str) -> None:
    assert book.consent_answer(reply) == ConsentAnswer.UNCLEAR


def test_a_negated_yes_word_is_never_a_yes(book: PhraseBook) -> None:
    for reply in ("同意しない", "同意できません", "i do not agree", "không đồng ý", "não concordo", "tidak setuju"):
        assert book.consent_answer(reply) == ConsentAnswer.NO, reply


@pytest.mark.parametrize("unclear", ["大丈夫です", "いいです", "結構です", "OK", "うーん"])
def test_unclear_asks_once_more_with_both_buttons_then_a_yes_consents(
    engine: Engine, runtime: Runtime, unclear: str
) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("相談員と話したい", "consent"), (unclear, "consent ~記録する必要"), ("はい", "handoff")])
    again = d.transcript[1][1][0]
    assert [c.data for c in again.choices] == ["consent:yes", "consent:no"]
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["granted"]


def test_a_second_unclear_answer_is_a_no(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("大丈夫です", "consent"),
            ("いいです", "info ~はっきり + info ~記録しません"),
            ("キッズプラザの料金", "answer#kidsplaza-fees"),
        ],
    )
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["declined"]
    assert rows(runtime, Case) == [] and rows(runtime, Message) == [] and rows(runtime, PendingMessage) == []


@pytest.mark.parametrize("no", ["いいえ", "やめておきます", "いいえ、やっぱりいいです"])
def test_no_declines_and_keeps_nothing(engine: Engine, runtime: Runtime, no: str) -> None:
    verify_dialog(Dialog(engine), [("担当者と話したい", "consent"), (no, "info ~記録しません")])
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["declined"]
    assert rows(runtime, PendingMessage) == []


def test_a_question_while_consent_is_open_is_answered_and_the_question_stays_open(
    engine: Engine, runtime: Runtime
) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("キッズプラザの料金はいくらですか？", "answer#kidsplaza-fees + consent ~まだです"),
            ("はい", "handoff ~受付番号"),
        ],
    )
    (case,) = rows(runtime, Case)
    with runtime.sessions() as s:
        parent = [m.text for m in crud.transcript(s, case_id=case.id or 0) if m.author == "parent"]
    assert parent == ["相談員と話したい"], "the question asked meanwhile is not part of the consented record"


def test_a_question_about_the_record_shows_the_notice_again_without_counting(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(
        Dialog(engine),
        [
            ("相談員と話したい", "consent"),
            ("記録は誰が見るんですか？", "answer#privacy-records + consent ~まだです"),
            ("えっと、どういうことですか？", "consent ~見られる人"),
            ("大丈夫です", "consent ~記録する必要"),  # the first unclear answer: asked once more
            ("はい", "handoff"),
        ],
    )


def test_the_ledger_records_the_language_the_notice_was_shown_in(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(
        Dialog(engine, sender="vi"), [("Tôi muốn nói chuyện với nhân viên", "consent ~đồng ý"), ("có", "handoff")]
    )
    verify_dialog(Dialog(engine, sender="ja"), [("相談員と話したい", "consent"), ("[consent:yes]", "handoff")])
    ledger = {r.contact_id: (r.status, r.notice_lang) for r in rows(runtime, ConsentRecord)}
    assert sorted(ledger.values()) == [("granted", "ja"), ("granted", "vi")]


def test_a_yes_in_another_language_than_the_notice_shows_the_notice_in_that_language(
    engine: Engine, runtime: Runtime
) -> None:
    d = Dialog(engine)
    verify_dialog(
        d, [("相談員と話したい", "consent ~記録"), ("Yes, I agree", "consent ~Do you agree"), ("yes", "handoff")]
    )
    assert [(r.status, r.notice_lang) for r in rows(runtime, ConsentRecord)] == [("granted", "en")]


def test_mail_consent_reads_the_same_words(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="email", sender="parent@example.jp")
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent ~このメールで"),
            ("大丈夫です", "consent ~とだけ書いて"),
            ("はい、同意します", "handoff ~このメールで"),
        ],
    )
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["granted"]


def test_typed_yes_after_the_question_expired_is_not_consent(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    d.send("相談員と話したい")
    d.later(minutes=31)
    d.send("はい")
    assert rows(runtime, ConsentRecord) == [] and rows(runtime, Case) == []


def test_english_unclear_twice_is_a_no_and_a_question_meanwhile_is_answered(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(
        Dialog(engine),
        [
            ("Can I talk to a real person?", "consent ~Do you agree"),
            ("How much is the admission fee at Kids Plaza?", "answer#kidsplaza-fees + consent ~still need"),
            ("OK", "consent ~To be sure"),
            ("sure", "info ~clear answer + info ~Nothing will be recorded"),
        ],
    )
    assert [(r.status, r.notice_lang) for r in rows(runtime, ConsentRecord)] == [("declined", "en")]


def test_english_yes_and_no(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(Dialog(engine, sender="a"), [("talk to a person", "consent"), ("Yes, I agree.", "handoff ~case")])
    verify_dialog(Dialog(engine, sender="b"), [("talk to a person", "consent"), ("No thanks", "info ~Nothing")])
    assert sorted(r.status for r in rows(runtime, ConsentRecord)) == ["declined", "granted"]

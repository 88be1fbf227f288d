"""Manners get replies of their own and never count toward a handoff; the fallback rule; long messages."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from handlers.engine import MAX_TEXT, Engine, as_number, focus_text
from storage.models import Case, PendingMessage, StatEvent
from tests.dialog import Dialog, verify_dialog
from tests.handlers.dialog_kit import rows


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


NOT_UNDERSTOOD = ["ｘｙｚｚｙ ｑｑｑ", "ぴよぴよ ぽんぽこ", "もけもけ ぬるぽ"]


@pytest.mark.parametrize(
    ("said", "needle"),
    [
        ("こんにちは", "こんにちは"),
        ("こんにちは！", "こんにちは"),
        ("おはようございます😊", "こんにちは"),
        ("こんにちは、よろしくお願いします", "こんにちは"),
        ("はじめまして", "こんにちは"),
        ("ありがとう", "どういたしまして"),
        ("ありがとうございました。", "どういたしまして"),
        ("助かりました、ありがとうございます", "どういたしまして"),
        ("了解です", "ほかにご質問"),
        ("わかりました", "ほかにご質問"),
        ("分かりました！", "ほかにご質問"),
        ("承知しました", "ほかにご質問"),
        ("さようなら", "またいつでも"),
        ("使い方", "使い方"),
        ("ヘルプ", "相談員と話したい"),
        ("何ができますか？", "使い方"),
    ],
)
def test_japanese_manners_get_their_own_short_reply(engine: Engine, said: str, needle: str) -> None:
    verify_dialog(Dialog(engine), [(said, f"info ~{needle}")])


@pytest.mark.parametrize(
    ("said", "needle"),
    [
        ("Hello", "Hello"),
        ("hi!", "Hello"),
        ("Good morning", "Hello"),
        ("Thank you!", "welcome"),
        ("thanks a lot", "welcome"),
        ("ok", "another question"),
        ("Got it", "another question"),
        ("help", "How to use"),
    ],
)
def test_english_manners_get_their_own_short_reply(engine: Engine, said: str, needle: str) -> None:
    d = Dialog(engine)
    d.send("Hello")  # the contact's language becomes English
    verify_dialog(d, [(said, f"info ~{needle}")])


@pytest.mark.parametrize(
    ("said", "needle"),
    [
        ("Xin chào", "Xin chào"),
        ("cảm ơn", "Không có gì"),
        ("你好", "您好"),
        ("谢谢", "不客气"),
        ("謝謝", "不客氣"),
        ("안녕하세요", "안녕하세요"),
        ("감사합니다", "천만에요"),
        ("Salamat po", "Walang anuman"),
        ("Obrigada", "De nada"),
        ("Bom dia", "Olá"),
        ("नमस्ते", "नमस्ते"),
        ("Terima kasih", "Sama-sama"),
        ("สวัสดีครับ", "สวัสดี"),
    ],
)
def test_manners_in_the_languages_of_foreign_residents(engine: Engine, said: str, needle: str) -> None:
    verify_dialog(Dialog(engine), [(said, f"info ~{needle}")])


def test_a_greeting_says_which_languages_the_bot_answers_in(engine: Engine) -> None:
    (reply,) = Dialog(engine).send("Xin chào")
    assert "tiếng Nhật và tiếng Anh" in reply.text and "Tiếng Việt" in reply.text


def test_manners_never_count_toward_a_handoff(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(
        Dialog(engine),
        [
            ("こんにちは", "info"),
            ("ありがとう", "info"),
            ("よろしくお願いします", "info"),
            ("了解です", "info"),
            ("わかりました", "info"),
            ("よくある質問", "clarify ~よくある質問の例"),
            ("ヘルプ", "info"),
        ],
    )
    assert rows(runtime, Case) == [] and rows(runtime, PendingMessage) == []
    assert [e.outcome for e in rows(runtime, StatEvent)] == []


def test_a_manner_between_two_questions_not_understood_does_not_reset_them(engine: Engine) -> None:
    verify_dialog(
        Dialog(engine),
        [(NOT_UNDERSTOOD[0], "fallback"), ("ありがとう", "info"), (NOT_UNDERSTOOD[1], "fallback + consent")],
    )


def test_the_faq_menu_is_answered_by_number_or_button(engine: Engine) -> None:
    d = Dialog(engine)
    (menu,) = d.send("よくある質問")
    assert menu.kind.value == "clarify" and "1." in menu.text and "2." in menu.text
    faq = [c for c in menu.choices if c.data.startswith("faq:")]
    assert len(faq) >= 3, "a menu offers several questions, not one"
    verify_dialog(d, [("２", f"answer#{faq[1].data[4:]}")])


def test_a_greeting_before_a_question_still_answers_the_question(engine: Engine) -> None:
    verify_dialog(Dialog(engine), [("こんにちは。キッズプラザの料金を教えてください", "answer#kidsplaza-fees")])


@pytest.mark.parametrize("invalid", ["/9", "9", "９", "9番", "0"])
def test_an_invalid_choice_number_is_not_a_question_not_understood(engine: Engine, invalid: str) -> None:
    verify_dialog(
        Dialog(engine),
        [
            (NOT_UNDERSTOOD[0], "fallback"),
            ("ワクチン", "clarify"),
            (invalid, "clarify ~その番号の選択肢はありません"),
            ("2", "answer"),
        ],
    )


def test_a_number_without_a_list_is_not_counted(engine: Engine) -> None:
    verify_dialog(
        Dialog(engine),
        [(NOT_UNDERSTOOD[0], "fallback"), ("/9", "info ~番号だけでは"), (NOT_UNDERSTOOD[1], "fallback + consent")],
    )


def test_two_questions_not_understood_in_a_row_offer_a_person(engine: Engine) -> None:
    verify_dialog(Dialog(engine), [(NOT_UNDERSTOOD[0], "fallback"), (NOT_UNDERSTOOD[1], "fallback + consent")])


def test_a_successful_answer_resets_the_count(engine: Engine) -> None:
    verify_dialog(
        Dialog(engine),
        [
            (NOT_UNDERSTOOD[0], "fallback"),
            ("キッズプラザの料金", "answer#kidsplaza-fees"),
            (NOT_UNDERSTOOD[1], "fallback"),
        ],
    )


def test_a_new_conversation_after_a_silence_resets_the_count(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [(NOT_UNDERSTOOD[0], "fallback")])
    d.later(hours=2)
    verify_dialog(d, [(NOT_UNDERSTOOD[1], "fallback")])


def test_a_change_of_language_resets_the_count(engine: Engine) -> None:
    verify_dialog(
        Dialog(engine),
        [(NOT_UNDERSTOOD[0], "fallback"), ("My favourite football team lost yesterday", "fallback ~Sorry")],
    )


def test_the_fallback_and_greeting_call_the_person_a_consultant_not_a_nursery_teacher(engine: Engine) -> None:
    d = Dialog(engine)
    (fallback,) = d.send(NOT_UNDERSTOOD[0])
    assert "相談員" in fallback.text and "保育士" not in fallback.text
    assert (
        "nursery teacher" not in Dialog(engine, sender="en").send("My favourite football team lost yesterday")[0].text
    )


def test_no_fixed_text_claims_the_person_is_a_nursery_teacher() -> None:
    from handlers.texts import _tables

    for lang, table in _tables().items():
        texts = [*table.texts.values(), *(v for ch in table.channels.values() for v in ch.values())]
        assert not [x for x in texts if "保育士" in x or "nursery teacher" in x.casefold()], lang


# ----- long messages
STORY = "うちの子は2歳です。毎日いろいろあって、" * 150  # about 3,000 characters of story without a question


def test_a_question_at_the_end_of_a_long_message_is_found(engine: Engine) -> None:
    text = STORY + "キッズプラザの料金はいくらですか？"
    assert len(text) > MAX_TEXT
    verify_dialog(Dialog(engine), [(text, "info ~ご質問の部分 + answer#kidsplaza-fees")])


def test_a_question_at_the_start_of_a_long_message_is_found(engine: Engine) -> None:
    verify_dialog(Dialog(engine), [("キッズプラザの料金はいくらですか？" + STORY, "info + answer#kidsplaza-fees")])


def test_a_question_in_the_middle_of_a_long_message_is_found(engine: Engine) -> None:
    text = STORY + "キッズプラザの料金はいくらですか？" + STORY
    verify_dialog(Dialog(engine), [(text, "info + answer#kidsplaza-fees")])


def test_focus_text_reads_the_asking_sentences_or_the_start_and_end() -> None:
    assert focus_text("短い質問") == "短い質問"
    asked = focus_text(STORY + "いつですか？")
    assert asked.endswith("いつですか？") and len(asked) < 40
    plain = "あ" * 3000 + "おわり"
    read = focus_text(plain)
    assert len(read) <= MAX_TEXT + 1 and read.endswith("おわり") and read.startswith("あ")


def test_choice_numbers_in_any_width() -> None:
    assert [as_number(x) for x in ("2", "２", "2番", "2.", "/9", " 3 ", "２番です")] == [2, 2, 2, 2, 9, 3, 2]
    assert as_number("2歳の子") is None and as_number("") is None

"""Foreign-resident parents: the language is detected, and the fixed texts — greeting, consent notice and
buttons, re-ask, handoff confirmations, fallback, manners — are in that language; KB answers stay ja/en.
Also: one lookup `t(lang, key, channel=...)`, and every text that goes by mail is worded for mail."""

from __future__ import annotations

import re
import string

import pytest

from bot.runtime import Runtime
from handlers.engine import Engine
from handlers.texts import _tables, has_text, t
from handlers.types import InboundKind, InboundMessage
from knowledge.consent import load_notices
from knowledge.language import LANGUAGES, choose_language, detect_language
from knowledge.models import KnowledgeBase
from storage import crud
from storage.models import Case, ConsentRecord
from tests.dialog import Dialog, verify_dialog
from tests.handlers.dialog_kit import rows


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("児童手当はいつですか", "ja"),
        ("児童手当", "ja"),
        ("保育園 申込", "ja"),
        ("受付終了", "ja"),
        ("ほいくえん", "ja"),
        ("When is the child allowance paid?", "en"),
        ("我的孩子发烧了，怎么办？", "zh-Hans"),
        ("幼儿园什么时候报名", "zh-Hans"),
        ("我的孩子發燒了，怎麼辦？", "zh-Hant"),
        ("幼兒園什麼時候報名", "zh-Hant"),
        ("어린이집 신청은 언제예요?", "ko"),
        ("Con tôi bị sốt, tôi nên làm gì?", "vi"),
        ("Kailan po ang bayad ng child allowance?", "tl"),
        ("Quando é pago o abono de família?", "pt"),
        ("मेरो बच्चालाई ज्वरो आयो, के गर्ने?", "ne"),
        ("Kapan tunjangan anak dibayarkan?", "id"),
        ("ลูกมีไข้ ต้องทำอย่างไรคะ", "th"),
        ("🙂🙂", None),
        ("123", None),
    ],
)
def test_language_detection_by_script_then_by_lingua_for_latin_text(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang


def test_short_latin_replies_keep_the_contacts_language() -> None:
    assert detect_language("ok", known="pt") == "pt"
    assert detect_language("sim", known="pt") == "pt"
    assert detect_language("ok") == "en"
    assert detect_language("我想和工作人員談", known="zh-Hant") == "zh-Hant"  # no telling letter: kept
    assert choose_language("vi", None, LANGUAGES, "ja") == "vi"


# Every fixed text the brief names is written in every language (not borrowed from English).
REQUIRED = [
    "greeting",
    "languages",
    "consent_yes",
    "consent_no",
    "consent_retry",
    "consent_pending",
    "consent_unclear_declined",
    "declined",
    "handoff_open",
    "handoff_closed",
    "handoff_already",
    "handoff_offer",
    "fallback",
    "fallback_again",
    "kb_unavailable",
    "manner_greeting",
    "manner_thanks",
    "manner_ack",
    "manner_bye",
    "manner_help",
    "faq_menu",
    "withdrawn",
]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_required_text_is_written_in_every_language(lang: str) -> None:
    missing = [key for key in REQUIRED if not has_text(lang, key)]
    assert missing == [], f"{lang}: {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_texts_use_only_the_placeholders_of_their_japanese_original(lang: str) -> None:
    fields = string.Formatter()
    for key, text in _tables()[lang].texts.items():
        names = {f for _, f, _, _ in fields.parse(text) if f}
        original = {f for _, f, _, _ in fields.parse(t("ja", key)) if f}
        assert names <= original, (lang, key, names - original)


def test_unverified_multilingual_lines_are_not_stated() -> None:
    """よりそいホットライン's foreign-language line and DV相談+'s languages are unverified in the fact sheet."""
    for lang, table in _tables().items():
        for text in table.texts.values():
            assert "0120-279-338" not in text and "0120-279-889" not in text, lang


def test_t_prefers_the_channel_variant_and_falls_back_to_the_generic_text() -> None:
    assert "このメールで" in t("ja", "handoff_open", "email", case_id=1)
    assert "このトークで" in t("ja", "handoff_open", case_id=1)
    assert t("ja", "handoff_already", "email", case_id=1) == t("ja", "handoff_already", case_id=1)
    assert t("vi", "stale_choice") != t("en", "stale_choice")
    with pytest.raises(KeyError):
        t("ja", "no-such-key")


def test_a_text_missing_in_a_language_falls_back_to_english_so_other_parts_can_add_keys() -> None:
    # e.g. a crisis reply written only in some languages is looked up by the same codes.
    for lang in LANGUAGES:
        assert t(lang, "answer_source", url="u", checked="c")


# ----- whole conversations, one per language
CASES = [
    # lang, a question the FAQ can't answer in that language, a request for a person, a clear yes, the notice's words
    ("zh-Hans", "幼儿园什么时候报名？", "我想和工作人员谈", "是", "同意记录吗"),
    ("zh-Hant", "幼兒園什麼時候報名？", "我想和工作人員談", "是", "同意記錄嗎"),
    ("ko", "어린이집 신청은 언제예요?", "상담원과 이야기하고 싶어요", "네", "동의하십니까"),
    ("vi", "Khi nào đăng ký nhà trẻ?", "Tôi muốn nói chuyện với nhân viên", "có", "Bạn có đồng ý"),
    ("tl", "Kailan po ang pagpaparehistro sa daycare?", "Gusto ko pong makausap ang staff", "oo", "Pumapayag ka ba"),
    ("pt", "Quando é a inscrição na creche?", "Quero falar com uma pessoa, por favor", "sim", "Você concorda"),
    ("ne", "बालवाडीमा कहिले भर्ना गर्ने?", "म कर्मचारीसँग कुरा गर्न चाहन्छु", "हो", "सहमत हुनुहुन्छ"),
    ("id", "Kapan pendaftaran penitipan anak?", "Saya ingin bicara dengan petugas", "ya", "Apakah Anda setuju"),
    ("th", "สมัครเนอสเซอรี่ได้เมื่อไหร่คะ", "ขอคุยกับเจ้าหน้าที่ค่ะ", "ใช่", "ท่านยินยอม"),
]


@pytest.mark.parametrize(("lang", "question", "ask", "yes", "notice"), CASES, ids=[c[0] for c in CASES])
def test_a_foreign_resident_is_answered_and_asked_for_consent_in_their_language(
    engine: Engine, runtime: Runtime, lang: str, question: str, ask: str, yes: str, notice: str
) -> None:
    d = Dialog(engine, sender=f"parent-{lang}")
    verify_dialog(
        d,
        [
            (question, "fallback ~0138-21-3619"),  # KB answers stay ja/en: said kindly, with the interpreter desk
            (ask, f"consent ~{notice}"),
            ("OK", f"consent ~{t(lang, 'consent_retry')[:12]}"),  # unclear: asked once more, in their language
            (yes, f"handoff ~{t(lang, 'handoff_open', case_id=0)[:8]}"),
        ],
    )
    replies = [r for _, rs in d.transcript for r in rs]
    assert {r.lang for r in replies} == {lang}
    consent = d.transcript[1][1][0]
    assert [c.label for c in consent.choices] == [t(lang, "consent_yes"), t(lang, "consent_no")]
    assert [(r.status, r.notice_lang) for r in rows(runtime, ConsentRecord)] == [("granted", lang)]
    (case,) = rows(runtime, Case)
    assert case.lang == lang


def test_the_fallback_in_another_language_offers_a_person_and_two_in_a_row_ask_for_consent(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("Khi nào đăng ký nhà trẻ?", "fallback ~tiếng Nhật"),
            ("Con tôi bị sốt thì sao?", "fallback + consent ~đồng ý"),
        ],
    )
    first = d.transcript[0][1][0]
    assert any(c.data == "handoff" for c in first.choices)


def test_a_short_reply_keeps_the_language_of_the_contact(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("Quero falar com uma pessoa", "consent ~Você concorda"), ("ok", "consent ~Para ter certeza")])


def test_the_greeting_of_a_new_friend_lists_the_languages(engine: Engine) -> None:
    msg = InboundMessage("line", "U1", kind=InboundKind.FOLLOW)
    (greeting,) = engine.handle(msg)
    assert "相談員" in greeting.text and "保育士" not in greeting.text
    assert "日本語と英語" in greeting.text and "Tiếng Việt" in greeting.text and "한국어" in greeting.text


# ----- wording per channel (mail)
def _mail(engine: Engine) -> Dialog:
    return Dialog(engine, channel="email", sender="parent@example.jp")


def test_mail_clarify_asks_for_a_number_not_a_button_and_accepts_a_full_width_number(engine: Engine) -> None:
    d = _mail(engine)
    (clarify,) = d.send("ワクチン")
    assert clarify.kind.value == "clarify" and "ボタン" not in clarify.text
    option = [c.data[4:] for c in clarify.choices if c.data.startswith("faq:")][1]
    verify_dialog(d, [("２", f"answer#{option}")])


def test_mail_declined_gives_the_phone_and_the_counter_not_an_address(engine: Engine) -> None:
    d = _mail(engine)
    verify_dialog(d, [("相談員と話したい", "consent ~このメールで"), ("いいえ", "info ~窓口")])
    declined = d.transcript[-1][1][0]
    assert declined.contacts and all(c.email is None for c in declined.contacts)
    assert all(c.phone for c in declined.contacts)
    assert "メール" not in declined.text.split("。")[-2]  # "下記の電話…窓口へ", not "電話・メールで"


def test_no_mail_text_speaks_of_buttons_or_a_chat() -> None:
    chat = re.compile(r"ボタン|このトーク|このチャット|button|in this chat")
    for lang in ("ja", "en"):
        table = _tables()[lang]
        for key in table.channels["email"]:
            assert not chat.search(
                t(
                    lang,
                    key,
                    "email",
                    n=3,
                    case_id=1,
                    next_open="x",
                    hours="y",
                    transcript_years=1,
                    case_years=5,
                    office="z",
                    when="w",
                    minutes="m",
                    place="p",
                )
            ), (lang, key)


def test_no_mail_notice_speaks_of_buttons_or_a_chat() -> None:
    # The consent notice is data (knowledge/kb/consent): its mail wordings are written for a mail.
    chat = re.compile(r"ボタン|このトーク|このチャット|button|in this chat")
    notice = load_notices().current()
    for lang in ("ja", "en"):
        for wording in ("mail", "month-mail"):
            assert not chat.search(notice.text(lang, wording)), (lang, wording)  # type: ignore[arg-type]


def test_the_transcript_keeps_the_mail_wording_the_parent_received(engine: Engine, runtime: Runtime) -> None:
    d = _mail(engine)
    verify_dialog(d, [("相談員と話したい", "consent"), ("はい", "handoff ~このメールで")])
    (case,) = rows(runtime, Case)
    with runtime.sessions() as s:
        bot_lines = [m.text for m in crud.transcript(s, case_id=case.id or 0) if m.author == "bot"]
    assert bot_lines and all("このメールで" in x and "このトーク" not in x for x in bot_lines)


def test_line_keeps_the_chat_wording(engine: Engine) -> None:
    d = Dialog(engine, channel="line", sender="U2")
    verify_dialog(d, [("相談員と話したい", "consent ~このチャット"), ("はい", "handoff ~このトークで")])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_button_labels_fit_a_line_quick_reply(lang: str) -> None:
    for key in ("handoff_offer", "consent_yes", "consent_no"):
        assert len(t(lang, key)) <= 20, (lang, key)


def test_the_language_samples_are_all_told_apart() -> None:
    from pathlib import Path

    import yaml

    samples = yaml.safe_load((Path(__file__).parent.parent / "fixtures" / "language_samples.yaml").read_text())
    assert set(samples) == set(LANGUAGES)
    wrong = [(lang, text, detect_language(text)) for lang, texts in samples.items() for text in texts]
    assert [w for w in wrong if w[0] != w[2]] == []


def test_the_kbs_own_questions_keep_their_language(kb: KnowledgeBase) -> None:
    """English with romanised Japanese (jidokan, kodomo-en, byouji hoiku) is English; kanji-only Japanese is
    Japanese. A number or a short acronym (189, 0120-20-8699, DV) has no language of its own: the engine keeps
    the contact's (`Engine._language`), so it is not asked here."""
    wrong = [
        (lang, q, detect_language(q))
        for entry in kb.entries.values()
        for lang in ("ja", "en")
        for q in entry.questions.get(lang, [])
        if len(q) > 4 and detect_language(q) not in (lang, None)
    ]
    assert wrong == []


def test_taglish_is_tagalog() -> None:
    assert detect_language("Saan po ang child support center?") == "tl"
    assert detect_language("Where is the child support center?") == "en"


def test_a_crisis_by_mail_is_answered_in_the_mail_wording_and_kept_so(engine: Engine, runtime: Runtime) -> None:
    # The mail wording comes from the KB data (`notice_mail`); the transcript keeps what the mail said.
    d = _mail(engine)
    (reply,) = d.send("もう死にたい")
    assert reply.kind.value == "urgent" and "このメールでお返事します" in reply.text and "トーク" not in reply.text
    with runtime.sessions() as s:
        (case,) = rows(runtime, Case)
        bot_lines = [m.text for m in crud.transcript(s, case_id=case.id or 0) if m.author == "bot"]
    assert bot_lines == [reply.text]


def test_an_answer_by_mail_uses_its_mail_wording(engine: Engine) -> None:
    d = Dialog(engine, channel="email", sender="en-parent@example.jp")
    (answer,) = d.send("Can I see what was recorded about me?")
    assert answer.entry_id == "privacy-withdraw-delete"
    assert 'Send "withdraw consent" by email' in answer.text and "in this chat" not in answer.text
    (chat,) = Dialog(engine, channel="line", sender="U-en").send("Can I see what was recorded about me?")
    assert 'Send "withdraw consent" in this chat' in chat.text

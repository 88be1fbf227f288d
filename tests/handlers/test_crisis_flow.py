"""Crisis and distress conversations through the real engine, on SQLite and PostgreSQL: every category in
Japanese, English and one foreign language, while a person holds the case, and the false alarms that must
stay ordinary."""

from __future__ import annotations

import pytest

from bot.runtime import Runtime
from handlers.engine import Engine
from handlers.types import Reply
from storage.models import Case, ConsentRecord, Message, PendingMessage, StaffAlert, StatEvent
from tests.dialog import Dialog, verify_dialog
from tests.handlers.dialog_kit import rows as _rows

# (category, Japanese, English, (foreign language, message), a number the reply must give)
CRISES = [
    ("child_danger", "子どもが息をしていない", "My baby is not breathing", ("ko", "아기가 숨을 안 쉬어요"), "119"),
    (
        "poisoning",
        "子どもが洗剤を飲んでしまった",
        "my toddler swallowed a button battery",
        ("zh-Hans", "我的孩子吞了电池"),
        "072-727-2499",
    ),
    (
        "abuse",
        "隣の家から毎晩子どもの悲鳴と怒鳴り声が聞こえる",
        "The kid next door is screaming every night and I hear hitting",
        ("zh-Hant", "鄰居的小孩一直被虐待"),
        "189",
    ),
    (
        "parent_harm",
        "子どもを叩いてしまいそうで自分が怖い",
        "I'm afraid I will hit my child",
        ("pt", "Tenho medo de bater no meu filho"),
        "189",
    ),
    (
        "child_sos",
        "おかあさんに まいにち たたかれる",
        "my mom hits me every day",
        ("th", "แม่ตีหนู ไม่อยากกลับบ้าน"),
        "0120-0-78310",
    ),
    ("dv", "夫にぶたれて顔が腫れている", "My husband hits me", ("vi", "Chồng tôi đánh tôi mỗi ngày"), "0120-279-889"),
    ("self_harm", "もう全部終わらせたい", "I want to die", ("ne", "म मर्न चाहन्छु"), "0120-279-338"),
    (
        "with_child",
        "この子と一緒に死にたい",
        "I want to die with my baby",
        ("id", "Saya ingin mati bersama anak saya"),
        "189",
    ),
]


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


CASES = [
    pytest.param(cat, text, lang, number, id=f"{cat}-{lang}")
    for cat, ja, en, (flang, ftext), number in CRISES
    for text, lang in ((ja, "ja"), (en, "en"), (ftext, flang))
]


def _numbers(reply: Reply) -> str:
    return reply.text + " " + " ".join(c.phone or "" for c in reply.contacts)


@pytest.mark.parametrize(("category", "message", "lang", "number"), CASES)
def test_each_crisis_gets_its_numbers_in_the_parents_language_and_an_urgent_case(
    engine: Engine, runtime: Runtime, category: str, message: str, lang: str, number: str
) -> None:
    d = Dialog(engine)
    verify_dialog(d, [(message, f"urgent#{category}")])
    reply = d.transcript[-1][1][0]
    assert reply.lang == lang, "the crisis reply is written in the language of the message"
    assert number in _numbers(reply)
    if lang not in ("ja", "en"):
        assert "0138-21-3619" in _numbers(reply), "the city's interpreting desk is offered"
    (case,) = _rows(runtime, Case)
    assert case.priority == "urgent" and case.basis == "life_safety" and case.crisis_category == category
    assert [a.kind for a in _rows(runtime, StaffAlert)] == ["urgent"]
    assert _rows(runtime, ConsentRecord) == []


def test_dv_reply_warns_about_the_chat_history_and_promises_no_call_back(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("夫に首を絞められた", "urgent#dv ~履歴を削除")])
    text = d.transcript[-1][1][0].text
    assert "110" in text and "連絡することはしません" in text
    assert "折り返し" not in text and "お返事します" not in text
    verify_dialog(Dialog(engine, sender="p-en"), [("my partner threatens to kill me", "urgent#dv ~will not phone")])


def test_a_parent_afraid_of_harming_the_child_is_thanked_not_blamed(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("泣き止まない赤ちゃんを揺さぶってしまいそう", "urgent#parent_harm ~ありがとう")])
    reply = d.transcript[-1][1][0]
    assert "責めることはありません" in reply.text
    assert {"189", "0138-32-3192"} <= {c.phone for c in reply.contacts}


def test_a_child_gets_a_childs_message(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("ぼく パパに けられた いたい", "urgent#child_sos ~あなたは わるくないよ")])
    assert "0120-0-78310" in {c.phone for c in d.transcript[-1][1][0].contacts}


def test_dying_with_the_child_gives_the_child_lines_and_the_self_harm_lines(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("子どもを道連れにしてしまいそう", "urgent#with_child")])
    phones = {c.phone for c in d.transcript[-1][1][0].contacts}
    assert {"110", "189", "0120-279-338"} <= phones


def test_two_kinds_at_once_give_both_sets_of_contacts(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("夫に殴られて、もう死にたい", "urgent#self_harm")])
    reply = d.transcript[-1][1][0]
    assert {"0120-279-338", "0120-279-889"} <= {c.phone for c in reply.contacts}
    assert reply.meta["also"] == "dv"


@pytest.mark.parametrize(
    ("message", "lang"),
    [
        ("もう限界です。毎日ひとりで泣いています", "ja"),
        ("I'm so exhausted and alone", "en"),
        ("Tôi mệt mỏi quá, không ai giúp tôi", "vi"),
    ],
)
def test_distress_gets_kindness_and_the_offer_of_a_person_but_no_case(
    engine: Engine, runtime: Runtime, message: str, lang: str
) -> None:
    d = Dialog(engine)
    reply = d.send(message)[0]  # an FAQ answer may follow when the message also matches one
    assert reply.kind.value == "info" and reply.meta["crisis"] == "distress"
    assert reply.lang == lang and "0120-279-338" in _numbers(reply)
    assert [c.data for c in reply.choices] == ["handoff:parenting_worries"]
    assert _rows(runtime, Case) == [] and _rows(runtime, Message) == [] and _rows(runtime, PendingMessage) == []
    assert [e.outcome for e in _rows(runtime, StatEvent)] == ["distress"], "only an anonymous counter is kept"
    # The button leads to the consent question; only a yes opens a case.
    verify_dialog(d, [("[handoff:parenting_worries]", "consent"), ("[consent:yes]", "handoff")])
    (case,) = _rows(runtime, Case)
    assert case.priority == "normal" and case.basis == "consent" and case.topic == "parenting_worries"


def test_distress_with_a_question_also_gets_the_answer(engine: Engine) -> None:
    d = Dialog(engine)
    replies = d.send("夜泣きが続いて限界です。一時預かりの料金を教えてください")
    assert [r.kind.value for r in replies][:1] == ["info"] and replies[0].meta["crisis"] == "distress"
    assert len(replies) == 2 and replies[1].kind.value == "answer"


def test_crisis_while_a_person_holds_the_case_gets_the_numbers_and_raises_it(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("[consent:yes]", "handoff"),
            ("夜泣きがつらくて", "silent"),
            ("夫に殴られた", "urgent#dv"),
            ("子どもが息をしてない", "urgent#child_danger"),
            ("もう限界", "silent"),  # distress while a person holds the case: the person reads it
        ],
    )
    (case,) = _rows(runtime, Case)
    assert case.priority == "urgent" and case.crisis_category == "child_danger"
    assert case.basis == "consent", "the consent given stays the basis of the record"
    kinds = [a.kind for a in _rows(runtime, StaffAlert)]
    assert kinds.count("urgent") == 2
    texts = [m.text for m in _rows(runtime, Message) if m.author == "parent"]
    assert "夫に殴られた" in texts and "もう限界" in texts


def test_crisis_during_the_consent_question_opens_a_life_safety_case(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("相談員と話したい", "consent"), ("もう死にたい", "urgent#self_harm")])
    (case,) = _rows(runtime, Case)
    assert case.basis == "life_safety" and case.basis_reason == "life_safety:self_harm"
    assert _rows(runtime, PendingMessage) == [], "the buffered pre-consent message is not kept"


@pytest.mark.parametrize(
    "message",
    [
        "保育園に落ちた",
        "夜泣きで泣き叫ぶのはいつまで？",
        "夜泣きを終わりにしたい",
        "死ぬほど眠い",
        "離乳食を無理やり食べさせるのはよくない？",
        "子どもを置いて出かけてもいい年齢は？",
        "2歳の息子がお友達を叩いてしまいます",
        "We didn't get a nursery place",
    ],
)
def test_ordinary_worries_open_nothing(engine: Engine, runtime: Runtime, message: str) -> None:
    replies = Dialog(engine).send(message)
    assert all(r.kind.value != "urgent" and r.meta.get("crisis") is None for r in replies)
    assert _rows(runtime, Case) == [] and _rows(runtime, StaffAlert) == []

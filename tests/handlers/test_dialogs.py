"""Whole conversations through the real engine on the sample KB, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from handlers.engine import Engine
from handlers.staff import reply_to_parent, resolve_case
from storage import crud
from storage.models import Case, ConsentRecord, Contact, Message, PendingMessage, StaffAlert, StatEvent
from tests.dialog import CLOSED, Dialog, verify_dialog
from tests.handlers.dialog_kit import rows


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


def test_faq_answers_with_contacts_and_source(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("児童手当はいつ振り込まれますか", "answer#child-allowance-payday ~最新の情報")])
    reply = d.transcript[-1][1][0]
    assert reply.contacts, "an answer shows the contacts to call"
    assert "http" in reply.text
    # FAQ answers leave no content behind: no case, no transcript, only an anonymous counter.
    assert rows(runtime, Case) == [] and rows(runtime, Message) == []
    events = rows(runtime, StatEvent)
    assert [(e.outcome, e.topic) for e in events] == [("answer", "child_allowance")]


def test_english_question_gets_an_english_answer(engine: Engine) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("When is the child allowance paid?", "answer ~Source:")])
    assert d.transcript[-1][1][0].lang == "en"


def test_clarify_then_pick_by_number(engine: Engine) -> None:
    verify_dialog(Dialog(engine), [("ワクチン", "clarify ~1."), ("2", "answer")])


def test_clarify_then_pick_by_button(engine: Engine) -> None:
    d = Dialog(engine)
    replies = d.send("ワクチン")
    choice = replies[0].choices[0]
    verify_dialog(d, [(f"[{choice.data}]", f"answer#{choice.data.split(':', 1)[1]}")])


def test_handoff_with_consent_creates_a_case_with_the_first_message(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent ~記録"),
            ("[consent:yes]", "handoff ~受付番号"),
            ("夜泣きがひどくて眠れません", "silent"),
        ],
    )
    with runtime.sessions() as s:
        (case,) = crud.queue(s)
        lines = [(m.author, m.text, m.basis) for m in crud.transcript(s, case_id=case.id or 0)]
        ledger = [(r.status, r.notice_version) for r in s.exec(select(ConsentRecord))]
    assert case.priority == "normal" and case.basis == "consent"
    assert lines[0] == ("parent", "相談員と話したい", "consent")
    assert lines[-1] == ("parent", "夜泣きがひどくて眠れません", "consent")
    assert ledger == [("granted", "2026-11")]
    assert rows(runtime, PendingMessage) == []
    assert {a.kind for a in rows(runtime, StaffAlert)} == {"new_case", "parent_message"}


@pytest.mark.parametrize(
    "ask", ["にんげんの ひとと はなしたい", "たんとうしゃと はなしたいです", "Can I talk to a real person?"]
)
def test_requests_for_a_person_in_many_spellings(engine: Engine, ask: str) -> None:
    verify_dialog(Dialog(engine), [(ask, "consent")])


def test_consent_by_typed_yes_variants(engine: Engine, runtime: Runtime) -> None:
    verify_dialog(Dialog(engine), [("人と話したいです", "consent"), ("はい、同意します。", "handoff")])
    assert len(rows(runtime, Case)) == 1


def test_declined_consent_stores_nothing_but_gives_contacts(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("担当者と話したい", "consent"),
            ("いいえ", "info ~記録しません"),
            ("キッズプラザの料金", "answer#kidsplaza-fees"),
        ],
    )
    assert d.transcript[1][1][0].contacts, "the parent can still call or write"
    assert rows(runtime, Case) == [] and rows(runtime, Message) == [] and rows(runtime, PendingMessage) == []
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["declined"]


def test_pre_consent_message_is_erased_after_30_minutes(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    d.send("相談員と話したい")
    assert len(rows(runtime, PendingMessage)) == 1
    d.later(minutes=31)
    verify_dialog(d, [("[consent:yes]", "info ~期限")])
    assert rows(runtime, PendingMessage) == []
    assert rows(runtime, Case) == []


def test_a_mail_consent_question_stays_open_but_the_buffer_does_not(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="email", sender="parent@example.jp")
    d.send("相談員と話したい")
    d.later(hours=3)
    verify_dialog(d, [("はい", "handoff")])
    assert len(rows(runtime, Case)) == 1
    assert [m.author for m in rows(runtime, Message)] == ["bot"]  # the first message was erased after 30 min
    assert rows(runtime, PendingMessage) == []


def test_withdrawal_stops_recording_at_once(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("[consent:yes]", "handoff"),
            ("同意を取り消します", "info ~取り消しました"),
            ("この内容は記録されないはず", "silent"),
        ],
    )
    texts = [m.text for m in rows(runtime, Message)]
    assert "この内容は記録されないはず" not in texts
    assert [r.status for r in rows(runtime, ConsentRecord)] == ["granted", "withdrawn"]


def test_two_fallbacks_in_a_row_offer_a_person(engine: Engine) -> None:
    verify_dialog(
        Dialog(engine),
        [
            ("ｘｙｚｚｙ ｑｑｑ", "fallback"),
            ("ぴよぴよ ぽんぽこ", "fallback + consent"),
        ],
    )


def test_suggested_handoff_after_a_sensitive_answer(engine: Engine) -> None:
    d = Dialog(engine)
    replies = d.send("発達が気になる。ことばが遅い気がする")
    assert replies[0].kind.value == "answer"
    assert any(c.data.startswith("handoff") for c in replies[0].choices)
    verify_dialog(d, [(f"[{replies[0].choices[0].data}]", "consent"), ("[consent:yes]", "handoff")])


@pytest.mark.parametrize(
    ("message", "category"),
    [("もう死にたい", "self_harm"), ("夫に殴られた", "dv"), ("子どもが息をしていない", "child_danger")],
)
def test_crisis_gets_numbers_at_once_and_an_urgent_case_without_consent(
    engine: Engine, runtime: Runtime, message: str, category: str
) -> None:
    d = Dialog(engine)
    verify_dialog(d, [(message, f"urgent#{category}")])
    reply = d.transcript[-1][1][0]
    assert reply.contacts and any(c.phone in ("110", "119", "0120-279-338", "189") for c in reply.contacts)
    (case,) = rows(runtime, Case)
    assert case.priority == "urgent" and case.basis == "life_safety" and case.basis_reason == f"life_safety:{category}"
    assert [m.basis for m in rows(runtime, Message) if m.author == "parent"] == ["life_safety"]
    assert [a.kind for a in rows(runtime, StaffAlert)] == ["urgent"]
    assert rows(runtime, ConsentRecord) == []


def test_crisis_during_consent_and_during_a_case(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("子どもを叩いてしまいそうで怖い", "urgent#parent_harm"),
            ("どうしたらいいかわからない", "silent"),
        ],
    )
    (case,) = rows(runtime, Case)
    assert case.priority == "urgent"
    assert [m.text for m in rows(runtime, Message) if m.author == "parent"][-1] == "どうしたらいいかわからない"


def test_after_hours_handoff_says_when_a_person_answers(engine: Engine) -> None:
    d = Dialog(engine, now=CLOSED)
    verify_dialog(d, [("相談員と話したい", "consent"), ("[consent:yes]", "handoff ~11月27日(金) 10:00")])


def test_staff_reply_and_resolution_hand_back_to_the_bot(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine)
    verify_dialog(d, [("相談員と話したい", "consent"), ("[consent:yes]", "handoff")])
    (case,) = rows(runtime, Case)
    reply_to_parent(
        runtime.sessions, case_id=case.id or 0, text="担当の保育士です。お話を聞かせてください。", staff="hanako"
    )
    verify_dialog(d, [("ありがとうございます", "silent")])
    resolve_case(runtime.sessions, case_id=case.id or 0)
    verify_dialog(d, [("キッズプラザの料金", "answer#kidsplaza-fees")])
    with runtime.sessions() as s:
        authors = [m.author for m in crud.transcript(s, case_id=case.id or 0)]
    assert "staff:hanako" in authors


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("", "info ~文字"),
        ("   \n\t ", "info ~文字"),
        ("🙂🙂🙂", "info ~文字"),
        ("\x00\x01\x02", "info ~文字"),
        ("[faq:no-such-entry]", "info ~古く"),
        ("[consent:yes]", "info ~期限"),
        ("[something:odd]", "info ~古く"),
    ],
)
def test_odd_input_gets_a_sensible_reply(engine: Engine, message: str, expected: str) -> None:
    verify_dialog(Dialog(engine), [(message, expected)])


def test_a_very_long_message_is_read_in_part(engine: Engine) -> None:
    replies = Dialog(engine).send("児童手当について。" + "あ" * 10_000)
    assert replies[0].kind.value == "info" and "ご質問の部分" in replies[0].text
    assert len(replies) >= 2


def test_mixed_language_message(engine: Engine) -> None:
    replies = Dialog(engine).send("Hello, 児童手当 wa itsu desu ka?")
    assert replies and replies[0].lang == "ja"


def test_one_parent_per_channel_id(engine: Engine, runtime: Runtime) -> None:
    Dialog(engine, sender="a").send("相談員と話したい")
    Dialog(engine, sender="b").send("キッズプラザの料金")
    with runtime.sessions() as s:
        states = {c.external_id: crud.get_state(s, contact_id=c.id or 0).state for c in s.exec(select(Contact))}
    assert states == {"a": "consent", "b": "faq"}


def test_time_passes_in_utc(engine: Engine) -> None:
    d = Dialog(engine, now=dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC))  # 11:00 in Hakodate
    verify_dialog(d, [("相談員と話したい", "consent"), ("[consent:yes]", "handoff ~順番に")])


def test_the_details_button_sends_every_office_and_changes_nothing(engine: Engine, runtime: Runtime) -> None:
    """An answer shows one office; `more:<entry>` sends all of them with full details, counts nothing more,
    and while the consent question is open it is still asked."""
    entry = next(e for e in engine.kb.entries.values() if len(e.contacts) > 1)
    d = Dialog(engine)
    verify_dialog(d, [(f"[faq:{entry.id}]", f"answer#{entry.id}")])
    answer = d.transcript[-1][1][0]
    assert len(answer.contacts) == 1 and any(c.data == f"more:{entry.id}" for c in answer.choices)
    verify_dialog(d, [(f"[more:{entry.id}]", "info ~の窓口の連絡先")])
    more = d.transcript[-1][1][0]
    assert len(more.contacts) == len(entry.contacts) and more.entry_id == entry.id
    assert [e.outcome for e in rows(runtime, StatEvent)] == ["answer"]
    verify_dialog(d, [("相談員と話したい", "consent"), (f"[more:{entry.id}]", "info + consent ~まだです")])

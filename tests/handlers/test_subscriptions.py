"""The notice and records chat commands through the real engine (bootstrap registers the extension), as
conversations, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from handlers.engine import Engine
from handlers.subscriptions import NoticeSettings, fold, parse_month
from handlers.types import InboundKind, InboundMessage, Reply
from storage import crud
from storage import lifecycle as store
from storage.lifecycle import NoticeProfile, RecordRequest
from storage.models import Case, ConsentRecord, Contact, Message, StaffAlert
from tests.dialog import OPEN, Dialog, verify_dialog


@pytest.fixture
def engine(runtime: Runtime) -> Engine:
    return runtime.engine


def _contact(runtime: Runtime, channel: str = "line", external_id: str = "parent-1") -> Contact:
    with runtime.sessions() as s:
        contact = s.exec(select(Contact).where(Contact.channel == channel, Contact.external_id == external_id)).one()
    return contact


def _follow(engine: Engine, sender: str = "parent-1") -> None:
    engine.handle(InboundMessage("line", sender, kind=InboundKind.FOLLOW, timestamp=OPEN))


def _data(reply: Reply) -> list[str]:
    return [c.data for c in reply.choices]


def test_the_extension_is_registered_by_bootstrap(engine: Engine) -> None:
    assert any(isinstance(ext, NoticeSettings) for ext in engine.extensions)


def test_rich_menu_button_shows_the_settings_of_a_line_follower(engine: Engine, runtime: Runtime) -> None:
    _follow(engine)
    d = Dialog(engine, channel="line")
    verify_dialog(d, [("[notices]", "info ~受け取り：オン")])
    menu = d.transcript[-1][1][0]
    assert "・一般のお知らせ：オン" in menu.text and "・健診・予防接種：オフ" in menu.text
    assert _data(menu) == [
        "notices:topic:events:on",
        "notices:topic:health:on",
        "notices:topic:nursery:on",
        "notices:topic:general:off",
        "notices:lang",
        "notices:month",
        "notices:off",
    ]
    assert all(len(c.label) <= 20 for c in menu.choices) and len(menu.choices) <= 13
    verify_dialog(
        d, [("[notices:topic:health:on]", "info ~健診・予防接種：オン"), ("[notices:off]", "info ~停止しました")]
    )
    with runtime.sessions() as s:
        assert store.topic_settings(s, contact_id=_contact(runtime).id or 0)["health"] is True
        assert store.audience(s, topic="health") == []  # stopped: nothing goes out
    verify_dialog(d, [("[notices:on]", "info ~オン + info ~受け取り：オン")])
    with runtime.sessions() as s:
        assert store.audience(s, topic="health") == [_contact(runtime).id]


def test_typed_commands_stop_and_start(engine: Engine, runtime: Runtime) -> None:
    _follow(engine)
    verify_dialog(
        Dialog(engine, channel="line"),
        [
            ("お知らせ停止", "info ~停止しました"),
            ("お知らせ設定", "info ~受け取り：停止中"),
            ("お知らせを受け取る", "info ~オンにしました + info ~受け取り：オン"),
            ("お知らせを停止してください。", "info ~停止しました"),
        ],
    )
    assert not _contact(runtime).subscribed


def test_email_subscribers_opt_in_explicitly(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="email", sender="mama@example.jp")
    verify_dialog(d, [("お知らせ設定", "info ~受け取り：停止中")])
    assert _data(d.transcript[-1][1][0])[0] == "notices:on"
    with runtime.sessions() as s:
        assert store.audience(s, topic="general", channel="email") == []
    verify_dialog(d, [("[notices:topic:events:on]", "info ~受け取り：オン")])  # choosing a topic opts in
    with runtime.sessions() as s:
        contact = _contact(runtime, "email", "mama@example.jp")
        assert store.audience(s, topic="events", channel="email") == [contact.id]
        assert store.audience(s, topic="general", channel="email") == [contact.id]


def test_notice_language(engine: Engine, runtime: Runtime) -> None:
    _follow(engine)
    d = Dialog(engine, channel="line")
    verify_dialog(d, [("[notices:lang]", "info ~言語"), ("[notices:lang:en]", "info ~in English + info ~Notices: on")])
    assert _data(d.transcript[0][1][0]) == ["notices:lang:ja", "notices:lang:en"]
    with runtime.sessions() as s:
        assert store.audience(s, topic="general", lang="en") == [_contact(runtime).id]
        assert store.audience(s, topic="general", lang="ja") == []


def test_the_month_needs_consent_and_is_removable(engine: Engine, runtime: Runtime) -> None:
    _follow(engine)
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("[notices:month]", "info ~月齢に合わせて"),
            ("[notices:month:birth]", "info ~記録への同意が必要"),
            ("[notices:month:no]", "info ~登録しません + info ~未登録"),
        ],
    )
    consent = d.transcript[1][1][0]
    assert "保存期間" in consent.text and consent.meta["notice"] == "2026-11"
    with runtime.sessions() as s:
        assert list(s.exec(select(ConsentRecord))) == []
        assert s.exec(select(NoticeProfile)).first() is None or s.exec(select(NoticeProfile)).one().child_month is None
    verify_dialog(
        d,
        [
            ("[notices:month:birth]", "info ~同意"),
            ("[notices:month:consent:birth]", "info ~2025年4月"),
            ("2025年13月", "info ~読み取れません"),
            ("2000年1月", "info ~18年前まで"),
            ("２０２５年５月生まれ", "info ~2025年5月で登録しました + info ~お子さんの誕生月：2025年5月"),
        ],
    )
    with runtime.sessions() as s:
        (ledger,) = s.exec(select(ConsentRecord))
        profile = s.exec(select(NoticeProfile)).one()
        assert ledger.status == "granted" and ledger.notice_version == "2026-11"
        assert (profile.child_month, profile.child_month_kind, profile.awaiting) == (dt.date(2025, 5, 1), "birth", None)
    verify_dialog(d, [("誕生月を削除", "info ~削除しました"), ("誕生月を削除", "info ~ありません")])
    with runtime.sessions() as s:
        assert s.exec(select(NoticeProfile)).one().child_month is None


def test_with_consent_in_force_the_month_is_asked_at_once(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("[consent:yes]", "handoff"),
            ("[notices:month:due]", "info ~出産予定月を"),
            ("令和9年3月", "info ~2027年3月で登録しました + info ~出産予定月：2027年3月"),
        ],
    )
    with runtime.sessions() as s:
        # The typed month is a setting, not part of the consultation transcript.
        assert [m.text for m in s.exec(select(Message))][-1] != "令和9年3月"
        assert len(list(s.exec(select(ConsentRecord)))) == 1


def test_withdrawing_consent_removes_the_month(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("[notices:month:birth]", "info ~同意"),
            ("[notices:month:consent:birth]", "info"),
            ("2025/4", "info ~登録しました + info"),
            ("同意を取り消す", "info ~取り消しました"),
            ("お知らせ設定", "info ~未登録"),
        ],
    )
    with runtime.sessions() as s:
        assert s.exec(select(NoticeProfile)).one().child_month is None


def test_a_question_while_a_month_is_awaited_goes_to_the_faq(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("[notices:month:birth]", "info"),
            ("[notices:month:consent:birth]", "info ~送ってください"),
            ("児童手当はいつ振り込まれますか", "answer#child-allowance-payday"),
        ],
    )
    assert not _registered(d.send("2025年4月"))  # no longer awaited: the FAQ has it
    verify_dialog(d, [("[notices:month:birth]", "info"), ("やめる", "info ~やめました")])
    assert not _registered(d.send("2025年4月"))
    verify_dialog(d, [("[notices:month:birth]", "info")])
    d.later(minutes=11)
    assert not _registered(d.send("2025年4月"))  # the wait has run out
    with runtime.sessions() as s:
        assert s.exec(select(NoticeProfile)).one().child_month is None


def _registered(replies: list[Reply]) -> bool:
    return any("登録しました" in r.text for r in replies)


def test_erase_after_confirmation(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("相談員と話したい", "consent"),
            ("[consent:yes]", "handoff"),
            ("夜泣きがひどくて眠れません", "silent"),
            ("記録を削除", "info ~削除しますか"),
            ("[records:erase:no]", "info ~やめました"),
        ],
    )
    assert _data(d.transcript[3][1][0]) == ["records:erase:yes", "records:erase:no"]
    assert "同意の記録" in d.transcript[3][1][0].text  # the exceptions are said before anything is erased
    cid = _contact(runtime).id
    verify_dialog(d, [("記録を削除したい", "info"), ("[records:erase:yes]", "info ~削除しました")])
    with runtime.sessions() as s:
        assert list(s.exec(select(Case))) == [] and list(s.exec(select(Message))) == []
        tomb = crud.get_contact(s, contact_id=cid or 0)
        assert tomb is not None and tomb.external_id == f"erased:{cid}"
        assert [r.status for r in s.exec(select(ConsentRecord))] == ["granted", "withdrawn"]
        (request,) = s.exec(select(RecordRequest))
        assert request.requested_by == "parent" and request.status == "done"
    # Writing again starts afresh: a new contact, asked for consent again.
    verify_dialog(d, [("相談員と話したい", "consent")])
    assert _contact(runtime).id != cid


def test_erase_keeps_an_open_urgent_case_reachable(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(d, [("死にたい", "urgent"), ("記録を削除", "info"), ("[records:erase:yes]", "info ~相談の終了まで")])
    with runtime.sessions() as s:
        (case,) = s.exec(select(Case))
        assert case.crisis_category is not None
    assert _contact(runtime).external_id == "parent-1"


def test_export_request_goes_to_the_concierge_queue(engine: Engine, runtime: Runtime) -> None:
    d = Dialog(engine, channel="line")
    verify_dialog(
        d,
        [
            ("記録を見たい", "info ~依頼しますか"),
            ("[records:export:no]", "info ~やめました"),
            ("export my data", "info ~Send the request"),
            ("[records:export:yes]", "info ~case"),
        ],
    )
    with runtime.sessions() as s:
        (case,) = crud.queue(s)
        (request,) = s.exec(select(RecordRequest))
        alerts = [a.kind for a in s.exec(select(StaffAlert))]
    assert case.kind == "records_export" and case.topic == "privacy"
    assert request.kind == "export" and request.status == "requested" and request.case_ref == case.id
    assert alerts == ["new_case"]


def test_questions_about_records_are_not_commands(engine: Engine) -> None:
    d = Dialog(engine, channel="line")
    for question in ("記録を削除するとどうなりますか", "お知らせはいつ届きますか", "保育園の申込はいつから？"):
        replies = d.send(question)
        assert all("削除しますか" not in r.text and "お知らせ設定" not in r.text for r in replies), question


def test_english_commands(engine: Engine) -> None:
    _follow(engine)
    verify_dialog(
        Dialog(engine, channel="line"),
        [
            ("notice settings", "info ~Notices: on"),
            ("stop notices", "info ~Notices are stopped"),
            ("delete my data", "info ~Delete now?"),
            ("remove birth month", "info ~No month"),
        ],
    )


def test_stale_records_button(engine: Engine) -> None:
    verify_dialog(Dialog(engine), [("[records:what]", "info ~古くなっています")])


def test_month_parsing_and_folding() -> None:
    assert parse_month("2025年4月") == dt.date(2025, 4, 1)
    assert parse_month("２０２５／０４") == dt.date(2025, 4, 1)
    assert parse_month("2025-04") == dt.date(2025, 4, 1)
    assert parse_month("令和元年5月") == dt.date(2019, 5, 1)
    assert parse_month("R7.4") == dt.date(2025, 4, 1)
    assert parse_month("2025年4月ごろ") == dt.date(2025, 4, 1)
    assert parse_month("4月") is None and parse_month("2025年13月") is None and parse_month("児童手当") is None
    assert fold("データを削除！") == fold("データを削除")

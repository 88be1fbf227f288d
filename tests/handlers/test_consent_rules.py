"""The consent rules in one module: which versions count, the exact text behind each ledger row, and that no
other module reads or writes the ledger."""

from __future__ import annotations

import re
from pathlib import Path

from bot.runtime import Runtime
from handlers import consent
from handlers.consent import Notices
from handlers.lifecycle import export_contact, render_export
from knowledge.consent import digest, load_notices
from storage import crud
from storage.db import transaction
from storage.models import Case, ConsentRecord, Message
from tests.dialog import Dialog, verify_dialog
from tests.handlers.dialog_kit import rows

ROOT = Path(__file__).resolve().parents[2]
LEDGER = re.compile(r"\bConsentRecord\b|\b(?:has_consent|record_consent|current_consent|consent_history)\(")


def test_only_the_consent_module_and_storage_touch_the_ledger() -> None:
    touching = sorted(
        str(path.relative_to(ROOT))
        for package in ("handlers", "bot", "scheduler", "knowledge", "storage")
        for path in (ROOT / package).rglob("*.py")
        if LEDGER.search(path.read_text(encoding="utf-8"))
    )
    outside = [p for p in touching if p != "handlers/consent.py" and not p.startswith("storage/")]
    assert outside == []
    assert "handlers/consent.py" in touching


def test_no_code_reads_notice_text_by_its_characters() -> None:
    # The month prompt once cut the notice into its bullet lines; mail once rewrote chat texts by substring.
    for path in (ROOT / "handlers").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert 'startswith(("・", "- "))' not in source, path
        assert "_WORDING" not in source, path


def test_a_grant_of_an_older_version_continues_but_a_new_consultation_asks_again(runtime: Runtime) -> None:
    engine = runtime.engine
    d = Dialog(engine, sender="older")
    verify_dialog(d, [("相談員と話したい", "consent"), ("はい", "handoff")])
    with transaction(runtime.sessions) as s:
        contact = crud.get_or_create_contact(s, channel="console", external_id="older")
        assert contact.id is not None
        row = crud.current_consent(s, contact_id=contact.id)
        assert row is not None
        row.notice_version = "2025-04"  # as if granted under the notice before the current one
        s.add(row)
        assert consent.in_force(s, contact_id=contact.id)
        assert consent.must_ask(s, contact_id=contact.id, version=engine.notices.version)
    # The open case goes on under the consent given: the message is recorded.
    verify_dialog(d, [("夜泣きがひどいです", "silent")])
    (case,) = rows(runtime, Case)
    assert [m.text for m in rows(runtime, Message) if m.author == "parent"][-1] == "夜泣きがひどいです"
    with transaction(runtime.sessions) as s:
        crud.set_case_status(s, case=s.get(Case, case.id), status="resolved")  # type: ignore[arg-type]
    # Something new: the current notice is shown first.
    verify_dialog(d, [("相談員と話したい", "consent")])


def test_every_ledger_row_points_at_the_exact_text_shown(runtime: Runtime) -> None:
    notices = Notices()
    chat = Dialog(runtime.engine, sender="chat-parent")
    mail = Dialog(runtime.engine, sender="mail@example.jp", channel="email")
    verify_dialog(chat, [("talk to a person", "consent"), ("No thanks", "info")])
    verify_dialog(mail, [("相談員と話したい", "consent"), ("はい", "handoff")])
    by = {(r.channel, r.status): r for r in rows(runtime, ConsentRecord)}
    declined, granted = by[("console", "declined")], by[("email", "granted")]
    assert (declined.notice_lang, declined.notice_wording) == ("en", "chat")
    assert (granted.notice_lang, granted.notice_wording) == ("ja", "mail")
    # The digest is the one of the text shown (the notice reply itself), and of the locked data.
    shown = mail.transcript[0][1][0].text
    assert granted.notice_sha256 == digest(shown) == digest(notices.current.text("ja", "mail"))
    assert notices.text_of(granted) == shown


def test_records_export_shows_the_text_agreed_to(runtime: Runtime) -> None:
    d = Dialog(runtime.engine, sender="exporter")
    verify_dialog(d, [("相談員と話したい", "consent"), ("はい", "handoff"), ("同意を取り消す", "info")])
    with transaction(runtime.sessions) as s:
        contact = crud.get_or_create_contact(s, channel="console", external_id="exporter")
        data = export_contact(s, contact=contact)
    granted, withdrawn = data["consent"]
    notice = load_notices().current().text("ja", "chat")
    assert granted["status"] == "granted" and granted["notice_text"] == notice
    assert withdrawn["status"] == "withdrawn" and withdrawn["notice_text"] is None
    text = render_export(data)
    assert "表示した同意文（ja、チャット）：" in text
    assert all(f"    {line}" in text for line in notice.splitlines())


def test_an_edited_text_is_not_offered_as_the_one_agreed_to(runtime: Runtime) -> None:
    d = Dialog(runtime.engine, sender="tampered")
    verify_dialog(d, [("相談員と話したい", "consent"), ("はい", "handoff")])
    with transaction(runtime.sessions) as s:
        contact = crud.get_or_create_contact(s, channel="console", external_id="tampered")
        row = crud.current_consent(s, contact_id=contact.id or 0)
        assert row is not None
        row.notice_sha256 = digest("another text")
        s.add(row)
        (entry,) = consent.ledger(s, contact_id=contact.id or 0)
    assert entry["notice_text"] is None and entry["notice_version"] == "2026-11"


def test_the_month_prompt_is_recorded_as_such(runtime: Runtime) -> None:
    d = Dialog(runtime.engine, sender="month-parent")
    (prompt,) = d.send("[notices:month:birth]")
    verify_dialog(d, [("[notices:month:consent:birth]", "info")])
    (row,) = rows(runtime, ConsentRecord)
    assert (row.status, row.notice_lang, row.notice_wording) == ("granted", "ja", "month-chat")
    assert row.notice_sha256 == digest(prompt.text)
    notice = load_notices().current()
    # Its own points, then every point of the consultation notice: one consent for both.
    assert all(point in prompt.text for point in notice.notice("ja", mail=False).points)
    assert prompt.text == notice.text("ja", "month-chat")


def test_the_current_version_is_the_latest_published_unless_configured() -> None:
    assert Notices().version == load_notices().latest().version == "2026-11"
    assert Notices(version="2026-11").version == "2026-11"

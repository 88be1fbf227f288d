"""Case numbers (and the ids of the records the audit log names) are never handed out twice."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session

from handlers.lifecycle import erase_contact
from storage import crud
from storage import staff as staffdb
from storage.db import make_engine
from storage.migrate import alembic_config, upgrade


def test_a_case_opened_after_an_erasure_gets_a_new_number(db: Engine) -> None:
    with Session(db) as s:
        first = crud.get_or_create_contact(s, channel="line", external_id="U-erased")
        case = crud.create_case(s, contact=first, lang="ja", topic="nursery")
        note = staffdb.add_note(s, case_id=case.id or 0, author="sato", text="メモ")
        staffdb.audit(s, actor="sato", action="create", record_type="case", record_id=case.id)
        s.commit()
        old_case, old_note = case.id, note.id
        erase_contact(s, contact=first, requested_by="parent", notice_version="2026-11")
        s.commit()
    with Session(db) as s:
        other = crud.get_or_create_contact(s, channel="line", external_id="U-next")
        case = crud.create_case(s, contact=other, lang="ja", topic="nursery")
        note = staffdb.add_note(s, case_id=case.id or 0, author="sato", text="別のメモ")
        s.commit()
        assert old_case is not None and case.id is not None and case.id > old_case
        assert old_note is not None and note.id is not None and note.id > old_note


def test_upgrading_an_sqlite_database_keeps_every_row_and_stops_reuse(tmp_path: Path) -> None:
    """The rebuild drops and recreates referenced tables: no child row may be lost on the way."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(url), "c0ffee000011")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contact (id, channel, external_id, subscribed, created_at, last_seen_at) "
                    "VALUES (1, 'line', 'U1', 0, '2026-11-01', '2026-11-01')"
                )
            )
            for cid in (1, 2):
                conn.execute(
                    text(
                        'INSERT INTO "case" (id, contact_id, channel, kind, status, priority, lang, basis, '
                        "created_at) VALUES (:id, 1, 'line', 'consultation', 'new', 'normal', 'ja', 'consent', "
                        "'2026-11-01')"
                    ),
                    {"id": cid},
                )
                conn.execute(
                    text(
                        "INSERT INTO message (case_id, direction, author, text, basis, created_at) "
                        "VALUES (:id, 'in', 'parent', '相談', 'consent', '2026-11-01')"
                    ),
                    {"id": cid},
                )
            conn.execute(text('DELETE FROM "case" WHERE id = 2'))
        upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM message")).scalar() == 1
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            conn.execute(text('DELETE FROM "case" WHERE id = 1'))  # cascades as before the rebuild
            assert conn.execute(text("SELECT count(*) FROM message")).scalar() == 0
        with Session(engine) as s:
            contact = crud.get_contact(s, contact_id=1)
            assert contact is not None
            case = crud.create_case(s, contact=contact, lang="ja", topic=None)
            s.commit()
            # Id 1 was deleted after the upgrade and stays used. (Id 2, deleted before it, left no trace.)
            assert case.id == 2
            again = crud.create_case(s, contact=contact, lang="ja", topic=None)
            s.commit()
            s.delete(again)
            s.commit()
            assert crud.create_case(s, contact=contact, lang="ja", topic=None).id == 4
    finally:
        engine.dispose()

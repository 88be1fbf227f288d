"""The audit log: views, edits and exports are recorded (who, what, which record, when; never content),
the auditor reads it, and nobody can change it (no code path, and the database refuses)."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from sqlalchemy import Engine, text

from bot.settings import Settings
from storage import staff as staffdb
from storage.db import session_factory, transaction
from tests.e2e.kit import parent_opens_case, session_for, staffed_console

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(settings, ("sato", "concierge"), ("kansa", "auditor"), ("boss", "supervisor")) as a:
        yield a


async def test_auditor_reads_who_did_what_without_content(app: FastAPI) -> None:
    case_id = parent_opens_case(app.state.runtime.engine, "p-audit", "実家が遠くて頼れる人がいません")
    sato = await session_for(app, "sato")
    async with sato:
        await sato.client.get(f"/cases/{case_id}")
        await sato.post(f"/cases/{case_id}/reply", {"text": "秘密の返信本文"})
        await sato.post(f"/cases/{case_id}/notes", {"text": "秘密のメモ本文"})
        await sato.client.get(f"/cases/{case_id}/export")
    kansa = await session_for(app, "kansa")
    async with kansa:
        page = await kansa.client.get("/audit", params={"actor": "sato"})
        assert page.status_code == 200
        for label in ("閲覧", "返信", "作成", "書き出し", "ケース", "内部メモ"):
            assert label in page.text
        assert "秘密" not in page.text and "実家が遠くて" not in page.text
        filtered = await kansa.client.get("/audit", params={"record_type": "case", "record_id": str(case_id)})
        assert filtered.text.count(f'href="/cases/{case_id}"') >= 3
        # the auditor can read the case but not act on it
        case_page = await kansa.client.get(f"/cases/{case_id}")
        assert case_page.status_code == 200 and "<textarea" not in case_page.text
        assert (await kansa.post(f"/cases/{case_id}/reply", {"text": "監査担当から"})).status_code == 403
    with app.state.runtime.sessions() as s:
        entries = staffdb.audit_entries(s, limit=1000)
    assert ("kansa", "view", "audit") in [(e.actor, e.action, e.record_type) for e in entries]  # reading is logged too
    assert all("秘密" not in f"{e.detail}{e.record_id}" for e in entries)


async def test_console_has_no_route_that_changes_the_audit_log(app: FastAPI) -> None:
    boss = await session_for(app, "boss")
    async with boss:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = await boss.client.request(method, "/audit", data={"csrf_token": boss.csrf})
            assert r.status_code == 405


def test_no_code_updates_or_deletes_audit_rows() -> None:
    """Only storage.staff.audit writes the table, and only by adding rows."""
    for path in [
        *ROOT.glob("handlers/*.py"),
        *ROOT.glob("storage/*.py"),
        *ROOT.glob("bot/**/*.py"),
        *ROOT.glob("scheduler/*.py"),
    ]:
        source = path.read_text(encoding="utf-8")
        if "AuditEntry" not in source and "auditlog" not in source:
            continue
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("update", "delete"):
                args = ast.unparse(node)
                assert "AuditEntry" not in args and "auditlog" not in args, f"{path}: {args}"
    module = (ROOT / "storage" / "staff.py").read_text(encoding="utf-8")
    tree = ast.parse(module)
    audit_functions = [f.name for f in tree.body if isinstance(f, ast.FunctionDef) and "audit" in f.name]
    assert sorted(audit_functions) == ["audit", "audit_entries"]


def test_the_database_refuses_to_change_audit_rows(db: Engine) -> None:
    with transaction(session_factory(db)) as s:
        staffdb.audit(s, actor="sato", action="view", record_type="case", record_id=1)
    with pytest.raises(sqlalchemy.exc.DatabaseError), db.begin() as conn:
        conn.execute(text("UPDATE auditlog SET actor = 'someone-else'"))
    if db.dialect.name == "postgresql":
        with pytest.raises(sqlalchemy.exc.DatabaseError), db.begin() as conn:
            conn.execute(text("DELETE FROM auditlog"))
    with db.connect() as conn:
        assert conn.execute(text("SELECT actor FROM auditlog")).scalars().all() == ["sato"]

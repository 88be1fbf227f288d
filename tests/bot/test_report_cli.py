"""`concierge report`, `concierge records ...` and `concierge scheduler --list` as staff run them: real
processes against the test database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from storage import crud
from storage.db import SessionFactory, transaction
from storage.lifecycle import DisposalLog, RecordRequest
from storage.models import Basis, CaseStatus, ConsentStatus, Contact

BIN = Path(sys.executable).parent / "concierge"
JST = dt.timezone(dt.timedelta(hours=9))


def run(db: Engine, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db.url.render_as_string(hide_password=False)}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False)


def test_report_prints_the_month_and_writes_csv(db: Engine, sessions: SessionFactory, tmp_path: Path) -> None:
    with transaction(sessions) as s:
        for day in range(1, 32):
            at = dt.datetime(2026, 10, day, 11, 0, tzinfo=JST)
            for _ in range(6):
                crud.count_event(
                    s, channel="line", outcome="answer", lang="ja", topic="child_allowance", after_hours=False, at=at
                )
        crud.count_event(
            s,
            channel="email",
            outcome="handoff",
            lang="en",
            topic=None,
            after_hours=True,
            at=dt.datetime(2026, 10, 2, 20, tzinfo=JST),
        )
    out = tmp_path / "report.csv"
    result = run(db, "report", "--month", "2026-10", "--csv", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2026年10月の統計" in result.stdout
    assert "相談件数：187件（1開館日あたり 6.0件、目安 5件：目安以上）" in result.stdout
    assert "開館日数：31日" in result.stdout
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: spreadsheet software reads Japanese correctly
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "section,key,value" and "summary,consultations,187" in lines
    assert "channel,email,1" in lines and "lang,en,1" in lines

    bad = run(db, "report", "--month", "2026-13", cwd=tmp_path)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr


def test_records_purge_erase_export(db: Engine, sessions: SessionFactory, tmp_path: Path) -> None:
    with transaction(sessions) as s:
        parent = crud.get_or_create_contact(s, channel="line", external_id="U-cli")
        crud.record_consent(s, contact=parent, status=ConsentStatus.GRANTED, notice_version="2026-11")
        case = crud.create_case(s, contact=parent, lang="ja", topic="parenting_worries")
        crud.add_message(s, case=case, direction="in", author="parent", text="夜泣きの相談", basis=Basis.CONSENT)
        old = crud.create_case(s, contact=parent, lang="ja", topic=None)
        crud.set_case_status(s, case=old, status=CaseStatus.RESOLVED)
        old.resolved_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=6 * 366)
        s.add(old)

    dry = run(db, "records", "purge", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "case\t1" in dry.stdout and "dry run" in dry.stdout
    with sessions() as s:
        assert list(s.exec(select(DisposalLog))) == []
    done = run(db, "records", "purge", cwd=tmp_path)
    assert done.returncode == 0 and "case\t1" in done.stdout
    with sessions() as s:
        assert {e.source for e in s.exec(select(DisposalLog))} == {"cli"}

    export = run(db, "records", "export", "--channel", "line", "--id", "U-cli", "--by", "sato", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    data = json.loads(export.stdout)
    assert data["cases"][0]["messages"][0]["text"] == "夜泣きの相談"
    as_text = run(
        db,
        "records",
        "export",
        "--channel",
        "line",
        "--id",
        "U-cli",
        "--format",
        "text",
        "--output",
        "x.txt",
        cwd=tmp_path,
    )
    assert "夜泣きの相談" in (tmp_path / "x.txt").read_text(encoding="utf-8") and as_text.stdout == ""

    erase = run(db, "records", "erase", "--channel", "line", "--id", "U-cli", "--by", "sato", cwd=tmp_path)
    assert erase.returncode == 0, erase.stderr
    summary = json.loads(erase.stdout)
    assert summary["status"] == "done" and summary["erased"]["case"] == 1
    assert [k["record"] for k in summary["kept"]] == ["consent_ledger"]
    with sessions() as s:
        assert s.exec(select(Contact).where(Contact.external_id == "U-cli")).first() is None
        assert [(r.kind, r.requested_by) for r in s.exec(select(RecordRequest))] == [
            ("export", "staff:sato"),
            ("export", "staff:cli"),
            ("erase", "staff:sato"),
        ]
    missing = run(db, "records", "erase", "--channel", "line", "--id", "U-cli", cwd=tmp_path)
    assert missing.returncode == 1 and "no such contact" in missing.stderr


def test_scheduler_list_and_waiting_requests(db: Engine, tmp_path: Path) -> None:
    result = run(db, "scheduler", "--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stored job(s)" in result.stdout
    waiting = run(db, "records", "requests", cwd=tmp_path)
    assert waiting.returncode == 0 and "0 export request(s) waiting" in waiting.stdout

"""Backups of the live database and restores into an empty one, on SQLite and PostgreSQL.

The round trip runs while the web app serves under uvicorn and parents keep writing: a backup taken during the
traffic restores to a consistent database holding everything written before it began, and one taken when the
traffic stops restores to a database identical table by table (cases, transcripts, consent ledger, audit log,
notices, disposal log and every other table)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel, col, select

from bot.app import create_app
from bot.cli import main
from bot.runtime import Runtime
from bot.settings import Settings
from handlers import channels
from scheduler import backups
from scheduler.core import JobEvent, Once, Scheduler
from scheduler.jobs import standard_jobs
from storage import backup
from storage import notices as noticedb
from storage import staff as staffdb
from storage.db import make_engine, transaction
from storage.lifecycle import DisposalLog, log_disposal
from storage.migrate import alembic_config, upgrade
from tests import pg
from tests.e2e.kit import live_server, parent_opens_case, staff_settings


def disposal_log(session: Session) -> list[DisposalLog]:
    return list(session.exec(select(DisposalLog).order_by(col(DisposalLog.id))))


# The scheduler is off here and job rows are not records; the worker heartbeat is a liveness row the serving
# app rewrites every 2 s (a backup of the live KB's history can take longer than that).
SKIP_TABLES = {"apscheduler_jobs", "workerheartbeat"}


def _dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in primary-key order."""
    out: dict[str, list[tuple[object, ...]]] = {}
    names = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in SKIP_TABLES or table.name not in names:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            out[table.name] = [tuple(r) for r in conn.execute(table.select().order_by(*order))]
    return out


def _seed(rt: Runtime, n: int, prefix: str) -> None:
    for i in range(n):
        case_id = parent_opens_case(rt.engine, f"{prefix}-{i}", text=f"相談の本文 {prefix} {i}")
        with transaction(rt.sessions) as s:
            staffdb.audit(s, actor="sato", action="view", record_type="case", record_id=case_id)


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the same kind as the one under test."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = pg.create_database()
    try:
        yield pg.url_for(name)
    finally:
        pg.drop_database(name)


def _restore_cli(monkeypatch: pytest.MonkeyPatch, url: str, path: Path) -> Engine:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["restore", str(path)]) == 0
    return make_engine(url)


def test_round_trip_while_serving(
    settings: Settings,
    runtime: Runtime,
    db: Engine,
    tmp_path: Path,
    fresh_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BACKUP__PASSPHRASE", "correct horse battery staple")
    _seed(runtime, 4, "before")
    with transaction(runtime.sessions) as s:
        noticedb.create_notice(
            s,
            channels=channels.notice_channels(),
            title="健診のお知らせ",
            texts={"ja": "4か月健診があります"},
            topic="health",
            created_by="sato",
            send_at=dt.datetime(2027, 1, 5, 1, 0, tzinfo=dt.UTC),
        )
        log_disposal(s, kind="transcript", count=2, source="scheduler")
    before = _dump(db)

    app = create_app(staff_settings(settings), runtime=runtime)
    stop = threading.Event()
    written = []

    def traffic() -> None:  # parents keep writing while the backup runs
        i = 0
        while not stop.is_set():
            _seed(runtime, 1, f"during-{i}")
            written.append(i)
            i += 1

    during = tmp_path / "during.kcbak"
    quiet = tmp_path / "quiet.kcbak"
    with live_server(app) as base:
        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            assert httpx.get(f"{base}/healthz").status_code == 200
            while len(written) < 2:  # the backup starts with writes under way
                threading.Event().wait(0.01)
            assert main(["backup", str(during)]) == 0
        finally:
            stop.set()
            worker.join(60)
        assert main(["backup", str(quiet)]) == 0  # server still up, nothing writing
        final = _dump(db)
    assert "encrypted" in capsys.readouterr().out
    assert backup.read_info(quiet).encrypted and b"before-0" not in quiet.read_bytes()

    restored = _restore_cli(monkeypatch, fresh_url, quiet)
    try:
        assert _dump(restored) == final
        with restored.connect() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        with db.connect() as conn:
            assert head == conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        restored.dispose()

    # the backup taken mid-traffic: a consistent state holding everything written before it started
    sqlite = fresh_url.startswith("sqlite")
    name = "" if sqlite else pg.create_database()
    second = fresh_url + "-mid" if sqlite else pg.url_for(name)
    try:
        mid = _restore_cli(monkeypatch, second, during)
        try:
            got = _dump(mid)
            for table, rows in before.items():
                assert {repr(r) for r in rows} <= {repr(r) for r in got[table]}, table
            case_ids = {r[0] for r in got["case"]}
            assert all(m[1] in case_ids for m in got["message"])  # no transcript line without its case
            assert len(got["case"]) < len(final["case"])
        finally:
            mid.dispose()
    finally:
        if not sqlite:
            pg.drop_database(name)


@pytest.mark.postgres
def test_the_commands_explain_an_unusable_database(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "b.kcbak"
    backup.backup(db, path)
    missing = "postgresql://postgres@127.0.0.1:5432/kc_no_such_database"
    monkeypatch.setenv("DATABASE_URL", missing)
    assert main(["restore", str(path)]) == 1
    assert "create an empty database first" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "c.kcbak")]) == 1
    assert 'database "kc_no_such_database" does not exist' in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", str(db.url.render_as_string(hide_password=False)))
    assert main(["restore", str(path)]) == 1  # the live database: refused, it has tables
    assert "not empty" in capsys.readouterr().err


def test_restore_refuses_a_database_with_tables(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "b.kcbak"
    backup.backup(db, path)
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(db, path)


def test_restore_refuses_wrong_secret_tampering_and_truncation(db: Engine, tmp_path: Path, fresh_url: str) -> None:
    path = tmp_path / "b.kcbak"
    backup.backup(db, path, secret=backup.Secret(passphrase="right"))
    target = make_engine(fresh_url)
    try:
        with pytest.raises(backup.BackupError, match="encrypted"):
            backup.restore(target, path)
        with pytest.raises(backup.BackupError, match="wrong key"):
            backup.restore(target, path, secret=backup.Secret(passphrase="wrong"))
        data = bytearray(path.read_bytes())
        data[-5] ^= 0x01
        bad = tmp_path / "flipped.kcbak"
        bad.write_bytes(bytes(data))
        with pytest.raises(backup.BackupError, match="altered"):
            backup.restore(target, bad, secret=backup.Secret(passphrase="right"))
        (hlen,) = struct.unpack(">I", data[9:13])
        short = tmp_path / "short.kcbak"
        short.write_bytes(path.read_bytes()[: 13 + hlen + 100])
        with pytest.raises(backup.BackupError, match="truncated"):
            backup.restore(target, short, secret=backup.Secret(passphrase="right"))
        assert backup.user_tables(target) == []  # nothing half-restored
        upgrade(target)
    finally:
        target.dispose()


def test_key_encryption_and_plain_round_trip(db: Engine, tmp_path: Path, fresh_url: str) -> None:
    key = backup.Secret.from_values(key_b64="A" * 43 + "=", passphrase=None)
    assert key is not None and key.key is not None
    path = tmp_path / "k.kcbak"
    info = backup.backup(db, path, secret=key)
    assert info.encrypted and info.revision is not None
    target = make_engine(fresh_url)
    try:
        with pytest.raises(backup.BackupError, match="BACKUP__KEY"):
            backup.restore(target, path, secret=backup.Secret(passphrase="x"))
        backup.restore(target, path, secret=key)
        assert _dump(target) == _dump(db)
    finally:
        target.dispose()
    with pytest.raises(backup.BackupError, match="32 bytes"):
        backup.Secret.from_values(key_b64="QUJD", passphrase=None)


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    t0 = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)
    for d in range(5):
        (tmp_path / backup.backup_name(t0 + dt.timedelta(days=d))).write_bytes(b"x")
    removed = backup.prune(tmp_path, keep=2)
    assert [p.name for p in removed] == [backup.backup_name(t0 + dt.timedelta(days=d)) for d in range(3)]
    assert len(backup.list_backups(tmp_path)) == 2


def _backup_settings(settings: Settings, folder: Path, **values: object) -> Settings:
    conf = settings.backup.model_copy(update={"enabled": True, "dir": folder, "keep": 2, **values})
    return settings.model_copy(update={"backup": conf})


def test_the_daily_job_backs_up_prunes_and_logs_the_removal(
    settings: Settings, runtime: Runtime, db: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    conf = _backup_settings(settings, folder, passphrase=SecretStr("a long passphrase"))
    assert backups.JOB_ID not in {s.id for s in standard_jobs(settings)}  # off by default
    spec = next(s for s in standard_jobs(conf) if s.id == backups.JOB_ID)
    assert "daily 02:30:00" in spec.definition
    _seed(runtime, 1, "job")
    t0 = dt.datetime(2026, 11, 28, 17, 30, tzinfo=dt.UTC)
    for d in range(2):  # two older backups in the folder
        backups.run_backup(conf, source="cli", now=t0 + dt.timedelta(days=d))

    scheduler = Scheduler(settings=conf, sessions=runtime.sessions, workers=1)
    done = threading.Event()
    events: list[JobEvent] = []
    scheduler.on_event(lambda e: (events.append(e), done.set()))
    scheduler.start()
    try:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=300)
        scheduler.schedule(dataclasses.replace(spec, id="backup.test", trigger=Once(when)))
        assert done.wait(30)
    finally:
        scheduler.cancel("backup.test")
        scheduler.shutdown()
    assert [e.kind for e in events] == ["executed"]
    kept = backup.list_backups(folder)
    assert len(kept) == 2 and kept[0].name == backup.backup_name(t0 + dt.timedelta(days=1))
    assert all(backup.read_info(p).encrypted for p in kept)
    with runtime.sessions() as s:
        log = [(r.kind, r.count, r.source) for r in disposal_log(s) if r.kind == backups.DISPOSAL_KIND]
    assert log == [("backup", 1, "scheduler")]
    latest = backup.latest_backup(folder)
    assert latest is not None and latest.path == kept[-1]


def test_a_backup_of_an_older_schema_is_migrated_on_restore(
    tmp_path: Path, fresh_url: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite = db_url.startswith("sqlite")
    name = "" if sqlite else pg.create_database()
    old_url = f"sqlite:///{tmp_path / 'old.db'}" if sqlite else pg.url_for(name)
    old = make_engine(old_url)
    try:
        upgrade(old, "c0ffee000003")  # an installation two versions back
        path = tmp_path / "old.kcbak"
        assert backup.backup(old, path).revision == "c0ffee000003"
    finally:
        old.dispose()
        if not sqlite:
            pg.drop_database(name)
    monkeypatch.chdir(tmp_path)
    restored = _restore_cli(monkeypatch, fresh_url, path)
    try:
        with restored.connect() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert head == ScriptDirectory.from_config(alembic_config(fresh_url)).get_current_head()
        assert "noticerun" in backup.user_tables(restored)  # made by a later migration
    finally:
        restored.dispose()

"""`concierge staff add|list|link|passwd|unlock` against both databases (password from stdin)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from bot.cli import main
from storage import staff as staffdb
from storage.db import session_factory, transaction
from storage.models import utcnow


@pytest.fixture
def cli(db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", db.url.render_as_string(hide_password=False))

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_staff_add_list_link_passwd_unlock(cli, db: Engine) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("staff", "add", "sato", "--role", "supervisor", "--name", "佐藤", stdin="a-long-password\n")
    assert code == 0 and "created sato (supervisor)" in out
    code, out, _ = cli("staff", "add", "kujo", "--role", "concierge", "--complaint-intake", stdin="another-password\n")
    assert code == 0 and "complaint intake" in out
    assert cli("staff", "add", "sato", "--role", "auditor", stdin="a-long-password\n")[0] == 1
    assert cli("staff", "add", "Bad Name", "--role", "auditor", stdin="a-long-password\n")[0] == 2
    assert cli("staff", "add", "short", "--role", "auditor", stdin="short\n")[0] == 2
    assert cli("staff", "add", "kansa", "--role", "auditor", "--complaint-intake", stdin="a-long-password\n")[0] == 2

    assert cli("staff", "link", "sato", "8123456789")[0] == 0
    code, _, err = cli("staff", "link", "kujo", "8123456789")
    assert code == 1 and "linked to another" in err
    code, out, _ = cli("staff", "list")
    assert "sato\t佐藤\tsupervisor,telegram" in out and "kujo\t-\tconcierge,complaint-intake" in out

    sessions = session_factory(db)
    with transaction(sessions) as s:
        sato = staffdb.get_staff_by_username(s, username="sato")
        assert sato is not None and sato.telegram_user_id == 8123456789  # a 64-bit Telegram id fits
        assert PasswordHasher().verify(sato.password_hash, "a-long-password")
        assert sato.id is not None
        now, hour = utcnow(), dt.timedelta(hours=1)
        attempt = staffdb.reserve_login_attempt(s, staff_id=sato.id, threshold=1, now=now)
        assert attempt == 1
        policy = staffdb.Backoff(threshold=1, base=hour, cap=hour)
        staffdb.record_login_failure(s, staff_id=sato.id, attempt=attempt, policy=policy, now=now)
    assert "locked" in cli("staff", "list")[1]
    assert cli("staff", "unlock", "sato")[0] == 0
    assert cli("staff", "passwd", "sato", stdin="a-new-long-password\n")[0] == 0
    assert cli("staff", "link", "sato", "--unlink")[0] == 0
    with sessions() as s:
        sato = staffdb.get_staff_by_username(s, username="sato")
        assert sato is not None and sato.locked_until is None and sato.telegram_user_id is None
        assert PasswordHasher().verify(sato.password_hash, "a-new-long-password")
        actions = [(e.actor, e.action, e.via) for e in reversed(staffdb.audit_entries(s))]
    assert actions == [
        ("cli", "create", "cli"),
        ("cli", "create", "cli"),
        ("cli", "link_telegram", "cli"),
        ("cli", "unlock", "cli"),
        ("cli", "password", "cli"),
        ("cli", "link_telegram", "cli"),
    ]

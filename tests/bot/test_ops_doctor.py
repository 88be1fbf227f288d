"""`concierge doctor` against real parts: a migrated (or not) database, Dovecot and an SMTP server, closed ports,
and a small local stand-in for the LINE and Telegram APIs for `--online`."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from bot import doctor
from bot.cli import main
from bot.settings import EmailSettings, LineSettings, Settings, TelegramSettings
from storage import backup
from storage.db import make_engine
from storage.migrate import upgrade
from tests.fakes.mailservers import Dovecot, SMTPSink, free_port, shared_dovecot
from tests.handlers.test_email_flow import email_settings

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


def _by_check(results: list[doctor.Finding]) -> dict[str, doctor.Finding]:
    return {r.check: r for r in results}


def _healthy(settings: Settings, tmp_path: Path, db: Engine) -> Settings:
    """A deployment with nothing to complain about (apart from what a test changes)."""
    folder = tmp_path / "backups"
    backup.backup(db, folder / backup.backup_name(NOW - dt.timedelta(hours=2)), secret=backup.Secret(passphrase="p"))
    return settings.model_copy(
        update={
            "public_url": "https://concierge.example.lg.jp",
            "console": settings.console.model_copy(
                update={"session_secret": SecretStr("s" * 32), "secure_cookies": True}
            ),
            "office_hours": settings.office_hours.model_copy(update={"closed_on_holidays": True}),
            "backup": settings.backup.model_copy(update={"enabled": True, "dir": folder, "passphrase": SecretStr("p")}),
        }
    )


def test_a_healthy_deployment_passes(settings: Settings, db: Engine, tmp_path: Path) -> None:
    results = doctor.run_checks(_healthy(settings, tmp_path, db), now=NOW)
    assert doctor.exit_code(results) == 0, doctor.render(results)
    found = _by_check(results)
    assert found["database.schema"].level == "ok" and found["backup.age"].level == "ok"
    assert found["mail"].level == "skip"


def test_doctor_catches_an_empty_secret(
    settings: Settings, db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blank secret reads as unset (the channel stays off); the doctor still says that it was left empty.
    monkeypatch.setenv("LINE_CHANNEL_SECRET", "")
    line = LineSettings(channel_secret="", channel_access_token=" token-with-space")
    conf = _healthy(settings, tmp_path, db).model_copy(update={"line": line})
    results = doctor.run_checks(conf, now=NOW)
    found = _by_check(results)
    assert found["secret.line.channel_secret"].level == "error"
    assert "LINE_CHANNEL_SECRET が空です" in found["secret.line.channel_secret"].ja
    assert "LINE_CHANNEL_ACCESS_TOKEN" in found["secret.line.channel_access_token"].en
    text = doctor.render(results)
    assert "token-with-space" not in text  # never a secret's value
    assert "→" in text and doctor.exit_code(results) == 1


def test_doctor_catches_a_half_configured_channel(settings: Settings, db: Engine, tmp_path: Path) -> None:
    line = LineSettings(channel_secret="s")
    telegram = TelegramSettings(staff_chat_id=-100123)
    conf = _healthy(settings, tmp_path, db).model_copy(update={"line": line, "telegram": telegram})
    found = _by_check(doctor.run_checks(conf, now=NOW))
    assert "LINE_CHANNEL_ACCESS_TOKEN is not" in found["channel.line"].en
    assert "TELEGRAM_BOT_TOKEN" in found["channel.telegram"].fix_en


def test_doctor_catches_a_missing_migration(settings: Settings, db: Engine, tmp_path: Path) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    empty.connect().close()  # an empty database file, never migrated
    conf = _healthy(settings, tmp_path, db).model_copy(update={"database_url": str(empty.url)})
    found = _by_check(doctor.run_checks(conf, now=NOW))
    assert found["database"].level == "ok"
    assert found["database.schema"].level == "error" and "concierge db upgrade" in found["database.schema"].fix_en
    upgrade(empty, "c0ffee000003")  # one migration behind
    found = _by_check(doctor.run_checks(conf, now=NOW))
    assert found["database.schema"].level == "error" and "c0ffee000003" in found["database.schema"].en
    empty.dispose()


def test_doctor_does_not_create_a_missing_sqlite_file(settings: Settings, db: Engine, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "concierge.db"
    conf = _healthy(settings, tmp_path, db).model_copy(update={"database_url": f"sqlite:///{missing}"})
    found = _by_check(doctor.run_checks(conf, now=NOW))
    assert found["database"].level == "error" and "does not exist" in found["database"].en
    assert not missing.parent.exists()


def test_doctor_says_when_the_database_does_not_answer(settings: Settings, db: Engine, tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    conf = _healthy(settings, tmp_path, db).model_copy(update={"database_url": url})
    found = _by_check(doctor.run_checks(conf, now=NOW))
    assert found["database"].level == "error" and "DATABASE_URL" in found["database"].fix_en


def _mail(d: Dovecot, smtp: SMTPSink, **overrides: Any) -> EmailSettings:
    return email_settings(d, smtp, **overrides)


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink(username="bot", password="smtp-secret").start()
    yield sink
    sink.stop()


def test_doctor_logs_in_to_the_mail_servers_and_catches_an_unreachable_one(
    settings: Settings, db: Engine, tmp_path: Path, smtp: SMTPSink
) -> None:
    d = shared_dovecot()
    base = _healthy(settings, tmp_path, db)
    found = _by_check(doctor.run_checks(base.model_copy(update={"email": _mail(d, smtp)}), now=NOW))
    assert found["mail.imap"].level == "ok" and found["mail.smtp"].level == "ok"

    closed = free_port()
    unreachable = base.model_copy(update={"email": _mail(d, smtp, imap_port=closed, smtp_port=closed)})
    results = doctor.run_checks(unreachable, now=NOW)
    found = _by_check(results)
    assert found["mail.imap"].level == "error" and "接続できません" in found["mail.imap"].ja
    assert f"127.0.0.1:{closed}" in found["mail.smtp"].en and doctor.exit_code(results) == 1

    wrong = base.model_copy(update={"email": _mail(d, smtp, imap_password="nope", smtp_password="nope")})
    found = _by_check(doctor.run_checks(wrong, now=NOW))
    assert "ログインできません" in found["mail.imap"].ja and "log in" in found["mail.smtp"].en


def test_retention_backups_office_hours_and_public_url(settings: Settings, db: Engine, tmp_path: Path) -> None:
    base = _healthy(settings, tmp_path, db)
    conf = base.model_copy(
        update={
            "public_url": "http://concierge.example.lg.jp",
            "line": LineSettings(channel_secret="s", channel_access_token="t"),
            "retention": base.retention.model_copy(update={"transcript_years": 6, "pending_minutes": 45}),
            "backup": base.backup.model_copy(update={"keep": 60}),
            "office_hours": base.office_hours.model_copy(update={"closed_on_holidays": False}),
        }
    )
    found = _by_check(doctor.run_checks(conf, now=NOW + dt.timedelta(days=2)))
    assert found["public_url"].level == "error"  # LINE needs HTTPS
    assert found["retention"].level == "error" and found["retention.pending"].level == "error"
    assert found["retention.backups"].level == "error"
    assert found["backup.age"].level == "error"  # two days old
    assert found["office_hours.holidays"].level == "warn"


def test_retention_other_than_the_consent_notice_promises_is_an_error(settings: Settings) -> None:
    # The notice in force (knowledge/kb/consent/2026-11.yaml) promises 1 and 5 years.
    assert "retention.notice" not in _by_check(list(doctor.check_retention(settings)))
    longer = settings.model_copy(update={"retention": settings.retention.model_copy(update={"case_years": 10})})
    found = _by_check(list(doctor.check_retention(longer)))
    assert found["retention.notice"].level == "error" and "2026-11" in found["retention.notice"].en
    assert "retention" not in found  # no "matches the consent notice" beside it


def test_the_command_exits_non_zero_on_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSOLE_SESSION_SECRET", "")
    assert main(["doctor", "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"check": "secret.console.session_secret", "level": "error"}.items() <= next(
        r for r in rows if r["check"] == "secret.console.session_secret"
    ).items()


# ----- --online, against a local stand-in for the two APIs


class _FakeAPIs(BaseHTTPRequestHandler):
    webhook: ClassVar[dict[str, Any]] = {}
    member: ClassVar[dict[str, Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        routes: dict[str, tuple[int, Any]] = {
            "/v2/bot/info": (200, {"basicId": "@kosodate"}),
            "/v2/bot/channel/webhook/endpoint": (200, self.webhook),
            "/botTOKEN/getMe": (200, {"ok": True, "result": {"id": 42, "is_bot": True}}),
            "/botTOKEN/getChat": (200, {"ok": True, "result": {"id": -100, "is_forum": True}}),
            "/botTOKEN/getChatMember": (200, {"ok": True, "result": self.member}),
        }
        path = self.path.split("?")[0]
        if path.startswith("/v2/") and self.headers.get("Authorization") != "Bearer good":
            status, body = 401, {"message": "Authentication failed"}
        else:
            status, body = routes.get(path, (404, {}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def apis() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAPIs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_online_checks_of_line_and_telegram(settings: Settings, db: Engine, tmp_path: Path, apis: str) -> None:
    base = _healthy(settings, tmp_path, db)

    def conf(token: str) -> Settings:
        return base.model_copy(
            update={
                "line": LineSettings(channel_secret="s", channel_access_token=token, api_base_url=apis),
                "telegram": TelegramSettings(bot_token="TOKEN", staff_chat_id=-100, api_base_url=f"{apis}/bot"),
            }
        )

    _FakeAPIs.webhook = {"endpoint": "https://concierge.example.lg.jp/webhooks/line", "active": True}
    _FakeAPIs.member = {"status": "administrator", "can_manage_topics": True}
    found = _by_check(doctor.run_checks(conf("good"), online=True, now=NOW))
    assert found["line.token"].level == "ok" and found["line.webhook"].level == "ok"
    assert found["telegram"].level == "ok"

    _FakeAPIs.webhook = {"endpoint": "http://old.example.jp/callback", "active": True}
    _FakeAPIs.member = {"status": "member"}
    found = _by_check(doctor.run_checks(conf("good"), online=True, now=NOW))
    assert found["line.webhook"].level == "error" and "http://old.example.jp/callback" in found["line.webhook"].en
    assert found["telegram.rights"].level == "error"
    found = _by_check(doctor.run_checks(conf("expired"), online=True, now=NOW))
    assert found["line.token"].level == "error" and "401" in found["line.token"].en

"""Empty or blank secrets count as unset, for every secret of every channel (review F8): the channel stays
off (an empty LINE secret would accept any body signed with b""), and `concierge serve` says so at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.cli import channel_report
from bot.settings import ConsoleSettings, EmailSettings, LineSettings, Settings, TelegramSettings
from handlers.channels.line import WEBHOOK_PATH, sign
from tests.e2e.kit import staffed_console
from tests.fakes.line_api import encode, user_id, webhook

ROOT = Path(__file__).resolve().parents[2]
BLANKS = ["", " ", "\t", "\n", "  \r\n"]

SECRET_VARS = {
    "LINE_CHANNEL_SECRET": lambda s: s.line.channel_secret,
    "LINE_CHANNEL_ACCESS_TOKEN": lambda s: s.line.channel_access_token,
    "TELEGRAM_BOT_TOKEN": lambda s: s.telegram.bot_token,
    "TELEGRAM_WEBHOOK_SECRET": lambda s: s.telegram.webhook_secret,
    "IMAP_PASSWORD": lambda s: s.email.imap_password,
    "SMTP_PASSWORD": lambda s: s.email.smtp_password,
    "CONSOLE_SESSION_SECRET": lambda s: s.console.session_secret,
}


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
@pytest.mark.parametrize("name", list(SECRET_VARS))
def test_a_blank_secret_in_the_environment_is_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, blank: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv(name, blank)
    assert SECRET_VARS[name](Settings()) is None


def test_a_blank_secret_in_dot_env_or_given_directly_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("LINE_CHANNEL_SECRET=\nLINE_CHANNEL_ACCESS_TOKEN=token\nIMAP_PASSWORD=' '\n")
    settings = Settings()
    assert settings.line.channel_secret is None and not settings.line.enabled
    assert settings.email.imap_password is None
    assert LineSettings(channel_secret=SecretStr(" "), channel_access_token="t").enabled is False
    assert TelegramSettings(bot_token="", staff_chat_id=1).enabled is False
    assert ConsoleSettings(session_secret="").session_secret is None
    assert EmailSettings(smtp_password=SecretStr("")).smtp_password is None
    kept = LineSettings(channel_secret=" s3cret ", channel_access_token="t")  # real values are kept as given
    assert kept.channel_secret is not None and kept.channel_secret.get_secret_value() == " s3cret "


async def test_an_empty_line_secret_leaves_the_channel_off(settings: Settings) -> None:
    line = LineSettings(channel_secret="", channel_access_token="token")
    async with staffed_console(settings.model_copy(update={"line": line})) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body = encode(webhook("text", user=user_id()))
            response = await client.post(WEBHOOK_PATH, content=body, headers={"x-line-signature": sign("", body)})
        assert response.status_code == 404  # no LINE route at all: nothing signed with b"" gets in
        assert "line" not in app.state.inbox.adapters


def test_the_report_names_the_unset_settings_and_never_a_value() -> None:
    settings = Settings(
        line=LineSettings(channel_secret="", channel_access_token="tok-very-secret"),
        telegram=TelegramSettings(bot_token="bot-very-secret", staff_chat_id=-100, mode="webhook", webhook_secret=" "),
        email=EmailSettings(imap_host="imap.example", imap_password="imap-very-secret"),
        console=ConsoleSettings(session_secret="console-very-secret"),
    )
    lines = channel_report(settings)
    assert lines == [
        "channel LINE: off (LINE_CHANNEL_SECRET unset or empty)",
        "channel email: on",
        "channel Telegram staff bridge: refused (webhook mode needs TELEGRAM_WEBHOOK_SECRET: unset or empty)",
        "staff console: on",
    ]
    assert "very-secret" not in "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_logs_each_channel_at_start(settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "TELEGRAM_", "IMAP_", "CONSOLE_"))}
    env.update(
        DATABASE_URL=settings.database_url,
        PYTHONPATH=str(ROOT),
        LINE_CHANNEL_SECRET="",
        LINE_CHANNEL_ACCESS_TOKEN="token-value-never-logged",
        SCHEDULER__MODE="off",
    )
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(_free_port())]
    child = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(90, child.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        assert child.stderr is not None
        for line in child.stderr:
            seen.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
    finally:
        watchdog.cancel()
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        if child.stderr is not None:
            child.stderr.close()
    text = "".join(seen)
    assert "channel LINE: off (LINE_CHANNEL_SECRET unset or empty)" in text
    assert "channel email: off" in text and "channel Telegram staff bridge: off" in text
    assert "token-value-never-logged" not in text

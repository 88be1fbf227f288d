"""Settings: one `.env` switch for every section, one spelling per variable, defaults taken from the domain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.settings import FLAT_SECTIONS, Settings, ignored_spellings
from handlers.engine import EngineConfig
from handlers.hours import OfficeHours
from knowledge.matcher import MatchConfig
from storage.retention import Retention

DOT_ENV = """\
LINE_CHANNEL_SECRET=dev-secret
LINE_CHANNEL_ACCESS_TOKEN=dev-token
IMAP_HOST=imap.dev.example
TELEGRAM_BOT_TOKEN=dev-bot
TELEGRAM_STAFF_CHAT_ID=-100
CONSOLE_SECURE_COOKIES=true
MATCH__MARGIN=3
"""


@pytest.fixture
def dev_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A developer's `.env` in the working directory, and none of its names in the environment."""
    for line in DOT_ENV.splitlines():
        monkeypatch.delenv(line.split("=")[0], raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(DOT_ENV, encoding="utf-8")
    return tmp_path / ".env"


def test_a_disabled_env_file_is_disabled_for_the_channels_too(dev_env: Path) -> None:
    off = Settings(_env_file=None)
    assert not off.line.enabled and not off.email.enabled and not off.telegram.enabled
    assert off.console.secure_cookies is False and off.match.margin == MatchConfig().margin
    on = Settings()
    assert on.line.enabled and on.email.imap_host == "imap.dev.example" and on.telegram.enabled
    assert on.console.secure_cookies is True and on.match.margin == 3


def test_the_environment_wins_over_the_env_file(dev_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_HOST", "imap.env.example")
    assert Settings().email.imap_host == "imap.env.example"


def test_a_channel_setting_has_one_spelling(dev_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev_env.write_text("LINE__CHANNEL_SECRET=nested\nLINE__CHANNEL_ACCESS_TOKEN=nested\n", encoding="utf-8")
    monkeypatch.setenv("EMAIL__IMAP_HOST", "imap.nested.example")
    monkeypatch.setenv("TELEGRAM", '{"bot_token": "json", "staff_chat_id": -1}')
    settings = Settings()
    assert not settings.line.enabled and not settings.email.enabled and not settings.telegram.enabled
    assert ignored_spellings(dev_env) == [
        "EMAIL__IMAP_HOST",
        "LINE__CHANNEL_ACCESS_TOKEN",
        "LINE__CHANNEL_SECRET",
        "TELEGRAM",
    ]
    assert ignored_spellings(None) == ["EMAIL__IMAP_HOST", "TELEGRAM"]


def test_every_channel_section_is_a_plain_model() -> None:
    from pydantic_settings import BaseSettings

    for section in FLAT_SECTIONS:
        model = Settings.model_fields[section].annotation
        assert isinstance(model, type) and not issubclass(model, BaseSettings), section


def test_the_defaults_are_the_domains_own(dev_env: Path) -> None:
    dev_env.unlink()
    config = Settings(_env_file=None).engine_config()
    domain = EngineConfig()
    assert config.notice_version == domain.notice_version
    assert config.pending_ttl == domain.pending_ttl == dt.timedelta(minutes=30)
    kept, retention = Settings(_env_file=None).retention, Retention()
    assert (kept.case_years, kept.transcript_years) == (retention.case_years, retention.transcript_years)
    assert (config.default_lang, config.languages) == (domain.default_lang, domain.languages)
    assert config.office_hours == OfficeHours()


def test_doctor_warns_about_an_ignored_spelling(dev_env: Path) -> None:
    from bot.doctor import check_spellings

    [fine] = check_spellings(dev_env)
    assert fine.level == "ok"
    dev_env.write_text("LINE__CHANNEL_SECRET=nested\n", encoding="utf-8")
    [warning] = check_spellings(dev_env)
    assert warning.level == "warn" and "LINE__CHANNEL_SECRET" in warning.en

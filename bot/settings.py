"""Configuration from environment variables and `.env` (see the README's configuration reference)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from handlers.engine import EngineConfig
from handlers.hours import OfficeHours
from knowledge.loader import DEFAULT_KB_PATH
from knowledge.matcher import MatchConfig
from storage.retention import Retention

# The domain's own defaults: the settings read them from here instead of repeating them.
_ENGINE = EngineConfig()
_RETENTION = Retention()
_HOURS = OfficeHours()
_MATCH = MatchConfig()


def _unset_if_blank(value: object) -> object:
    """An empty or blank secret (`LINE_CHANNEL_SECRET=` in .env) is no secret: it counts as unset, so the
    feature it guards stays off instead of running with an empty key."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str) and not value.strip():
        return None
    return value


# Every secret and token in the settings is of this type: the rule above holds for all of them.
Secret = Annotated[SecretStr | None, BeforeValidator(_unset_if_blank)]


class LineSettings(BaseModel):
    channel_secret: Secret = None
    channel_access_token: Secret = None
    api_base_url: str | None = None

    @property
    def enabled(self) -> bool:
        return self.channel_secret is not None and self.channel_access_token is not None


class TelegramSettings(BaseModel):
    bot_token: Secret = None
    staff_chat_id: int | None = None
    api_base_url: str | None = None
    mode: Literal["polling", "webhook"] = "polling"  # webhook: Telegram posts to PUBLIC_URL/webhooks/telegram
    webhook_secret: Secret = None  # X-Telegram-Bot-Api-Secret-Token; required in webhook mode
    allow_content: bool = False  # alerts carry message text only when this is set
    alert_poll_seconds: float = 5.0
    # Complaints never go to the shared staff chat: to this chat of the complaint intake people, or (unset)
    # as direct messages to the linked supervisors and complaint-intake staff who have started the bot.
    complaint_chat_id: int | None = None

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and self.staff_chat_id is not None


class ConsoleSettings(BaseModel):
    """The staff web console (CONSOLE_*)."""

    session_secret: Secret = None  # keys session digests and login-form tokens; unset: random per start
    idle_timeout_minutes: float = 30.0
    session_max_hours: float = 12.0
    lockout_threshold: int = 5
    lockout_minutes: float = 15.0  # the first lockout; each consecutive one lasts twice as long
    lockout_max_minutes: float = 24 * 60.0
    address_threshold: int = 20  # failed logins from one client address (any usernames) before it is blocked
    address_window_minutes: float = 60.0  # failures from an address quiet for this long are forgotten
    secure_cookies: bool = False  # set when served over HTTPS
    reply_target_minutes: int = 60  # first reply within this many office-hours minutes
    poll_seconds: float = 10.0
    urgent_target_minutes: int = 10  # an urgent case is answered within this many minutes (wall clock)
    stream_seconds: float = 300.0  # a live-update stream is closed after this long; the browser reconnects


class EmailSettings(BaseModel):
    """The concierge mailbox: IMAP intake, SMTP replies. The channel is on when IMAP_HOST is set."""

    email_address: str | None = None
    imap_host: str | None = None
    imap_port: int = 993
    imap_user: str | None = None
    imap_password: Secret = None
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_folder: str = "INBOX"
    imap_processed_folder: str | None = None  # move processed mail here; unset: flag it as seen
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: Secret = None
    smtp_security: Literal["ssl", "starttls", "none"] = "starttls"
    email_poll_seconds: float = 60.0
    email_max_replies_per_hour: int = 5  # automatic answers per sender and hour; 0: no cap
    # Authentication-Results are trusted only from our receiving server, named by its authserv-id (the first
    # word of the header it adds). Unset: no such header is trusted and every sender counts as unverified
    # only when EMAIL_REQUIRE_AUTH is on (which then needs the id).
    email_authserv_id: str | None = None
    email_require_auth: bool = False  # on: mail without a passing result from our server is unverified

    @property
    def enabled(self) -> bool:
        return self.imap_host is not None


class MatchSettings(BaseModel):
    answer_threshold: float = _MATCH.answer_threshold
    clarify_threshold: float = _MATCH.clarify_threshold
    margin: float = _MATCH.margin
    min_coverage: float = _MATCH.min_coverage
    sure_threshold: float = _MATCH.sure_threshold
    semantic_weight: float = _MATCH.semantic_weight  # > 0 switches the chiVe meaning signal on (knowledge/matcher.py)

    def config(self) -> MatchConfig:
        return replace(
            _MATCH,
            answer_threshold=self.answer_threshold,
            clarify_threshold=self.clarify_threshold,
            margin=self.margin,
            min_coverage=self.min_coverage,
            sure_threshold=self.sure_threshold,
            semantic_weight=self.semantic_weight,
        )


class OfficeHoursSettings(BaseModel):
    timezone: str = _HOURS.timezone
    days: list[int] = Field(default_factory=lambda: list(_HOURS.days))
    opens: dt.time = _HOURS.opens
    closes: dt.time = _HOURS.closes
    closed_dates: list[dt.date] = Field(default_factory=lambda: sorted(_HOURS.closed_dates))
    closed_on_holidays: bool = _HOURS.closed_on_holidays

    def config(self) -> OfficeHours:
        return OfficeHours(
            timezone=self.timezone,
            days=tuple(self.days),
            opens=self.opens,
            closes=self.closes,
            closed_dates=frozenset(self.closed_dates),
            closed_on_holidays=self.closed_on_holidays,
        )


class RetentionSettings(BaseModel):
    case_years: int = _RETENTION.case_years
    transcript_years: int = _RETENTION.transcript_years
    pending_minutes: int = _RETENTION.pending_minutes
    processed_days: int = _RETENTION.processed_days  # processed channel events and deliveries
    feedback_days: int = _RETENTION.feedback_days  # FAQ feedback (anonymous questions the bot could not answer)


class SchedulerSettings(BaseModel):
    """The job scheduler (scheduler/). auto: web processes elect one leader that runs jobs; external: only
    `concierge scheduler` runs them; off: nothing runs."""

    mode: Literal["auto", "external", "off"] = "auto"
    lock_key: int = 0x6B6F736F  # PostgreSQL advisory lock id
    retry_seconds: float = 5.0  # a waiting process tries the lock this often
    poll_seconds: float = 10.0  # the leader checks its lock and looks for jobs added elsewhere this often
    workers: int = 4
    purge_at: dt.time = dt.time(3, 30)  # daily disposal, office time zone
    sweep_minutes: float = 5.0  # pre-consent buffers and months without consent


class ReportSettings(BaseModel):
    daily_target: int = 5  # consultations per open day (the guideline's measure)
    snapshot_dir: Path | None = None  # when set, last month's CSV is written here on the 1st


class NoticeSettings(BaseModel):
    """Staff notices (handlers/notices.py). Rates are token buckets per channel, kept well below LINE's
    documented limits (multicast 200 requests/s; broadcast 60 requests/hour)."""

    require_approval: bool = True  # every notice waits for a supervisor; false: each notice's own checkbox decides
    line_multicast_per_second: float = 100.0
    line_broadcast: bool = True  # "everyone on LINE" goes out as one broadcast (see broadcast_eligible)
    line_concurrency: int = 4  # multicast calls in flight at once
    claim_ahead: int = 8  # batches formed per transaction, just ahead of the calls (subscriptions re-read then)
    line_timeout_seconds: float = 10.0
    email_per_second: float = 5.0  # SMTP messages per second
    email_batch_size: int = 50
    retry_attempts: int = 6  # per batch on 429/5xx/timeouts, same retry key every time
    backoff_seconds: float = 0.5  # doubled per attempt, up to backoff_max_seconds
    backoff_max_seconds: float = 30.0
    plan_chunk: int = 5000  # delivery rows per INSERT while planning
    age_reminders_at: dt.time = dt.time(9, 30)  # daily, office time zone
    age_catch_up_days: int = 31  # a child whose date passed longer ago than this is not reminded any more
    heartbeat_seconds: float = 5.0  # a process sending a run renews the run's heartbeat this often
    orphaned_after_seconds: float = 30.0  # a run not renewed for this long has no live sender: the leader resumes it
    resume_every_seconds: float = 15.0  # the leader looks for such runs this often (and when it starts leading)


class HttpSettings(BaseModel):
    """The HTTP server's limits (`concierge serve`; README: production). Slow or incomplete requests are cut
    off instead of holding a connection for ever."""

    head_timeout_seconds: float = 10.0  # the request line and headers must arrive within this
    body_timeout_seconds: float = 30.0  # the whole body must arrive within this (408 otherwise)
    keep_alive_seconds: float = 5.0  # an idle kept-alive connection is closed after this
    limit_concurrency: int = 200  # open connections or running requests beyond this get 503 at once
    max_head_bytes: int = 16 * 1024  # a request line plus headers larger than this gets 400


class BackupSettings(BaseModel):
    """Backups (storage/backup.py). The scheduled job is off by default; `concierge backup FILE` always works.
    A key (base64 of 32 bytes) or a passphrase encrypts every backup (AES-256-GCM)."""

    enabled: bool = False  # the daily job `backup.daily`
    dir: Path | None = None  # where the job writes; also where `doctor` looks for the last backup
    at: dt.time = dt.time(2, 30)  # daily, office time zone (before the 03:30 disposal)
    keep: int = 7  # newest backups kept; older ones are deleted and the deletion goes to the disposal log
    key: SecretStr | None = None
    passphrase: SecretStr | None = None
    max_age_hours: float = 26.0  # doctor and /healthz?details=1 complain about an older last backup


class MetricsSettings(BaseModel):
    """Who may read /metrics and /healthz?details=1: a bearer token, or a direct (not proxied) request from an
    allowed address."""

    token: SecretStr | None = None
    allow: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    window_minutes: float = 15.0  # the latency histogram and recent counts look back this far
    queue_age_seconds: float = 300.0  # /healthz?details=1: an older waiting event marks the inbox unhealthy


class LogSettings(BaseModel):
    """`LOG__FORMAT=json` for one JSON object per line; every line carries the request id of its request."""

    format: Literal["text", "json"] = "text"
    level: str = "INFO"


# The channel sections are spelt flat, as they always were documented: `LINE_CHANNEL_SECRET`, `IMAP_HOST`,
# `CONSOLE_IDLE_TIMEOUT_MINUTES` (the email fields carry their own prefixes). Every other section is nested
# with `__` (`MATCH__ANSWER_THRESHOLD`). Each variable has exactly one spelling: `LINE__CHANNEL_SECRET` or a
# JSON `LINE=...` is ignored (`concierge doctor` warns about it).
FLAT_SECTIONS: dict[str, str] = {"line": "line_", "telegram": "telegram_", "console": "console_", "email": ""}


class _FlatSections(PydanticBaseSettingsSource):
    """One source (the environment or the .env file) with the channel sections read by their flat names."""

    def __init__(self, settings_cls: type[BaseSettings], inner: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = {k: v for k, v in self._inner().items() if k not in FLAT_SECTIONS}
        env = self._inner.env_vars
        for section, prefix in FLAT_SECTIONS.items():
            model = self.settings_cls.model_fields[section].annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            found = {name: env[prefix + name] for name in model.model_fields if env.get(prefix + name) is not None}
            if found:
                values[section] = found
        return values


def ignored_spellings(env_file: Path | None = Path(".env")) -> list[str]:
    """Variables in the environment or `env_file` that spell a channel setting the nested way (ignored)."""
    names = set(os.environ)
    if env_file is not None and env_file.is_file():
        names |= set(dotenv_values(env_file))
    sections = tuple(section.upper() for section in FLAT_SECTIONS)
    nested = tuple(f"{section}__" for section in sections)
    return sorted(n for n in names if n.upper() in sections or n.upper().startswith(nested))


class Settings(BaseSettings):
    """Everything the composition root needs. Nested values: `MATCH__ANSWER_THRESHOLD=65` and so on; the
    channel sections by their flat names (FLAT_SECTIONS). `Settings(_env_file=None)` reads no .env at all."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_nested_delimiter="__"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource) and isinstance(dotenv_settings, DotEnvSettingsSource)
        return (
            init_settings,
            _FlatSections(settings_cls, env_settings),
            _FlatSections(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    database_url: str = "sqlite:///./var/concierge.db"
    kb_path: Path = DEFAULT_KB_PATH
    kb_max_source_age_days: int = 365
    consent_notice_version: str | None = _ENGINE.notice_version  # None: the latest version in the KB's consent/
    default_language: str = _ENGINE.default_lang
    languages: list[str] = Field(default_factory=lambda: list(_ENGINE.languages))
    public_url: str = "http://127.0.0.1:8000"
    # The office's name per language; unset: `name` in the KB's deployment.yaml (README: configuration).
    office_names: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = 1_000_000

    match: MatchSettings = Field(default_factory=MatchSettings)
    office_hours: OfficeHoursSettings = Field(default_factory=OfficeHoursSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    line: LineSettings = Field(default_factory=LineSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one language")
        return v

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            notice_version=self.consent_notice_version,
            notice_path=self.kb_path / "consent",
            pending_ttl=dt.timedelta(minutes=self.retention.pending_minutes),
            office_hours=self.office_hours.config(),
            default_lang=self.default_language,
            languages=tuple(self.languages),
        )

    def deployment_names(self) -> dict[str, str]:
        """The office's name per language: OFFICE_NAMES, else the KB's `deployment.yaml`."""
        if self.office_names:
            return dict(self.office_names)
        path = self.kb_path / "deployment.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
        names = (data or {}).get("name") or {}
        return {str(lang): str(name) for lang, name in names.items()}

    def office_name(self, lang: str) -> str:
        """The office's name in `lang` (English, then Japanese, where it has none)."""
        names = self.deployment_names()
        return names.get(lang) or names.get("en") or names.get("ja") or ""

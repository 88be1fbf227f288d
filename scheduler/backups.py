"""The scheduled backup: `backup.daily` at `BACKUP__AT` (office time zone) into `BACKUP__DIR`, keeping the newest
`BACKUP__KEEP`. Off unless `BACKUP__ENABLED=true`.

Policy: run late within 12 hours, coalesced. A backup missed during downtime is still worth taking when the
process is back the same day; a run later than that would only crowd the next one. Old backups are deleted by
the same job after a successful backup (never before: a failing backup must not eat the good ones), and each
deletion is written to the disposal log as kind `backup`: a disposed-of record lives on in backups until the
oldest backup holding it is deleted, and the log shows when that happened.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from scheduler.core import Daily, JobContext, JobSpec, Policy
from storage import backup
from storage.db import make_engine, session_factory, transaction
from storage.lifecycle import log_disposal

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("concierge.backup")

JOB_ID = "backup.daily"
DISPOSAL_KIND = "backup"


def secret_for(settings: Settings) -> backup.Secret | None:
    conf = settings.backup
    return backup.Secret.from_values(
        key_b64=conf.key.get_secret_value() if conf.key else None,
        passphrase=conf.passphrase.get_secret_value() if conf.passphrase else None,
    )


def run_backup(settings: Settings, *, source: str, now: dt.datetime | None = None) -> backup.BackupInfo:
    """Back up into the configured folder, then prune to `keep` and log the deletions."""
    folder = settings.backup.dir
    if folder is None:
        raise backup.BackupError("BACKUP__DIR is not set")
    at = now or dt.datetime.now(dt.UTC)
    engine = make_engine(settings.database_url)
    try:
        info = backup.backup(engine, folder / backup.backup_name(at), secret=secret_for(settings))
        removed = backup.prune(folder, keep=settings.backup.keep)
        if removed:
            with transaction(session_factory(engine)) as session:
                log_disposal(session, kind=DISPOSAL_KIND, count=len(removed), source=source)
    finally:
        engine.dispose()
    log.info(
        "backup written (%d bytes, encrypted=%s); %d old backup(s) removed", info.size, info.encrypted, len(removed)
    )
    return info


def backup_job(ctx: JobContext) -> None:
    run_backup(ctx.settings, source="scheduler")


def backup_spec(settings: Settings) -> JobSpec | None:
    if not settings.backup.enabled or settings.backup.dir is None:
        return None
    return JobSpec(
        id=JOB_ID,
        func=backup_job,
        trigger=Daily(settings.backup.at),
        policy=Policy.run_late(within=dt.timedelta(hours=12), coalesce=True),
    )

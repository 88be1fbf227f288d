"""The jobs, and the standard schedule the leader puts in place.

Each job is a function here taking the `JobContext` and plain ids; it calls into `handlers` and logs counts
only. The standard jobs and why their policies are what they are:

- `records.purge` (daily, `SCHEDULER__PURGE_AT`, 03:30 by default): run late, however late, coalesced:
  disposal is idempotent and what is due should go as soon as the process is back.
- `records.sweep` (every `SCHEDULER__SWEEP_MINUTES`): the 30-minute pre-consent window; run late, coalesced
  (after downtime one sweep catches up), one at a time.
- `stats.snapshot` (1st of the month, 04:00; only when `REPORTS__SNAPSHOT_DIR` is set): last month's CSV;
  run late within 7 days, after that the CLI (`concierge report`) is the way.

- `backup.daily` (daily, `BACKUP__AT`; only when `BACKUP__ENABLED`): a backup into `BACKUP__DIR`, keeping the
  newest `BACKUP__KEEP`; run late within 12 hours (scheduler/backups.py).

- `notices.age` (daily, `NOTICES__AGE_REMINDERS_AT`): age-relative notices; `notices.resume` (at the leader's
  start, then every 15 s): notice runs whose sending process died are finished. See scheduler/notices.py,
  which also holds the per-notice jobs `notice:{id}` (not managed: the console schedules and cancels them).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from handlers import lifecycle, reports
from scheduler import backups, notices
from scheduler.core import Daily, Every, JobContext, JobSpec, Monthly, Policy
from scheduler.service import SchedulerService
from storage.db import SessionFactory

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("concierge.jobs")

# ids of the standard jobs: the leader keeps these in line with the settings
MANAGED = ("records.", "stats.", "notices.", "backup.")


def retention(settings: Settings) -> lifecycle.Retention:
    r = settings.retention
    return lifecycle.Retention(
        case_years=r.case_years,
        transcript_years=r.transcript_years,
        pending_minutes=r.pending_minutes,
        processed_days=r.processed_days,
        feedback_days=r.feedback_days,
    )


def purge_records(ctx: JobContext) -> None:
    counts = lifecycle.purge_records(
        ctx.sessions, retention=retention(ctx.settings), notice_version=ctx.settings.consent_notice_version
    )
    log.info("records purge: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))


def sweep_records(ctx: JobContext) -> None:
    counts = lifecycle.sweep_records(ctx.sessions, retention=retention(ctx.settings))
    if any(counts.values()):
        log.info("records sweep: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))


def snapshot_stats(ctx: JobContext) -> None:
    """Write last month's statistics as CSV into the snapshot folder."""
    folder = ctx.settings.reports.snapshot_dir
    if folder is None:
        return
    hours = ctx.settings.office_hours.config()
    month = reports.previous_month(dt.datetime.now(hours.tz).date())
    with ctx.sessions() as session:
        report = reports.month_report(
            session, month=month, office_hours=hours, daily_target=ctx.settings.reports.daily_target
        )
    path = Path(folder) / f"report-{month}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reports.to_csv(report), encoding="utf-8-sig")
    log.info("statistics snapshot written for %s", month)


def standard_jobs(settings: Settings) -> list[JobSpec]:
    conf = settings.scheduler
    specs = [
        JobSpec(
            id="records.purge",
            func=purge_records,
            trigger=Daily(conf.purge_at),
            policy=Policy.run_late(within=None, coalesce=True),
        ),
        JobSpec(
            id="records.sweep",
            func=sweep_records,
            trigger=Every(dt.timedelta(minutes=conf.sweep_minutes)),
            policy=Policy.run_late(within=None, coalesce=True),
        ),
    ]
    specs.append(notices.age_job(settings))  # notices.age: age-relative reminders (scheduler/notices.py)
    specs.append(notices.resume_job(settings))  # notices.resume: runs left unfinished by a process that died
    daily_backup = backups.backup_spec(settings)  # backup.daily: only when BACKUP__ENABLED (scheduler/backups.py)
    if daily_backup is not None:
        specs.append(daily_backup)
    if settings.reports.snapshot_dir is not None:
        specs.append(
            JobSpec(
                id="stats.snapshot",
                func=snapshot_stats,
                trigger=Monthly(day=1, at=dt.time(4, 0)),
                policy=Policy.run_late(within=dt.timedelta(days=7), coalesce=True),
            )
        )
    return specs


def build_service(settings: Settings, sessions: SessionFactory) -> SchedulerService:
    """The service the web app and `concierge scheduler` run: leader election plus the standard jobs."""
    service = SchedulerService(
        settings=settings,
        sessions=sessions,
        specs=standard_jobs(settings),
        managed=MANAGED,
        at_start=(notices.RESUME_JOB_ID,),  # a notice run left by the previous leader is resumed at once
    )
    service.on_event(notices.missed_listener(sessions))  # a skipped one-off notice shows as missed
    return service

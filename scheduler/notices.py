"""Notice jobs: one job per one-off or recurring notice, and one daily job for age-relative reminders.

- `notice:{id}` runs `send_notice(ctx, notice_id)`: `Once(send_at)` or `Cron(cron)` in the office time zone.
  The notice's misfire choice is its policy: send_late → `Policy.run_late()` (however late, coalesced: after
  downtime one run goes out), skip → `Policy.skip_late(SKIP_AFTER)` (a stale notice is not sent).
  These ids are outside the managed prefixes: the leader never removes them when it starts.
- `notices.age` (daily at `NOTICES__AGE_REMINDERS_AT`, managed) runs `age_reminders(ctx)`: children whose
  birth/due month plus the notice's offset falls on or before today (within `age_catch_up_days`) get the
  notice once (`AgeReminderSent`, written in the same transaction as the run's deliveries).

- `notices.resume` (managed) runs `resume_orphans(ctx)` when a process becomes scheduler leader and then every
  `NOTICES__RESUME_EVERY_SECONDS` (15 s): runs whose heartbeat (renewed every `NOTICES__HEARTBEAT_SECONDS`, 5 s,
  by the process sending them) is older than `NOTICES__ORPHANED_AFTER_SECONDS` (30 s) have lost their sender and
  are finished with their stored retry keys, without duplicates. So a run killed midway is resumed at most
  about 45 s after its process died, or as soon as the leader starts when that is later.

The console calls `schedule_notice` after submit/approve and `unschedule_notice` after cancel.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from handlers import consent
from handlers import notices as sending
from scheduler.core import Cron, Daily, Every, JobContext, JobEvent, JobInfo, JobSpec, Once, Policy
from storage import lifecycle, notice_runs
from storage import notices as store
from storage.db import SessionFactory, transaction
from storage.models import utcnow
from storage.notices import (
    AgeReminderSent,
    Misfire,
    Notice,
    NoticeKind,
    NoticeStatus,
)

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("concierge.jobs")

AGE_JOB_ID = "notices.age"
RESUME_JOB_ID = "notices.resume"
SKIP_AFTER = dt.timedelta(minutes=10)  # a "skip" notice later than this is not sent


class JobWriter(Protocol):
    """A `SchedulerService` or a `Scheduler` (running or paused writer)."""

    def schedule(self, spec: JobSpec) -> JobInfo: ...

    def cancel(self, job_id: str) -> bool: ...


JOB_PREFIX = "notice:"


def job_id(notice_id: int) -> str:
    return f"{JOB_PREFIX}{notice_id}"


def notice_spec(notice: Notice, *, skip_after: dt.timedelta = SKIP_AFTER) -> JobSpec | None:
    """The job of a one-off or recurring notice; None for age notices (the daily job sends those)."""
    assert notice.id is not None
    policy = Policy.run_late(within=None) if notice.misfire == Misfire.SEND_LATE else Policy.skip_late(skip_after)
    if notice.kind == NoticeKind.ONCE and notice.send_at is not None:
        trigger: Once | Cron = Once(notice.send_at)
    elif notice.kind == NoticeKind.RECURRING and notice.cron:
        trigger = Cron(notice.cron)
    else:
        return None
    return JobSpec(id=job_id(notice.id), func=send_notice, trigger=trigger, policy=policy, args=(notice.id,))


def schedule_notice(writer: JobWriter, notice: Notice, *, skip_after: dt.timedelta = SKIP_AFTER) -> JobInfo | None:
    """Put a scheduled notice's job in place (no-op and None unless the notice is scheduled); a changed notice
    replaces its job."""
    if notice.status != NoticeStatus.SCHEDULED:
        return None
    spec = notice_spec(notice, skip_after=skip_after)
    return None if spec is None else writer.schedule(spec)


def unschedule_notice(writer: JobWriter, notice_id: int) -> bool:
    return writer.cancel(job_id(notice_id))


def last_fire(cron: str, *, tz: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The latest time ≤ now that `cron` fires: a recurring run's planned time (and so its unique run key),
    the same whether the job ran on time or late."""
    trigger = CronTrigger.from_crontab(Cron(cron).aps_expr(), timezone=tz)
    for lookback in (dt.timedelta(hours=2), dt.timedelta(days=2), dt.timedelta(days=400)):
        at = trigger.get_next_fire_time(None, now - lookback)
        found: dt.datetime | None = None
        while at is not None and at <= now:
            found = at
            at = trigger.get_next_fire_time(at, at + dt.timedelta(seconds=1))
        if found is not None:
            return found.astimezone(dt.UTC)
    return now.replace(second=0, microsecond=0)


def missed_listener(sessions: SessionFactory) -> Callable[[JobEvent], None]:
    """For the leader's scheduler: a one-off notice whose run was skipped (misfire "skip") is marked missed, so
    staff see that it did not go out instead of a notice waiting for ever."""

    def on_event(event: JobEvent) -> None:
        if event.kind != "missed" or not event.job_id.startswith(JOB_PREFIX):
            return
        try:
            notice_id = int(event.job_id.removeprefix(JOB_PREFIX))
            with transaction(sessions) as session:
                if store.mark_missed(session, notice_id=notice_id):
                    log.info("notice %s missed its time (misfire rule: skip)", notice_id)
        except Exception as exc:  # a listener must not break the scheduler; class name only
            log.warning("marking a missed notice failed: %s", type(exc).__name__)

    return on_event


def send_notice(ctx: JobContext, notice_id: int) -> None:
    """The job of a one-off or recurring notice."""
    tz = ZoneInfo(ctx.settings.office_hours.timezone)
    with ctx.sessions() as session:
        notice = store.get_notice(session, notice_id=notice_id)
        if notice is None or not store.may_send(notice):
            log.info("notice %s not sent: %s", notice_id, "missing" if notice is None else notice.status)
            return
        planned_for = last_fire(notice.cron or "", tz=tz, now=utcnow()) if notice.kind == NoticeKind.RECURRING else None
    result = sending.send_now(ctx.settings, ctx.sessions, notice_id=notice_id, planned_for=planned_for)
    if result is not None:
        log.info("notice %s run %s: %d sent, %d pending", notice_id, result.run_id, result.sent, result.pending)


# ----- age-relative reminders


def reminder_date(child_month: dt.date, notice: Notice) -> dt.date:
    """The day a child gets the notice: its month plus the offset in months, plus the days."""
    return lifecycle.add_months(child_month, notice.age_offset_months or 0) + dt.timedelta(
        days=notice.age_offset_days or 0
    )


def due_children(session: Session, *, notice: Notice, today: dt.date, catch_up_days: int) -> list[tuple[int, dt.date]]:
    """(contact id, child month) pairs due today for an age notice, in its segment, under consent, not yet
    reminded. A date more than `catch_up_days` ago is let go (a month registered late gets no stale notice)."""
    assert notice.id is not None
    wanted = set(
        lifecycle.audience(
            session,
            topic=notice.topic,
            channel=notice.channel,
            lang=notice.lang,
            default_lang=store.DEFAULT_LANG,
            age_months=None,
        )
    )
    done = notice_runs.reminded(session, notice_id=notice.id)
    out: list[tuple[int, dt.date]] = []
    for contact_id, month in lifecycle.child_months(session):
        if contact_id not in wanted or (contact_id, month) in done:
            continue
        day = reminder_date(month, notice)
        if day <= today and (today - day).days <= catch_up_days:
            out.append((contact_id, month))
    allowed = set(consent.consenting(session, {c for c, _ in out}))
    return [(c, m) for c, m in out if c in allowed]


def plan_age_run(
    session: Session, *, notice: Notice, settings: Settings, today: dt.date, now: dt.datetime | None = None
) -> int | None:
    """Plan a run for the children due today (recording each as reminded); None when there are none."""
    assert notice.id is not None
    due = due_children(session, notice=notice, today=today, catch_up_days=settings.notices.age_catch_up_days)
    if not due:
        return None
    run = sending.plan_run(
        session,
        notice=notice,
        planned_for=now or utcnow(),  # each job run plans its own newcomers; the reminder rows keep it once
        settings=settings.notices,
        contact_ids=[c for c, _ in due],
    )
    for contact_id, month in due:
        session.add(AgeReminderSent(notice_id=notice.id, contact_id=contact_id, child_month=month, run_id=run.id))
    return run.id


def age_reminders(ctx: JobContext) -> None:
    """The daily job: plan and send every active age notice's run for today's children."""
    tz = ZoneInfo(ctx.settings.office_hours.timezone)
    today = utcnow().astimezone(tz).date()
    with ctx.sessions() as session:
        ids = store.notice_ids(session, kind=NoticeKind.AGE, status=NoticeStatus.SCHEDULED)
    run_ids: list[int] = []
    for notice_id in ids:
        try:
            with transaction(ctx.sessions) as session:
                notice = store.get_notice(session, notice_id=notice_id)
                if notice is None or not store.may_send(notice):
                    continue
                run_id = plan_age_run(session, notice=notice, settings=ctx.settings, today=today)
        except IntegrityError:  # another run planned the same children at the same moment
            continue
        if run_id is not None:
            run_ids.append(run_id)
    results = sending.resume(ctx.settings, ctx.sessions, run_ids=run_ids) if run_ids else []
    log.info("age reminders: %d runs, %d sent", len(results), sum(r.sent for r in results))


def orphaned_after(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.notices.orphaned_after_seconds)


def resume_orphans(ctx: JobContext) -> None:
    """The job (at the leader's start, then periodically): finish runs whose sending process died."""
    with ctx.sessions() as session:
        ids = notice_runs.orphaned_runs(session, quiet_since=utcnow() - orphaned_after(ctx.settings))
    if not ids:
        return
    results = sending.resume(ctx.settings, ctx.sessions, run_ids=ids)
    log.info("notice runs resumed: %d, %d sent", len(results), sum(r.sent for r in results))


def resume_job(settings: Settings) -> JobSpec:
    """Runs often (a cheap query) so that a run killed midway waits seconds, not minutes; the scheduler service
    also runs it at once when a process becomes leader (`at_start` in scheduler/jobs.py)."""
    return JobSpec(
        id=RESUME_JOB_ID,
        func=resume_orphans,
        trigger=Every(dt.timedelta(seconds=settings.notices.resume_every_seconds)),
        policy=Policy.run_late(within=None, coalesce=True),
    )


def age_job(settings: Settings) -> JobSpec:
    """The daily job; runs late within 6 hours after downtime (a reminder the same day is still useful)."""
    return JobSpec(
        id=AGE_JOB_ID,
        func=age_reminders,
        trigger=Daily(settings.notices.age_reminders_at),
        policy=Policy.run_late(within=dt.timedelta(hours=6), coalesce=True),
    )

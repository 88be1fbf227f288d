"""Our small API over APScheduler 3: jobs persist in the app's database and carry ids, never objects.

A job is an importable `module:function` that takes a `JobContext` first and then plain ids, e.g.
`def send_notice(ctx: JobContext, notice_id: int) -> None`. A `JobSpec` describes it: id, function, trigger
(`Daily`, `Every`, `Monthly`, `Once`, `Cron`), arguments and a `Policy` (what a late run does, coalescing, how many
runs at once), all set per job on purpose. The context (settings, session factory, this scheduler) is handed
to the function when it runs, by our executor; it is never pickled into the job store.

Only one process may *run* jobs (see `scheduler.service`); any process may *write* jobs to the store with a
paused `Scheduler`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref
from sqlalchemy.pool import NullPool

from storage.db import SessionFactory, make_engine

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("concierge.scheduler")

JOB_TABLE = "apscheduler_jobs"  # created by migration c0ffee000003
# Stored in place of the context (APScheduler checks a job's arguments against its signature when it is added);
# our executor puts the real context there when the job runs.
CONTEXT_ARG = "<context>"
JobArg = int | str


# ----- when


@dataclass(frozen=True)
class Daily:
    at: dt.time

    def describe(self) -> str:
        return f"daily {self.at:%H:%M:%S}"


@dataclass(frozen=True)
class Every:
    interval: dt.timedelta

    def describe(self) -> str:
        return f"every {self.interval.total_seconds():g}s"


@dataclass(frozen=True)
class Monthly:
    day: int
    at: dt.time

    def describe(self) -> str:
        return f"monthly day {self.day} {self.at:%H:%M:%S}"


@dataclass(frozen=True)
class Once:
    at: dt.datetime  # timezone-aware

    def describe(self) -> str:
        return f"once {self.at.astimezone(dt.UTC).isoformat()}"


@dataclass(frozen=True)
class Cron:
    """A 5-field crontab (minute hour day month day-of-week) in the office time zone. Day-of-week numbers
    mean what cron means (0 or 7 = Sunday); APScheduler's own numbering starts on Monday, so they are
    turned into names."""

    expr: str

    def describe(self) -> str:
        return f"cron {self.expr}"

    def aps_expr(self) -> str:
        fields = self.expr.split()
        if len(fields) != 5:
            raise ValueError("a crontab has 5 fields")
        names = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
        fields[4] = re.sub(r"(?<![/\w])\d+", lambda m: names[int(m.group()) % 7], fields[4])
        return " ".join(fields)


Trigger = Daily | Every | Monthly | Once | Cron


def _aps_trigger(trigger: Trigger, tz: ZoneInfo) -> Any:
    if isinstance(trigger, Daily):
        return CronTrigger(hour=trigger.at.hour, minute=trigger.at.minute, second=trigger.at.second, timezone=tz)
    if isinstance(trigger, Monthly):
        t = trigger.at
        return CronTrigger(day=trigger.day, hour=t.hour, minute=t.minute, second=t.second, timezone=tz)
    if isinstance(trigger, Cron):
        return CronTrigger.from_crontab(trigger.aps_expr(), timezone=tz)
    if isinstance(trigger, Every):
        return IntervalTrigger(seconds=trigger.interval.total_seconds(), timezone=tz)
    if trigger.at.tzinfo is None:
        raise ValueError("Once(at=...) needs a timezone-aware datetime")
    return DateTrigger(run_date=trigger.at, timezone=tz)


# ----- how


@dataclass(frozen=True)
class Policy:
    """What happens to a late run (the process was down or busy) and to overlapping runs.

    grace: a run later than this is skipped; None runs however late. coalesce: missed runs of a repeating
    job become one. max_instances: runs of this job allowed at the same time."""

    grace: dt.timedelta | None
    coalesce: bool = True
    max_instances: int = 1

    @classmethod
    def run_late(cls, within: dt.timedelta | None = None, *, coalesce: bool = True) -> Policy:
        """Catch up after downtime (within `within`, or always)."""
        return cls(grace=within, coalesce=coalesce)

    @classmethod
    def skip_late(cls, after: dt.timedelta = dt.timedelta(minutes=1), *, coalesce: bool = True) -> Policy:
        """A run that could not start within `after` of its time is dropped (stale by then)."""
        return cls(grace=after, coalesce=coalesce)

    @property
    def grace_seconds(self) -> int | None:
        if self.grace is None:
            return None
        return max(1, int(self.grace.total_seconds()))  # APScheduler counts whole seconds

    def describe(self) -> str:
        late = "run late" if self.grace is None else f"skip if later than {self.grace_seconds}s"
        return f"{late}, coalesce={self.coalesce}, max_instances={self.max_instances}"


@dataclass(frozen=True)
class JobSpec:
    """One job: `func` is a `module:function` reference (or the function itself, if importable)."""

    id: str
    func: str | Callable[..., object]
    trigger: Trigger
    policy: Policy
    args: tuple[JobArg, ...] = ()

    @property
    def ref(self) -> str:
        return self.func if isinstance(self.func, str) else str(obj_to_ref(self.func))

    @property
    def definition(self) -> str:
        """Everything that defines the job, stored as its name: a changed definition is rescheduled."""
        args = ",".join(repr(a) for a in self.args)
        return f"{self.id} = {self.ref}({args}) [{self.trigger.describe()}; {self.policy.describe()}]"


@dataclass(frozen=True)
class JobInfo:
    id: str
    func: str
    args: tuple[JobArg, ...]
    next_run_time: dt.datetime | None
    definition: str


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    kind: str  # executed | missed | error
    scheduled_at: dt.datetime
    error: str | None = None  # an exception class name


@dataclass(frozen=True)
class JobContext:
    """What a job function gets besides its ids."""

    settings: Settings
    sessions: SessionFactory
    scheduler: Scheduler = field(repr=False)


class JobError(RuntimeError):
    """A job failed; only the exception's class name is kept (database errors can quote parameters)."""


class _Bound:
    """A job as APScheduler's `run_job` sees it, with the context passed first and errors made content-free."""

    def __init__(self, job: Any, context: JobContext) -> None:
        self._job = job
        func = job.func

        def call(_slot: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return func(context, *args, **kwargs)
            except Exception as exc:
                raise JobError(type(exc).__name__) from None

        self.func = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class _ContextExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """Runs jobs in threads, giving each the context. `_do_submit_job` is APScheduler 3.x's one hand-over
    point of a job to the pool (pinned in pyproject)."""

    def __init__(self, context: JobContext, max_workers: int) -> None:
        super().__init__(max_workers)
        self._context = context

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        super()._do_submit_job(_Bound(job, self._context), run_times)


class _BackgroundScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's loop removes a one-off job after it ran or was skipped; when the job is already gone from the
    shared store (removed by another path or process at the same moment), that removal must not end the loop."""

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            if jobstore is None:  # our own cancel(): the caller is told
                raise


class Scheduler:
    """A BackgroundScheduler over the app database's job store. `start(paused=True)` gives a writer that
    only edits the store; `start()` runs due jobs too (only the elected process does that)."""

    def __init__(self, *, settings: Settings, sessions: SessionFactory, workers: int = 4) -> None:
        self.settings = settings
        self.tz = ZoneInfo(settings.office_hours.timezone)
        self.context = JobContext(settings=settings, sessions=sessions, scheduler=self)
        # The store gets its own engine, which APScheduler disposes of at shutdown; without a pool no connection
        # can be left behind by a store call that was under way at that moment.
        store_db = make_engine(settings.database_url, poolclass=NullPool)
        store = SQLAlchemyJobStore(engine=store_db, tablename=JOB_TABLE)
        self._aps = _BackgroundScheduler(
            jobstores={"default": store},
            executors={"default": _ContextExecutor(self.context, workers)},
            timezone=self.tz,
            daemon=True,
        )
        self._aps.add_listener(self._on_aps_event, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self._listeners: list[Callable[[JobEvent], None]] = []

    # ----- lifecycle
    def start(self, *, paused: bool = False) -> None:
        self._aps.start(paused=paused)

    def resume(self) -> None:
        self._aps.resume()

    def shutdown(self, *, wait: bool = True) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return bool(self._aps.state == STATE_RUNNING)  # started and not paused

    def wakeup(self) -> None:
        """Look at the store now (jobs written by other processes are not announced)."""
        if self.running:
            self._aps.wakeup()

    # ----- jobs
    def schedule(self, spec: JobSpec) -> JobInfo:
        """Add the job, or leave it as it is when its definition is unchanged (so a run missed during downtime
        is still handled by its misfire policy); a changed definition replaces it."""
        existing = self._aps.get_job(spec.id)
        if existing is not None and existing.name == spec.definition:
            return _info(existing)
        if existing is not None:
            self.cancel(spec.id)
        try:
            job = self._aps.add_job(
                spec.ref,
                trigger=_aps_trigger(spec.trigger, self.tz),
                args=[CONTEXT_ARG, *spec.args],
                id=spec.id,
                name=spec.definition,
                misfire_grace_time=spec.policy.grace_seconds,
                coalesce=spec.policy.coalesce,
                max_instances=spec.policy.max_instances,
            )
        except ConflictingIdError:  # another process added it at the same moment
            job = self._aps.get_job(spec.id)
        return _info(job)

    def run_soon(self, job_id: str) -> bool:
        """Bring a job's next run forward to now (its trigger continues from there); False when unknown."""
        try:
            self._aps.modify_job(job_id, next_run_time=dt.datetime.now(self.tz))
        except JobLookupError:
            return False
        self.wakeup()
        return True

    def cancel(self, job_id: str) -> bool:
        try:
            self._aps.remove_job(job_id)
        except JobLookupError:
            return False
        return True

    def get(self, job_id: str) -> JobInfo | None:
        job = self._aps.get_job(job_id)
        return None if job is None else _info(job)

    def jobs(self) -> list[JobInfo]:
        return [_info(j) for j in self._aps.get_jobs()]

    # ----- events
    def on_event(self, callback: Callable[[JobEvent], None]) -> None:
        self._listeners.append(callback)

    def _on_aps_event(self, event: JobExecutionEvent) -> None:
        kind = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_MISSED: "missed", EVENT_JOB_ERROR: "error"}[event.code]
        error = type(event.exception).__name__ if event.exception is not None else None
        if isinstance(event.exception, JobError):
            error = str(event.exception)
        if kind == "missed":
            log.warning("job %s skipped its run of %s (later than its grace)", event.job_id, event.scheduled_run_time)
        elif kind == "error":
            log.error("job %s failed: %s", event.job_id, error)
        info = JobEvent(job_id=str(event.job_id), kind=kind, scheduled_at=event.scheduled_run_time, error=error)
        for callback in list(self._listeners):
            callback(info)


def _info(job: Any) -> JobInfo:
    return JobInfo(
        id=str(job.id),
        func=str(job.func_ref),
        args=tuple(job.args[1:]),
        next_run_time=job.next_run_time,
        definition=str(job.name),
    )

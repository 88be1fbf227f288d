"""Our scheduler API on the real job store (SQLite and PostgreSQL): persistence across restarts, misfire
rules after downtime, coalescing, the context handed to jobs, and errors without content in the logs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

import pytest
from sqlalchemy import Engine

from bot.settings import Settings
from scheduler.core import Daily, Every, JobEvent, JobSpec, Once, Policy, Scheduler
from scheduler.jobs import standard_jobs
from storage.db import SessionFactory
from storage.models import utcnow
from tests.scheduler.jobfuncs import fail_with_content, record_run, runs, wait_for


def _scheduler(settings: Settings, sessions: SessionFactory) -> Scheduler:
    return Scheduler(settings=settings, sessions=sessions, workers=2)


def test_restart_keeps_the_job_and_its_next_run_time(
    store: Engine, settings: Settings, sessions: SessionFactory
) -> None:
    first = _scheduler(settings, sessions)
    first.start()
    spec = JobSpec(
        id="test.hourly", func=record_run, trigger=Every(dt.timedelta(hours=1)), policy=Policy.run_late(), args=("h",)
    )
    before = first.schedule(spec)
    first.shutdown()

    time.sleep(0.05)
    second = _scheduler(settings, sessions)
    second.start(paused=True)
    try:
        after = second.get("test.hourly")
        assert after == before
        assert after is not None and after.func == "tests.scheduler.jobfuncs:record_run" and after.args == ("h",)
        assert after.next_run_time is not None and after.next_run_time > dt.datetime.now(dt.UTC)
        # The same definition again leaves the stored job alone: an interval job would otherwise start afresh.
        assert second.schedule(spec).next_run_time == before.next_run_time
        # A changed definition replaces it.
        changed = second.schedule(dataclasses.replace(spec, trigger=Daily(dt.time(4, 0))))
        assert changed.next_run_time != before.next_run_time and "daily 04:00:00" in changed.definition
        assert [j.id for j in second.jobs()] == ["test.hourly"]
        assert second.cancel("test.hourly") and second.get("test.hourly") is None
        assert not second.cancel("test.hourly")
    finally:
        second.shutdown()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy.skip_late(after=dt.timedelta(seconds=1)), "missed"),
        (Policy.run_late(within=dt.timedelta(minutes=5)), "executed"),
        (Policy.run_late(within=None), "executed"),
    ],
    ids=["skip-after-1s", "run-late-within-5min", "run-late-always"],
)
def test_a_run_missed_during_downtime_follows_its_misfire_rule(
    store: Engine, settings: Settings, sessions: SessionFactory, policy: Policy, expected: str
) -> None:
    writer = _scheduler(settings, sessions)
    writer.start(paused=True)  # a process that only writes jobs: nothing runs here
    due = utcnow() + dt.timedelta(milliseconds=300)
    writer.schedule(JobSpec(id="test.once", func=record_run, trigger=Once(due), policy=policy, args=("once",)))
    writer.shutdown()
    time.sleep(2.5)  # "downtime": the run is now more than 2 s late

    events: list[JobEvent] = []
    runner = _scheduler(settings, sessions)
    runner.on_event(events.append)
    runner.start()
    try:
        assert wait_for(lambda: any(e.job_id == "test.once" for e in events), timeout=5)
    finally:
        runner.shutdown()
    (event,) = events
    assert event.kind == expected
    assert len(runs(store, "once")) == (1 if expected == "executed" else 0)
    assert runner.get("test.once") is None  # a one-off job leaves the store either way


@pytest.mark.parametrize(("coalesce", "at_least", "at_most"), [(True, 1, 1), (False, 4, 7)])
def test_missed_runs_of_a_repeating_job_coalesce_or_catch_up(
    store: Engine, settings: Settings, sessions: SessionFactory, coalesce: bool, at_least: int, at_most: int
) -> None:
    writer = _scheduler(settings, sessions)
    writer.start(paused=True)
    spec = JobSpec(
        id="test.tick",
        func=record_run,
        trigger=Every(dt.timedelta(milliseconds=500)),
        policy=Policy.run_late(within=None, coalesce=coalesce),
        args=("tick",),
    )
    writer.schedule(spec)
    writer.shutdown()
    time.sleep(2.8)  # five or so runs come due while nothing runs

    runner = _scheduler(settings, sessions)
    runner.start()
    try:
        assert wait_for(lambda: len(runs(store, "tick")) >= at_least, timeout=3)
        caught_up = runs(store, "tick")
        first = caught_up[0][2]
        burst = [r for r in caught_up if r[2] - first < 0.3]  # what ran at once on start-up
    finally:
        runner.shutdown()
    assert at_least <= len(burst) <= at_most


def test_a_job_gets_the_context_and_a_job_added_while_running_is_run(
    store: Engine, settings: Settings, sessions: SessionFactory
) -> None:
    runner = _scheduler(settings, sessions)
    runner.start()
    try:
        soon = utcnow() + dt.timedelta(milliseconds=200)
        runner.schedule(
            JobSpec(id="test.soon", func=record_run, trigger=Once(soon), policy=Policy.skip_late(), args=("s",))
        )
        assert wait_for(lambda: len(runs(store, "s")) == 1, timeout=3)
    finally:
        runner.shutdown()


def test_job_errors_are_logged_by_class_name_only(
    store: Engine, settings: Settings, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[JobEvent] = []
    runner = _scheduler(settings, sessions)
    runner.on_event(events.append)
    runner.start()
    try:
        with caplog.at_level(logging.INFO):
            spec = JobSpec(
                id="test.fails", func=fail_with_content, trigger=Once(utcnow()), policy=Policy.run_late(), args=("x",)
            )
            runner.schedule(spec)
            assert wait_for(lambda: bool(events), timeout=3)
    finally:
        runner.shutdown()
    assert events[0].kind == "error" and events[0].error == "ValueError"
    assert "夜泣き" not in caplog.text and "ValueError" in caplog.text


def test_once_needs_an_aware_datetime(store: Engine, settings: Settings, sessions: SessionFactory) -> None:
    writer = _scheduler(settings, sessions)
    writer.start(paused=True)
    try:
        with pytest.raises(ValueError, match="timezone-aware"):
            writer.schedule(
                JobSpec(id="x", func=record_run, trigger=Once(dt.datetime(2030, 1, 1)), policy=Policy.run_late())
            )
    finally:
        writer.shutdown()


def test_standard_jobs_are_deliberate(settings: Settings) -> None:
    specs = {s.id: s for s in standard_jobs(settings)}
    assert set(specs) == {"records.purge", "records.sweep", "notices.age", "notices.resume"}
    purge, sweep = specs["records.purge"], specs["records.sweep"]
    age = specs["notices.age"]
    assert age.trigger == Daily(dt.time(9, 30)) and age.policy.grace == dt.timedelta(hours=6)
    assert purge.trigger == Daily(dt.time(3, 30)) and purge.policy.grace is None and purge.policy.coalesce
    assert sweep.trigger == Every(dt.timedelta(minutes=5)) and sweep.policy.max_instances == 1
    assert purge.ref == "scheduler.jobs:purge_records"
    with_snapshot = settings.model_copy(update={"reports": settings.reports.model_copy(update={"snapshot_dir": "x"})})
    snapshot = {s.id: s for s in standard_jobs(with_snapshot)}["stats.snapshot"]
    assert snapshot.policy.grace == dt.timedelta(days=7)

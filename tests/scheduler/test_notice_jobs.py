"""Notice jobs on the real job store and the fake LINE API: misfire rules per notice after downtime, unique
run keys for recurring notices, jobs kept across a restart, and age reminders sent once per child."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.settings import Settings
from handlers import channels
from handlers import notices as sending
from scheduler import notices as jobs
from scheduler.core import JobContext, JobEvent, Scheduler
from scheduler.jobs import MANAGED, build_service, standard_jobs
from storage import crud, lifecycle, notice_runs
from storage import notices as notice_store
from storage.db import SessionFactory, transaction
from storage.models import ConsentStatus, Contact, utcnow
from storage.notices import AgeReminderSent, Notice, NoticeRun, NoticeStatus
from tests.fakes.line_api import FakeLineAPI
from tests.handlers.notice_kit import add_parents, wired
from tests.handlers.test_notices import KILLED_SENDER  # the same sender script, killed there too
from tests.scheduler.jobfuncs import wait_for

TOKYO = ZoneInfo("Asia/Tokyo")
ROOT = Path(__file__).resolve().parents[2]


def new_notice(sessions: SessionFactory, *, text: str = "お知らせ", **values: object) -> Notice:
    fields: dict[str, object] = {"topic": "events", "channel": "line", "requires_approval": False}
    fields.update(values)
    with transaction(sessions) as session:
        notice = notice_store.create_notice(
            session, channels=channels.notice_channels(), title="t", texts={"ja": text}, created_by="staff:a", **fields
        )  # type: ignore[arg-type]
        notice_store.submit_notice(session, channels=channels.notice_channels(), notice=notice)
        return notice


def status_of(session: Session, notice_id: int | None) -> str:
    notice = notice_store.get_notice(session, notice_id=notice_id or 0)
    assert notice is not None
    return notice.status


def test_misfire_skip_drops_a_stale_notice_and_send_late_sends_it(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 3, topics={"events": True})
    config = wired(settings, fake=fake)
    due = utcnow() + dt.timedelta(milliseconds=300)
    skip = new_notice(sessions, text="古いお知らせ", send_at=due, misfire="skip")
    late = new_notice(sessions, text="遅れても送るお知らせ", send_at=due, misfire="send_late")
    writer = Scheduler(settings=config, sessions=sessions, workers=1)
    writer.start(paused=True)
    assert jobs.schedule_notice(writer, skip, skip_after=dt.timedelta(seconds=1)) is not None
    assert jobs.schedule_notice(writer, late, skip_after=dt.timedelta(seconds=1)) is not None
    writer.shutdown()
    time.sleep(2.5)  # downtime: both runs are now 2 s late

    events: list[JobEvent] = []
    runner = Scheduler(settings=config, sessions=sessions, workers=2)
    runner.on_event(jobs.missed_listener(sessions))  # as the leader's service does
    runner.on_event(events.append)
    runner.start()
    try:
        assert wait_for(lambda: len(events) == 2, timeout=15)
    finally:
        runner.shutdown()
    assert {e.job_id: e.kind for e in events} == {
        jobs.job_id(skip.id or 0): "missed",
        jobs.job_id(late.id or 0): "executed",
    }
    assert fake.texts(parents[0].external_id) == ["遅れても送るお知らせ"]
    with transaction(sessions) as session:
        assert status_of(session, late.id) == NoticeStatus.SENT
        assert status_of(session, skip.id) == NoticeStatus.MISSED  # staff see it did not go out


def test_recurring_runs_have_one_key_per_occurrence(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    add_parents(sessions, 2, topics={"events": True})
    config = wired(settings, fake=fake)
    notice = new_notice(sessions, kind="recurring", cron="0 0 1 1 *")  # New Year, 00:00 in Tokyo
    scheduler = Scheduler(settings=config, sessions=sessions)  # not started: only its context is used
    jobs.send_notice(scheduler.context, notice.id or 0)
    jobs.send_notice(scheduler.context, notice.id or 0)  # the same occurrence again (a double run): no new run
    earlier = dt.datetime(2025, 1, 1, tzinfo=TOKYO)
    sending.send_now(config, sessions, notice_id=notice.id or 0, planned_for=earlier)
    with transaction(sessions) as session:
        runs = notice_store.runs(session, notice_id=notice.id or 0)
        latest = dt.datetime(utcnow().astimezone(TOKYO).year, 1, 1, tzinfo=TOKYO)
        assert sorted(r.key for r in runs) == sorted(
            notice_store.run_key(notice_id=notice.id or 0, planned_for=t) for t in (earlier, latest)
        )
        assert status_of(session, notice.id) == NoticeStatus.SCHEDULED
    assert len(fake.multicasts) == 2


def test_last_fire_reads_cron_days_as_cron_does() -> None:
    saturday = dt.datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)
    friday_nine = dt.datetime(2026, 11, 27, 9, 0, tzinfo=TOKYO)
    assert jobs.last_fire("0 9 * * 1-5", tz=TOKYO, now=saturday) == friday_nine
    assert jobs.last_fire("0 9 * * 0", tz=TOKYO, now=saturday) == dt.datetime(2026, 11, 22, 9, 0, tzinfo=TOKYO)
    assert jobs.last_fire("30 9 * * *", tz=TOKYO, now=saturday) == dt.datetime(2026, 11, 28, 9, 30, tzinfo=TOKYO)


def test_restart_keeps_notice_jobs_and_the_leader_leaves_them_alone(
    store: Engine, settings: Settings, sessions: SessionFactory
) -> None:
    weekly = new_notice(sessions, kind="recurring", cron="0 9 * * 1-5")
    pending = new_notice(sessions, send_at=utcnow() + dt.timedelta(days=1), requires_approval=True)
    age = new_notice(sessions, kind="age", age_offset_months=3)
    first = Scheduler(settings=settings, sessions=sessions, workers=1)
    first.start(paused=True)
    before = jobs.schedule_notice(first, weekly)
    assert jobs.schedule_notice(first, pending) is None  # awaiting approval: no job
    assert jobs.schedule_notice(first, age) is None  # the daily job sends age notices
    first.shutdown()

    second = Scheduler(settings=settings, sessions=sessions, workers=1)
    second.start(paused=True)
    try:
        after = second.get(jobs.job_id(weekly.id or 0))
        assert before is not None and after == before and "cron 0 9 * * 1-5" in after.definition
        assert after.next_run_time is not None
        local = after.next_run_time.astimezone(TOKYO)
        assert local.weekday() < 5 and (local.hour, local.minute) == (9, 0)
        assert jobs.unschedule_notice(second, weekly.id or 0) and second.get(jobs.job_id(weekly.id or 0)) is None
    finally:
        second.shutdown()
    assert not jobs.job_id(1).startswith(MANAGED)  # the leader removes only managed ids it does not know
    assert jobs.AGE_JOB_ID.startswith(MANAGED) and jobs.AGE_JOB_ID in [s.id for s in standard_jobs(settings)]


def test_age_reminders_reach_each_child_once(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    this_month = utcnow().astimezone(TOKYO).date().replace(day=1)
    due = add_parents(sessions, 3, topics={"health": True}, child_month=lifecycle.add_months(this_month, -3))
    young = add_parents(sessions, 1, topics={"health": True}, child_month=lifecycle.add_months(this_month, -2))
    old = add_parents(sessions, 1, topics={"health": True}, child_month=lifecycle.add_months(this_month, -5))
    withdrawn = add_parents(sessions, 1, topics={"health": True}, child_month=lifecycle.add_months(this_month, -3))
    with transaction(sessions) as session:
        contact = session.get(Contact, withdrawn[0].id)
        assert contact is not None
        crud.record_consent(session, contact=contact, status=ConsentStatus.WITHDRAWN, notice_version="2026-11")
    notice = new_notice(
        sessions, text="4か月児健診のご案内です。", topic="health", kind="age", age_offset_months=3, channel=None
    )
    config = wired(settings, fake=fake)
    ctx = Scheduler(settings=config, sessions=sessions).context
    jobs.age_reminders(ctx)
    jobs.age_reminders(ctx)  # the next day, or a double run: nobody twice
    assert Counter(fake.multicast_ids()) == Counter(p.external_id for p in due)
    assert not fake.texts(young[0].external_id) and not fake.texts(old[0].external_id)

    newcomer = add_parents(sessions, 1, topics={"health": True}, child_month=lifecycle.add_months(this_month, -3))
    jobs.age_reminders(ctx)
    assert Counter(fake.multicast_ids()) == Counter(p.external_id for p in due + newcomer)
    assert fake.texts(newcomer[0].external_id) == ["4か月児健診のご案内です。"]
    with transaction(sessions) as session:
        sent = session.exec(select(AgeReminderSent).where(AgeReminderSent.notice_id == notice.id)).all()
        assert sorted(r.contact_id for r in sent) == sorted(p.id for p in due + newcomer)
        assert len(notice_store.runs(session, notice_id=notice.id or 0)) == 2


def test_a_run_left_by_a_dead_process_is_finished_by_the_resume_job(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 3, topics={"events": True})
    config = wired(settings, fake=fake)
    notice = new_notice(sessions, send_at=utcnow() + dt.timedelta(days=1))  # not scheduled here: sent below
    with transaction(sessions) as session:
        fresh = notice_store.get_notice(session, notice_id=notice.id or 0)
        assert fresh is not None
        run = sending.plan_run(session, notice=fresh, planned_for=utcnow(), settings=config.notices)
        session.flush()
        run_id = run.id
    quiet_since = utcnow() - jobs.orphaned_after(config)
    with transaction(sessions) as session:
        assert notice_runs.orphaned_runs(session, quiet_since=quiet_since) == []  # just planned: someone sends it
        planned = session.get(NoticeRun, run_id)
        assert planned is not None
        planned.started_at = utcnow() - dt.timedelta(hours=1)
        session.add(planned)
    with transaction(sessions) as session:  # an old start alone does not count: the heartbeat is fresh
        assert notice_runs.orphaned_runs(session, quiet_since=quiet_since) == []
        planned = session.get(NoticeRun, run_id)
        assert planned is not None
        planned.heartbeat_at = utcnow() - dt.timedelta(minutes=1)  # its process died a minute ago
        session.add(planned)
    with transaction(sessions) as session:
        assert notice_runs.orphaned_runs(session, quiet_since=quiet_since) == [run_id]
    jobs.resume_orphans(
        JobContext(settings=config, sessions=sessions, scheduler=Scheduler(settings=config, sessions=sessions))
    )
    assert sorted(fake.multicast_ids()) == sorted(p.external_id for p in parents)
    with transaction(sessions) as session:
        assert notice_runs.orphaned_runs(session, quiet_since=utcnow()) == []  # done


def test_a_run_whose_sender_died_is_resumed_as_soon_as_the_leader_starts(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    """Security review F14: a run killed midway waited 10-15 minutes. The new leader resumes it at once (the
    periodic check is set to an hour here, so only the start can have done it)."""
    parents = add_parents(sessions, 3, topics={"events": True})
    config = wired(settings, fake=fake, resume_every_seconds=3600.0)
    notice = new_notice(sessions, send_at=utcnow() + dt.timedelta(days=1))
    with transaction(sessions) as session:
        fresh = notice_store.get_notice(session, notice_id=notice.id or 0)
        assert fresh is not None
        run = sending.plan_run(session, notice=fresh, planned_for=utcnow(), settings=config.notices)
        run.heartbeat_at = utcnow() - dt.timedelta(seconds=31)  # its sender stopped renewing it 31 s ago
        session.add(run)
    service = build_service(config, sessions)
    service.retry, service.poll = 0.1, 0.2
    started = time.monotonic()
    service.start()
    try:
        assert wait_for(lambda: len(fake.multicast_ids()) == 3, timeout=15)
        took = time.monotonic() - started
    finally:
        service.stop()
    assert sorted(fake.multicast_ids()) == sorted(p.external_id for p in parents)
    assert took < 10, took


def run_of(sessions: SessionFactory, notice_id: int | None) -> int | None:
    with sessions() as session:
        return session.exec(select(NoticeRun.id).where(NoticeRun.notice_id == notice_id)).first()


def test_kill_9_mid_run_is_resumed_within_seconds_by_the_running_leader(
    store: Engine, settings: Settings, sessions: SessionFactory, fake: FakeLineAPI
) -> None:
    """A sender killed by SIGKILL mid-run: while it lived, its heartbeat kept the leader away (even with calls
    stalled longer than the orphan limit); after the kill the leader finishes the run within orphaned_after +
    resume_every, with no parent getting the notice twice."""
    parents = add_parents(sessions, 1200, topics={"events": True})  # 3 multicast batches
    notice = new_notice(sessions, send_at=utcnow())
    fast = {"heartbeat_seconds": 0.3, "orphaned_after_seconds": 2.0, "resume_every_seconds": 0.5}
    config = wired(settings, fake=fake, **fast)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "LINE_CHANNEL_SECRET": "x",
        "LINE_CHANNEL_ACCESS_TOKEN": fake.token,
        "LINE_API_BASE_URL": fake.url,
        "NOTICES__LINE_CONCURRENCY": "1",
        "NOTICES__LINE_MULTICAST_PER_SECOND": "0.5",
        "NOTICES__HEARTBEAT_SECONDS": "0.3",
    }
    service = build_service(config, sessions)
    service.retry, service.poll = 0.1, 0.2
    service.start()
    try:
        fake.stall_next(4.0, count=1, path="/v2/bot/message/multicast")  # the first call hangs past the limit
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(KILLED_SENDER), str(notice.id)], cwd=ROOT, env=env
        )
        try:
            assert wait_for(lambda: run_of(sessions, notice.id) is not None, timeout=30)
            time.sleep(3.0)  # the first call hangs past orphaned_after: the heartbeat alone keeps the run
            with sessions() as session:
                assert notice_runs.orphaned_runs(session, quiet_since=utcnow() - jobs.orphaned_after(config)) == []
            assert wait_for(lambda: len(fake.multicasts) >= 1, timeout=10)
            assert max(Counter(fake.multicast_ids()).values()) == 1  # nobody else sent it meanwhile
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        killed = time.monotonic()
        assert len(set(fake.multicast_ids())) < 1200  # killed midway
        assert wait_for(lambda: len(set(fake.multicast_ids())) == 1200, timeout=20)
        took = time.monotonic() - killed
    finally:
        service.stop()
    received = Counter(fake.multicast_ids())
    assert max(received.values()) == 1 and set(received) == {p.external_id for p in parents}
    assert took < 2.0 + 0.5 + 5, took

"""Leader election: exactly one process runs jobs. Locks in-process, services in-process, the web app's
lifespan, and two real `concierge scheduler` processes on the test database (SQLite: file lock; PostgreSQL:
advisory lock), where the leader is killed and the other takes over without ever overlapping."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psycopg
import pytest
from sqlalchemy import Engine, text

from bot.app import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.core import Every, JobSpec, Once, Policy, Scheduler
from scheduler.jobs import build_service
from scheduler.leader import AdvisoryLock, lock_for
from scheduler.service import SchedulerService
from storage.db import SessionFactory
from storage.models import utcnow
from tests import pg
from tests.scheduler.jobfuncs import record_run, runs, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "concierge"


def _url(db: Engine) -> str:
    return db.url.render_as_string(hide_password=False)


def test_only_one_lock_holder_at_a_time(store: Engine) -> None:
    first, second = lock_for(_url(store)), lock_for(_url(store))
    try:
        assert first.acquire() and first.held()
        assert first.acquire()  # asking again while holding is fine
        assert not second.acquire() and not second.held()
        first.release()
        assert not first.held()
        assert second.acquire() and second.held()
        assert not first.acquire()
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_lost_lock_connection_is_noticed(store: Engine) -> None:
    lock = AdvisoryLock(_url(store))
    other = AdvisoryLock(_url(store))
    try:
        assert lock.acquire()
        with psycopg.connect(pg.ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                (lock.key,),
            )
        assert wait_for(lambda: not lock.held(), timeout=3)
        assert other.acquire()
    finally:
        lock.close()
        other.close()


def _service(settings: Settings, sessions: SessionFactory) -> SchedulerService:
    return SchedulerService(settings=settings, sessions=sessions, retry=0.1, poll=0.2)


def test_two_services_in_one_process_elect_one_and_fail_over(
    store: Engine, settings: Settings, sessions: SessionFactory
) -> None:
    a, b = _service(settings, sessions), _service(settings, sessions)
    a.start()
    assert wait_for(lambda: a.is_leader, timeout=3)
    b.start()
    try:
        time.sleep(0.5)
        assert a.is_leader and not b.is_leader
        # A job written by the process that does not lead is run by the leader (it looks every `poll`).
        soon = utcnow() + dt.timedelta(milliseconds=100)
        b.schedule(
            JobSpec(id="test.from-b", func=record_run, trigger=Once(soon), policy=Policy.run_late(), args=("b",))
        )
        assert wait_for(lambda: len(runs(store, "b")) == 1, timeout=3)
        a.stop()
        assert not a.is_leader
        assert wait_for(lambda: b.is_leader, timeout=3)
    finally:
        a.stop()
        b.stop()
    assert not b.is_leader


async def test_the_web_app_runs_the_scheduler_in_its_lifespan(store: Engine, runtime: Runtime) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    async with app.router.lifespan_context(app):
        service = app.state.scheduler
        assert await anyio.to_thread.run_sync(lambda: wait_for(lambda: service.is_leader, timeout=5))
        assert {j.id for j in service.jobs()} == {"records.purge", "records.sweep", "notices.age", "notices.resume"}
        purge = service.get("records.purge")
        local = purge.next_run_time.astimezone(dt.timezone(dt.timedelta(hours=9)))
        assert (local.hour, local.minute) == (3, 30)
    assert not service.is_leader
    lock = lock_for(_url(store))
    assert lock.acquire()  # released at shutdown
    lock.close()


async def test_scheduler_off_in_the_web_app(store: Engine, runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(
        update={"scheduler": runtime.settings.scheduler.model_copy(update={"mode": "external"})}
    )
    app = create_app(settings, runtime=runtime)
    async with app.router.lifespan_context(app):
        assert app.state.scheduler is None
        await anyio.sleep(0.1)  # let the inbox loop start: a stop() before it runs is lost (reported)


def _spawn(db: Engine, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _url(db),
        "PYTHONPATH": str(ROOT),
        "SCHEDULER__RETRY_SECONDS": "0.3",
        "SCHEDULER__POLL_SECONDS": "0.3",
    }
    with (tmp_path / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([str(BIN), "scheduler"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_two_scheduler_processes_never_both_run_a_job(
    store: Engine, settings: Settings, sessions: SessionFactory, tmp_path: Path
) -> None:
    writer = Scheduler(settings=settings, sessions=sessions)
    writer.start(paused=True)
    tick = JobSpec(
        id="test.tick",
        func=record_run,
        trigger=Every(dt.timedelta(milliseconds=400)),
        policy=Policy.run_late(),
        args=("tick",),
    )
    writer.schedule(tick)
    writer.shutdown()
    procs = [_spawn(store, tmp_path, "first"), _spawn(store, tmp_path, "second")]
    try:
        assert wait_for(lambda: len(runs(store, "tick")) >= 5, timeout=30), (tmp_path / "first.log").read_text()
        pids = {pid for _, pid, _ in runs(store, "tick")}
        assert len(pids) == 1, "both processes ran the job"
        leader = next(p for p in procs if p.pid in pids)
        follower = next(p for p in procs if p is not leader)
        assert follower.poll() is None, "the other process waits, it does not exit"

        leader.send_signal(signal.SIGKILL)  # no goodbye: the lock must still come free
        leader.wait(10)
        assert wait_for(lambda: any(pid == follower.pid for _, pid, _ in runs(store, "tick")), timeout=15)
        order = [pid for _, pid, _ in runs(store, "tick")]
        switch = order.index(follower.pid)
        assert set(order[:switch]) == {leader.pid} and set(order[switch:]) == {follower.pid}

        with store.connect() as conn:  # the leader put the standard jobs in place
            ids = set(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
        assert {"records.purge", "records.sweep", "test.tick"} <= ids

        follower.send_signal(signal.SIGTERM)
        assert follower.wait(15) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("first", "second"))
    assert "this process runs the scheduler" in logs


def test_build_service_uses_the_settings(settings: Settings, sessions: SessionFactory) -> None:
    service = build_service(settings, sessions)
    assert service.retry == 5.0 and service.poll == 10.0
    assert [s.id for s in service.specs] == ["records.purge", "records.sweep", "notices.age", "notices.resume"]

"""The scheduler as a service: elected, started, watched and stopped.

Every web worker (and `concierge scheduler`) may run a `SchedulerService`. Each tries the leader lock; the
holder starts a running `Scheduler`, puts the standard jobs in place and wakes it every `poll` seconds (jobs
written by other processes are not announced), checking that the lock is still held. The others retry every
`retry` seconds, so when the leader stops or dies another takes over. Any process can write jobs through
`schedule()`/`cancel()`, which use a paused writer on the same store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from scheduler.core import JobEvent, JobInfo, JobSpec, Scheduler
from scheduler.leader import LeaderLock, lock_for
from storage.db import SessionFactory

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("concierge.scheduler")


class SchedulerService:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: SessionFactory,
        specs: Sequence[JobSpec] = (),
        managed: Sequence[str] = (),
        at_start: Sequence[str] = (),
        lock: LeaderLock | None = None,
        retry: float | None = None,
        poll: float | None = None,
    ) -> None:
        """`specs` are put in place when this process becomes leader; jobs whose id starts with one of the
        `managed` prefixes but are no longer in `specs` are removed then; the jobs named in `at_start` run at
        once then (a check that must not wait for its interval after a takeover, such as resuming notice runs)."""
        self.settings = settings
        self.sessions = sessions
        self.specs = list(specs)
        self.managed = tuple(managed)
        self.at_start = tuple(at_start)
        conf = settings.scheduler
        self.lock: LeaderLock = lock if lock is not None else lock_for(settings.database_url, conf.lock_key)
        self.retry = conf.retry_seconds if retry is None else retry
        self.poll = conf.poll_seconds if poll is None else poll
        self._runner: Scheduler | None = None
        self._writer: Scheduler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[JobEvent], None]] = []
        self._guard = threading.Lock()

    # ----- state
    @property
    def is_leader(self) -> bool:
        return self._runner is not None

    @property
    def runner(self) -> Scheduler | None:
        return self._runner

    def on_event(self, callback: Callable[[JobEvent], None]) -> None:
        """Called for every executed, missed or failed run while this process is leader."""
        self._listeners.append(callback)

    # ----- running
    def start(self) -> None:
        """Run the election in a background thread (the web app's lifespan)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="scheduler-leader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._guard:
            if self._writer is not None:
                self._writer.shutdown(wait=False)
                self._writer = None

    def run(self, stop: threading.Event | None = None) -> None:
        """Block until `stop` (or `self.stop()`): lead when the lock is free, otherwise wait and retry."""
        stop = stop or self._stop
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    wait = self._step()
                except Exception as exc:  # the database may be away for a while: keep trying
                    log.warning("scheduler election failed: %s", type(exc).__name__)
                    self._step_down(wait=False)
                    wait = self.retry
                stop.wait(wait)
        finally:
            self._step_down(wait=True)

    def _step(self) -> float:
        if self._runner is None:
            if not self.lock.acquire():
                return self.retry
            self._lead()
            return self.poll
        if not self.lock.held():
            log.warning("scheduler lock lost; this process stops running jobs")
            self._step_down(wait=False)
            return self.retry
        self._runner.wakeup()
        return self.poll

    def _lead(self) -> None:
        runner = Scheduler(settings=self.settings, sessions=self.sessions, workers=self.settings.scheduler.workers)
        for callback in self._listeners:
            runner.on_event(callback)
        runner.start(paused=True)  # the standard jobs are put in place before anything runs
        try:
            wanted = {spec.id for spec in self.specs}
            for info in runner.jobs():
                if info.id.startswith(self.managed) and info.id not in wanted:
                    runner.cancel(info.id)
            for spec in self.specs:
                runner.schedule(spec)
            for job_id in self.at_start:
                runner.run_soon(job_id)
            runner.resume()
        except Exception:
            runner.shutdown(wait=False)
            self.lock.release()
            raise
        self._runner = runner
        log.info("this process runs the scheduler (%d jobs)", len(runner.jobs()))

    def _step_down(self, *, wait: bool) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=wait)
            log.info("scheduler stopped in this process")
        self.lock.release()

    # ----- writing jobs from any process
    def _store(self) -> Scheduler:
        with self._guard:
            if self._writer is None:
                writer = Scheduler(settings=self.settings, sessions=self.sessions, workers=1)
                writer.start(paused=True)
                self._writer = writer
            return self._writer

    def schedule(self, spec: JobSpec) -> JobInfo:
        info = self._store().schedule(spec)
        if self._runner is not None:
            self._runner.wakeup()
        return info

    def cancel(self, job_id: str) -> bool:
        return self._store().cancel(job_id)

    def get(self, job_id: str) -> JobInfo | None:
        return self._store().get(job_id)

    def jobs(self) -> list[JobInfo]:
        return self._store().jobs()

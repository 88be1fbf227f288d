"""Job functions for the scheduler tests: each run leaves a row (tag, process id, time) in a test table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from scheduler.core import JobContext

RUNS = "sched_test_run"


def create_runs_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {RUNS} (tag VARCHAR(64), pid INTEGER, at DOUBLE PRECISION)"))
        conn.execute(text(f"DELETE FROM {RUNS}"))


def runs(engine: Engine, tag: str | None = None) -> list[tuple[str, int, float]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT tag, pid, at FROM {RUNS} ORDER BY at")).all()
    return [(r[0], r[1], r[2]) for r in rows if tag is None or r[0] == tag]


def record_run(ctx: JobContext, tag: str) -> None:
    with ctx.sessions() as session:
        session.execute(
            text(f"INSERT INTO {RUNS} (tag, pid, at) VALUES (:tag, :pid, :at)"),
            {"tag": tag, "pid": os.getpid(), "at": time.time()},
        )
        session.commit()


def fail_with_content(ctx: JobContext, tag: str) -> None:
    raise ValueError(f"parent wrote: 夜泣きがひどい ({tag})")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()

"""Scheduler fixtures: an empty job store and an empty runs table on the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from scheduler.core import JOB_TABLE
from tests.scheduler.jobfuncs import create_runs_table


def _clear_jobs(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {JOB_TABLE}"))


@pytest.fixture
def store(db: Engine) -> Iterator[Engine]:
    """The test database with no stored jobs and no recorded runs."""
    _clear_jobs(db)
    create_runs_table(db)
    yield db
    _clear_jobs(db)

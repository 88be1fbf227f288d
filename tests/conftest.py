"""Shared fixtures: the sample KB, and real databases (SQLite file and PostgreSQL) migrated by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from bot.runtime import Runtime, bootstrap
from bot.settings import Settings
from knowledge.loader import load_kb
from knowledge.matcher import Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade
from tests import pg
from tests.fakes.line_api import FakeLineAPI

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_kb()


@pytest.fixture(scope="session")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb, Normalizer(kb.synonyms), Settings().match.config())


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'concierge.db'}"
        return
    name = pg.create_database()
    try:
        yield pg.url_for(name)
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="session")
def migrated(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _wipe(engine: Engine) -> None:
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())
            conn.execute(text("DELETE FROM sqlite_sequence"))  # ids start at 1 again, as on PostgreSQL


@pytest.fixture
def db(migrated: Engine) -> Iterator[Engine]:
    """A migrated database, empty at the start of each test."""
    _wipe(migrated)
    yield migrated


@pytest.fixture
def sessions(db: Engine) -> SessionFactory:
    return session_factory(db)


@pytest.fixture
def settings(db: Engine) -> Settings:
    return Settings(database_url=db.url.render_as_string(hide_password=False), _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = bootstrap(settings, migrate=False)
    yield rt
    rt.close()


@pytest.fixture
def fake() -> Iterator[FakeLineAPI]:
    """The fake LINE Messaging API on 127.0.0.1 (tests/fakes/line_api.py); a module may shadow `fake` with
    another platform's fake."""
    with FakeLineAPI() as api:
        yield api

"""The composition root: one `bootstrap()` builds everything from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine as DBEngine
from sqlalchemy import text

from bot.settings import Settings
from handlers.engine import Engine, Extension
from knowledge.loader import load_kb
from knowledge.matcher import Matcher
from knowledge.models import KnowledgeBase
from knowledge.normalize import Normalizer
from storage.db import SessionFactory, make_engine, session_factory
from storage.migrate import upgrade


@dataclass
class Runtime:
    settings: Settings
    db: DBEngine
    sessions: SessionFactory
    kb: KnowledgeBase
    matcher: Matcher
    engine: Engine

    def healthy(self) -> bool:
        try:
            with self.db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return bool(self.kb.entries)

    def close(self) -> None:
        self.db.dispose()


def build_matcher(settings: Settings, kb: KnowledgeBase | None = None) -> Matcher:
    kb = kb or load_kb(settings.kb_path)
    return Matcher(kb, Normalizer(kb.synonyms), settings.match.config())


def bootstrap(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Load the KB, open the database (migrating it to the latest schema) and build the engine."""
    kb = load_kb(settings.kb_path)
    matcher = build_matcher(settings, kb)
    db = make_engine(settings.database_url)
    if migrate:
        upgrade(db)
    sessions = session_factory(db)
    from handlers.appointments import AppointmentExtension

    extensions: list[Extension] = [AppointmentExtension(timezone=settings.office_hours.timezone)]
    from handlers.subscriptions import NoticeSettings

    extensions.append(NoticeSettings(settings.engine_config()))
    engine = Engine(kb, matcher, sessions, settings.engine_config(), extensions=extensions)
    return Runtime(settings, db, sessions, kb, matcher, engine)

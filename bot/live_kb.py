"""The live knowledge base of a deployment: entries and contacts from the database (storage/kb.py) on top of
the seed folder's topics, synonyms, crisis and phrases (`KB_PATH`).

A new database is seeded from the folder's entries and contacts (revision 1). Every worker polls the newest
revision id (one cheap query every `POLL_SECONDS`); when it changed, the KB and its matcher are rebuilt in a
thread while the old ones keep answering, then swapped in as one (the engine, the runtime and everything that
listens). A change is answered by every worker within a few seconds, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import anyio
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from bot import heap
from knowledge.loader import KnowledgeBaseError, Problem, assemble, load_raw
from knowledge.matcher import MatchConfig, Matcher
from knowledge.models import KnowledgeBase, Synonyms
from knowledge.normalize import Normalized, Normalizer
from storage import kb as kbdb
from storage.db import SessionFactory, transaction

log = logging.getLogger("concierge.kb")
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Loaded:
    """The KB as assembled at one revision (0: the seed folder itself, no database KB), and its problems."""

    revision: int
    kb: KnowledgeBase | None
    problems: list[Problem]


def read_folder(path: Path, *, items: bool = True) -> tuple[KnowledgeBase | None, list[Problem]]:
    """`load_raw` of the seed folder, read again only when one of its files changed (the KB models are frozen,
    so one read is shared by the runtimes a process builds)."""
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else []
    signature = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    kb, problems = _read_folder(path, items, signature)
    return kb, list(problems)


@lru_cache(maxsize=8)
def _read_folder(
    path: Path, items: bool, signature: tuple[tuple[str, int, int], ...]
) -> tuple[KnowledgeBase | None, tuple[Problem, ...]]:
    kb, problems = load_raw(path, items=items)
    return kb, tuple(problems)


def seed_items(path: Path) -> tuple[list[kbdb.Item], list[kbdb.Item]]:
    """The seed folder's entries and contacts as items, raising when the folder does not load."""
    kb, problems = read_folder(path)
    errors = [p for p in problems if p.level == "error"]
    if kb is None or errors:
        raise KnowledgeBaseError(errors)
    from knowledge.exchange import contact_dict, entry_dict

    entries = [kbdb.Item(kbdb.ENTRY, e.id, entry_dict(e), kb.entry_files.get(e.id)) for e in kb.entries.values()]
    contacts = [
        kbdb.Item(kbdb.CONTACT, c.id, contact_dict(c), kb.contact_files.get(c.id)) for c in kb.contacts.values()
    ]
    return entries, contacts


def ensure_seeded(sessions: SessionFactory, path: Path) -> int | None:
    """Seed the database from the folder when it holds no KB yet; the revision made, or None."""
    with transaction(sessions) as s:
        if kbdb.has_items(s):
            return None
    entries, contacts = seed_items(path)
    try:
        with transaction(sessions) as s:
            revision = kbdb.seed(s, entries=entries, contacts=contacts)
            return None if revision is None else revision.id
    except IntegrityError:  # another process seeded it at the same moment
        return None


def has_kb_tables(sessions: SessionFactory) -> bool:
    with sessions() as s:
        return "kbitem" in inspect(s.connection()).get_table_names()


def load_live(
    sessions: SessionFactory, path: Path, base: tuple[KnowledgeBase | None, list[Problem]] | None = None
) -> Loaded:
    """The live KB: the database's entries and contacts on the folder's base (revision 0, the folder itself,
    while the database holds none). `base`: the folder's own part, read before."""
    with transaction(sessions) as s:
        snap = kbdb.snapshot(s)
    if not snap.entries and not snap.contacts:
        return Loaded(0, *read_folder(path))
    kb, problems = assemble(
        path,
        entries=[(i.origin, i.data) for i in snap.entries],
        contacts=[(i.origin, i.data) for i in snap.contacts],
        base=base if base is not None else read_folder(path, items=False),
    )
    return Loaded(snap.revision, kb, problems)


class KbNormalizer(Normalizer):
    """The normaliser, keeping the analysed form of every KB question across rebuilds: a new revision changes a
    few questions, so rebuilding the index analyses only those (the analyser is most of a rebuild's cost).
    Parents' messages go through the normaliser's own bounded cache as before."""

    def __init__(self, synonyms: Synonyms) -> None:
        super().__init__(synonyms)
        self._known: dict[str, Normalized] = {}

    def __call__(self, text: str) -> Normalized:
        known = self._known.get(text)
        return known if known is not None else super().__call__(text)

    def learn(self, kb: KnowledgeBase) -> None:
        """Analyse the questions of `kb` not seen yet; forget those it no longer has."""
        old = self._known
        texts = {q for e in kb.entries.values() for _lang, q in e.question_list()}
        analyse = super().__call__
        self._known = {q: old[q] if q in old else analyse(q) for q in texts}


def checked(loaded: Loaded) -> KnowledgeBase:
    errors = [p for p in loaded.problems if p.level == "error"]
    if loaded.kb is None or errors:
        raise KnowledgeBaseError(errors)
    return loaded.kb


Listener = Callable[[KnowledgeBase, Matcher], None]
Prepared = tuple[int, KnowledgeBase, Matcher, list[Callable[[], None]]]


class LiveKnowledge:
    """The KB and matcher in use, and the poll that swaps in a new revision. `prepare` hooks build what a
    listener needs off the answering path (in the rebuild thread); their results are applied in one step."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        path: Path,
        config: MatchConfig,
        revision: int,
        kb: KnowledgeBase,
        matcher: Matcher | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.path = path
        self.config = config
        self.poll_seconds = poll_seconds
        # Topics, synonyms, crisis and phrases come from the folder and change only with a restart.
        self._base = read_folder(path, items=False)
        self.normalizer = KbNormalizer(kb.synonyms)
        self._current = (revision, kb, matcher if matcher is not None else self.build(kb))
        self._hooks: list[Callable[[KnowledgeBase, Matcher], Callable[[], None]]] = []
        self._lock = threading.Lock()  # one rebuild at a time (the poll and a console save)
        self._failed: int | None = None  # a revision that did not load
        self.last_rebuild_seconds = 0.0

    @property
    def revision(self) -> int:
        return self._current[0]

    @property
    def kb(self) -> KnowledgeBase:
        return self._current[1]

    @property
    def matcher(self) -> Matcher:
        return self._current[2]

    def on_swap(self, prepare: Callable[[KnowledgeBase, Matcher], Callable[[], None]]) -> None:
        """`prepare(kb, matcher)` runs in the rebuild thread and returns the (cheap) step that swaps it in."""
        self._hooks.append(prepare)

    def listen(self, listener: Listener) -> None:
        """A listener told the new KB at the swap (for holders that only keep a reference)."""
        self.on_swap(lambda kb, matcher: lambda: listener(kb, matcher))

    def build(self, kb: KnowledgeBase) -> Matcher:
        """The matcher of `kb`, on the normaliser that remembers the questions analysed before."""
        self.normalizer.learn(kb)
        return Matcher(kb, self.normalizer, self.config)

    @staticmethod
    def matcher_for(kb: KnowledgeBase, config: MatchConfig) -> Matcher:
        return Matcher(kb, Normalizer(kb.synonyms), config)

    def latest(self) -> int:
        with transaction(self.sessions) as s:
            return kbdb.latest_revision(s)

    def prepare(self) -> Prepared | None:
        """A new revision rebuilt (KB, matcher, the listeners' parts), or None when nothing changed or the new
        revision does not load (the old KB keeps answering; the problem is logged without content)."""
        latest = self.latest()
        if latest in (self.revision, self._failed):
            return None
        started = time.perf_counter()
        loaded = load_live(self.sessions, self.path, self._base)
        if loaded.revision == self.revision:
            return None
        try:
            kb = checked(loaded)
        except KnowledgeBaseError as exc:
            self._failed = loaded.revision  # tried again only when a newer revision comes
            log.error(
                "knowledge base revision %s does not load (%d problems): kept revision %s",
                loaded.revision,
                len(exc.problems),
                self.revision,
            )
            return None
        matcher = self.build(kb)
        steps = [hook(kb, matcher) for hook in self._hooks]
        self.last_rebuild_seconds = time.perf_counter() - started
        return loaded.revision, kb, matcher, steps

    def apply(self, prepared: Prepared) -> None:
        revision, kb, matcher, steps = prepared
        if revision <= self.revision:
            return
        old = self.revision
        self._current = (revision, kb, matcher)
        for step in steps:
            step()
        heap.resettle()  # the old revision's objects go, the new ones join the frozen heap (bot/heap.py)
        log.info(
            "knowledge base revision %s in use (was %s; rebuilt in %.2f s, %d entries)",
            revision,
            old,
            self.last_rebuild_seconds,
            len(kb.entries),
        )

    def refresh(self) -> bool:
        """Check, rebuild and swap in this thread (the console after a save, the CLI); True when swapped."""
        with self._lock:
            prepared = self.prepare()
            if prepared is None:
                return False
            self.apply(prepared)
            return True

    async def run(self) -> None:
        """Poll until cancelled; the rebuild runs in a worker thread so that answering never waits for it."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await anyio.to_thread.run_sync(self.refresh)
            except Exception as exc:  # the database may be away for a moment: try again at the next poll
                log.warning("knowledge base poll failed: %s", type(exc).__name__)


def database_exists(url: str) -> bool:
    """False for a SQLite file that is not there yet (reading must not create it); True otherwise."""
    from sqlalchemy.engine import make_url

    from storage.db import normalize_url

    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return True
    return parsed.database in (None, "", ":memory:") or Path(parsed.database).exists()


def read_live(database_url: str, path: Path) -> Loaded:
    """The live KB of the database without changing anything (no migration, no seed, no file created): the
    seed folder itself (revision 0) while the database has no KB."""
    if not database_exists(database_url):
        return Loaded(0, *read_folder(path))
    from storage.db import make_engine, session_factory

    engine = make_engine(database_url)
    try:
        sessions = session_factory(engine)
        if not has_kb_tables(sessions):
            return Loaded(0, *read_folder(path))
        return load_live(sessions, path)
    finally:
        engine.dispose()

"""Leader election: the one process allowed to run jobs is the one holding the lock.

PostgreSQL: `pg_try_advisory_lock` on a dedicated connection (not from a pool), held for as long as that
connection lives; if the process dies, the server ends the session and the lock is free for the next one.
SQLite: an exclusive `flock` on a file beside the database, so a `concierge scheduler` started next to
`concierge serve` stays idle instead of running jobs twice. An in-memory SQLite database has one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from storage.db import advisory_unlock, make_engine, normalize_url, ping, try_advisory_lock

log = logging.getLogger("concierge.scheduler")

DEFAULT_LOCK_KEY = 0x6B6F736F  # "koso": the advisory lock id of the scheduler


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Try once, without waiting; True when this process now holds (or already held) the lock."""
        ...

    def held(self) -> bool:
        """Whether the lock is still ours (for PostgreSQL: the lock's connection still answers)."""
        ...

    def release(self) -> None: ...


class AdvisoryLock:
    """A session-level PostgreSQL advisory lock on its own connection."""

    def __init__(self, url: str, key: int = DEFAULT_LOCK_KEY) -> None:
        self.key = key
        self._engine = make_engine(url, poolclass=NullPool)
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self._engine.connect()
        try:
            got = try_advisory_lock(conn, key=self.key)
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            ping(self._conn)
            self._conn.commit()
        except Exception as exc:
            log.warning("scheduler lock connection lost: %s", type(exc).__name__)
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            advisory_unlock(self._conn, key=self.key)
            self._conn.commit()
        self._drop()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class FileLock:
    """An exclusive, non-blocking `flock` on a file; the kernel frees it when the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def close(self) -> None:
        self.release()


class NoLock:
    """One process by construction (an in-memory database)."""

    def __init__(self) -> None:
        self._held = False

    def acquire(self) -> bool:
        self._held = True
        return True

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False

    def close(self) -> None:
        self.release()


def lock_for(database_url: str, key: int = DEFAULT_LOCK_KEY) -> AdvisoryLock | FileLock | NoLock:
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(database_url, key)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return FileLock(Path(url.database + ".scheduler.lock"))
    return NoLock()

"""Suite-wide rules, loaded before any test module (`-p tests.plugin` in pyproject.toml).

- A network guard: a test may open connections to loopback addresses (and Unix sockets) only. Every fake
  (LINE, Telegram, IMAP, SMTP) and every server (PostgreSQL, the app under uvicorn) listens on 127.0.0.1, so a
  connection anywhere else is a defect of the test or of the code: it is refused and fails the test, even when
  the code under test swallowed the error.
- The `postgres` marker: a test that only makes sense on PostgreSQL (several workers, advisory locks, a
  database that must be created) carries `@pytest.mark.postgres`; its SQLite variant is deselected rather than
  skipped, so the report's skips are real skips.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NetworkGuardError(ConnectionRefusedError):
    """A test tried to reach a non-loopback address."""


_violations: list[str] = []
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets (PostgreSQL's local socket, Playwright's pipes) stay on this machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        _violations.append(f"{host!r}")
        raise NetworkGuardError(f"tests may only connect to loopback addresses, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    del _violations[:]
    yield
    if _violations:
        found = ", ".join(sorted(set(_violations)))
        del _violations[:]
        pytest.fail(f"the test tried to connect outside loopback: {found}", pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("db_url") == "sqlite"
        if on_sqlite and item.get_closest_marker("postgres") is not None:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep

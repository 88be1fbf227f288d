"""The suite's own rules (tests/plugin.py): loopback only, PostgreSQL-only tests deselected on SQLite."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import Engine

from tests import plugin


def test_a_connection_outside_loopback_is_refused_and_noted() -> None:
    with pytest.raises(plugin.NetworkGuardError):
        socket.create_connection(("192.0.2.10", 80), timeout=1)  # TEST-NET-1: never reachable anyway
    assert plugin._violations == ["'192.0.2.10'"]
    plugin._violations.clear()  # noted: the fixture would fail this test otherwise


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
    assert plugin.is_loopback("localhost") and plugin.is_loopback("::1") and plugin.is_loopback("127.0.0.2")
    assert not plugin.is_loopback("example.jp") and not plugin.is_loopback("10.0.0.1")


@pytest.mark.postgres
def test_a_postgres_test_runs_on_postgresql_only(db: Engine) -> None:
    assert db.dialect.name == "postgresql"

"""The local PostgreSQL server for tests: started if it is down, one throw-away database per run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psycopg

ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def _ready() -> bool:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_server() -> None:
    """Start the machine's cluster when it is not answering (as the CI machine may have it stopped)."""
    if _ready():
        return
    if shutil.which("pg_ctlcluster"):
        versions = sorted(p.name for p in Path("/etc/postgresql").glob("*"))
        if versions:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                check=False,
                capture_output=True,
            )
    for _ in range(60):
        if _ready():
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL does not answer on 127.0.0.1:5432 and could not be started")


def create_database() -> str:
    ensure_server()
    name = f"kc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def url_for(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

"""How long a backup and a restore drill take on this machine, for a database of a given size.

    .venv/bin/python bench/backup.py [--db sqlite|postgres] [--cases 5000] [--lines 10]

Fills a throw-away database (contacts, consent ledger, cases, transcript lines of ~150 characters of Japanese,
audit entries) with bulk inserts, then times `storage.backup.backup` unencrypted and encrypted with a key,
and `restore` of the encrypted file into a new empty database plus the migration check, and compares row counts.
PostgreSQL: the local server on 127.0.0.1:5432 (trust auth), databases created and dropped by the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from sqlalchemy import Engine, func, insert, select  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from storage import backup  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, ConsentRecord, Contact, Message  # noqa: E402
from storage.staff import AuditEntry  # noqa: E402
from tests import pg  # noqa: E402

LINE = "子どもの夜泣きが続いていて、保育園の一時預かりについても相談したいです。" * 4


def fill(engine: Engine, cases: int, lines: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(insert(Contact), [{"channel": "line", "external_id": f"U{i:032x}"} for i in range(1, cases + 1)])
        conn.execute(
            insert(ConsentRecord),
            [
                {"contact_id": i, "channel": "line", "notice_version": "2026-11", "status": "granted", "at": now}
                for i in range(1, cases + 1)
            ],
        )
        conn.execute(
            insert(Case), [{"contact_id": i, "channel": "line", "status": "resolved"} for i in range(1, cases + 1)]
        )
        chunk = 20_000
        rows = [
            {
                "case_id": c,
                "direction": "in" if n % 2 else "out",
                "author": "parent" if n % 2 else "staff",
                "text": LINE,
            }
            for c in range(1, cases + 1)
            for n in range(lines)
        ]
        for start in range(0, len(rows), chunk):
            conn.execute(insert(Message), rows[start : start + chunk])
        conn.execute(
            insert(AuditEntry),
            [
                {"actor": "sato", "action": "view", "record_type": "case", "record_id": str(i)}
                for i in range(1, cases + 1)
            ],
        )


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in SQLModel.metadata.sorted_tables
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=10, help="transcript lines per case")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kc-bench-backup-"))
    names: list[str] = []

    def new_url(tag: str) -> str:
        if args.db == "sqlite":
            return f"sqlite:///{tmp / (tag + '.db')}"
        names.append(pg.create_database())
        return pg.url_for(names[-1])

    try:
        source = make_engine(new_url("source"))
        upgrade(source)
        t0 = time.perf_counter()
        fill(source, args.cases, args.lines)
        print(
            f"{args.db}: {args.cases} cases, {args.cases * args.lines} transcript lines "
            f"filled in {time.perf_counter() - t0:.1f} s"
        )
        key = backup.Secret(key=os.urandom(32))
        for label, secret in (("plain", None), ("encrypted", key)):
            out = tmp / f"{label}.kcbak"
            t0 = time.perf_counter()
            info = backup.backup(source, out, secret=secret)
            print(
                f"backup {label:9}: {time.perf_counter() - t0:6.2f} s, {info.size / 1e6:7.1f} MB payload, "
                f"file {out.stat().st_size / 1e6:.1f} MB"
            )
        target = make_engine(new_url("restored"))
        t0 = time.perf_counter()
        backup.restore(target, tmp / "encrypted.kcbak", secret=key)
        upgrade(target)
        print(f"restore + migrate (encrypted file): {time.perf_counter() - t0:6.2f} s")
        same = counts(source) == counts(target)
        print(f"row counts identical after restore: {same}")
        source.dispose()
        target.dispose()
    finally:
        for name in names:
            pg.drop_database(name)


if __name__ == "__main__":
    main()

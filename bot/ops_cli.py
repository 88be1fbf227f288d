"""`concierge backup FILE`, `concierge restore FILE`, `concierge doctor`: running the service for years.

concierge backup FILE [--plain]          a consistent backup of the live database (encrypted when
                                         BACKUP__KEY or BACKUP__PASSPHRASE is set, unless --plain)
concierge restore FILE                   into the EMPTY database at DATABASE_URL, then migrated to the latest schema
concierge doctor [--online] [--json]     checks the deployment; exit code 1 on errors (usable in monitoring)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings


def ops_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bk = sub.add_parser("backup", help="write a consistent backup of the live database")
    bk.add_argument("file", type=Path)
    bk.add_argument("--plain", action="store_true", help="do not encrypt even when a key or passphrase is set")
    bk.set_defaults(func=_backup)

    rs = sub.add_parser("restore", help="restore a backup into an empty database and migrate it")
    rs.add_argument("file", type=Path)
    rs.set_defaults(func=_restore)

    doc = sub.add_parser("doctor", help="check this deployment's configuration (exit 1 on errors)")
    doc.add_argument("--online", action="store_true", help="also ask LINE and Telegram (needs the internet)")
    doc.add_argument("--json", action="store_true", help="one JSON object per check")
    doc.set_defaults(func=_doctor)


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.backups import secret_for
    from storage import backup
    from storage.db import make_engine

    try:
        secret = None if args.plain else secret_for(settings)
        engine = make_engine(settings.database_url)
        try:
            info = backup.backup(engine, args.file, secret=secret)
        finally:
            engine.dispose()
    except (backup.BackupError, OSError) as exc:
        print(f"バックアップできませんでした / backup failed: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the class name only: a database message can quote values
        print(f"データベースに接続できません / database error: {type(exc).__name__}", file=sys.stderr)
        return 1
    state = "encrypted" if info.encrypted else "NOT encrypted"
    print(f"wrote {info.path} ({info.dialect}, schema {info.revision}, {info.size} bytes, {state})")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    from scheduler.backups import secret_for
    from storage import backup
    from storage.db import make_engine
    from storage.migrate import upgrade

    try:
        secret = secret_for(settings)
        engine = make_engine(settings.database_url)
        try:
            info = backup.restore(engine, args.file, secret=secret)
            upgrade(engine)
        finally:
            engine.dispose()
    except (backup.BackupError, OSError) as exc:
        print(f"復元できませんでした / restore failed: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(
            f"復元先のデータベースに接続できません（先に空のデータベースを作成してください） / "
            f"cannot use the target database ({type(exc).__name__}; create an empty database first)",
            file=sys.stderr,
        )
        return 1
    print(
        f"restored {args.file} (made {info.created_at:%Y-%m-%d %H:%M} UTC, schema {info.revision}); "
        "migrated to the latest schema"
    )
    return 0


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.doctor import exit_code, render, run_checks

    results = run_checks(settings, online=args.online)
    sys.stdout.write(render(results, as_json=args.json))
    return exit_code(results)

"""`concierge staff ...`: staff accounts from the command line (the first supervisor is made here).

concierge staff add USERNAME --role ROLE [--complaint-intake] [--name 表示名]   (password from stdin)
concierge staff list
concierge staff link USERNAME TELEGRAM_USER_ID      (or --unlink)
concierge staff passwd USERNAME                     (password from stdin)
concierge staff unlock USERNAME
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings

ROLES = ("concierge", "assistant", "supervisor", "auditor")
MIN_PASSWORD = 10


def staff_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = sub.add_parser("staff", help="staff accounts of the web console").add_subparsers(metavar="ACTION")

    add = staff.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("username", help="1-10 characters: a-z 0-9 . _ -")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--complaint-intake", action="store_true", help="complaints (要望・苦情) are routed to them")
    add.add_argument("--name", default="", help="display name shown in the console")
    add.set_defaults(func=_add)

    lst = staff.add_parser("list", help="list the accounts")
    lst.set_defaults(func=_list)

    link = staff.add_parser("link", help="link a Telegram user id to an account (Telegram staff bridge)")
    link.add_argument("username")
    link.add_argument("telegram_user_id", nargs="?", type=int)
    link.add_argument("--unlink", action="store_true", help="remove the link")
    link.set_defaults(func=_link)

    passwd = staff.add_parser("passwd", help="set a new password (read from stdin); ends the account's sessions")
    passwd.add_argument("username")
    passwd.set_defaults(func=_passwd)

    unlock = staff.add_parser("unlock", help="lift a lockout after failed logins")
    unlock.add_argument("username")
    unlock.set_defaults(func=_unlock)


def _sessions(settings: Settings) -> tuple[Any, Any]:
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine, session_factory(engine)


def read_password() -> str | None:
    """From the terminal (asked twice), or the first line of stdin when piped."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            print("the passwords differ", file=sys.stderr)
            return None
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"the password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def _hash(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from storage import staff as staffdb
    from storage.db import transaction

    username = args.username.strip().lower()
    if not staffdb.valid_username(username):
        print("username: 1-10 characters a-z 0-9 . _ -, starting with a letter or digit", file=sys.stderr)
        return 2
    if args.role == "auditor" and args.complaint_intake:
        print("an auditor is read-only and cannot take complaints", file=sys.stderr)
        return 2
    password = read_password()
    if password is None:
        return 2
    engine, sessions = _sessions(settings)
    try:
        with transaction(sessions) as s:
            if staffdb.get_staff_by_username(s, username=username) is not None:
                print(f"{username} exists already", file=sys.stderr)
                return 1
            row = staffdb.create_staff(
                s,
                username=username,
                role=staffdb.Role(args.role),
                password_hash=_hash(password),
                display_name=args.name,
                complaint_intake=args.complaint_intake,
            )
            staffdb.audit(
                s,
                actor="cli",
                action="create",
                record_type="staff",
                record_id=row.id,
                detail=f"role {args.role}",
                via="cli",
            )
    finally:
        engine.dispose()
    print(f"created {username} ({args.role}{', complaint intake' if args.complaint_intake else ''})")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import staff as staffdb
    from storage.models import utcnow

    engine, sessions = _sessions(settings)
    try:
        with sessions() as s:
            rows = staffdb.list_staff(s)
    finally:
        engine.dispose()
    now = utcnow()
    for r in rows:
        flags = [
            r.role,
            *(["complaint-intake"] if r.complaint_intake else []),
            *(["inactive"] if not r.active else []),
            *(["locked"] if staffdb.is_locked(r, now=now) else []),
            *(["telegram"] if r.telegram_user_id else []),
        ]
        last = f"{r.last_login_at:%Y-%m-%d %H:%M}" if r.last_login_at else "never"
        print(f"{r.username}\t{r.display_name or '-'}\t{','.join(flags)}\tlast login {last}")
    print(f"{len(rows)} account(s)")
    return 0


def _find(s: Any, username: str) -> Any:
    from storage import staff as staffdb

    row = staffdb.get_staff_by_username(s, username=username.strip().lower())
    if row is None:
        print(f"no account {username}", file=sys.stderr)
    return row


def _link(args: argparse.Namespace, settings: Settings) -> int:
    from storage import staff as staffdb
    from storage.db import transaction

    if args.unlink == (args.telegram_user_id is not None):
        print("give TELEGRAM_USER_ID, or --unlink", file=sys.stderr)
        return 2
    engine, sessions = _sessions(settings)
    try:
        with transaction(sessions) as s:
            row = _find(s, args.username)
            if row is None:
                return 1
            try:
                staffdb.link_telegram(s, staff=row, telegram_user_id=None if args.unlink else args.telegram_user_id)
            except ValueError as exc:
                print(exc, file=sys.stderr)
                return 1
            detail = "unlinked" if args.unlink else "linked"
            staffdb.audit(
                s, actor="cli", action="link_telegram", record_type="staff", record_id=row.id, detail=detail, via="cli"
            )
    finally:
        engine.dispose()
    print(f"{args.username}: telegram {'unlinked' if args.unlink else 'linked'}")
    return 0


def _passwd(args: argparse.Namespace, settings: Settings) -> int:
    from storage import staff as staffdb
    from storage.db import transaction

    password = read_password()
    if password is None:
        return 2
    engine, sessions = _sessions(settings)
    try:
        with transaction(sessions) as s:
            row = _find(s, args.username)
            if row is None:
                return 1
            staffdb.set_password(s, staff=row, password_hash=_hash(password))
            staffdb.audit(s, actor="cli", action="password", record_type="staff", record_id=row.id, via="cli")
    finally:
        engine.dispose()
    print(f"{args.username}: password changed, sessions ended")
    return 0


def _unlock(args: argparse.Namespace, settings: Settings) -> int:
    from storage import staff as staffdb
    from storage.db import transaction

    engine, sessions = _sessions(settings)
    try:
        with transaction(sessions) as s:
            row = _find(s, args.username)
            if row is None:
                return 1
            staffdb.unlock_staff(s, staff=row)
            staffdb.audit(s, actor="cli", action="unlock", record_type="staff", record_id=row.id, via="cli")
    finally:
        engine.dispose()
    print(f"{args.username}: unlocked")
    return 0

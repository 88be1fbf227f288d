"""The `concierge` command."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from bot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    # The settings are read once per command, here, and handed to it.
    code: int = args.func(args, Settings())
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="concierge", description="子育て支援コンシェルジュ bot")
    sub = p.add_subparsers(metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer one question per stdin line (stateless)")
    ask.add_argument("--json", action="store_true", help="one JSON object per line")
    ask.add_argument("--lang", choices=["ja", "en"], help="language hint")
    ask.set_defaults(func=_ask)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal as a parent would")
    chat.add_argument("--user", default="console-user", help="the console sender id")
    chat.set_defaults(func=_chat)

    serve = sub.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--console", action="store_true", help="also chat in this terminal")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL only)")
    serve.set_defaults(func=_serve)

    kb = sub.add_parser("kb", help="knowledge base tools").add_subparsers(metavar="ACTION")
    check = kb.add_parser("check", help="lint the live knowledge base (the seed folder before the first start)")
    check.add_argument("--path", type=Path, help="lint this KB folder instead")
    check.add_argument("--max-age", type=int, help="days after which a source is stale")
    check.set_defaults(func=_kb_check)
    export = kb.add_parser("export", help="dump the live knowledge base")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument("--output", type=Path, help="file (default: stdout)")
    export.set_defaults(func=_kb_export)
    imp = kb.add_parser(
        "import", help="merge a JSON dump, an open-data FAQ CSV or a KB folder into the live KB (one revision)"
    )
    imp.add_argument("file", type=Path, help="a .json or .csv file, or a folder laid out as knowledge/kb/")
    imp.add_argument("--format", choices=["json", "csv", "yaml"])
    imp.add_argument("--source-url", help="source of new entries (CSV)")
    imp.add_argument("--comment", default="", help="why: shown in the console's revisions")
    imp.add_argument("--by", default="cli", help="who imports (the revision and the audit log name them)")
    imp.add_argument("--path", type=Path, help="the seed folder (default KB_PATH)")
    imp.set_defaults(func=_kb_import)

    line = sub.add_parser("line", help="LINE channel tools").add_subparsers(metavar="ACTION")
    menu = line.add_parser("richmenu", help="upload the rich menu (bot/richmenu.json) and make it the default")
    menu.add_argument("--file", type=Path, help="rich menu definition (JSON)")
    menu.add_argument("--image", type=Path, help="the menu image (PNG or JPEG)")
    menu.set_defaults(func=_line_richmenu)

    db = sub.add_parser("db", help="database tools").add_subparsers(metavar="ACTION")
    up = db.add_parser("upgrade", help="migrate the database to the latest schema")
    up.set_defaults(func=_db_upgrade)
    _lifecycle_commands(sub)
    _notice_commands(sub)
    from bot.console.cli import staff_commands  # concierge staff add|list|link|passwd|unlock

    staff_commands(sub)
    from bot.ops_cli import ops_commands  # concierge backup|restore|doctor

    ops_commands(sub)
    return p


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.live_kb import checked, read_live
    from bot.runtime import build_matcher
    from handlers.engine import Engine
    from handlers.types import render_plain

    matcher = build_matcher(settings, checked(read_live(settings.database_url, settings.kb_path)))
    engine = Engine(matcher.kb, matcher, sessions=_no_sessions, config=settings.engine_config())
    out = sys.stdout
    for line in sys.stdin:
        question = line.rstrip("\r\n")
        decision = engine.classify(question, args.lang)
        replies = engine.replies_for(decision)
        text = "\n\n".join(render_plain(r) for r in replies)
        if args.json:
            obj = {
                "question": question,
                "action": decision.action,
                "topic": decision.topic,
                "entry_id": decision.entry_id,
                "score": decision.score,
                "lang": decision.lang,
                "crisis": decision.crisis.category.id if decision.crisis else None,
                "reply": text,
                "candidates": [
                    {"entry_id": c.entry_id, "topic": c.topic, "score": c.score} for c in decision.candidates
                ],
            }
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        else:
            out.write(text.replace("\n", " ") + "\n")
        out.flush()
    return 0


def _no_sessions() -> NoReturn:
    raise RuntimeError("concierge ask is stateless: it reads the live KB and stores nothing")


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime import bootstrap
    from handlers.channels.console import chat
    from handlers.inbox import Inbox

    runtime = bootstrap(settings)
    sys.stdout.write(f"子育て支援コンシェルジュ（{settings.office_name('ja')}）です。ご質問をどうぞ。終了は Ctrl-D。\n")
    try:
        asyncio.run(chat(Inbox(runtime.sessions, runtime.engine, {}), sys.stdin, sys.stdout, sender_id=args.user))
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
    return 0


def channel_report(settings: Settings) -> list[str]:
    """One line per channel for the start-up log: on or off, and why (names of settings, never values).
    Empty or blank secrets count as unset (bot/settings.py), so a channel with one is reported off."""

    def missing(**values: object) -> str:
        return ", ".join(name for name, value in values.items() if value is None)

    line, tg, email, console = settings.line, settings.telegram, settings.email, settings.console
    out = []
    if line.enabled:
        out.append("channel LINE: on")
    else:
        unset = missing(LINE_CHANNEL_SECRET=line.channel_secret, LINE_CHANNEL_ACCESS_TOKEN=line.channel_access_token)
        out.append(f"channel LINE: off ({unset} unset or empty)")
    if email.enabled:
        no_password = missing(IMAP_PASSWORD=email.imap_password)
        out.append("channel email: on" + (f" ({no_password} unset or empty)" if no_password else ""))
    else:
        out.append("channel email: off (IMAP_HOST unset)")
    if tg.enabled and tg.mode == "webhook" and tg.webhook_secret is None:
        out.append(
            "channel Telegram staff bridge: refused (webhook mode needs TELEGRAM_WEBHOOK_SECRET: unset or empty)"
        )
    elif tg.enabled:
        out.append(f"channel Telegram staff bridge: on ({tg.mode})")
    else:
        unset = missing(TELEGRAM_BOT_TOKEN=tg.bot_token, TELEGRAM_STAFF_CHAT_ID=tg.staff_chat_id)
        out.append(f"channel Telegram staff bridge: off ({unset} unset or empty)")
    if console.session_secret is None:
        out.append("staff console: on (CONSOLE_SESSION_SECRET unset or empty: a random key per start)")
    else:
        out.append("staff console: on")
    return out


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    import uvicorn

    from bot.app import create_app
    from bot.hardening import server_options
    from bot.logs import configure

    configure(settings.log)  # one line per event, text or JSON, with request ids (bot/logs.py)
    if settings.telegram.enabled and not _check_telegram(settings):
        return 2
    log = logging.getLogger("concierge.serve")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for report in channel_report(settings):
        log.info("%s", report)
    if args.workers > 1:
        if settings.database_url.startswith("sqlite"):
            print("--workers needs PostgreSQL (DATABASE_URL); SQLite deployments run one process", file=sys.stderr)
            return 2
        if args.console:
            print("--console runs in a single process only", file=sys.stderr)
            return 2
        from bot.runtime import bootstrap

        bootstrap(settings).close()  # migrate once, before the workers start
        from bot.metrics import multiprocess_dir

        multiprocess_dir()  # the workers' webhook counters are added up at each scrape (bot/metrics.py)
        uvicorn.run(
            "bot.app:app_factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            **server_options(settings),
        )
        return 0
    app = create_app(settings, console=args.console, settle=True)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, **server_options(settings))
    return 0


def _check_telegram(settings: Settings) -> bool:
    """Say what is wrong with the Telegram bridge before serving; False when its settings can never work."""
    import asyncio

    from handlers.telegram import check_telegram, settings_problems
    from storage.db import make_engine, session_factory

    problems = settings_problems(settings)
    for problem in problems:
        print(f"telegram: {problem}", file=sys.stderr)
    if problems:
        return False
    db = make_engine(settings.database_url)
    try:
        found = asyncio.run(check_telegram(settings, session_factory(db)))
    finally:
        db.dispose()
    for problem in found:
        print(f"telegram: PROBLEM: {problem}", file=sys.stderr)
    if not found:
        print("telegram: staff chat OK (a forum; the bot may post and manage topics)", file=sys.stderr)
    return True


def _kb_source(loaded: Any) -> str:
    if loaded.revision:
        return f"the live knowledge base of DATABASE_URL, revision {loaded.revision}"
    return "the seed folder KB_PATH (the database holds no knowledge base yet)"


def _kb_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.live_kb import read_live
    from knowledge.lint import check_kb

    path = args.path or settings.kb_path
    loaded = None if args.path else read_live(settings.database_url, path)
    problems = check_kb(
        path,
        max_source_age_days=args.max_age or settings.kb_max_source_age_days,
        config=settings.match.config(),
        languages=tuple(settings.languages),
        loaded=(loaded.kb, loaded.problems) if loaded is not None and loaded.revision else None,
    )
    errors = [p for p in problems if p.level == "error"]
    for p in problems:
        print(p)
    what = _kb_source(loaded) if loaded is not None else f"the folder {path}"
    print(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s) in {what}")
    return 1 if errors else 0


def _kb_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.live_kb import checked, read_live
    from knowledge.exchange import export_csv, export_json

    kb = checked(read_live(settings.database_url, settings.kb_path))
    text = export_json(kb) if args.format == "json" else export_csv(kb)
    if args.output:
        args.output.write_text(text, encoding="utf-8", newline="")
    else:
        sys.stdout.write(text)
    return 0


def _kb_import(args: argparse.Namespace, settings: Settings) -> int:
    """Merge a JSON dump, an open-data CSV or a KB folder (YAML, as in git) into the live KB as one revision,
    after the checks of `kb check` on what changed; nothing is written when they find an error."""
    from bot.live_kb import LiveKnowledge, checked, ensure_seeded, load_live
    from knowledge.exchange import contact_dict, entry_dict, merge_csv, read_csv, read_json
    from knowledge.lint import check_candidate
    from knowledge.loader import load_raw
    from knowledge.models import Contact, Entry
    from storage import kb as kbdb
    from storage import staff as staffdb
    from storage.db import transaction

    path = args.path or settings.kb_path
    engine, sessions = _database(settings)
    try:
        ensure_seeded(sessions, path)
        kb = checked(load_live(sessions, path))
        fmt = args.format or ("yaml" if args.file.is_dir() else "csv" if args.file.suffix.lower() == ".csv" else "json")
        entries: dict[str, Entry]
        contacts: dict[str, Contact] = {}
        if fmt == "yaml":
            folder, problems = load_raw(args.file)
            entries, contacts = (folder.entries, folder.contacts) if folder is not None else ({}, {})
        elif fmt == "csv":
            rows, problems = read_csv(args.file.read_bytes(), source_url=args.source_url, today=dt.date.today())
            entries, more = merge_csv(kb, rows)
            problems += more
        else:
            entries, contacts, problems = read_json(args.file.read_bytes())
        changed = {i: e for i, e in entries.items() if kb.entries.get(i) != e}
        changed_contacts = {i: c for i, c in contacts.items() if kb.contacts.get(i) != c}
        candidate = kb.model_copy(
            update={"entries": {**kb.entries, **changed}, "contacts": {**kb.contacts, **changed_contacts}}
        )
        if not any(p.level == "error" for p in problems) and (changed or changed_contacts):
            problems += check_candidate(
                candidate,
                entries=set(changed),
                contacts=set(changed_contacts),
                max_source_age_days=settings.kb_max_source_age_days,
                config=settings.match.config(),
                languages=tuple(settings.languages),
                matcher=LiveKnowledge.matcher_for(candidate, settings.match.config()),
            )
        for p in problems:
            print(p, file=sys.stderr)
        if any(p.level == "error" for p in problems):
            print("nothing imported", file=sys.stderr)
            return 1
        items = [kbdb.Item(kbdb.ENTRY, i, entry_dict(e)) for i, e in changed.items()]
        items += [kbdb.Item(kbdb.CONTACT, i, contact_dict(c)) for i, c in changed_contacts.items()]
        with transaction(sessions) as s:
            revision = kbdb.save(
                s, items=items, staff_name=args.by, comment=args.comment or "", change=kbdb.Change.IMPORT
            )
            if revision is not None:
                detail = f"revision {revision.id}: {len(changed)} entries, {len(changed_contacts)} contacts"
                staffdb.audit(
                    s, actor=args.by, action="import", record_type="kb", record_id=revision.id, detail=detail, via="cli"
                )
    finally:
        engine.dispose()
    n = len(changed)
    print(f"{n} entr{'y' if n == 1 else 'ies'} and {len(changed_contacts)} contact(s) changed")
    if revision is not None:
        print(f"revision {revision.id}: every running worker answers with it within a few seconds")
    return 0


def _line_richmenu(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.channels.line import upload_rich_menu

    if not settings.line.enabled:
        print("set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN first", file=sys.stderr)
        return 2
    menu_id = upload_rich_menu(settings, definition=args.file, image=args.image)
    print(f"rich menu {menu_id} uploaded and set as default")
    return 0


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.live_kb import ensure_seeded
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    seeded = ensure_seeded(session_factory(engine), settings.kb_path)
    engine.dispose()
    print("database is at the latest schema")
    if seeded is not None:
        print(f"knowledge base seeded from KB_PATH (revision {seeded})")
    return 0


# ----- statistics, scheduler, records lifecycle


def _lifecycle_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="monthly statistics from the anonymous counters")
    report.add_argument("--month", required=True, help="YYYY-MM")
    report.add_argument("--csv", type=Path, help="also write the figures as CSV (UTF-8 with BOM)")
    report.set_defaults(func=_report)

    sched = sub.add_parser("scheduler", help="run the job scheduler in this process (one runs: leader lock)")
    sched.add_argument("--list", action="store_true", help="print the stored jobs and exit")
    sched.set_defaults(func=_scheduler)

    records = sub.add_parser("records", help="records lifecycle").add_subparsers(metavar="ACTION")
    purge = records.add_parser("purge", help="dispose of what is due now, as the daily job does")
    purge.add_argument("--dry-run", action="store_true", help="count only, dispose of nothing")
    purge.set_defaults(func=_records_purge)
    for name, func, text in (
        ("erase", _records_erase, "erase everything about a contact (legal exceptions are logged)"),
        ("export", _records_export, "everything kept about a contact, as JSON or text"),
    ):
        cmd = records.add_parser(name, help=text)
        cmd.add_argument("--channel", required=True, help="line, email, console, ...")
        cmd.add_argument("--id", required=True, dest="external_id", help="the contact's id on that channel")
        cmd.add_argument("--by", default="cli", help="staff name for the erasure/export log")
        cmd.set_defaults(func=func)
        if name == "export":
            cmd.add_argument("--format", choices=["json", "text"], default="json")
            cmd.add_argument("--output", type=Path, help="file (default: stdout)")
    waiting = records.add_parser("requests", help="export requests from parents waiting for staff")
    waiting.set_defaults(func=_records_requests)


def _database(settings: Settings) -> tuple[Any, Any]:
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine, session_factory(engine)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.reports import month_report, render_text, to_csv

    engine, sessions = _database(settings)
    try:
        with sessions() as session:
            report = month_report(
                session,
                month=args.month,
                office_hours=settings.office_hours.config(),
                daily_target=settings.reports.daily_target,
            )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    sys.stdout.write(render_text(report))
    if args.csv:
        args.csv.write_text(to_csv(report), encoding="utf-8-sig", newline="")
        print(f"wrote {args.csv}")
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    import logging
    import signal
    import threading

    from bot.runtime import bootstrap, build_services

    runtime = bootstrap(settings)
    try:
        # The one wiring (bot/runtime.py), asked for the scheduler alone: this process serves no channel and
        # no bridge; the jobs build the notice senders they need.
        service = build_services(runtime, scheduler=True, channels=False, bridge=False).scheduler
        assert service is not None
        if args.list:
            jobs = service.jobs()
            for info in jobs:
                print(f"{info.id}\tnext {info.next_run_time}\t{info.definition}")
            print(f"{len(jobs)} stored job(s)")
            service.stop()
            return 0
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        from bot import heap

        heap.settle()  # a long-running process like `serve` (bot/heap.py)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        service.run(stop)
        service.stop()
        return 0
    finally:
        runtime.close()


def _records_purge(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.lifecycle import purge_records
    from scheduler.jobs import retention

    engine, sessions = _database(settings)
    counts = purge_records(
        sessions,
        retention=retention(settings),
        notice_version=settings.consent_notice_version,
        dry_run=args.dry_run,
        source="cli",
    )
    engine.dispose()
    for kind, n in counts.items():
        print(f"{kind}\t{n}")
    print("dry run: nothing was disposed of" if args.dry_run else "disposed of and logged")
    return 0


def _records_erase(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.lifecycle import erase_contact, find_contact
    from storage.db import transaction

    engine, sessions = _database(settings)
    try:
        with transaction(sessions) as session:
            contact = find_contact(session, channel=args.channel, external_id=args.external_id)
            if contact is None:
                print("no such contact", file=sys.stderr)
                return 1
            result = erase_contact(
                session,
                contact=contact,
                requested_by=f"staff:{args.by}",
                notice_version=settings.consent_notice_version,
            )
    finally:
        engine.dispose()
    out: dict[str, Any] = {"request": result.request_id, "status": result.status.value, "erased": result.counts}
    out["kept"] = result.exceptions
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _records_export(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.lifecycle import find_contact, record_export, render_export
    from storage.db import transaction

    engine, sessions = _database(settings)
    try:
        with transaction(sessions) as session:
            contact = find_contact(session, channel=args.channel, external_id=args.external_id)
            if contact is None:
                print("no such contact", file=sys.stderr)
                return 1
            data = record_export(session, contact=contact, requested_by=f"staff:{args.by}")
    finally:
        engine.dispose()
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n" if args.format == "json" else render_export(data)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _records_requests(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.lifecycle import pending_exports

    engine, sessions = _database(settings)
    with sessions() as session:
        rows = pending_exports(session)
    engine.dispose()
    for r in rows:
        print(f"{r.id}\tcontact {r.contact_ref}\t{r.channel}\t{r.requested_at:%Y-%m-%d %H:%M}\tcase {r.case_ref}")
    print(f"{len(rows)} export request(s) waiting")
    return 0


# ----- concierge notices list|show|send-now|resume (handlers/notices.py)


def _notice_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notices = sub.add_parser("notices", help="staff notices to subscribed parents").add_subparsers(metavar="ACTION")
    ls = notices.add_parser("list", help="notices, newest first")
    ls.add_argument("--status", help="only this status (draft, awaiting_approval, scheduled, sent, ...)")
    ls.set_defaults(func=_notices_list)
    show = notices.add_parser("show", help="a notice: segment, recipients now, LINE quota, runs")
    show.add_argument("notice_id", type=int)
    show.set_defaults(func=_notices_show)
    now = notices.add_parser("send-now", help="send a scheduled (approved) notice now")
    now.add_argument("notice_id", type=int)
    now.set_defaults(func=_notices_send_now)
    resume = notices.add_parser("resume", help="finish unfinished runs (after a crash): no duplicates")
    resume.add_argument("--run", type=int, dest="run_id", help="only this run")
    resume.add_argument("--retry-failed", action="store_true", help="try failed batches of the run again")
    resume.set_defaults(func=_notices_resume)


def _notices_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import notices as store

    engine, sessions = _database(settings)
    with sessions() as session:
        rows = store.list_notices(session, status=args.status, limit=1000)
    engine.dispose()
    for n in rows:
        when = (
            n.send_at.isoformat()
            if n.send_at
            else n.cron or f"age +{n.age_offset_months or 0}m{n.age_offset_days or 0}d"
        )
        print(f"{n.id}\t{n.status}\t{n.kind}\t{n.topic}\t{when}\t{n.title}")
    print(f"{len(rows)} notice(s)")
    return 0


def _notices_show(args: argparse.Namespace, settings: Settings) -> int:
    from handlers import channels
    from handlers.notices import line_quota
    from storage import notices as store

    engine, sessions = _database(settings)
    try:
        with sessions() as session:
            notice = store.get_notice(session, notice_id=args.notice_id)
            if notice is None:
                print(f"no notice {args.notice_id}", file=sys.stderr)
                return 1
            est = store.estimate(
                session,
                notice=notice,
                broadcast_channel=channels.broadcast_channel(),
                allow_broadcast=settings.notices.line_broadcast,
            )
            runs = [
                (r, store.delivery_counts(session, run_id=r.id or 0))
                for r in store.runs(session, notice_id=notice.id or 0)
            ]
    finally:
        engine.dispose()
    segment = {"channel": notice.channel, "lang": notice.lang, "age": notice.age_band}
    print(f"notice {notice.id}: {notice.title} [{notice.status}, {notice.kind}, topic {notice.topic}]")
    print(f"segment {json.dumps(segment)}  languages {sorted(notice.texts)}  approved_by {notice.approved_by}")
    print(
        f"recipients now {est.total} {json.dumps(est.by_channel)}  LINE messages {est.line_messages}"
        f"{' (broadcast)' if est.broadcast else ''}"
    )
    quota = line_quota(settings)
    if quota is not None:
        print(f"LINE quota this month: used {quota.used} of {quota.limit if quota.limit is not None else 'unlimited'}")
    for run, counts in runs:
        print(f"run {run.id}\t{run.planned_for.isoformat()}\t{run.status}\t{json.dumps(counts)}")
    return 0


def _notices_send_now(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.notices import send_now
    from storage import notices as store
    from storage.models import utcnow

    engine, sessions = _database(settings)
    try:
        with sessions() as session:
            notice = store.get_notice(session, notice_id=args.notice_id)
            recurring = notice is not None and notice.kind == store.NoticeKind.RECURRING
        # A one-off keeps the key of its scheduled run (send_at), so its job cannot send it again.
        result = send_now(settings, sessions, notice_id=args.notice_id, planned_for=utcnow() if recurring else None)
    finally:
        engine.dispose()
    if result is None:
        print(f"notice {args.notice_id} may not be sent (missing, not approved, cancelled or sent)", file=sys.stderr)
        return 1
    print(_run_line(result))
    return 0 if result.done else 3


def _run_line(r: Any) -> str:
    return f"run {r.run_id}: sent {r.sent}, failed {r.failed}, skipped {r.skipped}, pending {r.pending}"


def _notices_resume(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.notices import resume
    from storage.db import transaction
    from storage.notice_runs import retry_failed

    engine, sessions = _database(settings)
    try:
        if args.retry_failed:
            if args.run_id is None:
                print("--retry-failed needs --run", file=sys.stderr)
                return 2
            with transaction(sessions) as session:
                print(f"{retry_failed(session, run_id=args.run_id)} failed deliveries reopened")
        results = resume(settings, sessions, run_id=args.run_id)
    finally:
        engine.dispose()
    for r in results:
        print(_run_line(r))
    print(f"{len(results)} run(s) resumed")
    return 0 if all(r.done for r in results) else 3


if __name__ == "__main__":
    raise SystemExit(main())

"""Notice delivery at scale: 100,000 LINE recipients through a rate-limited fake LINE API (its own process).

1. Throughput: plan a run (one delivery row per recipient) and send it as multicasts of 500 ids. Prints the
   achieved multicast rate against the fake's allowed rate and the ratio (target ≥ 90 %), 429s, and times.
2. Crash and resume: the same send in a subprocess, killed with SIGKILL midway, then resumed here. Prints
   duplicates (ids the fake received twice) and misses (expected ids it never received): both must be 0.

    .venv/bin/python bench/notices.py [--recipients 100000] [--rate 100] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bot.settings import Settings  # noqa: E402
from handlers import channels  # noqa: E402
from handlers import notices as sending  # noqa: E402
from storage import notices as store  # noqa: E402
from storage.db import SessionFactory, make_engine, session_factory, transaction  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Contact, utcnow  # noqa: E402
from tests.fakes.line_api import TOKEN  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fake_line(rate: float) -> Iterator[str]:
    """The fake LINE API in its own process, multicast limited to `rate` requests/s."""
    port = free_port()
    cmd = [sys.executable, "-m", "tests.fakes.line_api", "--port", str(port), "--multicast-rate", str(rate)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/__notices", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def stats(url: str, *, ids: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(url + "/__notices", params={"ids": "1"} if ids else {}, timeout=60).json()
    return data


def env_for(database_url: str, fake_url: str, rate: float) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "LINE_CHANNEL_SECRET": "bench",
        "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
        "LINE_API_BASE_URL": fake_url,
        "NOTICES__LINE_MULTICAST_PER_SECOND": str(rate),
        "NOTICES__LINE_BROADCAST": "false",  # everyone on LINE would otherwise be one broadcast
        "EMAIL_ADDRESS": "",
        "SMTP_HOST": "",
    }


def seed(sessions: SessionFactory, n: int) -> list[str]:
    ids = ["U" + uuid.uuid4().hex for _ in range(n)]
    now = utcnow()
    rows = [
        {"channel": "line", "external_id": i, "lang": "ja", "subscribed": True, "created_at": now, "last_seen_at": now}
        for i in ids
    ]
    with transaction(sessions) as session:
        for start in range(0, n, 10_000):
            session.connection().execute(insert(Contact), rows[start : start + 10_000])
    return ids


def new_notice(sessions: SessionFactory, title: str) -> int:
    with transaction(sessions) as session:
        notice = store.create_notice(
            session,
            channels=channels.notice_channels(),
            title=title,
            texts={"ja": "【ベンチマーク】12月の子育て講座のお知らせです。"},
            topic="general",
            created_by="bench",
            send_at=utcnow(),
            requires_approval=False,
        )
        store.submit_notice(session, channels=channels.notice_channels(), notice=notice)
        assert notice.id is not None
        return notice.id


def child(notice_id: int) -> None:
    """The process that gets killed: plan and send as the scheduler job would."""
    settings = Settings()
    sending.send_now(settings, session_factory(make_engine(settings.database_url)), notice_id=notice_id)


def run(args: argparse.Namespace, database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    batches = -(-args.recipients // store.LINE_MULTICAST_MAX)
    t = time.monotonic()
    expected = seed(sessions, args.recipients)
    print(f"database {engine.dialect.name}; seeded {args.recipients} LINE contacts in {time.monotonic() - t:.1f}s")

    # 1. throughput
    with fake_line(args.rate) as url:
        env = env_for(database_url, url, args.rate)
        os.environ.update({k: v for k, v in env.items() if k.startswith(("LINE_", "NOTICES__", "DATABASE_"))})
        settings = Settings(_env_file=None)
        notice_id = new_notice(sessions, "bench throughput")
        t0 = time.monotonic()
        with transaction(sessions) as session:
            notice = store.get_notice(session, notice_id=notice_id)
            assert notice is not None
            run_id = sending.plan_run(session, notice=notice, planned_for=utcnow(), settings=settings.notices).id or 0
        t1 = time.monotonic()
        result = sending.resume(settings, sessions, run_id=run_id)[0]
        t2 = time.monotonic()
        s = stats(url)
    achieved = (s["requests"] - 1) / (s["last"] - s["first"]) if s["requests"] > 1 else 0.0
    overall = s["requests"] / (t2 - t1)
    print(f"\n1. throughput: {args.recipients} recipients, {s['requests']} multicasts (expected {batches})")
    print(f"   plan {t1 - t0:.1f}s, send {t2 - t1:.1f}s, total {t2 - t0:.1f}s; sent {result.sent}, done {result.done}")
    print(f"   allowed {args.rate:.0f} req/s; achieved {achieved:.1f} req/s first-to-last accepted call")
    print(f"   ratio {achieved / args.rate:.1%} (target >= 90%); over the whole send phase {overall:.1f} req/s")
    print(f"   429 answered by the rate limit: {s['limited']}; ids received {s['ids']} ({s['unique_ids']} unique)")

    # 2. crash and resume
    with fake_line(args.rate) as url:
        env = env_for(database_url, url, args.rate)
        os.environ["LINE_API_BASE_URL"] = url
        settings = Settings(_env_file=None)
        notice_id = new_notice(sessions, "bench crash")
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(HERE), "--child", str(notice_id)], cwd=ROOT, env=env)
        half = batches // 2
        while stats(url)["requests"] < half:
            if proc.poll() is not None:
                raise SystemExit("the sender finished before it could be killed")
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = stats(url)["requests"]
        t1 = time.monotonic()
        results = sending.resume(settings, sessions)
        t2 = time.monotonic()
        s = stats(url, ids=True)
    received = Counter(s["id_list"])
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    misses = len(set(expected) - set(received))
    with sessions() as session:
        counts = store.delivery_counts(session, run_id=results[0].run_id) if results else {}
    print(f"\n2. kill -9 after {at_kill} of {batches} multicasts ({t1 - t0:.1f}s), then resume ({t2 - t1:.1f}s)")
    print(f"   runs resumed {len(results)}; deliveries {counts}")
    print(f"   ids received {s['ids']}, unique {s['unique_ids']}, expected {len(expected)}")
    print(f"   duplicates {duplicates}, misses {misses}")
    engine.dispose()
    if duplicates or misses:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0, help="multicast requests/s the fake allows")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    started = time.monotonic()
    if args.db == "postgres":
        from tests import pg

        name = pg.create_database()
        try:
            run(args, pg.url_for(name))
        finally:
            pg.drop_database(name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(args, f"sqlite:///{Path(tmp) / 'bench.db'}")
    print(f"\nbench time {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()

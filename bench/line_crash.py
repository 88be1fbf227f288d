"""kill -9 during processing (review F3), bounded, loopback only, SQLite and PostgreSQL.

A fake LINE API in its own process answers every message call 150 ms late (the call takes effect at once, as
on LINE). `concierge serve` receives N signed webhooks (one event each, N parents), and is killed with
SIGKILL while it answers them, `--kills` times, then restarted. At the end every parent should have got the
answer exactly once. Printed: duplicates (parents answered twice), lost (never answered) and how many of the
lost are shown to staff (failed deliveries counted in the console header), and how long the restarted
process took to take back the dead one's delivery.

    .venv/bin/python bench/line_crash.py [--events 400] [--kills 3] [--latency 0.15] [--no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

from line_webhook import blast, env_for, free_port, process, wait_up  # noqa: E402

from handlers.channels.line import sign  # noqa: E402
from tests.fakes.line_api import SECRET, encode, webhook  # noqa: E402


def bodies(n: int) -> tuple[list[tuple[bytes, str]], dict[str, str]]:
    """One signed webhook per parent; and reply token → parent, to count replies per parent."""
    items, owner = [], {}
    for i in range(n):
        user, token = "U" + uuid.uuid4().hex, uuid.uuid4().hex
        text = ("児童手当はいつ振り込まれますか", "一時預かりの料金は？", "キッズプラザの営業時間は？")[i % 3]
        body = encode(webhook("text", user=user, text=text, reply_token=token))
        items.append((body, sign(SECRET, body)))
        owner[token] = user
    return items, owner


async def accepted(fake_url: str) -> list[dict[str, str]]:
    async with httpx.AsyncClient(timeout=10) as client:
        data = (await client.get(fake_url + "/__stats", params={"accepted": "1"})).json()
    result: list[dict[str, str]] = data["accepted"]
    return result


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def queue_state(database_url: str) -> dict[str, int]:
    """Counts of unsettled work and of what staff are shown (through the storage functions)."""
    from sqlmodel import Session, create_engine, func, select

    from storage import queue
    from storage.models import InboundEvent, OutboundMessage

    engine = create_engine(database_url)
    try:
        with Session(engine) as s:
            open_in = s.exec(
                select(func.count()).select_from(InboundEvent).where(InboundEvent.status.in_(queue.UNFINISHED))  # type: ignore[attr-defined]
            ).one()
            open_out = s.exec(
                select(func.count()).select_from(OutboundMessage).where(OutboundMessage.status.in_(queue.UNFINISHED))  # type: ignore[attr-defined]
            ).one()
            return {
                "open_events": int(open_in),
                "open_deliveries": int(open_out),
                "failed_events": queue.failed_event_count(s),
                "failed_deliveries": queue.failed_delivery_count(s),
            }
    finally:
        engine.dispose()


def stuck(database_url: str, before: dt.datetime) -> int:
    """Events and deliveries still held by a process that died at `before`."""
    from sqlmodel import Session, create_engine, func, select

    from storage.models import EventStatus, InboundEvent, OutboundMessage

    engine = create_engine(database_url)
    try:
        with Session(engine) as s:
            n = 0
            for table in (InboundEvent, OutboundMessage):
                query = select(func.count()).select_from(table)
                query = query.where(table.status == EventStatus.PROCESSING, table.claimed_at < before)  # type: ignore[attr-defined, operator]
                n += int(s.exec(query).one())
            return n
    finally:
        engine.dispose()


async def run_once(label: str, database_url: str, fake_url: str, args: argparse.Namespace) -> None:
    env = env_for(database_url, fake_url)
    env["SCHEDULER__MODE"] = "off"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    before = len(await accepted(fake_url))
    items, owner = bodies(args.events)
    server = start_server(port, env)
    reclaim_waits: list[float] = []
    restarts: list[float] = []
    try:
        await wait_up(url)
        _, statuses = await blast(url, items, 16)
        stored = statuses.get(200, 0)
        for k in range(args.kills):
            target = before + (k + 1) * args.events // (args.kills + 1)
            deadline = time.monotonic() + 120
            while len(await accepted(fake_url)) < target:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server stopped answering")
                await asyncio.sleep(0.02)
            os.kill(server.pid, signal.SIGKILL)  # mid-processing: a reply is almost always in flight
            server.wait(30)
            killed_at, killed_utc = time.monotonic(), dt.datetime.now(dt.UTC)
            server = start_server(port, env)
            await wait_up(url)
            restarts.append(time.monotonic() - killed_at)
            # The dead process's claims are released once its heartbeat is older than dead_after.
            while await asyncio.to_thread(stuck, database_url, killed_utc):
                if time.monotonic() - killed_at > 180:
                    raise RuntimeError("the dead process's work was not taken back")
                await asyncio.sleep(0.1)
            reclaim_waits.append(time.monotonic() - killed_at)
        deadline = time.monotonic() + 300
        while True:
            state = await asyncio.to_thread(queue_state, database_url)
            if state["open_events"] == 0 and state["open_deliveries"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"work left after 300 s: {state}")
            await asyncio.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    calls = (await accepted(fake_url))[before:]
    per_parent = Counter(owner.get(c.get("token", ""), c["chat"]) for c in calls)
    parents = set(owner.values())
    duplicates = sum(1 for p in parents if per_parent[p] > 1)
    lost = sum(1 for p in parents if per_parent[p] == 0)
    print(f"{label}: {args.events} events ({stored} stored with 200), {args.kills} x kill -9,", end=" ")
    print(f"fake LINE answering {args.latency * 1000:.0f} ms late")
    once = sum(1 for p in parents if per_parent[p] == 1)
    print(f"  answered once {once}, duplicates {duplicates}, lost {lost}")
    print(
        f"  shown to staff: failed or unconfirmed deliveries {state['failed_deliveries']} (lost for real: {lost}),"
        f" failed events {state['failed_events']}"
    )
    waits = ", ".join(f"{w:.1f} s (restart {r:.1f} s)" for w, r in zip(reclaim_waits, restarts, strict=True))
    print(f"  kill to the dead process's work taken back: {waits}")


async def main_async(args: argparse.Namespace) -> None:
    fake_port = free_port()
    fake_cmd = [sys.executable, "-m", "tests.fakes.line_api", "--port", str(fake_port), "--any-reply-token"]
    fake_cmd += ["--latency", str(args.latency)]
    with process(fake_cmd), tempfile.TemporaryDirectory() as tmp:
        fake_url = f"http://127.0.0.1:{fake_port}"
        await wait_up(fake_url, "/__stats")
        await run_once("SQLite", f"sqlite:///{Path(tmp) / 'crash.db'}", fake_url, args)
        if not args.no_pg:
            from tests import pg

            name = pg.create_database()
            try:
                await run_once("PostgreSQL", pg.url_for(name), fake_url, args)
            finally:
                pg.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds the fake LINE API answers late")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    if not (1 <= args.events <= 2000 and 1 <= args.kills <= 10 and 0 <= args.latency <= 2):
        parser.error("bounded runs only: --events ≤ 2000, --kills ≤ 10, --latency ≤ 2")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

"""LINE webhook throughput on this machine, loopback only, bounded request counts.

1. SQLite: signed POST → verify → store → 200 through our route (uvicorn, one process), next to a bare
   FastAPI endpoint that only returns 200, same client, same run, both servers up at once and the load
   alternating between them in rounds; and the ratio (target ≥ 40 %).
2. SQLite: processing throughput of the stored events (engine + queue + reply through the SDK to a fake
   LINE API), measured apart from intake.
3. PostgreSQL: `concierge serve --workers 1` vs `--workers 2`: ack rate and events answered per second.

    .venv/bin/python bench/line_webhook.py [--requests 4000] [--rounds 8] [--concurrency 16] [--events 600] [--no-pg]

Servers run as separate processes so the load generator does not share their interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from handlers.channels.line import sign  # noqa: E402
from tests.fakes.line_api import SECRET, TOKEN, encode, webhook  # noqa: E402

QUESTIONS = [
    "児童手当はいつ振り込まれますか",
    "一時預かりの料金は？",
    "キッズプラザの営業時間は？",
    "病児保育はありますか",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bodies(n: int, users: int = 500) -> list[tuple[bytes, str]]:
    """Signed single-event webhook bodies: text messages from `users` parents, unique ids and reply tokens."""
    ids = ["U" + uuid.uuid4().hex for _ in range(users)]
    out = []
    for i in range(n):
        body = encode(webhook("text", user=ids[i % users], text=QUESTIONS[i % 4], reply_token=uuid.uuid4().hex))
        out.append((body, sign(SECRET, body)))
    return out


def env_for(database_url: str, fake_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINE_")}
    env.update(
        DATABASE_URL=database_url,
        LINE_CHANNEL_SECRET=SECRET,
        LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
        LINE_API_BASE_URL=fake_url,
        PYTHONPATH=str(ROOT),
    )
    return env


@contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_up(url: str, path: str = "/healthz", seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url + path)
                if response.status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def _post_loop(host: str, port: int, queue: list[tuple[bytes, str]], statuses: dict[int, int]) -> None:
    """One keep-alive HTTP/1.1 connection posting until the queue is empty (a client lighter than the
    servers it measures, so the numbers are about the servers)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            body, signature = queue.pop()
            head = (
                f"POST /webhooks/line HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"X-Line-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()
        await writer.wait_closed()


async def blast(url: str, items: list[tuple[bytes, str]], concurrency: int) -> tuple[float, dict[int, int]]:
    """POST every item over `concurrency` connections; (requests per second, status counts)."""
    parsed = httpx.URL(url)
    queue = list(reversed(items))
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(_post_loop(parsed.host, parsed.port or 80, queue, statuses) for _ in range(concurrency)))
    return len(items) / (time.perf_counter() - started), statuses


async def fake_stats(fake_url: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5) as client:
        data: dict[str, int] = (await client.get(fake_url + "/__stats")).json()
        return data


async def answered(fake_url: str, n: int, seconds: float) -> float:
    """Wait until `n` events were answered (reply or push); returns when that happened."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stats = await fake_stats(fake_url)
        if stats["replies"] + stats["pushes"] >= n:
            return time.perf_counter()
        await asyncio.sleep(0.05)
    raise RuntimeError("not every event was answered in time")


# ----- server processes (this file is also their entry point)


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/webhooks/line")
    async def ok() -> JSONResponse:
        return JSONResponse({})

    @app.get("/healthz")
    async def health() -> JSONResponse:
        return JSONResponse({})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_intake(port: int) -> None:
    """Our LINE route alone (the inbox loop does not run): intake cost without processing beside it."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from bot.runtime import bootstrap
    from bot.settings import Settings
    from handlers.channels import line
    from handlers.inbox import Inbox

    settings = Settings()
    runtime = bootstrap(settings)
    inbox = Inbox(runtime.sessions, runtime.engine, {})
    plugin = line.build(settings, inbox)
    app = FastAPI()
    assert plugin.router is not None
    app.include_router(plugin.router)
    from bot import heap

    heap.settle()  # as `concierge serve` does once started

    @app.get("/healthz")
    async def health() -> JSONResponse:
        return JSONResponse({})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def process_stored(database_url: str, fake_url: str) -> tuple[int, float]:
    """Drain the stored events in this process: (events, seconds)."""
    from bot.runtime import bootstrap
    from bot.settings import LineSettings, Settings
    from handlers.channels.line import LineAdapter
    from handlers.inbox import Inbox

    settings = Settings(database_url=database_url, line=LineSettings())
    runtime = bootstrap(settings, migrate=False)
    adapter = LineAdapter(TOKEN, api_base_url=fake_url)
    inbox = Inbox(runtime.sessions, runtime.engine, {"line": adapter})
    from sqlmodel import func, select

    from storage.models import InboundEvent

    with runtime.sessions() as s:
        pending = s.exec(select(func.count()).select_from(InboundEvent).where(InboundEvent.status == "pending")).one()
    started = time.perf_counter()
    await inbox.drain()
    elapsed = time.perf_counter() - started
    await adapter.aclose()
    runtime.close()
    return int(pending), elapsed


# ----- the benchmark


async def bench_sqlite(args: argparse.Namespace, fake_url: str, tmp: Path) -> None:
    """Both servers run at once; the load alternates between them in rounds, so a slow spell of the machine
    (other processes) falls on both alike. Rates are total requests over total time per server."""
    rounds = max(1, args.rounds)
    per_round = max(1, args.requests // rounds)
    me = [sys.executable, str(HERE)]
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    bare_port, full_port = free_port(), free_port()
    totals = {"bare": [0, 0.0], "full": [0, 0.0]}
    statuses: dict[str, dict[int, int]] = {"bare": {}, "full": {}}
    ratios: list[float] = []
    with (
        process([*me, "serve-bare", str(bare_port)]),
        process([*me, "serve-intake", str(full_port)], env_for(db_url, fake_url)),
    ):
        urls = {"bare": f"http://127.0.0.1:{bare_port}", "full": f"http://127.0.0.1:{full_port}"}
        for url in urls.values():
            await wait_up(url)
            await blast(url, bodies(200), args.concurrency)  # warm-up
        for i in range(rounds):
            rates = {}
            order = ("bare", "full") if i % 2 == 0 else ("full", "bare")
            for name in order:
                rate, status = await blast(urls[name], bodies(per_round), args.concurrency)
                rates[name] = rate
                totals[name][0] += per_round
                totals[name][1] += per_round / rate
                for code, n in status.items():
                    statuses[name][code] = statuses[name].get(code, 0) + n
            ratios.append(rates["full"] / rates["bare"])
            if args.verbose:
                print(f"    round {i + 1}: bare {rates['bare']:6.0f}  full {rates['full']:6.0f} req/s")
    bare = totals["bare"][0] / totals["bare"][1]
    full = totals["full"][0] / totals["full"][1]
    ratios.sort()
    print(f"requests {per_round * rounds} per server in {rounds} alternating rounds, concurrency {args.concurrency},")
    print("loopback, uvicorn 1 process each")
    print(f"  bare FastAPI 200                 {bare:8.0f} req/s   {statuses['bare']}")
    print(f"  LINE webhook (verify+store+200)  {full:8.0f} req/s   {statuses['full']}   SQLite")
    print(f"  ratio                            {full / bare:8.0%}   (target >= 40%)")
    low, mid, high = ratios[0], ratios[len(ratios) // 2], ratios[-1]
    print(f"  ratio per round                  min {low:.0%}  median {mid:.0%}  max {high:.0%}")

    # Processing: only the first args.events of the stored events, to keep the run short.
    import sqlite3

    conn = sqlite3.connect(tmp / "bench.db")
    with conn:
        conn.execute(
            "UPDATE inboundevent SET status = 'done' WHERE id NOT IN "
            "(SELECT id FROM inboundevent WHERE status = 'pending' ORDER BY id LIMIT ?)",
            (args.events,),
        )
    conn.close()
    n, seconds = await process_stored(db_url, fake_url)
    print(f"  processing (engine+queue+reply)  {n / seconds:8.0f} events/s ({n} events in {seconds:.1f} s)")


async def bench_workers(args: argparse.Namespace, fake_url: str) -> None:
    from tests import pg

    concierge = str(Path(sys.executable).parent / "concierge")
    print(f"PostgreSQL, `concierge serve --workers N`, {args.events} events, concurrency {args.concurrency}")
    for workers in (1, 2):
        name = pg.create_database()
        try:
            port = free_port()
            env = env_for(pg.url_for(name), fake_url)
            cmd = [concierge, "serve", "--workers", str(workers), "--port", str(port)]
            with process(cmd, env):
                url = f"http://127.0.0.1:{port}"
                await wait_up(url)
                await asyncio.sleep(2)  # every worker's lifespan done
                before = await fake_stats(fake_url)
                items = bodies(args.events)
                started = time.perf_counter()
                ack, statuses = await blast(url, items, args.concurrency)
                done_at = await answered(fake_url, before["replies"] + before["pushes"] + len(items), 300)
                e2e = len(items) / (done_at - started)
            print(f"  workers {workers}: ack {ack:6.0f} req/s {statuses}   answered end to end {e2e:6.0f} events/s")
        finally:
            pg.drop_database(name)


async def main_async(args: argparse.Namespace) -> None:
    port = free_port()
    fake_cmd = [sys.executable, "-m", "tests.fakes.line_api", "--port", str(port), "--any-reply-token"]
    with process(fake_cmd), tempfile.TemporaryDirectory() as tmp_dir:
        fake_url = f"http://127.0.0.1:{port}"
        await wait_up(fake_url, "/__stats")
        await bench_sqlite(args, fake_url, Path(tmp_dir))
        if not args.no_pg:
            await bench_workers(args, fake_url)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve-bare":
        serve_bare(int(sys.argv[2]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "serve-intake":
        serve_intake(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000, help="webhook POSTs per server (SQLite part)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds (SQLite part)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=600, help="events processed / sent per worker run")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL workers comparison")
    args = parser.parse_args()
    bounded = 1 <= args.rounds <= 50 and 1 <= args.requests <= 20_000 and 1 <= args.concurrency <= 64
    if not bounded or not 1 <= args.events <= 5_000:
        parser.error("bounded runs only: --requests ≤ 20000, --concurrency ≤ 64, --events ≤ 5000")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

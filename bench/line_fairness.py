"""Fairness of the inbound queue (review F15), bounded, loopback only, SQLite and PostgreSQL.

`concierge serve` receives one signed webhook of `--backlog` events (10,000) from one sender. While it
works through them, another parent writes a message with crisis words, and a third parent an ordinary
question. Printed: how long each waited for its answer (from its webhook to LINE accepting the reply), next
to how many of the burst's events had been answered by then. Target: the crisis message within 5 s.

    .venv/bin/python bench/line_fairness.py [--backlog 10000] [--no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

from line_webhook import env_for, free_port, process, wait_up  # noqa: E402

from handlers.channels.line import sign  # noqa: E402
from tests.fakes.line_api import SECRET, encode, webhook  # noqa: E402


async def accepted(client: httpx.AsyncClient, fake_url: str) -> list[dict[str, str]]:
    data = (await client.get(fake_url + "/__stats", params={"accepted": "1"})).json()
    result: list[dict[str, str]] = data["accepted"]
    return result


async def post(client: httpx.AsyncClient, url: str, body: bytes) -> int:
    response = await client.post(
        url + "/webhooks/line",
        content=body,
        headers={"content-type": "application/json", "x-line-signature": sign(SECRET, body)},
    )
    return response.status_code


def one_message(text: str) -> tuple[bytes, str]:
    token = uuid.uuid4().hex
    return encode(webhook("text", user="U" + uuid.uuid4().hex, text=text, reply_token=token)), token


async def answered_after(client: httpx.AsyncClient, fake_url: str, token: str, since: float, limit: float) -> float:
    while time.perf_counter() - since < limit:
        if any(c.get("token") == token for c in await accepted(client, fake_url)):
            return time.perf_counter() - since
        await asyncio.sleep(0.02)
    return float("inf")


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run_once(label: str, database_url: str, fake_url: str, backlog: int) -> None:
    env = env_for(database_url, fake_url)
    env.update(SCHEDULER__MODE="off", MAX_BODY_BYTES=str(8_000_000))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    burst_user = "U" + uuid.uuid4().hex
    body = webhook("text", user=burst_user, text="キッズプラザの営業時間は？", reply_token=uuid.uuid4().hex)
    template = body["events"][0]
    body["events"] = [
        {**template, "webhookEventId": uuid.uuid4().hex.upper()[:26], "replyToken": uuid.uuid4().hex}
        for _ in range(backlog)
    ]
    burst = encode(body)
    server = start_server(port, env)
    try:
        await wait_up(url)
        async with httpx.AsyncClient(timeout=60) as client:
            before = len(await accepted(client, fake_url))
            started = time.perf_counter()
            assert await post(client, url, burst) == 200
            ack = time.perf_counter() - started
            while len(await accepted(client, fake_url)) < before + 20:  # noqa: ASYNC110 (polls another process)
                await asyncio.sleep(0.02)
            crisis, crisis_token = one_message("もう死にたい。子どもを育てられない")
            plain, plain_token = one_message("一時預かりの料金は？")
            t0 = time.perf_counter()
            assert await post(client, url, crisis) == 200
            t1 = time.perf_counter()
            assert await post(client, url, plain) == 200
            crisis_wait = await answered_after(client, fake_url, crisis_token, t0, 60)
            plain_wait = await answered_after(client, fake_url, plain_token, t1, 60)
            done = len(await accepted(client, fake_url)) - before - 2
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"{label}: one webhook of {backlog} events from one sender (stored and acknowledged in {ack:.1f} s)")
    print(f"  crisis message from another parent answered in {crisis_wait:.2f} s   (target < 5 s)")
    print(f"  ordinary question from a third parent answered in {plain_wait:.2f} s")
    print(f"  the burst's events answered meanwhile: about {done} of {backlog}")


async def main_async(args: argparse.Namespace) -> None:
    fake_port = free_port()
    fake_cmd = [sys.executable, "-m", "tests.fakes.line_api", "--port", str(fake_port), "--any-reply-token"]
    with process(fake_cmd), tempfile.TemporaryDirectory() as tmp:
        fake_url = f"http://127.0.0.1:{fake_port}"
        await wait_up(fake_url, "/__stats")
        await run_once("SQLite", f"sqlite:///{Path(tmp) / 'fair.db'}", fake_url, args.backlog)
        if not args.no_pg:
            from tests import pg

            name = pg.create_database()
            try:
                await run_once("PostgreSQL", pg.url_for(name), fake_url, args.backlog)
            finally:
                pg.drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.backlog <= 20_000:
        parser.error("bounded runs only: --backlog ≤ 20000")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

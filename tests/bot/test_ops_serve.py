"""`concierge serve --workers 2` as deployed (PostgreSQL): the webhook counters of both workers are added up at
every scrape, and the server's stderr is one JSON object per line with request ids and no personal data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from bot.settings import Settings
from handlers.channels.line import sign
from tests.fakes.line_api import SECRET, FakeLineAPI, encode, user_id, webhook
from tests.fakes.mailservers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _received(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "concierge_webhooks_received_total" and s.labels.get("channel") == "line":
                return s.value
    return 0.0


@pytest.mark.postgres
def test_two_workers_add_up_their_counters_and_log_json(settings: Settings, db: Engine) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "DATABASE_URL", "PROMETHEUS_"))}
    port = free_port()
    user = user_id()
    with FakeLineAPI() as fake, tempfile.TemporaryFile() as stderr:
        env.update(
            DATABASE_URL=settings.database_url,
            PYTHONPATH=str(ROOT),
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=fake.token,
            LINE_API_BASE_URL=fake.url,
            SCHEDULER__MODE="off",
            LOG__FORMAT="json",
        )
        cmd = [str(Path(sys.executable).parent / "concierge"), "serve", "--workers", "2", "--port", str(port)]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                deadline = time.monotonic() + 120  # three processes load the KB and the dictionary
                while time.monotonic() < deadline and server.poll() is None:
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                close = {"connection": "close"}  # a new connection each time: either worker may take it
                for i in range(8):
                    body = encode(
                        webhook("text", user=user, text=f"保育園の申込み {i}", reply_token=fake.issue_token(user))
                    )
                    headers = {"x-line-signature": sign(SECRET, body), **close}
                    assert (client.post("/webhooks/line", content=body, headers=headers)).status_code == 200
                for _ in range(4):
                    refused = client.post("/webhooks/line", content=b"{}", headers={"x-line-signature": "x", **close})
                    assert refused.status_code == 400
                scrapes = [(client.get("/metrics", headers=close)).text for _ in range(6)]
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        stderr.seek(0)
        logged = stderr.read().decode()
    assert [_received(text) for text in scrapes] == [12.0] * 6, logged[-2000:]  # whichever worker answers
    lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
    assert any(
        line["logger"] == "concierge.http" and line["msg"].startswith("POST /webhooks/line 200") for line in lines
    )
    assert all(len(line["request_id"]) > 0 for line in lines)
    assert user not in logged and "保育園の申込み" not in logged

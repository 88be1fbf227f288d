"""/metrics and /healthz?details=1 on the whole app, after a real LINE dialog through the fake LINE API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update

from bot.runtime import Runtime
from bot.settings import Settings
from handlers.channels.line import WEBHOOK_PATH
from handlers.types import InboundMessage
from scheduler.leader import lock_for
from storage import crud, ops, queue
from storage.db import transaction
from storage.models import OutboundMessage, StaffAlert
from tests.bot.ops_kit import full_dialog, line_app, line_settings
from tests.fakes.line_api import FakeLineAPI


@pytest.fixture
def fake() -> Iterator[FakeLineAPI]:
    with FakeLineAPI() as f:
        yield f


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_after_a_dialog(settings: Settings, runtime: Runtime, fake: FakeLineAPI) -> None:
    conf = line_settings(settings, fake)
    async with line_app(conf, runtime) as (_, http):
        sent = await full_dialog(http, fake, runtime)
        refused = await http.post(WEBHOOK_PATH, content=b"{}", headers={"x-line-signature": "bad"})
        assert refused.status_code == 400
        assert (await http.post("/webhooks/nothing-here", content=b"{}")).status_code == 404
        runtime.engine.handle(InboundMessage("console", "another-parent", text="もう死にたい"))  # a crisis
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    body = response.text
    for secret in sent.secrets:  # no ids, no text
        assert secret not in body
    got = _samples(body)
    assert got[("concierge_webhooks_received_total", (("channel", "line"),))] == 5
    assert got[("concierge_webhooks_refused_total", (("channel", "line"), ("code", "400")))] == 1
    assert not any(labels and dict(labels).get("channel") == "nothing-here" for _, labels in got)
    assert got[("concierge_events", (("channel", "line"), ("status", "done")))] == 4
    assert got[("concierge_queue_depth", (("channel", "line"),))] == 0
    assert got[("concierge_event_latency_seconds_gcount", (("channel", "line"),))] == 4
    assert got[("concierge_event_latency_seconds_bucket", (("channel", "line"), ("le", "+Inf")))] == 4
    assert got[("concierge_deliveries", (("channel", "line"), ("status", "done")))] >= 4
    assert got[("concierge_cases_open", (("priority", "normal"),))] == 1
    assert got[("concierge_staff_alerts_undelivered", ())] >= 1
    assert got[("concierge_kb_entries", ())] == len(runtime.kb.entries)
    assert got[("concierge_urgent_cases_opened_total", ())] == 1
    assert got[("concierge_cases_open", (("priority", "urgent"),))] == 1
    assert ("concierge_scheduler_leader", ()) not in got  # the scheduler is off in these settings


async def test_metrics_and_details_are_protected(settings: Settings, runtime: Runtime, fake: FakeLineAPI) -> None:
    conf = line_settings(settings, fake)
    conf = conf.model_copy(update={"metrics": conf.metrics.model_copy(update={"token": SecretStr("scrape-token")})})
    async with line_app(conf, runtime, client=("203.0.113.7", 40000)) as (_, http):
        assert (await http.get("/metrics")).status_code == 403
        assert (await http.get("/healthz?details=1")).status_code == 403
        assert (await http.get("/healthz")).status_code == 200  # the yes/no stays open
        assert (await http.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code == 403
        ok = await http.get("/metrics", headers={"authorization": "Bearer scrape-token"})
        assert ok.status_code == 200 and "concierge_kb_entries" in ok.text
    async with line_app(conf, runtime) as (_, http):  # loopback, but relayed by a proxy: the token is needed
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/metrics", headers={"x-forwarded-for": "198.51.100.1"})).status_code == 403


async def test_details_name_the_unhealthy_parts(settings: Settings, runtime: Runtime, fake: FakeLineAPI) -> None:
    conf = line_settings(settings, fake)
    async with line_app(conf, runtime) as (_, http):
        healthy = await http.get("/healthz?details=1")
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["unhealthy"] == []
        assert set(healthy.json()["parts"]) >= {
            "database",
            "kb",
            "inbox",
            "failed_events",
            "deliveries",
            "staff_alerts",
            "scheduler",
        }
        with transaction(runtime.sessions) as s:
            queue.store_event(s, channel="gone", event_key="k1", sender_key="s1", payload="{}")
            queue.store_event(s, channel="gone", event_key="k2", sender_key="s2", payload="{}")
        with transaction(runtime.sessions) as s:
            claimed = queue.claim_event(s, worker="w", channels=["gone"])
            assert claimed is not None and claimed.id is not None
            queue.fail_event(s, event_id=claimed.id, error="ValueError", max_attempts=1)
            contact = crud.get_or_create_contact(s, channel="console", external_id="p")
            case = crud.create_case(s, contact=contact, lang="ja", topic=None)
            crud.add_alert(s, case=case, kind="new")
            old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
            s.execute(update(StaffAlert).values(created_at=old))
        with transaction(runtime.sessions) as s:  # the other event waits for a channel this process lacks
            s.execute(update(queue.InboundEvent).where(queue.InboundEvent.event_key == "k2").values(received_at=old))
        with transaction(runtime.sessions) as s:  # a reply given up yesterday is history, not an alarm
            row = queue.enqueue_outbound(s, channel="gone", recipient="r", payload="[]", retry_key="old-one")
            assert row.id is not None
            queue.fail_outbound(s, outbound_id=row.id, error="HTTP 400")
            s.execute(update(OutboundMessage).values(claimed_at=old - dt.timedelta(days=1)))
        assert "deliveries" not in (await http.get("/healthz?details=1")).json()["unhealthy"]
        with transaction(runtime.sessions) as s:
            row = queue.enqueue_outbound(s, channel="gone", recipient="r", payload="[]", retry_key="new-one")
            assert row.id is not None
            queue.fail_outbound(s, outbound_id=row.id, error="HTTP 400")
            s.execute(
                update(OutboundMessage).where(OutboundMessage.id == row.id).values(claimed_at=dt.datetime.now(dt.UTC))
            )
        details = await http.get("/healthz?details=1")
        plain = await http.get("/healthz")
    assert details.status_code == 503
    body = details.json()
    assert body["unhealthy"] == ["deliveries", "failed_events", "inbox", "staff_alerts"]
    assert body["parts"]["deliveries"] == {
        "ok": False,
        "failed_recent": 1,
        "failed_stored": 2,
        "oldest_pending_seconds": 0.0,
    }
    assert body["parts"]["failed_events"]["recent"] == 1
    assert body["parts"]["staff_alerts"]["undelivered"] == 1
    assert plain.status_code == 200  # the fast yes/no: database and KB are fine


def test_scheduler_leadership_is_read_from_the_database(settings: Settings, runtime: Runtime) -> None:
    key = settings.scheduler.lock_key
    with runtime.sessions() as s:
        before = ops.scheduler_leader_present(s, lock_key=key)
    if not settings.database_url.startswith("postgresql"):
        assert before is None  # SQLite: a lock file only its holder can see
        return
    lock = lock_for(settings.database_url, key)
    assert before is False and lock.acquire()
    try:
        with runtime.sessions() as s:
            assert ops.scheduler_leader_present(s, lock_key=key) is True
    finally:
        lock.close()
    with runtime.sessions() as s:
        assert ops.scheduler_leader_present(s, lock_key=key) is False

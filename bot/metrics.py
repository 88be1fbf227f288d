"""`GET /metrics` (Prometheus text format) and `/healthz?details=1`.

Two kinds of figures:
- State read from the database at scrape time by a custom collector (`DatabaseCollector`): the event queue and
  its oldest waiting event, processing latency of the last `METRICS__WINDOW_MINUTES`, deliveries and notice
  deliveries by channel and status, notice runs, open and urgent cases, undelivered staff alerts, KB entries,
  scheduler leadership and the last backup. Being read from the one database, they are the same whichever
  worker process answers the scrape, and the channel modules need no instrumentation.
- Webhook requests counted where they arrive, by an ASGI middleware (`WebhookCounter`): received and refused
  per channel. With `serve --workers N` these counters live in prometheus-client's multiprocess files
  (`PROMETHEUS_MULTIPROC_DIR`, set by `serve`) and every scrape adds up all workers.

No label carries an id, an address or any text: only channel names, statuses and priorities.
Access (`allowed`): a bearer token (`METRICS__TOKEN`), or a request made directly (no proxy headers) from an
address in `METRICS__ALLOW` (loopback by default). A request relayed by a reverse proxy always needs the token,
because the proxy's own address would otherwise let the whole internet in.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.settings import Settings
from storage import ops

if TYPE_CHECKING:
    from bot.runtime import Runtime

LATENCY_BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
PROXY_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
CHANNEL_RE = re.compile(r"^/webhooks/([a-z0-9_-]{1,32})/?$")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["CONTENT_TYPE_LATEST", "DatabaseCollector", "Metrics", "WebhookCounter", "allowed", "health_details"]


def multiprocess_dir() -> str:
    """Before `serve --workers N` starts its workers: a fresh folder for their counters (inherited through the
    environment; prometheus-client reads it when first imported in each worker)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="concierge-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


class Metrics:
    """The process's own counters and the registry a scrape renders. Built by `create_app`, never at import."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "concierge_webhooks_received",
            "Webhook requests received, by channel (refused ones included)",
            ["channel"],
            registry=self.registry,
        )
        self.refused = Counter(
            "concierge_webhooks_refused",
            "Webhook requests refused (not 2xx), by channel and HTTP status",
            ["channel", "code"],
            registry=self.registry,
        )

    def render(self, database: Collector) -> bytes:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = CollectorRegistry()
            registry.register(_Forward(self.registry))
        registry.register(database)
        return generate_latest(registry)


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self._registry.collect())


class WebhookCounter:
    """Counts requests to `/webhooks/<channel>` by their response status (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = CHANNEL_RE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            code = status["code"]
            if code != 404:  # no such channel here: not a webhook of ours, and no label for arbitrary paths
                channel = match.group(1)
                self.metrics.webhooks.labels(channel).inc()
                if not 200 <= code < 300:
                    self.metrics.refused.labels(channel, str(code)).inc()


def allowed(request: Request, settings: Settings) -> bool:
    conf = settings.metrics
    header = request.headers.get("authorization", "")
    if conf.token is not None and conf.token.get_secret_value():
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), conf.token.get_secret_value().encode()
        ):
            return True
    if any(request.headers.get(h.decode()) for h in PROXY_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for net in conf.allow:
        try:
            if address in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


class DatabaseCollector(Collector):
    """State figures read at scrape time (runs in a worker thread: the queries are synchronous)."""

    def __init__(self, runtime: Runtime, settings: Settings, *, scheduler: Any) -> None:
        self.runtime = runtime
        self.settings = settings
        self.scheduler = scheduler  # this process's SchedulerService, or None when it runs no scheduler

    def collect(self) -> Iterator[Metric]:
        settings = self.settings
        window = dt.timedelta(minutes=settings.metrics.window_minutes)
        with self.runtime.sessions() as session:
            snap = ops.snapshot(session, window=window, bounds=LATENCY_BOUNDS)
            present = ops.scheduler_leader_present(session, lock_key=settings.scheduler.lock_key)
        yield _pairs(
            "concierge_events", "Stored channel events by channel and status", ["channel", "status"], snap.events
        )
        depth = GaugeMetricFamily("concierge_queue_depth", "Channel events waiting or in hand", labels=["channel"])
        for channel in sorted({c for c, _ in snap.events}):
            waiting = sum(n for (c, s), n in snap.events.items() if c == channel and s in ops.WAITING)
            depth.add_metric([channel], waiting)
        yield depth
        yield _single(
            "concierge_queue_oldest_seconds",
            "Age of the oldest waiting channel event",
            ["channel"],
            snap.oldest_waiting,
        )
        hist = GaugeHistogramMetricFamily(
            "concierge_event_latency_seconds",
            f"Received-to-processed time of the events finished in the last {settings.metrics.window_minutes:g} min",
            labels=["channel"],
        )
        for channel, lat in sorted(snap.latency.items()):
            buckets = [(_le(b), float(n)) for b, n in zip(LATENCY_BOUNDS, lat.buckets, strict=True)]
            hist.add_metric([channel], [*buckets, ("+Inf", float(lat.count))], lat.total)
        yield hist
        yield _pairs(
            "concierge_deliveries", "Stored replies by channel and status", ["channel", "status"], snap.deliveries
        )
        yield _single(
            "concierge_delivery_oldest_seconds",
            "Age of the oldest reply not yet delivered",
            ["channel"],
            snap.oldest_delivery,
        )
        yield _pairs(
            "concierge_notice_deliveries",
            "Notice recipients by channel and status",
            ["channel", "status"],
            snap.notice_deliveries,
        )
        yield _single("concierge_notice_runs", "Notice runs by status", ["status"], snap.notice_runs)
        yield _single("concierge_cases_open", "Open cases by priority", ["priority"], snap.open_cases)
        urgent = CounterMetricFamily(  # from the anonymous counters, which are never disposed of: monotonic
            "concierge_urgent_cases_opened",
            "Crisis messages that opened or escalated an urgent case",
        )
        urgent.add_metric([], snap.urgent_total)
        yield urgent
        yield _plain("concierge_staff_alerts_undelivered", "Staff alerts not delivered yet", snap.alerts_undelivered)
        yield _plain(
            "concierge_staff_alert_oldest_seconds", "Age of the oldest undelivered staff alert", snap.oldest_alert
        )
        yield _plain("concierge_kb_entries", "Entries in the loaded knowledge base", len(self.runtime.kb.entries))
        if self.scheduler is not None:
            yield _plain(
                "concierge_scheduler_leader", "1 when this process runs the scheduler", int(self.scheduler.is_leader)
            )
        if present is not None:
            yield _plain(
                "concierge_scheduler_leader_present", "1 when some process holds the scheduler lock", int(present)
            )
        last = _last_backup(settings)
        if last is not None:
            yield _plain("concierge_backup_last_timestamp_seconds", "Creation time of the newest backup", last)


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def _pairs(name: str, doc: str, labels: list[str], values: dict[tuple[str, str], int]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        family.add_metric(list(key), n)
    return family


def _single(name: str, doc: str, labels: list[str], values: dict[str, Any]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family


def _plain(name: str, doc: str, value: float) -> Metric:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def _last_backup(settings: Settings) -> float | None:
    if settings.backup.dir is None:
        return None
    from storage.backup import latest_backup

    info = latest_backup(settings.backup.dir)
    return None if info is None else info.created_at.timestamp()


# ----- /healthz?details=1


def health_details(runtime: Runtime, settings: Settings, *, scheduler: Any) -> dict[str, dict[str, Any]]:
    """Which part is unhealthy: database, KB, inbox backlog, failed events, undelivered replies and staff alerts,
    scheduler, backups. Each part: {"ok": bool, ...figures}."""
    parts: dict[str, dict[str, Any]] = {}
    parts["kb"] = {"ok": bool(runtime.kb.entries), "entries": len(runtime.kb.entries)}
    try:
        with runtime.sessions() as session:
            snap = ops.snapshot(session, window=dt.timedelta(minutes=settings.metrics.window_minutes), bounds=())
            present = ops.scheduler_leader_present(session, lock_key=settings.scheduler.lock_key)
    except Exception as exc:
        parts["database"] = {"ok": False, "error": type(exc).__name__}
        return parts
    parts["database"] = {"ok": True}
    oldest = max(snap.oldest_waiting.values(), default=0.0)
    limit = settings.metrics.queue_age_seconds
    parts["inbox"] = {
        "ok": oldest <= limit,
        "waiting": sum(n for (_, s), n in snap.events.items() if s in ops.WAITING),
        "oldest_seconds": round(oldest, 1),
    }
    # failures within the window: a failed row is kept for RETENTION__PROCESSED_DAYS, the alarm should not be
    stored = sum(n for (_, s), n in snap.events.items() if s == "failed")
    parts["failed_events"] = {
        "ok": snap.failed_events_recent == 0,
        "recent": snap.failed_events_recent,
        "stored": stored,
    }
    undelivered = sum(n for (_, s), n in snap.deliveries.items() if s == "failed")
    stuck = max(snap.oldest_delivery.values(), default=0.0)
    parts["deliveries"] = {
        "ok": snap.failed_deliveries_recent == 0 and stuck <= limit,
        "failed_recent": snap.failed_deliveries_recent,
        "failed_stored": undelivered,
        "oldest_pending_seconds": round(stuck, 1),
    }
    parts["staff_alerts"] = {
        "ok": snap.oldest_alert <= limit,
        "undelivered": snap.alerts_undelivered,
        "oldest_seconds": round(snap.oldest_alert, 1),
    }
    mode = settings.scheduler.mode
    leader = None if scheduler is None else bool(scheduler.is_leader)
    if mode == "off":
        parts["scheduler"] = {"ok": True, "mode": mode}
    else:
        running = present if present is not None else leader
        # SQLite: only this process can tell, and only when it is the one that runs the jobs
        parts["scheduler"] = {
            "ok": running is not False or mode == "external",
            "mode": mode,
            "this_process": leader,
            "leader_present": present,
        }
    if settings.backup.enabled:
        last = _last_backup(settings)
        age = None if last is None else dt.datetime.now(dt.UTC).timestamp() - last
        parts["backup"] = {
            "ok": age is not None and age <= settings.backup.max_age_hours * 3600,
            "age_hours": None if age is None else round(age / 3600, 1),
        }
    return parts

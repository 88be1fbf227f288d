"""`create_app(settings)`: the web app; everything is built in the lifespan, nothing at import time."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot import hardening, heap, public
from bot.console import mount_console
from bot.deps import RuntimeDep
from bot.logs import RequestId, configure
from bot.metrics import CONTENT_TYPE_LATEST, DatabaseCollector, Metrics, WebhookCounter, allowed, health_details
from bot.runtime import Runtime, bootstrap, build_services
from bot.settings import Settings
from handlers.channels import console as console_channel
from handlers.inbox import Inbox


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, console: bool = False, settle: bool = False
) -> FastAPI:
    """The web app. Pass `runtime` to share one already built (tests); `console` also chats on stdin; `settle`
    (the server process, `concierge serve`) freezes the heap once started (bot/heap.py)."""
    settings = settings or Settings()
    # no /openapi.json, /docs nor /redoc: the route list is nobody's business without a login
    app = FastAPI(title="kosodate-concierge", docs_url=None, redoc_url=None, openapi_url=None)
    mount_console(app, settings)  # the staff console: /login, /cases, /records, ... (bot/console/)
    app.include_router(public.router)  # the public FAQ: /faq, no login (bot/public/)
    hardening.install(app, settings)  # security headers everywhere, error pages, body deadline (bot/hardening.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime if runtime is not None else await anyio.to_thread.run_sync(bootstrap, settings)
        # Jobs: every web process competes for the leader lock; only the holder runs them (scheduler/).
        services = build_services(rt, settings)  # inbox, channels, Telegram bridge, scheduler (bot/runtime.py)
        for router in services.routers():
            app.include_router(router)
        app.state.runtime = rt
        app.state.inbox = services.inbox
        app.state.telegram = services.bridge
        app.state.scheduler = services.scheduler
        await services.start()
        if settle:
            await anyio.to_thread.run_sync(heap.settle)
        if console:
            services.loops.append(asyncio.create_task(_console_loop(services.inbox), name="console"))
        try:
            yield
        finally:
            await services.stop()
            if runtime is None:
                rt.close()

    app.router.lifespan_context = lifespan

    # Operations (bot/metrics.py): webhook counters, /metrics, /healthz?details=1
    metrics = Metrics()
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(WebhookCounter, metrics=metrics)
    app.add_middleware(RequestId)  # outermost: every line logged for a request carries its id (bot/logs.py)
    # The routes read the app through the request, never through a closure: FastAPI keeps module-level caches
    # keyed by endpoint functions, and a closure over the app would keep every app (and its runtime) alive.
    app.add_api_route("/healthz", _healthz, methods=["GET"])
    app.add_api_route("/metrics", _metrics, methods=["GET"])
    return app


async def _healthz(rt: RuntimeDep, request: Request, details: bool = False) -> JSONResponse:
    state = request.app.state
    settings: Settings = state.settings
    if details:
        if not allowed(request, settings):
            return JSONResponse({"status": "forbidden"}, status_code=403)
        scheduler = getattr(state, "scheduler", None)
        parts = await anyio.to_thread.run_sync(lambda: health_details(rt, settings, scheduler=scheduler))
        ok = all(part["ok"] for part in parts.values())
        unhealthy = sorted(name for name, part in parts.items() if not part["ok"])
        body = {"status": "ok" if ok else "unavailable", "unhealthy": unhealthy, "parts": parts}
        return JSONResponse(body, status_code=200 if ok else 503)
    ok = await anyio.to_thread.run_sync(rt.healthy)
    summary = {"status": "ok" if ok else "unavailable", "kb_entries": len(rt.kb.entries)}
    return JSONResponse(summary, status_code=200 if ok else 503)


async def _metrics(rt: RuntimeDep, request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    if not allowed(request, settings):
        return Response("forbidden\n", status_code=403, media_type="text/plain")
    collector = DatabaseCollector(rt, settings, scheduler=getattr(state, "scheduler", None))
    body = await anyio.to_thread.run_sync(state.metrics.render, collector)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def app_factory() -> FastAPI:
    """For `uvicorn --factory` with several worker processes: settings from the environment."""
    settings = Settings()
    configure(settings.log)
    return create_app(settings, settle=True)


async def _console_loop(inbox: Inbox) -> None:
    """The console channel beside the web app: one parent chatting in the server's terminal; replies (the
    bot's and staff's) come through the inbox like any channel's."""
    sys.stdout.write("子育て支援コンシェルジュ（コンソール）: ご質問をどうぞ。\n")
    sys.stdout.flush()
    await console_channel.serve_terminal(inbox, console_channel.ConsoleAdapter(sys.stdout), sys.stdin)

"""The staff web console: routers by noun (/login, /cases, /records, /reports, /complaints, /appointments,
/notices, /audit, /staff), Jinja2 templates, static CSS/JS, server-side sessions with per-session CSRF tokens.

`mount_console(app, settings)` is all the app needs: it keeps the console's state on `app.state.console`,
installs the error pages (login redirect, 401, 403, 404) and includes the routers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from bot.console.core import Console
    from bot.settings import Settings

STATIC_PATH = "/static/console"


def routers() -> list[APIRouter]:
    from bot.console import (
        appointments,
        audit,
        canned,
        cases,
        complaints,
        exports,
        feedback,
        kb,
        kb_edit,
        live,
        login,
        notices,
        records,
        reports,
        staff,
    )

    return [
        login.router,
        live.router,  # before cases: /cases/events is not a case number
        cases.router,
        records.router,
        reports.router,
        complaints.router,
        appointments.router,
        kb_edit.router,  # before kb: /kb/new, /kb/revisions... are not entry ids
        kb.router,
        feedback.router,
        notices.router,
        audit.router,
        staff.router,
        canned.router,
        exports.router,
    ]


def mount_console(app: FastAPI, settings: Settings) -> Console:
    from fastapi import Depends
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from bot.console.bounds import checked_params
    from bot.console.core import HERE, Console, install_error_pages

    console = Console(settings.console, office_hours=settings.office_hours.config(), public_url=settings.public_url)
    app.state.console = console
    install_error_pages(app)
    for router in routers():
        app.include_router(router, dependencies=[Depends(checked_params)])  # F11: no 500 for out-of-range values
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")

    def favicon() -> FileResponse:  # browsers ask for /favicon.ico whatever the page links
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
    return console

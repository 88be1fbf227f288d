"""Out-of-range numbers and dates (security review F11): every route parameter of every console route, swept
with values past the database's integers and the calendar, is refused with a 400 page (or handled), never 500."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from bot.console import routers as console_routers
from bot.runtime import Runtime
from bot.settings import Settings
from tests.e2e.kit import login, parent_opens_case, staffed_console

NUMBERS = ["99999999999999999999", "-99999999999999999999", "9223372036854775808", "2147483648", "-1", "0"]
DATES = ["9999-12", "0001-01", "0001-01-01", "9999-12-31", "10000-01-01", "9999-12-31T23:59", "0000-00", "1e400"]
HOSTILE = NUMBERS + DATES
TEMPLATES = Path(__file__).resolve().parents[2] / "bot" / "console" / "templates"


def form_fields() -> list[str]:
    """Every date, time and number field of the console's forms."""
    names: set[str] = set()
    for page in TEMPLATES.glob("*.html"):
        for tag in re.findall(r"<input[^>]*>", page.read_text()):
            if re.search(r'type="(date|datetime-local|number|month|week|time)"', tag):
                name = re.search(r'name="([^"]+)"', tag)
                if name:
                    names.add(name.group(1))
    return sorted(names)


def open_a_case(rt: Runtime) -> None:
    parent_opens_case(rt.engine, "U-sweep")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with staffed_console(
        settings,
        ("boss", "supervisor"),
        intake=frozenset({"boss"}),
        setup=open_a_case,
    ) as a:
        yield a


def flat(dependant: Dependant) -> tuple[list[str], list[str]]:
    paths = [p.name for p in dependant.path_params]
    queries = [str(q.alias) for q in dependant.query_params]
    for sub in dependant.dependencies:
        p, q = flat(sub)
        paths += p
        queries += q
    return sorted(set(paths)), sorted(set(queries))


def routes(app: FastAPI) -> list[tuple[str, str, list[str], list[str]]]:
    """Every console route (FastAPI keeps included routers lazily: read them from the console's list)."""
    out = []
    for route in (r for router in console_routers() for r in router.routes):
        if not isinstance(route, APIRoute):
            continue
        paths, queries = flat(route.dependant)
        for method in sorted(route.methods):
            out.append((method, route.path, paths, queries))
    return out


def fill(path: str, names: list[str], value: str, default: str = "1") -> str:
    for name in names:
        path = path.replace("{" + name + "}", value if value is not None else default)
    return path


def assert_refused_properly(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code}"
    path = what.split("?")[0].split(" ")[-1]
    # JSON polls and the event stream are read by the page's script, not shown: they answer JSON.
    if r.status_code == 400 and (path.endswith(".json") or path == "/cases/events"):
        assert r.headers["content-type"].startswith("application/json"), what
    elif r.status_code == 400:
        assert r.headers["content-type"].startswith("text/html"), what
        assert "入力内容を確認してください" in r.text, what


async def test_every_route_parameter_out_of_range_is_a_400_not_a_500(app: FastAPI) -> None:
    boss = await login(app, "boss")
    fields = form_fields()
    assert {"month", "send_at", "consulted_on", "minutes"} <= set(fields)
    seen_400 = set()
    async with boss:
        for method, path, paths, queries in routes(app):
            if path.startswith("/webhooks") or path == "/logout":
                continue
            for value in HOSTILE:
                urls = [fill(path, paths, value)] if paths else [path]
                urls += [f"{fill(path, paths, '1')}?{q}={value}" for q in queries]
                for url in urls:
                    if method == "GET":
                        r = await boss.client.get(url)
                    else:
                        r = await boss.post(url, {name: value for name in fields})
                    assert_refused_properly(r, f"{method} {url}")
                    if r.status_code == 400:
                        seen_400.add(path)
    assert len(seen_400) > 20  # the sweep reached the routes (not just the login page)
    # the review's examples, each by name
    async with await login(app, "boss") as boss:
        for url in (
            "/audit?before=99999999999999999999999",
            "/cases/99999999999999999999",
            "/records?month=9999-12",
            "/appointments?week=0001-01-01",
        ):
            r = await boss.client.get(url)
            assert r.status_code == 400 and "入力内容を確認してください" in r.text, url
            assert r.headers["x-frame-options"] == "DENY"


async def test_out_of_range_json_polls_answer_json(app: FastAPI) -> None:
    async with await login(app, "boss") as boss:
        for url in ("/cases/99999999999999999999/deliveries.json", "/notices/99999999999999999999/progress.json"):
            r = await boss.client.get(url)
            assert r.status_code in (400, 404), url
            assert r.headers["content-type"].startswith("application/json"), url


def test_the_sweep_covers_the_console(app: FastAPI) -> None:
    found = {path for _, path, _, _ in routes(app)}
    for expected in ("/cases/{case_id}", "/audit", "/records", "/appointments", "/notices/{notice_id}", "/staff"):
        assert expected in found
    assert len(list(itertools.chain(found))) > 30

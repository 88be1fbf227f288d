"""Access control on every staff route: walked from the app's own route table, unauthenticated and per role.

A new console route fails these tests until it is added to EXPECTED with the principals allowed to use it.
Forms are sent empty (with a valid CSRF token): a permitted user gets the page or a redirect with a
validation message, a refused one 403; handlers check permission before they look at any input."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlmodel import select

from bot.runtime import Runtime, bootstrap
from bot.settings import Settings
from handlers import channels
from knowledge.exchange import entry_dict
from storage import kb as kbdb
from storage import notices
from storage import staff as staffdb
from storage.db import transaction
from storage.models import Case, CaseStatus, Message, utcnow
from tests.e2e.kit import assign, client, console_app, make_staff, parent_opens_case, session_for, staff_settings

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/favicon.ico")}
# The public FAQ (bot/public/): the knowledge base for anyone, no personal data (tests/bot/test_public_faq.py).
PUBLIC |= {("GET", p) for p in ("/faq", "/faq/search", "/faq/faq.css", "/faq/{entry_id}")}
# Monitoring, guarded by a token or an allowed address instead of a staff session (tests/bot/test_ops_metrics.py).
MONITORING = {("GET", "/metrics")}
ALL = {"concierge", "assistant", "supervisor", "auditor", "intake"}
MANAGERS = {"concierge", "supervisor"}

# route -> who may use it on an open, unassigned consultation case (complaint steps: on a complaint case)
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): ALL,
    ("GET", "/cases"): ALL,
    ("GET", "/cases/queue.json"): ALL,
    ("GET", "/cases/events"): ALL,
    ("GET", "/cases/{case_id}"): {"concierge", "supervisor", "auditor"},
    ("GET", "/cases/{case_id}/deliveries.json"): {"concierge", "supervisor", "auditor"},
    ("GET", "/cases/{case_id}/export"): {"concierge", "supervisor", "auditor"},
    ("POST", "/cases/{case_id}/reply"): MANAGERS,
    ("POST", "/cases/{case_id}/notes"): MANAGERS,
    ("POST", "/cases/{case_id}/messages/{message_id}/resend"): MANAGERS,
    ("POST", "/cases/{case_id}/claim"): MANAGERS,
    ("POST", "/cases/{case_id}/assign"): MANAGERS,
    ("POST", "/cases/{case_id}/release"): MANAGERS,
    ("POST", "/cases/{case_id}/status"): MANAGERS,
    ("POST", "/cases/{case_id}/resolve"): MANAGERS,
    ("POST", "/cases/{case_id}/reopen"): MANAGERS,
    ("POST", "/cases/{case_id}/kind"): MANAGERS,
    ("POST", "/cases/{case_id}/records/consultation"): MANAGERS,
    ("POST", "/cases/{case_id}/records/support"): MANAGERS,
    ("POST", "/cases/{case_id}/records/conference"): MANAGERS,
    ("POST", "/cases/{case_id}/referrals"): MANAGERS,
    ("POST", "/cases/{case_id}/complaint-steps"): {"supervisor", "intake"},
    ("POST", "/cases/{case_id}/appointments"): MANAGERS,
    ("POST", "/cases/{case_id}/appointments/{slot_id}/cancel"): MANAGERS,
    ("GET", "/records"): {"concierge", "supervisor", "auditor"},
    ("GET", "/records/export.csv"): {"supervisor"},
    ("GET", "/complaints"): {"supervisor", "auditor", "intake"},
    ("POST", "/complaints"): {"concierge", "supervisor", "intake"},
    ("GET", "/appointments"): ALL,
    ("GET", "/kb"): ALL,
    ("GET", "/kb/try"): ALL,
    ("GET", "/kb/{entry_id}"): ALL,
    ("GET", "/kb/export.csv"): {"concierge", "supervisor", "auditor"},
    ("GET", "/feedback"): {"concierge", "supervisor", "auditor"},
    ("GET", "/feedback/draft"): MANAGERS,
    ("POST", "/feedback/draft"): MANAGERS,
    ("POST", "/feedback/example"): MANAGERS,
    ("POST", "/feedback/dismiss"): MANAGERS,
    # the KB editor (bot/console/kb_edit.py): everyone reads the revisions; concierges and supervisors edit
    ("GET", "/kb/new"): MANAGERS,
    ("POST", "/kb/new"): MANAGERS,
    ("GET", "/kb/{entry_id}/edit"): MANAGERS,
    ("POST", "/kb/{entry_id}/edit"): MANAGERS,
    ("GET", "/kb/{entry_id}/history"): ALL,
    ("GET", "/kb/contacts"): ALL,
    ("GET", "/kb/contacts/new"): MANAGERS,
    ("GET", "/kb/contacts/{contact_id}"): MANAGERS,
    ("POST", "/kb/contacts/{contact_id}"): MANAGERS,
    ("GET", "/kb/revisions"): ALL,
    ("GET", "/kb/revisions/{revision_id}"): ALL,
    ("POST", "/kb/revisions/{revision_id}/rollback"): MANAGERS,
    ("POST", "/kb/revisions/{revision_id}/rollback/{kind}/{item_id}"): MANAGERS,
    ("POST", "/kb/settings"): {"supervisor"},
    ("GET", "/kb/pending"): ALL,
    ("POST", "/kb/pending/{pending_id}/{decision}"): {"supervisor"},
    ("GET", "/reports"): {"supervisor", "auditor"},
    ("GET", "/reports/{month}.csv"): {"supervisor", "auditor"},
    ("GET", "/notices"): {"concierge", "supervisor", "auditor"},
    ("GET", "/notices/new"): MANAGERS,
    ("POST", "/notices"): MANAGERS,
    ("GET", "/notices/{notice_id}"): {"concierge", "supervisor", "auditor"},
    ("GET", "/notices/{notice_id}/edit"): MANAGERS,
    ("POST", "/notices/{notice_id}/edit"): MANAGERS,
    ("POST", "/notices/{notice_id}/submit"): MANAGERS,
    ("POST", "/notices/{notice_id}/approve"): {"supervisor"},
    ("POST", "/notices/{notice_id}/cancel"): MANAGERS,
    ("POST", "/notices/{notice_id}/runs/{run_id}/resend"): MANAGERS,
    ("GET", "/canned"): {"concierge", "assistant", "supervisor", "intake"},
    ("POST", "/canned"): {"supervisor"},
    ("POST", "/canned/{canned_id}"): {"supervisor"},
    ("POST", "/cases/{case_id}/records-requests/{request_id}/deliver"): MANAGERS,
    ("POST", "/cases/{case_id}/records-requests/{request_id}/handed"): MANAGERS,
    ("GET", "/audit"): {"supervisor", "auditor"},
    ("GET", "/staff"): {"supervisor"},
    ("POST", "/staff"): {"supervisor"},
    ("POST", "/staff/{staff_id}"): {"supervisor"},
    ("POST", "/staff/{staff_id}/unlock"): {"supervisor"},
    ("POST", "/staff/addresses/unblock"): {"supervisor"},
    ("POST", "/staff/{staff_id}/password"): {"supervisor"},
    ("POST", "/staff/{staff_id}/telegram"): {"supervisor"},
    ("POST", "/logout"): ALL,
}


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, dict[str, int]]]:
    s = staff_settings(settings)
    rt: Runtime = bootstrap(s, migrate=False)
    try:
        make_staff(rt.sessions, "concierge", "concierge")
        make_staff(rt.sessions, "assistant", "assistant")
        make_staff(rt.sessions, "supervisor", "supervisor")
        make_staff(rt.sessions, "auditor", "auditor")
        target = make_staff(rt.sessions, "intake", "assistant", intake=True)
        case_id = parent_opens_case(rt.engine, "walk-parent")
        complaint_id = parent_opens_case(rt.engine, "walk-complainer", "職員の対応に不満があります")
        with transaction(rt.sessions) as session:
            complaint = session.get(Case, complaint_id)
            assert complaint is not None
            staffdb.set_case_kind(session, case=complaint, kind=staffdb.COMPLAINT)
            start = utcnow() + dt.timedelta(days=3)
            slot = staffdb.offer_slots(session, case_id=case_id, starts=[start], minutes=30, place="", offered_by="x")[
                0
            ]
            assert slot.id is not None
            notice = notices.create_notice(
                session,
                channels=channels.notice_channels(),
                title="walk",
                texts={"ja": "お知らせ"},
                topic="general",
                created_by="concierge",
                send_at=start,
            )
            assert notice.id is not None
            line = session.exec(select(Message).where(Message.case_id == case_id)).first()
            assert line is not None and line.id is not None
            ids = {
                "message_id": line.id,
                "case_id": case_id,
                "complaint_id": complaint_id,
                "slot_id": slot.id,
                "staff_id": target,
                "notice_id": notice.id,
                "pending_id": _pending_edit(session, rt),
            }
        async with console_app(s, rt) as app:
            yield app, ids
    finally:
        rt.close()


def _pending_edit(session: Any, rt: Runtime) -> int:
    """An edit of another member waiting for approval (a supervisor may send it back)."""
    entry = rt.kb.entries["concierge-complaints"]
    row = kbdb.propose(session, item=kbdb.Item(kbdb.ENTRY, entry.id, entry_dict(entry)), staff_name="someone")
    assert row.id is not None
    return row.id


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute, through included routers (FastAPI keeps those as lazy branches)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from walk(inner.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            yield prefix, route


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for prefix, route in walk(app.routes):
        path = prefix + route.path
        if path.startswith("/webhooks/"):
            continue
        for method in route.methods:
            if method != "HEAD" and (method, path) not in PUBLIC | MONITORING:
                found.add((method, path))
    return found


def fill(path: str, ids: dict[str, int]) -> str:
    case = ids["complaint_id"] if path.endswith("/complaint-steps") else ids["case_id"]
    return path.format(
        case_id=case,
        message_id=ids["message_id"],
        slot_id=ids["slot_id"],
        staff_id=ids["staff_id"],
        notice_id=ids["notice_id"],
        run_id=0,
        canned_id=0,
        request_id=0,
        month="2026-10",
        entry_id="concierge-complaints",
        contact_id="concierge",
        revision_id=1,
        pending_id=ids["pending_id"],
        decision="reject",
        kind="entry",
        item_id="concierge-complaints",
    )


def reset(app: FastAPI, ids: dict[str, int]) -> None:
    """Undo what a permitted empty request may still change (claim, release)."""
    assign(app.state.runtime.sessions, ids["case_id"], None)
    with transaction(app.state.runtime.sessions) as s:
        case = s.get(Case, ids["case_id"])
        assert case is not None
        case.status = CaseStatus.NEW
        s.add(case)


async def test_every_console_route_is_in_the_matrix(world: tuple[FastAPI, dict[str, int]]) -> None:
    app, _ = world
    routes = console_routes(app)
    assert routes == set(EXPECTED), (
        f"unlisted: {sorted(routes - set(EXPECTED))}, missing: {sorted(set(EXPECTED) - routes)}"
    )


async def test_unauthenticated_requests_are_redirected_or_refused(world: tuple[FastAPI, dict[str, int]]) -> None:
    app, ids = world
    async with client(app) as anon:
        for method, path in sorted(console_routes(app)):
            url = fill(path, ids)
            r = await anon.request(method, url, data={"csrf_token": "x"} if method == "POST" else None)
            if method == "GET" and not path.endswith(".json") and path != "/cases/events":
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/login?next="), (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            assert "夜泣き" not in r.text


@pytest.mark.parametrize("who", sorted(ALL))
async def test_each_role_gets_exactly_its_routes(who: str, world: tuple[FastAPI, dict[str, int]]) -> None:
    app, ids = world
    login = await session_for(app, who)
    async with login:
        for method, path in sorted(EXPECTED, key=lambda mp: mp[1] == "/logout"):  # log out last
            url = fill(path, ids)
            if method == "GET":
                r = await login.client.get(url)
            else:
                r = await login.post(url)
            allowed = who in EXPECTED[(method, path)]
            if allowed:  # 422: an empty form let through and refused by the KB checks
                assert r.status_code in (200, 303, 422), (who, method, path, r.status_code)
                if r.status_code == 303 and path != "/logout":
                    assert not r.headers["location"].startswith("/login"), (who, method, path)
            else:
                assert r.status_code == 403, (who, method, path, r.status_code)
                assert "夜泣き" not in r.text
            reset(app, ids)


async def test_an_assistant_sees_only_cases_assigned_to_them(world: tuple[FastAPI, dict[str, int]]) -> None:
    app, ids = world
    login = await session_for(app, "assistant")
    async with login:
        rows = (await login.client.get("/cases/queue.json")).json()["rows"]
        assert rows == []
        assign(app.state.runtime.sessions, ids["case_id"], "assistant")
        rows = (await login.client.get("/cases/queue.json")).json()["rows"]
        assert [r["id"] for r in rows] == [ids["case_id"]]
        page = await login.client.get(f"/cases/{ids['case_id']}")
        assert page.status_code == 200 and "夜泣きがひどくて眠れません" in page.text
        assert 'action="/cases/{}/reply"'.format(ids["case_id"]) in page.text
        assert 'action="/cases/{}/resolve"'.format(ids["case_id"]) not in page.text  # reads and replies only
        r = await login.post(f"/cases/{ids['case_id']}/reply", {"text": "補助の山田です。"})
        assert r.status_code == 303
        r = await login.post(f"/cases/{ids['case_id']}/resolve", {"outcome": "resolved"})
        assert r.status_code == 403


async def test_complaints_are_hidden_from_a_concierge_without_intake(world: tuple[FastAPI, dict[str, int]]) -> None:
    app, ids = world
    concierge = await session_for(app, "concierge")
    intake = await session_for(app, "intake")
    async with concierge, intake:
        rows = (await concierge.client.get("/cases/queue.json")).json()["rows"]
        assert ids["complaint_id"] not in [r["id"] for r in rows]
        assert (await concierge.client.get(f"/cases/{ids['complaint_id']}")).status_code == 403
        rows = (await intake.client.get("/cases/queue.json")).json()["rows"]
        assert [r["id"] for r in rows] == [ids["complaint_id"]]
        assert (await intake.client.get(f"/cases/{ids['complaint_id']}")).status_code == 200


async def test_missing_case_is_404_not_an_error(world: tuple[FastAPI, dict[str, int]]) -> None:
    app, _ = world
    login = await session_for(app, "supervisor")
    async with login:
        assert (await login.client.get("/cases/999999")).status_code == 404
        assert (await login.post("/cases/999999/reply", {"text": "x"})).status_code == 404

"""Notices end to end against the fake LINE API, a real SMTP server and both databases: segments and counts,
multicast batches and broadcast, unsubscribes up to the moment of sending, retries, 409 and resume after a
kill -9, approval, email, and the LINE quota."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.settings import Settings
from handlers import channels
from handlers import notices as sending
from handlers.channels.line import build_sender as build_line_sender
from handlers.types import DeliveryError
from storage import lifecycle, notice_runs
from storage import notices as store
from storage.db import SessionFactory, transaction
from storage.models import Contact, utcnow
from storage.notices import NoticeBatch, NoticeError, NoticeStatus
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.mailservers import SMTPSink, free_port
from tests.handlers.notice_kit import Parent, add_parents, wired

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {"ja": "11月30日(日) 親子リトミック教室を開きます。", "en": "Parent-child rhythmic class on Sun 30 Nov."}


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    yield sink
    sink.stop()


def make_notice(
    sessions: SessionFactory, *, approve: bool = True, texts: dict[str, str] | None = None, **values: object
) -> int:
    """A notice submitted and approved (scheduled), unless approve=False."""
    fields: dict[str, object] = {"topic": "general", "send_at": utcnow(), "requires_approval": True}
    fields.update(values)
    with transaction(sessions) as session:
        notice = store.create_notice(
            session,
            channels=channels.notice_channels(),
            title="リトミック",
            texts=texts or {"ja": TEXTS["ja"]},
            created_by="staff:sato",
            **fields,  # type: ignore[arg-type]
        )
        store.submit_notice(session, channels=channels.notice_channels(), notice=notice)
        if approve and notice.status == NoticeStatus.AWAITING_APPROVAL:
            store.approve_notice(session, notice=notice, approver="staff:kato")
        assert notice.id is not None
        return notice.id


def send(settings: Settings, sessions: SessionFactory, notice_id: int) -> sending.RunResult:
    result = sending.send_now(settings, sessions, notice_id=notice_id)
    assert result is not None
    return result


def ids_of(parents: list[Parent]) -> list[str]:
    return [p.external_id for p in parents]


def test_segments_and_estimate(db: Engine, sessions: SessionFactory) -> None:
    ja = add_parents(sessions, 3, lang="ja")
    en = add_parents(sessions, 2, lang="en", topics={"events": True})
    mail = add_parents(sessions, 2, channel="email", topics={"events": True})
    add_parents(sessions, 1, subscribed=False)  # unfollowed
    off = add_parents(sessions, 1, topics={"general": False})
    notice_id = make_notice(sessions, texts=TEXTS)
    events_id = make_notice(sessions, topic="events", channel="line")
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        everyone = store.recipients(session, notice=notice)
        assert sorted(everyone) == sorted(p.id for p in ja + en + mail)
        assert off[0].id not in everyone
        est = store.estimate(session, broadcast_channel=channels.broadcast_channel(), notice=notice)
        assert (est.total, est.by_channel, est.by_lang) == (7, {"line": 5, "email": 2}, {"ja": 5, "en": 2})
        assert est.line_messages == 5 and not est.broadcast  # two texts: no broadcast
        events = store.get_notice(session, notice_id=events_id)
        assert events is not None
        assert store.estimate(session, broadcast_channel=channels.broadcast_channel(), notice=events).by_channel == {
            "line": 2
        }


def test_broadcast_counts_every_follower_and_needs_everyone(db: Engine, sessions: SessionFactory) -> None:
    add_parents(sessions, 4)
    notice_id = make_notice(sessions)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        assert store.estimate(session, broadcast_channel=channels.broadcast_channel(), notice=notice).broadcast
        assert not store.estimate(
            session, broadcast_channel=channels.broadcast_channel(), notice=notice, allow_broadcast=False
        ).broadcast
    add_parents(sessions, 1, topics={"general": False})
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        est = store.estimate(session, broadcast_channel=channels.broadcast_channel(), notice=notice)
        assert not est.broadcast and est.line_messages == 4


def test_a_follower_who_stopped_notices_rules_out_a_broadcast(db: Engine, sessions: SessionFactory) -> None:
    add_parents(sessions, 3)
    add_parents(sessions, 1, subscribed=False)  # 「お知らせ停止」 (or unfollowed): a broadcast would still reach them
    notice_id = make_notice(sessions)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        est = store.estimate(session, broadcast_channel=channels.broadcast_channel(), notice=notice)
        assert not est.broadcast and est.line_messages == 3


def test_multicast_batches_of_at_most_500_in_each_language(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    ja = add_parents(sessions, 1203, lang="ja")
    en = add_parents(sessions, 3, lang="en")
    vi = add_parents(sessions, 2, lang="vi")  # no Vietnamese text: Japanese
    notice_id = make_notice(sessions, texts=TEXTS)
    result = send(wired(settings, fake=fake), sessions, notice_id)
    assert (result.total, result.sent, result.failed, result.skipped, result.done) == (1208, 1208, 0, 0, True)
    sizes = sorted(len(m["to"]) for m in fake.multicasts)
    assert max(sizes) <= 500 and sum(sizes) == 1208 and not fake.broadcasts
    if settings.database_url.startswith("sqlite"):  # one producer: full batches (PostgreSQL runs several)
        assert sizes == [3, 205, 500, 500]
    en_ids = set(ids_of(en))
    assert all(set(m["to"]) <= en_ids or not set(m["to"]) & en_ids for m in fake.multicasts)  # one language each
    assert Counter(fake.multicast_ids()) == Counter(ids_of(ja + en + vi))  # each exactly once
    assert fake.texts(en[0].external_id) == [TEXTS["en"]]
    assert fake.texts(vi[0].external_id) == [TEXTS["ja"]]
    assert len({m["retry_key"] for m in fake.multicasts}) == len(fake.multicasts)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None and notice.status == NoticeStatus.SENT
        run = store.runs(session, notice_id=notice_id)[0]
        assert store.delivery_counts(session, run_id=run.id or 0)["sent"] == 1208
        assert len(store.deliveries(session, run_id=run.id or 0, status="sent", limit=10)) == 10
    calls = len(fake.multicasts)
    assert sending.send_now(wired(settings, fake=fake), sessions, notice_id=notice_id) is None  # it is sent
    assert len(fake.multicasts) == calls


def test_everyone_on_line_goes_as_one_broadcast(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI, smtp: SMTPSink
) -> None:
    add_parents(sessions, 5)
    mail = add_parents(sessions, 1, channel="email")
    notice_id = make_notice(sessions)
    result = send(wired(settings, fake=fake, smtp=smtp), sessions, notice_id)
    assert result.sent == 6 and result.done
    assert len(fake.broadcasts) == 1 and not fake.multicasts
    assert fake.texts("*broadcast*") == [TEXTS["ja"]]
    assert [r.rcpt_tos for r in smtp.received] == [[mail[0].external_id]]


def test_an_opt_out_after_planning_turns_the_broadcast_into_multicast(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 3)
    notice_id = make_notice(sessions)
    config = wired(settings, fake=fake)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        run = sending.plan_run(session, notice=notice, planned_for=utcnow(), settings=config.notices)
        assert run.broadcast
        run_id = run.id or 0
        lifecycle.set_topic(session, contact_id=parents[0].id, topic="general", enabled=False)
    result = sending.resume(config, sessions, run_id=run_id)[0]
    assert (result.sent, result.skipped) == (2, 1)
    assert not fake.broadcasts and sorted(fake.multicast_ids()) == sorted(ids_of(parents[1:]))


def test_unsubscribed_just_before_sending_are_skipped(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 6, topics={"events": True})
    notice_id = make_notice(sessions, topic="events")
    config = wired(settings, fake=fake)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        run_id = sending.plan_run(session, notice=notice, planned_for=utcnow(), settings=config.notices).id or 0
    with transaction(sessions) as session:  # after planning, before the send
        blocked = session.get(Contact, parents[0].id)
        assert blocked is not None
        lifecycle.set_subscribed(session, contact=blocked, subscribed=False)
        lifecycle.set_topic(session, contact_id=parents[1].id, topic="events", enabled=False)
    result = sending.resume(config, sessions, run_id=run_id)[0]
    assert (result.sent, result.skipped, result.done) == (4, 2, True)
    assert sorted(fake.multicast_ids()) == sorted(ids_of(parents[2:]))
    with transaction(sessions) as session:
        skipped = store.deliveries(session, run_id=run_id, status="skipped")
        assert sorted((d.contact_id, d.reason) for d in skipped) == [
            (parents[0].id, "unsubscribed"),
            (parents[1].id, "topic_off"),
        ]


def test_429_and_5xx_are_retried_with_the_same_key(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 3, topics={"health": True})
    notice_id = make_notice(sessions, topic="health")
    fake.fail_next(429, 2, path="/v2/bot/message/multicast")
    fake.fail_next(503, 1, path="/v2/bot/message/multicast")
    result = send(wired(settings, fake=fake), sessions, notice_id)
    assert result.sent == 3
    calls = [c for c in fake.calls if c.path == "/v2/bot/message/multicast"]
    assert [c.status for c in calls] == [429, 429, 503, 200]
    assert len({c.headers["x-line-retry-key"] for c in calls}) == 1
    assert sorted(fake.multicast_ids()) == sorted(ids_of(parents))
    with transaction(sessions) as session:
        batch = session.exec(select(NoticeBatch)).one()
        assert batch.attempts == 4 and batch.status == "sent"


def test_a_refused_batch_fails_and_can_be_retried(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    add_parents(sessions, 2, topics={"health": True})
    notice_id = make_notice(sessions, topic="health")
    fake.fail_next(400, 1, path="/v2/bot/message/multicast")
    config = wired(settings, fake=fake)
    result = send(config, sessions, notice_id)
    assert (result.sent, result.failed, result.done) == (0, 2, True)
    with transaction(sessions) as session:
        assert notice_runs.retry_failed(session, run_id=result.run_id) == 2
    again = sending.resume(config, sessions, run_id=result.run_id)[0]
    assert (again.sent, again.failed, again.done) == (2, 0, True)


def test_a_batch_accepted_before_a_crash_is_not_sent_twice(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    """The batch is stored, LINE takes the call, the process dies before recording it: the resume repeats the
    call with the stored key, LINE answers 409, and that counts as sent."""
    parents = add_parents(sessions, 700, topics={"events": True})
    notice_id = make_notice(sessions, topic="events")
    config = wired(settings, fake=fake)
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None
        run_id = sending.plan_run(session, notice=notice, planned_for=utcnow(), settings=config.notices).id or 0
        notice_copy = store.get_notice(session, notice_id=notice_id)
        assert notice_copy is not None
    sender = sending.NoticeSender(settings=config, sessions=sessions)
    (claim,) = sender._claim_batches(run_id, notice_copy, "line", "multicast", 500, 1)  # what the dead process had done
    assert claim is not None and len(claim.members) == 500
    line = build_line_sender(config, sessions)
    assert line is not None

    async def accepted() -> None:
        await line.send_bulk([m[1] for m in claim.members], TEXTS["ja"], lang="ja", key=claim.retry_key)
        await line.aclose()

    asyncio.run(accepted())
    result = sending.resume(config, sessions)[0]
    assert (result.sent, result.done) == (700, True)
    assert Counter(fake.multicast_ids()) == Counter(ids_of(parents))
    calls = [c for c in fake.calls if c.path.endswith("/multicast")]
    # The repeat and the rest go out concurrently (on PostgreSQL the rest may be split between producers).
    statuses = [c.status for c in calls]
    assert set(statuses) == {200, 409} and statuses.count(409) == 1
    assert [c.headers["x-line-retry-key"] for c in calls if c.status == 409] == [claim.retry_key]


KILLED_SENDER = """
import sys
from bot.settings import Settings
from handlers.notices import send_now
from storage.db import make_engine, session_factory

settings = Settings()
send_now(settings, session_factory(make_engine(settings.database_url)), notice_id=int(sys.argv[1]))
"""


def test_kill_9_mid_run_then_resume_gives_no_duplicates_and_no_misses(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 2600, topics={"events": True})  # 6 batches
    notice_id = make_notice(sessions, topic="events")
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "LINE_CHANNEL_SECRET": "x",
        "LINE_CHANNEL_ACCESS_TOKEN": fake.token,
        "LINE_API_BASE_URL": fake.url,
        "NOTICES__LINE_MULTICAST_PER_SECOND": "4",
        "NOTICES__LINE_CONCURRENCY": "2",
    }
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_SENDER), str(notice_id)], cwd=ROOT, env=env)
    try:
        fake.wait_for(lambda f: len(f.multicasts) >= 2, timeout=30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert len(set(fake.multicast_ids())) < 2600  # killed midway
    results = sending.resume(wired(settings, fake=fake), sessions)
    assert [(r.sent, r.done) for r in results] == [(2600, True)]
    received = Counter(fake.multicast_ids())
    assert max(received.values()) == 1  # no duplicates
    assert set(received) == set(ids_of(parents))  # no misses


def test_approval_is_required_before_anything_is_sent(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    add_parents(sessions, 2)
    notice_id = make_notice(sessions, approve=False)
    config = wired(settings, fake=fake)
    assert sending.send_now(config, sessions, notice_id=notice_id) is None
    assert not fake.calls
    with transaction(sessions) as session:
        notice = store.get_notice(session, notice_id=notice_id)
        assert notice is not None and notice.status == NoticeStatus.AWAITING_APPROVAL
        with pytest.raises(NoticeError):
            store.approve_notice(session, notice=notice, approver="staff:sato")  # the author
        store.approve_notice(session, notice=notice, approver="staff:kato")
    assert send(config, sessions, notice_id).sent == 2


def test_workflow_edits_and_cancel(db: Engine, sessions: SessionFactory) -> None:
    with transaction(sessions) as session:
        with pytest.raises(NoticeError):
            store.create_notice(
                session,
                channels=channels.notice_channels(),
                title="x",
                texts={"en": "only English"},
                topic="general",
                created_by="a",
            )
        with pytest.raises(NoticeError):
            store.create_notice(
                session,
                channels=channels.notice_channels(),
                title="x",
                texts={"ja": "x"},
                topic="general",
                created_by="a",
                kind="recurring",
            )
        notice = store.create_notice(
            session,
            channels=channels.notice_channels(),
            title="x",
            texts={"ja": "x"},
            topic="events",
            created_by="a",
            kind="recurring",
            cron="0 9 * * 1",
        )
        store.update_notice(session, channels=channels.notice_channels(), notice=notice, texts={"ja": "y", "en": "y"})
        store.submit_notice(session, channels=channels.notice_channels(), notice=notice)
        store.approve_notice(session, notice=notice, approver="b")
        assert notice.status == NoticeStatus.SCHEDULED and notice.approved_by == "b"
        with pytest.raises(NoticeError):
            store.update_notice(session, channels=channels.notice_channels(), notice=notice, title="z")
        store.cancel_notice(session, notice=notice)
        assert not store.may_send(notice)
        assert [n.id for n in store.list_notices(session, status="cancelled")] == [notice.id]


def test_email_in_each_language_with_a_way_to_stop(
    db: Engine, sessions: SessionFactory, settings: Settings, smtp: SMTPSink
) -> None:
    ja = add_parents(sessions, 2, channel="email", topics={"events": True})
    en = add_parents(sessions, 1, channel="email", lang="en", topics={"events": True})
    notice_id = make_notice(sessions, topic="events", texts=TEXTS)
    smtp.fail_next("451 4.3.0 Try again later")
    result = send(wired(settings, smtp=smtp, email_batch_size=2), sessions, notice_id)
    assert (result.sent, result.done) == (3, True)
    by_rcpt = {r.rcpt_tos[0]: r for r in smtp.received}
    assert sorted(by_rcpt) == sorted(ids_of(ja + en)) and len(smtp.received) == 3
    mail_ja = by_rcpt[ja[0].external_id]
    assert TEXTS["ja"] in mail_ja.text and "お知らせ停止" in mail_ja.text
    assert mail_ja.message["Subject"] == "子育てコンシェルジュからのお知らせ"
    mail_en = by_rcpt[en[0].external_id]
    assert TEXTS["en"] in mail_en.text and "stop notices" in mail_en.text


def test_a_channel_that_is_off_fails_its_deliveries(db: Engine, sessions: SessionFactory, settings: Settings) -> None:
    add_parents(sessions, 2, topics={"events": True})
    notice_id = make_notice(sessions, topic="events")
    result = send(settings, sessions, notice_id)  # LINE not configured
    assert (result.failed, result.done) == (2, True)


def test_line_quota(settings: Settings, fake: FakeLineAPI) -> None:
    assert sending.line_quota(settings) is None  # LINE off
    fake.quota = 1000
    quota = sending.line_quota(wired(settings, fake=fake))
    assert quota is not None and (quota.limit, quota.used, quota.remaining) == (1000, 0, 1000)
    fake.quota = None
    unlimited = sending.line_quota(wired(settings, fake=fake))
    assert unlimited is not None and unlimited.limit is None
    dead = FakeLineAPI(port=free_port())  # never started: nothing listens there
    assert sending.line_quota(wired(settings, fake=dead)) is None  # unreachable


def test_token_bucket_paces_calls_and_caps_each_second() -> None:
    async def take(bucket: sending.TokenBucket, n: int) -> list[float]:
        start = time.monotonic()
        out = []
        for _ in range(n):
            await bucket.take()
            out.append(time.monotonic() - start)
        return out

    paced = asyncio.run(take(sending.TokenBucket(50.0, burst=1), 11))
    assert 0.19 <= paced[-1] < 0.4  # 10 intervals of 20 ms
    # Saved-up tokens make up for a late start, but never more than `cap` calls in any one second.
    capped = asyncio.run(take(sending.TokenBucket(100.0, burst=50, cap=10), 12))
    assert capped[9] < 0.2 and capped[10] >= 0.99


def test_a_rate_limited_call_goes_again_at_the_next_slot_and_the_bucket_drops_its_savings(
    settings: Settings, sessions: SessionFactory
) -> None:
    now = [0.0]
    bucket = sending.TokenBucket(100.0, burst=5, clock=lambda: now[0])
    now[0] = 1.0  # five tokens saved up
    bucket.slow_down()
    assert bucket._tokens == 0.0
    sender = sending.NoticeSender(settings=settings, sessions=sessions)
    limited = DeliveryError("429", retry=True, rate_limited=True)
    assert sender._retry_wait(bucket, limited, 1) == 0.01  # one slot at 100/s, not the 0.5 s backoff
    assert sender._retry_wait(bucket, limited, 2) == sender._backoff(2)  # again too fast: back off
    assert sender._retry_wait(bucket, DeliveryError("503", retry=True), 1) == sender._backoff(1)


def test_fake_multicast_checks_and_rate_limit(settings: Settings, sessions: SessionFactory, fake: FakeLineAPI) -> None:
    line = build_line_sender(wired(settings, fake=fake), sessions)
    assert line is not None
    fake.rate_limit(2)

    async def calls() -> list[str]:
        out = []
        for _ in range(3):
            try:
                await line.send_bulk([f"U{'a' * 32}"], "x", lang="ja", key=str(uuid.uuid4()))
                out.append("ok")
            except DeliveryError as exc:
                out.append(exc.reason)
        await line.aclose()
        return out

    assert asyncio.run(calls()) == ["ok", "ok", "429"]
    assert fake.limited == 1
    # Too many requests may go again at the next free slot; a used-up monthly quota is not worth retrying.
    fake.rate_limit(None)
    fake.quota = 0

    async def over_quota() -> DeliveryError:
        try:
            await line.send_bulk([f"U{'b' * 32}"], "x", lang="ja", key=str(uuid.uuid4()))
        except DeliveryError as exc:
            return exc
        finally:
            await line.aclose()
        raise AssertionError("the fake accepted a multicast over the quota")

    refused = asyncio.run(over_quota())
    assert (refused.reason, refused.retry, refused.rate_limited) == ("429 monthly_limit", False, False)
    fake.quota = None
    fake.rate_limit(None)
    headers = {"Authorization": f"Bearer {fake.token}"}
    body = {"to": [f"U{i:032x}" for i in range(501)], "messages": [{"type": "text", "text": "x"}]}
    too_many = httpx.post(f"{fake.url}/v2/bot/message/multicast", json=body, headers=headers)
    assert too_many.status_code == 400 and "500" in too_many.text


def test_cli_list_show_send_now_resume(
    db: Engine, sessions: SessionFactory, settings: Settings, fake: FakeLineAPI
) -> None:
    parents = add_parents(sessions, 3, topics={"events": True})
    notice_id = make_notice(sessions, topic="events")
    fake.quota = 200
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "LINE_CHANNEL_SECRET": "x",
        "LINE_CHANNEL_ACCESS_TOKEN": fake.token,
        "LINE_API_BASE_URL": fake.url,
    }
    binary = str(Path(sys.executable).parent / "concierge")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "notices", *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    listed = cli("list")
    assert listed.returncode == 0 and f"{notice_id}\tscheduled\tonce\tevents" in listed.stdout
    shown = cli("show", str(notice_id))
    assert shown.returncode == 0, shown.stderr
    assert 'recipients now 3 {"line": 3}  LINE messages 3' in shown.stdout and "used 0 of 200" in shown.stdout
    sent = cli("send-now", str(notice_id))
    assert sent.returncode == 0 and "sent 3, failed 0, skipped 0, pending 0" in sent.stdout
    assert sorted(fake.multicast_ids()) == sorted(ids_of(parents))
    assert cli("send-now", str(notice_id)).returncode == 1  # sent already
    resumed = cli("resume")
    assert resumed.returncode == 0 and "0 run(s) resumed" in resumed.stdout
    assert '"sent": 3' in cli("show", str(notice_id)).stdout

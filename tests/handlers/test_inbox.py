"""The durable path: store before acknowledging, process once, deliver with retries, recover after a crash.
A collecting channel (a fake at the edge, as Rasa's CollectingOutputChannel) stands in for a real one."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.runtime import Runtime
from handlers.inbox import Inbox, IncomingEvent
from handlers.staff import reply_to_parent
from handlers.types import Delivery, DeliveryError, InboundMessage, Parsed
from storage.db import transaction
from storage.models import Case, EventStatus, InboundEvent, Message, OutboundMessage


class CollectingChannel:
    name = "test"

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []
        self.failures: list[DeliveryError] = []  # raised by the next deliveries, in order
        self.lock = threading.Lock()

    def parse_event(self, payload: str) -> Parsed:
        data = json.loads(payload)
        if data.get("ignore"):
            return Parsed(None)
        return Parsed(InboundMessage("test", data["sender"], text=data["text"]), reply_token=data.get("token"))

    async def deliver(self, delivery: Delivery) -> None:
        if self.failures:
            raise self.failures.pop(0)
        with self.lock:
            self.delivered.append(delivery)


def event(key: str, sender: str, text: str, **extra: object) -> IncomingEvent:
    return IncomingEvent(key, f"test:{sender}", json.dumps({"sender": sender, "text": text, **extra}))


@pytest.fixture
def channel() -> CollectingChannel:
    return CollectingChannel()


@pytest.fixture
def inbox(runtime: Runtime, channel: CollectingChannel) -> Inbox:
    return Inbox(runtime.sessions, runtime.engine, {"test": channel}, backoff_base=0.0)


async def test_redelivered_event_is_stored_and_answered_once(inbox: Inbox, channel: CollectingChannel) -> None:
    assert inbox.accept("test", [event("e1", "u1", "キッズプラザの料金")]) == 1
    assert inbox.accept("test", [event("e1", "u1", "キッズプラザの料金")]) == 0
    await inbox.drain()
    assert len(channel.delivered) == 1
    assert channel.delivered[0].replies[0].entry_id == "kidsplaza-fees"


async def test_payloads_are_erased_once_processed(inbox: Inbox, runtime: Runtime) -> None:
    inbox.accept("test", [event("e1", "u1", "キッズプラザの料金")])
    await inbox.drain()
    with runtime.sessions() as s:
        events = list(s.exec(select(InboundEvent)))
        outs = list(s.exec(select(OutboundMessage)))
    assert [(e.status, e.payload) for e in events] == [("done", "")]
    assert [(o.status, o.payload) for o in outs] == [("done", "")]


async def test_ignored_events_are_finished_without_replies(inbox: Inbox, channel: CollectingChannel) -> None:
    inbox.accept("test", [event("e1", "u1", "", ignore=True)])
    await inbox.drain()
    assert channel.delivered == []


async def test_event_left_processing_by_a_dead_worker_is_answered_after_restart(
    runtime: Runtime, channel: CollectingChannel
) -> None:
    dead = Inbox(runtime.sessions, runtime.engine, {"test": channel}, worker_id="dead")
    dead.accept("test", [event("e1", "u1", "児童手当はいつ振り込まれますか")])
    with transaction(runtime.sessions) as s:
        from storage import queue

        claimed = queue.claim_event(s, worker="dead")
        assert claimed is not None
        s.execute(update(InboundEvent).values(claimed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)))
    fresh = Inbox(runtime.sessions, runtime.engine, {"test": channel}, stale_after=dt.timedelta(minutes=2))
    await fresh.drain()
    assert channel.delivered == []  # still held by the dead worker's claim
    assert fresh.recover() == 1
    await fresh.drain()
    assert len(channel.delivered) == 1


async def test_a_failing_event_is_retried_then_given_up(runtime: Runtime, channel: CollectingChannel) -> None:
    inbox = Inbox(runtime.sessions, runtime.engine, {"test": channel}, max_attempts=2)
    inbox.accept("test", [IncomingEvent("bad", "test:u1", "{not json")])
    await inbox.drain()
    with runtime.sessions() as s:
        (row,) = s.exec(select(InboundEvent))
    assert row.status == EventStatus.FAILED and row.attempts == 2 and row.error == "JSONDecodeError"
    assert row.payload == ""


async def test_temporary_delivery_failure_is_retried_and_delivered_once(
    inbox: Inbox, channel: CollectingChannel, runtime: Runtime
) -> None:
    channel.failures.append(DeliveryError("429", retry=True, token_spent=True))
    inbox.accept("test", [event("e1", "u1", "キッズプラザの料金", token="tok")])
    await inbox.drain()
    assert len(channel.delivered) == 1
    assert channel.delivered[0].reply_token is None  # the spent token is not used again


async def test_permanent_failure_marks_the_staff_reply_failed(
    inbox: Inbox, channel: CollectingChannel, runtime: Runtime
) -> None:
    for text in ("相談員と話したい", "はい"):
        inbox.accept("test", [event(text, "u1", text)])
        await inbox.drain()
    with runtime.sessions() as s:
        (case,) = s.exec(select(Case))
    channel.failures.append(DeliveryError("400 bad request", retry=False))
    message_id = reply_to_parent(runtime.sessions, case_id=case.id or 0, text="担当です", staff="hanako")
    await inbox.drain()
    with runtime.sessions() as s:
        message = s.get(Message, message_id)
        out = s.exec(select(OutboundMessage).where(col(OutboundMessage.message_id) == message_id)).one()
    assert message is not None and message.delivery == "failed"
    assert out.status == EventStatus.FAILED and out.error == "400 bad request"


async def test_one_senders_events_are_processed_in_order(inbox: Inbox, channel: CollectingChannel) -> None:
    inbox.accept(
        "test",
        [event("a1", "a", "相談員と話したい"), event("b1", "b", "キッズプラザの料金"), event("a2", "a", "はい")],
    )
    await inbox.drain()
    kinds = [(d.recipient, d.replies[0].kind.value) for d in channel.delivered]
    assert kinds.index(("a", "consent")) < kinds.index(("a", "handoff"))


def test_two_workers_share_the_events_without_doubles(runtime: Runtime) -> None:
    if runtime.db.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL; SQLite deployments run one process")
    channel = CollectingChannel()
    feeder = Inbox(runtime.sessions, runtime.engine, {"test": channel})
    events = [event(f"e{i}", f"u{i % 7}", "キッズプラザの料金") for i in range(60)]
    feeder.accept("test", events)
    workers = [Inbox(runtime.sessions, runtime.engine, {"test": channel}, worker_id=f"w{i}") for i in range(2)]
    processed: dict[str, int] = {}

    def work(w: Inbox) -> None:
        n = 0
        while w.process_one():
            n += 1
        processed[w.worker_id] = n

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(processed.values()) == 60
    with runtime.sessions() as s:
        rows = list(s.exec(select(InboundEvent)))
        outs = list(s.exec(select(OutboundMessage)))
    assert {r.status for r in rows} == {"done"} and all(r.attempts == 1 for r in rows)
    assert len(outs) == 60

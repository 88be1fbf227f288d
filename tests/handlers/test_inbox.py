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
from handlers.types import DeliveryError, Parsed
from storage import queue
from storage.db import transaction
from storage.models import Case, EventStatus, InboundEvent, Message, OutboundMessage, utcnow
from tests.fakes.channel import CollectingChannel


def event(key: str, sender: str, text: str, **extra: object) -> IncomingEvent:
    payload = json.dumps({"sender": sender, "text": text, **extra})
    return IncomingEvent(key, f"test:{sender}", payload, text=text)  # the text, as a channel hands it for screening


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


@pytest.mark.postgres
def test_two_workers_share_the_events_without_doubles(runtime: Runtime) -> None:
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


# ----- review F10, F15, F3 (heartbeats) and the failed-delivery text


async def test_an_event_given_up_is_counted_for_staff(runtime: Runtime, channel: CollectingChannel) -> None:
    inbox = Inbox(runtime.sessions, runtime.engine, {"test": channel}, max_attempts=2)
    inbox.accept("test", [IncomingEvent("bad", "test:u1", "{not json"), event("good", "u2", "キッズプラザの料金")])
    await inbox.drain()
    with runtime.sessions() as s:
        assert queue.failed_event_count(s) == 1
        assert queue.failed_event_count(s, channel="line") == 0


async def test_a_failed_delivery_keeps_no_text(inbox: Inbox, channel: CollectingChannel, runtime: Runtime) -> None:
    channel.failures.append(DeliveryError("400 bad request", retry=False))
    inbox.accept("test", [event("e1", "u1", "キッズプラザの料金", token="tok")])
    await inbox.drain()
    with runtime.sessions() as s:
        (out,) = s.exec(select(OutboundMessage))
        assert queue.failed_delivery_count(s) == 1
    assert out.status == EventStatus.FAILED and out.error == "400 bad request"
    assert out.payload == "" and out.reply_token is None  # at once, not at the next purge


def _claim_order(inbox: Inbox) -> list[str]:
    order = []
    with transaction(inbox.sessions) as s:
        while (row := queue.claim_event(s, worker="w", after_sender=order[-1] if order else None)) is not None:
            order.append(row.sender_key)
            queue.finish_event(s, event_id=row.id or 0)
    return order


async def test_senders_take_turns_so_a_burst_delays_nobody_else(inbox: Inbox, channel: CollectingChannel) -> None:
    inbox.accept("test", [event(f"z{i}", "zz-burst", "キッズプラザの料金") for i in range(30)])
    inbox.accept("test", [event("a1", "aa-other", "キッズプラザの料金"), event("a2", "aa-other", "はい")])
    inbox.accept("test", [event("m1", "mm-third", "キッズプラザの料金")])
    order = _claim_order(inbox)
    a, m, z = "test:aa-other", "test:mm-third", "test:zz-burst"
    assert order[:6] == [a, m, z, a, z, z]
    assert len(order) == 33


async def test_the_inbox_loop_answers_another_sender_between_a_bursts_events(
    inbox: Inbox, channel: CollectingChannel
) -> None:
    inbox.accept("test", [event(f"z{i}", "burst", "キッズプラザの料金") for i in range(20)])
    inbox.accept("test", [event("late", "late", "キッズプラザの料金")])
    for _ in range(3):
        inbox.process_one()
        await inbox.deliver_one()
    assert "late" in [d.recipient for d in channel.delivered]


async def test_a_message_with_crisis_words_is_claimed_before_any_backlog(
    inbox: Inbox, channel: CollectingChannel, runtime: Runtime
) -> None:
    inbox.accept("test", [event(f"z{i}", "aaa-burst", "キッズプラザの料金") for i in range(40)])
    inbox.accept("test", [event("c1", "zzz-crisis", "子どもを叩いてしまいそうで怖い")])
    with runtime.sessions() as s:
        lanes = {r.event_key: r.lane for r in s.exec(select(InboundEvent))}
    assert lanes["c1"] == queue.CRISIS_LANE and lanes["z0"] == queue.NORMAL_LANE
    assert inbox.process_one()
    await inbox.deliver_one()
    assert [d.recipient for d in channel.delivered] == ["zzz-crisis"]
    assert channel.delivered[0].replies[0].kind.value == "urgent"


def _claimed_by(runtime: Runtime, worker: str, seconds_ago: float) -> None:
    with transaction(runtime.sessions) as s:
        for row in s.exec(select(InboundEvent)):
            row.status, row.claimed_by = EventStatus.PROCESSING, worker
            row.claimed_at = utcnow() - dt.timedelta(seconds=seconds_ago)
            s.add(row)


async def test_work_of_a_worker_whose_heartbeat_stopped_is_reclaimed_in_seconds(
    runtime: Runtime, channel: CollectingChannel
) -> None:
    live = Inbox(runtime.sessions, runtime.engine, {"test": channel}, dead_after=dt.timedelta(seconds=5))
    live.accept("test", [event("e1", "u1", "キッズプラザの料金")])
    _claimed_by(runtime, "killed-worker", seconds_ago=6)  # never beat again (or beat 6 s ago and died)
    assert live.beat() == 1  # stale_after (2 minutes) is far away: the missing heartbeat decides
    await live.drain()
    assert [d.recipient for d in channel.delivered] == ["u1"]


async def test_work_of_a_live_worker_is_left_alone(runtime: Runtime, channel: CollectingChannel) -> None:
    other = Inbox(runtime.sessions, runtime.engine, {"test": channel}, worker_id="busy-worker")
    other.beat()
    me = Inbox(runtime.sessions, runtime.engine, {"test": channel}, dead_after=dt.timedelta(seconds=5))
    me.accept("test", [event("e1", "u1", "キッズプラザの料金")])
    _claimed_by(runtime, "busy-worker", seconds_ago=6)
    assert me.beat() == 0 and me.recover() == 0
    await me.drain()
    assert channel.delivered == []


class TakenOverMidTurn(CollectingChannel):
    """While this worker parses its event, the event is declared dead and answered by another worker (a
    heartbeat that looked dead to the others)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.other: Inbox | None = None

    def parse_event(self, payload: str) -> Parsed:
        other, self.other = self.other, None
        if other is not None:
            with transaction(self.runtime.sessions) as s:
                assert queue.recover_dead(s, dead_after=dt.timedelta(0)) == 1
            assert other.process_one()
        return super().parse_event(payload)


async def test_a_worker_whose_event_was_taken_over_does_not_answer_it_too(runtime: Runtime) -> None:
    channel = TakenOverMidTurn(runtime)
    slow = Inbox(runtime.sessions, runtime.engine, {"test": channel}, worker_id="slow")
    channel.other = Inbox(runtime.sessions, runtime.engine, {"test": CollectingChannel()}, worker_id="other")
    slow.accept("test", [event("e1", "u1", "キッズプラザの料金")])
    assert slow.process_one()
    with runtime.sessions() as s:
        (row,) = s.exec(select(InboundEvent))
        outs = list(s.exec(select(OutboundMessage)))
    assert (row.status, row.claimed_by) == ("done", "other")
    assert len(outs) == 1  # one answer, from the worker that took the event over

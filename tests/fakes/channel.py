"""A collecting channel (as Rasa's CollectingOutputChannel): a fake at the edge that keeps what it was asked
to deliver, and fails the next deliveries on request."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from handlers.types import Capabilities, Delivery, DeliveryError, InboundMessage, Parsed


class CollectingChannel:
    name = "test"
    capabilities = Capabilities(
        channel="test",
        label="テスト",
        push=True,
        bulk=10,
        broadcast=False,
        reply_token=True,
        max_text=1000,
        max_label=20,
    )

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []
        self.bulk: list[tuple[list[str], str, str]] = []  # (recipients, text, key)
        self.failures: list[DeliveryError] = []  # raised by the next deliveries, in order
        self.lock = threading.Lock()

    @staticmethod
    def sender_key(external_id: str) -> str:
        return f"test:{external_id}"

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

    async def send_bulk(self, recipients: Sequence[str], text: str, *, lang: str, key: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        with self.lock:
            self.bulk.append((list(recipients), text, key))

    async def aclose(self) -> None:
        pass

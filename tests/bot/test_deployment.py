"""Another office deploys by configuration: its name, not the default one, is what parents see in a reply."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest

from bot.runtime import Runtime
from bot.settings import EmailSettings, Settings
from handlers.channels import build_channels
from handlers.channels.email import EmailAdapter, Thread
from handlers.inbox import Inbox
from handlers.types import Delivery, Reply, ReplyKind
from tests.fakes.mailservers import CONCIERGE, SMTPSink

PARENT = "parent@example.jp"
OTHER = {"ja": "みなと子育てプラザ", "en": "Minato Kids Plaza"}


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink(username="bot", password="smtp-secret").start()
    yield sink
    sink.stop()


def test_the_default_name_comes_from_the_kb(settings: Settings) -> None:
    assert settings.deployment_names() == {"ja": "はこだてキッズプラザ", "en": "Hakodate Kids Plaza"}
    other = settings.model_copy(update={"office_names": OTHER})
    assert (other.office_name("ja"), other.office_name("vi")) == ("みなと子育てプラザ", "Minato Kids Plaza")


async def test_a_reply_carries_the_configured_office_name(settings: Settings, runtime: Runtime, smtp: SMTPSink) -> None:
    email = EmailSettings(
        email_address=CONCIERGE,
        imap_host="127.0.0.1",  # the poller is built, never started
        imap_user="concierge",
        imap_password="imap-secret",  # type: ignore[arg-type]
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_user="bot",
        smtp_password="smtp-secret",  # type: ignore[arg-type]
        smtp_security="none",
        email_max_replies_per_hour=0,
    )
    configured = settings.model_copy(update={"office_names": OTHER, "email": email})
    plugins = build_channels(configured, Inbox(runtime.sessions, runtime.engine, {}))
    [adapter] = [p.adapter for p in plugins if isinstance(p.adapter, EmailAdapter)]
    context = Thread(message_id="<p1@example.jp>", subject="開館時間", address=PARENT, lang="ja").to_json()
    answer = Reply(ReplyKind.ANSWER, "開館時間は10時から17時です。")
    await adapter.deliver(Delivery(recipient=PARENT, replies=[answer], retry_key="k-1", context=context))
    (mail,) = await smtp.wait_for(1)
    sender = str(make_header(decode_header(str(mail.message["From"].addresses[0].display_name))))
    assert sender.replace(" ", "") == "みなと子育てプラザ子育て支援コンシェルジュ"
    assert "みなと子育てプラザ 子育て支援コンシェルジュの自動応答です" in mail.text
    assert "はこだて" not in mail.text and "はこだて" not in sender
    for plugin in plugins:
        if plugin.close is not None:
            await plugin.close()

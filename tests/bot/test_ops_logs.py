"""Logs of a full LINE dialog (webhook → answer → handoff → consent → message → staff reply) hold none of the
texts or ids it sent, one line per event, each request's lines carrying its request id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import JsonFormatter, RequestIdFilter, TextFormatter, configure, formatter
from bot.runtime import Runtime
from bot.settings import LogSettings, Settings
from tests.bot.ops_kit import full_dialog, line_app, line_settings
from tests.fakes.line_api import FakeLineAPI


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Everything logged, at INFO (the production level) and DEBUG for our own loggers, in both formats."""
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = []
    for out, fmt in ((json_out, JsonFormatter()), (text_out, TextFormatter())):
        handler = logging.StreamHandler(out)
        handler.setFormatter(fmt)
        handler.addFilter(RequestIdFilter())
        handlers.append(handler)
    root, ours = logging.getLogger(), logging.getLogger("concierge")
    levels = root.level, ours.level
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    for h in handlers:
        root.addHandler(h)
    yield json_out, text_out
    for h in handlers:
        root.removeHandler(h)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


async def test_a_full_dialog_leaves_no_personal_data_in_the_logs(
    settings: Settings, runtime: Runtime, fake: FakeLineAPI, captured: tuple[io.StringIO, io.StringIO]
) -> None:
    json_out, text_out = captured
    async with line_app(line_settings(settings, fake), runtime) as (_, http):
        sent = await full_dialog(http, fake, runtime)
        await http.get("/healthz", headers={"x-request-id": "probe-123"})
        await http.get("/healthz", headers={"x-request-id": "bad id\nwith newline"})
    logged_json, logged_text = json_out.getvalue(), text_out.getvalue()
    assert logged_json and logged_text
    for secret in sent.secrets:
        assert secret not in logged_json, secret
        assert secret not in logged_text, secret
        assert json.dumps(secret, ensure_ascii=False)[1:-1] not in logged_json
    lines = [json.loads(line) for line in logged_json.splitlines()]  # every line is one JSON object
    access = [line for line in lines if line["logger"] == "concierge.http"]
    webhook_lines = [line for line in access if "/webhooks/line" in line["msg"]]
    assert len(webhook_lines) == 4
    assert [line["request_id"] for line in webhook_lines] == sent.request_ids
    assert all(line["msg"].startswith("POST /webhooks/line 200 ") for line in webhook_lines)
    assert any(line["request_id"] == "probe-123" for line in access)
    assert "bad id" not in logged_json  # a malformed caller id is replaced, not logged
    assert len(logged_text.splitlines()) == len(lines)


def test_an_exception_is_logged_by_class_and_place_only() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(LogSettings(format="json")))
    handler.addFilter(RequestIdFilter())
    log = logging.getLogger("concierge.test-ops")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("parent wrote: 090-1234-5678\nsecond line")
        except ValueError:
            log.exception("delivery %s failed", 17)
        text = TextFormatter()
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "multi\nline", None, None)
        assert "\n" not in text.format(record)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    (line,) = out.getvalue().splitlines()
    obj = json.loads(line)
    assert obj["msg"] == "delivery 17 failed" and obj["exc"] == "ValueError"
    assert "test_ops_logs.py" in obj["stack"] and "090" not in line


def test_configure_sends_one_json_line_per_event_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root, access, server = logging.getLogger(), logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn.error")
    server.setLevel(logging.WARNING)  # as an earlier uvicorn.Config(log_level="warning") leaves it
    saved = list(root.handlers), root.level, access.disabled, access.propagate
    try:
        configure(LogSettings(format="json", level="info"))
        logging.getLogger("concierge.test-ops").info("event %s done\nsecond line", 7)
        logging.getLogger("uvicorn.error").info("started")
        logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET /cases?q=x HTTP/1.1" 200')
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        access.disabled, access.propagate = saved[2], saved[3]
        server.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]  # all JSON, one per line
    ours = [line for line in lines if line["logger"] in ("concierge.test-ops", "uvicorn.error", "uvicorn.access")]
    assert [(line["logger"], line["msg"]) for line in ours] == [
        ("concierge.test-ops", "event 7 done\nsecond line"),
        ("uvicorn.error", "started"),
    ]
    assert ours[0]["request_id"] == "-"

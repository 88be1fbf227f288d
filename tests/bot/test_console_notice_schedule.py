"""Recurring notices are chosen with a picker (毎週 on these days / 毎月 on this day, at a time); the crontab the
scheduler runs is made from it, read back into it, and described in Japanese; cron stays available (詳細)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from bot.console.notices import Draft, describe_cron, picked_cron, picker_fields

TZ = ZoneInfo("Asia/Tokyo")
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


def draft(**fields: str | list[str]) -> Draft:
    items: list[tuple[str, str]] = [
        ("title", "園庭開放"),
        ("text_ja", "今週も園庭開放があります"),
        ("topic", "general"),
    ]
    items.append(("kind", "recurring"))
    for key, value in fields.items():
        items += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return Draft.from_form(FormData(items))


def test_the_picker_makes_the_crontab() -> None:
    assert picked_cron("weekly", ("3", "1"), "1", "09:30") == "30 9 * * 1,3"
    assert picked_cron("weekly", ("0", "6"), "1", "10:00") == "0 10 * * 6,0"  # Monday first, Sunday last
    assert picked_cron("monthly", (), "15", "10:00") == "0 10 15 * *"
    assert picked_cron("weekly", (), "1", "10:00") is None  # no day chosen
    assert picked_cron("monthly", (), "31", "10:00") is None  # not every month has it
    assert picked_cron("weekly", ("1",), "1", "25:00") is None


def test_a_crontab_is_read_back_into_the_picker_and_described() -> None:
    assert picker_fields("30 9 * * 1,3") == {"at_time": "09:30", "repeat": "weekly", "weekdays": ("1", "3")}
    assert picker_fields("0 10 15 * *") == {"at_time": "10:00", "repeat": "monthly", "monthday": "15"}
    assert picker_fields("*/5 * * * *") == {"repeat": "cron"}
    assert describe_cron("30 9 * * 1,3") == "毎週月・水曜 09:30"
    assert describe_cron("0 10 1 * *") == "毎月1日 10:00"
    assert describe_cron("0 10 1 1 *") == "cron「0 10 1 1 *」"


def test_the_form_stores_the_picked_schedule_and_keeps_cron_behind_details() -> None:
    values = draft(repeat="weekly", weekday=["2", "4"], at_time="10:00").values(tz=TZ, now=NOW, forced_approval=True)
    assert values is not None and values["cron"] == "0 10 * * 2,4"
    values = draft(repeat="monthly", monthday="1", at_time="09:00").values(tz=TZ, now=NOW, forced_approval=True)
    assert values is not None and values["cron"] == "0 9 1 * *"
    values = draft(repeat="cron", cron="0 10 1 1,7 *").values(tz=TZ, now=NOW, forced_approval=True)
    assert values is not None and values["cron"] == "0 10 1 1,7 *"
    refused = draft(repeat="weekly", at_time="10:00")
    assert refused.values(tz=TZ, now=NOW, forced_approval=True) is None
    assert any("曜日を1つ以上" in e for e in refused.errors)

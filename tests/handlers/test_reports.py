"""Monthly statistics from the anonymous counters, on SQLite and PostgreSQL: month bounds in Japan time, open
days from the office hours, the 5-per-day measure, breakdowns, after-hours share, first human reply, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlmodel import select

from handlers.hours import OfficeHours
from handlers.lifecycle import Retention, purge_records
from handlers.reports import count_first_reply, month_report, open_days, previous_month, render_text, to_csv
from storage import crud
from storage.db import SessionFactory, transaction
from storage.models import Basis, Case, CaseStatus, utcnow

JST = dt.timezone(dt.timedelta(hours=9))
WEEKDAYS = OfficeHours(days=(0, 1, 2, 3, 4), closed_dates=frozenset({dt.date(2026, 11, 3)}))
AFTER = dt.datetime(2026, 12, 15, tzinfo=dt.UTC)  # "now": November is over


def _event(
    s,
    at: dt.datetime,
    outcome: str,
    *,
    topic: str | None = None,
    channel: str = "line",
    lang: str = "ja",
    after_hours: bool = False,
) -> None:  # type: ignore[no-untyped-def]
    crud.count_event(s, channel=channel, outcome=outcome, lang=lang, topic=topic, after_hours=after_hours, at=at)


def test_open_days_follow_the_office_hours() -> None:
    # November 2026: 21 weekdays, one of them (3 Nov) closed.
    assert open_days(WEEKDAYS, dt.date(2026, 11, 1), dt.date(2026, 12, 1)) == 20
    assert open_days(OfficeHours(), dt.date(2026, 11, 1), dt.date(2026, 12, 1)) == 30
    assert previous_month(dt.date(2027, 1, 1)) == "2026-12"


def test_month_report_counts_the_month_in_japan_time(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        _event(s, dt.datetime(2026, 10, 31, 23, 30, tzinfo=JST), "answer")  # October in Japan
        _event(
            s, dt.datetime(2026, 10, 31, 15, 30, tzinfo=dt.UTC), "answer", topic="child_allowance"
        )  # 1 Nov 00:30 JST
        for day in range(2, 30):
            at = dt.datetime(2026, 11, day, 11, 0, tzinfo=JST)
            _event(s, at, "answer", topic="child_allowance")
            _event(s, at, "answer", topic="vaccinations", channel="email", lang="en", after_hours=day % 2 == 0)
            _event(s, at, "clarify")
            _event(s, at, "fallback", after_hours=True)
        _event(s, dt.datetime(2026, 11, 5, 20, 0, tzinfo=JST), "handoff", topic="parenting_worries", after_hours=True)
        _event(s, dt.datetime(2026, 11, 6, 10, 0, tzinfo=JST), "urgent", topic="abuse")
        _event(s, dt.datetime(2026, 11, 6, 10, 5, tzinfo=JST), "consent_declined")
        _event(s, dt.datetime(2026, 12, 1, 0, 0, tzinfo=JST), "answer")  # December
        report = month_report(s, month="2026-11", office_hours=WEEKDAYS, daily_target=5, now=AFTER)

    assert report.month == "2026-11" and not report.partial and report.open_days == 20
    assert report.consultations == 1 + 28 * 4 + 2
    assert report.per_open_day == report.consultations / 20 and report.meets_target
    assert report.handed_to_person == 2
    assert report.by_outcome == {
        "answer": 57,
        "clarify": 28,
        "fallback": 28,
        "consent_declined": 1,
        "handoff": 1,
        "urgent": 1,
    }
    assert report.by_channel == {"line": 87, "email": 28}
    assert report.by_lang == {"ja": 87, "en": 28}
    assert report.by_topic["(none)"] == 56 and report.by_topic["child_allowance"] == 29
    assert report.after_hours == 14 + 28 + 1
    assert round(report.after_hours_share, 3) == round(43 / 115, 3)
    assert report.first_reply is None


def test_a_month_in_progress_counts_open_days_so_far(sessions: SessionFactory) -> None:
    now = dt.datetime(2026, 11, 10, 12, 0, tzinfo=JST)
    with transaction(sessions) as s:
        _event(s, dt.datetime(2026, 11, 9, 11, 0, tzinfo=JST), "answer")
        report = month_report(s, month="2026-11", office_hours=WEEKDAYS, daily_target=5, now=now)
        future = month_report(s, month="2027-01", office_hours=WEEKDAYS, now=now)
    assert report.partial and report.open_days == 6  # 2, 4, 5, 6, 9, 10 November (3rd closed)
    assert not report.meets_target
    assert future.open_days == 0 and future.per_open_day == 0.0


def test_first_human_reply_is_counted_once_per_case_and_survives_disposal(sessions: SessionFactory) -> None:
    opened = dt.datetime(2026, 11, 20, 21, 0, tzinfo=JST)  # after hours
    with transaction(sessions) as s:
        contact = crud.get_or_create_contact(s, channel="line", external_id="U1")
        cases = []
        for minutes in (30, 90, 600):
            case = crud.create_case(s, contact=contact, lang="ja", topic="parenting_worries")
            case.created_at = opened
            s.add(case)
            assert count_first_reply(s, case=case, now=opened + dt.timedelta(minutes=minutes), office_hours=WEEKDAYS)
            crud.add_message(s, case=case, direction="out", author="staff:sato", text="お返事", basis=Basis.CONSENT)
            assert not count_first_reply(s, case=case, now=opened + dt.timedelta(minutes=minutes + 5))
            cases.append(case)
        for case in cases:
            crud.set_case_status(s, case=case, status=CaseStatus.RESOLVED)
            case.resolved_at = opened - dt.timedelta(days=6 * 365)
            s.add(case)
    purge_records(sessions, retention=Retention(), notice_version="2026-11", now=utcnow())
    with sessions() as s:
        assert list(s.exec(select(Case))) == []
        report = month_report(s, month="2026-11", office_hours=WEEKDAYS, now=AFTER)
    fr = report.first_reply
    assert fr is not None and (fr.count, fr.median_minutes, fr.p90_minutes) == (3, 90.0, 600.0)
    assert fr.mean_minutes == 240.0
    assert report.consultations == 0 and "first_reply" not in report.by_outcome


def test_csv_and_text(sessions: SessionFactory) -> None:
    with transaction(sessions) as s:
        _event(s, dt.datetime(2026, 11, 2, 11, 0, tzinfo=JST), "answer", topic="child_allowance")
        _event(s, dt.datetime(2026, 11, 2, 19, 0, tzinfo=JST), "handoff", after_hours=True)
        report = month_report(s, month="2026-11", office_hours=WEEKDAYS, now=AFTER)
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["section", "key", "value"]
    table = {(section, key): value for section, key, value in rows[1:]}
    assert table[("summary", "consultations")] == "2" and table[("summary", "open_days")] == "20"
    assert table[("summary", "consultations_per_open_day")] == "0.10" and table[("summary", "meets_target")] == "no"
    assert table[("summary", "after_hours_share")] == "0.500"
    assert table[("outcome", "handoff")] == "1" and table[("topic", "child_allowance")] == "1"
    assert table[("first_reply", "count")] == "0"
    text = render_text(report)
    assert "2026年11月" in text and "1開館日あたり 0.1件" in text and "相談員へ 1" in text


def test_month_must_be_yyyy_mm(sessions: SessionFactory) -> None:
    with sessions() as s:
        for bad in ("2026-13", "11-2026", "2026/11", "x"):
            try:
                month_report(s, month=bad, office_hours=WEEKDAYS)
            except ValueError:
                continue
            raise AssertionError(bad)


def test_the_month_counts_questions_not_answered_and_the_helpful_rate_per_entry(sessions: SessionFactory) -> None:
    from storage import feedback

    hours = OfficeHours()
    at = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)
    with transaction(sessions) as s:
        for question in (
            "ベビーカーを借りられる場所は",
            "ベビーカーを借りられる場所はありますか",
            "公園の遊具が壊れています",
        ):
            feedback.add(s, kind="fallback", question=question, channel="line", lang="ja", at=at)
        feedback.add(s, kind="unhelpful", question="駐車場は何台", channel="line", lang="ja", entry_id="e1", at=at)
        feedback.add(
            s, kind="fallback", question="先月の質問", channel="line", lang="ja", at=at - dt.timedelta(days=30)
        )
        for helpful in (True, True, False):
            feedback.vote(s, entry_id="e1", helpful=helpful, channel="line", lang="ja", at=at)
        feedback.vote(s, entry_id="e2", helpful=False, channel="line", lang="ja", at=at)
    with sessions() as s:
        report = month_report(s, month="2026-11", office_hours=hours, now=at)
    assert report.unanswered == 4 and report.unanswered_by_kind == {"fallback": 3, "unhelpful": 1}
    assert report.unanswered_top[0][1] == 2 and "ベビーカー" in report.unanswered_top[0][0]
    rates = {v.entry_id: (v.helpful, v.unhelpful, v.rate) for v in report.helpful}
    assert rates == {"e1": (2, 1, 2 / 3), "e2": (0, 1, 0.0)}
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert ["unanswered", "count", "4"] in rows and ["helpful_rate", "e1", "0.667"] in rows
    assert ["helpful_up", "e1", "2"] in rows and ["helpful_down", "e2", "1"] in rows
    text = render_text(report)
    assert "答えられなかった質問：4件" in text and "e1 67%（👍2 👎1）" in text

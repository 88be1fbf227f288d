"""/reports: the monthly statistics of `handlers.reports` (anonymous counters only) as a page with server-side
SVG bar charts (no script, no CDN: the console runs without internet), and the same CSV as `concierge report`.

Roles: the supervisor and the auditor (read-only by nature: the figures are anonymous counts). Concierges and
assistants do not see it; the role model gives reports to the supervisor, and the auditor reads what the
supervisor reads, as on /records. Every view and every CSV download is audited (record type "report").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from bot.console import labels
from bot.console.core import SECURITY_HEADERS, Authed, ConsoleDep, NotFoundError, require
from bot.console.views import topic_label
from bot.deps import RuntimeDep
from handlers.hours import OfficeHours
from handlers.reports import (
    CONSULTATION_OUTCOMES,
    FEEDBACK_KIND_JA,
    NO_TOPIC,
    OUTCOME_JA,
    MonthReport,
    month_bounds,
    month_report,
    parse_month,
    to_csv,
)
from storage import crud
from storage import staff as staffdb
from storage.db import transaction
from storage.models import utcnow
from storage.staff import Role

router = APIRouter()
Reader = Annotated[Authed, Depends(require(Role.SUPERVISOR, Role.AUDITOR))]
RECORD_TYPE = "report"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: float  # share of the chart's bar area, 0..100
    y: int  # row offset in the SVG


@dataclass(frozen=True)
class Day:
    date: dt.date
    value: int
    open: bool
    height: float  # 0..100 of the plot height
    x: int


ROW = 26
DAY_WIDTH = 20
PLOT_HEIGHT = 140


def bars(table: dict[str, int], names: dict[str, str] | None = None, *, limit: int = 12) -> list[Bar]:
    """Rows of a horizontal bar chart, scaled to the largest value."""
    items = list(table.items())[:limit]
    top = max((n for _, n in items), default=0) or 1
    return [
        Bar(label=(names or {}).get(key, key), value=n, width=round(100 * n / top, 1), y=i * ROW)
        for i, (key, n) in enumerate(items)
    ]


def daily_counts(
    session: Session, *, month: str, office_hours: OfficeHours, target: int, now: dt.datetime
) -> tuple[list[Day], float]:
    """Consultations per calendar day (the same outcomes the report counts), for the 5-per-day chart; returns
    the days and the y of the target line (0..100 of the plot height)."""
    start, end = month_bounds(month, office_hours.tz)
    stamps = crud.stat_times(session, since=start, until=end, outcomes=CONSULTATION_OUTCOMES)
    per_day = Counter(at.astimezone(office_hours.tz).date() for at in stamps)
    today = now.astimezone(office_hours.tz).date()
    top = max([target, *per_day.values()]) or 1
    days: list[Day] = []
    day = start.date()
    while day < end.date():
        is_open = day <= today and office_hours.is_open(
            dt.datetime.combine(day, office_hours.opens, tzinfo=office_hours.tz)
        )
        n = per_day.get(day, 0)
        days.append(Day(date=day, value=n, open=is_open, height=round(100 * n / top, 1), x=(day.day - 1) * DAY_WIDTH))
        day += dt.timedelta(days=1)
    return days, round(100 * target / top, 1)


def _month(value: str | None, tz: dt.tzinfo) -> tuple[str, str | None]:
    """The month asked for, or this month with an error message when the value is not YYYY-MM."""
    this = f"{dt.datetime.now(tz):%Y-%m}"
    if not value:
        return this, None
    try:
        year, mon = parse_month(value)
    except ValueError:
        return this, "月は YYYY-MM の形式で指定してください。"
    return f"{year:04d}-{mon:02d}", None


def _shift(month: str, delta: int) -> str:
    year, mon = parse_month(month)
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _build(rt: RuntimeDep, s: Session, month: str, office_hours: OfficeHours) -> MonthReport:
    normalizer = rt.matcher.normalize
    return month_report(
        s,
        month=month,
        office_hours=office_hours,
        daily_target=rt.settings.reports.daily_target,
        normalize=lambda text: normalizer(text).words or normalizer(text).cleaned,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    who: Reader,
    rt: RuntimeDep,
    console: ConsoleDep,
    month: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    hours = console.office_hours
    chosen, error = _month(month, hours.tz)
    now = utcnow()
    with transaction(rt.sessions) as s:
        report = _build(rt, s, chosen, hours)
        days, target_y = daily_counts(s, month=chosen, office_hours=hours, target=report.daily_target, now=now)
        staffdb.audit(s, actor=who.name, action="view", record_type=RECORD_TYPE, detail=f"month {chosen}")
    topics = {key: ("分野なし" if key == NO_TOPIC else topic_label(rt.kb, key)) for key in report.by_topic}
    year, mon = parse_month(chosen)
    gauge_top = max(report.per_open_day, float(report.daily_target)) * 1.25 or 1.0
    return console.render(
        request,
        "reports.html",
        error=error,
        report=report,
        month=chosen,
        year=year,
        mon=mon,
        prev=_shift(chosen, -1),
        next=_shift(chosen, 1),
        charts=[
            ("経路別", "channel", bars(report.by_channel, dict(labels.CHANNELS))),
            ("分野別（上位12）", "topic", bars(report.by_topic, topics)),
            ("結果別", "outcome", bars(report.by_outcome, OUTCOME_JA)),
            ("言語別", "lang", bars(report.by_lang, labels.LANGS)),
        ],
        row=ROW,
        days=days,
        day_width=DAY_WIDTH,
        plot_height=PLOT_HEIGHT,
        target_y=target_y,
        gauge_value=round(100 * report.per_open_day / gauge_top, 1),
        gauge_target=round(100 * report.daily_target / gauge_top, 1),
        feedback_kinds=FEEDBACK_KIND_JA,
        feedback_days=rt.settings.retention.feedback_days,
        entry_titles={v.entry_id: _entry_title(rt, v.entry_id) for v in report.helpful},
    )


def _entry_title(rt: RuntimeDep, entry_id: str) -> str:
    entry = rt.kb.entries.get(entry_id)
    if entry is None:
        return entry_id
    questions = entry.questions.get("ja") or next(iter(entry.questions.values()), [entry_id])
    return questions[0]


CSV_HEADER = ("区分", "項目", "値")
CSV_SECTIONS = {
    "summary": "概要",
    "first_reply": "最初の返信",
    "channel": "経路別",
    "topic": "分野別",
    "outcome": "結果別",
    "lang": "言語別",
    "unanswered": "答えられなかった質問",
    "unanswered_kind": "答えられなかった質問（種類別）",
    "unanswered_top": "答えられなかった質問（多いもの）",
    "helpful_up": "役に立った（👍）",
    "helpful_down": "役に立たなかった（👎）",
    "helpful_rate": "役に立った割合",
}
CSV_KEYS = {
    "month": "対象月",
    "partial_month": "月の途中まで",
    "open_days": "開館日数",
    "consultations": "相談件数",
    "consultations_per_open_day": "1開館日あたりの相談件数",
    "daily_target": "1日の目安件数",
    "meets_target": "目安以上",
    "handed_to_person": "相談員へつないだ件数",
    "after_hours": "時間外の件数",
    "after_hours_share": "時間外の割合",
    "count": "件数",
    "median_minutes": "中央値（分）",
    "p90_minutes": "90%値（分）",
    "mean_minutes": "平均（分）",
}
CSV_VALUES = {"yes": "はい", "no": "いいえ"}


def japanese_csv(text: str, kb: Any) -> str:
    """The CLI's long-format CSV with Japanese headers, sections, keys and code values for the console's
    download (the CLI keeps its English keys for scripts)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    writer.writerow(CSV_HEADER)
    for section, key, value in rows[1:]:
        if section == "channel":
            name = labels.CHANNELS.get(key, key)
        elif section == "topic":
            name = topic_label(kb, key) if key else "分野なし"
        elif section == "outcome":
            name = OUTCOME_JA.get(key, key)
        elif section == "lang":
            name = labels.LANGS.get(key, key)
        elif section == "unanswered_kind":
            name = FEEDBACK_KIND_JA.get(key, key)
        elif section in ("unanswered_top", "helpful_up", "helpful_down", "helpful_rate"):
            name = key  # a (redacted) question, or an entry id
        else:
            name = CSV_KEYS.get(key, key)
        writer.writerow([CSV_SECTIONS.get(section, section), name, CSV_VALUES.get(value, value)])
    return out.getvalue()


@router.get("/reports/{month}.csv")
def report_csv(who: Reader, rt: RuntimeDep, console: ConsoleDep, month: str) -> Response:
    """The CLI's CSV (`concierge report --csv`) in Japanese: long format, UTF-8 with BOM for spreadsheet software."""
    try:
        year, mon = parse_month(month)
    except ValueError:
        raise NotFoundError() from None
    chosen = f"{year:04d}-{mon:02d}"
    with transaction(rt.sessions) as s:
        report = _build(rt, s, chosen, console.office_hours)
        staffdb.audit(s, actor=who.name, action="export", record_type=RECORD_TYPE, detail=f"month {chosen}")
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="report-{chosen}.csv"'
    body = ("\ufeff" + japanese_csv(to_csv(report), rt.kb)).encode("utf-8")
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

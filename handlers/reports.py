"""Monthly statistics from the anonymous counters (`StatEvent`) only, so they hold after records are disposed of.

- consultations: every turn the service decided on (answer, clarify, fallback, handoff, urgent; the engine
  counts one per decision, so a clarification followed by a choice counts twice), and consultations per open
  day, the guideline's 5-per-day measure; open days come from the office hours;
- counts by channel, topic, outcome and language; the share that came in after hours;
- time to the first human reply, from anonymous `first_reply` counters that carry only a delay in seconds
  (`count_first_reply`, called where staff replies are queued);
- questions not answered (FAQ feedback kept in the month: count, by kind, the largest groups of similar
  questions) and the helpful rate per entry (👍 / (👍 + 👎) on 「役に立ちましたか？」). Feedback is kept 90
  days, so these figures exist for recent months only; the votes are anonymous counters and stay.

`month_report` builds the figures, `render_text` and `to_csv` present them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from sqlmodel import Session

from handlers.hours import OfficeHours
from knowledge.normalize import clean
from storage import crud
from storage import feedback as feedback_store
from storage.feedback import Votes, group_rows
from storage.models import Case, utcnow

CONSULTATION_OUTCOMES = ("answer", "clarify", "fallback", "handoff", "urgent", "distress")
PERSON_OUTCOMES = ("handoff", "urgent")
FIRST_REPLY = "first_reply"
NO_TOPIC = "(none)"

OUTCOME_JA = {
    "answer": "回答",
    "clarify": "候補を提示",
    "fallback": "回答できず",
    "handoff": "相談員へ",
    "urgent": "緊急",
    "distress": "つらさへの応答",  # crisis detection's distress: a kind reply and the offer of a person
    "consent_declined": "記録に同意せず",
}


FEEDBACK_KIND_JA = {
    "fallback": "答えられなかった",
    "clarify": "聞き返した",
    "unhelpful": "👎",
    "wrong": "回答のあと「違う」",
    "person": "回答のあと相談員を希望",
}


@dataclass(frozen=True)
class FirstReply:
    count: int
    median_minutes: float
    p90_minutes: float
    mean_minutes: float


@dataclass(frozen=True)
class MonthReport:
    month: str  # YYYY-MM
    open_days: int
    partial: bool  # the month is not over: open days are counted up to today
    consultations: int
    handed_to_person: int
    daily_target: int
    after_hours: int
    by_channel: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    first_reply: FirstReply | None = None
    unanswered: int = 0  # FAQ feedback kept in the month
    unanswered_by_kind: dict[str, int] = field(default_factory=dict)
    unanswered_top: list[tuple[str, int]] = field(default_factory=list)  # (newest question of a group, count)
    helpful: list[Votes] = field(default_factory=list)  # per entry, most votes first

    @property
    def per_open_day(self) -> float:
        return self.consultations / self.open_days if self.open_days else 0.0

    @property
    def meets_target(self) -> bool:
        return self.per_open_day >= self.daily_target

    @property
    def after_hours_share(self) -> float:
        return self.after_hours / self.consultations if self.consultations else 0.0


def parse_month(month: str) -> tuple[int, int]:
    try:
        year, mon = (int(part) for part in month.split("-"))
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    if not (1 <= mon <= 12 and 2000 <= year <= 2100):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return year, mon


def month_bounds(month: str, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[first day 00:00, next month's first day 00:00) in the office's time zone."""
    year, mon = parse_month(month)
    start = dt.datetime(year, mon, 1, tzinfo=tz)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return start, end


def previous_month(today: dt.date) -> str:
    first = today.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def open_days(hours: OfficeHours, start: dt.date, end: dt.date) -> int:
    """Days in [start, end) on which the concierge is open."""
    days, day = 0, start
    while day < end:
        days += hours.is_open(dt.datetime.combine(day, hours.opens, tzinfo=hours.tz))
        day += dt.timedelta(days=1)
    return days


def month_report(
    session: Session,
    *,
    month: str,
    office_hours: OfficeHours,
    daily_target: int = 5,
    now: dt.datetime | None = None,
    normalize: Callable[[str], str] | None = None,
    top_groups: int = 10,
) -> MonthReport:
    """`normalize`: a question's comparison form for grouping similar ones (the console passes the matcher's
    normaliser); without it the cleaned text is compared."""
    now = now or utcnow()
    start, end = month_bounds(month, office_hours.tz)
    today = now.astimezone(office_hours.tz).date()
    partial = today < end.date()
    counted_until = min(end.date(), today + dt.timedelta(days=1))
    days = open_days(office_hours, start.date(), counted_until) if start.date() <= today else 0
    rows = crud.stat_events(session, since=start, until=end)
    consult = [r for r in rows if r.outcome in CONSULTATION_OUTCOMES]
    delays = sorted(r.seconds for r in rows if r.outcome == FIRST_REPLY and r.seconds is not None)
    kept = feedback_store.unanswered(session, start=start, end=end)
    groups = group_rows(kept, key=normalize or clean, similar=_similar, threshold=SIMILAR_QUESTIONS)
    groups.sort(key=lambda g: -g.count)  # stable: among equal counts the newest group first
    return MonthReport(
        month=f"{start.year:04d}-{start.month:02d}",
        open_days=days,
        partial=partial,
        consultations=len(consult),
        handed_to_person=sum(1 for r in consult if r.outcome in PERSON_OUTCOMES),
        daily_target=daily_target,
        after_hours=sum(1 for r in consult if r.after_hours),
        by_channel=_ranked(Counter(r.channel for r in consult)),
        by_topic=_ranked(Counter(r.topic or NO_TOPIC for r in consult)),
        by_outcome=_ranked(Counter(r.outcome for r in rows if r.outcome != FIRST_REPLY)),
        by_lang=_ranked(Counter(r.lang for r in consult)),
        first_reply=_first_reply(delays),
        unanswered=len(kept),
        unanswered_by_kind=_ranked(Counter(r.kind for r in kept)),
        unanswered_top=[(g.newest.question, g.count) for g in groups[:top_groups]],
        helpful=feedback_store.counts_per_entry(session, start=start, end=end),
    )


SIMILAR_QUESTIONS = 75.0  # as the console's review page: questions this alike (0-100) share a group


def _similar(a: str, b: str) -> float:
    return float(fuzz.token_sort_ratio(a, b))


def _ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _first_reply(seconds: list[int]) -> FirstReply | None:
    if not seconds:
        return None
    minutes = [s / 60 for s in seconds]
    p90 = minutes[min(len(minutes) - 1, max(0, round(0.9 * len(minutes)) - 1))]
    return FirstReply(
        count=len(minutes),
        median_minutes=round(statistics.median(minutes), 1),
        p90_minutes=round(p90, 1),
        mean_minutes=round(statistics.fmean(minutes), 1),
    )


# ----- the first human reply


def count_first_reply(
    session: Session, *, case: Case, now: dt.datetime | None = None, office_hours: OfficeHours | None = None
) -> bool:
    """Call when staff reply on a case, before their message is added. On the case's first staff reply, count
    an anonymous `first_reply` (channel, topic, language, whether the case came in after hours, the delay since
    it opened); returns whether it counted."""
    assert case.id is not None
    if crud.has_staff_message(session, case_id=case.id):
        return False
    now = now or utcnow()
    crud.count_event(
        session,
        channel=case.channel,
        outcome=FIRST_REPLY,
        lang=case.lang,
        topic=case.topic,
        after_hours=office_hours is not None and not office_hours.is_open(case.created_at),
        at=now,
        seconds=max(0, int((now - case.created_at).total_seconds())),
    )
    return True


# ----- presentation


def to_csv(report: MonthReport) -> str:
    """Long format (section, key, value): one file for every month, easy to pivot in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "key", "value"])
    summary: list[tuple[str, object]] = [
        ("month", report.month),
        ("partial_month", "yes" if report.partial else "no"),
        ("open_days", report.open_days),
        ("consultations", report.consultations),
        ("consultations_per_open_day", f"{report.per_open_day:.2f}"),
        ("daily_target", report.daily_target),
        ("meets_target", "yes" if report.meets_target else "no"),
        ("handed_to_person", report.handed_to_person),
        ("after_hours", report.after_hours),
        ("after_hours_share", f"{report.after_hours_share:.3f}"),
    ]
    for key, value in summary:
        writer.writerow(["summary", key, value])
    fr = report.first_reply
    writer.writerow(["first_reply", "count", fr.count if fr else 0])
    if fr is not None:
        writer.writerow(["first_reply", "median_minutes", f"{fr.median_minutes:.1f}"])
        writer.writerow(["first_reply", "p90_minutes", f"{fr.p90_minutes:.1f}"])
        writer.writerow(["first_reply", "mean_minutes", f"{fr.mean_minutes:.1f}"])
    for section, table in (
        ("channel", report.by_channel),
        ("topic", report.by_topic),
        ("outcome", report.by_outcome),
        ("lang", report.by_lang),
    ):
        for key, n in table.items():
            writer.writerow([section, key, n])
    writer.writerow(["unanswered", "count", report.unanswered])
    for kind, n in report.unanswered_by_kind.items():
        writer.writerow(["unanswered_kind", kind, n])
    for question, n in report.unanswered_top:
        writer.writerow(["unanswered_top", question, n])
    for v in report.helpful:
        writer.writerow(["helpful_up", v.entry_id, v.helpful])
        writer.writerow(["helpful_down", v.entry_id, v.unhelpful])
        writer.writerow(["helpful_rate", v.entry_id, f"{v.rate:.3f}" if v.rate is not None else ""])
    return out.getvalue()


def render_text(report: MonthReport) -> str:
    year, mon = parse_month(report.month)
    lines = [f"{year}年{mon}月の統計（{report.month}）" + ("　※月の途中まで" if report.partial else "")]
    lines.append(f"開館日数：{report.open_days}日")
    mark = "目安以上" if report.meets_target else "目安未満"
    lines.append(
        f"相談件数：{report.consultations}件（1開館日あたり {report.per_open_day:.1f}件、"
        f"目安 {report.daily_target}件：{mark}）"
    )
    lines.append(f"うち相談員へ：{report.handed_to_person}件")
    lines.append(f"時間外の割合：{report.after_hours_share * 100:.1f}%（{report.after_hours}件）")
    fr = report.first_reply
    if fr is None:
        lines.append("最初の相談員の返信まで：記録なし")
    else:
        lines.append(
            f"最初の相談員の返信まで：{fr.count}件、中央値 {fr.median_minutes:.0f}分、"
            f"90%値 {fr.p90_minutes:.0f}分、平均 {fr.mean_minutes:.0f}分"
        )

    def table(title: str, values: dict[str, int], labels: dict[str, str] | None = None) -> None:
        parts = [f"{(labels or {}).get(k, k)} {n}" for k, n in values.items()]
        lines.append(f"{title}：" + (" / ".join(parts) if parts else "なし"))

    table("チャネル別", report.by_channel)
    table("話題別", report.by_topic)
    table("結果別", report.by_outcome, OUTCOME_JA)
    table("言語別", report.by_lang)
    lines.append(f"答えられなかった質問：{report.unanswered}件")
    table("　種類別", report.unanswered_by_kind, FEEDBACK_KIND_JA)
    for question, n in report.unanswered_top:
        lines.append(f"　「{question}」 {n}件")
    if report.helpful:
        lines.append("項目ごとの「役に立った」の割合：")
        for v in report.helpful:
            rate = f"{v.rate * 100:.0f}%" if v.rate is not None else "-"
            lines.append(f"　{v.entry_id} {rate}（👍{v.helpful} 👎{v.unhelpful}）")
    return "\n".join(lines) + "\n"

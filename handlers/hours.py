"""Office hours of the concierge: when a person can answer, and when the next opening is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS_EN_FULL = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class OfficeHours:
    """Open days (0 = Monday), opening and last-reception times, closing dates; public holidays optional."""

    timezone: str = "Asia/Tokyo"
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    opens: dt.time = dt.time(10, 0)
    closes: dt.time = dt.time(17, 0)  # last reception
    closed_dates: frozenset[dt.date] = field(default_factory=frozenset)
    closed_on_holidays: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _is_open_day(self, day: dt.date) -> bool:
        if day.weekday() not in self.days or day in self.closed_dates:
            return False
        return not (self.closed_on_holidays and day in holidays.country_holidays("JP", years=day.year))

    def is_open(self, at: dt.datetime) -> bool:
        local = at.astimezone(self.tz)
        return self._is_open_day(local.date()) and self.opens <= local.time() < self.closes

    def next_open(self, at: dt.datetime) -> dt.datetime | None:
        """The next moment a person answers (now if open), within a year."""
        local = at.astimezone(self.tz)
        if self.is_open(at):
            return local
        day = local.date()
        if local.time() >= self.opens:
            day += dt.timedelta(days=1)
        for _ in range(366):
            if self._is_open_day(day):
                return dt.datetime.combine(day, self.opens, tzinfo=self.tz)
            day += dt.timedelta(days=1)
        return None

    def describe(self, lang: str) -> str:
        o, c = self.opens.strftime("%H:%M"), self.closes.strftime("%H:%M")
        return f"{o}〜{c}" if lang == "ja" else f"{o}-{c}"  # the texts say what the hours are for


def format_when(moment: dt.datetime, lang: str) -> str:
    if lang == "ja":
        return f"{moment.month}月{moment.day}日({WEEKDAYS_JA[moment.weekday()]}) {moment:%H:%M}"
    return f"{WEEKDAYS_EN[moment.weekday()]} {moment.day} {MONTHS_EN[moment.month - 1]}, {moment:%H:%M}"


def format_date(day: dt.date, lang: str) -> str:
    """A date as a parent reads it: 2026年11月26日, 26 November 2026 (never an ISO date)."""
    if lang == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {MONTHS_EN_FULL[day.month - 1]} {day.year}"

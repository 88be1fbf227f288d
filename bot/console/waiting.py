"""How long a parent has waited, counted in office hours against the first-reply target."""

from __future__ import annotations

import datetime as dt

from handlers.hours import OfficeHours

MAX_DAYS = 62  # beyond two months the exact office-hours count stops mattering


def office_minutes(hours: OfficeHours, start: dt.datetime, end: dt.datetime) -> int:
    """Minutes between `start` and `end` that fall within office hours."""
    if end <= start:
        return 0
    tz = hours.tz
    s, e = start.astimezone(tz), end.astimezone(tz)
    day, last = s.date(), e.date()
    if (last - day).days > MAX_DAYS:
        day = last - dt.timedelta(days=MAX_DAYS)
    total = 0.0
    while day <= last:
        opens = dt.datetime.combine(day, hours.opens, tzinfo=tz)
        closes = dt.datetime.combine(day, hours.closes, tzinfo=tz)
        if closes > opens and hours.is_open(opens):
            lo, hi = max(opens, s), min(closes, e)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += dt.timedelta(days=1)
    return int(total // 60)


def sla_state(office_waited: int | None, target: int) -> str:
    """ok / soon (three quarters of the target used) / over / none (nobody waits for us)."""
    if office_waited is None:
        return "none"
    if office_waited >= target:
        return "over"
    if office_waited >= target * 0.75:
        return "soon"
    return "ok"

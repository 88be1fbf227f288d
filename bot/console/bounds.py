"""Bounds for what staff type or put in a URL: numbers that fit the database's integer columns and dates in
years the calendar arithmetic can handle. Out of range is the client's mistake (400), never a 500.

`checked_params` is a dependency on every console route: it looks at every path and query parameter, so a new
route is covered without declaring anything. Form values go through `in_years` / `fits_int` where they are read.
"""

from __future__ import annotations

import datetime as dt
import re

from fastapi import Request

MAX_INT = 2**31 - 1  # PostgreSQL `integer`: the narrowest id column behind a console parameter
FIRST_YEAR, LAST_YEAR = 1900, 2200  # dates of cases, records, slots and notices; a week or month away from
# either end stays inside datetime's years 1..9999
_INT = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"([+-]?\d+)-\d+(?:-\d+)?(?:[T ].*)?", re.DOTALL)


class BadValueError(Exception):
    """A parameter out of range (answered 400 by bot/hardening.py)."""


def fits_int(value: int) -> bool:
    return -MAX_INT <= value <= MAX_INT


def in_years(value: dt.date | dt.datetime) -> bool:
    return FIRST_YEAR <= value.year <= LAST_YEAR


def in_range(raw: str) -> bool:
    """False for an integer past MAX_INT or a date-like value (YYYY-MM...) whose year is out of bounds."""
    value = raw.strip()
    if _INT.fullmatch(value):
        return len(value) <= 12 and fits_int(int(value))
    date = _DATE.fullmatch(value)
    if date is not None:
        year = date.group(1)
        return len(year) <= 5 and FIRST_YEAR <= int(year) <= LAST_YEAR
    return True


def checked_params(request: Request) -> None:
    """The dependency: every path and query parameter within bounds."""
    for value in (*request.path_params.values(), *request.query_params.values()):
        if not in_range(str(value)):
            raise BadValueError()

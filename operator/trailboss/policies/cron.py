"""When a cron schedule fires: the schedules `spec.retraining.schedule` accepts
(`trailboss.api.fields.CRON`), read the way a Kubernetes CronJob reads them, so a
schedule means the same here as it would on a CronJob.

Five fields, minute hour day-of-month month day-of-week, each a comma list of
`*`, `?`, `N` or `N-M`, any of them with `/step`; JAN-DEC and SUN-SAT in any case;
day-of-week 0-7 with both 0 and 7 Sunday; or one of the macros @yearly (@annually),
@monthly, @weekly, @daily (@midnight) and @hourly.

- `*/n` counts from the field's lowest value, `N/n` from N up to the field's highest.
- Day-of-month and day-of-week combine as in Vixie cron and robfig/cron (which
  Kubernetes uses): when both are restricted a day matches if EITHER does
  (`0 0 13 * 5` is every 13th and every Friday); when either is `*` or `?` (with no
  step, or step 1) both must match, which means the other one alone decides.
- A schedule is read in a time zone (UTC unless told); see `Schedule.fire_at` for
  what happens to wall-clock times that daylight saving time skips or repeats.

croniter expands the fields into the values they allow; this module checks each
term against the API's own pattern first (croniter also reads syntax the API
refuses, such as `L` and `#`, and reads a reversed range as wrapping around), and
owns the day rule and the time-zone search. No clock of its own; callers pass `now`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from trailboss.api.fields import CRON, CRON_TERMS

HORIZON_DAYS = 5 * 366
"""How many local days previous_fire and next_fire search either side of `now`: five
years, so a `0 0 29 2 *` schedule always finds its last (or next) February 29."""

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The macros the API accepts, as the five fields they stand for (as in robfig/cron)."""

_FORMAT = (
    "write five fields, minute hour day-of-month month day-of-week (e.g. `0 3 * * 1`), "
    "or one of @hourly, @daily, @weekly, @monthly, @yearly"
)


@dataclass(frozen=True)
class _Field:
    """One of the five fields: what `*` means and how a user writes a valid value."""

    number: int
    name: str
    every: frozenset[int]
    """The values of `*`: day-of-week's 7 is just another way to write Sunday (0)."""
    rule: str
    """What a valid value is, for error messages."""

    @property
    def term(self) -> str:
        """The API's pattern for one comma-separated term of this field."""
        return CRON_TERMS[self.number - 1]


_FIELDS = (
    _Field(1, "minute", frozenset(range(60)), "minutes are 0-59"),
    _Field(2, "hour", frozenset(range(24)), "hours are 0-23"),
    _Field(3, "day-of-month", frozenset(range(1, 32)), "days of the month are 1-31"),
    _Field(4, "month", frozenset(range(1, 13)), "months are 1-12 or JAN-DEC"),
    _Field(
        5,
        "day-of-week",
        frozenset(range(7)),
        "days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT",
    ),
)
_STEP = re.compile(r"[1-9][0-9]?")


def _error(field: _Field, text: str, reason: str) -> ValueError:
    return ValueError(f"cron field {field.number} ({field.name}) {text!r}: {reason}")


def _number(field: _Field, text: str) -> int:
    """A value already checked against the field's pattern, names as numbers (JAN 1, SUN 0)."""
    if text.isdigit():
        return int(text)
    names = croniter.ALPHACONV[3] if field.number == 4 else croniter.ALPHACONV[4]
    return names[text.lower()]


def _check_term(field: _Field, term: str) -> bool:
    """ValueError naming ``term`` and how to write it, unless the API accepts it and
    its range (if any) runs from low to high; whether it is a bare `*` or `?` (step 1
    at most), which leaves the field unrestricted for the day-of-month/day-of-week rule."""
    base, slash, step = term.partition("/")
    if slash and not _STEP.fullmatch(step):
        raise _error(field, term, "a step is a whole number from 1 to 99, e.g. */15")
    if not re.fullmatch(field.term, term):
        reason = field.rule if base else f"{field.rule}; separate values with single commas"
        raise _error(field, term, reason)
    first, dash, last = base.partition("-")
    if dash and _number(field, first) > _number(field, last):
        raise _error(field, term, "a range runs from low to high, e.g. 1-5")
    return base in ("*", "?") and step in ("", "1")


def _croniter_term(field: _Field, term: str) -> str:
    """``term``, checked, written so croniter reads it as robfig/cron does:
    - `?` is `*` (croniter refuses `?/n`);
    - `N-N` is `N` (croniter reads a range that ends where it starts as wrapping
      all the way round, every value);
    - day-of-week `7/n` is only Sunday (`N/n` runs up to the field's highest value,
      and 7 already is; croniter reads it as `0/n`)."""
    base, slash, step = term.replace("?", "*").partition("/")
    first, dash, last = base.partition("-")
    if dash and _number(field, first) == _number(field, last):
        base, slash = first, ""  # one value: a step has nothing to step over
    if field.number == 5 and base == "7":
        slash = ""
    return f"{base}{slash}{step}" if slash else base


def _values(expanded: Sequence[int | str], field: _Field) -> frozenset[int]:
    """croniter's expansion of a field as the set of values it allows (croniter
    already reads day-of-week 7 as 0)."""
    if "*" in expanded:
        return field.every
    return frozenset(value for value in expanded if isinstance(value, int))


@dataclass(frozen=True)
class Schedule:
    """A parsed cron schedule: the values each field allows, in local wall-clock terms.

    Frozen and hashable so parsed schedules can be cached and compared; `minutes`
    and `hours` are sorted tuples because the search walks them in order."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    """0 is Sunday ... 6 Saturday; a 7 in the expression is stored as 0."""
    either_day: bool
    """True when both day fields are restricted: a day then matches if either does."""

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """The schedule `expression` stands for; ValueError naming the field that is
        wrong and how to write it, so the message can go straight to the user."""
        return _parse(expression)

    def day_matches(self, day: dt.date) -> bool:
        """Whether the schedule fires at some time of `day` (a local calendar date)."""
        if day.month not in self.months:
            return False
        by_month = day.day in self.days_of_month
        by_week = day.isoweekday() % 7 in self.days_of_week
        return (by_month or by_week) if self.either_day else (by_month and by_week)

    def fire_at(self, day: dt.date, hour: int, minute: int, zone: dt.tzinfo) -> dt.datetime | None:
        """The UTC instant of wall-clock `day hour:minute` in `zone`, or None if that
        wall-clock time does not exist there.

        Daylight saving time, decided once here: a time inside a spring-forward gap
        (02:30 on the night Berlin goes from 02:00 to 03:00) does not exist and is
        skipped, not moved; a time repeated at fall-back fires once, at its first
        occurrence (fold=0, still on summer time). So every fire time is one real
        instant and no wall-clock minute fires twice."""
        wall = dt.datetime(day.year, day.month, day.day, hour, minute)
        instant = wall.replace(tzinfo=zone).astimezone(dt.UTC)
        if zone is dt.UTC or instant.astimezone(zone).replace(tzinfo=None) == wall:
            return instant
        return None  # in a gap: zoneinfo shifts it by the size of the jump

    def previous_fire(self, now: dt.datetime, time_zone: str | None = None) -> dt.datetime | None:
        """See the module function `previous_fire`."""
        zone = _zone(time_zone)
        local = _aware(now).astimezone(zone)
        today = local.date()
        # Wall-clock order is instant order for the times that fire (fold=0, gaps
        # skipped), so the first fire time found walking back is the latest. On
        # `now`'s own day, later wall-clock times are skipped unless `now` is the
        # second pass of a repeated hour, when a later wall time can be earlier.
        bounded = local.fold == 0
        for day in self._matching_days(today, -1):
            for hour in reversed(self.hours):
                if day == today and bounded and hour > local.hour:
                    continue
                for minute in reversed(self.minutes):
                    if day == today and bounded and (hour, minute) > (local.hour, local.minute):
                        continue
                    fire = self.fire_at(day, hour, minute, zone)
                    if fire is not None and fire <= now:
                        return fire
        return None

    def next_fire(self, now: dt.datetime, time_zone: str | None = None) -> dt.datetime | None:
        """See the module function `next_fire`."""
        zone = _zone(time_zone)
        local = _aware(now).astimezone(zone)
        today = local.date()
        for day in self._matching_days(today, 1):
            for hour in self.hours:
                # An earlier wall-clock time on `now`'s day is never after `now`.
                if day == today and hour < local.hour:
                    continue
                for minute in self.minutes:
                    if day == today and (hour, minute) < (local.hour, local.minute):
                        continue
                    fire = self.fire_at(day, hour, minute, zone)
                    if fire is not None and fire > now:
                        return fire
        return None

    def _matching_days(self, start: dt.date, direction: int) -> Iterator[dt.date]:
        return (day for day in _days(start, direction) if self.day_matches(day))


def _days(start: dt.date, direction: int) -> Iterator[dt.date]:
    """The local days from `start` on (or back), HORIZON_DAYS of them after
    `start`, stopping early at the ends of the calendar."""
    first = start.toordinal()
    last = first + direction * HORIZON_DAYS
    last = min(max(last, dt.date.min.toordinal()), dt.date.max.toordinal())
    return (dt.date.fromordinal(ordinal) for ordinal in range(first, last + direction, direction))


@lru_cache(maxsize=256)
def _parse(expression: str) -> Schedule:
    # Cached: reconcilers ask about the same few schedules over and over.
    text = MACROS.get(expression, expression)
    if text.startswith("@"):
        raise ValueError(f"cron schedule {expression!r}: unknown macro; {_FORMAT}")
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(f"cron schedule {expression!r} has {len(parts)} fields: {_FORMAT}")
    unrestricted = [
        any([_check_term(field, term) for term in part.split(",")])  # checks every term
        for field, part in zip(_FIELDS, parts, strict=True)
    ]
    if not re.fullmatch(CRON, expression):  # e.g. tabs between the fields
        raise ValueError(f"cron schedule {expression!r}: {_FORMAT}, separated by spaces")
    terms = (
        ",".join(_croniter_term(field, term) for term in part.split(","))
        for field, part in zip(_FIELDS, parts, strict=True)
    )
    try:
        expanded, _ = croniter.expand(" ".join(terms))
    except CroniterError as error:  # not expected after the checks above
        raise ValueError(f"cron schedule {expression!r}: {error}; {_FORMAT}") from error
    minutes, hours, dom, months, dow = (
        _values(values, field) for values, field in zip(expanded, _FIELDS, strict=True)
    )
    return Schedule(
        expression=expression,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days_of_month=dom,
        months=months,
        days_of_week=dow,
        either_day=not (unrestricted[2] or unrestricted[4]),
    )


def parse(expression: str) -> Schedule:
    """Same as `Schedule.parse`: the schedule, or ValueError naming the bad field."""
    return _parse(expression)


def _zone(time_zone: str | None) -> dt.tzinfo:
    """The tz database zone named `time_zone`; UTC for None. ValueError for a name
    the database does not know, so a typo fails loudly instead of running in UTC."""
    if time_zone is None:
        return dt.UTC
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {time_zone!r}: use an IANA name such as Europe/Berlin"
        ) from None


def zone(time_zone: str | None) -> dt.tzinfo:
    """The zone a schedule is read in: the tz database's `time_zone`, UTC for None."""
    return _zone(time_zone)


def _aware(now: dt.datetime) -> dt.datetime:
    """`now` itself; ValueError if it is naive, since a naive time has no instant."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now={now.isoformat()} has no time zone: pass an aware datetime")
    return now


def previous_fire(
    expression: str, now: dt.datetime, time_zone: str | None = None
) -> dt.datetime | None:
    """The latest time at or before `now` the schedule fired, in UTC (so `now` itself
    when it falls exactly on a fire time); None if it did not fire in the last
    HORIZON_DAYS days.

    `expression` is read in `time_zone` (an IANA name; None is UTC), the way a CronJob
    with `timeZone` reads it; daylight saving as in `Schedule.fire_at`. Walks days and,
    on matching days only, the schedule's hours and minutes, so even a schedule that
    never fires costs a few thousand date checks, not a minute-by-minute scan.
    ValueError for a bad expression, an unknown zone or a naive `now`."""
    return _parse(expression).previous_fire(now, time_zone)


def next_fire(
    expression: str, now: dt.datetime, time_zone: str | None = None
) -> dt.datetime | None:
    """The earliest time strictly after `now` the schedule fires, in UTC; None if it
    does not fire within HORIZON_DAYS days. Otherwise as `previous_fire`."""
    return _parse(expression).next_fire(now, time_zone)

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

Pure: standard library only, no clock of its own; callers pass `now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    """How one of the five fields is written: its values, names and where `*` ends."""

    number: int
    name: str
    low: int
    high: int
    star_high: int
    """Where `*` and `N/step` stop; below `high` only for day-of-week, whose 7 is
    just another way to write Sunday (0), so `1/2` is Mon, Wed, Fri, not also Sun."""
    names: tuple[str, ...]
    """Names for low, low + 1, ... in upper case; empty if the field has none."""
    rule: str
    """What a valid value is, for error messages."""


_FIELDS = (
    _Field(1, "minute", 0, 59, 59, (), "minutes are 0-59"),
    _Field(2, "hour", 0, 23, 23, (), "hours are 0-23"),
    _Field(3, "day-of-month", 1, 31, 31, (), "days of the month are 1-31"),
    _Field(
        4,
        "month",
        1,
        12,
        12,
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        "months are 1-12 or JAN-DEC",
    ),
    _Field(
        5,
        "day-of-week",
        0,
        7,
        6,
        ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
        "days of the week are 0-7 (0 and 7 are Sunday) or SUN-SAT",
    ),
)


def _error(field: _Field, text: str, reason: str) -> ValueError:
    return ValueError(f"cron field {field.number} ({field.name}) {text!r}: {reason}")


def _value(field: _Field, text: str, term: str) -> int:
    """One number or name of a field, checked against the field's range."""
    if text.isascii() and text.isdigit():
        number = int(text)
    elif text.upper() in field.names:
        number = field.low + field.names.index(text.upper())
    else:
        raise _error(field, term, field.rule)
    if not field.low <= number <= field.high:
        raise _error(field, term, field.rule)
    return number


def _term(field: _Field, term: str) -> tuple[set[int], bool]:
    """The values one comma-separated term stands for, and whether it is a bare
    `*` or `?` (step 1 at most), which leaves the field unrestricted for the
    day-of-month/day-of-week rule."""
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
            raise _error(field, term, "a step is a whole number from 1, e.g. */15")
        step = int(step_text)
    if base in ("*", "?"):
        return set(range(field.low, field.star_high + 1, step)), step == 1
    if not base:
        raise _error(field, term, f"{field.rule}; separate values with single commas")
    first_text, dash, last_text = base.partition("-")
    first = _value(field, first_text, term)
    if dash:
        last = _value(field, last_text, term)
        if first > last:
            raise _error(field, term, "a range runs from low to high, e.g. 1-5")
    else:
        last = max(field.star_high, first) if slash else first
    return set(range(first, last + 1, step)), False


def _field(field: _Field, text: str) -> tuple[frozenset[int], bool]:
    """The values a whole field stands for, and whether it is unrestricted."""
    values: set[int] = set()
    unrestricted = False
    for term in text.split(","):
        term_values, star = _term(field, term)
        values |= term_values
        unrestricted = unrestricted or star
    if field.number == 5 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), unrestricted


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
    (minutes, _), (hours, _), (dom, dom_any), (months, _), (dow, dow_any) = (
        _field(field, part) for field, part in zip(_FIELDS, parts, strict=True)
    )
    return Schedule(
        expression=expression,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days_of_month=dom,
        months=months,
        days_of_week=dow,
        either_day=not (dom_any or dow_any),
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

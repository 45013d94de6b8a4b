"""Cron schedules fire when a Kubernetes CronJob would: every syntax the API accepts,
the day-of-month/day-of-week OR rule, calendar edges, daylight saving time, and a
minute-by-minute reference over random schedules."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailboss.api.fields import CRON
from trailboss.policies.cron import (
    HORIZON_DAYS,
    MACROS,
    Schedule,
    next_fire,
    parse,
    previous_fire,
)

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def at(text: str) -> dt.datetime:
    """An instant written in UTC: `at("2026-03-01 12:00")`."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("expression", "field", "values"),
    [
        ("* * * * *", "minutes", tuple(range(60))),
        ("5 * * * *", "minutes", (5,)),
        ("05 * * * *", "minutes", (5,)),
        ("1,2,30 * * * *", "minutes", (1, 2, 30)),
        ("10-13 * * * *", "minutes", (10, 11, 12, 13)),
        ("*/15 * * * *", "minutes", (0, 15, 30, 45)),
        ("?/20 * * * *", "minutes", (0, 20, 40)),
        ("50/3 * * * *", "minutes", (50, 53, 56, 59)),
        ("10-20/5,1 * * * *", "minutes", (1, 10, 15, 20)),
        ("*/99 * * * *", "minutes", (0,)),
        ("0 9-17/4 * * *", "hours", (9, 13, 17)),
        ("0 22/1 * * *", "hours", (22, 23)),
        ("0 0 */10 * *", "days_of_month", frozenset({1, 11, 21, 31})),
        ("0 0 28/1 * *", "days_of_month", frozenset({28, 29, 30, 31})),
        ("0 0 1 JAN,jul *", "months", frozenset({1, 7})),
        ("0 0 1 Mar-May *", "months", frozenset({3, 4, 5})),
        ("0 0 1 */4 *", "months", frozenset({1, 5, 9})),
        ("0 0 1 NOV/1 *", "months", frozenset({11, 12})),
        ("0 0 * * MON-FRI", "days_of_week", frozenset({1, 2, 3, 4, 5})),
        ("0 0 * * sun,Sat", "days_of_week", frozenset({0, 6})),
        ("0 0 * * 7", "days_of_week", frozenset({0})),
        ("0 0 * * 0", "days_of_week", frozenset({0})),
        ("0 0 * * 5-7", "days_of_week", frozenset({5, 6, 0})),
        ("0 0 * * 0-7", "days_of_week", frozenset(range(7))),
        ("0 0 * * *", "days_of_week", frozenset(range(7))),
        ("0 0 * * 1/2", "days_of_week", frozenset({1, 3, 5})),
        ("0 0 * * 7/2", "days_of_week", frozenset({0})),
        ("0 0 * * */3", "days_of_week", frozenset({0, 3, 6})),
        ("0 0 * * ?", "days_of_week", frozenset(range(7))),
    ],
)
def test_field_syntax(expression: str, field: str, values: Any) -> None:
    assert getattr(parse(expression), field) == values


@pytest.mark.parametrize(("macro", "fields"), sorted(MACROS.items()))
def test_macros_mean_their_five_fields(macro: str, fields: str) -> None:
    expanded = parse(fields)
    schedule = parse(macro)
    assert (
        schedule.minutes,
        schedule.hours,
        schedule.days_of_month,
        schedule.months,
        schedule.days_of_week,
        schedule.either_day,
    ) == (
        expanded.minutes,
        expanded.hours,
        expanded.days_of_month,
        expanded.months,
        expanded.days_of_week,
        expanded.either_day,
    )


@pytest.mark.parametrize(
    ("macro", "now", "expected"),
    [
        ("@yearly", "2026-05-05 10:00", "2027-01-01 00:00"),
        ("@annually", "2026-05-05 10:00", "2027-01-01 00:00"),
        ("@monthly", "2026-05-05 10:00", "2026-06-01 00:00"),
        ("@weekly", "2026-05-05 10:00", "2026-05-10 00:00"),  # a Sunday
        ("@daily", "2026-05-05 10:00", "2026-05-06 00:00"),
        ("@midnight", "2026-05-05 10:00", "2026-05-06 00:00"),
        ("@hourly", "2026-05-05 10:00", "2026-05-05 11:00"),
    ],
)
def test_macros_fire(macro: str, now: str, expected: str) -> None:
    assert next_fire(macro, at(now)) == at(expected)


def test_schedule_parse_and_parse_agree() -> None:
    assert Schedule.parse("0 3 * * 1") == parse("0 3 * * 1")
    assert hash(parse("0 3 * * 1")) == hash(Schedule.parse("0 3 * * 1"))


# --------------------------------------------------------------------------- days


@pytest.mark.parametrize(
    ("expression", "either"),
    [
        ("0 0 13 * 5", True),
        ("0 0 13 * FRI", True),
        ("0 0 1-7 * 1", True),
        ("0 0 */2 * 1", True),  # a step restricts the field
        ("0 0 13 * *", False),
        ("0 0 13 * ?", False),
        ("0 0 * * 5", False),
        ("0 0 ? * 5", False),
        ("0 0 */1 * 5", False),  # step 1 is still every day
        ("0 0 *,13 * 5", False),
    ],
)
def test_which_day_rule_applies(expression: str, either: bool) -> None:
    assert parse(expression).either_day is either


def _fire_days(expression: str, start: str, count: int) -> list[dt.date]:
    days = []
    now = at(start)
    for _ in range(count):
        fire = next_fire(expression, now)
        assert fire is not None
        days.append(fire.date())
        now = fire
    return days


def test_both_day_fields_restricted_means_either() -> None:
    # Friday 13th, or any Friday, or any 13th: 2026-02-13 and 2026-03-13 are Fridays.
    assert _fire_days("0 0 13 * 5", "2026-02-01 00:00", 6) == [
        dt.date(2026, 2, 6),
        dt.date(2026, 2, 13),
        dt.date(2026, 2, 20),
        dt.date(2026, 2, 27),
        dt.date(2026, 3, 6),
        dt.date(2026, 3, 13),
    ]
    assert _fire_days("0 0 1 * MON", "2026-05-30 00:00", 3) == [
        dt.date(2026, 6, 1),  # both a Monday and the 1st: fires once
        dt.date(2026, 6, 8),
        dt.date(2026, 6, 15),
    ]


def test_one_day_field_restricted_means_that_one() -> None:
    assert _fire_days("0 0 * * 5", "2026-02-01 00:00", 3) == [
        dt.date(2026, 2, 6),
        dt.date(2026, 2, 13),
        dt.date(2026, 2, 20),
    ]
    assert _fire_days("0 0 13 * ?", "2026-02-01 00:00", 3) == [
        dt.date(2026, 2, 13),
        dt.date(2026, 3, 13),
        dt.date(2026, 4, 13),
    ]


def test_sunday_is_0_and_7() -> None:
    assert next_fire("0 12 * * 7", at("2026-05-05 00:00")) == at("2026-05-10 12:00")
    assert next_fire("0 12 * * 0", at("2026-05-05 00:00")) == at("2026-05-10 12:00")
    assert next_fire("0 12 * * SUN", at("2026-05-05 00:00")) == at("2026-05-10 12:00")


# --------------------------------------------------------------------------- searching


@pytest.mark.parametrize(
    ("expression", "now", "previous", "following"),
    [
        ("0 3 * * 1", "2026-05-06 12:00", "2026-05-04 03:00", "2026-05-11 03:00"),
        ("30 23 31 * *", "2026-05-01 00:00", "2026-03-31 23:30", "2026-05-31 23:30"),
        ("0 0 1 1 *", "2026-06-15 08:00", "2026-01-01 00:00", "2027-01-01 00:00"),
        ("59 23 31 12 *", "2026-01-01 00:00", "2025-12-31 23:59", "2026-12-31 23:59"),
        ("*/5 * * * *", "2026-12-31 23:58", "2026-12-31 23:55", "2027-01-01 00:00"),
        ("0 0 1 * *", "2026-03-01 00:00:01", "2026-03-01 00:00", "2026-04-01 00:00"),
        ("15 10 * FEB *", "2026-03-10 00:00", "2026-02-28 10:15", "2027-02-01 10:15"),
        ("0 0 30 * *", "2026-03-01 00:00", "2026-01-30 00:00", "2026-03-30 00:00"),
    ],
)
def test_previous_and_next_across_boundaries(
    expression: str, now: str, previous: str, following: str
) -> None:
    assert previous_fire(expression, at(now)) == at(previous)
    assert next_fire(expression, at(now)) == at(following)


def test_february_29() -> None:
    assert previous_fire("0 0 29 2 *", at("2026-06-01 00:00")) == at("2024-02-29 00:00")
    assert next_fire("0 0 29 2 *", at("2026-06-01 00:00")) == at("2028-02-29 00:00")
    assert previous_fire("0 0 29 2 *", at("2028-02-29 00:00")) == at("2028-02-29 00:00")


def test_a_schedule_that_never_fires() -> None:
    assert previous_fire("0 0 30 2 *", at("2026-06-01 00:00")) is None
    assert next_fire("0 0 31 4,6,9,11 *", at("2026-06-01 00:00")) is None


def test_february_29_beyond_the_horizon() -> None:
    # 2100 is no leap year: no February 29 between 2096 and 2104.
    assert next_fire("0 0 29 2 *", at("2097-01-01 00:00")) is None
    assert previous_fire("0 0 29 2 *", at("2103-01-01 00:00")) is None


def test_previous_on_a_fire_time_is_now_and_next_is_strictly_after() -> None:
    now = at("2026-05-04 03:00")
    assert previous_fire("0 3 * * 1", now) == now
    assert next_fire("0 3 * * 1", now) == at("2026-05-11 03:00")
    assert previous_fire("* * * * *", now) == now
    assert next_fire("* * * * *", now) == at("2026-05-04 03:01")
    assert previous_fire("0 3 * * 1", now - dt.timedelta(microseconds=1)) == at("2026-04-27 03:00")


def test_results_are_utc_whatever_zone_now_is_in() -> None:
    now = dt.datetime(2026, 5, 4, 5, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 03:00 UTC
    fire = previous_fire("0 3 * * 1", now)
    assert fire == at("2026-05-04 03:00")
    assert fire is not None
    assert fire.tzinfo is UTC


def test_time_zone_moves_the_fire_time() -> None:
    # 03:00 in Berlin in May is 01:00 UTC; in New York, 07:00 UTC.
    assert next_fire("0 3 * * *", at("2026-05-04 00:00"), "Europe/Berlin") == at("2026-05-04 01:00")
    assert next_fire("0 3 * * *", at("2026-05-04 00:00"), "America/New_York") == at(
        "2026-05-04 07:00"
    )
    # The local day decides day-of-week: Monday 01:00 in Berlin is Sunday 23:00 UTC.
    assert next_fire("0 1 * * MON", at("2026-05-01 00:00"), "Europe/Berlin") == at(
        "2026-05-03 23:00"
    )


# --------------------------------------------------------------------------- daylight saving


BERLIN = "Europe/Berlin"


def test_a_time_in_the_spring_forward_gap_is_skipped() -> None:
    # 2026-03-29: Berlin goes from 02:00 CET straight to 03:00 CEST; 02:30 never happens.
    assert next_fire("30 2 * * *", at("2026-03-28 12:00"), BERLIN) == at("2026-03-30 00:30")
    assert previous_fire("30 2 * * *", at("2026-03-29 12:00"), BERLIN) == at("2026-03-28 01:30")
    assert next_fire("30 2 29 3 *", at("2026-03-01 00:00"), BERLIN) == at("2027-03-29 00:30")


def test_hourly_across_the_spring_forward_gap() -> None:
    # 01:00 CET (00:00 UTC), then 03:00 CEST (01:00 UTC): one UTC hour, no 02:00.
    assert next_fire("0 * * * *", at("2026-03-29 00:00"), BERLIN) == at("2026-03-29 01:00")
    assert previous_fire("0 * * * *", at("2026-03-29 00:59"), BERLIN) == at("2026-03-29 00:00")


def test_a_repeated_time_at_fall_back_fires_once() -> None:
    # 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 02:30 happens twice,
    # at 00:30 UTC (CEST) and 01:30 UTC (CET). It fires at the first only.
    assert next_fire("30 2 * * *", at("2026-10-24 12:00"), BERLIN) == at("2026-10-25 00:30")
    assert next_fire("30 2 * * *", at("2026-10-25 00:30"), BERLIN) == at("2026-10-26 01:30")
    assert previous_fire("30 2 * * *", at("2026-10-25 01:45"), BERLIN) == at("2026-10-25 00:30")


def test_hourly_across_fall_back() -> None:
    # 02:00 CEST (00:00 UTC), 02:00 CET (01:00 UTC) skipped, 03:00 CET (02:00 UTC).
    assert next_fire("0 * * * *", at("2026-10-24 23:30"), BERLIN) == at("2026-10-25 00:00")
    assert next_fire("0 * * * *", at("2026-10-25 00:00"), BERLIN) == at("2026-10-25 02:00")
    # 01:30 UTC is 02:30 CET, the second pass: the latest fire is 02:00 CEST.
    assert previous_fire("0 * * * *", at("2026-10-25 01:30"), BERLIN) == at("2026-10-25 00:00")
    # 02:45 CEST (00:45 UTC) came before now, 02:30 CET, though its wall clock is later.
    assert previous_fire("45 2 * * *", at("2026-10-25 01:30"), BERLIN) == at("2026-10-25 00:45")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", "cron field 2 (hour) '25': hours are 0-23"),
        ("60 * * * *", "cron field 1 (minute) '60': minutes are 0-59"),
        ("0 0 0 * *", "cron field 3 (day-of-month) '0': days of the month are 1-31"),
        ("0 0 32 * *", "cron field 3 (day-of-month) '32'"),
        ("0 0 * 13 *", "cron field 4 (month) '13': months are 1-12 or JAN-DEC"),
        ("0 0 * JANUARY *", "cron field 4 (month) 'JANUARY'"),
        ("0 0 * * 8", "cron field 5 (day-of-week) '8': days of the week are 0-7"),
        ("0 0 * * MOM", "cron field 5 (day-of-week) 'MOM'"),
        ("0 0 * * FRI-MON", "cron field 5 (day-of-week) 'FRI-MON': a range runs from low"),
        ("30-10 * * * *", "cron field 1 (minute) '30-10': a range runs from low to high"),
        ("*/0 * * * *", "cron field 1 (minute) '*/0': a step is a whole number from 1"),
        ("*/x * * * *", "cron field 1 (minute) '*/x'"),
        ("1,,2 * * * *", "cron field 1 (minute) ''"),
        ("0 -1 * * *", "cron field 2 (hour) '-1'"),
        ("0 1-2-3 * * *", "cron field 2 (hour) '1-2-3'"),
        ("0 3 * *", "has 4 fields: write five fields, minute hour"),
        ("0 3 * * * *", "has 6 fields"),
        ("", "has 0 fields"),
        ("@every 5m", "unknown macro"),
        ("@fortnightly", "unknown macro"),
    ],
)
def test_bad_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(expression)
    with pytest.raises(ValueError, match=re.escape(message)):
        next_fire(expression, at("2026-01-01 00:00"))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        previous_fire("0 3 * * 1", dt.datetime(2026, 5, 4, 3, 0))
    with pytest.raises(ValueError, match="has no time zone"):
        next_fire("0 3 * * 1", dt.datetime(2026, 5, 4, 3, 0))


@pytest.mark.parametrize("zone", ["Mars/Base", "", "../etc/passwd", "/etc/localtime"])
def test_unknown_time_zone_is_refused(zone: str) -> None:
    message = f"time zone {zone!r}: use an IANA name such as Europe/Berlin"
    with pytest.raises(ValueError, match=re.escape(message)):
        next_fire("0 3 * * 1", at("2026-01-01 00:00"), zone)
    with pytest.raises(ValueError, match=re.escape(message)):
        previous_fire("0 3 * * 1", at("2026-01-01 00:00"), zone)


# --------------------------------------------------------------------------- the API's syntax


def _reversed_range(expression: str) -> bool:
    """Whether some range in ``expression`` runs high to low, which the API's pattern
    lets through but no cron accepts."""
    names = {**{m: i + 1 for i, m in enumerate(MONTHS)}, **{d: i for i, d in enumerate(DAYS)}}

    def value(text: str) -> int:
        return int(text) if text.isdigit() else names[text.upper()]

    for term in re.split(r"[ ,]+", expression):
        low, dash, high = term.partition("/")[0].partition("-")
        if dash and value(low) > value(high):
            return True
    return False


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.from_regex(CRON, fullmatch=True))
def test_everything_the_api_accepts_parses(expression: str) -> None:
    if _reversed_range(expression):
        with pytest.raises(ValueError, match="a range runs from low to high"):
            parse(expression)
    else:
        parse(expression)


EXAMPLE = re.compile(r"e\.g\. `([^`]+)`")


def _documented_schedules() -> list[str]:
    """Every schedule a user could copy: `schedule:` in the examples, and the
    `e.g.` schedules in the API reference and in the CRDs' descriptions and messages."""
    schedules = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            schedules += [v for v in _values_of("schedule", document) if isinstance(v, str)]
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        if ".schedule`" in line:
            schedules += EXAMPLE.findall(line)
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            for node in _values_of("schedule", document):
                if isinstance(node, dict):
                    texts = [node.get("description", "")]
                    texts += [r["message"] for r in node.get("x-kubernetes-validations", [])]
                    schedules += EXAMPLE.findall(" ".join(texts))
    return schedules


def _values_of(key: str, node: Any) -> list[Any]:
    """Every value under ``key`` anywhere in a YAML document."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == key]
        return found + [x for v in node.values() for x in _values_of(key, v)]
    if isinstance(node, list):
        return [x for item in node for x in _values_of(key, item)]
    return []


def test_every_documented_schedule_parses() -> None:
    schedules = _documented_schedules()
    assert "0 3 * * 1" in schedules  # examples/deployment-policy.yaml and the API docs
    for expression in schedules:
        assert re.fullmatch(CRON, expression), expression
        assert next_fire(expression, at("2026-01-01 00:00")) is not None


# --------------------------------------------------------------------------- efficiency


def test_sparse_and_impossible_schedules_are_answered_within_the_horizon() -> None:
    # Days are walked, not minutes: these return rather than scan five years minute by minute.
    assert previous_fire("0 0 1 1 *", at("2026-12-31 23:59"), BERLIN) is not None
    assert next_fire("0 0 1 1 *", at("2026-01-01 00:01"), BERLIN) is not None
    assert next_fire("0 0 30 2 *", at("2026-01-01 00:00"), BERLIN) is None
    assert previous_fire("0 0 30 2 *", at("2026-01-01 00:00"), BERLIN) is None


# --------------------------------------------------------------------------- reference


ZONES = [None, "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
SPAN = dt.timedelta(days=3)


def _random_field(rng: random.Random, low: int, high: int, names: list[str]) -> str:
    """Mostly `*` or short lists, so random schedules often fire inside SPAN."""
    if rng.random() < 0.4:
        return rng.choice(["*", "?", f"*/{rng.randint(1, 30)}"])
    terms = []
    for _ in range(rng.randint(1, 3)):
        first = rng.randint(low, high)
        text = names[first - low] if names and rng.random() < 0.3 else str(first)
        shape = rng.random()
        if shape < 0.4:
            terms.append(text)
        elif shape < 0.7:
            terms.append(f"{text}-{rng.randint(first, high)}")
        elif shape < 0.85:
            terms.append(f"{text}/{rng.randint(1, 12)}")
        else:
            terms.append(f"{text}-{rng.randint(first, high)}/{rng.randint(1, 12)}")
    return ",".join(terms)


def _random_expression(rng: random.Random) -> str:
    fields = [
        _random_field(rng, 0, 59, []),
        _random_field(rng, 0, 23, []),
        _random_field(rng, 1, 31, []) if rng.random() < 0.5 else "*",
        _random_field(rng, 1, 12, MONTHS) if rng.random() < 0.2 else "*",
        _random_field(rng, 0, 7, [*DAYS, "SUN"]) if rng.random() < 0.5 else "*",
    ]
    return " ".join(fields)


def _fires(schedule: Schedule, instant: dt.datetime, zone: dt.tzinfo) -> bool:
    """The rule written from the other side: an instant fires if its local wall
    clock matches, unless it is the second pass of a repeated hour (fold=1)."""
    local = instant.astimezone(zone)
    by_month = local.day in schedule.days_of_month
    by_week = (local.isoweekday() % 7) in schedule.days_of_week
    day = (by_month or by_week) if schedule.either_day else (by_month and by_week)
    return (
        local.fold == 0
        and day
        and local.month in schedule.months
        and local.hour in schedule.hours
        and local.minute in schedule.minutes
    )


def _agrees_with_reference(expression: str, now: dt.datetime, name: str | None) -> int:
    """Checks next_fire and previous_fire against a minute-by-minute scan of SPAN
    either side of ``now``; the number of fire times the scan found (0-2)."""
    schedule = parse(expression)
    zone: dt.tzinfo = ZoneInfo(name) if name else UTC
    first_minute = now.replace(second=0, microsecond=0)
    minutes = int(SPAN.total_seconds() // 60)
    after = (first_minute + dt.timedelta(minutes=m) for m in range(1, minutes))
    expected_next = next((t for t in after if t > now and _fires(schedule, t, zone)), None)
    before = (first_minute - dt.timedelta(minutes=m) for m in range(minutes))
    expected_previous = next((t for t in before if _fires(schedule, t, zone)), None)

    actual_next = next_fire(expression, now, name)
    actual_previous = previous_fire(expression, now, name)
    context = f"{expression!r} in {name} at {now.isoformat()}"
    if expected_next is None:
        assert actual_next is None or actual_next >= first_minute + SPAN, context
    else:
        assert actual_next == expected_next, context
    if expected_previous is None:
        assert actual_previous is None or actual_previous <= first_minute - SPAN, context
    else:
        assert actual_previous == expected_previous, context
    return (expected_next is not None) + (expected_previous is not None)


def test_random_schedules_match_a_minute_by_minute_reference() -> None:
    rng = random.Random(20260329)
    found = 0
    for _ in range(120):
        # Instants around the year, some next to Berlin's and New York's switches.
        if rng.random() < 0.3:
            anchor = rng.choice(
                [at("2026-03-29 01:00"), at("2026-10-25 01:00"), at("2026-03-08 07:00")]
            )
        else:
            anchor = at("2026-01-01 00:00") + dt.timedelta(days=rng.randint(0, 364))
        now = anchor + dt.timedelta(seconds=rng.randint(-86400, 86400))
        if rng.random() < 0.3:
            now = now.replace(second=0, microsecond=0)
        found += _agrees_with_reference(_random_expression(rng), now, rng.choice(ZONES))
    assert found > 120  # most random schedules fired inside the span


@pytest.mark.parametrize(
    ("name", "switch"),
    [
        ("Europe/Berlin", "2026-03-29 01:00"),
        ("Europe/Berlin", "2026-10-25 01:00"),
        ("America/New_York", "2026-03-08 07:00"),
        ("America/New_York", "2026-11-01 06:00"),
        ("Australia/Lord_Howe", "2026-04-04 15:00"),  # half an hour back
        ("Australia/Lord_Howe", "2026-10-03 15:30"),  # half an hour forward
    ],
)
@pytest.mark.parametrize(
    "expression", ["* * * * *", "*/7 * * * *", "0 * * * *", "30 2 * * *", "15,45 1-3 * * *"]
)
def test_daylight_saving_switches_match_the_reference(
    name: str, switch: str, expression: str
) -> None:
    """Every 13 minutes from two hours before a switch to two hours after."""
    for step in range(-10, 11):
        _agrees_with_reference(expression, at(switch) + dt.timedelta(minutes=13 * step), name)


def test_horizon_is_five_years() -> None:
    assert HORIZON_DAYS >= 5 * 365 + 2  # two February 29s in any five years


def test_a_schedule_is_read_in_its_named_zone_or_utc() -> None:
    from trailboss.policies.cron import zone

    assert zone(None) is UTC
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="IANA"):
        zone("Europe/Berln")


# ------------------------------------------------------------- the API and the library agree


SCHEDULES = [
    # (schedule, the API's pattern admits it, the operator can run it)
    ("0 3 * * 1", True, True),
    ("*/15 * * * *", True, True),
    ("0 9-17/2 * * MON-FRI", True, True),
    ("0 0 1,15 * *", True, True),
    ("0 0 * JAN,jul sun", True, True),
    ("30 2 * * ?", True, True),
    ("?/20 * * * *", True, True),
    ("0 0 * * 7", True, True),
    ("0 0 * * 5-7", True, True),
    ("0 0 29 2 *", True, True),
    ("0 0 30 2 *", True, True),  # valid, never fires
    ("05 03 * * *", True, True),
    ("0 0 1-1 * *", True, True),
    ("0 0 * * 7/2", True, True),
    ("*/99 * * * *", True, True),
    ("0   3 * * 1", True, True),
    *((macro, True, True) for macro in sorted(MACROS)),
    # Refused by both: not cron as a CronJob reads it.
    ("60 * * * *", False, False),
    ("0 24 * * *", False, False),
    ("0 0 0 * *", False, False),
    ("0 0 32 * *", False, False),
    ("0 0 * 13 *", False, False),
    ("0 0 * * 8", False, False),
    ("0 0 * JANUARY *", False, False),
    ("*/0 * * * *", False, False),
    ("*/100 * * * *", False, False),
    ("0 3 * *", False, False),
    ("0 3 * * * *", False, False),  # croniter's seconds field
    ("0 3 * * * 2026", False, False),  # croniter's year field
    ("0 0 L * *", False, False),  # croniter's last day of the month
    ("0 0 * * 5L", False, False),  # croniter's last Friday
    ("0 0 * * 1#2", False, False),  # croniter's second Monday
    ("0 0 15W * *", False, False),  # croniter's nearest weekday
    ("H * * * *", False, False),  # croniter's hashed values
    ("0 0 * * mon-fri/x", False, False),
    ("-1 * * * *", False, False),
    ("0 3 * * 1 ", False, False),
    (" 0 3 * * 1", False, False),
    ("0\t3 * * 1", False, False),
    ("@every 5m", False, False),
    ("@reboot", False, False),
    ("", False, False),
    # Admitted by the pattern, refused by the operator with a message (a regular
    # expression cannot compare the ends of a range; croniter would wrap it around).
    ("30-10 * * * *", True, False),
    ("0 0 * * FRI-MON", True, False),
    ("0 0 1 DEC-JAN *", True, False),
]


@pytest.mark.parametrize(("expression", "admitted", "runs"), SCHEDULES)
def test_the_api_pattern_and_the_parser_agree(expression: str, admitted: bool, runs: bool) -> None:
    assert bool(re.fullmatch(CRON, expression)) is admitted
    if runs:
        assert parse(expression).expression == expression
    else:
        with pytest.raises(ValueError, match="cron "):
            parse(expression)

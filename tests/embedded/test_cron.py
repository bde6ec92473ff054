"""The cron parser behind CronJobs: robfig/cron's standard syntax, semantics and error wording."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from harness.embedded.controllers.cronjob import due_time
from harness.embedded.cron import CronError, parse

T0 = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("* * * * *", datetime(2026, 3, 2, 10, 8, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 3, 2, 10, 15, tzinfo=UTC)),
        ("5 4 * * *", datetime(2026, 3, 3, 4, 5, tzinfo=UTC)),
        ("0 0 1 JAN *", datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 9-17/4 * * MON-FRI", datetime(2026, 3, 2, 13, 0, tzinfo=UTC)),
        ("0 0 * * SUN", datetime(2026, 3, 8, tzinfo=UTC)),
        ("@hourly", datetime(2026, 3, 2, 11, 0, tzinfo=UTC)),
        ("@weekly", datetime(2026, 3, 8, tzinfo=UTC)),
        ("@monthly", datetime(2026, 4, 1, tzinfo=UTC)),
        ("30 10 13 * 5", datetime(2026, 3, 6, 10, 30, tzinfo=UTC)),  # day 13 OR a Friday: Friday 6th first
        ("0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_next_activation(schedule: str, expected: datetime) -> None:
    assert parse(schedule).next_after(T0) == expected


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
        ("x * * * *", "failed to parse int from x"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("@every-day", "unrecognized descriptor: @every-day"),
    ],
)
def test_errors_are_robfigs(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as exc:
        parse(schedule)
    assert str(exc.value).startswith(message)


def test_impossible_schedule_has_no_next_time() -> None:
    assert parse("0 0 30 2 *").next_after(T0) is None


def test_due_time_is_the_latest_missed_one_and_time_zones_apply() -> None:
    since = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    due, following = due_time("*/20 * * * *", None, since, T0)
    assert due == datetime(2026, 3, 2, 10, 0, tzinfo=UTC) and following == datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
    due, following = due_time("0 12 * * *", "Asia/Tokyo", since, T0)  # noon in Tokyo is 03:00 UTC
    assert due is None and following == datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    assert following.astimezone(ZoneInfo("Asia/Tokyo")).hour == 12

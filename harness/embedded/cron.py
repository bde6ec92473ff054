"""Cron schedules as kube's CronJob controller reads them (robfig/cron's standard parser).

Five fields (minute, hour, day of month, month, day of week) with ``*``, ``?``, lists, ranges, steps and month /
weekday names; the descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly``. As in cron, when both day-of-month and day-of-week are restricted a day matching either one fires.
Parse errors are :class:`CronError` with robfig's wording, which kube's validation returns as the 422 cause of
``spec.schedule``. No cron library is installed in the project's environment, so this is the project's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (name, low, high, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
MAX_SEARCH_YEARS = 5  # robfig gives up after five years without a match (e.g. "0 0 30 2 *")


class CronError(ValueError):
    """An unparseable schedule; the message is robfig/cron's."""


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax")
    return int(text)


def _parse_field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """(allowed values, whether the field was a star) for one comma-separated field."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            step = _number(step_text, {})
            if step == 0:
                raise CronError(f"step of range should be a positive number: {part}")
        if base in ("*", "?"):
            start, end = low, high
            star = not step_text
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(base, names)
            end = high if step_text else start
        if start < low:
            raise CronError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise CronError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool

    def _day_matches(self, moment: datetime) -> bool:
        dom = moment.day in self.days
        dow = (moment.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, moment: datetime) -> datetime | None:
        """The first activation strictly after ``moment`` (same tzinfo, whole minutes); None if none in 5 years."""
        current = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment.year + MAX_SEARCH_YEARS
        while current.year <= limit:
            if current.month not in self.months:
                year, month = (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
                current = current.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            if not self._day_matches(current):
                current = (current + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if current.hour not in self.hours:
                current = (current + timedelta(hours=1)).replace(minute=0)
                continue
            if current.minute not in self.minutes:
                current += timedelta(minutes=1)
                continue
            return current
        return None


def parse(text: str) -> Schedule:
    """Parse a standard 5-field schedule or a descriptor; raises :class:`CronError`."""
    spec = text.strip()
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise CronError("CronJob spec.schedule must not contain TZ; use spec.timeZone")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_parse_field(f, low, high, names) for f, (_, low, high, names) in zip(fields, _FIELDS, strict=True)]
    weekdays = set(parsed[4][0])
    return Schedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=frozenset(weekdays),
        days_star=parsed[2][1],
        weekdays_star=parsed[4][1],
    )

"""The business calendar: Thai working days and hours, and the legal receipt time.

Pure functions over a BusinessCalendar value; holidays come from the `holidays`
package (Thailand, public + government) corrected by rules/holidays.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from saraban_mail.thaitext import thai_date

if TYPE_CHECKING:
    import holidays

BANGKOK = ZoneInfo("Asia/Bangkok")


@dataclass(frozen=True)
class BusinessCalendar:
    opening: time = time(8, 30)
    closing: time = time(16, 30)
    ack_by: time = time(10, 0)
    tz: ZoneInfo = BANGKOK
    # Cabinet-declared special holidays and cancellations (rules/holidays.toml).
    added: dict[date, str] = field(default_factory=dict)
    removed: frozenset[date] = frozenset()

    @cached_property
    def _thai(self) -> holidays.HolidayBase:
        import holidays  # loads every country's table (~0.1 s): only when a date is asked

        return holidays.country_holidays(
            "TH", categories=("public", "government"), language="th"
        )

    def holiday_name(self, day: date) -> str | None:
        if day in self.added:
            return self.added[day]
        if day in self.removed:
            return None
        return self._thai.get(day)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.holiday_name(day) is None

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += relativedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)

    def within_hours(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return (
            self.is_working_day(local.date()) and self.opening <= local.time() < self.closing
        )


def official_received_at(received_at: datetime, cal: BusinessCalendar) -> datetime:
    """วันเวลารับตามกฎหมาย: the arrival time within working hours, else the next opening."""
    local = received_at.astimezone(cal.tz)
    if cal.within_hours(local):
        return local
    day = local.date()
    if cal.is_working_day(day) and local.time() < cal.opening:
        return cal.at(day, cal.opening)
    return cal.at(cal.next_working_day(day), cal.opening)


def ack_due(received_at: datetime, cal: BusinessCalendar) -> datetime:
    """Acknowledge within the working day of arrival, or by 10:00 of the next one."""
    local = received_at.astimezone(cal.tz)
    if cal.within_hours(local):
        return cal.at(local.date(), cal.closing)
    official = official_received_at(local, cal)
    return cal.at(official.date(), max(cal.ack_by, cal.opening))


def working_days_after(day: date, count: int, cal: BusinessCalendar) -> date:
    """The date `count` working days after `day` (a deadline "within N working days")."""
    for _ in range(count):
        day = cal.next_working_day(day)
    return day


def working_days_between(start: date, end: date, cal: BusinessCalendar) -> int:
    """Working days after `start` up to and including `end`."""
    count, day = 0, start
    while True:
        day = cal.next_working_day(day)
        if day > end:
            return count
        count += 1


def buddhist_year(moment: date | datetime) -> int:
    """พ.ศ. = ค.ศ. + 543."""
    return moment.year + 543


def unsuitable_time(at: datetime, now: datetime, calendar: BusinessCalendar) -> list[str]:
    """Why an appointment at `at` should not be made without --force: in the past, not a
    working day (weekend, holiday), outside office hours."""
    local = at.astimezone(calendar.tz)
    why = []
    if at <= now:
        why.append("it is in the past")
    holiday = calendar.holiday_name(local.date())
    if holiday:
        why.append(f"{thai_date(local.date())} is a holiday ({holiday})")
    elif local.weekday() >= 5:
        why.append(f"{thai_date(local.date())} is a {local:%A}")
    if not calendar.opening <= local.time() < calendar.closing:
        why.append(f"{local:%H.%M} is outside office hours ({calendar.opening:%H.%M}-"
                   f"{calendar.closing:%H.%M})")
    return why

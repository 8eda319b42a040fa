"""Service levels (ระยะเวลาให้บริการ): a matter's due date (ครบกำหนด) from its service's SLA,
the pause while the requester's documents are awaited, and what counts as overdue. Pure.

Counted from the official receipt time (วันเวลารับตามกฎหมาย), the day itself not counted,
as "within N days" deadlines are. Working days skip weekends and holidays (calendar.py);
a calendar-day deadline that ends on a day the office is closed moves to the next working
day (ประมวลกฎหมายแพ่งและพาณิชย์ มาตรา ๑๙๓/๘)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from saraban_mail.calendar import BusinessCalendar, working_days_after, working_days_between
from saraban_mail.units import Service

# The matters' states (matters.py) in which nothing is due any more, and the paused one.
CLOSED = frozenset({"result_sent", "cancelled", "disposed", "to_dispose"})
PAUSED = "awaiting_documents"
WEEK = 7  # "due this week": within the next seven days


@dataclass(frozen=True)
class Due:
    """A matter's due date and how it was reached (the `due` event's detail)."""

    due: date
    sla_days: int
    sla_kind: str  # "working" | "calendar"
    why: str

    def detail(self) -> dict[str, object]:
        return {"due": self.due.isoformat(), "sla_days": self.sla_days,
                "sla_kind": self.sla_kind, "why": self.why}


def _open_day(day: date, calendar: BusinessCalendar) -> date:
    return day if calendar.is_working_day(day) else calendar.next_working_day(day)


def due_date(received: datetime, service: Service, calendar: BusinessCalendar) -> Due:
    """The due date of a request for `service` officially received at `received`."""
    start = received.astimezone(calendar.tz).date()
    if service.sla_kind == "working":
        day = working_days_after(start, service.sla_days, calendar)
        unit = "working days"
    else:
        day = _open_day(start + timedelta(days=service.sla_days), calendar)
        unit = "days"
    return Due(day, service.sla_days, service.sla_kind,
               f"{service.sla_days} {unit} of {service.id} from {start.isoformat()}")


def resumed(due: Due, paused_on: date, resumed_on: date, calendar: BusinessCalendar) -> Due:
    """The due date moved by the time the matter waited for the requester's documents
    (from the day they were asked for to the day they came)."""
    if resumed_on <= paused_on:
        return due
    if due.sla_kind == "working":
        days = working_days_between(paused_on, resumed_on, calendar)
        day = working_days_after(due.due, days, calendar)
        unit = "working days"
    else:
        days = (resumed_on - paused_on).days
        day = _open_day(due.due + timedelta(days=days), calendar)
        unit = "days"
    return Due(day, due.sla_days, due.sla_kind,
               f"{due.due.isoformat()} moved {days} {unit}: documents awaited "
               f"{paused_on.isoformat()} to {resumed_on.isoformat()}")


def overdue(due: date | None, state: str | None, today: date) -> bool:
    """Past its due date, still open, and not waiting for the requester."""
    return due is not None and today > due and state not in CLOSED and state != PAUSED


def due_soon(due: date | None, state: str | None, today: date) -> bool:
    """Due within the week (today included), still open and not paused."""
    return (due is not None and today <= due <= today + timedelta(days=WEEK)
            and state not in CLOSED and state != PAUSED)

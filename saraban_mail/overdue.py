"""Which matters are overdue (เกินกำหนด) or fall due soon, read from each matter's latest
`routed` and `due` steps: pure decisions on plain values, no journal, no mail.

The overdue rule itself is `sla.overdue`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from saraban_mail import sla
from saraban_mail.calendar import BusinessCalendar, working_days_after, working_days_between
from saraban_mail.units import Unit, Units

# A matter in these states is not late: done, closed, or its clock stopped while it waits
# for the citizen's documents ("นับจากวันที่ได้รับเอกสารครบถ้วน").
NOT_RUNNING = sla.CLOSED | {sla.PAUSED}


def latest(events: Iterable[Any], kind: str) -> dict[str, Any] | None:
    """The detail of the latest journal event of `kind` (rows with "kind" and "detail")."""
    found = None
    for event in events:
        if event["kind"] == kind:
            found = event
    return json.loads(found["detail"]) if found is not None else None


@dataclass(frozen=True)
class Standing:
    """Where one routed matter stands against its service level."""

    year: int
    number: int
    subject: str
    received: date  # the official receipt day (วันที่รับตามกฎหมาย)
    due: date  # ครบกำหนด
    working: bool  # the service level counts working days
    unit: str
    state: str

    @property
    def receipt(self) -> str:
        return f"{self.number}/{self.year}"

    @property
    def running(self) -> bool:
        return self.state not in NOT_RUNNING

    def overdue(self, today: date) -> bool:
        return sla.overdue(self.due, self.state, today)

    def days_late(self, today: date, calendar: BusinessCalendar) -> int:
        """Days past due, counted as the service level counts them."""
        if self.working:
            return working_days_between(self.due, today, calendar)
        return (today - self.due).days

    def due_soon(self, today: date, calendar: BusinessCalendar, days: int) -> bool:
        """Due today or within `days` working days (holidays not counted)."""
        return self.running and today <= self.due <= working_days_after(today, days, calendar)


@dataclass(frozen=True)
class UnitList:
    """What one unit's head is told: its overdue matters, and those due soon."""

    unit: Unit
    overdue: tuple[Standing, ...]
    soon: tuple[Standing, ...]


def for_heads(standings: Sequence[Standing], units: Units, today: date,
              calendar: BusinessCalendar, soon_days: int) -> list[UnitList]:
    """One list per unit that has a head_email and something overdue or due soon."""
    lists = []
    for unit in units.units:
        if not unit.head_email:
            continue
        mine = sorted((s for s in standings if s.unit == unit.id), key=lambda s: (s.due, s.year,
                                                                                   s.number))
        late = tuple(s for s in mine if s.overdue(today))
        soon = tuple(s for s in mine if s.due_soon(today, calendar, soon_days))
        if late or soon:
            lists.append(UnitList(unit, late, soon))
    return lists

"""The unit heads' daily mail: each unit head (rules/units.toml `head_email`) gets one mail a
working day listing the unit's overdue matters and those due soon; opt-in (`[notices]`).

Read from the journal's `routed` and `due` steps (the rule is in overdue.py); each unit's mail
is queued with its mark of the day in one transaction, so a crash never sends it twice."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from saraban_mail import overdue
from saraban_mail.calendar import BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.journal import Journal
from saraban_mail.thaitext import english_date, thai_date
from saraban_mail.units import Units

if TYPE_CHECKING:
    from saraban_mail.replies import Templates

TEMPLATE = "unit_overdue"


def standings(journal: Journal, calendar: BusinessCalendar) -> list[overdue.Standing]:
    """Every matter routed to a unit that has a due date, where it stands now."""
    found = []
    for matter in journal.matters():
        year, number = matter["year"], matter["receipt_no"]
        events = journal.events(year, number)
        routed, due = overdue.latest(events, "routed"), overdue.latest(events, "due")
        if not routed or not routed.get("unit") or not due or not due.get("due"):
            continue
        registered = overdue.latest(events, "registered") or {}
        stored = journal.message_of_receipt(year, number)
        received = (stored.record.official_received_at if stored is not None
                    else datetime.fromisoformat(events[0]["at"]))
        found.append(overdue.Standing(
            year=year, number=number, subject=str(registered.get("subject") or ""),
            received=received.astimezone(calendar.tz).date(), due=date.fromisoformat(due["due"]),
            working=due.get("sla_kind", "working") == "working", unit=routed["unit"],
            state=matter["state"] or ""))
    return found


def values(config: Config, listing: overdue.UnitList, today: date,
           calendar: BusinessCalendar) -> dict[str, Any]:
    """What templates/unit_overdue.txt.j2 may use (templates/README.md lists it)."""
    def row(s: overdue.Standing) -> dict[str, Any]:
        return {"receipt": s.receipt, "subject": s.subject or "(ไม่มีหัวเรื่อง)",
                "received_th": thai_date(s.received), "due_th": thai_date(s.due),
                "late": s.days_late(today, calendar) if s.overdue(today) else 0,
                "working": s.working}

    return {"agency": config.agency, "unit": listing.unit.model_dump(),
            "overdue": [row(s) for s in listing.overdue], "soon": [row(s) for s in listing.soon],
            "soon_days": config.notices.heads_soon_days,
            "today_th": thai_date(today), "today_en": english_date(today)}


def sample(config: Config) -> dict[str, Any]:
    """Sample values for `replying.check_templates`."""
    item = {"receipt": "1/2569", "subject": "x", "received_th": "x", "due_th": "x", "late": 2,
            "working": True}
    unit = {"id": "works", "name_th": "กองช่าง", "name_en": "Public Works", "email": "",
            "phone": "", "head": "ผู้อำนวยการกองช่าง", "head_email": "h@example.go.th"}
    return {"agency": config.agency, "unit": unit, "overdue": [item], "soon": [item],
            "soon_days": 3, "today_th": "x", "today_en": "x"}


def send_daily(journal: Journal, config: Config, units: Units, templates: Templates,
               calendar: BusinessCalendar, now: datetime) -> list[str]:
    """Queue today's mail to each unit head with something overdue or due soon (once a day:
    a unit already mailed today is skipped). Returns the heads' addresses mailed."""
    from saraban_mail.replies import Envelope, build

    today = now.astimezone(calendar.tz).date()
    agency = config.agency
    sender = Envelope(agency.name_th, agency.email, agency.domain)
    mailed = []
    for listing in overdue.for_heads(standings(journal, calendar), units, today, calendar,
                                     config.notices.heads_soon_days):
        mark = f"unit_overdue:{listing.unit.id}"
        if journal.get_meta(mark) == today.isoformat():
            continue
        subject, body = templates.render(TEMPLATE, values(config, listing, today, calendar))
        mail = build(TEMPLATE, listing.unit.head_email, subject, body, sender, now,
                     auto="auto-generated")
        with journal.transaction():
            journal.queue_mail(message=None, kind=TEMPLATE, recipient=mail.recipient,
                               message_id=mail.message_id, raw=mail.raw, now=now)
            journal.set_meta(mark, today.isoformat())
        mailed.append(mail.recipient)
    return mailed

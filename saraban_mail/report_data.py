"""The head's report's items, read from the journal: one `report.ReportItem` per registered
matter, with its route, due date and state from the matter's events. Read-only.

The latest `routed` event names the matter's service and unit, the latest `due` event its due
date (ครบกำหนด), as issue 20's routing and service levels write them."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, tzinfo

from saraban_mail.category import Category
from saraban_mail.journal import Journal
from saraban_mail.report import NONE, Period, ReportItem
from saraban_mail.units import Units

ACK_KINDS = ("acknowledgement", "wrong_channel", "letter_receipt")  # as journal.ack_timeliness


def gather(journal: Journal, units: Units, period: Period, tz: tzinfo) -> list[ReportItem]:
    """Every matter whose receipt year can hold a date of the period (a number belongs to the
    Buddhist-era year of its official receipt; a day either side for the zone)."""
    first = (period.start - timedelta(days=1)).year + 543
    last = (period.end + timedelta(days=1)).year + 543
    items = []
    for year in range(first, last + 1):
        for entry in journal.register_entries(year):
            item = _item(journal, units, year, entry["receipt_no"], tz)
            if item is not None:
                items.append(item)
    return items


def _item(journal: Journal, units: Units, year: int, number: int, tz: tzinfo) -> ReportItem | None:
    stored = journal.message_of_receipt(year, number)
    if stored is None:
        return None
    record = stored.record
    events = journal.events(year, number)
    route, due = _latest(events, "routed"), _latest(events, "due")
    states = [e["state"] for e in events if e["state"]]
    acks = [_time(m["sent_at"], tz) for m in journal.mail_of(stored.id)
            if m["kind"] in ACK_KINDS and m["sent_at"]]
    results = [_time(e["at"], tz) for e in events if e["kind"] == "result_sent"]
    results += [_time(r["sent_at"], tz) for r in journal.results_of_receipt(year, number)
                if r["sent_at"]]
    service = units.service(route.get("service") or "") if route else None
    unit = units.unit(route.get("unit") or "") if route else None
    return ReportItem(
        year=year, number=number,
        official_at=record.official_received_at.astimezone(tz),
        channel=("letter" if record.category == Category.OFFICIAL_LETTER
                 else "wrong_channel" if record.category == Category.WRONG_CHANNEL
                 else "staff" if record.watched else "email"),
        service=service.name_th if service else (route or {}).get("service") or NONE,
        unit=unit.name_th if unit else (route or {}).get("unit") or NONE,
        needs_ack=bool(record.requester),
        ack_due=record.ack_due.astimezone(tz) if record.ack_due else None,
        ack_sent=min(acks, default=None),
        result_at=min(results, default=None),
        due=date.fromisoformat(due["due"]) if due and due.get("due") else None,
        state=states[-1] if states else "received",
        # Registered high-risk: its first state was identity_pending (matters.is_high_risk).
        high_risk=record.high_risk or "identity_pending" in states,
    )


def _latest(events: list, kind: str) -> dict | None:
    """The detail of the matter's latest event of this kind."""
    found = [e for e in events if e["kind"] == kind]
    return json.loads(found[-1]["detail"] or "{}") if found else None


def _time(text: str, tz: tzinfo) -> datetime:
    return datetime.fromisoformat(text).astimezone(tz)

"""Retention: which records are due for purging under the retention table, which need the
head of agency's approval first, and which dated backups to keep. Pure: no files, no clock.

Items come from keeping.py (the shell walks the folders and the journal); a register is
never an item, and asking to purge one is a programming error."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

# The kinds of the [retention] table, in the order status and the README show them. Each
# says from when its period counts and whether destroying it needs the head's approval
# (บัญชีหนังสือขอทำลาย: official records) or is data minimisation done by the service.
KINDS: dict[str, tuple[str, bool, str]] = {
    # kind: (counted from, needs approval, what it is)
    "request_records": ("created", True, "registered mail as it arrived (.eml)"),
    "attachments": ("created", True, "files that came with registered mail"),
    "identity_evidence": ("closed", False, "identity evidence (personal data)"),
    "video_call_images": ("closed", False, "video-call images (personal data)"),
    "review_copies": ("closed", False, "copies of mail kept for review"),
    "result_pdfs": ("created", True, "results as sent (PDF)"),
    "mail_archive": ("created", True, "the mailbox archive"),
    "logs": ("created", False, "log files"),
}
# Held as personal data: what `status` counts for the data custodian.
PERSONAL = ("request_records", "attachments", "identity_evidence", "video_call_images",
            "review_copies", "result_pdfs", "mail_archive")
# Never purged, whatever a table says: the registers (ทะเบียนหนังสือรับ/ส่ง) are the
# agency's permanent record of what came and went.
NEVER = ("register",)
PERIOD = re.compile(r"^(\d{1,4})([dmy])$")


class RetentionError(ValueError):
    """A purge asked of something the rules never purge (a register)."""


@dataclass(frozen=True)
class Item:
    kind: str
    ref: str  # where it is, relative to the office folder (for people and the journal)
    created: date
    closed: date | None = None  # the matter's end (result sent, disposed, decided); None: open
    year: int | None = None  # the receipt's (or send's) Buddhist-era year, when it has one
    number: int | None = None
    book: str = "incoming"  # incoming | outgoing: which register numbers it
    subject: str = ""


@dataclass(frozen=True)
class Due:
    item: Item
    due_on: date
    rule: str  # e.g. "request_records=10y"
    needs_approval: bool


def add_period(start: date, period: str) -> date | None:
    """start + period; None for "forever"."""
    found = PERIOD.match(period)
    if period == "forever" or not found:
        return None
    count, unit = int(found.group(1)), found.group(2)
    if unit == "d":
        return start + timedelta(days=count)
    months = count * (12 if unit == "y" else 1)
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, _days_in(year, month + 1))
    return date(year, month + 1, day)


def _days_in(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def due_on(item: Item, table: Mapping[str, str]) -> date | None:
    """The day an item may be purged; None while it is kept (forever, or a matter still open
    for a kind counted from its close)."""
    if item.kind in NEVER or item.kind not in KINDS:
        raise RetentionError(f"{item.ref}: a {item.kind} is never purged")
    counted_from = KINDS[item.kind][0]
    start = item.closed if counted_from == "closed" else item.created
    return None if start is None else add_period(start, table[item.kind])


def due(items: Iterable[Item], table: Mapping[str, str], today: date) -> list[Due]:
    """The items whose period has run out by `today`, oldest first."""
    found = []
    for item in items:
        when = due_on(item, table)
        if when is not None and when <= today:
            found.append(Due(item, when, f"{item.kind}={table[item.kind]}", KINDS[item.kind][1]))
    return sorted(found, key=lambda d: (d.due_on, d.item.ref))


def backups_to_keep(days: Iterable[date], daily: int, weekly: int, monthly: int) -> set[date]:
    """Of the days that have a backup, those a grandfather-father-son rule keeps: the newest
    `daily` days, the newest of each of the last `weekly` ISO weeks, and of each of the last
    `monthly` months. The newest backup is always kept."""
    ordered = sorted(set(days), reverse=True)
    keep = set(ordered[:max(daily, 1)])
    for count, bucket in ((weekly, lambda d: d.isocalendar()[:2]), (monthly, lambda d: (d.year, d.month))):
        seen: list[object] = []
        for day in ordered:
            key = bucket(day)
            if key not in seen:
                if len(seen) == count:
                    break
                seen.append(key)
                keep.add(day)
    return keep

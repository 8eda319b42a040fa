"""The head's report (รายงานสถิติ): the figures of a fiscal year or a month, computed from
one `ReportItem` per registered matter; pure, the files are written by `report_files`/`report_pdf`.

Every figure is defined here once, so the workbook, the CSV and the PDF cannot disagree:
requests by month, service, unit and channel; acknowledgements on time; days to result per
service (median and 90th percentile); service-level (SLA) breaches; high-risk matters; disposals."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from saraban_mail import sla
from saraban_mail.errors import SarabanError
from saraban_mail.thaitext import MONTHS_SHORT

NONE = "ไม่ระบุ"  # a matter no service or unit was matched to: it stays with the saraban desk

# How the request reached us, in the order the tables list them.
CHANNELS = {
    "email": "อีเมลสารบรรณ",  # to saraban@ itself
    "wrong_channel": "ผิดช่องทาง",  # a request for a service with its own channel
    "staff": "อีเมลเจ้าหน้าที่",  # found in a watched staff mailbox (watch.py)
    "letter": "หนังสือราชการ",  # an official letter from another agency
}
# Matter states as matters.py names them (the core does not import it).
CANCELLED = "cancelled"
DISPOSALS = {"disposed": "จำหน่ายเรื่องแล้ว", "to_dispose": "เสนอจำหน่ายเรื่อง"}


@dataclass(frozen=True)
class Period:
    """The time a report covers: [start, end) in office dates."""

    key: str  # in file names: fy2569, 2569-11
    label: str  # ปีงบประมาณ พ.ศ. 2569 / เดือน พ.ย. 2569
    start: date
    end: date  # the first day after the period

    @property
    def months(self) -> tuple[tuple[int, int], ...]:
        """(CE year, month) of each month of the period, in order."""
        found, year, month = [], self.start.year, self.start.month
        while date(year, month, 1) < self.end:
            found.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return tuple(found)


def _year_ce(text: str, what: str) -> int:
    """A year as typed: Buddhist era (2569) or, below 2400, common era (2026)."""
    if not text.isdigit() or not 1900 <= int(text) <= 2700:
        raise SarabanError(f"{what} '{text}' is not a year such as 2569 (Buddhist era)")
    year = int(text)
    return year - 543 if year >= 2400 else year


def fiscal_year(text: str) -> Period:
    """ปีงบประมาณ: fiscal year 2569 runs from 1 October 2568 to 30 September 2569."""
    ce = _year_ce(text.strip(), "fiscal year")
    return Period(f"fy{ce + 543}", f"ปีงบประมาณ พ.ศ. {ce + 543}", date(ce - 1, 10, 1),
                  date(ce, 10, 1))


def month(text: str) -> Period:
    """2569-11 (Buddhist era) or 2025-11 (common era): a year of 2400 or more is BE."""
    found = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", text)
    if not found or not 1 <= int(found[2]) <= 12:
        raise SarabanError(f"month '{text}' is not a year and month such as 2569-11")
    ce, number = _year_ce(found[1], "year"), int(found[2])
    end = date(ce + 1, 1, 1) if number == 12 else date(ce, number + 1, 1)
    return Period(f"{ce + 543}-{number:02d}", f"เดือน {month_label(ce, number, long=True)}",
                  date(ce, number, 1), end)


def month_label(ce_year: int, number: int, *, long: bool = False) -> str:
    from saraban_mail.thaitext import MONTHS_LONG

    return f"{(MONTHS_LONG if long else MONTHS_SHORT)[number - 1]} {ce_year + 543}"


@dataclass(frozen=True)
class ReportItem:
    """One registered matter, as the report reads it (gathered by `report_data`)."""

    year: int  # of the receipt number, Buddhist era
    number: int
    official_at: datetime  # วันเวลารับตามกฎหมาย, in the office's zone
    channel: str  # a key of CHANNELS
    service: str  # the service's Thai name, NONE when unmatched
    unit: str  # the unit's Thai name, NONE when unmatched
    needs_ack: bool  # a requester to acknowledge (a system sender gets none)
    ack_due: datetime | None
    ack_sent: datetime | None
    result_at: datetime | None  # the first result sent
    due: date | None  # ครบกำหนด: the latest `due` event, None when no service level applies
    state: str  # the matter's current state
    high_risk: bool

    @property
    def receipt(self) -> str:
        return f"{self.number}/{self.year}"


@dataclass(frozen=True)
class Table:
    key: str  # sheet and CSV name
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str | int | float, ...], ...]
    note: str = ""  # how the figures are counted, printed under the table


@dataclass(frozen=True)
class Report:
    agency: str
    period: Period
    as_of: datetime
    tables: tuple[Table, ...]
    count: int  # matters counted (cancelled numbers left out)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


def breached(item: ReportItem, today: date) -> bool:
    """เกินกำหนด: the result went after the due date, or none went and the due date has
    passed while the matter is open and not paused for the citizen's documents."""
    if item.due is None:
        return False
    if item.result_at is not None:
        return item.result_at.date() > item.due
    return sla.overdue(item.due, item.state, today)


def days_to_result(item: ReportItem) -> int | None:
    """Calendar days from the official receipt date to the date the first result went."""
    return None if item.result_at is None else (item.result_at.date() - item.official_at.date()).days


def ack_outcome(item: ReportItem, now: datetime) -> str:
    """on_time | late | missing (due and not sent) | waiting (not due yet) | none."""
    if not item.needs_ack or item.ack_due is None:
        return "none"
    if item.ack_sent is not None:
        return "on_time" if item.ack_sent <= item.ack_due else "late"
    return "missing" if now > item.ack_due else "waiting"


def p90(values: list[int]) -> float:
    """The 90th percentile by linear interpolation between the closest ranks, min and max
    included (statistics.quantiles method "inclusive", as a spreadsheet's PERCENTILE.INC)."""
    if len(values) == 1:
        return float(values[0])
    return round(statistics.quantiles(values, n=10, method="inclusive")[8], 1)


def build(items: Iterable[ReportItem], period: Period, agency: str, now: datetime) -> Report:
    """The report of the matters officially received within the period."""
    today = now.date()
    inside = [i for i in items if period.start <= i.official_at.date() < period.end]
    cancelled = sum(1 for i in inside if i.state == CANCELLED)
    counted = sorted((i for i in inside if i.state != CANCELLED), key=lambda i: i.official_at)
    acks = [ack_outcome(i, now) for i in counted]
    on_time, late, missing = (acks.count(k) for k in ("on_time", "late", "missing"))
    judged = on_time + late + missing
    breaches = [i for i in counted if breached(i, today)]
    summary = (
        ("จำนวนเรื่องรับทั้งหมด", len(counted)),
        ("ตอบรับภายในกำหนด", on_time),
        ("ตอบรับล่าช้า", late),
        ("ยังไม่ได้ตอบรับทั้งที่ถึงกำหนดแล้ว", missing),
        ("ร้อยละการตอบรับภายในกำหนด", round(100 * on_time / judged, 1) if judged else "-"),
        ("ส่งผลการดำเนินการแล้ว", sum(1 for i in counted if i.result_at)),
        ("เรื่องที่เกินกำหนดตามมาตรฐานการให้บริการ", len(breaches)),
        ("เรื่องที่มีความเสี่ยงสูง (ต้องยืนยันตัวตน)", sum(1 for i in counted if i.high_risk)),
        *((label, sum(1 for i in counted if i.state == state))
          for state, label in DISPOSALS.items()),
        ("เลขรับที่ยกเลิก (ไม่นับในรายงาน)", cancelled),
    )
    tables = (
        Table("summary", "สรุป", ("รายการ", "จำนวน"), summary,
              "ตอบรับภายในกำหนด: ตอบรับภายในวันทำการที่รับเรื่อง หรือเช้าวันทำการถัดไปสำหรับ"
              "เรื่องที่มานอกเวลาราชการ; ร้อยละคิดจากเรื่องที่ถึงกำหนดตอบรับแล้ว"),
        Table("months", "จำนวนเรื่องรายเดือน", ("เดือน", "จำนวนเรื่อง"),
              tuple((month_label(y, m), sum(1 for i in counted if (i.official_at.year,
                                                                     i.official_at.month) == (y, m)))
                    for y, m in period.months)),
        _by_service(counted, today),
        _by_unit(counted, today),
        Table("channels", "จำนวนเรื่องตามช่องทาง", ("ช่องทาง", "จำนวนเรื่อง"),
              tuple((label, sum(1 for i in counted if i.channel == key))
                    for key, label in CHANNELS.items())),
        Table("breaches", "เรื่องที่เกินกำหนด", ("เลขรับ", "งานบริการ", "ส่วนงาน", "ครบกำหนด",
                                                "ส่งผลเมื่อ"),
              tuple((i.receipt, i.service, i.unit, _be(i.due),
                     _be(i.result_at.date()) if i.result_at else "ยังไม่ส่งผล") for i in breaches)),
    )
    return Report(agency, period, now, tables, len(counted))


def _be(day: date | None) -> str:
    return "-" if day is None else f"{day.day} {MONTHS_SHORT[day.month - 1]} {day.year + 543}"


def _groups(items: list[ReportItem], key) -> list[tuple[str, list[ReportItem]]]:
    """Groups by name, the largest first; NONE (unmatched) last."""
    found: dict[str, list[ReportItem]] = {}
    for item in items:
        found.setdefault(key(item), []).append(item)
    return sorted(found.items(), key=lambda kv: (kv[0] == NONE, -len(kv[1]), kv[0]))


def _by_service(items: list[ReportItem], today: date) -> Table:
    rows = []
    for name, group in _groups(items, lambda i: i.service):
        days = sorted(d for d in map(days_to_result, group) if d is not None)
        units = sorted({i.unit for i in group})
        rows.append((name, ", ".join(units), len(group), len(days),
                     statistics.median(days) if days else "-", p90(days) if days else "-",
                     sum(1 for i in group if breached(i, today))))
    return Table("services", "จำนวนเรื่องตามงานบริการ",
                 ("งานบริการ", "ส่วนงาน", "จำนวนเรื่อง", "ส่งผลแล้ว", "มัธยฐาน (วัน)",
                  "เปอร์เซ็นไทล์ที่ 90 (วัน)", "เกินกำหนด"), tuple(rows),
                 "วันถึงส่งผล: วันตามปฏิทินนับจากวันรับตามกฎหมายถึงวันที่ส่งผลครั้งแรก; "
                 "เปอร์เซ็นไทล์ที่ 90 คำนวณแบบเดียวกับ PERCENTILE.INC")


def _by_unit(items: list[ReportItem], today: date) -> Table:
    rows = tuple(
        (name, len(group), sum(1 for i in group if i.result_at), sum(
            1 for i in group if breached(i, today)),
         sum(1 for i in group if i.result_at is None and breached(i, today)))
        for name, group in _groups(items, lambda i: i.unit))
    return Table("units", "จำนวนเรื่องตามส่วนงาน",
                 ("ส่วนงาน", "จำนวนเรื่อง", "ส่งผลแล้ว", "เกินกำหนด", "ค้างเกินกำหนดขณะนี้"), rows)

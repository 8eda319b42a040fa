"""What the registers are, as plain data: their columns, files, rows and summary.

No workbook is opened here (the `register` module reads and writes them), so commands
that only need to know about registers, `status` among them, start without openpyxl."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    kind: str = "text"  # text | number | date | datetime | link (a file beside the workbook)


@dataclass(frozen=True)
class RegisterKind:
    key: str  # file name prefix: incoming-2569.xlsx
    title: str  # the sheet, as the Regulation on Correspondence names it
    form: str
    columns: tuple[Column, ...]

    @property
    def number(self) -> Column:
        return self.columns[0]


# The official columns of the form first, then what email adds; the last column is the
# service's own reference, by which it recognises the rows it wrote.
_OFFICIAL_TAIL = (
    Column("doc_no", "ที่", 14),
    Column("doc_date", "ลงวันที่", 13, "date"),
    Column("from", "จาก", 28),
    Column("to", "ถึง", 22),
    Column("subject", "เรื่อง", 42),
    Column("action", "การปฏิบัติ", 24),
    Column("remarks", "หมายเหตุ", 30),
)
REF = Column("ref", "อ้างอิงระบบ", 14)

INCOMING = RegisterKind("incoming", "ทะเบียนหนังสือรับ", "แบบที่ ๑๓", (
    Column("receipt_no", "เลขทะเบียนรับ", 9, "number"),
    *_OFFICIAL_TAIL,
    Column("email", "อีเมลผู้ส่ง", 26),
    Column("received_at", "วันเวลาที่อีเมลเข้าระบบ", 17, "datetime"),
    Column("official_received_at", "วันเวลารับ (ตามกฎหมาย)", 17, "datetime"),
    Column("ack_due", "กำหนดตอบรับ", 17, "datetime"),
    Column("ack_sent", "ตอบรับเมื่อ", 17, "datetime"),
    # The service level's due date (routes.py); text instead while it does not run.
    Column("due", "ครบกำหนด", 13, "date"),
    Column("category", "ประเภท", 13),
    Column("high_risk", "ความเสี่ยงสูง", 9),
    Column("attachments", "ไฟล์แนบ (SHA-256)", 34),
    Column("message_id", "Message-ID", 30),
    REF,
))

OUTGOING = RegisterKind("outgoing", "ทะเบียนหนังสือส่ง", "แบบที่ ๑๔", (
    Column("send_no", "เลขทะเบียนส่ง", 9, "number"),
    *_OFFICIAL_TAIL,
    Column("email", "อีเมลผู้รับ", 26),
    Column("answers", "ตอบเลขทะเบียนรับที่", 12),
    Column("files", "ไฟล์ที่ส่ง (SHA-256)", 34),
    Column("sent_at", "ส่งเมื่อ", 17, "datetime"),
    Column("message_id", "Message-ID", 30),
    REF,
))

# The inquiry service log of seed 004 §1.7 (table 2), one row per request for information.
INQUIRIES = RegisterKind("inquiries", "บันทึกการขอรับบริการ", "ตารางที่ ๒", (
    Column("receipt_no", "เลขทะเบียนรับ", 9, "number"),
    Column("received", "วันที่รับเรื่อง", 17, "datetime"),
    Column("replied", "วันที่ตอบกลับ", 17, "datetime"),
    Column("requester", "ผู้ขอรับบริการ", 28),
    Column("subject", "เรื่อง", 42),
    Column("source", "แหล่งข้อมูล", 30),
    Column("remarks", "หมายเหตุ", 30),
    REF,
))

# Mail the service could not decide (needs_review): received by law, so it has an
# acknowledgement deadline; the clerk decides in คำสั่ง (see review.py), the service does it.
REVIEW = RegisterKind("review", "รอตรวจสอบ", "รายการอีเมลรอเจ้าหน้าที่ตรวจสอบ", (
    Column("number", "ลำดับ", 7, "number"),
    Column("received_at", "วันเวลาที่อีเมลเข้าระบบ", 17, "datetime"),
    Column("official_received_at", "วันเวลารับ (ตามกฎหมาย)", 17, "datetime"),
    Column("ack_due", "กำหนดตอบรับ", 17, "datetime"),
    Column("sender", "ผู้ส่ง", 28),
    Column("subject", "เรื่อง", 34),
    Column("why", "เหตุที่ต้องตรวจสอบ", 34),
    Column("copy", "สำเนาอีเมล", 20, "link"),
    Column("instruction", "คำสั่ง", 24),
    Column("outcome", "ผลการดำเนินการ", 34),
    REF,
))
REVIEW_COPIES = "review"  # register/review/<ref>.eml: the copies the clerks open

KINDS = {kind.key: kind for kind in (INCOMING, OUTGOING, INQUIRIES, REVIEW)}
# Each category as a clerk reads it: the register's ประเภท column and the สรุป sheet.
CATEGORY_TH = {
    "valid": "คำขอ/เรื่องทั่วไป", "wrong_channel": "ผิดช่องทาง (ลงรับ)",
    "official_letter": "หนังสือราชการ", "paper": "หนังสือกระดาษ",
    "wrong_agency": "ผิดหน่วยงาน", "wrong_agency_forward": "ส่งต่อหน่วยงาน",
    "needs_review": "รอเจ้าหน้าที่ตรวจ", "automated": "อีเมลอัตโนมัติ", "spam": "อีเมลขยะ",
}
TITLE_ROW, HEADER_ROW, FIRST_DATA_ROW = 1, 2, 3
SUMMARY_SHEET = "สรุป"
# Columns a register note rewrites rather than adds a line to (the current unit, the due date).
REPLACED_BY_NOTES = frozenset({"to", "due"})
PRINTED_COLUMNS = 11  # the eight official columns, the address and both receipt times
# Cells that a spreadsheet would read as a formula or a command when typed.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Look:
    """How the workbook looks: date digits, and a Thai font both Windows and
    LibreOffice render (LibreOffice substitutes a Thai font when it lacks this one)."""

    date_style: str = "arabic"
    font: str = "TH Sarabun New"
    size: int = 14

    @classmethod
    def of(cls, settings: Any) -> Look:
        """From the [registers] section of the configuration."""
        return cls(settings.date_style, settings.font, settings.font_size)


def date_format(style: str, with_time: bool) -> str:
    """Excel number format: Buddhist-era year, Thai (D07) or Arabic (107) digits."""
    prefix = "[$-D07041E]" if style == "thai_digits" else "[$-107041E]"
    return prefix + ("d mmm yyyy hh:mm" if with_time else "d mmm yyyy")


def workbook_path(folder: Path, kind: RegisterKind, year: int) -> Path:
    return folder / f"{kind.key}-{year}.xlsx"


def incoming_path(folder: Path, year: int) -> Path:
    return workbook_path(folder, INCOMING, year)


@dataclass(frozen=True)
class SheetRow:
    row: int
    number: int | None
    ref: str
    values: dict[str, Any]  # our columns, by key
    all_values: tuple[Any, ...] = ()  # every cell of the row, clerks' columns included


@dataclass(frozen=True)
class Summary:
    """What the สรุป sheet shows: plain numbers computed from the journal and sheet."""

    year: int
    by_month: dict[int, dict[str, int]]  # month -> category -> count
    acks_on_time: int = 0
    acks_late: int = 0
    acks_waiting: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    as_of: str = ""  # when the numbers were taken, as shown to the reader
    space: str = ""  # the mailbox's use against its quota, as the last poll read it


def service_ref(identity: str) -> str:
    """The service's reference in the incoming register: how it knows a row is its own."""
    return f"SM-{identity[:12]}"


def stamp(path: Path) -> tuple[int, int, int]:
    """The file's identity (inode, size, modification time); zeros when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)

"""The incoming register workbook (ทะเบียนหนังสือรับ, แบบที่ ๑๓) in register/.

Reads the highest receipt number clerks and the service have used, and appends
rows: re-read before every write, append only, saved atomically with a backup."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

from saraban_mail.errors import RegisterBusy, RegisterError


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int
    kind: str = "text"  # text | number | date | datetime


# The official columns of แบบที่ ๑๓ first, then what email adds.
INCOMING_COLUMNS: tuple[Column, ...] = (
    Column("receipt_no", "เลขทะเบียนรับ", 10, "number"),
    Column("doc_no", "ที่", 14),
    Column("doc_date", "ลงวันที่", 14, "date"),
    Column("from", "จาก", 28),
    Column("to", "ถึง", 22),
    Column("subject", "เรื่อง", 42),
    Column("action", "การปฏิบัติ", 24),
    Column("remarks", "หมายเหตุ", 30),
    Column("email", "อีเมลผู้ส่ง", 28),
    Column("received_at", "วันเวลาที่อีเมลเข้าระบบ", 20, "datetime"),
    Column("official_received_at", "วันเวลารับ (ตามกฎหมาย)", 20, "datetime"),
    Column("ack_due", "กำหนดตอบรับ", 20, "datetime"),
    Column("ack_sent", "ตอบรับเมื่อ", 20, "datetime"),
    Column("category", "ประเภท", 14),
    Column("high_risk", "ความเสี่ยงสูง", 10),
    Column("attachments", "ไฟล์แนบ", 36),
    Column("message_id", "Message-ID", 36),
)
TITLE_ROW, HEADER_ROW, FIRST_DATA_ROW = 1, 2, 3
FONT = "TH Sarabun New"


def date_format(style: str, with_time: bool) -> str:
    """Excel number format: Buddhist-era year, Thai (D07) or Arabic (107) digits."""
    prefix = "[$-D07041E]" if style == "thai_digits" else "[$-107041E]"
    return prefix + ("d mmm yyyy hh:mm" if with_time else "d mmm yyyy")


def incoming_path(folder: Path, year: int) -> Path:
    return folder / f"incoming-{year}.xlsx"


def lock_files(path: Path) -> list[Path]:
    """Excel's ~$name.xlsx and LibreOffice's .~lock.name.xlsx# owner files."""
    candidates = [path.with_name(f"~${path.name}"), path.with_name(f".~lock.{path.name}#")]
    return [c for c in candidates if c.exists()]


def safe_text(value: str) -> str:
    """Citizen text as plain text: no control characters openpyxl would refuse."""
    return ILLEGAL_CHARACTERS_RE.sub(" ", value)


def _numbers(sheet: Worksheet) -> list[int]:
    found = []
    for (value,) in sheet.iter_rows(min_row=FIRST_DATA_ROW, max_col=1, values_only=True):
        if isinstance(value, int | float) and value == int(value):
            found.append(int(value))
        elif isinstance(value, str) and value.strip().isdigit():
            found.append(int(value.strip()))
    return found


def _last_used_row(sheet: Worksheet) -> int:
    """The last row holding a value (max_row also counts rows that are only styled)."""
    for row in range(sheet.max_row, 0, -1):
        if any(cell.value not in (None, "") for cell in sheet[row]):
            return row
    return 0


def highest_number(path: Path) -> int:
    """The highest receipt number already in the workbook (0 when there is none)."""
    if not path.exists():
        return 0
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise RegisterError(f"cannot read register {path.name}: {exc}") from exc
    try:
        return max(_numbers(book.worksheets[0]), default=0)
    finally:
        book.close()


def _new_book(title: str) -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "ทะเบียนหนังสือรับ"
    sheet.cell(TITLE_ROW, 1, title).font = Font(name=FONT, size=18, bold=True)
    for index, column in enumerate(INCOMING_COLUMNS, start=1):
        cell = sheet.cell(HEADER_ROW, index, column.title)
        cell.font = Font(name=FONT, size=14, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        sheet.column_dimensions[cell.column_letter].width = column.width
    sheet.freeze_panes = f"A{FIRST_DATA_ROW}"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.row_dimensions[HEADER_ROW].height = 42
    return book


def _set(sheet: Worksheet, row: int, col: int, column: Column, value: Any, style: str) -> None:
    cell = sheet.cell(row, col)
    cell.font = Font(name=FONT, size=14)
    cell.alignment = Alignment(vertical="top", wrap_text=True)
    if value in (None, ""):
        return
    if column.kind in ("date", "datetime"):
        moment = datetime.fromisoformat(value)
        # Excel has no time zones: store Bangkok wall-clock time.
        cell.value = moment.replace(tzinfo=None) if column.kind == "datetime" else moment.date()
        cell.number_format = date_format(style, column.kind == "datetime")
    elif column.kind == "number":
        cell.value = int(value)
    else:
        cell.value = safe_text(str(value))
        # Never a formula: a subject like "=HYPERLINK(...)" stays text, even after editing.
        cell.data_type = "s"
        cell.quotePrefix = cell.value[:1] in ("=", "+", "-", "@")


@dataclass(frozen=True)
class WriteResult:
    path: Path
    written: list[int]  # receipt numbers appended now
    already: list[int]  # numbers found in the sheet already (a save before a crash)


def append_rows(path: Path, title: str, rows: list[dict[str, Any]], acks: dict[int, str],
                style: str) -> WriteResult:
    """Append rows (dicts keyed by column) and fill sent-acknowledgement cells; one save."""
    locks = lock_files(path)
    if locks:
        raise RegisterBusy(f"{path.name} is open in a spreadsheet program ({locks[0].name})")
    try:
        book = openpyxl.load_workbook(path) if path.exists() else _new_book(title)
    except Exception as exc:
        raise RegisterError(f"cannot read register {path.name}: {exc}") from exc
    sheet = book.worksheets[0]
    present = set(_numbers(sheet))
    written, already = [], []
    for row in rows:
        number = int(row["receipt_no"])
        if number in present:
            already.append(number)
            continue
        target = max(_last_used_row(sheet) + 1, FIRST_DATA_ROW)
        for index, column in enumerate(INCOMING_COLUMNS, start=1):
            _set(sheet, target, index, column, row.get(column.key), style)
        present.add(number)
        written.append(number)
    if acks:
        ack_col = next(i for i, c in enumerate(INCOMING_COLUMNS, 1) if c.key == "ack_sent")
        for row_index in range(FIRST_DATA_ROW, sheet.max_row + 1):
            number = sheet.cell(row_index, 1).value
            if isinstance(number, int) and number in acks and not sheet.cell(row_index, ack_col).value:
                _set(sheet, row_index, ack_col, INCOMING_COLUMNS[ack_col - 1], acks[number], style)
    _save_atomically(book, path)
    return WriteResult(path, written, already)


def _save_atomically(book: openpyxl.Workbook, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".saving-", suffix=".xlsx")
    os.close(handle)
    try:
        book.save(temp)
        with open(temp, "rb") as saved:
            os.fsync(saved.fileno())
        if path.exists():
            shutil.copy2(path, path.with_suffix(".xlsx.bak"))
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise RegisterError(f"cannot save register {path.name}: {exc.strerror or exc}") from exc

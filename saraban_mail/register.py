"""The register workbooks in register/: incoming (แบบที่ ๑๓) and outgoing (แบบที่ ๑๔).

Clerks live in these files; the service re-reads a workbook before every write, finds
its columns by their headings, only appends rows (and fills its own cells), never
writes while the file is open, and saves atomically keeping the last backups."""

from __future__ import annotations

import gc
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from copy import copy
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from saraban_mail.config import Sharing
from saraban_mail.errors import RegisterBusy, RegisterError
from saraban_mail.files import (
    remove_stale_temporaries,
    share_file,
    shared_dir,
    temporary_prefix,
)
from saraban_mail.layout import (  # noqa: F401 (the register's vocabulary, re-exported)
    CATEGORY_TH,
    FIRST_DATA_ROW,
    FORMULA_START,
    HEADER_ROW,
    INCOMING,
    INQUIRIES,
    KINDS,
    OUTGOING,
    PRINTED_COLUMNS,
    REF,
    REPLACED_BY_NOTES,
    REVIEW,
    SUMMARY_SHEET,
    TITLE_ROW,
    Column,
    Look,
    RegisterKind,
    SheetRow,
    Summary,
    date_format,
    incoming_path,
    service_ref,
    stamp,
    workbook_path,
)
from saraban_mail.thaitext import MONTHS_SHORT


def safe_text(value: str) -> str:
    """Citizen text as plain text: no control characters openpyxl would refuse."""
    return ILLEGAL_CHARACTERS_RE.sub(" ", value)


# -- is the workbook free? ------------------------------------------------------------


def lock_files(path: Path) -> list[Path]:
    """Excel's ~$name.xlsx and LibreOffice's .~lock.name.xlsx# owner files."""
    candidates = [path.with_name(f"~${path.name}"), path.with_name(f".~lock.{path.name}#")]
    return [c for c in candidates if c.exists()]


def _lock_owner(lock: Path) -> str:
    """Who holds it: LibreOffice writes 'user,name,host,date,...'; Excel a user name."""
    try:
        data = lock.read_bytes()[:512]
    except OSError:
        return ""
    if lock.name.startswith(".~lock."):
        fields = data.decode("utf-8", "replace").split(",")
        return f"{fields[1] or fields[0]} on {fields[2]}" if len(fields) > 2 else ""
    text = re.sub(r"[^\w .@-]", "", data[1:1 + data[0]].decode("latin-1", "replace")) if data else ""
    return text.strip()


def _owner_gone(lock: Path) -> bool:
    """A LibreOffice lock from this computer while no LibreOffice runs here."""
    if not lock.name.startswith(".~lock."):
        return False
    fields = lock.read_text("utf-8", "replace").split(",")
    if len(fields) < 3 or fields[2] != socket.gethostname():
        return False
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"soffice" in cmdline.read_bytes():
                return False
        except OSError:
            continue
    return Path("/proc/self").exists()


def ensure_free(path: Path, stale_hours: float, now: datetime | None = None) -> None:
    """Raise RegisterBusy while a clerk has the workbook open (or it cannot be written).

    A stale lock (its owner gone, or older than `stale_hours` by the service's clock `now`)
    is still respected, since a workbook open on another computer looks the same: it is
    reported with what to do."""
    for lock in lock_files(path):
        clock = now.timestamp() if now is not None else time.time()
        age_hours = (clock - lock.stat().st_mtime) / 3600
        owner = _lock_owner(lock)
        who = f" by {owner}" if owner else ""
        gone = _owner_gone(lock)
        if gone or age_hours > stale_hours:
            why = "its program is no longer running" if gone else f"it is {age_hours:.0f} hours old"
            raise RegisterBusy(
                f"{path.name} has a stale lock file {lock.name}{who} ({why}): "
                "if nobody has the workbook open, delete the lock file"
            )
        raise RegisterBusy(f"{path.name} is open in a spreadsheet program ({lock.name}{who})")
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise RegisterBusy(f"{path.name} cannot be opened for writing ({exc.strerror})") from exc
    if not os.access(path.parent if path.parent.exists() else path.parent.parent, os.W_OK):
        raise RegisterBusy(f"the register folder {path.parent} is not writable")


# -- reading ---------------------------------------------------------------------------


def open_book(path: Path, *, read_only: bool = False) -> openpyxl.Workbook:
    try:
        return openpyxl.load_workbook(path, read_only=read_only)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise RegisterError(
            f"cannot read register {path.name} (damaged, not an .xlsx file, or "
            f"password-protected: {type(exc).__name__}); it is left untouched"
        ) from exc
    except Exception as exc:  # openpyxl raises many types on a damaged file
        raise RegisterError(
            f"cannot read register {path.name} ({type(exc).__name__}: {exc}); it is left untouched"
        ) from exc


def register_sheet(book: openpyxl.Workbook, kind: RegisterKind) -> Worksheet:
    if kind.title in book.sheetnames:
        return book[kind.title]
    return next(ws for ws in book.worksheets if ws.title != SUMMARY_SHEET)


def _heading(value: Any) -> str:
    return re.sub(r"\s+", "", str(value or ""))


def header_map(sheet: Worksheet, kind: RegisterKind) -> dict[str, int]:
    """Column of each of our headings: clerks may insert, move or add columns."""
    wanted = {_heading(c.title): c.key for c in kind.columns}
    found: dict[str, int] = {}
    for cell in sheet[HEADER_ROW]:
        key = wanted.get(_heading(cell.value))
        if key and key not in found:
            found[key] = cell.column
    return found


def _as_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def sheet_rows(sheet: Worksheet, kind: RegisterKind) -> Iterator[SheetRow]:
    columns = header_map(sheet, kind)
    number_col = columns.get(kind.number.key, 1)
    ref_col = columns.get(REF.key)
    for index, values in enumerate(
        sheet.iter_rows(min_row=FIRST_DATA_ROW, values_only=True), start=FIRST_DATA_ROW
    ):
        if not any(v not in (None, "") for v in values):
            continue
        named = {key: values[col - 1] for key, col in columns.items() if col - 1 < len(values)}
        ref = str(values[ref_col - 1] or "") if ref_col and ref_col - 1 < len(values) else ""
        number = _as_number(values[number_col - 1]) if number_col - 1 < len(values) else None
        yield SheetRow(index, number, ref, named, tuple(values))


def highest_number(path: Path, kind: RegisterKind = INCOMING, *, keep: bool = False) -> int:
    """The highest number already in the workbook (0 when there is none). `keep`: a
    write follows, so a workbook that must be read is loaded whole and kept for it."""
    if not path.exists():
        return 0
    rows = read_rows(path, kind, keep=keep)[1]
    return max((r.number for r in rows if r.number is not None), default=0)


def read_rows(path: Path, kind: RegisterKind, *,
              keep: bool = False) -> tuple[list[str], list[SheetRow]]:
    """Every heading and data row of the register sheet, read without loading styles
    (for numbering, export and checks; a write loads the whole workbook once). A workbook
    this process read or saved and no one has changed since is not read again. `keep`
    loads it whole instead and keeps it for the next `append_rows` (see `_kept`)."""
    key = (path.resolve(), kind.key)
    known = _known.get(key)
    seen = stamp(path)
    if known is not None and known[0] == seen:
        return list(known[1]), list(known[2])
    book = open_book(path, read_only=not keep)
    try:
        sheet = register_sheet(book, kind)
        headings = [str(c.value or "") for c in sheet[HEADER_ROW]]
        rows = list(sheet_rows(sheet, kind))
    finally:
        if not keep:
            book.close()
    if keep:
        _loaded[path.resolve()] = (seen, book)
    _known[key] = (seen, headings, rows)
    return list(headings), list(rows)


# A workbook loaded whole to number a poll's rows, for that poll's write: one load, not
# a read and then a load. Used only if the file is still the one that was loaded.
_loaded: dict[Path, tuple[tuple[int, int, int], openpyxl.Workbook]] = {}


def _kept(path: Path) -> openpyxl.Workbook | None:
    seen, book = _loaded.pop(path.resolve(), (None, None))
    return book if seen is not None and seen == stamp(path) else None


def release() -> None:
    """Drop workbooks kept for a write that did not come (the end of a poll)."""
    _loaded.clear()


# What this process last read or saved of each register sheet, with the file's identity
# then (inode, size, modification time): any save by a clerk's spreadsheet changes it.
_known: dict[tuple[Path, str], tuple[tuple[int, int, int], list[str], list[SheetRow]]] = {}


def snapshot(path: Path, kind: RegisterKind) -> tuple[tuple[int, int, int], list[SheetRow]]:
    """The rows with the identity of the file they were read from (read or remembered)."""
    rows = read_rows(path, kind)[1]
    return _known[(path.resolve(), kind.key)][0], rows


def _remember(path: Path, kind: RegisterKind, sheet: Worksheet) -> None:
    """After our own save: the rows as saved, so that the next read need not open the file.
    Read back from the saved file they would be the same values (stored as written)."""
    def as_read(value: Any) -> Any:  # a date cell reads back as a datetime at midnight
        is_date = isinstance(value, date) and not isinstance(value, datetime)
        return datetime(value.year, value.month, value.day) if is_date else value

    headings = [str(c.value or "") for c in sheet[HEADER_ROW]]
    rows = [replace(r, values={k: as_read(v) for k, v in r.values.items()},
                    all_values=tuple(as_read(v) for v in r.all_values))
            for r in sheet_rows(sheet, kind)]
    _known[(path.resolve(), kind.key)] = (stamp(path), headings, rows)


# -- writing ---------------------------------------------------------------------------


def _thin() -> Border:
    side = Side(style="thin", color="999999")
    return Border(left=side, right=side, top=side, bottom=side)


def _new_book(kind: RegisterKind, title: str, look: Look) -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = kind.title
    sheet.cell(TITLE_ROW, 1, title).font = Font(name=look.font, size=look.size + 4, bold=True)
    sheet.row_dimensions[TITLE_ROW].height = 30
    for index, column in enumerate(kind.columns, start=1):
        _heading_cell(sheet, index, column, look)
    sheet.row_dimensions[HEADER_ROW].height = 42
    sheet.freeze_panes = f"B{FIRST_DATA_ROW}"
    last = get_column_letter(len(kind.columns))
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW}"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.print_options.gridLines = False
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.oddFooter.center.text = "หน้า &P / &N"
    return book


def _heading_cell(sheet: Worksheet, index: int, column: Column, look: Look) -> None:
    cell = sheet.cell(HEADER_ROW, index, column.title)
    cell.font = Font(name=look.font, size=look.size, bold=True)
    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    cell.fill = PatternFill("solid", fgColor="DDE7F0")
    cell.border = _thin()
    sheet.column_dimensions[cell.column_letter].width = column.width


def _ensure_headings(sheet: Worksheet, kind: RegisterKind, look: Look) -> dict[str, int]:
    """Our headings, re-added at the end if a clerk deleted one (their columns stay)."""
    columns = header_map(sheet, kind)
    for column in kind.columns:
        if column.key not in columns:
            index = max([c.column for c in sheet[HEADER_ROW] if c.value not in (None, "")],
                        default=0) + 1
            _heading_cell(sheet, index, column, look)
            columns[column.key] = index
    return columns


def write_cell(sheet: Worksheet, row: int, col: int, column: Column, value: Any,
               look: Look, styles: dict[tuple, Any] | None = None) -> None:
    """Write one of our cells. `styles` (one dict per save) keeps each kind of cell's style
    once made: openpyxl finds a new Font or Border among the book's by comparing it with
    every one, which made styling most of the cost of a write."""
    cell = sheet.cell(row, col)
    empty = value in (None, "")
    if empty:
        pass
    elif column.kind in ("date", "datetime") and not _plain_text(value):
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        # Excel has no time zones: store Bangkok wall-clock time, as a real date.
        cell.value = moment.replace(tzinfo=None) if column.kind == "datetime" else (
            moment.date() if isinstance(moment, datetime) else moment
        )
    elif column.kind in ("date", "datetime"):  # a word where a date is not (yet) due
        cell.value = safe_text(str(value))
        cell.data_type = "s"
    elif column.kind == "number":
        cell.value = int(value)
    elif column.kind == "link":  # a path relative to the workbook: a click opens the file
        cell.value = safe_text(str(value))
        cell.hyperlink = cell.value
        cell.data_type = "s"
    else:
        text = safe_text(str(value))
        cell.value = text
        # Never a formula: the cell is a string, and quote-prefixed so that a clerk
        # editing it in Excel or LibreOffice does not turn it into one either.
        cell.data_type = "s"
    quoted = not empty and column.kind == "text" and str(cell.value).startswith(FORMULA_START)
    key = (column.kind, empty, quoted)
    if styles is not None and key in styles:
        cell._style = copy(styles[key])
        return
    cell.font = Font(name=look.font, size=look.size,
                     **({"color": "0563C1", "underline": "single"} if column.kind == "link" and not empty
                        else {}))
    cell.alignment = Alignment(vertical="top", wrap_text=True)
    cell.border = _thin()
    if not empty and column.kind in ("date", "datetime"):
        cell.number_format = date_format(look.date_style, column.kind == "datetime")
    elif not empty and column.kind == "number":
        cell.alignment = Alignment(horizontal="center", vertical="top")
    cell.quotePrefix = quoted
    if styles is not None:
        styles[key] = copy(cell._style)


def _plain_text(value: Any) -> bool:
    """A string in a date column that is no ISO date: written as the text it is."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return True
    return False


# The due date's colours: past (overdue) and within the week. A rule of the sheet, so the
# colour follows the days without the service saving the file; a matter that no longer
# runs shows text there (routes.SHOWN), which the rule leaves alone.
OVERDUE_FILL, SOON_FILL = "F4B6B6", "FCE8B2"


def _due_colours(sheet: Worksheet, columns: dict[str, int]) -> None:
    from openpyxl.formatting.rule import FormulaRule

    if "due" not in columns:
        return
    letter = get_column_letter(columns["due"])
    cells = f"{letter}{FIRST_DATA_ROW}:{letter}100000"
    if any(str(r.sqref) == cells for r in sheet.conditional_formatting):
        return
    first = f"${letter}{FIRST_DATA_ROW}"
    sheet.conditional_formatting.add(cells, FormulaRule(
        formula=[f"AND(ISNUMBER({first}),{first}<TODAY())"], stopIfTrue=True,
        fill=PatternFill("solid", fgColor=OVERDUE_FILL, bgColor=OVERDUE_FILL)))
    sheet.conditional_formatting.add(cells, FormulaRule(
        formula=[f"AND(ISNUMBER({first}),{first}<=TODAY()+7)"],
        fill=PatternFill("solid", fgColor=SOON_FILL, bgColor=SOON_FILL)))


def write_summary(book: openpyxl.Workbook, summary: Summary, agency: str, look: Look) -> None:
    """(Re)build the สรุป sheet: the service owns it and rewrites it at every save."""
    if SUMMARY_SHEET in book.sheetnames:
        del book[SUMMARY_SHEET]
    sheet = book.create_sheet(SUMMARY_SHEET)
    bold = Font(name=look.font, size=look.size, bold=True)
    plain = Font(name=look.font, size=look.size)
    sheet["A1"] = f"สรุปงานสารบรรณทางอีเมล {agency} ปี พ.ศ. {summary.year}"
    sheet["A1"].font = Font(name=look.font, size=look.size + 4, bold=True)
    sheet["A2"] = (f"ข้อมูล ณ {summary.as_of}: เขียนใหม่ทุกครั้งที่ระบบบันทึกทะเบียน "
                   "(แก้ไขในแผ่นนี้จะถูกเขียนทับ)") if summary.as_of else ""
    sheet["A2"].font = plain
    categories = [c for c in CATEGORY_TH if any(m.get(c) for m in summary.by_month.values())]
    sheet.row_dimensions[3].height = 40
    sheet.cell(3, 1, "เดือน").font = bold
    for j, category in enumerate(categories, start=2):
        cell = sheet.cell(3, j, CATEGORY_TH[category])
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, horizontal="center")
        sheet.column_dimensions[cell.column_letter].width = 14
    sheet.column_dimensions["A"].width = 14
    for i, month in enumerate(range(1, 13), start=4):
        sheet.cell(i, 1, MONTHS_SHORT[month - 1]).font = plain
        for j, category in enumerate(categories, start=2):
            sheet.cell(i, j, summary.by_month.get(month, {}).get(category, 0)).font = plain
    total_row = 16
    sheet.cell(total_row, 1, "รวม").font = bold
    for j in range(2, len(categories) + 2):
        letter = get_column_letter(j)
        sheet.cell(total_row, j, f"=SUM({letter}4:{letter}15)").font = bold

    facts = [
        ("ตอบรับภายในกำหนด", summary.acks_on_time),
        ("ตอบรับเกินกำหนด", summary.acks_late),
        ("ยังไม่ได้ตอบรับ", summary.acks_waiting),
        *[(label, count) for label, count in summary.pending.items()],
        *([("พื้นที่กล่องจดหมาย (โควตา)", summary.space)] if summary.space else []),
    ]
    sheet.cell(18, 1, "การตอบรับและงานค้าง").font = bold
    for i, (label, count) in enumerate(facts, start=19):
        sheet.cell(i, 1, label).font = plain
        sheet.cell(i, 2, count).font = plain
    sheet.column_dimensions["A"].width = 40

    if categories:
        chart = BarChart()
        chart.type = "col"
        chart.grouping = "stacked"
        chart.overlap = 100
        chart.title = f"จำนวนอีเมลรายเดือน พ.ศ. {summary.year}"
        chart.y_axis.title = "ฉบับ"
        data = Reference(sheet, min_col=2, max_col=len(categories) + 1, min_row=3, max_row=15)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=4, max_row=15))
        chart.height, chart.width = 9, 22
        chart.legend.position = "b"
        sheet.add_chart(chart, f"A{19 + len(facts) + 1}")
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 1


def last_modified_by(path: Path) -> str:
    """Who saved the workbook last, as the spreadsheet program recorded it ('' if unknown)."""
    try:
        with zipfile.ZipFile(path) as archive:
            core = archive.read("docProps/core.xml").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError):
        return ""
    found = re.search(r"<cp:lastModifiedBy>([^<]*)</cp:lastModifiedBy>", core)
    return found.group(1).strip() if found else ""


def foreign_drawings(path: Path) -> list[str]:
    """Sheets other than สรุป that hold charts, pictures or shapes: openpyxl would drop
    them on save, so the service refuses to write rather than lose a clerk's work."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            workbook = archive.read("xl/workbook.xml").decode("utf-8", "replace")
            rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            targets = dict(re.findall(r'Id="([^"]+)"[^>]*Target="([^"]+)"', rels))
            targets.update({k: v for v, k in re.findall(r'Target="([^"]+)"[^>]*Id="([^"]+)"', rels)})
            found = []
            for name, rid in re.findall(r'<sheet [^>]*name="([^"]+)"[^>]*r:id="([^"]+)"', workbook):
                target = targets.get(rid, "").lstrip("/").removeprefix("xl/")
                sheet_rels = f"xl/{os.path.dirname(target)}/_rels/{os.path.basename(target)}.rels"
                if name != SUMMARY_SHEET and sheet_rels in names and "drawing" in archive.read(
                    sheet_rels
                ).decode("utf-8", "replace"):
                    found.append(name)
            return found
    except (zipfile.BadZipFile, KeyError, OSError):
        return []


@dataclass(frozen=True)
class WriteResult:
    path: Path
    written: list[int]  # numbers appended now
    already: list[int]  # our rows found in the sheet already (a save before a crash)
    clashes: list[int]  # numbers on our rows that a clerk also typed on a row


def append_rows(path: Path, kind: RegisterKind, title: str, rows: list[dict[str, Any]], *,
                fill: dict[str, dict[str, Any]] | None = None, look: Look = Look(),
                summary: Summary | None = None, agency: str = "", backups: int = 10,
                stale_hours: float = 12.0, own: tuple[str, ...] = (),
                sharing: Sharing | None = None, now: datetime | None = None) -> WriteResult:
    """Append our rows (dicts keyed by column; `ref` identifies each), fill our own cells
    of rows written earlier (`fill`: ref -> {key: value}; only empty ones, except the
    columns in `own`, which the service rewrites), rebuild the summary; one save.
    `sharing`: the clerks' group and mode (see save_atomically); `now`: the service's clock."""
    remove_stale_temporaries(path.parent)
    ensure_free(path, stale_hours, now)
    if path.exists():
        drawings = foreign_drawings(path)
        if drawings:
            raise RegisterError(
                f"{path.name}: sheet '{drawings[0]}' holds a chart or picture that saving "
                "would remove; move it to another workbook so the service can write"
            )
        book = _kept(path) or open_book(path)
    else:
        book = _new_book(kind, title, look)
    sheet = register_sheet(book, kind)
    columns = _ensure_headings(sheet, kind, look)
    _due_colours(sheet, columns)
    existing = list(sheet_rows(sheet, kind))
    by_ref = {r.ref: r for r in existing if r.ref}
    numbers = {r.number for r in existing if r.number is not None and not r.ref}
    written: list[int] = []
    already: list[int] = []
    last = max([r.row for r in existing], default=FIRST_DATA_ROW - 1)
    styles: dict[tuple, Any] = {}
    for row in rows:
        number = int(row[kind.number.key])
        if row["ref"] in by_ref:
            already.append(number)
            continue
        last += 1
        for column in kind.columns:
            write_cell(sheet, last, columns[column.key], column, row.get(column.key), look,
                       styles)
        sheet.row_dimensions[last].height = _row_height(kind, row, look)
        written.append(number)
    for ref, values in (fill or {}).items():
        target = by_ref.get(ref)
        for key, value in values.items():
            column = next(c for c in kind.columns if c.key == key)
            if target is not None and (key in own or sheet.cell(target.row, columns[key]).value
                                       in (None, "")):
                write_cell(sheet, target.row, columns[key], column, value, look, styles)
    _extend_filter(sheet, last)
    _extend_print_area(sheet, last, existed=path.exists())
    if summary is not None:
        write_summary(book, with_paper_rows(summary, existing), agency, look)
    save_atomically(book, path, backups, sharing)
    _remember(path, kind, sheet)
    # Every number on one of our rows that a clerk also typed, whichever came first (the
    # clerk's row typed after ours was written, too): never renumbered, always reported.
    ours = {r.number for r in existing if r.ref and r.number is not None} | set(written)
    clashes = sorted(ours & numbers)
    return WriteResult(path, written, already, clashes)


def _row_height(kind: RegisterKind, row: dict[str, Any], look: Look) -> float:
    """Spreadsheets do not grow a row for wrapped text they did not type themselves:
    estimate the wrapped lines of the fullest printed cell (about a character a unit)."""
    lines = 1
    for column in kind.columns[:PRINTED_COLUMNS]:
        text = str(row.get(column.key) or "")
        if column.kind == "text" and text:
            per_line = max(int(column.width * 0.95), 1)
            lines = max(lines, sum(-(-len(part) // per_line) or 1 for part in text.split("\n")))
    return min(lines, 8) * look.size * 1.45


def annotate_rows(path: Path, kind: RegisterKind, key: str, notes: list[tuple[int, str, str]], *,
                  look: Look = Look(), summary: Summary | None = None, agency: str = "",
                  backups: int = 10, stale_hours: float = 12.0, sharing: Sharing | None = None,
                  now: datetime | None = None) -> list[int]:
    """Add a line to column `key` of rows found by reference (ours) or number (a clerk's);
    returns the numbers noted. The clerk's text in the cell stays, the note goes below it."""
    remove_stale_temporaries(path.parent)
    ensure_free(path, stale_hours, now)
    if not path.exists():
        raise RegisterError(f"{path.name} does not exist yet")
    drawings = foreign_drawings(path)
    if drawings:
        raise RegisterError(f"{path.name}: sheet '{drawings[0]}' holds a chart or picture that "
                            "saving would remove; move it to another workbook")
    book = open_book(path)
    sheet = register_sheet(book, kind)
    columns = _ensure_headings(sheet, kind, look)
    rows = list(sheet_rows(sheet, kind))
    column = next(c for c in kind.columns if c.key == key)
    done = []
    for number, ref, text in notes:
        target = next((r for r in rows if (r.ref == ref if ref else
                                           (r.number == number and not r.ref))), None)
        if target is None:
            continue
        current = str(sheet.cell(target.row, columns[key]).value or "")
        if key in REPLACED_BY_NOTES:
            write_cell(sheet, target.row, columns[key], column, text, look)
        elif text not in current:
            write_cell(sheet, target.row, columns[key], column,
                       f"{current}\n{text}" if current else text, look)
        done.append(number)
    if summary is not None:
        write_summary(book, with_paper_rows(summary, rows), agency, look)
    save_atomically(book, path, backups, sharing)
    _remember(path, kind, sheet)
    return done


def _extend_filter(sheet: Worksheet, last_row: int) -> None:
    ref = sheet.auto_filter.ref
    match = re.fullmatch(rf"A{HEADER_ROW}:([A-Z]+)\d+", ref or "")
    if match:  # ours, or the clerk's on the same range: keep covering every row
        sheet.auto_filter.ref = f"A{HEADER_ROW}:{match.group(1)}{max(last_row, HEADER_ROW)}"


def _extend_print_area(sheet: Worksheet, last_row: int, existed: bool) -> None:
    """The printout is the official form plus the address and receipt times (the rest is
    for the screen); it grows with the rows unless a clerk set a print area of their own."""
    current = sheet.print_area
    ours = re.fullmatch(rf"'?[^!]*'?!\$A\$1:\${get_column_letter(PRINTED_COLUMNS)}\$\d+",
                        str(current[0] if isinstance(current, list) else current or ""))
    if not existed or ours:
        sheet.print_area = f"A1:{get_column_letter(PRINTED_COLUMNS)}{max(last_row, HEADER_ROW)}"


def save_atomically(book: openpyxl.Workbook, path: Path, backups: int,
                    sharing: Sharing | None = None) -> None:
    """Temporary file in the same folder, fsync, backup of the previous version, rename.

    The temporary gets the clerks' mode and group before the rename ([sharing]; without it,
    those of the file it replaces), so a save never leaves a workbook only the service can
    open; temporaries a killed save left behind go first (files.remove_stale_temporaries)."""
    failure = ""
    temp = ""
    previous = sys.unraisablehook
    # A workbook that fails half-written (disk full) leaves openpyxl's archive open; freed
    # later, it fails to close again and Python would print that as a second traceback.
    sys.unraisablehook = lambda _: None
    try:
        try:
            shared_dir(path.parent, sharing)
            remove_stale_temporaries(path.parent)
            handle, temp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(),
                                            suffix=".xlsx")
            os.close(handle)
            book.save(temp)
            with open(temp, "rb") as saved:
                os.fsync(saved.fileno())
            share_file(Path(temp), sharing, like=path)
            if path.exists() and backups > 0:
                _backup(path, backups, sharing)
            os.replace(temp, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            failure = exc.strerror or str(exc)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    if failure:
        if temp:
            Path(temp).unlink(missing_ok=True)
        raise RegisterError(f"cannot save register {path.name}: {failure}")


def _backup(path: Path, keep: int, sharing: Sharing | None) -> None:
    folder = path.parent / ".backups"
    shared_dir(folder, sharing)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    kept = shutil.copy2(path, folder / f"{path.stem}.{stamp}.xlsx")
    share_file(Path(kept), sharing, like=path)
    old = sorted(folder.glob(f"{path.stem}.*.xlsx"))
    for stale in old[:-keep]:
        stale.unlink(missing_ok=True)


def backups_of(path: Path) -> list[Path]:
    return sorted((path.parent / ".backups").glob(f"{path.stem}.*.xlsx"))


def with_paper_rows(summary: Summary, rows: list[SheetRow]) -> Summary:
    """Add the rows clerks typed (no service reference) to the monthly counts."""
    months = {month: dict(counts) for month, counts in summary.by_month.items()}
    for row in rows:
        if row.ref:
            continue
        moment = row.values.get("official_received_at") or row.values.get("doc_date")
        if isinstance(moment, datetime | date):
            counts = months.setdefault(moment.month, {})
            counts["paper"] = counts.get("paper", 0) + 1
    return replace(summary, by_month=months)


def export_csv(out: Path, headings: list[str], rows: list[SheetRow]) -> None:
    """UTF-8 with a byte-order mark, so Excel opens the Thai text correctly; dates ISO."""
    import csv

    def text(value: Any) -> str:
        if isinstance(value, datetime):
            if value.time() == datetime.min.time():  # a date: Excel stores no other kind
                return value.date().isoformat()
            return value.isoformat(sep=" ", timespec="minutes")
        if isinstance(value, date):
            return value.isoformat()
        return "" if value is None else str(value)

    with open(out, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headings)
        for row in rows:
            writer.writerow([text(row.all_values[i]) if i < len(row.all_values) else ""
                             for i in range(len(headings))])


def export_xlsx(source: Path, out: Path, kind: RegisterKind) -> None:
    """The register sheet alone, formatting kept (no summary, no clerks' other sheets)."""
    book = open_book(source)
    keep = register_sheet(book, kind)
    for sheet in list(book.worksheets):
        if sheet is not keep:
            book.remove(sheet)
    save_atomically(book, out, backups=0)

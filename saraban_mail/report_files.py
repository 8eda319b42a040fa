"""The head's report as files clerks and the head open: a workbook with a sheet per table and
bar charts, CSV files (UTF-8 with a BOM, so Excel shows the Thai), and the PDF page.

Written into the register folder (or --out) with the clerks' group and mode (files.shared_write)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from saraban_mail.files import shared_write
from saraban_mail.report import Report, Table

SHEETS = {"summary": "สรุป", "months": "รายเดือน", "services": "งานบริการ", "units": "ส่วนงาน",
          "channels": "ช่องทาง", "breaches": "เกินกำหนด"}


def workbook_bytes(report: Report, font: str = "TH Sarabun New") -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    book.remove(book.active)
    for table in report.tables:
        sheet = book.create_sheet(SHEETS.get(table.key, table.key)[:31])
        sheet.append([f"{table.title} {report.period.label}"])
        sheet.append([report.agency])
        sheet.append([*table.headers])
        for row in table.rows:
            sheet.append([*row])
        if table.note:
            sheet.append([])
            sheet.append([table.note])
        if not table.rows and table.key == "breaches":
            sheet.append(["ไม่มีเรื่องที่เกินกำหนด"])
        for cells in sheet.iter_rows():
            for cell in cells:
                cell.font = Font(name=font, size=14, bold=cell.row in (1, 3))
        sheet["A1"].font = Font(name=font, size=16, bold=True)
        for index, header in enumerate(table.headers):
            letter = sheet.cell(row=3, column=index + 1).column_letter
            sheet.column_dimensions[letter].width = 40 if index == 0 else max(12, len(header) + 4)
            sheet.cell(row=3, column=index + 1).alignment = Alignment(wrap_text=True)
        sheet.freeze_panes = "A4"
        if table.key in ("months", "services") and table.rows:
            chart = BarChart()
            chart.title = table.title
            chart.y_axis.title = "จำนวนเรื่อง"
            chart.legend = None
            column = table.headers.index("จำนวนเรื่อง") + 1
            last = 3 + len(table.rows)
            chart.add_data(Reference(sheet, min_col=column, min_row=3, max_row=last),
                           titles_from_data=True)
            chart.set_categories(Reference(sheet, min_col=1, min_row=4, max_row=last))
            chart.width, chart.height = 22, 11
            sheet.add_chart(chart, f"{sheet.cell(row=1, column=len(table.headers) + 2).column_letter}3")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def write(report: Report, folder: Path, sharing, *, pdf: bytes, font: str) -> list[Path]:
    """report-PERIOD.xlsx, .pdf and report-PERIOD-TABLE.csv in folder; the paths written."""
    stem = f"report-{report.period.key}"
    written = [(folder / f"{stem}.xlsx", workbook_bytes(report, font)),
               (folder / f"{stem}.pdf", pdf)]
    written += [(folder / f"{stem}-{table.key}.csv", csv_bytes(table)) for table in report.tables]
    for path, data in written:
        shared_write(path, data, sharing)
    return [path for path, _ in written]

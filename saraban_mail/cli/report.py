"""saraban-mail report: the head's report of a fiscal year or a month, as a workbook with
charts, a PDF page to sign and CSV files. Reads the journal; writes nothing but the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from saraban_mail.cli.exits import EXIT_OK
from saraban_mail.config import load_config
from saraban_mail.journal import Journal
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now


def cmd_report(args: argparse.Namespace) -> int:
    from saraban_mail import report, report_data, report_files, report_pdf

    period = (report.fiscal_year(args.fiscal_year) if args.fiscal_year
              else report.month(args.month))
    config = load_config(args.config)
    rules = load_rules(config.paths.rules_dir)
    tz = calendar_for(config, rules).tz
    fonts = report_pdf.find_fonts(config.report.font)  # before any work: a missing font is one line
    journal = Journal.open(config.paths.data_dir)
    try:
        items = report_data.gather(journal, rules.units, period, tz)
    finally:
        journal.close()
    built = report.build(items, period, config.agency.name_th, now().astimezone(tz))
    folder = Path(args.out) if args.out else config.paths.register_dir
    paths = report_files.write(built, folder, config.sharing, font=config.registers.font,
                               pdf=report_pdf.pdf_bytes(built, fonts))
    summary = {row[0]: row[1] for row in built.table("summary").rows}
    print(f"{period.label}: {built.count} matters"
          + (f", {summary['เรื่องที่เกินกำหนดตามมาตรฐานการให้บริการ']} past their service level"
             if built.count else " (nothing registered in this period)"))
    for path in paths:
        print(path)
    return EXIT_OK

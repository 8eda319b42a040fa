"""The register commands: `register check` (the journal against each year's workbook:
gaps, duplicates, rows missing, with --repair) and `register export` (CSV or xlsx)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from saraban_mail.audit import Audit, Entry, audit
from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.config import Config, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.layout import INCOMING, incoming_path, service_ref, stamp
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now


def audit_registers(config: Config, journal: Journal, years: list[int], *,
                    noted: bool = False) -> list[Audit]:
    """The audit of each year's register; with `noted`, from the numbers the last poll
    noted when the workbook has not changed since (status need not open a large file)."""
    found = []
    for year in years:
        path = incoming_path(config.paths.register_dir, year)
        rows = journal.noted_sheet(year, stamp(path)) if noted else None
        if rows is None:
            from saraban_mail.register import read_rows

            rows = [(r.number, r.ref) for r in read_rows(path, INCOMING)[1]] if path.exists() else []
        entries = [Entry(number, service_ref(identity), written_at is not None, message)
                   for number, identity, written_at, message in journal.register_entries(year)]
        found.append(audit(year, path, entries, rows,
                           journal.numbers_in_state(year, "cancelled")))
    return found


def cmd_register_check(args: argparse.Namespace) -> int:
    from saraban_mail.poll.registering import write_register

    config = load_config(args.config)
    journal = Journal.open(config.paths.data_dir)
    try:
        years = [args.year] if args.year else journal.register_years()
        audits = audit_registers(config, journal, years)
        if args.repair and any(a.missing for a in audits):
            with journal.transaction():
                for found in audits:
                    journal.rewrite_rows(list(found.missing_messages))
            rules = load_rules(config.paths.rules_dir)
            problems = write_register(journal, config, calendar_for(config, rules),
                                      now)
            for problem in problems:
                print(f"saraban-mail: {problem}", file=sys.stderr)
            audits = audit_registers(config, journal, years)
    finally:
        journal.close()
    for found in audits:
        print("\n".join(found.lines()))
    return EXIT_OK if all(a.clean for a in audits) else EXIT_PENDING


def cmd_register_export(args: argparse.Namespace) -> int:
    from saraban_mail.register import export_csv, export_xlsx, read_rows

    config = load_config(args.config)
    path = incoming_path(config.paths.register_dir, args.year)
    if not path.exists():
        raise SarabanError(f"no register for {args.year}: {path} does not exist")
    out = Path(args.out or f"{path.stem}-export.{args.format}")
    if args.format == "csv":
        headings, rows = read_rows(path, INCOMING)
        export_csv(out, headings, rows)
    else:
        export_xlsx(path, out, INCOMING)
    print(f"{out}")
    return EXIT_OK

"""The clerks' commands that follow a matter after receipt: request-docs, video-call,
verify-identity, deadlines, dispose, show, and faq (the inquiry log as a CSV).

Each takes what it needs from `Office` and sends what it queued at once."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from saraban_mail import followup, matters
from saraban_mail.calendar import buddhist_year, unsuitable_time
from saraban_mail.cli.exits import EXIT_OK
from saraban_mail.cli.office import Office, receipt
from saraban_mail.config import load_config
from saraban_mail.errors import SarabanError
from saraban_mail.service import now
from saraban_mail.thaitext import parse_clerk_datetime, thai_date, thai_datetime


def cmd_request_docs(args: argparse.Namespace) -> int:
    office = Office(args)
    target = office.target(args.receipt, args.year)
    days = office.config.followup.documents_days if args.days is None else args.days
    deadline, _ = matters.request_documents(office.journal, office.config, office.templates,
                                            office.calendar, target, args.items, days,
                                            office.now(), office.actor)
    problems = office.send()
    problems += matters.note_in_register(
        office.config, target.receipt_year,
        [(target.receipt_no, f"ขอเอกสารเพิ่มเติม ครบกำหนด {thai_date(deadline)}")], office.journal,
        office.now())
    print(f"asked {target.recipient} for documents on {target.receipt_no}/{target.receipt_year}; "
          f"due {thai_date(deadline)}")
    return office.finish(problems)


def cmd_video_call(args: argparse.Namespace) -> int:
    office = Office(args)
    target = office.target(args.receipt, args.year)
    try:
        at = parse_clerk_datetime(args.at, office.calendar.tz)
    except ValueError as exc:
        raise SarabanError(f"--at: {exc}") from None
    why = unsuitable_time(at, office.now(), office.calendar)
    if why and not args.force:
        raise SarabanError(f"no appointment at {thai_datetime(at)}: {'; '.join(why)} "
                           "(choose another time, or --force REASON)")
    matters.video_call(office.journal, office.config, office.templates, target, at,
                       args.link or "", office.now(), office.actor,
                       forced=args.force if why else None)
    print(f"video-call appointment sent to {target.recipient} for {thai_datetime(at)}")
    return office.finish(office.send())


def cmd_verify_identity(args: argparse.Namespace) -> int:
    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    stored = matters.verify_identity(office.journal, office.config, year, number, args.method,
                                     [Path(p) for p in args.evidence], office.now(), office.actor)
    print(f"identity of {number}/{year} verified ({args.method}); {len(stored)} evidence file(s) "
          "kept privately")
    return office.finish([])


def cmd_deadlines(args: argparse.Namespace) -> int:
    from saraban_mail import results

    office = Office(args)
    findings = followup.housekeeping(
        office.journal, office.config, office.templates, office.calendar, office.now(),
        lambda year, number: results.find_target(office.journal, office.config, year, number),
    )
    office.journal.set_meta("housekeeping", office.now().date().isoformat())
    for finding in findings:
        print(f"{finding.number}/{finding.year}  {finding.kind}  {finding.text}")
    if not findings:
        print("no deadline passed, nothing to dispose")
    for line in routes_lines(office.journal, office.now().date()):
        print(line)
    print(f"list for the head of agency: {office.config.paths.register_dir / 'to-dispose.xlsx'}",
          file=sys.stderr)
    return office.finish(office.send())


def routes_lines(journal: Any, today: Any) -> list[str]:
    """Matters against their service level, and requests left with the saraban desk."""
    from saraban_mail.routes import due_of

    found = due_of(journal, today)
    lines = [f"{m['receipt']}  overdue  due {thai_date(date.fromisoformat(m['due']))} "
             f"({m['days']} day(s) late), {m['unit'] or 'งานสารบรรณ'}" for m in found["overdue"]]
    lines += [f"{m['receipt']}  due_soon  due {thai_date(date.fromisoformat(m['due']))}, "
              f"{m['unit'] or 'งานสารบรรณ'}" for m in found["soon"]]
    lines += [f"{m['receipt']}  unrouted  no unit: with the saraban desk (saraban-mail route "
              f"{m['receipt']} UNIT)" for m in found["unrouted"]]
    return lines


def cmd_route(args: argparse.Namespace) -> int:
    from saraban_mail.routes import reroute
    from saraban_mail.rules import load_rules

    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    units = load_rules(office.config.paths.rules_dir).units
    routed, problems = reroute(office.journal, office.config, units, office.calendar,
                               office.templates, year, number, args.unit, office.actor,
                               office.now())
    unit = units.unit(routed.route.unit or "")
    print(f"matter {number}/{year} routed to {routed.to}"
          + (f"; forwarded to {unit.email}" if unit and unit.email
             else "; the unit has no address: hand it on"))
    return office.finish(problems + office.send())


def cmd_dispose(args: argparse.Namespace) -> int:
    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    problems = matters.dispose(office.journal, office.config, year, number, args.approved_by,
                               office.now(), force=args.force)
    followup.write_disposal_list(office.journal, office.config, office.calendar)
    print(f"matter {number}/{year} disposed, approved by {args.approved_by}")
    return office.finish(problems)


def cmd_show(args: argparse.Namespace) -> int:
    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    if args.review:
        from saraban_mail.cli.review import history

        lines = history(office.journal, year, number)
    else:
        lines = matters.history(office.journal, year, number, office.calendar)
        stored = office.journal.message_of_receipt(year, number)
        if stored is not None:  # where the mail itself is: its record, its archived copy
            from saraban_mail.archive import where

            lines = [*lines, *where(office.config, office.journal, stored.id,
                                    lambda at: thai_datetime(datetime.fromisoformat(at)
                                                             .astimezone(office.calendar.tz)))]
    for line in lines:
        print(line)
    return office.finish([])


def cmd_faq(args: argparse.Namespace) -> int:
    """The inquiry log as a CSV to build an FAQ from: what was asked, and where the answer is."""
    import csv

    from saraban_mail.layout import INQUIRIES, workbook_path
    from saraban_mail.register import read_rows

    config = load_config(args.config)
    year = args.year or buddhist_year(now())
    path = workbook_path(config.paths.register_dir, INQUIRIES, year)
    if not path.exists():
        raise SarabanError(f"no inquiry log for {year}: {path} does not exist")
    rows = read_rows(path, INQUIRIES)[1]
    out = Path(args.out or f"faq-{year}.csv")
    with open(out, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["เรื่อง", "แหล่งข้อมูล", "หมายเหตุ", "เลขทะเบียนรับ", "วันที่รับเรื่อง",
                         "วันที่ตอบกลับ"])
        for row in sorted(rows, key=lambda r: str(r.values.get("subject") or "")):
            v = row.values
            writer.writerow([v.get("subject") or "", v.get("source") or "", v.get("remarks") or "",
                             row.number or "", _day(v.get("received")), _day(v.get("replied"))])
    print(out)
    return EXIT_OK


def _day(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else ""


def cmd_correct(args: argparse.Namespace) -> int:
    """Cancel a receipt number: the row stays, marked; the number is never given again."""
    from saraban_mail import corrections
    from saraban_mail.rules import load_rules

    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    how, reason = ((corrections.SPAM, "สแปม") if args.spam else
                   (corrections.WRONG_AGENCY, args.wrong_agency) if args.wrong_agency else
                   (corrections.CANCEL, args.cancel))
    problems = corrections.cancel(
        office.journal, office.config, load_rules(office.config.paths.rules_dir),
        office.calendar, office.templates, year, number, how, reason, office.actor,
        office.now())
    print(f"receipt {number}/{year} cancelled ({how}); the row stays and the number is not "
          "given again" + ("; the mail goes to Trash at the next poll" if args.spam else ""))
    return office.finish(problems + office.send())


def cmd_undo(args: argparse.Namespace) -> int:
    from saraban_mail import corrections

    office = Office(args)
    number, year = receipt(args.receipt, args.year)
    kind, problems = corrections.undo(office.journal, office.config, year, number, args.reason,
                                      office.actor, office.now())
    state = office.journal.state_of(year, number)
    print(f"matter {number}/{year}: {kind} undone; now {state}"
          + ("; mail it sent cannot be recalled" if kind in ("documents_requested",
                                                             "video_call_appointed") else ""))
    if kind == "disposed":
        followup.write_disposal_list(office.journal, office.config, office.calendar)
    return office.finish(problems)

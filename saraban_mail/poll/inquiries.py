"""The inquiry log (บันทึกการขอรับบริการ, seed 004 §1.7): new requests for information, and
the date each was answered once its result went out. The clerk fills แหล่งข้อมูล and หมายเหตุ."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.errors import RegisterError
from saraban_mail.journal import Journal
from saraban_mail.layout import INQUIRIES, Look, service_ref, workbook_path
from saraban_mail.record import Record
from saraban_mail.register import append_rows


def write_inquiries(journal: Journal, config: Config, calendar: BusinessCalendar,
                    clock: Callable[[], datetime]) -> list[str]:
    """Add new inquiries and fill in the answer dates; one save per year's log."""
    pending = journal.pending_inquiries()
    by_year: dict[int, list] = defaultdict(list)
    for row in pending:
        by_year[row["year"]].append(row)
    problems = []
    for year, rows in by_year.items():
        new: list[dict[str, Any]] = []
        fill, replied = {}, []
        for row in rows:
            record = Record.from_json(row["record"])
            ref = service_ref(row["identity"])
            if row["inquiry_written_at"] is None:
                new.append({"receipt_no": row["receipt_no"], "ref": ref,
                            "received": record.official_received_at.isoformat(),
                            "requester": record.requester_label, "subject": record.subject})
            if row["replied"]:
                when = datetime.fromisoformat(row["replied"]).astimezone(calendar.tz)
                fill[ref] = {"replied": when.replace(microsecond=0).isoformat()}
                replied.append(row["message"])
        if not new and not fill:
            continue
        settings = config.registers
        try:
            append_rows(
                workbook_path(config.paths.register_dir, INQUIRIES, year), INQUIRIES,
                f"บันทึกการขอรับบริการ {config.agency.name_th} ปี พ.ศ. {year}", new, fill=fill,
                look=Look.of(settings),
                backups=settings.backups, stale_hours=settings.stale_lock_hours,
                sharing=config.sharing, now=clock(),
            )
        except RegisterError as exc:
            problems.append(f"{exc}: the inquiry log waits")
            continue
        with journal.transaction():
            journal.mark_inquiries([r["message"] for r in rows if r["inquiry_written_at"] is None],
                                   "inquiry_written_at", clock())
            journal.mark_inquiries(replied, "inquiry_replied_at", clock())
    return problems

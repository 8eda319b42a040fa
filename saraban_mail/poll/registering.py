"""Stage 3, the register: the rows numbering prepared, written to each year's incoming
workbook (ทะเบียนหนังสือรับ, แบบที่ ๑๓) in one save, with the acknowledgement times known since.

A workbook that is open, locked or damaged keeps its rows waiting in the journal."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.errors import RegisterError
from saraban_mail.journal import Journal
from saraban_mail.layout import INCOMING, Look, incoming_path, service_ref
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.record import Record
from saraban_mail.register import append_rows
from saraban_mail.thaitext import thai_datetime

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport) -> None:
    report.problems += write_register(ctx.journal, ctx.config, ctx.calendar, ctx.clock)


def register_row(config: Config, calendar: BusinessCalendar, junk: str | None, record: Record,
                 number: int, identity: str) -> dict[str, Any]:
    """The incoming register's row of a registered message, by column key (layout.py)."""
    remarks = [f"รับทางอีเมล; กฎ {record.rule}"
               + (f": {record.reason}" if record.rule != "default" else "")]
    if record.high_risk:
        remarks.append(f"ความเสี่ยงสูง ({record.high_risk_rule}): ต้องยืนยันตัวตนก่อนดำเนินการ")
    if record.related_receipt:
        remarks.append(f"เกี่ยวข้องกับเลขทะเบียนรับที่ {record.related_receipt}")
    if record.watched:
        seen = record.watched
        arrived = seen.arrived_at.astimezone(calendar.tz)
        remarks.append(f"ส่งถึง {seen.address or seen.watch} (กล่องจดหมายเจ้าหน้าที่) "
                       f"เมื่อ {thai_datetime(arrived)}; ระบบคัดลอกเข้าอีเมลกลาง "
                       "วันเวลารับคือเวลาที่อีเมลกลางได้รับ")
    if record.reviewed:
        note = record.reviewed
        remarks.append(f"ระบบส่งให้เจ้าหน้าที่ตรวจ; {note.actor} สั่งลงรับเมื่อ "
                       f"{thai_datetime(note.at.astimezone(calendar.tz))} "
                       "(วันเวลารับตามกฎหมายคือเมื่ออีเมลเข้าระบบ จึงลงรับและตอบรับล่าช้า)")
    if record.folder == junk:
        remarks.append("พบในโฟลเดอร์อีเมลขยะ ย้ายเข้ากล่องจดหมายแล้ว")
    return {
        "receipt_no": number,
        "doc_no": "",
        "doc_date": record.date_header.isoformat() if record.date_header else None,
        "from": record.requester_label,
        "to": config.agency.name_th,
        "subject": record.subject,
        "remarks": "\n".join(remarks),
        "email": record.requester,
        "received_at": record.received_at.isoformat(),
        "official_received_at": record.official_received_at.isoformat(),
        "ack_due": record.ack_due.isoformat() if record.ack_due else None,
        "category": str(record.category),
        "high_risk": "ใช่" if record.high_risk else "",
        "attachments": "\n".join(
            f"{a.name} ({a.size:,} bytes, SHA-256 {a.sha256})" for a in record.attachments
        ),
        "message_id": record.message_id,
        "ref": service_ref(identity),
    }


def write_register(journal: Journal, config: Config, calendar: BusinessCalendar,
                   clock: Callable[[], datetime]) -> list[str]:
    """Write every pending register row (one save per workbook); returns problems."""
    problems: list[str] = []
    by_year: dict[int, list] = defaultdict(list)
    for row in journal.pending_register_rows():
        by_year[row["year"]].append(row)
    for year, rows in by_year.items():
        path = incoming_path(config.paths.register_dir, year)
        acks = journal.unwritten_acks(year)
        fill = {
            service_ref(a["identity"]): {
                "ack_sent": datetime.fromisoformat(a["sent_at"]).astimezone(calendar.tz).isoformat()
            }
            for a in acks
        }
        settings = config.registers
        try:
            result = append_rows(
                path, INCOMING, f"ทะเบียนหนังสือรับ {config.agency.name_th} ปี พ.ศ. {year}",
                [json.loads(r["row"]) for r in rows], fill=fill,
                look=Look.of(settings),
                summary=journal.summary(year, pending_rows=len(rows),
                                        as_of=thai_datetime(clock().astimezone(calendar.tz))),
                agency=config.agency.name_th, backups=settings.backups,
                stale_hours=settings.stale_lock_hours,
            )
        except RegisterError as exc:  # open, locked, damaged: the rows wait, nothing is lost
            problems.append(f"{exc}: {len(rows)} row(s) wait in the journal")
            continue
        for number in result.clashes:
            log.warning("%s: receipt number %d is also on a row a clerk typed", path.name, number)
            problems.append(
                f"{path.name}: number {number}/{year} was given to an email and a clerk also typed it "
                "on another row; renumber the clerk's row (the email's number was already sent)"
            )
        now = clock()
        with journal.transaction():
            journal.mark_rows_written([r["message"] for r in rows], now)
            journal.mark_acks_written([a["message"] for a in acks], now)
    return problems

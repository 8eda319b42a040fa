"""Stage 3, the register: the rows numbering prepared, written to each year's incoming
workbook (ทะเบียนหนังสือรับ, แบบที่ ๑๓) in one save, with the acknowledgement times known since.

A workbook that is open, locked or damaged keeps its rows waiting in the journal."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from saraban_mail import records, review
from saraban_mail.calendar import BusinessCalendar, buddhist_year
from saraban_mail.config import Config
from saraban_mail.errors import RegisterError
from saraban_mail.journal import Journal
from saraban_mail.layout import CATEGORY_TH, INCOMING, Look, incoming_path, service_ref, stamp
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.record import Record
from saraban_mail.register import append_rows, snapshot
from saraban_mail.rules import BUILTIN_HIGH_RISK
from saraban_mail.thaitext import thai_datetime

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport) -> None:
    report.problems += write_register(ctx.journal, ctx.config, ctx.calendar, ctx.clock)


# The identity of each workbook as this process last saved it (layout.stamp).
_saved: dict[Path, tuple[int, int, int]] = {}


def register_row(config: Config, calendar: BusinessCalendar, junk: str | None, record: Record,
                 number: int, identity: str) -> dict[str, Any]:
    """The incoming register's row of a registered message, by column key (layout.py)."""
    why = reason_th(record)
    remarks = ["รับทางอีเมล" + (f": {why}" if why else "")]
    if record.high_risk:
        kind = next((r.name_th for r in BUILTIN_HIGH_RISK if r.id == record.high_risk_rule),
                    record.high_risk_rule)
        remarks.append(f"เรื่องความเสี่ยงสูง ({kind}): ต้องยืนยันตัวตนก่อนดำเนินการ")
    if record.related_receipt:
        remarks.append(f"เกี่ยวข้องกับเลขทะเบียนรับที่ {record.related_receipt}")
    if record.phones:  # the clerk's other way to reach the requester [seed 002 init §3.2]
        remarks.append(f"โทรศัพท์ในคำขอ: {', '.join(record.phones)}")
    if record.watched:
        seen = record.watched
        arrived = seen.arrived_at.astimezone(calendar.tz)
        remarks.append(f"ส่งถึง {seen.address or seen.watch} (กล่องจดหมายเจ้าหน้าที่) "
                       f"เมื่อ {thai_datetime(arrived)}; ระบบคัดลอกเข้าอีเมลกลาง "
                       "วันเวลารับคือเวลาที่อีเมลกลางได้รับ กำหนดตอบรับนับจากเวลาที่ถึง"
                       "กล่องจดหมายเจ้าหน้าที่")
    if record.reviewed:
        note = record.reviewed
        remarks.append(f"ระบบส่งให้เจ้าหน้าที่ตรวจ; {note.actor} สั่งลงรับเมื่อ "
                       f"{thai_datetime(note.at.astimezone(calendar.tz))} "
                       "(วันเวลารับตามกฎหมายคือเมื่ออีเมลเข้าระบบ จึงลงรับและตอบรับล่าช้า)")
    if record.folder == junk:
        remarks.append("พบในโฟลเดอร์อีเมลขยะ ย้ายเข้ากล่องจดหมายแล้ว")
    kept = records.register_line(buddhist_year(record.official_received_at), number, record)
    if kept:  # the mail itself, as it arrived: what archiving the mailbox may not lose
        remarks.append(kept)
    letter = record.letter
    if letter is not None and not record.requester:
        remarks.append("ไม่ส่งหลักฐานการรับ: ผู้ส่งเป็นระบบอัตโนมัติหรือรายชื่อผู้รับ (no-reply)")
    if letter is not None and letter.found_in not in ("", "subject", "body"):
        remarks.append(f"ที่และลงวันที่จากไฟล์ {letter.found_in}")
    remarks += [f"{a.name}: {a.signature}" for a in record.attachments if a.signature]
    return {
        "receipt_no": number,
        # A letter's own ที่ and ลงวันที่ (แบบที่ ๑๓); other mail has only the sender's Date:.
        "doc_no": letter.doc_no if letter else "",
        "doc_date": letter.doc_date.isoformat() if letter and letter.doc_date else (
            record.date_header.isoformat() if record.date_header and not letter else None),
        "from": letter.agency if letter and letter.agency else record.requester_label,
        "to": config.agency.name_th,
        "subject": letter.subject if letter and letter.subject else record.subject,
        "remarks": "\n".join(remarks),
        "email": record.requester or record.from_addr,
        "received_at": record.received_at.isoformat(),
        "official_received_at": record.official_received_at.isoformat(),
        "ack_due": record.ack_due.isoformat() if record.ack_due else None,
        "category": CATEGORY_TH.get(str(record.category), str(record.category)),
        "high_risk": "ใช่" if record.high_risk else "",
        "attachments": "\n".join(
            f"{a.name} ({a.size:,} bytes, SHA-256 {a.sha256})" for a in record.attachments
        ),
        "message_id": record.message_id,
        "ref": service_ref(identity),
    }


# Why the service decided as it did, for the clerk's หมายเหตุ, by the built-in rule ids.
# A request addressed to the agency ("default") needs no reason; a rule of rules/*.toml
# brings its own Thai name (a channel's, an agency's).
RULE_TH = {
    "staff_forward": "เจ้าหน้าที่ส่งต่อมา ผู้ขอส่งถึงอีเมลส่วนตัวของเจ้าหน้าที่ ไม่ใช่อีเมลกลาง",
    "watched_mailbox": "ผู้ขอส่งถึงกล่องจดหมายของเจ้าหน้าที่ ไม่ใช่อีเมลกลาง",
    "official_letter": "หนังสือราชการจากหน่วยงานของรัฐ",
    **review.WHY,  # why mail was left to a person, should it be registered after all
}


def reason_th(record: Record) -> str:
    """The reason in หมายเหตุ, as a clerk reads it; '' for an ordinary request."""
    if record.channel is not None:
        where = record.channel.correct_channel.split(" / ")[0]  # its Thai half
        return f"เป็นเรื่อง{record.channel.name_th} ช่องทางที่ถูกต้อง: {where}"
    if record.agency is not None:
        return f"เป็นเรื่องของ{record.agency.name_th}"
    if record.rule == "default" or (record.rule == "watched_mailbox" and record.watched) or (
            record.reviewed):
        return ""  # a watched copy and a clerk's decision have their own line below
    return RULE_TH.get(record.rule, f"ตามกฎ {record.rule}")


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
        fill = _ack_times(acks, calendar)
        new_rows = []
        for r in rows:  # an acknowledgement that went while its row waited: in the row itself
            row = json.loads(r["row"])
            new_rows.append(row | fill.pop(row["ref"], {}))
        settings = config.registers
        try:
            result = append_rows(
                path, INCOMING, f"ทะเบียนหนังสือรับ {config.agency.name_th} ปี พ.ศ. {year}",
                new_rows, fill=fill,
                look=Look.of(settings),
                summary=journal.summary(year, pending_rows=len(rows),
                                        as_of=thai_datetime(clock().astimezone(calendar.tz))),
                agency=config.agency.name_th, backups=settings.backups,
                stale_hours=settings.stale_lock_hours, sharing=config.sharing, now=clock(),
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
        _saved[path] = stamp(path)
        now = clock()
        with journal.transaction():
            journal.mark_rows_written([r["message"] for r in rows], now)
            journal.mark_acks_written([a["message"] for a in acks], now)
    return problems


def _ack_times(acks: list[Any], calendar: BusinessCalendar) -> dict[str, dict[str, Any]]:
    """The ตอบรับเมื่อ cell of each row, by the row's service reference."""
    return {service_ref(a["identity"]): {"ack_sent": datetime.fromisoformat(a["sent_at"])
                                         .astimezone(calendar.tz).replace(microsecond=0)
                                         .isoformat()} for a in acks}


def run_after_send(ctx: Context, report: PollReport) -> None:
    """The register right after the send stage: the rows written earlier in this poll
    get the time their acknowledgement went, and the สรุป sheet counts them as answered.
    A save only where an acknowledgement was sent since: a poll that sent nothing saves
    nothing more."""
    report.problems += fill_ack_times(ctx.journal, ctx.config, ctx.calendar, ctx.clock)


def fill_ack_times(journal: Journal, config: Config, calendar: BusinessCalendar,
                   clock: Callable[[], datetime]) -> list[str]:
    problems: list[str] = []
    for year in journal.register_years():
        acks = [a for a in journal.unwritten_acks(year) if a["row_written"]]
        if not acks:
            continue
        path = incoming_path(config.paths.register_dir, year)
        settings = config.registers
        # Unchanged since our own save of this poll (whose backup holds the clerks' last
        # version): no second backup, or the kept history would halve.
        ours = any(stamp(path)) and _saved.get(path) == stamp(path)
        settled = journal.sheet_settled(year, stamp(path))
        try:
            append_rows(
                path, INCOMING, f"ทะเบียนหนังสือรับ {config.agency.name_th} ปี พ.ศ. {year}", [],
                fill=_ack_times(acks, calendar), look=Look.of(settings),
                summary=journal.summary(year, as_of=thai_datetime(clock().astimezone(calendar.tz))),
                agency=config.agency.name_th, backups=0 if ours else settings.backups,
                stale_hours=settings.stale_lock_hours, sharing=config.sharing, now=clock(),
            )
        except RegisterError as exc:  # filled at the next save of the workbook
            problems.append(f"{exc}: the ตอบรับเมื่อ time of {len(acks)} row(s) waits")
            continue
        # Our own save changed the file: note it as saved, or the next poll's numbering and
        # `status` would read the whole workbook again.
        seen, rows = snapshot(path, INCOMING)
        with journal.transaction():
            journal.mark_acks_written([a["message"] for a in acks], clock())
            journal.note_sheet(year, seen, [(r.number, r.ref) for r in rows], settled=settled)
    return problems

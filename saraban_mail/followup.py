"""The daily follow-up of matters: documents overdue (one reminder), matters silent past
the hold (proposed for disposal), and the list of them for the head of agency.

Run once a day by the poll (poll/housekeeping.py) and by `saraban-mail deadlines`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saraban_mail.calendar import BusinessCalendar, working_days_between
from saraban_mail.config import Config
from saraban_mail.journal import Journal
from saraban_mail.matters import (
    AWAITING_DOCUMENTS,
    TO_DISPOSE,
    WAITING_ON_CITIZEN,
    mail_requester,
)
from saraban_mail.thaitext import thai_date

if TYPE_CHECKING:
    from saraban_mail.replies import Templates


@dataclass(frozen=True)
class Finding:
    year: int
    number: int
    kind: str  # documents_overdue | proposed_for_disposal | to_dispose
    text: str


def housekeeping(journal: Journal, config: Config, templates: Templates,
                 calendar: BusinessCalendar, now: datetime,
                 target_of: Callable[[int, int], Any]) -> list[Finding]:
    """Overdue documents (one reminder) and matters silent past the hold (proposed for
    disposal, listed in register/to-dispose.xlsx for the head of agency)."""
    findings = []
    today = now.astimezone(calendar.tz).date()
    for matter in journal.matters():
        year, number, state = matter["year"], matter["receipt_no"], matter["state"]
        events = journal.events(year, number)
        if state == AWAITING_DOCUMENTS:
            asked = next(e for e in reversed(events) if e["kind"] == "documents_requested")
            deadline = date.fromisoformat(json.loads(asked["detail"])["deadline"])
            if deadline < today:
                findings.append(Finding(year, number, "documents_overdue",
                                        f"documents were due {thai_date(deadline)}"))
                reminded = any(e["kind"] == "reminder_sent" and e["at"] > asked["at"]
                               for e in events)
                if config.followup.reminder and not reminded:
                    _remind(journal, config, templates, target_of(year, number), deadline, now)
        if state in WAITING_ON_CITIZEN:
            last = datetime.fromisoformat(events[-1]["at"]).astimezone(calendar.tz).date()
            silent = (working_days_between(last, today, calendar)
                      if config.followup.hold_in_working_days else (today - last).days)
            if silent >= config.followup.hold_days:
                journal.add_event(year, number, kind="proposed_for_disposal", actor="service",
                                  now=now, state=TO_DISPOSE, detail={"silent_days": silent})
                findings.append(Finding(year, number, "proposed_for_disposal",
                                        f"no contact for {silent} days: proposed for disposal"))
        elif state == TO_DISPOSE:
            findings.append(Finding(year, number, "to_dispose", "awaits the head's approval"))
    write_disposal_list(journal, config, calendar)
    return findings


def _remind(journal: Journal, config: Config, templates: Templates, target: Any,
            deadline: date, now: datetime) -> None:
    context = {"agency": config.agency, "receipt": f"{target.receipt_no}/{target.receipt_year}",
               "matter": target.subject, "requester_name": target.name,
               "deadline_th": thai_date(deadline), "deadline_en": deadline.strftime("%d %b %Y"),
               "hold_days": config.followup.hold_days}
    mail_requester(journal, config, templates, target, "documents_reminder", context, now,
                    event="reminder_sent", actor="service")


def write_disposal_list(journal: Journal, config: Config, calendar: BusinessCalendar) -> Path:
    """register/to-dispose.xlsx: the matters proposed for disposal (จำหน่ายเรื่อง)."""
    import openpyxl

    from saraban_mail.register import save_atomically

    path = config.paths.register_dir / "to-dispose.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "เสนอจำหน่ายเรื่อง"
    sheet.append([f"เรื่องที่เสนอหัวหน้าหน่วยงานพิจารณาจำหน่าย {config.agency.name_th}"])
    sheet.append(["เลขทะเบียนรับ", "เรื่อง", "ผู้ขอ", "ติดต่อครั้งสุดท้าย", "เสนอเมื่อ",
                  "ความเห็น/อนุมัติ"])
    for matter in journal.matters():
        if matter["state"] != TO_DISPOSE:
            continue
        events = journal.events(matter["year"], matter["receipt_no"])
        first = json.loads(events[0]["detail"])
        proposed = next(e for e in reversed(events) if e["kind"] == "proposed_for_disposal")
        contact = [e for e in events if e["kind"] != "proposed_for_disposal"][-1]
        sheet.append([
            f"{matter['receipt_no']}/{matter['year']}", first.get("subject", ""),
            first.get("requester", ""),
            thai_date(datetime.fromisoformat(contact["at"]).astimezone(calendar.tz).date()),
            thai_date(datetime.fromisoformat(proposed["at"]).astimezone(calendar.tz).date()), "",
        ])
    for column, width in zip("ABCDEF", (14, 40, 30, 16, 16, 30), strict=True):
        sheet.column_dimensions[column].width = width
    for listed in journal.disposal_lists():
        _destruction_sheet(book.create_sheet(f"ขอทำลาย {listed['year']}"), listed, config)
    save_atomically(book, path, backups=0, sharing=config.sharing)
    return path


# The columns of the saraban regulation's disposal list, บัญชีหนังสือขอทำลาย (ระเบียบสำนัก
# นายกรัฐมนตรีว่าด้วยงานสารบรรณ, แบบที่ ๒๕): not in the seeds; from the regulation.
DESTRUCTION_COLUMNS = ("ลำดับที่", "ที่หนังสือ", "ลงวันที่", "เรื่อง", "รหัสแฟ้ม", "การพิจารณา",
                       "หมายเหตุ")


def _destruction_sheet(sheet: Any, listed: Any, config: Config) -> None:
    """One year's บัญชีหนังสือขอทำลาย: a row per document (its files in หมายเหตุ), for the
    head of agency to approve (`saraban-mail purge --approve YEAR --by NAME`)."""
    sheet.append([f"บัญชีหนังสือขอทำลาย ประจำปี พ.ศ. {listed['year']}"])
    sheet.append([config.agency.name_th])
    approved = (f"อนุมัติโดย {listed['approved_by']} เมื่อ "
                f"{thai_date(date.fromisoformat(listed['approved_at'][:10]))}"
                if listed["approved_at"] else "รอหัวหน้าหน่วยงานพิจารณา")
    sheet.append([approved])
    sheet.append(list(DESTRUCTION_COLUMNS))
    documents: dict[tuple, list[dict]] = {}
    for item in json.loads(listed["items"]):
        key = ((item["book"], item["year"], item["number"]) if item["number"] is not None
               else ("file", item["ref"], None))
        documents.setdefault(key, []).append(item)
    for order, (key, items) in enumerate(documents.items(), start=1):
        first = items[0]
        number = (f"{'เลขส่ง' if key[0] == 'outgoing' else 'เลขรับ'} {key[2]}/{key[1]}"
                  if key[0] != "file" else "-")
        sheet.append([order, number, thai_date(date.fromisoformat(first["created"])),
                      first["subject"] or first["kind"], "",
                      "ทำลาย" if listed["approved_at"] else "",
                      "; ".join(f"{i['ref']} ({i['rule']})" for i in items)])
    for column, width in zip("ABCDEFG", (9, 18, 16, 40, 12, 16, 60), strict=True):
        sheet.column_dimensions[column].width = width

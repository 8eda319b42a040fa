"""Progress notices (แจ้งความคืบหน้า): a short mail telling the requester where the matter
stands, on the thread of the request, logged as the matter's `notified` step.

Keeping the requester informed is asked by seed 004 (§4 ข้อ ๘, §5 ข้อ ๓) and seed 002
(framework step 9). A clerk sends one with `saraban-mail notify` or a line
"แจ้ง: <สถานะ>" (optionally "แจ้ง: <สถานะ> - <ข้อความ>") typed in การปฏิบัติ.

What a notice may say: it discloses little (a status, the unit, a date), so it goes to any
requester the journal can reach; a high-risk matter whose requester's identity is not yet
proven gets the generic form (no subject, no free text), since the address may not be the
person's; a matter whose mail bounced (unreachable), cancelled or disposed gets none."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saraban_mail import overdue
from saraban_mail.config import Config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.matters import (
    AWAITING_DOCUMENTS,
    CANCELLED,
    DISPOSED,
    UNREACHABLE,
    MatterError,
    new_lines,
    require,
)
from saraban_mail.register_notes import row_ref, write_pending_notes
from saraban_mail.thaitext import english_date, fold, thai_date
from saraban_mail.units import Units

if TYPE_CHECKING:
    from saraban_mail.layout import SheetRow
    from saraban_mail.replies import Templates

# The statuses a clerk may send, Thai → English (the English half of the mail has no Thai).
STATUSES: dict[str, str] = {
    "อยู่ระหว่างพิจารณา": "under consideration",
    "ส่งเรื่องให้ส่วนงานที่รับผิดชอบแล้ว": "passed to the unit responsible",
    "อยู่ระหว่างดำเนินการ": "in progress",
    "อนุมัติแล้ว": "approved",
    "ไม่อนุมัติ": "not approved",
    "ดำเนินการแล้วเสร็จ": "completed",
}
INSTRUCTION = re.compile(r"^\s*แจ้ง\s*[:：]\s*(.+?)\s*$", re.MULTILINE)
TEMPLATE = "progress_notice"


class NoticeError(MatterError):
    """A notice that cannot be sent (an unknown status, a matter that may not be told)."""


@dataclass(frozen=True)
class Notice:
    """What the clerk asked to tell: one of STATUSES, and an optional free line."""

    status: str
    text: str = ""

    @property
    def status_en(self) -> str:
        return STATUSES[self.status]


def _key(text: str) -> str:
    return "".join(fold(text).split())


def status_of(word: str) -> str:
    """The status a clerk typed (Thai or English, spaces ignored), or one clear line."""
    wanted = _key(word)
    for thai, english in STATUSES.items():
        if wanted in (_key(thai), _key(english)):
            return thai
    raise NoticeError(f'ไม่รู้จักสถานะ "{word.strip()}" / unknown status; ใช้ได้ / one of: '
                      + ", ".join(STATUSES))


def read_line(line: str) -> Notice:
    """"<สถานะ>" or "<สถานะ> - <ข้อความ>", as typed after "แจ้ง:"."""
    status, *text = re.split(r"\s*[-–]\s*", line.strip(), maxsplit=1)
    return Notice(status_of(status), text[0].strip() if text else "")


def awaiting_identity(events: list[Any]) -> bool:
    """High-risk, and identity not yet proven (matters.identity_gate's rule)."""
    pending = any(e["state"] == "identity_pending" for e in events)
    return pending and not any(e["kind"] == "identity_verified" for e in events)


def values(config: Config, units: Units, target: Any, events: list[Any], state: str,
           notice: Notice, now: datetime) -> dict[str, Any]:
    """What templates/progress_notice.txt.j2 may use (templates/README.md lists it)."""
    routed = overdue.latest(events, "routed") or {}
    unit = units.unit(routed["unit"]) if routed.get("unit") else None
    due = overdue.latest(events, "due")
    due_day = date.fromisoformat(due["due"]) if due and due.get("due") else None
    generic = awaiting_identity(events) or bool(getattr(target, "personal", False))
    return {
        "agency": config.agency, "receipt": f"{target.receipt_no}/{target.receipt_year}",
        "requester_name": "" if generic else target.name,
        "matter": "" if generic else (target.subject or ""),
        "status_th": notice.status, "status_en": notice.status_en, "text": notice.text,
        "unit": unit.model_dump() if unit else None,
        "due_th": thai_date(due_day) if due_day else "",
        "due_en": english_date(due_day) if due_day else "",
        "paused": state == AWAITING_DOCUMENTS,
        "today_th": thai_date(now.date()), "today_en": english_date(now.date()),
    }


def sample(config: Config) -> dict[str, Any]:
    """Sample values for `replying.check_templates`."""
    unit = {"id": "works", "name_th": "กองช่าง", "name_en": "Public Works", "email": "",
            "phone": "0 4400 0000", "head": "", "head_email": ""}
    return {"agency": config.agency, "receipt": "1/2569", "requester_name": "x", "matter": "x",
            "status_th": "อนุมัติแล้ว", "status_en": "approved", "text": "x", "unit": unit,
            "due_th": "x", "due_en": "x", "paused": True, "today_th": "x", "today_en": "x"}


def notify(journal: Journal, config: Config, units: Units, templates: Templates, target: Any,
           notice: Notice, now: datetime, actor: str, line: str = "") -> tuple[str, list[str]]:
    """Queue the notice to the requester, log the `notified` step and queue its line for the
    register row, in one transaction (a crash repeats all or nothing); then write the line
    if the workbook is free. Returns the Message-ID and the problems."""
    from saraban_mail.replies import Envelope, build

    year, number = target.receipt_year, target.receipt_no
    state = require(journal, year, number)
    if state in (CANCELLED, DISPOSED):
        raise NoticeError(f"เรื่อง {number}/{year} ถูก{'ยกเลิก' if state == CANCELLED else 'จำหน่าย'}"
                          f"แล้ว: ไม่แจ้งความคืบหน้า / matter {number}/{year} is {state}")
    if state == UNREACHABLE:
        raise NoticeError(f"อีเมลถึงผู้ขอเรื่อง {number}/{year} ถูกตีกลับ: โปรดแจ้งทางโทรศัพท์ / "
                          "the requester's mail bounced; tell them by phone")
    events = journal.events(year, number)
    if notice.text and awaiting_identity(events):
        raise NoticeError(f"เรื่อง {number}/{year} มีความเสี่ยงสูงและยังไม่ยืนยันตัวตน: แจ้งได้เฉพาะ"
                          "สถานะ ไม่ส่งข้อความเพิ่ม / high-risk, identity not verified: the "
                          "status only, no free text")
    subject, body = templates.render(TEMPLATE, values(config, units, target, events, state,
                                                      notice, now))
    agency = config.agency
    mail = build(TEMPLATE, target.recipient, subject, body,
                 Envelope(agency.name_th, agency.email, agency.domain, target.thread_id,
                          target.references), now, auto=None)
    note = (f"แจ้งความคืบหน้า: {notice.status}" + (f" - {notice.text}" if notice.text else "")
            + f" (โดย {actor} เมื่อ {thai_date(now.date())})")
    with journal.transaction():
        message = journal.message_of_receipt(year, number)
        outbox_id = journal.queue_mail(message=message[0] if message else None, kind=TEMPLATE,
                                       recipient=target.recipient, message_id=mail.message_id,
                                       raw=mail.raw, now=now)
        journal.add_event(year, number, kind="notified", actor=actor, now=now, detail={
            "status": notice.status, "text": notice.text, "outbox_id": outbox_id,
            "message_id": mail.message_id, "recipient": target.recipient, "line": line})
        journal.queue_note(year, number, row_ref(journal, "incoming", year, number), note, now)
    return mail.message_id, write_pending_notes(journal, config, now, year=year)


def notices_in(journal: Journal, config: Config, units: Units, templates: Templates,
               now: datetime, target_of: Callable[[int, int], Any], year: int, path: Path,
               rows: list[SheetRow]) -> tuple[list[str], bool]:
    """Lines "แจ้ง: ..." typed in a row's การปฏิบัติ, each carried out once (the journal's
    `notified` steps remember the lines done, so a line left there for weeks sends one
    notice). Returns the problems and whether one could not be carried out."""
    from saraban_mail.register import last_modified_by

    problems: list[str] = []
    failed = False
    for number, line in new_lines(journal, year, rows, INSTRUCTION, "notified", "line"):
        try:
            notice = read_line(line)
            actor = f"{last_modified_by(path) or 'เจ้าหน้าที่'} (ทะเบียน)"
            problems += notify(journal, config, units, templates, target_of(year, number),
                               notice, now, actor, line=line)[1]
        except SarabanError as exc:
            problems.append(f"แจ้ง: ในแถว {number}/{year}: {exc}")
            failed = True
    return problems, failed

"""Correcting a decision already made: a receipt number cancelled (the mail was another
agency's, or spam, or registered by mistake) and any step of a matter undone.

Nothing is erased: the register row stays with its number (never given again), marked
ยกเลิก with the reason, who and when; a cancellation and an undo are events of the matter."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from saraban_mail import matters, review
from saraban_mail.config import Config
from saraban_mail.journal import Journal
from saraban_mail.matters import CANCELLED, DISPOSED, RESULT_SENT, MatterError
from saraban_mail.rules import RuleSet
from saraban_mail.thaitext import thai_datetime

if TYPE_CHECKING:
    from pathlib import Path

    from saraban_mail.calendar import BusinessCalendar
    from saraban_mail.layout import SheetRow
    from saraban_mail.replies import Templates

CANCEL, WRONG_AGENCY, SPAM = "cancel", "wrong_agency", "spam"
# "ยกเลิกเลขรับ: <เหตุผล>" in การปฏิบัติ; "ยกเลิกเลขรับ: สแปม" and
# "ยกเลิกเลขรับ: ผิดหน่วยงาน <รหัส>" also do what `correct --spam/--wrong-agency` does.
INSTRUCTION = re.compile(r"^\s*ยกเลิกเลขรับ\s*[:：]\s*(.+?)\s*$", re.MULTILINE)
# Steps a person may take back; the mail a step sent cannot be recalled, and says so.
UNDOABLE = ("disposed", "cancelled", "identity_verified", "documents_requested",
            "video_call_appointed", "proposed_for_disposal")


def read_instruction(text: str, rules: RuleSet) -> tuple[str, str] | None:
    """(how, reason or agency id) of a cancellation typed in การปฏิบัติ, or None."""
    found = INSTRUCTION.search(text or "")
    if not found:
        return None
    reason = found.group(1)
    if reason == "สแปม":
        return SPAM, reason
    agency = re.fullmatch(r"ผิดหน่วยงาน\s*[:：]?\s*(\S.*)", reason)
    if agency:
        return WRONG_AGENCY, review.agency(agency.group(1).strip(), rules).id
    return CANCEL, reason


def cancel(journal: Journal, config: Config, rules: RuleSet, calendar: BusinessCalendar,
           templates: Templates, year: int, number: int, how: str, reason: str, actor: str,
           now: datetime) -> list[str]:
    """Cancel receipt number/year: the matter's event, the reply or move asked for, and the
    note in the row's การปฏิบัติ. Returns problems (a busy workbook: the note waits)."""
    state = matters.require(journal, year, number)
    if state == CANCELLED:
        raise MatterError(f"receipt {number}/{year} is already cancelled")
    if state in (RESULT_SENT, DISPOSED):
        raise MatterError(f"matter {number}/{year} is {state}: a number whose matter is closed "
                          "is not cancelled (saraban-mail undo first, if it was a mistake)")
    stored = journal.message_of_receipt(year, number)
    detail: dict[str, Any] = {"how": how, "reason": reason, "previous_state": state}
    label = {CANCEL: reason, SPAM: "อีเมลขยะ"}.get(how, "")
    with journal.transaction():
        if how == WRONG_AGENCY:
            agency = review.agency(reason, rules)
            label = f"เป็นเรื่องของ {agency.name_th}"
            if stored is not None and stored.record.requester:
                detail["message_id"] = _tell_wrong_agency(journal, config, rules, calendar,
                                                          templates, stored, agency, now)
        if how == SPAM and stored is not None:
            where = journal.latest_copy(stored.id)
            if where is not None:  # the poll moves it as spam (poll/mailbox_actions.py)
                journal.add_action(stored.id, *where, "trash", "",
                                   journal.next_action_seq(stored.id))
        journal.add_event(year, number, kind="cancelled", actor=actor, now=now, state=CANCELLED,
                          detail=detail)
    return matters.note_in_register(config, year, [(number, (
        f"ยกเลิกเลขรับ: {label} (โดย {actor} เมื่อ {thai_datetime(now)}; "
        "เลขนี้ไม่นำไปใช้ซ้ำ)"))], journal, now)


def _tell_wrong_agency(journal: Journal, config: Config, rules: RuleSet,
                       calendar: BusinessCalendar, templates: Templates, stored: Any,
                       agency: Any, now: datetime) -> str:
    """The wrong-agency reply the mail should have had, threaded to it; its Message-ID."""
    import dataclasses

    from saraban_mail.poll.replying import envelope, values
    from saraban_mail.replies import build

    record = dataclasses.replace(stored.record, agency=agency)
    subject, body = templates.render("wrong_agency", values(config, rules, calendar, record))
    reply = build("wrong_agency", record.requester, subject, body, envelope(config, record), now)
    journal.queue_mail(message=stored.id, kind=reply.kind, recipient=reply.recipient,
                       message_id=reply.message_id, raw=reply.raw, now=now)
    return reply.message_id


def cancellations_in(journal: Journal, config: Config, rules: RuleSet,
                     calendar: BusinessCalendar, templates: Templates, now: datetime, year: int,
                     path: Path, rows: list[SheetRow]) -> tuple[list[str], bool]:
    """"ยกเลิกเลขรับ: ..." typed in a row's การปฏิบัติ, carried out once per matter. Returns
    the problems and whether one could not be carried out."""
    from saraban_mail.register import last_modified_by

    problems: list[str] = []
    failed = False
    for row in rows:
        text = str(row.values.get("action") or "")
        if row.number is None or "ยกเลิกเลขรับ" not in text:
            continue
        if journal.state_of(year, row.number) in (CANCELLED, None):
            continue  # done already, or a clerk's paper row the journal does not know
        try:
            found = read_instruction(text, rules)
            if found is None:
                raise MatterError("write it as ยกเลิกเลขรับ: <เหตุผล>")
            actor = f"{last_modified_by(path) or 'เจ้าหน้าที่'} (ทะเบียน)"
            problems += cancel(journal, config, rules, calendar, templates, year, row.number,
                               *found, actor, now)
        except (MatterError, review.ReviewError) as exc:
            problems.append(f"ยกเลิกเลขรับ in row {row.number}/{year}: {exc}")
            failed = True
    return problems, failed


def undo(journal: Journal, config: Config, year: int, number: int, reason: str, actor: str,
         now: datetime) -> tuple[str, list[str]]:
    """Take back the matter's last step (an event saying so: nothing is erased); returns
    the step's kind and problems."""
    events = journal.events(year, number)
    if not events:
        raise MatterError(f"no matter {number}/{year} in the journal")
    undone = {json.loads(e["detail"]).get("event_id") for e in events if e["kind"] == "undone"}
    steps = [e for e in events if e["kind"] in UNDOABLE and e["id"] not in undone]
    if not steps:
        raise MatterError(f"matter {number}/{year} has no step to undo")
    step = steps[-1]
    if any(e["id"] > step["id"] and e["kind"] in ("result_sent",) for e in events):
        raise MatterError(f"a result went after {step['kind']}: it cannot be undone")
    before = next((e["state"] for e in reversed(events)
                   if e["id"] < step["id"] and e["state"] is not None), matters.RECEIVED)
    journal.add_event(year, number, kind="undone", actor=actor, now=now, state=before,
                      detail={"event_id": step["id"], "undid": step["kind"], "reason": reason})
    label = {"disposed": "การจำหน่ายเรื่อง", "cancelled": "การยกเลิกเลขรับ"}.get(step["kind"])
    problems = matters.note_in_register(config, year, [(number, (
        f"ยกเลิก{label} (โดย {actor} เมื่อ {thai_datetime(now)}"
        + (f": {reason}" if reason else "") + ")"))], journal, now) if label else []
    return step["kind"], problems

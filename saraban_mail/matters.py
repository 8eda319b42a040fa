"""Matters: a registered request after receipt, step by step, every step a journal event.

States: received → (identity_pending → identity_verified) → awaiting_documents →
documents_received → result_sent, or → to_dispose → disposed, or cancelled (a number
given by mistake). Deadlines count working days on the same calendar as receipt times."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saraban_mail.calendar import BusinessCalendar, working_days_after
from saraban_mail.config import Config
from saraban_mail.errors import SarabanError
from saraban_mail.files import private_dir
from saraban_mail.journal import Journal
from saraban_mail.register_notes import note_in_register
from saraban_mail.thaitext import readable, thai_date, thai_datetime

if TYPE_CHECKING:  # openpyxl, jinja2 and the parser are loaded where they are used:
    from saraban_mail.layout import SheetRow
    from saraban_mail.parse import Incoming  # `status` reads the states without them
    from saraban_mail.record import Record
    from saraban_mail.replies import Templates

RECEIVED = "received"
IDENTITY_PENDING = "identity_pending"
IDENTITY_VERIFIED = "identity_verified"
AWAITING_DOCUMENTS = "awaiting_documents"
DOCUMENTS_RECEIVED = "documents_received"
RESULT_SENT = "result_sent"
TO_DISPOSE = "to_dispose"
DISPOSED = "disposed"
CANCELLED = "cancelled"  # the receipt number cancelled (corrections.py); the row stays
# Our mail to the requester bounced and the request gave no other contact: kept 30 days,
# then proposed for disposal (จำหน่ายเรื่อง) [seed 002 init §3.2, seed 000 step 2].
UNREACHABLE = "unreachable"
# States in which the matter waits for the citizen: silence here starts the hold.
WAITING_ON_CITIZEN = (IDENTITY_PENDING, AWAITING_DOCUMENTS, UNREACHABLE)
WAITING_FOR = {
    RECEIVED: "การพิจารณาของเจ้าหน้าที่ / the officer's decision",
    IDENTITY_PENDING: "การยืนยันตัวตนของผู้ขอ / the requester's identity proof",
    IDENTITY_VERIFIED: "การพิจารณาของเจ้าหน้าที่ / the officer's decision",
    AWAITING_DOCUMENTS: "เอกสารเพิ่มเติมจากผู้ขอ / documents from the requester",
    DOCUMENTS_RECEIVED: "การตรวจเอกสารของเจ้าหน้าที่ / the officer's review of the documents",
    TO_DISPOSE: "การอนุมัติจำหน่ายเรื่องของหัวหน้าหน่วยงาน / the head of agency's approval",
    UNREACHABLE: "การติดต่อกลับจากผู้ขอ (อีเมลส่งไม่ถึง) / the requester's contact (mail bounced)",
}
METHODS = ("in_person", "video_call", "digital_id")
TAG = re.compile(r"\[(รับที่|ส่งที่)\s*(\d+)/(\d{4})\]")


class MatterError(SarabanError):
    """A step that cannot be taken for this matter (unknown, wrong state, ...)."""


# -- linking a citizen's reply to the matter it answers -----------------------------------


def related_receipt(mail: Incoming, requester: str, journal: Journal) -> tuple[int, int] | None:
    """The matter a mail answers: In-Reply-To/References naming a message we sent, or our
    [รับที่ N/YYYY] / [ส่งที่ N/YYYY] tag in the subject; only from the matter's requester."""
    for reference in reversed(mail.references):
        found = journal.receipt_of_sent(reference)
        if found and found[2] == requester:
            return found[0], found[1]
    for kind, number, year in TAG.findall(mail.subject):
        if kind == "ส่งที่":
            row = journal.db.execute(
                "SELECT receipt_year, receipt_no FROM results WHERE year = ? AND send_no = ?",
                (int(year), int(number)),
            ).fetchone()
            if row is None:
                continue
            year, number = row[0], row[1]
        if journal.requester_of(int(year), int(number)) == requester:
            return int(year), int(number)
    return None


def on_registered(journal: Journal, year: int, number: int, record: Record,
                  now: datetime) -> None:
    """The first events of a matter, and the news for the matter a reply belongs to."""
    state = IDENTITY_PENDING if record.high_risk else RECEIVED
    related = record.related_receipt
    if record.reviewed:  # a person decided it from the review queue first
        journal.add_event(year, number, kind="review_decided", actor=record.reviewed.actor,
                          now=record.reviewed.at, detail={"decision": record.reviewed.decision,
                                                          "via": record.reviewed.via})
    journal.add_event(year, number, kind="registered", actor="service", now=now, state=state,
                      detail={"subject": record.subject, "requester": record.requester,
                              "related_receipt": related})
    if related:
        r_number, r_year = (int(x) for x in related.split("/"))
        state = journal.state_of(r_year, r_number) or ""
        # Unreachable until now: the requester is back, the matter goes on where it was.
        back = _before_bounce(journal, r_year, r_number) if state == UNREACHABLE else None
        waiting = (back or state) in (AWAITING_DOCUMENTS, TO_DISPOSE)
        journal.add_event(r_year, r_number, kind="reply_received", actor="service", now=now,
                          state=DOCUMENTS_RECEIVED if waiting else back,
                          detail={"receipt": f"{number}/{year}"})


def mail_bounced(journal: Journal, year: int, number: int, *, recipient: str, reason: str,
                 kind: str, phones: tuple[str, ...], requester: bool, now: datetime) -> bool:
    """A bounce of our mail: logged. When it went to the requester and the request gave no
    phone number, the requester is unreachable and the hold starts. Returns whether it did."""
    state = journal.state_of(year, number)
    unreachable = (requester and not phones
                   and state not in (None, TO_DISPOSE, DISPOSED, CANCELLED))
    detail: dict[str, Any] = {"recipient": recipient, "reason": reason, "mail": kind}
    if phones:
        detail["phones"] = list(phones)
    if unreachable and state != UNREACHABLE:
        detail["previous_state"] = state
    journal.add_event(year, number, kind="mail_bounced", actor="service", now=now,
                      state=UNREACHABLE if unreachable else None, detail=detail)
    return unreachable


def _before_bounce(journal: Journal, year: int, number: int) -> str:
    for event in reversed(journal.events(year, number)):
        before = json.loads(event["detail"]).get("previous_state")
        if event["kind"] == "mail_bounced" and before:
            return str(before)
    return RECEIVED


# -- clerk steps ----------------------------------------------------------------------------


def require(journal: Journal, year: int, number: int) -> str:
    state = journal.state_of(year, number)
    if state is None:
        raise MatterError(f"no matter {number}/{year} in the journal")
    return state


def request_documents(journal: Journal, config: Config, templates: Templates,
                      calendar: BusinessCalendar, target: Any, items: str, days: int,
                      now: datetime, actor: str) -> tuple[date, str]:
    """Queue the request for missing documents; returns its deadline and Message-ID."""
    year, number = target.receipt_year, target.receipt_no
    if not items.strip():
        raise MatterError("say which documents are missing (--items), as the requester "
                          "should read it")
    if days < 1:
        raise MatterError(f"the requester needs at least 1 working day to send documents, "
                          f"not {days} (--days)")
    state = journal.state_of(year, number)
    if state in (DISPOSED, RESULT_SENT):
        raise MatterError(f"matter {number}/{year} is {state}")
    deadline = working_days_after(now.date(), days, calendar)
    context = {
        "agency": config.agency, "receipt": f"{number}/{year}",
        "matter": target.subject or "(ไม่มีหัวเรื่อง / no subject)",
        "requester_name": target.name, "items": items, "days": days,
        "deadline_th": thai_date(deadline), "deadline_en": deadline.strftime("%d %b %Y"),
        "hold_days": config.followup.hold_days,
    }
    message_id = mail_requester(
        journal, config, templates, target, "request_documents", context, now,
        event="documents_requested", actor=actor, state=AWAITING_DOCUMENTS,
        detail={"items": items, "deadline": deadline.isoformat()},
    )
    return deadline, message_id


def mail_requester(journal: Journal, config: Config, templates: Templates, target: Any,
                    template: str, context: dict[str, Any], now: datetime, *, event: str,
                    actor: str, state: str | None = None,
                    detail: dict[str, Any] | None = None) -> str:
    """Render, thread to the request, queue the mail and log the event, in one transaction."""
    from saraban_mail.replies import Envelope, build

    agency = config.agency
    subject, body = templates.render(template, context)
    envelope = Envelope(agency.name_th, agency.email, agency.domain, target.thread_id,
                        target.references)
    mail = build(template, target.recipient, subject, body, envelope, now, auto=None)
    year, number = target.receipt_year, target.receipt_no
    with journal.transaction():
        message = journal.message_of_receipt(year, number)
        journal.queue_mail(message=message[0] if message else None, kind=template,
                           recipient=target.recipient, message_id=mail.message_id, raw=mail.raw,
                           now=now)
        journal.add_event(year, number, kind=event, actor=actor, now=now, state=state,
                          detail=(detail or {}) | {"message_id": mail.message_id,
                                                   "recipient": target.recipient})
    return mail.message_id


def video_call(journal: Journal, config: Config, templates: Templates, target: Any,
               at: datetime, link: str, now: datetime, actor: str,
               forced: str | None = None) -> str:
    """Queue the appointment mail for identity proofing by video call [seed 000 step 3].
    The mail calls the request high-risk only when the service found it so."""
    year, number = target.receipt_year, target.receipt_no
    state = require(journal, year, number)
    if state in (DISPOSED, RESULT_SENT):
        raise MatterError(f"matter {number}/{year} is {state}")
    context = {"agency": config.agency,
               "receipt": f"{number}/{year}",
               "matter": target.subject, "requester_name": target.name,
               "at_th": thai_datetime(at), "at_en": at.strftime("%d %b %Y, %H:%M"), "link": link,
               "high_risk": is_high_risk(journal, year, number)}
    return mail_requester(journal, config, templates, target, "video_call", context, now,
                           event="video_call_appointed", actor=actor,
                           detail={"at": at.isoformat()} | ({"forced": forced} if forced else {}))


def is_high_risk(journal: Journal, year: int, number: int) -> bool:
    """Registered as high-risk (its identity to be proven before a result)."""
    return any(e["state"] == IDENTITY_PENDING for e in journal.events(year, number))


def verify_identity(journal: Journal, config: Config, year: int, number: int, method: str,
                    evidence: list[Path], now: datetime, actor: str) -> list[Path]:
    """Record how identity was proven; evidence is copied into the private data folder."""
    require(journal, year, number)
    if method not in METHODS:
        raise MatterError(f"method must be one of {', '.join(METHODS)}")
    folder = config.paths.data_dir / "matters" / f"{year}-{number}"
    stored = []
    for path in evidence:
        if not path.is_file():
            raise MatterError(f"evidence file {path} does not exist")
    private_dir(folder)
    os.chmod(folder, 0o700)
    for path in evidence:
        safe = re.sub(r"[^\w.-]", "_", path.name)
        target = folder / f"{now:%Y%m%d-%H%M%S}-{safe}"
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        stored.append(target)
    journal.add_event(year, number, kind="identity_verified", actor=actor, now=now,
                      state=IDENTITY_VERIFIED,
                      detail={"method": method, "evidence": [p.name for p in stored]})
    return stored


def identity_gate(journal: Journal, year: int, number: int, force: str | None,
                  now: datetime, actor: str) -> None:
    """A high-risk matter gets no result before identity is proven, unless forced (logged)."""
    events = journal.events(year, number)
    pending = any(e["state"] == IDENTITY_PENDING for e in events)
    verified = any(e["kind"] == "identity_verified" for e in events)
    if pending and not verified:
        if not force:
            raise MatterError(
                f"matter {number}/{year} is high-risk and identity is not yet verified: run "
                "verify-identity first (or --force REASON)"
            )
        journal.add_event(year, number, kind="identity_check_overridden", actor=actor, now=now,
                          detail={"reason": force})


def dispose(journal: Journal, config: Config, year: int, number: int, approved_by: str,
            now: datetime, force: str | None = None) -> list[str]:
    """Close a matter the service proposed for disposal (or another one, with a reason)."""
    state = require(journal, year, number)
    if state == DISPOSED:
        raise MatterError(f"matter {number}/{year} is already disposed")
    if state != TO_DISPOSE and not force:
        raise MatterError(f"matter {number}/{year} is {state}, not proposed for disposal: "
                          "the service proposes a matter after the hold (or --force REASON)")
    detail = {"approved_by": approved_by, "previous_state": state}
    journal.add_event(year, number, kind="disposed", actor=approved_by, now=now, state=DISPOSED,
                      detail=detail | ({"forced": force} if force else {}))
    return note_in_register(config, year, [(number, f"จำหน่ายเรื่อง อนุมัติโดย {approved_by} "
                                                    f"เมื่อ {thai_date(now.date())}")],
                            journal, now)


# -- instructions a clerk writes in the register ----------------------------------------

INSTRUCTION = re.compile(r"^\s*ขอเอกสาร\s*:\s*(.+?)\s*$", re.MULTILINE)


def new_lines(journal: Journal, year: int, rows: list[SheetRow], pattern: re.Pattern[str],
              kind: str, key: str) -> Iterator[tuple[int, str]]:
    """(receipt number, text) of each instruction `pattern` finds in a row's การปฏิบัติ that
    no `kind` event of the matter has carried out yet (its detail[key] is the text): a line
    left in the cell for weeks is acted on once."""
    for row in rows:
        found = pattern.findall(str(row.values.get("action") or ""))
        if not found or row.number is None:
            continue
        done = {json.loads(e["detail"]).get(key) for e in journal.events(year, row.number)
                if e["kind"] == kind}
        yield from ((row.number, text) for text in dict.fromkeys(found) if text not in done)


def documents_asked_in(journal: Journal, config: Config, templates: Templates,
                       calendar: BusinessCalendar, now: datetime,
                       target_of: Callable[[int, int], Any], year: int,
                       rows: list[SheetRow]) -> tuple[list[str], bool]:
    """A line "ขอเอกสาร: <what is missing>" that a clerk typed in a row's การปฏิบัติ asks
    the requester for those documents (once per distinct text). Returns the problems and
    whether one could not be carried out (the register is then read again next poll)."""
    problems: list[str] = []
    failed = False
    for number, items in new_lines(journal, year, rows, INSTRUCTION, "documents_requested",
                                   "items"):
        try:
            deadline, _ = request_documents(journal, config, templates, calendar,
                                            target_of(year, number), items,
                                            config.followup.documents_days, now,
                                            "clerk (register)")
        except SarabanError as exc:
            problems.append(f"ขอเอกสาร in row {number}/{year}: {exc}")
            failed = True
            continue
        problems += note_in_register(
            config, year, [(number, f"ขอเอกสารเพิ่มเติม ครบกำหนด {thai_date(deadline)}")],
            journal, now)
    return problems, failed


# -- the story ------------------------------------------------------------------------------


def history(journal: Journal, year: int, number: int, calendar: BusinessCalendar) -> list[str]:
    events = journal.events(year, number)
    if not events:
        raise MatterError(f"no matter {number}/{year} in the journal")
    lines = []
    for event in events:
        at = datetime.fromisoformat(event["at"]).astimezone(calendar.tz)
        detail = {k: v for k, v in json.loads(event["detail"]).items()
                  if v and k not in ("message_id",)}
        state = f" → {event['state']}" if event["state"] else ""
        extra = "; ".join(f"{k}: {readable(v, calendar.tz)}" for k, v in detail.items())
        lines.append(f"{thai_datetime(at)}  {event['kind']}{state}  ({event['actor']})"
                     + (f"  {extra}" if extra else ""))
    now_state = journal.state_of(year, number)
    if now_state in WAITING_FOR:
        lines.append(f"now waiting for: {WAITING_FOR[now_state]}")
    return lines


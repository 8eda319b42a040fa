"""Replies of a poll: the template values of a record, the envelope that threads a reply
to the citizen's mail, and the queue in the journal with its loop brake.

Intake queues what needs no receipt number (wrong agency, forwards); numbering queues the
acknowledgements. Sending is a later stage (sending.py)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.category import Category
from saraban_mail.config import Config
from saraban_mail.letters import Letter
from saraban_mail.poll.context import Context
from saraban_mail.record import Record
from saraban_mail.replies import Envelope, Reply, Templates, build
from saraban_mail.rules import AgencyRule, ChannelRule, RuleSet
from saraban_mail.thaitext import english_date, english_datetime, thai_date, thai_datetime

log = logging.getLogger("saraban_mail")

TEMPLATES = ("acknowledgement", "wrong_channel", "wrong_agency", "forward_note", "forward_cover",
             "letter_receipt")


def values(config: Config, rules: RuleSet, calendar: BusinessCalendar, record: Record,
           receipt: str = "") -> dict[str, Any]:
    """What a reply template may use (templates/README.md lists it)."""
    official = record.official_received_at.astimezone(calendar.tz)
    risk = next((r for r in rules.high_risk if r.id == record.high_risk_rule), None)
    letter = record.letter or Letter()
    return {
        "agency": config.agency,
        "receipt": receipt,
        "official_th": thai_datetime(official),
        "official_en": english_datetime(official),
        "ack_due_th": thai_datetime(record.ack_due) if record.ack_due else "",
        "subject": record.subject or "(ไม่มีหัวเรื่อง / no subject)",
        "requester": record.requester,
        "requester_name": record.requester_name,
        "high_risk": record.high_risk,
        "high_risk_th": risk.name_th if risk else "",
        "high_risk_en": risk.name_en if risk else "",
        "channel": record.channel.model_dump() if record.channel else None,
        "target": record.agency.model_dump() if record.agency else None,
        "processing_time_th": config.replies.processing_time_th,
        "processing_time_en": config.replies.processing_time_en,
        # An official letter's own ที่ and ลงวันที่ (letter_receipt).
        "doc_no": letter.doc_no,
        "doc_date_th": letter.doc_date_text or (thai_date(letter.doc_date)
                                                if letter.doc_date else ""),
        "doc_date_en": english_date(letter.doc_date) if letter.doc_date else "",
        "letter_subject": letter.subject or record.subject,
    }


def envelope(config: Config, record: Record | None) -> Envelope:
    """From the agency; threaded to the citizen's mail when there is a record."""
    agency = config.agency
    return Envelope(
        from_name=agency.name_th, from_addr=agency.email, domain=agency.domain,
        in_reply_to=(record.thread_id or record.message_id) if record else "",
        references=record.references if record else (),
    )


def reply(ctx: Context, kind: str, record: Record, now: datetime, receipt: str = "") -> Reply:
    subject, body = ctx.templates.render(
        kind, values(ctx.config, ctx.rules, ctx.calendar, record, receipt))
    return build(kind, record.requester, subject, body, envelope(ctx.config, record), now)


def immediate_replies(ctx: Context, record: Record, raw: bytes, now: datetime) -> list[Reply]:
    """Replies that need no receipt number: wrong agency, and forwards."""
    if record.category == Category.WRONG_AGENCY:
        return [reply(ctx, "wrong_agency", record, now)]
    if record.category == Category.WRONG_AGENCY_FORWARD and record.agency:
        subject, body = ctx.templates.render(
            "forward_cover", values(ctx.config, ctx.rules, ctx.calendar, record))
        forward = build("forward", record.agency.email, subject, body,
                        envelope(ctx.config, None), now, attach=raw, auto="auto-forwarded")
        return [forward, reply(ctx, "forward_note", record, now)]
    return []


def queue(ctx: Context, message: int, reply: Reply, now: datetime) -> bool:
    """Queue a reply unless its recipient already had the day's share (a loop brake)."""
    journal = ctx.journal
    limit = ctx.config.policy.max_replies_per_sender_per_day
    day = now.astimezone(ctx.calendar.tz).date()
    if reply.kind != "forward" and journal.replies_on(reply.recipient, day) >= limit:
        log.warning("not replying to %s: %d replies today already", reply.recipient, limit)
        return False
    journal.queue_mail(message=message, kind=reply.kind, recipient=reply.recipient,
                       message_id=reply.message_id, raw=reply.raw,
                       now=now.astimezone(ctx.calendar.tz))
    return True


def check_templates(templates: Templates, config: Config, rules: RuleSet,
                    calendar: BusinessCalendar, now: datetime) -> None:
    """Render every template once with sample values, so a broken template is one
    clear error at start-up rather than a failure on a citizen's mail."""
    sample = Record(
        message_id="<sample@example>", thread_id="", folder="INBOX", uid=1, from_addr="",
        from_name="", requester="citizen@example.com", requester_name="ผู้ขอ",
        subject="ตัวอย่าง", date_header=None, references=(), category=Category.VALID,
        rule="default", reason="", high_risk=True,
        high_risk_rule=rules.high_risk[0].id if rules.high_risk else "",
        agency=AgencyRule(id="sample", name_th="หน่วยงาน", name_en="agency", contact="x",
                          email="a@b.c"),
        channel=ChannelRule(id="sample", name_th="ช่องทาง", name_en="channel",
                            correct_channel="x"),
        received_at=now, official_received_at=now, ack_due=now, attachments=(), planned=(),
        letter=Letter(doc_no="นม ๐๐๒๓/ว ๑๒๓", doc_date=now.date(), doc_date_text="๑๒ พ.ย. ๒๕๖๙",
                      agency="ศาลากลางจังหวัด", subject="ตัวอย่าง"),
    )
    for name in TEMPLATES:
        templates.render(name, values(config, rules, calendar, sample, "1/2569"))
    result = {"agency": config.agency, "receipt": "1/2569", "outgoing": "1/2569", "matter": "x",
              "requester_name": "x", "files": ["a.pdf"], "protected": True, "password": "x",
              "sent_th": "x", "sent_en": "x"}
    for name in ("result", "result_password"):
        templates.render(name, result)
    followup = result | {"items": "x", "days": 7, "deadline_th": "x", "deadline_en": "x",
                         "hold_days": 30, "at_th": "x", "at_en": "x", "link": "x",
                         "high_risk": True}
    for name in ("request_documents", "documents_reminder", "video_call"):
        templates.render(name, followup)

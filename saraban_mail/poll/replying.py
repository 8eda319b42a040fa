"""Replies of a poll: the template values of a record, the envelope that threads a reply
to the citizen's mail, and the queue in the journal with its loop brake.

Intake queues what needs no receipt number (wrong agency, forwards); numbering hands its
acknowledgements to `acknowledge`. Sending is a later stage (sending.py).

The cap on mails to one address a day (`policy.max_replies_per_sender_per_day`) stops loops
with auto-responders that carry no marker; it must never cost a registered request its
acknowledgement. So the acknowledgements one address is owed at a poll go out as ONE mail
listing every receipt number (template `acknowledgements`), and when the address has had
the day's share, they are held in the journal (`held_acks`), reported as a problem with their
deadline at every poll, and sent at the first poll with room (the next day's). Exempting
acknowledgements from the cap instead would let a responder whose every answer differs
loop without end; this way it gets at most the cap's number of mails a day."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from saraban_mail import progress, unit_heads
from saraban_mail.calendar import BusinessCalendar
from saraban_mail.category import Category
from saraban_mail.config import Config
from saraban_mail.letters import Letter
from saraban_mail.matters import CANCELLED
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.record import Record
from saraban_mail.replies import Envelope, Reply, Templates, build
from saraban_mail.routes import current_route
from saraban_mail.routing import Route, processing_time
from saraban_mail.rules import AgencyRule, ChannelRule, RuleSet, default_dir, load_rules
from saraban_mail.thaitext import english_date, english_datetime, thai_date, thai_datetime

log = logging.getLogger("saraban_mail")

TEMPLATES = ("acknowledgement", "wrong_channel", "wrong_agency", "forward_note", "forward_cover",
             "letter_receipt")  # and unit_forward (routes.py), sampled below
ACK_KINDS = ("acknowledgement", "wrong_channel", "letter_receipt")


@dataclass(frozen=True)
class Owed:
    """An acknowledgement a registered message is owed: its journal id, kind and receipt."""

    message: int
    kind: str  # one of ACK_KINDS
    record: Record
    receipt: str  # "12/2569"
    route: Route | None = None  # the unit and service it was routed to (routes.py)


def values(config: Config, rules: RuleSet, calendar: BusinessCalendar, record: Record,
           receipt: str = "", route: Route | None = None) -> dict[str, Any]:
    """What a reply template may use (templates/README.md lists it)."""
    official = record.official_received_at.astimezone(calendar.tz)
    unit = rules.units.unit(route.unit) if route and route.unit else None
    service = rules.units.service(route.service) if route and route.service else None
    time_th, time_en = (processing_time(service) if service else
                        (config.replies.processing_time_th, config.replies.processing_time_en))
    risk = next((r for r in rules.high_risk if r.id == record.high_risk_rule), None)
    letter = record.letter or Letter()
    return {
        "agency": config.agency,
        "receipt": receipt,
        "official_th": thai_datetime(official),
        "official_en": english_datetime(official),
        "ack_due_th": thai_datetime(record.ack_due) if record.ack_due else "",
        "subject": record.subject or "(ไม่มีหัวเรื่อง / no subject)",
        "subject_en": record.subject or "(no subject)",  # the English half has no Thai of ours
        "requester": record.requester,
        "requester_name": record.requester_name,
        "high_risk": record.high_risk,
        "high_risk_th": risk.name_th if risk else "",
        "high_risk_en": risk.name_en if risk else "",
        "channel": record.channel.model_dump() if record.channel else None,
        "target": record.agency.model_dump() if record.agency else None,
        "processing_time_th": time_th,
        "processing_time_en": time_en,
        # The unit that takes the request on and its service [seed 002 init §2.6]; None
        # when it stayed with the saraban desk (the text is then as without units.toml).
        "unit": unit.model_dump() if unit else None,
        "service": service.model_dump() if service else None,
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


def reply(ctx: Context, kind: str, record: Record, now: datetime, receipt: str = "",
          route: Route | None = None) -> Reply:
    subject, body = ctx.templates.render(
        kind, values(ctx.config, ctx.rules, ctx.calendar, record, receipt, route))
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


def acknowledge(ctx: Context, report: PollReport, owed: list[Owed], now: datetime) -> None:
    """Queue the acknowledgements owed now and those held before, one mail per address;
    hold what the cap leaves no room for today. Call inside the numbering transaction."""
    journal = ctx.journal
    held = []
    for message, kind, record in journal.held_acks():
        year, number = journal.receipt(message)
        if year is None or number is None or journal.state_of(year, number) == CANCELLED:
            journal.release_ack(message, now)  # a number cancelled meanwhile is owed nothing
            continue
        held.append(Owed(message, kind, record, f"{number}/{year}",
                         current_route(journal, year, number)))
    fresh = {item.message for item in owed} - {item.message for item in held}
    by_address: dict[str, list[Owed]] = {}
    for item in held + [o for o in owed if o.message in fresh]:
        by_address.setdefault(item.record.requester, []).append(item)
    limit = ctx.config.policy.max_replies_per_sender_per_day
    day = now.astimezone(ctx.calendar.tz).date()
    for address, items in by_address.items():
        if journal.replies_on(address, day) >= limit:
            for item in items:
                if item.message in fresh:
                    journal.hold_ack(item.message, item.kind, now)
            due = min((i.record.ack_due for i in items if i.record.ack_due), default=None)
            report.problems.append(
                f"acknowledgement of {', '.join(i.receipt for i in items)} to {address} held "
                f"back: {limit} mails to that address today already "
                f"(policy.max_replies_per_sender_per_day); due "
                f"{due.isoformat() if due else 'unknown'}; sent at the next poll with room")
            continue
        mail = _acknowledgement(ctx, items, now)
        first = journal.queue_mail(message=items[0].message, kind=items[0].kind,
                                   recipient=address, message_id=mail.message_id, raw=mail.raw,
                                   now=now.astimezone(ctx.calendar.tz))
        for item in items[1:]:  # named in the same mail: sent and filed with it
            journal.queue_mail(message=item.message, kind=item.kind, recipient=address,
                               message_id=mail.message_id, raw=b"",
                               now=now.astimezone(ctx.calendar.tz), part_of=first)
        for item in items:
            if item.message not in fresh:
                journal.release_ack(item.message, now)


def _acknowledgement(ctx: Context, items: list[Owed], now: datetime) -> Reply:
    """One receipt: its own template; several: `acknowledgements`, naming each."""
    if len(items) == 1:
        return reply(ctx, items[0].kind, items[0].record, now, items[0].receipt,
                     items[0].route)
    each = [values(ctx.config, ctx.rules, ctx.calendar, item.record, item.receipt, item.route)
            | {"wrong_channel": item.kind == "wrong_channel"} for item in items]
    risky = [item for item in each if item["high_risk"]]
    subject, body = ctx.templates.render("acknowledgements", each[-1] | {
        "receipts": each, "high_risk": bool(risky),
        # Each receipt names its own service's time; the general line stays the default.
        "processing_time_th": ctx.config.replies.processing_time_th,
        "processing_time_en": ctx.config.replies.processing_time_en,
        "high_risk_th": ", ".join(dict.fromkeys(i["high_risk_th"] for i in risky)),
        "high_risk_en": ", ".join(dict.fromkeys(i["high_risk_en"] for i in risky))})
    # Threaded to the latest mail; the others are named by number in the subject.
    return build("acknowledgement", items[0].record.requester, subject, body,
                 envelope(ctx.config, items[-1].record), now)


def check_templates(templates: Templates, config: Config, rules: RuleSet,
                    calendar: BusinessCalendar, now: datetime) -> None:
    """Render every template once with sample values, so a broken template is one
    clear error at start-up rather than a failure on a citizen's mail."""
    for name, sample in template_samples(config, rules, calendar, now).items():
        templates.render(name, sample)


def template_samples(config: Config, rules: RuleSet, calendar: BusinessCalendar, now: datetime,
                     record: Record | None = None) -> dict[str, dict[str, Any]]:
    """Sample values for every template, by name: the poll replies' from `values` of
    `record` (a sample request when None), the others as their senders give them."""
    sample = record or Record(
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
    item = values(config, rules, calendar, sample, "1/2569")
    samples = {name: item for name in TEMPLATES}
    # Routed to a unit with its service (units.toml), or the shipped example's first.
    units = rules.units if rules.units.services else load_rules(default_dir("rules")).units
    service = units.services[0]
    routed = Route(service.id, service.unit, f"service:{service.id}", "x")
    samples["acknowledgement"] = values(config, replace(rules, units=units), calendar, sample,
                                        "1/2569", routed)
    unit = units.unit(service.unit)
    samples["unit_forward"] = {
        "agency": config.agency, "receipt": "1/2569", "subject": "x", "requester": "x",
        "unit": unit.model_dump() if unit else {}, "service": service.model_dump(),
        "official_th": "x", "due_th": "x", "due_en": "x", "attached": True}
    listed = samples["acknowledgement"] | {"wrong_channel": True}
    samples["acknowledgements"] = listed | {
        "receipts": [listed, listed | {"receipt": "2/2569", "wrong_channel": False}]}
    result = {"agency": config.agency, "receipt": "1/2569", "outgoing": "1/2569", "matter": "x",
              "requester_name": "x", "files": ["a.pdf"], "protected": True, "password": "x",
              "sealed": True, "zipped": True,
              "sent_th": "x", "sent_en": "x"}
    samples |= {name: result for name in ("result", "result_password")}
    followup = result | {"items": "x", "days": 7, "deadline_th": "x", "deadline_en": "x",
                         "hold_days": 30, "at_th": "x", "at_en": "x", "link": "x",
                         "high_risk": True}
    samples |= {name: followup for name in ("request_documents", "documents_reminder",
                                            "video_call")}
    samples |= {progress.TEMPLATE: progress.sample(config),
                unit_heads.TEMPLATE: unit_heads.sample(config)}
    return samples

"""One poll: fetch → parse → classify → journal → number → register → send → mark/move.

Each stage takes its work from the journal and marks it done there, so a poll that
crashes anywhere is finished by the next one: nothing is lost, nothing happens twice."""

from __future__ import annotations

import dataclasses
import email.policy
import functools
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from saraban_mail import matters, oauth, results, schedule
from saraban_mail.calendar import BusinessCalendar, ack_due, buddhist_year, official_received_at
from saraban_mail.classify import Category, Decision, Identity, classify
from saraban_mail.config import Config
from saraban_mail.errors import LoginRefused, MailboxError, RegisterError, SarabanError, SendError
from saraban_mail.journal import Journal, private_dir
from saraban_mail.mailbox import Fetched, Mailbox, batches
from saraban_mail.parse import Incoming, identity_of, parse
from saraban_mail.register import (
    INCOMING,
    INQUIRIES,
    Look,
    append_rows,
    highest_number,
    incoming_path,
    release,
    service_ref,
    snapshot,
    stamp,
    workbook_path,
)
from saraban_mail.replies import Envelope, Reply, Templates, build
from saraban_mail.rules import RuleSet
from saraban_mail.send import Outgoing, Transport
from saraban_mail.thaitext import english_datetime, fold, thai_datetime

log = logging.getLogger("saraban_mail")

NETWORK_ERRORS = (MailboxError, IMAPClientError, OSError)
# The connection itself is gone (dropped, timed out, server restarted): worth connecting again.
CONNECTION_LOST = (IMAPClientAbortError, OSError)


@dataclass
class Context:
    config: Config
    rules: RuleSet
    calendar: BusinessCalendar
    journal: Journal
    mailbox: Mailbox
    transport: Transport
    templates: Templates
    clock: Callable[[], datetime]
    dry_run: bool = False
    # Asked to stop (SIGTERM): finish the message in hand, then the stages after intake.
    stop: Callable[[], bool] = lambda: False
    # Called after each message with (folder, messages still to read in that folder).
    progress: Callable[[str, int], None] = lambda folder, left: None
    sleep: Callable[[float], None] = time.sleep


@dataclass
class PollReport:
    records: list[dict[str, Any]] = field(default_factory=list)
    # One line each: work that is left pending or needs a person.
    problems: list[str] = field(default_factory=list)


def poll(ctx: Context) -> PollReport:
    report = PollReport()
    poll_id = uuid.uuid4().hex
    stages: list[Callable[[Context, PollReport], None]] = [
        functools.partial(_intake, poll_id=poll_id), _number]
    if not ctx.dry_run and ctx.config.watch:
        stages.insert(0, _watch)
    if not ctx.dry_run:
        stages += [_write_register, _clerk_instructions, _housekeeping, _send, _results,
                   _apply_actions, _alert]
    try:
        for stage in stages:
            started = time.perf_counter()
            stage(ctx, report)
            name = getattr(stage, "func", stage).__name__.strip("_")
            log.info("stage %s: %.3f s", name, time.perf_counter() - started)
    finally:
        release()  # workbooks kept for a write that did not come
    report.records = [_output(ctx, row) for row in ctx.journal.copies_of_poll(poll_id)]
    if not ctx.dry_run:
        ended = ctx.clock()
        with ctx.journal.transaction():
            ctx.journal.set_meta("last_poll", json.dumps({
                "at": ended.isoformat(), "handled": len(report.records),
                "problems": report.problems[:20],
            }, ensure_ascii=False))
            ctx.journal.set_meta("poll_times", json.dumps(_poll_times(ctx, ended)))
    return report


def _poll_times(ctx: Context, ended: datetime) -> dict[str, Any]:
    """The next poll times, noted for `status` with the timetable they follow. While the
    last note still covers them they are taken from it (an idle poll, a poll between
    scheduled ones): the holiday table is then not loaded."""
    times = schedule.poll_times(ctx.config.schedule.times, ctx.calendar)
    key = schedule.timetable(ctx.calendar, times)
    last = json.loads(ctx.journal.get_meta("poll_times") or "null")
    upcoming = (schedule.noted_polls(last, key, ended)
                or schedule.next_polls(ctx.calendar, times, ended, schedule.NOTED_POLLS))
    return {"at": ended.isoformat(), "next_polls": [t.isoformat() for t in upcoming],
            "timetable": key}


# -- 1. intake: fetch, parse, classify, record ------------------------------------------


def _alert(ctx: Context, report: PollReport) -> None:
    alert_admin(ctx.journal, ctx.config, ctx.transport, ctx.clock(),
                oauth.warnings(ctx.config, ctx.clock()))


def _intake(ctx: Context, report: PollReport, poll_id: str) -> None:
    box = ctx.mailbox
    for folder in [f for f in (box.folders.inbox, box.folders.junk) if f]:
        failed = _with_reconnect(ctx, f"reading {folder}",
                                 functools.partial(_intake_folder, ctx, folder, poll_id, report))
        if failed:
            report.problems.append(f"{folder}: mailbox error: {failed}; read again at the next poll")


def _watch(ctx: Context, report: PollReport) -> None:
    """Staff mailboxes first, so that what they hold for saraban is taken in this poll.
    One that fails (a wrong password, a server down) is reported; the poll goes on."""
    from saraban_mail import watch
    from saraban_mail.mailbox import ImapMailbox, WatchedMailbox

    if not isinstance(ctx.mailbox, ImapMailbox):
        report.problems.append('watched mailboxes need mailbox.backend = "imap": not read')
        return
    max_bytes = int(ctx.config.policy.max_message_mb * 2**20)
    for entry in ctx.config.watch:
        if ctx.stop():
            break
        box = None
        try:
            box = WatchedMailbox(entry, oauth.watch_tokens(ctx.config, entry, ctx.clock), max_bytes)
            done = watch.read_watched(box, entry, ctx.mailbox, ctx.journal, ctx.config, ctx.rules,
                                      _identity(ctx.config), ctx.clock, ctx.stop)
            watch.note_health(ctx.journal, entry.name, ctx.clock(), report=done)
        except (SarabanError, OSError, IMAPClientError) as exc:
            text = watch.failure_text(exc)
            log.warning("watched mailbox %s: %s", entry.name, text)
            report.problems.append(f"watched mailbox {entry.name}: {text}; "
                                   "read again at the next poll")
            watch.note_health(ctx.journal, entry.name, ctx.clock(), error=text)
        finally:
            if box is not None:
                box.close()


def _with_reconnect(ctx: Context, what: str, step: Callable[[], object]) -> Exception | None:
    """Run step; when the connection drops, connect again after each of
    network.retry_delays and run it again (steps resume from the journal).
    Returns the last error if it never worked."""
    waits = iter(ctx.config.network.retry_delays)
    while True:
        try:
            step()
            return None
        except CONNECTION_LOST as exc:
            last: Exception = exc
        except NETWORK_ERRORS as exc:  # the server said no: connecting again would not help
            return exc
        while True:
            wait = next(waits, None)
            if wait is None or ctx.stop():
                return last
            log.warning("%s: %s; connecting again in %g s", what, last, wait)
            ctx.sleep(wait)
            try:
                ctx.mailbox.reconnect()
                break
            except LoginRefused as again:
                return again
            except NETWORK_ERRORS as again:
                last = again


def _intake_folder(ctx: Context, folder: str, poll_id: str, report: PollReport) -> None:
    box = ctx.mailbox
    validity = box.uidvalidity(folder)
    state = ctx.journal.folder_state(folder)
    after = state.last_uid if state and state.uidvalidity == validity else 0
    if state and state.uidvalidity != validity:
        log.warning("%s: UIDVALIDITY changed; re-scanning (known mail is skipped)", folder)
    known = lambda uid: ctx.journal.known_copy(folder, validity, uid)  # noqa: E731
    for fetched in box.fetch_new(folder, after, ctx.config.policy.start_date, known):
        if ctx.stop():
            break
        try:
            _intake_one(ctx, fetched, poll_id)
        except Exception as exc:  # one bad message never stops a poll
            log.exception("message %s UID %s failed", folder, fetched.uid)
            try:
                _intake_failed(ctx, fetched, poll_id, exc)
            except Exception as again:
                # Not even recorded: stop this folder here so the UID is not passed.
                report.problems.append(
                    f"{folder} UID {fetched.uid}: could not be recorded ({again}); "
                    f"{folder} is read again from here at the next poll"
                )
                break
            report.problems.append(
                f"{folder} UID {fetched.uid}: could not be handled ({exc}); flagged for review"
            )
        ctx.progress(folder, fetched.left)


def _is_duplicate(known_folder: str, known_validity: int, fetched: Fetched, junk: str | None) -> bool:
    """A second delivery of a mail we know, rather than our own move or a re-scan."""
    if fetched.folder != known_folder:
        return known_folder != junk  # a copy we moved out of Junk is not a duplicate
    return fetched.uidvalidity == known_validity


def _intake_one(ctx: Context, fetched: Fetched, poll_id: str) -> None:
    journal, folders = ctx.journal, ctx.mailbox.folders
    mail = parse(fetched.raw, fetched.parts)
    now = ctx.clock()
    known = journal.find_identity(mail.identity)
    if known is not None:
        duplicate = _is_duplicate(known.folder, known.uidvalidity, fetched, folders.junk)
        with journal.transaction():
            journal.add_copy(fetched.folder, fetched.uidvalidity, fetched.uid, known.id,
                             "duplicate" if duplicate else "copy", poll_id)
            if duplicate:
                journal.add_action(known.id, fetched.folder, fetched.uidvalidity, fetched.uid,
                                   "seen")
            journal.advance(fetched.folder, fetched.uidvalidity, fetched.uid)
        return
    if fetched.truncated:  # only its header was read: a person reads the rest
        decision = Decision(Category.NEEDS_REVIEW, "too_large", (
            f"{fetched.size / 2**20:.1f} MB, larger than policy.max_message_mb "
            f"({ctx.config.policy.max_message_mb:g}): read it in the mail program"))
    else:
        decision = classify(mail, ctx.rules, _identity(ctx.config))
    origin = journal.watched(mail.identity) if fetched.folder == folders.inbox else None
    if origin is not None and decision.category.registered:
        # Our copy from a staff mailbox: received now, by saraban; sent to the wrong address.
        decision = dataclasses.replace(
            decision, category=Category.WRONG_CHANNEL, rule="watched_mailbox", channel=None,
            reason=f"sent to {origin['address'] or origin['watch']} (watched mailbox "
                   f"'{origin['watch']}'), copied to the central mailbox")
    text_sha = hashlib.sha256(" ".join(fold(mail.text).split()).encode()).hexdigest()
    related = (matters.related_receipt(mail, decision.requester, journal)
               if decision.category.registered else None)
    if related and journal.answered_with(decision.requester, text_sha):
        # The same words again in answer to us: an auto-responder with no markers.
        decision = Decision(Category.AUTOMATED, "repeated_answer",
                            "the same text again in answer to our reply (an auto-responder)")
    record = _record(ctx, fetched, mail, decision)
    record["text_sha"] = text_sha
    if origin is not None:
        record["watched"] = {"watch": origin["watch"], "address": origin["address"],
                             "arrived_at": origin["arrived_at"]}
    if decision.category.registered:
        record["related_receipt"] = f"{related[1]}/{related[0]}" if related else None
        text = fold(f"{mail.subject}\n{mail.text}")
        record["inquiry"] = any(fold(k) in text for k in ctx.config.followup.inquiry_keywords)
    _record_new(ctx, fetched, mail, decision, record, poll_id, now,
                lambda message: [_queue(ctx, message, reply, now) for reply in
                                 _immediate_replies(ctx, mail, decision, record, fetched.raw, now)])


def _record_new(ctx: Context, fetched: Fetched, mail: Incoming, decision: Decision,
                record: dict[str, Any], poll_id: str, now: datetime,
                also: Callable[[int], object] = lambda _: None) -> None:
    """Keep the files, then one transaction: the message, its copy, its mailbox actions,
    whatever `also` queues, and the folder's new high-water mark."""
    journal = ctx.journal
    if not ctx.dry_run:
        # Files first: a crash before the journal commit only means writing them again.
        _keep_files(ctx, mail, decision, fetched.raw)
    with journal.transaction():
        message = journal.add_message(
            identity=mail.identity, folder=fetched.folder, uidvalidity=fetched.uidvalidity,
            uid=fetched.uid, category=decision.category, rule=decision.rule,
            requester=decision.requester,
            official_received_at=datetime.fromisoformat(record["official_received_at"]),
            record=record, poll=poll_id, now=now,
        )
        journal.add_copy(fetched.folder, fetched.uidvalidity, fetched.uid, message, "original",
                         poll_id)
        for seq, (action, target) in enumerate(_mailbox_actions(ctx, fetched, decision)):
            journal.add_action(message, fetched.folder, fetched.uidvalidity, fetched.uid,
                               action, target, seq)
        also(message)
        journal.advance(fetched.folder, fetched.uidvalidity, fetched.uid)


def _intake_failed(ctx: Context, fetched: Fetched, poll_id: str, error: Exception) -> None:
    """Record a message the pipeline itself failed on as needs_review, so that it is
    flagged for a person and kept, and later UIDs can move on without losing it."""
    mail = Incoming(
        identity=identity_of(fetched.raw, ""), message_id="", from_addr="", from_name="",
        reply_to="", to=(), cc=(), subject="", date_header=None, text="", headers={},
        parse_error=f"internal error: {type(error).__name__}: {error}"[:300],
    )
    decision = Decision(Category.NEEDS_REVIEW, "internal_error", mail.parse_error or "")
    if ctx.journal.find_identity(mail.identity) is not None:
        return
    _record_new(ctx, fetched, mail, decision, _record(ctx, fetched, mail, decision), poll_id,
                ctx.clock())


def _identity(config: Config) -> Identity:
    return Identity(own_addresses=frozenset({config.agency.email.lower()}),
                    staff=frozenset(config.staff.addresses))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _record(ctx: Context, fetched: Fetched, mail: Incoming, d: Decision) -> dict[str, Any]:
    """Everything later stages need, as plain JSON in the journal."""
    cal = ctx.calendar
    received = fetched.received_at.astimezone(cal.tz)
    return {
        "message_id": mail.message_id,
        "thread_id": d.thread_id,
        "folder": fetched.folder,
        "uid": fetched.uid,
        "from": mail.from_addr,
        "from_name": mail.from_name,
        "requester": d.requester,
        "requester_name": d.requester_name,
        "subject": mail.subject,
        "date_header": _iso(mail.date_header),
        "references": list(mail.references[-20:]),
        "category": str(d.category),
        "rule": d.rule,
        "reason": d.reason,
        "high_risk": d.high_risk,
        "high_risk_rule": d.high_risk_rule,
        "agency": d.agency.model_dump() if d.agency else None,
        "channel": d.channel.model_dump() if d.channel else None,
        "received_at": received.isoformat(),
        "official_received_at": official_received_at(received, cal).isoformat(),
        "ack_due": ack_due(received, cal).isoformat() if d.category.registered else None,
        "attachments": [
            {"name": a.name, "type": a.content_type, "size": a.size, "sha256": a.sha256}
            for a in mail.attachments
        ],
        "planned": _planned(ctx, fetched, d),
    }


def _planned(ctx: Context, fetched: Fetched, d: Decision) -> list[str]:
    steps = {
        Category.VALID: ["register", "acknowledge"],
        Category.WRONG_CHANNEL: ["register", "acknowledge_wrong_channel"],
        Category.WRONG_AGENCY: ["reply_wrong_agency"],
        Category.WRONG_AGENCY_FORWARD: [f"forward:{d.agency.id if d.agency else ''}",
                                        "notify_sender"],
        Category.NEEDS_REVIEW: ["keep_raw"],
    }.get(d.category, [])
    for action, target in _mailbox_actions(ctx, fetched, d):
        steps.append(f"{action}:{target}" if target else action)
    return steps


def _mailbox_actions(ctx: Context, fetched: Fetched, d: Decision) -> list[tuple[str, str]]:
    folders = ctx.mailbox.folders
    if d.category == Category.SPAM:
        if ctx.config.policy.spam_action == "delete":
            return [("delete", "")]
        # No Trash folder: leave spam where it is rather than delete it.
        return [("move", folders.trash)] if folders.trash else [("seen", "")]
    first = ("flag", "") if d.category == Category.NEEDS_REVIEW else ("seen", "")
    # Junk that is not spam belongs in the inbox [seed 004 App.3 §4].
    return [first, ("move", folders.inbox)] if fetched.folder == folders.junk else [first]


def _keep_files(ctx: Context, mail: Incoming, d: Decision, raw: bytes) -> None:
    data = ctx.config.paths.data_dir
    if d.category == Category.NEEDS_REVIEW:
        _private_write(data / "review" / f"{mail.identity}.eml", raw)
    elif d.category.registered:
        for index, attachment in enumerate(mail.attachments, start=1):
            _private_write(data / "attachments" / mail.identity[:20] /
                           f"{index:02d}-{safe_filename(attachment.name)}", attachment.data)


def safe_filename(name: str) -> str:
    """A name from the mail, made harmless: no path, no control or RTL characters,
    no leading dot, no reserved Windows device name, at most 100 characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()\u0e00-\u0e7f]", "_", name).strip(" .") or "attachment"
    stem = name.split(".")[0].upper()
    if stem in {"CON", "PRN", "AUX", "NUL"} or re.fullmatch(r"(COM|LPT)\d", stem):
        name = "_" + name
    if len(name) > 100:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        suffix = Path(name).suffix[:10]
        name = f"{name[:80]}-{digest}{suffix}"
    return name


def _private_write(path: Path, data: bytes) -> None:
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


# -- replies ---------------------------------------------------------------------------


def _context(ctx: Context, record: dict[str, Any], receipt: str = "") -> dict[str, Any]:
    cal = ctx.calendar
    official = datetime.fromisoformat(record["official_received_at"]).astimezone(cal.tz)
    due = record.get("ack_due")
    risk = next((r for r in ctx.rules.high_risk if r.id == record["high_risk_rule"]), None)
    return {
        "agency": ctx.config.agency,
        "receipt": receipt,
        "official_th": thai_datetime(official),
        "official_en": english_datetime(official),
        "ack_due_th": thai_datetime(datetime.fromisoformat(due)) if due else "",
        "subject": record["subject"] or "(ไม่มีหัวเรื่อง / no subject)",
        "requester": record["requester"],
        "requester_name": record["requester_name"],
        "high_risk": record["high_risk"],
        "high_risk_th": risk.name_th if risk else "",
        "high_risk_en": risk.name_en if risk else "",
        "channel": record["channel"],
        "target": record["agency"],
        "processing_time_th": ctx.config.replies.processing_time_th,
        "processing_time_en": ctx.config.replies.processing_time_en,
    }


def _envelope(ctx: Context, record: dict[str, Any] | None) -> Envelope:
    agency = ctx.config.agency
    return Envelope(
        from_name=agency.name_th, from_addr=agency.email, domain=agency.domain,
        in_reply_to=(record.get("thread_id") or record["message_id"]) if record else "",
        references=tuple(record["references"]) if record else (),
    )


def _reply(ctx: Context, kind: str, record: dict[str, Any], now: datetime,
           receipt: str = "") -> Reply:
    subject, body = ctx.templates.render(kind, _context(ctx, record, receipt))
    return build(kind, record["requester"], subject, body, _envelope(ctx, record), now)


def _immediate_replies(ctx: Context, mail: Incoming, d: Decision, record: dict[str, Any],
                       raw: bytes, now: datetime) -> list[Reply]:
    """Replies that need no receipt number: wrong agency, and forwards."""
    if d.category == Category.WRONG_AGENCY:
        return [_reply(ctx, "wrong_agency", record, now)]
    if d.category == Category.WRONG_AGENCY_FORWARD and d.agency:
        subject, body = ctx.templates.render("forward_cover", _context(ctx, record))
        forward = build("forward", d.agency.email, subject, body, _envelope(ctx, None), now,
                        attach=raw, auto="auto-forwarded")
        return [forward, _reply(ctx, "forward_note", record, now)]
    return []


def _queue(ctx: Context, message: int, reply: Reply, now: datetime) -> bool:
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


TEMPLATES = ("acknowledgement", "wrong_channel", "wrong_agency", "forward_note", "forward_cover")


def check_templates(templates: Templates, config: Config, rules: RuleSet,
                    calendar: BusinessCalendar, now: datetime) -> None:
    """Render every template once with sample values, so a broken template is one
    clear error at start-up rather than a failure on a citizen's mail."""
    ctx = SimpleNamespace(config=config, rules=rules, calendar=calendar)
    sample: dict[str, Any] = {
        "message_id": "<sample@example>", "references": [], "subject": "ตัวอย่าง",
        "requester": "citizen@example.com", "requester_name": "ผู้ขอ", "high_risk": True,
        "high_risk_rule": ctx.rules.high_risk[0].id if ctx.rules.high_risk else "",
        "channel": {"name_th": "ช่องทาง", "name_en": "channel", "correct_channel": "x"},
        "agency": {"name_th": "หน่วยงาน", "name_en": "agency", "contact": "x", "email": "a@b.c"},
        "official_received_at": now.isoformat(), "ack_due": now.isoformat(),
    }
    for name in TEMPLATES:
        templates.render(name, _context(ctx, sample, "1/2569"))  # type: ignore[arg-type]
    result = {"agency": config.agency, "receipt": "1/2569", "outgoing": "1/2569", "matter": "x",
              "requester_name": "x", "files": ["a.pdf"], "protected": True, "password": "x",
              "sent_th": "x", "sent_en": "x"}
    for name in ("result", "result_password"):
        templates.render(name, result)
    followup = result | {"items": "x", "days": 7, "deadline_th": "x", "deadline_en": "x",
                         "hold_days": 30, "at_th": "x", "at_en": "x", "link": "x"}
    for name in ("request_documents", "documents_reminder", "video_call"):
        templates.render(name, followup)


# -- 2. numbering: receipt numbers in order of official receipt time ---------------------


def _number(ctx: Context, report: PollReport) -> None:
    journal = ctx.journal
    pending = journal.unnumbered((Category.VALID.value, Category.WRONG_CHANNEL.value))
    if not pending:
        return
    highest: dict[int, int] = {}
    now = ctx.clock()
    with journal.transaction():
        for row in pending:
            year = buddhist_year(datetime.fromisoformat(row["official_received_at"]))
            if year not in highest:
                try:
                    in_sheet = _highest_in_sheet(ctx, year)
                except RegisterError as exc:
                    # Without the sheet's numbers a new number could clash with a clerk's.
                    report.problems.append(f"{exc}; receipt numbers for {year} wait")
                    highest[year] = -1
                    continue
                highest[year] = max(in_sheet, journal.highest_receipt(year))
            if highest[year] < 0:
                continue
            number = highest[year] = highest[year] + 1
            record = json.loads(row["record"])
            journal.set_receipt(row["id"], year, number)
            matters.on_registered(journal, year, number, record, now)
            journal.add_register_row(row["id"], year, number,
                                     _register_row(ctx, record, number, row["identity"]))
            kind = "acknowledgement" if record["category"] == Category.VALID else "wrong_channel"
            if record["requester"]:
                _queue(ctx, row["id"], _reply(ctx, kind, record, now, f"{number}/{year}"), now)


def _register_row(ctx: Context, record: dict[str, Any], number: int,
                  identity: str) -> dict[str, Any]:
    sender = record["requester"]
    name = record["requester_name"]
    remarks = [f"รับทางอีเมล; กฎ {record['rule']}"
               + (f": {record['reason']}" if record["rule"] != "default" else "")]
    if record["high_risk"]:
        remarks.append(f"ความเสี่ยงสูง ({record['high_risk_rule']}): ต้องยืนยันตัวตนก่อนดำเนินการ")
    if record.get("related_receipt"):
        remarks.append(f"เกี่ยวข้องกับเลขทะเบียนรับที่ {record['related_receipt']}")
    if record.get("watched"):
        seen = record["watched"]
        arrived = datetime.fromisoformat(seen["arrived_at"]).astimezone(ctx.calendar.tz)
        remarks.append(f"ส่งถึง {seen['address'] or seen['watch']} (กล่องจดหมายเจ้าหน้าที่) "
                       f"เมื่อ {thai_datetime(arrived)}; ระบบคัดลอกเข้าอีเมลกลาง "
                       "วันเวลารับคือเวลาที่อีเมลกลางได้รับ")
    if record["folder"] == ctx.mailbox.folders.junk:
        remarks.append("พบในโฟลเดอร์อีเมลขยะ ย้ายเข้ากล่องจดหมายแล้ว")
    return {
        "receipt_no": number,
        "doc_no": "",
        "doc_date": record["date_header"],
        "from": f"{name} <{sender}>" if name else sender,
        "to": ctx.config.agency.name_th,
        "subject": record["subject"],
        "remarks": "\n".join(remarks),
        "email": sender,
        "received_at": record["received_at"],
        "official_received_at": record["official_received_at"],
        "ack_due": record["ack_due"],
        "category": record["category"],
        "high_risk": "ใช่" if record["high_risk"] else "",
        "attachments": "\n".join(
            f"{a['name']} ({a['size']:,} bytes, SHA-256 {a['sha256']})"
            for a in record["attachments"]
        ),
        "message_id": record["message_id"],
        "ref": service_ref(identity),
    }


# -- 3. register ------------------------------------------------------------------------


def _write_register(ctx: Context, report: PollReport) -> None:
    report.problems += write_register(ctx.journal, ctx.config, ctx.calendar, ctx.clock)


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


# -- 4. send ----------------------------------------------------------------------------


def _send(ctx: Context, report: PollReport) -> None:
    report.problems += send_queued(ctx.journal, ctx.config, ctx.transport, ctx.mailbox, ctx.clock)


def send_queued(journal: Journal, config: Config, transport: Transport, mailbox: Mailbox | None,
                clock: Callable[[], datetime]) -> list[str]:
    """Send every queued reply once, then copy what went to the Sent folder."""
    problems: list[str] = []
    pending = journal.pending_mail()
    if pending:
        mails = [Outgoing(r["id"], r["recipient"], r["raw"]) for r in pending]
        try:
            results = transport.send_all(config.agency.email, mails,
                                         on_sent=lambda sent: journal.mark_sent(sent.id, clock()))
        except SendError as exc:
            problems.append(f"{exc}: {len(mails)} message(s) wait in the journal")
            results = []
        for result in results:
            now = clock()
            if not result.ok:
                journal.mark_send_failed(result.id, result.error,
                                         give_up=now if result.permanent else None)
                state = "refused for good" if result.permanent else "will be retried"
                problems.append(f"mail {result.id}: {result.error} ({state})")
    sent_folder = mailbox.folders.sent if mailbox else None
    if mailbox is None or not sent_folder:
        return problems
    unfiled = journal.unfiled_mail()
    sizes = {index: len(row["raw"]) for index, row in enumerate(unfiled)}
    for _, batch in batches(list(sizes), sizes):
        try:
            mailbox.append_many(sent_folder, [unfiled[index]["raw"] for index in batch])
        except NETWORK_ERRORS as exc:
            problems.append(f"copy to {sent_folder} failed: {exc}; retried next poll")
            break
        now = clock()
        with journal.transaction():
            for index in batch:
                journal.mark_filed(unfiled[index]["id"], now)
    return problems


# -- 4b. results clerks dropped in outbox/, and results still queued ---------------------


def write_inquiries(journal: Journal, config: Config, calendar: BusinessCalendar,
                    clock: Callable[[], datetime]) -> list[str]:
    """The inquiry log (seed 004 §1.7): new requests for information, and the date each
    was answered once its result went out. The clerk fills แหล่งข้อมูล and หมายเหตุ."""
    pending = journal.pending_inquiries()
    by_year: dict[int, list] = defaultdict(list)
    for row in pending:
        by_year[row["year"]].append(row)
    problems = []
    for year, rows in by_year.items():
        new, fill, replied = [], {}, []
        for row in rows:
            record = json.loads(row["record"])
            ref = service_ref(row["identity"])
            if row["inquiry_written_at"] is None:
                name = record["requester_name"]
                new.append({"receipt_no": row["receipt_no"], "ref": ref,
                            "received": record["official_received_at"],
                            "requester": f"{name} <{record['requester']}>" if name
                            else record["requester"], "subject": record["subject"]})
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
            )
        except RegisterError as exc:
            problems.append(f"{exc}: the inquiry log waits")
            continue
        with journal.transaction():
            journal.mark_inquiries([r["message"] for r in rows if r["inquiry_written_at"] is None],
                                   "inquiry_written_at", clock())
            journal.mark_inquiries(replied, "inquiry_replied_at", clock())
    return problems


def _clerk_instructions(ctx: Context, report: PollReport) -> None:
    problems, unsettled = matters.instructions_from_register(
        ctx.journal, ctx.config, ctx.templates, ctx.calendar, ctx.clock(),
        lambda year, number: results.find_target(ctx.journal, ctx.config, year, number),
    )
    report.problems += problems
    _note_sheets(ctx, unsettled)


def _note_sheets(ctx: Context, unsettled: set[int]) -> None:
    """Numbers and references of each register's rows with the file's identity, so that
    the next poll's numbering, its clerk instructions and `status` need not open a
    register no one has changed (unless an instruction in it waits: `unsettled`)."""
    for year in ctx.journal.register_years():
        path = incoming_path(ctx.config.paths.register_dir, year)
        if not path.exists():
            continue
        if ctx.journal.sheet_settled(year, stamp(path)) and year not in unsettled:
            continue  # noted as it is
        try:
            seen, rows = snapshot(path, INCOMING)
        except RegisterError:
            continue  # the instructions stage has reported it
        ctx.journal.note_sheet(year, seen, [(r.number, r.ref) for r in rows],
                               settled=year not in unsettled)


def _highest_in_sheet(ctx: Context, year: int) -> int:
    path = incoming_path(ctx.config.paths.register_dir, year)
    noted = ctx.journal.noted_sheet(year, stamp(path))
    if noted is None:  # changed by someone else since: read, and kept for the write
        return highest_number(path, keep=not ctx.dry_run)
    return max((number for number, _ in noted if number is not None), default=0)


def _housekeeping(ctx: Context, report: PollReport) -> None:
    """Once a day: overdue documents (a reminder) and the 30-day hold."""
    today = ctx.clock().astimezone(ctx.calendar.tz).date().isoformat()
    if ctx.journal.get_meta("housekeeping") == today:
        return
    try:
        findings = matters.housekeeping(
            ctx.journal, ctx.config, ctx.templates, ctx.calendar, ctx.clock(),
            lambda year, number: results.find_target(ctx.journal, ctx.config, year, number),
        )
    except RegisterError as exc:  # the disposal list could not be saved: again next poll
        report.problems.append(f"daily follow-up: {exc}; tried again at the next poll")
        return
    for finding in findings:
        log.warning("matter %d/%d: %s", finding.number, finding.year, finding.text)
    ctx.journal.set_meta("housekeeping", today)


def _results(ctx: Context, report: PollReport) -> None:
    report.problems += results.queue_outbox(ctx.journal, ctx.config, ctx.templates, ctx.clock)
    report.problems += results.deliver(ctx.journal, ctx.config, ctx.transport, ctx.mailbox,
                                       ctx.calendar, ctx.clock)
    results.settle_outbox(ctx.journal, ctx.config)
    report.problems += write_inquiries(ctx.journal, ctx.config, ctx.calendar, ctx.clock)


# -- 5. mark and move -------------------------------------------------------------------


def _apply_actions(ctx: Context, report: PollReport) -> None:
    failed = _with_reconnect(ctx, "marking and moving mail", lambda: _apply_pending(ctx, report))
    if failed:
        report.problems.append(f"marking and moving mail failed ({failed}); retried next poll")


ACTION_BATCH = 500  # UIDs in one IMAP command, well under servers' line limits


def _apply_pending(ctx: Context, report: PollReport) -> None:
    """Each message's actions in order (seen or flag before move), batched across messages:
    step k of every message, grouped by folder, action and target."""
    journal = ctx.journal
    steps: dict[int, list[Any]] = defaultdict(list)
    for row in journal.pending_actions():  # ordered by message, then seq
        steps[row["message"]].append(row)
    for step in range(max((len(rows) for rows in steps.values()), default=0)):
        groups: dict[tuple[str, int, str, str], list[Any]] = defaultdict(list)
        for rows in steps.values():
            if step < len(rows):
                row = rows[step]
                groups[(row["folder"], row["uidvalidity"], row["action"], row["target"])].append(row)
        for (folder, validity, action, target), rows in groups.items():
            for start in range(0, len(rows), ACTION_BATCH):
                batch = rows[start:start + ACTION_BATCH]
                try:
                    done = ctx.mailbox.apply_many(folder, validity, [r["uid"] for r in batch],
                                                  action, target)
                except NETWORK_ERRORS as exc:
                    with journal.transaction():
                        for row in batch:
                            journal.mark_action(row["id"], ctx.clock(), error=str(exc))
                    if isinstance(exc, CONNECTION_LOST):
                        raise
                    report.problems.append(f"{folder}: {action} of {len(batch)} message(s) failed "
                                           f"({exc}); retried next poll")
                    continue
                gone = [r["uid"] for r in batch if r["uid"] not in done]
                if gone:
                    log.info("%s: %d message(s) gone before %s: %s", folder, len(gone), action,
                             ", ".join(gone[:10]))
                with journal.transaction():
                    for row in batch:
                        journal.mark_action(row["id"], ctx.clock())
                        landed = done.get(row["uid"])
                        if landed:  # known where it went: the next poll need not fetch it
                            journal.add_copy(target, landed[0], landed[1], row["message"],
                                             "moved", "")


def alert_admin(journal: Journal, config: Config, transport: Transport, now: datetime,
                lines: list[str]) -> None:
    """Tell agency.admin_email what needs a person, at most once a day."""
    to = config.agency.admin_email
    if not to or not lines or journal.get_meta("admin_alerted") == now.date().isoformat():
        return
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.agency.email
    msg["To"] = to
    msg["Subject"] = "saraban-mail: ต้องดำเนินการ / action needed"
    msg["Date"] = now
    msg["Message-ID"] = make_msgid(domain=config.agency.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(["saraban-mail needs a person:", "", *(f"- {line}" for line in lines),
                               "", "saraban-mail status / saraban-mail check show more."]))
    try:
        sent = transport.send_all(config.agency.email, [Outgoing(0, to, msg.as_bytes())])
    except SendError as exc:
        log.warning("cannot tell the administrator: %s", exc)
        return
    if sent and sent[0].ok:
        journal.set_meta("admin_alerted", now.date().isoformat())


# -- output -----------------------------------------------------------------------------


def _output(ctx: Context, copy: Any) -> dict[str, Any]:
    """One JSON Lines record (SPEC §7) for a message handled in this poll."""
    record = ctx.journal.record(copy["message"])
    year, number = ctx.journal.receipt(copy["message"])
    duplicate = copy["kind"] == "duplicate"
    uid: int | str = copy["uid"]
    if isinstance(uid, str) and uid.isdigit():
        uid = int(uid)
    return {
        "message_id": record["message_id"],
        "folder": copy["folder"],
        "uid": uid,
        "from": record["from"],
        "requester": record["requester"],
        "subject": record["subject"],
        "category": record["category"],
        "high_risk": record["high_risk"],
        "rule": "duplicate" if duplicate else record["rule"],
        "reason": "a second copy of a mail already handled" if duplicate else record["reason"],
        "receipt_no": number,
        "receipt_year": year,
        "received_at": record["received_at"],
        "official_received_at": record["official_received_at"],
        "ack_due": record["ack_due"],
        "related_receipt": record.get("related_receipt"),
        "actions": ["seen"] if duplicate else record["planned"],
        # What was actually queued for this message, and where it stands.
        "mail": [] if duplicate else [
            {"kind": m["kind"], "to": m["recipient"],
             "status": "sent" if m["sent_at"] else "refused" if m["gave_up_at"] else "pending"}
            for m in ctx.journal.mail_of(copy["message"])
        ],
    }


"""Stage 1, intake: fetch what is new in INBOX, Junk and imap.extra_folders, parse, classify,
and record each message in the journal with its mailbox actions and the replies that need no
number.

One transaction per message, with the folder's high-water mark: a crash repeats at most
the message in hand. A message the stage fails on is recorded as needs_review."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime, time

from saraban_mail import matters, records
from saraban_mail.bounces import Bounce, read_bounce
from saraban_mail.calendar import ack_due, official_received_at
from saraban_mail.classify import Category, Decision, classify
from saraban_mail.config import Config
from saraban_mail.files import private_write, safe_filename
from saraban_mail.mailbox import Fetched
from saraban_mail.parse import Incoming, identity_of, parse
from saraban_mail.poll import replying
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.poll.reconnect import with_reconnect
from saraban_mail.record import AttachmentNote, Record, WatchedOrigin
from saraban_mail.thaitext import fold, phones_in, thai_date, thai_datetime

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport, poll_id: str) -> None:
    box = ctx.mailbox
    since = start_date(ctx, report)
    # Junk (or Trash, Sent) not found: said on every poll, never silently skipped.
    report.problems += box.folders.problems
    for folder in box.folders.missing:
        report.problems.append(f"{folder}: named in imap.extra_folders but the server has no "
                               "such folder: not read (create it, or correct the name)")
    # Extra folders are read like INBOX: the same rules, and no move (that is Junk's).
    for folder in [f for f in (box.folders.inbox, box.folders.junk, *box.folders.extra) if f]:
        failed = with_reconnect(ctx, f"reading {folder}", functools.partial(
            intake_folder, ctx, folder, poll_id, report, since))
        if failed:
            report.problems.append(f"{folder}: mailbox error: {failed}; read again at the next poll")


def start_date(ctx: Context, report: PollReport) -> date | None:
    """policy.start_date; else the date the first poll of this journal chose (its own day,
    kept in the journal's meta), so that a mailbox with years of history is not acknowledged
    on the first run. A journal from before this rule, with no such note, reads everything."""
    if ctx.config.policy.start_date:
        return ctx.config.policy.start_date
    kept = ctx.journal.get_meta("start_date")
    if kept:
        return date.fromisoformat(kept)
    if not ctx.journal.is_new():
        return None
    today = ctx.clock().astimezone(ctx.calendar.tz).date()
    ctx.journal.set_meta("start_date", today.isoformat())
    report.notes.append(
        f"policy.start_date is not set: this first poll starts at today, {today} "
        f"({thai_date(today)}); older mail is left alone. The date is kept in the journal; "
        "set policy.start_date to read from an earlier day")
    return today


def intake_folder(ctx: Context, folder: str, poll_id: str, report: PollReport,
                  since: date | None = None) -> None:
    box = ctx.mailbox
    validity = box.uidvalidity(folder)
    state = ctx.journal.folder_state(folder)
    after = state.last_uid if state and state.uidvalidity == validity else 0
    if state and state.uidvalidity != validity:
        log.warning("%s: UIDVALIDITY changed; re-scanning (known mail is skipped)", folder)
    # The start date begins at midnight in the agency's zone, not the server's (a mail at
    # 00:40 in Bangkok is the day before in UTC).
    since_at = datetime.combine(since, time(0), tzinfo=ctx.calendar.tz) if since else None
    if since is not None and since_at is not None:
        skipped = box.count_before(folder, after, since_at)
        if skipped:
            report.notes.append(f"{folder}: {skipped} message(s) from before the start date "
                                f"{since} ({thai_date(since)}) left alone (policy.start_date)")
    known = lambda uid: ctx.journal.known_copy(folder, validity, uid)  # noqa: E731
    for fetched in box.fetch_new(folder, after, since_at, known):
        if ctx.stop():
            break
        try:
            intake_one(ctx, fetched, poll_id)
        except Exception as exc:  # one bad message never stops a poll
            log.exception("message %s UID %s failed", folder, fetched.uid)
            try:
                intake_failed(ctx, fetched, poll_id, exc)
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


def intake_one(ctx: Context, fetched: Fetched, poll_id: str) -> None:
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
        decision = classify(mail, ctx.rules, ctx.identity)
    origin = journal.watched(mail.identity) if fetched.folder == folders.inbox else None
    if origin is not None and decision.category.registered:
        # Our copy from a staff mailbox: received now, by saraban; sent to the wrong address.
        decision = dataclasses.replace(
            decision, category=Category.WRONG_CHANNEL, rule="watched_mailbox", channel=None,
            reason=f"sent to {origin['address'] or origin['watch']} (watched mailbox "
                   f"'{origin['watch']}'), copied to the central mailbox")
    text_sha = hashlib.sha256(" ".join(fold(mail.text).split()).encode()).hexdigest()
    # A letter from a system sender (no requester) answers nothing of ours.
    related = (matters.related_receipt(mail, decision.requester, journal)
               if decision.category.registered and decision.requester else None)
    if related and journal.answered_with(decision.requester, text_sha):
        # The same words again in answer to us: an auto-responder with no markers.
        decision = Decision(Category.AUTOMATED, "repeated_answer",
                            "the same text again in answer to our reply (an auto-responder)")
    inquiry = False
    if decision.category.registered:
        text = fold(f"{mail.subject}\n{mail.text}")
        inquiry = any(fold(k) in text for k in ctx.config.followup.inquiry_keywords)
    record = make_record(
        ctx, fetched, mail, decision, text_sha=text_sha,
        watched=WatchedOrigin(origin["watch"], origin["address"],
                              datetime.fromisoformat(origin["arrived_at"]))
        if origin is not None else None,
        related_receipt=f"{related[1]}/{related[0]}" if related else None, inquiry=inquiry)
    # A bounce is never answered; it is kept for poll/bounces.py to link to our mail.
    bounce = _bounce_in(fetched) if decision.category == Category.AUTOMATED else None

    def also(message: int) -> None:
        for reply in replying.immediate_replies(ctx, record, fetched.raw, now):
            replying.queue(ctx, message, reply, now)
        if bounce is not None:
            journal.add_bounce(message, bounce.to_json(), now)

    record_new(ctx, fetched, mail, record, poll_id, now, also)


def _bounce_in(fetched: Fetched) -> Bounce | None:
    try:
        return read_bounce(fetched.raw)
    except Exception:  # an odd report is still automated mail: kept, never answered
        log.exception("%s UID %s: could not read it as a bounce", fetched.folder, fetched.uid)
        return None


def record_new(ctx: Context, fetched: Fetched, mail: Incoming, record: Record, poll_id: str,
               now: datetime, also: Callable[[int], object] = lambda _: None) -> None:
    """Keep the files, then one transaction: the message, its copy, its mailbox actions,
    whatever `also` queues, and the folder's new high-water mark."""
    journal = ctx.journal
    if not ctx.dry_run:
        # Files first: a crash before the journal commit only means writing them again.
        keep_files(ctx, mail, record.category, fetched.raw)
    with journal.transaction():
        message = journal.add_message(identity=mail.identity, uidvalidity=fetched.uidvalidity,
                                      record=record, poll=poll_id, now=now)
        journal.add_copy(fetched.folder, fetched.uidvalidity, fetched.uid, message, "original",
                         poll_id)
        for seq, (action, target) in enumerate(mailbox_actions(ctx, fetched, record.category)):
            journal.add_action(message, fetched.folder, fetched.uidvalidity, fetched.uid,
                               action, target, seq)
        also(message)
        journal.advance(fetched.folder, fetched.uidvalidity, fetched.uid)


def intake_failed(ctx: Context, fetched: Fetched, poll_id: str, error: Exception) -> None:
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
    record_new(ctx, fetched, mail, make_record(ctx, fetched, mail, decision), poll_id,
               ctx.clock())


def make_record(ctx: Context, fetched: Fetched, mail: Incoming, d: Decision, *,
                text_sha: str | None = None, watched: WatchedOrigin | None = None,
                related_receipt: str | None = None, inquiry: bool = False) -> Record:
    """Everything later stages need to know of the message, decided now."""
    cal = ctx.calendar
    received = fetched.received_at.astimezone(cal.tz)
    return Record(
        message_id=mail.message_id,
        thread_id=d.thread_id,
        folder=fetched.folder,
        uid=fetched.uid,
        from_addr=mail.from_addr,
        from_name=mail.from_name,
        requester=d.requester,
        requester_name=d.requester_name,
        subject=mail.subject,
        date_header=mail.date_header,
        references=tuple(mail.references[-20:]),
        category=d.category,
        rule=d.rule,
        reason=d.reason,
        high_risk=d.high_risk,
        high_risk_rule=d.high_risk_rule,
        agency=d.agency,
        channel=d.channel,
        received_at=received,
        official_received_at=official_received_at(received, cal),
        # Mail a person must read was received too: it has the same deadline. A copy from a
        # staff mailbox counts from its arrival there: the law deems receipt on entry into
        # any of the agency's mailboxes [002 framework §2]; the register keeps both times.
        ack_due=ack_due(watched.arrived_at if watched else received, cal)
        if d.category.registered or d.category == Category.NEEDS_REVIEW else None,
        attachments=attachment_notes(
            mail, ctx.config if d.category.registered or d.category == Category.NEEDS_REVIEW
            else None),
        planned=_planned(ctx, fetched, d),
        text_sha=text_sha,
        watched=watched,
        related_receipt=related_receipt,
        inquiry=inquiry,
        letter=d.letter,
        # Mail that may be registered (a person decides needs_review): its phone numbers.
        phones=phones_in(f"{mail.subject}\n{mail.text}", (ctx.config.agency.phone,))
        if d.category.registered or d.category == Category.NEEDS_REVIEW else (),
        # The hash of the mail as it arrived, for the record kept of it (records.py).
        raw_sha256=hashlib.sha256(fetched.raw).hexdigest()
        if d.category.registered or d.category == Category.NEEDS_REVIEW else "",
    )


def attachment_notes(mail: Incoming, config: Config | None = None) -> tuple[AttachmentNote, ...]:
    """Each attachment; a signed PDF's signatures described when `config` is given."""
    return tuple(AttachmentNote(a.name, a.content_type, a.size, a.sha256,
                                _signature(a.data, config) if config else "")
                 for a in mail.attachments)


def _signature(data: bytes, config: Config) -> str:
    """Cheap: only a PDF with a signature dictionary is read, with no OCSP/CRL fetched; a
    malformed one is one line and the mail is registered all the same."""
    from saraban_mail import seal, sealing

    if not seal.has_signature(data):
        return ""
    try:
        roots = seal.trust_roots(config.seal.trust_roots)
        infos = seal.describe(data, roots, fetch=False)
    except Exception as exc:  # noqa: BLE001  (a hostile PDF must never stop a poll)
        log.info("signature check of an attachment failed: %s", exc)
        return "มีลายมือชื่ออิเล็กทรอนิกส์ แต่ตรวจสอบไม่ได้: อ่านไฟล์ไม่ได้"
    return sealing.intake_note(infos, thai_datetime) if infos else ""


def _planned(ctx: Context, fetched: Fetched, d: Decision) -> tuple[str, ...]:
    steps = {
        Category.VALID: ["register", "acknowledge"],
        Category.WRONG_CHANNEL: ["register", "acknowledge_wrong_channel"],
        # No notice to a system, list or no-reply sender (classify.notice_to).
        Category.OFFICIAL_LETTER: ["register", "letter_receipt" if d.requester else "no_notice"],
        Category.WRONG_AGENCY: ["reply_wrong_agency"],
        Category.WRONG_AGENCY_FORWARD: [f"forward:{d.agency.id if d.agency else ''}",
                                        "notify_sender"],
        Category.NEEDS_REVIEW: ["keep_raw"],
    }.get(d.category, [])
    for action, target in mailbox_actions(ctx, fetched, d.category):
        steps.append(f"{action}:{target}" if target else action)
    return tuple(steps)


def mailbox_actions(ctx: Context, fetched: Fetched, category: Category) -> list[tuple[str, str]]:
    """What is done to the message in the mailbox once its replies are out."""
    folders = ctx.mailbox.folders
    if category == Category.SPAM:
        if ctx.config.policy.spam_action == "delete":
            return [("delete", "")]
        # No Trash folder: leave spam where it is rather than delete it.
        return [("move", folders.trash)] if folders.trash else [("seen", "")]
    first = ("flag", "") if category == Category.NEEDS_REVIEW else ("seen", "")
    # Junk that is not spam belongs in the inbox [seed 004 App.3 §4].
    return [first, ("move", folders.inbox)] if fetched.folder == folders.junk else [first]


def keep_files(ctx: Context, mail: Incoming, category: Category, raw: bytes) -> None:
    """The raw mail of what needs a person; the attachments of what is registered."""
    data = ctx.config.paths.data_dir
    if category == Category.NEEDS_REVIEW:
        private_write(data / "review" / f"{mail.identity}.eml", raw)
    elif category.registered:
        # The mail as it arrived, until its receipt number names it (records.keep).
        records.keep_pending(ctx.config, mail.identity, raw)
        for index, attachment in enumerate(mail.attachments, start=1):
            private_write(data / "attachments" / mail.identity[:20] /
                          f"{index:02d}-{safe_filename(attachment.name)}", attachment.data)

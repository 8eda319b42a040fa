"""The review queue in a poll: needs_review mail listed for the clerks in
register/review-YEAR.xlsx with a copy they can open, and their decisions carried out.

`run` (before numbering) takes the decisions typed in คำสั่ง or given by `review decide`, so
that mail a clerk registers is numbered, registered and acknowledged in the same poll;
`write` (after the register) lists new mail and writes what was done in ผลการดำเนินการ."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from typing import Any

from saraban_mail import review
from saraban_mail.calendar import ack_due, buddhist_year
from saraban_mail.category import Category
from saraban_mail.classify import classify
from saraban_mail.errors import RegisterError
from saraban_mail.files import shared_dir, shared_write
from saraban_mail.layout import REVIEW, REVIEW_COPIES, Look, service_ref, workbook_path
from saraban_mail.parse import parse
from saraban_mail.poll import intake, mailbox_actions, replying
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.record import Record, ReviewNote
from saraban_mail.register import append_rows, last_modified_by, read_rows
from saraban_mail.thaitext import thai_datetime

CLERK = "เจ้าหน้าที่ (ทะเบียน)"  # who typed an instruction, when the workbook does not say


def run(ctx: Context, report: PollReport) -> None:
    journal, now = ctx.journal, ctx.clock()
    with journal.transaction():
        for message, _, record in journal.unlisted_reviews():
            journal.add_review(message, buddhist_year(record.official_received_at), now)
    _read_register(ctx, report, now)
    for entry in journal.reviews("r.decision IS NOT NULL AND r.carried_at IS NULL"):
        with journal.transaction():
            carry_out(ctx, entry, now)


def _read_register(ctx: Context, report: PollReport, now: datetime) -> None:
    """Decisions typed in คำสั่ง of mail still waiting; a wrong one is reported and noted."""
    waiting: dict[int, list[Any]] = defaultdict(list)
    for entry in ctx.journal.reviews("r.decision IS NULL AND r.listed_at IS NOT NULL"):
        waiting[entry["year"]].append(entry)
    for year, entries in waiting.items():
        path = workbook_path(ctx.config.paths.register_dir, REVIEW, year)
        if not path.exists():
            continue
        try:
            rows = {r.ref: r for r in read_rows(path, REVIEW)[1] if r.ref}
        except RegisterError as exc:
            report.problems.append(f"{exc}: decisions in it wait")
            continue
        actor = last_modified_by(path) or CLERK
        for entry in entries:
            row = rows.get(service_ref(entry["identity"]))
            if row is None:
                continue
            try:
                verdict = review.read_instruction(str(row.values.get("instruction") or ""),
                                                  ctx.rules)
            except review.ReviewError as exc:
                report.problems.append(f"{path.name} ลำดับ {entry['number']}: {exc}")
                if entry["problem"] != str(exc):
                    with ctx.journal.transaction():
                        ctx.journal.update_review(entry["message"], problem=str(exc),
                                                  outcome=f"ยังไม่ได้ดำเนินการ: {exc}",
                                                  outcome_written_at=None)
                continue
            if verdict is not None:
                with ctx.journal.transaction():
                    ctx.journal.decide_review(entry["message"], decision=verdict.decision,
                                              argument=verdict.argument, actor=actor,
                                              via="register", now=now)


def carry_out(ctx: Context, entry: Any, now: datetime) -> None:
    """A decision in the journal: the message's new record, its replies and mailbox actions."""
    journal, message = ctx.journal, entry["message"]
    decision, argument = entry["decision"], entry["argument"]
    before = Record.from_json(entry["record"])
    note = ReviewNote(decision, entry["actor"], datetime.fromisoformat(entry["decided_at"]),
                      entry["via"], review.why(before.rule, before.reason))
    raw = _raw(ctx, entry["identity"])
    record = dataclasses.replace(_reread(ctx, before, raw), rule="clerk_review", reviewed=note)
    actor = note.actor
    actions = [("unflag", ""), ("seen", "")]
    outcome = None  # a registered one's is written once it has its number
    if decision in (review.REGISTER, review.WRONG_CHANNEL):
        channel = review.channel(argument, ctx.rules) if decision == review.WRONG_CHANNEL else None
        record = dataclasses.replace(
            # A state agency's mail a clerk registers is an official letter (its ที่, no
            # acknowledgement to a system sender).
            record, category=Category.WRONG_CHANNEL if channel else (
                Category.OFFICIAL_LETTER if record.letter else Category.VALID),
            channel=channel, ack_due=record.ack_due or ack_due(record.received_at, ctx.calendar),
            reason=f"registered after review by {actor}")
        if raw is not None and not ctx.dry_run:
            intake.keep_files(ctx, parse(raw), record.category, raw)
    elif decision == review.WRONG_AGENCY:
        agency = review.agency(argument, ctx.rules)
        forward = agency.forward and bool(agency.email) and raw is not None
        record = dataclasses.replace(
            record, category=Category.WRONG_AGENCY_FORWARD if forward else Category.WRONG_AGENCY,
            agency=agency, reason=f"another agency's matter ({agency.id}), decided by {actor}")
        if record.requester or forward:
            for reply in replying.immediate_replies(ctx, record, raw or b"", now):
                if reply.recipient:
                    replying.queue(ctx, message, reply, now)
        outcome = (f"ส่งต่อไปยัง {agency.name_th} แล้ว และแจ้งผู้ส่ง" if forward else
                   f"แจ้งผู้ส่งให้ติดต่อ {agency.name_th}" if record.requester else
                   f"เป็นเรื่องของ {agency.name_th} (ไม่มีที่อยู่ผู้ส่งให้แจ้ง)")
    elif decision == review.SPAM:
        record = dataclasses.replace(record, category=Category.SPAM, reason=f"spam, decided by {actor}")
        actions = [("unflag", ""), ("trash", "")]  # as mailbox_actions.spam_action says
        action, target = mailbox_actions.spam_action(ctx)
        outcome = {"delete": "สแปม: ลบออกจากกล่องจดหมายแล้ว", "move": f"สแปม: ย้ายไปที่ {target} แล้ว"
                   }.get(action, "สแปม: ทำเครื่องหมายว่าอ่านแล้ว")
    else:  # NO_ACTION: read by a person, nothing to register or answer
        record = dataclasses.replace(record, reason=f"no action: {argument} ({actor})")
        outcome = f"ไม่ต้องดำเนินการ: {argument}"
    journal.redecide(message, record)
    where = journal.latest_copy(message)
    if where is not None:
        seq = journal.next_action_seq(message)
        for step, (action, target) in enumerate(actions):
            journal.add_action(message, *where, action, target, seq + step)
    journal.update_review(message, carried_at=now,
                          outcome=_signed(outcome, note) if outcome else None,
                          outcome_written_at=None)


def _raw(ctx: Context, identity: str) -> bytes | None:
    """The mail as it arrived, kept privately at intake."""
    try:
        return (ctx.config.paths.data_dir / "review" / f"{identity}.eml").read_bytes()
    except OSError:
        return None


def _reread(ctx: Context, record: Record, raw: bytes | None) -> Record:
    """What the mail says of itself, read again now a person has looked at it (a mail the
    service failed on has an empty record); the record as it was where it cannot be read."""
    if raw is None:
        return record
    try:
        mail = parse(raw)
        d = classify(mail, ctx.rules, ctx.identity)
    except Exception:  # unreadable still: the person's decision stands on the record
        return record
    return dataclasses.replace(
        record, message_id=mail.message_id, thread_id=d.thread_id or mail.message_id,
        from_addr=mail.from_addr, from_name=mail.from_name, requester=d.requester,
        requester_name=d.requester_name, subject=mail.subject, date_header=mail.date_header,
        references=tuple(mail.references[-20:]), high_risk=d.high_risk,
        high_risk_rule=d.high_risk_rule, attachments=intake.attachment_notes(mail, ctx.config),
        letter=d.letter)


def _signed(outcome: str, note: ReviewNote) -> str:
    return f"{outcome} (สั่งโดย {note.actor} เมื่อ {thai_datetime(note.at)})"


def write(ctx: Context, report: PollReport) -> None:
    """New mail into each year's review list (with its copy), outcomes into ผลการดำเนินการ."""
    journal, now = ctx.journal, ctx.clock()
    for entry in journal.reviews("r.carried_at IS NOT NULL AND r.outcome IS NULL"
                                 " AND m.receipt_no IS NOT NULL"):
        record = Record.from_json(entry["record"])
        receipt = f"{entry['receipt_no']}/{entry['receipt_year']}"
        answered = (f"ส่งตอบรับถึง {record.requester}" if record.requester
                    else "ไม่มีที่อยู่ผู้ส่งสำหรับตอบรับ")
        assert record.reviewed is not None
        with journal.transaction():
            journal.update_review(entry["message"], outcome=_signed(
                f"ลงรับแล้ว เลขทะเบียนรับ {receipt}; {answered}", record.reviewed))
    by_year: dict[int, list[Any]] = defaultdict(list)
    for entry in journal.reviews("r.listed_at IS NULL OR (r.outcome IS NOT NULL"
                                 " AND r.outcome_written_at IS NULL)"):
        by_year[entry["year"]].append(entry)
    agency = ctx.config.agency.name_th
    for year, entries in by_year.items():
        new = [_row(ctx, e) for e in entries if e["listed_at"] is None]
        fill = {service_ref(e["identity"]): {"outcome": e["outcome"]} for e in entries
                if e["outcome"] is not None}
        settings = ctx.config.registers
        try:
            append_rows(workbook_path(ctx.config.paths.register_dir, REVIEW, year), REVIEW,
                        f"อีเมลรอเจ้าหน้าที่ตรวจสอบ {agency} ปี พ.ศ. {year}: พิมพ์ในช่องคำสั่ง "
                        f"{review.HOW}", new, fill=fill, own=("outcome",),
                        look=Look.of(settings), backups=settings.backups,
                        stale_hours=settings.stale_lock_hours, sharing=ctx.config.sharing,
                        now=now)
        except RegisterError as exc:
            report.problems.append(f"{exc}: {len(new)} mail(s) wait to be listed for review")
            continue
        with journal.transaction():
            for entry in entries:
                if entry["listed_at"] is None:
                    journal.update_review(entry["message"], listed_at=now)
                if entry["outcome"] is not None:
                    journal.update_review(entry["message"], outcome_written_at=now)


def _row(ctx: Context, entry: Any) -> dict[str, Any]:
    """The review list's row of one mail, with the copy a clerk opens from it."""
    record = Record.from_json(entry["record"])
    ref = service_ref(entry["identity"])
    copy = _clerk_copy(ctx, ref, _raw(ctx, entry["identity"]))
    return {
        "number": entry["number"],
        "received_at": record.received_at.isoformat(),
        "official_received_at": record.official_received_at.isoformat(),
        "ack_due": record.ack_due.isoformat() if record.ack_due else None,
        "sender": record.requester_label or record.from_addr or "(ไม่ทราบผู้ส่ง)",
        "subject": record.subject,
        "why": record.reviewed.why if record.reviewed else review.why(record.rule, record.reason),
        "copy": copy,
        "ref": ref,
    }


def _clerk_copy(ctx: Context, ref: str, raw: bytes | None) -> str:
    """register/review/<ref>.eml for the clerks' group; its path relative to the workbook."""
    if raw is None:
        return ""
    folder = ctx.config.paths.register_dir / REVIEW_COPIES
    shared_dir(folder, ctx.config.sharing)
    path = folder / f"{ref}.eml"
    if not path.exists():
        shared_write(path, raw, ctx.config.sharing)
    return f"{REVIEW_COPIES}/{path.name}"

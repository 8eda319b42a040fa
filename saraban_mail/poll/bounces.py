"""Stage 5b, bounces: each delivery failure that intake kept is linked to the mail of ours it
reports on, which is then marked ส่งไม่ถึง in the journal, the matter and the registers.

A bounce names our mail by the Message-ID of the returned original, else by its recipient and
time [seed 004 App.5 §3]; one that names nothing of ours stays plain automated mail. The
requester's matter is held 30 days when no other contact was given [seed 002 init §3.2]."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

from saraban_mail import matters, register_notes
from saraban_mail.bounces import Bounce
from saraban_mail.journal import Journal
from saraban_mail.layout import OUTGOING
from saraban_mail.poll.context import Context, PollReport

# A bounce that names only the recipient is for our mail to them sent this long before it
# arrived (Postfix gives up after 5 days), or a little after (the servers' clocks differ).
LOOK_BACK = timedelta(days=7)
CLOCK_SLACK = timedelta(minutes=10)
# Our mail as the clerk knows it, for the register's note.
MAIL_TH = {
    "acknowledgement": "หนังสือตอบรับ", "wrong_channel": "หนังสือตอบรับ",
    "letter_receipt": "หลักฐานการรับหนังสือ",
    "request_documents": "หนังสือขอเอกสารเพิ่มเติม", "documents_reminder": "หนังสือแจ้งเตือน",
    "video_call": "หนังสือนัดหมายยืนยันตัวตน", "high_risk_notice": "หนังสือแจ้งการยืนยันตัวตน",
    "result": "หนังสือแจ้งผล",
}


def run(ctx: Context, report: PollReport) -> None:
    journal = ctx.journal
    pending = journal.pending_bounces()
    if not pending:
        return
    now = ctx.clock()
    for row in pending:
        bounce = Bounce.from_json(json.loads(row["bounce"]))
        found = find_sent(journal, bounce, datetime.fromisoformat(row["arrived"]))
        with journal.transaction():
            if found is not None:
                # One acknowledgement naming several receipts: each receipt's matter hears.
                parts = journal.parts_of(found[1]["id"]) if found[0] == "outbox" else []
                for table, sent in [found, *(("outbox", part) for part in parts)]:
                    report.notes.append(mark(ctx, table, sent, bounce, now))
            journal.bounce_linked(row["message"], f"{found[0]}:{found[1]['id']}" if found else "",
                                  now)
    report.problems += register_notes.write_pending_notes(journal, ctx.config, now)


def find_sent(journal: Journal, bounce: Bounce, arrived: datetime
              ) -> tuple[str, sqlite3.Row] | None:
    """Our sent mail the bounce reports on: by the returned Message-ID, else the latest
    mail to a failed recipient sent shortly before the bounce arrived."""
    for message_id in bounce.original_ids:
        found = journal.sent_with_id(message_id)
        if found is not None:
            return found
    candidates = [
        (table, sent) for recipient in bounce.recipients
        for table, sent in journal.sent_to(recipient)
        if arrived - LOOK_BACK <= datetime.fromisoformat(sent["sent_at"]) <= arrived + CLOCK_SLACK
    ]
    return max(candidates, key=lambda c: datetime.fromisoformat(c[1]["sent_at"]), default=None)


def mark(ctx: Context, table: str, sent: sqlite3.Row, bounce: Bounce, now: datetime) -> str:
    """Within the caller's transaction: the mail marked bounced, the matter's event, and the
    register notes queued (written after). Returns the poll's note."""
    journal = ctx.journal
    reason = bounce.reason or "ไม่ระบุสาเหตุ"
    recipient = sent["recipient"]
    journal.mark_bounced(table, sent["id"], reason, now)
    if table == "results":
        kind, (year, number) = "result", (sent["receipt_year"], sent["receipt_no"])
        outgoing = f"{sent['send_no']}/{sent['year']}"
        journal.queue_note(sent["year"], sent["send_no"],
                           register_notes.row_ref(journal, OUTGOING.key, sent["year"],
                                                  sent["send_no"]),
                           f"ส่งไม่ถึง: {reason}", now, "remarks", OUTGOING.key)
        what = f"{MAIL_TH['result']} ทะเบียนส่งที่ {outgoing}"
    else:
        kind = sent["kind"]
        year, number = journal.receipt(sent["message"]) if sent["message"] else (None, None)
        what = MAIL_TH.get(kind, "อีเมล")
    line = f"undeliverable: {kind} to {recipient}: {reason}"
    if year is None or number is None:
        return line  # mail of no matter (a reply to mail that was not registered)
    stored = journal.message_of_receipt(year, number)
    phones = stored.record.phones if stored else ()
    requester = journal.requester_of(year, number) == recipient
    held = matters.mail_bounced(journal, year, number, recipient=recipient, reason=reason,
                                kind=kind, phones=phones, requester=requester, now=now)
    text = f"ส่งไม่ถึง: {what} ถึง {recipient}: {reason}"
    if phones:
        text += f"; โปรดติดต่อผู้ขอทางโทรศัพท์ {', '.join(phones)}"
        line += f"; call the requester: {', '.join(phones)}"
    elif held:
        days = ctx.config.followup.hold_days
        unit = "วันทำการ" if ctx.config.followup.hold_in_working_days else "วัน"
        text += (f"; ไม่มีช่องทางติดต่ออื่น เก็บเรื่องไว้ {days} {unit} "
                 "หากไม่มีการติดต่อจะเสนอหัวหน้าหน่วยงานพิจารณาจำหน่ายเรื่อง")
        line += f"; no other contact: held {days} days, then proposed for disposal"
    journal.queue_note(year, number, register_notes.row_ref(journal, "incoming", year, number),
                       text, now, "remarks")
    return f"{line} (receipt {number}/{year})"

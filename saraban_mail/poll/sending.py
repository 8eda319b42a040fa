"""Stage 6, sending: every queued reply once (SMTP or the pickup folder), then a copy of
each in the Sent folder. Also what a clerk's command calls to send what it queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from saraban_mail.config import Config
from saraban_mail.errors import SendError
from saraban_mail.journal import Journal
from saraban_mail.mailbox import Mailbox, batches
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.poll.reconnect import NETWORK_ERRORS
from saraban_mail.send import Outgoing, Transport


def run(ctx: Context, report: PollReport) -> None:
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
        rows = [unfiled[index] for index in batch]
        try:
            rows = _not_filed_yet(journal, mailbox, sent_folder, rows, clock)
            if not rows:
                continue
            with journal.transaction():
                journal.mark_filing([row["id"] for row in rows], clock())
            mailbox.append_many(sent_folder, [row["raw"] for row in rows])
        except NETWORK_ERRORS as exc:
            problems.append(f"copy to {sent_folder} failed: {exc}; retried next poll")
            break
        now = clock()
        with journal.transaction():
            for row in rows:
                journal.mark_filed(row["id"], now)
    return problems


def _not_filed_yet(journal: Journal, mailbox: Mailbox, folder: str, rows: list[Any],
                   clock: Callable[[], datetime]) -> list[Any]:
    """The rows whose copy is not in Sent. Only copies an earlier attempt may have
    stored (the poll died or the connection dropped mid-append) are searched for: the
    normal path stays one MULTIAPPEND, and a crash does not file a batch twice."""
    tried = [row["message_id"] for row in rows if row["filing_at"]]
    if not tried:
        return rows
    there = mailbox.holds_message_ids(folder, tried)
    if there:
        now = clock()
        with journal.transaction():
            for row in rows:
                if row["filing_at"] and row["message_id"] in there:
                    journal.mark_filed(row["id"], now)
    return [row for row in rows if not (row["filing_at"] and row["message_id"] in there)]

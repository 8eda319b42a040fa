"""Stage 6, sending: every queued reply once (SMTP or the pickup folder), then a copy of
each in the Sent folder. Also what a clerk's command calls to send what it queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

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

"""Keeping the records in a poll: each newly numbered mail kept as a record file (`records`),
and the mailbox's space: its quota read and noted, Trash emptied of the service's old spam
once a day, and handled mail archived when the quota passes archive.auto_at_percent."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from saraban_mail import archive, mailbox_space, records, space
from saraban_mail.mailbox import ImapMailbox
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.poll.reconnect import with_reconnect

log = logging.getLogger("saraban_mail")


def run_records(ctx: Context, report: PollReport) -> None:
    """After numbering: the mail of each new receipt number into records/YEAR/rx-NNNN.eml."""
    try:
        records.keep(ctx.config, ctx.journal, ctx.clock())
    except OSError as exc:  # the disk: the mail stays pending and is kept at a later poll
        report.problems.append(f"keeping registered mail in {ctx.config.paths.records_dir}: "
                               f"{exc}; tried again at the next poll")


def run(ctx: Context, report: PollReport) -> None:
    failed = with_reconnect(ctx, "reading the quota", functools.partial(_space, ctx, report))
    if failed:
        report.problems.append(f"mailbox space: {failed}; tried again at the next poll")


def _space(ctx: Context, report: PollReport) -> None:
    box = ctx.mailbox
    usage = mailbox_space.quota(box, ctx.clock())
    ctx.journal.set_meta("mailbox_space", usage.to_json() if usage else "{}")
    report.problems += space.warnings(usage, ctx.config.quota.warn_percent)
    if not isinstance(box, ImapMailbox):
        return
    today = ctx.clock().astimezone(ctx.calendar.tz).date().isoformat()
    if ctx.journal.get_meta("trash_emptied") != today:
        emptied = empty_trash(ctx)
        if emptied:
            report.notes.append(f"Trash: {emptied} spam message(s) older than "
                                f"{ctx.config.policy.trash_days} days deleted")
        ctx.journal.set_meta("trash_emptied", today)
    auto = ctx.config.archive.auto_at_percent
    if auto and usage is not None and usage.percent >= auto:
        done = archive.archive(ctx.config, ctx.journal, box, ctx.clock(),
                               ctx.config.archive.older_than_months, limit=500)
        report.notes.append(f"mailbox {usage.percent:.0f}% full (archive.auto_at_percent "
                            f"{auto}): {done.line()}")
        report.problems += done.problems


def empty_trash(ctx: Context) -> int:
    """Delete from Trash only what the journal says the service moved there as spam, at
    least policy.trash_days ago: never a message a clerk put in Trash. Journaled after the
    deletion; a crash between only deletes an already deleted UID again (nothing)."""
    box = ctx.mailbox
    trash = box.folders.trash
    if not trash or not isinstance(box, ImapMailbox) or not mailbox_space.can_delete_exactly(box):
        return 0
    before = ctx.clock() - timedelta(days=ctx.config.policy.trash_days)
    rows = ctx.journal.spam_in_trash(trash, before)
    by_validity: dict[int, list] = {}
    for row in rows:
        by_validity.setdefault(row["uidvalidity"], []).append(row)
    for validity, group in by_validity.items():
        mailbox_space.delete_exactly(box, trash, validity, [int(r["uid"]) for r in group])
        with ctx.journal.transaction():
            ctx.journal.mark_trash_emptied(group, ctx.clock())
    return len(rows)

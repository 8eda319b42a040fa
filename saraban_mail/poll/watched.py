"""Stage 0, watched staff mailboxes: read first, so that the requests they hold for saraban
are copied into its inbox and taken in by this poll's intake (the rule is in watch.py).

One that fails (a wrong password, a server down) is reported; the poll goes on."""

from __future__ import annotations

import logging

from imapclient.exceptions import IMAPClientError

from saraban_mail import oauth, watch
from saraban_mail.errors import SarabanError
from saraban_mail.mailbox import ImapMailbox, WatchedMailbox
from saraban_mail.poll.context import Context, PollReport

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport) -> None:
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
                                      ctx.identity, ctx.clock, ctx.stop)
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

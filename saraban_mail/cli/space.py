"""The administrator's command for the mailbox's space: `archive` copies handled mail off
the server into archive.dir, verifies each copy, then deletes it there."""

from __future__ import annotations

import argparse
import sys

from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.config import load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal, single_instance
from saraban_mail.service import now, open_mailbox, tokens_for


def cmd_archive(args: argparse.Namespace) -> int:
    """Handled mail older than --older-than, oldest first, into archive.dir."""
    from saraban_mail import archive
    from saraban_mail.mailbox import ImapMailbox

    try:
        months = archive.parse_age(args.older_than)
    except ValueError as exc:
        raise SarabanError(str(exc)) from None
    config = load_config(args.config)
    with single_instance(config.paths.data_dir):  # never beside a poll
        box = open_mailbox(config, tokens_for(config), retry=False)
        journal = Journal.open(config.paths.data_dir)
        try:
            if not isinstance(box, ImapMailbox):
                raise SarabanError("archive works on an IMAP mailbox (mailbox.backend = imap)")
            done = archive.archive(config, journal, box, now(), months,
                                   args.limit or 1_000_000)
        finally:
            journal.close()
            box.close()
    print(f"{done.line()}; archive: {config.archive.dir}")
    for problem in done.problems:
        print(f"saraban-mail: {problem}", file=sys.stderr)
    return EXIT_PENDING if done.problems else EXIT_OK

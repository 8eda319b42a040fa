"""What a clerk's command needs (`Office`: config, journal, templates, calendar, who acts)
and how it sends what it queued at once; receipt numbers as a clerk types them."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from saraban_mail.calendar import buddhist_year
from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.config import Config, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal, single_instance
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now, open_mailbox, tokens_for

if TYPE_CHECKING:
    from saraban_mail.mailbox import Mailbox
    from saraban_mail.results import Target


def receipt(text: str, year: int | None) -> tuple[int, int]:
    """(number, year) of "12" or "12/2569"; the year defaults to this Buddhist-era year."""
    number, _, in_text = text.partition("/")
    if not number.isdigit() or (in_text and not in_text.isdigit()):
        raise SarabanError(f"receipt '{text}' is not a number like 12 or 12/2569")
    return int(number), int(in_text or year or buddhist_year(now()))


def send_now(config: Config, step: Callable[[Mailbox | None], list[str]]) -> list[str]:
    """Send what a clerk's command queued, unless a poll is running: then that poll (or
    the next) sends it, so nothing goes twice."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(single_instance(config.paths.data_dir))
        except SarabanError:
            return ["a poll is running: it sends the queued mail"]
        mailbox: Mailbox | None = None
        try:
            mailbox = open_mailbox(config, tokens_for(config), retry=False)
            stack.callback(mailbox.close)
        except SarabanError as exc:
            print(f"saraban-mail: {exc}; the copy in Sent is made at the next poll",
                  file=sys.stderr)
        return step(mailbox)


class Office:
    """What a clerk's command needs: config, journal, templates, calendar, and a way to
    send what it queued at once (the poll retries whatever could not go)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from saraban_mail.replies import Templates

        self.config = load_config(args.config)
        rules = load_rules(self.config.paths.rules_dir)
        self.templates = Templates(self.config.paths.templates_dir)
        self.calendar = calendar_for(self.config, rules)
        self.journal = Journal.open(self.config.paths.data_dir)
        self.actor = getattr(args, "by", None) or os.environ.get("USER") or "clerk"

    def now(self) -> datetime:
        return now().astimezone(self.calendar.tz)

    def target(self, text: str, year: int | None) -> Target:
        from saraban_mail import results

        number, year = receipt(text, year)
        return results.find_target(self.journal, self.config, year, number)

    def send(self) -> list[str]:
        from saraban_mail.poll.sending import send_queued
        from saraban_mail.send import transport_for

        return send_now(self.config, lambda mailbox: send_queued(
            self.journal, self.config, transport_for(self.config.smtp, tokens_for(self.config)),
            mailbox, self.now))

    def finish(self, problems: list[str]) -> int:
        self.journal.close()
        for problem in problems:
            print(f"saraban-mail: {problem}", file=sys.stderr)
        return EXIT_PENDING if problems else EXIT_OK

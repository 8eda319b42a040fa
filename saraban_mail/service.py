"""The service put together from its config: the clock, the business calendar, the
mailbox, the mail transport, and one poll under the data folder's lock.

What the command line, the daemon and the tests call to run a poll; the poll itself is
the `poll` package."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from saraban_mail.calendar import BANGKOK, BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.errors import LoginRefused, MailboxError, SarabanError
from saraban_mail.journal import Journal, single_instance
from saraban_mail.oauth import Tokens
from saraban_mail.rules import RuleSet, load_rules

if TYPE_CHECKING:  # the poll's modules load IMAP, SMTP and openpyxl: `status` needs none
    from saraban_mail.mailbox import Mailbox
    from saraban_mail.poll import Context, PollReport
    from saraban_mail.send import Transport

log = logging.getLogger("saraban_mail")


def now() -> datetime:
    """The clock: SARABAN_NOW (ISO 8601 with offset) fixes it, for tests and for re-running
    a day's deadlines; otherwise the time in Bangkok."""
    fixed = os.environ.get("SARABAN_NOW")
    if fixed:
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            raise SarabanError(f"SARABAN_NOW={fixed!r} is not an ISO 8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=BANGKOK)
    return datetime.now(BANGKOK)


def calendar_for(config: Config, rules: RuleSet) -> BusinessCalendar:
    hours = config.office_hours
    return BusinessCalendar(
        opening=hours.open, closing=hours.close, ack_by=hours.ack_by,
        tz=ZoneInfo(hours.timezone), added=rules.holidays_added,
        removed=rules.holidays_removed,
    )


def tokens_for(config: Config, clock: Callable[[], datetime] | None = None) -> Tokens | None:
    return Tokens(config.oauth, config.paths.data_dir, clock or now) if config.uses_oauth else None


def open_mailbox(config: Config, tokens: Tokens | None = None, *, retry: bool = True,
                 sleep: Callable[[float], None] = time.sleep) -> Mailbox:
    """Connect and log in; an unreachable server is tried again after each of
    network.retry_delays (a refused login is not: it would only lock the account)."""
    from saraban_mail.mailbox import ImapMailbox
    from saraban_mail.maildir import MaildirMailbox

    limit = int(config.policy.max_message_mb * 2**20)
    if config.mailbox.backend == "maildir":
        return MaildirMailbox(config.mailbox.maildir, limit)
    waits = iter(config.network.retry_delays if retry else [])
    while True:
        try:
            return ImapMailbox(config.imap, tokens, limit,
                               spam_to_trash=config.policy.spam_action != "delete")
        except LoginRefused:
            raise
        except MailboxError as exc:
            wait = next(waits, None)
            if wait is None:
                raise
            log.warning("%s; trying again in %g s", exc, wait)
            sleep(wait)


def transport(config: Config, tokens: Tokens | None = None) -> Transport:
    from saraban_mail.send import transport_for

    return transport_for(config.smtp, tokens, config.network.retry_delays)


def build_context(config: Config, *, dry_run: bool = False,
                  clock: Callable[[], datetime] | None = None) -> Context:
    from saraban_mail.poll import Context
    from saraban_mail.poll.replying import check_templates
    from saraban_mail.replies import Templates

    rules = load_rules(config.paths.rules_dir)
    templates = Templates(config.paths.templates_dir)
    clock = clock or now
    calendar = calendar_for(config, rules)
    check_templates(templates, config, rules, calendar, clock())
    tokens = tokens_for(config, clock)
    mailbox = open_mailbox(config, tokens)
    try:
        journal = (Journal.scratch if dry_run else Journal.open)(config.paths.data_dir)
    except BaseException:
        mailbox.close()
        raise
    return Context(
        config=config,
        rules=rules,
        calendar=calendar,
        journal=journal,
        mailbox=mailbox,
        transport=transport(config, tokens),
        templates=templates,
        clock=clock,
        dry_run=dry_run,
    )


def run_poll(config: Config, *, dry_run: bool = False,
             clock: Callable[[], datetime] | None = None,
             stop: Callable[[], bool] | None = None,
             progress: Callable[[str, int], None] | None = None) -> PollReport:
    """One poll; never two at once on one data folder (a dry run changes nothing: no lock).
    A poll that cannot start (server down, login refused) is noted for `status` and, once
    a day, told to the administrator by email."""
    from saraban_mail.poll import poll

    with contextlib.nullcontext() if dry_run else single_instance(config.paths.data_dir):
        try:
            ctx = build_context(config, dry_run=dry_run, clock=clock)
        except MailboxError as exc:  # config, rules, templates: one clear error, nothing written
            if not dry_run:
                _poll_failed(config, clock or now, exc)
            raise
        if stop is not None:
            ctx.stop = stop
        if progress is not None:
            ctx.progress = progress
        try:
            return poll(ctx)
        finally:
            ctx.mailbox.close()
            ctx.journal.close()


def _poll_failed(config: Config, clock: Callable[[], datetime], error: Exception) -> None:
    from saraban_mail.poll.alerts import alert_admin

    journal = Journal.open(config.paths.data_dir)
    try:
        moment = clock()
        journal.set_meta("last_failure", json.dumps({"at": moment.isoformat(), "error": str(error)},
                                                    ensure_ascii=False))
        try:
            alert_admin(journal, config, transport(config, tokens_for(config, clock)), moment,
                        [f"the poll of {moment:%Y-%m-%d %H:%M} could not start: {error}"])
        except SarabanError as again:
            log.warning("cannot tell the administrator: %s", again)
    finally:
        journal.close()


def noted(config: Config, key: str) -> dict[str, Any] | None:
    """A note the service keeps in the journal's meta as JSON, or None (no journal yet)."""
    path = config.paths.data_dir / "journal.sqlite3"
    if not path.exists():
        return None
    journal = Journal.open(config.paths.data_dir)
    try:
        value = journal.get_meta(key)
    finally:
        journal.close()
    return json.loads(value) if value else None


def last_poll(config: Config) -> dict[str, Any] | None:
    """What the last finished poll noted (when, how many, its problems), or None."""
    return noted(config, "last_poll")


def inbox_handled(config: Config) -> tuple[int, int] | None:
    """(UIDVALIDITY, highest UID) of INBOX as far as the journal has taken it, or None: what
    the watch compares with the server's UIDNEXT to tell whether mail is new."""
    path = config.paths.data_dir / "journal.sqlite3"
    if not path.exists():
        return None
    journal = Journal.open(config.paths.data_dir)
    try:
        state = journal.folder_state(config.imap.inbox)
    finally:
        journal.close()
    return (state.uidvalidity, state.last_uid) if state else None

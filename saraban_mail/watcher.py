"""Acknowledgement on arrival: while `saraban-mail run` runs, INBOX is watched (IMAP IDLE on
a connection of its own) and a poll runs as soon as new mail arrives.

The scheduled checks (schedule.py) stay the legal checks of INBOX and Junk; this only makes
the same poll run earlier. Where the server has no IDLE, or the mailbox is a Maildir, it looks
every schedule.watch_minutes. It watches at any hour: mail after closing is acknowledged at
once, and its official receipt time is still the next working day's opening (calendar.py)."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from saraban_mail.errors import LoginRefused, MailboxError, SarabanError
from saraban_mail.service import inbox_handled, tokens_for

if TYPE_CHECKING:
    from saraban_mail.config import Config
    from saraban_mail.mailbox import InboxWatch
    from saraban_mail.schedule import Daemon

log = logging.getLogger("saraban_mail")


@dataclass(frozen=True)
class Seen:
    """INBOX up to (not including) `next_uid` was there when a poll started: the UIDs of
    mail that no poll takes (older than policy.start_date) do not count as new again."""

    uidvalidity: int
    next_uid: int


def is_new(uidvalidity: int, next_uid: int, handled: tuple[int, int] | None,
           seen: Seen | None) -> bool:
    """Does INBOX (its UIDVALIDITY and UIDNEXT) hold mail above what the journal has taken
    (`handled`: its UIDVALIDITY and highest UID) and above what the last poll saw?"""
    known = 1
    if handled is not None and handled[0] == uidvalidity:
        known = handled[1] + 1
    if seen is not None and seen.uidvalidity == uidvalidity:
        known = max(known, seen.next_uid)
    return next_uid > known


class Watcher:
    """The watch thread of one daemon: connect, wait for mail, poll, and again; a lost
    connection is made again after network.retry_delays, then every watch_minutes."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.seen: Seen | None = None
        self.failures = 0

    @property
    def config(self) -> Config:
        return self.daemon.config  # type: ignore[return-value]

    def _interrupted(self) -> bool:
        return self.daemon.stopping.is_set() or self.daemon.reloaded.is_set()

    def _pause(self, seconds: float | None) -> None:
        """Wait, but not past SIGTERM or SIGHUP."""
        stopping, reloaded = self.daemon.stopping, self.daemon.reloaded
        step = 0.5
        waited = 0.0
        while not stopping.is_set() and not reloaded.is_set() and (
                seconds is None or waited < seconds):
            stopping.wait(step if seconds is None else min(step, seconds - waited))
            waited += step

    def run(self) -> None:
        daemon = self.daemon
        while not daemon.started.is_set() and not daemon.stopping.is_set():
            daemon.started.wait(0.5)  # after the catch-up poll, which may take the same mail
        while not daemon.stopping.is_set():
            daemon.reloaded.clear()
            config = self.config
            if not config.schedule.watch:
                self._pause(None)  # until a reload turns it on, or SIGTERM
            elif config.mailbox.backend != "imap":
                self._pause(config.schedule.watch_minutes * 60)
                if not self._interrupted():
                    daemon.poll_if("watch", lambda: True)
            else:
                try:
                    self._watch_imap(config)
                except Exception as exc:  # the watch never ends the daemon, nor itself
                    log.exception("watching %s failed", config.imap.inbox)
                    self._retry(config, exc)

    def _watch_imap(self, config: Config) -> None:
        from saraban_mail.mailbox import IDLE_RENEW, InboxWatch

        try:
            box = InboxWatch(config.imap, tokens_for(config))
        except LoginRefused as exc:  # trying again would only lock the account
            log.error("not watching %s: %s; the scheduled polls go on (reload to try again)",
                      config.imap.inbox, exc)
            self._pause(None)
            return
        except MailboxError as exc:
            self._retry(config, exc)
            return
        self.failures = 0
        period = config.schedule.watch_minutes * 60
        log.info("watching %s for new mail (%s)", config.imap.inbox, "IMAP IDLE" if box.can_idle
                 else f"every {config.schedule.watch_minutes:g} min: the server has no IDLE")
        try:
            self._catch_up(box, config)  # what came while nobody watched
            while not self._interrupted():
                if box.can_idle:
                    arrived = box.wait(IDLE_RENEW, self._interrupted)
                else:
                    self._pause(period)
                    arrived = not self._interrupted()
                if arrived and not self._interrupted():
                    self._catch_up(box, config)
        except MailboxError as exc:
            self._retry(config, exc)
        finally:
            box.close()

    def _catch_up(self, box: InboxWatch, config: Config) -> None:
        """Poll while INBOX holds mail that no poll has taken yet (more may come during a
        poll); stop at a poll that fails: the next arrival or check tries again."""
        candidate: list[Seen] = []

        def needed() -> bool:  # asked under the daemon's lock, after any other poll
            validity, next_uid = box.next_uid()
            try:
                handled = inbox_handled(config)
            except (SarabanError, sqlite3.Error) as exc:  # the poll will say what is wrong
                log.warning("watching %s: journal not read (%s)", config.imap.inbox, exc)
                handled = None
            if not is_new(validity, next_uid, handled, self.seen):
                return False
            candidate.append(Seen(validity, next_uid))
            return True

        while self.daemon.poll_if("new mail", needed):
            self.seen = candidate[-1]  # what INBOX held when that poll started

    def _retry(self, config: Config, error: Exception) -> None:
        """After network.retry_delays, every watch_minutes: a server that is down for the
        night is not asked every few seconds."""
        delays = config.network.retry_delays
        wait = (delays[self.failures] if self.failures < len(delays)
                else config.schedule.watch_minutes * 60)
        self.failures += 1
        log.warning("watching %s: %s; trying again in %g s", config.imap.inbox, error, wait)
        self._pause(wait)


def watch(daemon: Daemon) -> None:
    """The daemon's watch thread (schedule.Daemon's `watch`)."""
    Watcher(daemon).run()

"""Watched mailboxes: citizens' requests that reached a staff member, not saraban.

Receipt happens when mail enters the agency's system, a staff member's own mailbox on the
agency's domain included. Each poll reads the new mail of every `[[watch]]` mailbox
(EXAMINE and BODY.PEEK: nothing there is marked, moved or deleted), and a message that is a
citizen's request by the narrow rule of `takes` is copied, original bytes plus an
`X-Saraban-Via` header, into the saraban inbox. The intake that follows registers the copy
as wrong_channel (official receipt: when the saraban inbox received it; the time it reached
the staff member is kept beside it) and tells the citizen the central address. The only
change in the watched mailbox is the keyword `watch.keyword` on what was copied.

Nothing is kept of mail that is not taken, and the log names it by folder and UID only."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from saraban_mail.classify import Category, Decision, Identity, classify
from saraban_mail.errors import SarabanError
from saraban_mail.parse import Incoming, parse
from saraban_mail.thaitext import fold

if TYPE_CHECKING:
    from collections.abc import Callable

    from saraban_mail.config import Config, Watch
    from saraban_mail.journal import Journal
    from saraban_mail.mailbox import ImapMailbox, WatchedMailbox
    from saraban_mail.rules import RuleSet

log = logging.getLogger("saraban_mail")

VIA = "X-Saraban-Via"
TAKEN = (Category.VALID, Category.WRONG_CHANNEL)


@dataclass(frozen=True)
class Verdict:
    take: bool
    why: str  # a reason id, logged for mail left alone (never its sender or subject)


def agency_domains(config: Config) -> frozenset[str]:
    domains = {d.strip().lower().lstrip("@") for d in config.watching.agency_domains}
    domains.add(config.agency.email.rpartition("@")[2].lower())
    return frozenset(d for d in domains if d)


def takes(mail: Incoming, decision: Decision, address: str, config: Config) -> Verdict:
    """Is this mail in a staff mailbox a citizen's request? All of:
    - the rules call it a request (valid or wrong channel; spam, automated mail, another
      agency's business and what needs a person's judgement are not);
    - the sender is outside the agency's domains and not in staff.addresses;
    - the watched address is among its To/Cc (not a list, not a blind copy);
    - it names a request (watching.request_keywords, in subject or text) or carries a
      document of a request's kind (watching.request_types: a scan, a PDF, a form)."""
    if decision.category not in TAKEN:
        return Verdict(False, f"category:{decision.category}")
    sender = mail.from_addr.lower()
    if sender.rpartition("@")[2] in agency_domains(config) or sender in config.staff.addresses:
        return Verdict(False, "staff_sender")
    if address and address not in {a.lower() for a in (*mail.to, *mail.cc)}:
        return Verdict(False, "not_addressed_to_the_mailbox")
    text = fold(f"{mail.subject}\n{mail.text}")
    if any(fold(k) in text for k in config.watching.request_keywords):
        return Verdict(True, "request_keywords")
    if any(a.content_type in config.watching.request_types for a in mail.attachments):
        return Verdict(True, "request_attachment")
    return Verdict(False, "no_sign_of_a_request")


def via_header(watch: Watch, identity: str, arrived: datetime) -> bytes:
    """The header put on the copy: where it was found, when it arrived there, and the
    identity the journal knows it by (found again by a header search after a crash)."""
    value = (f"{watch.watched_address or watch.name}; watch={watch.name}; "
             f"arrived={arrived.isoformat()}; id={identity}")
    return f"{VIA}: {value}\r\n".encode("ascii", "replace")


@dataclass
class WatchReport:
    name: str
    taken: int = 0
    left: int = 0


def read_watched(box: WatchedMailbox, watch: Watch, saraban: ImapMailbox, journal: Journal,
                 config: Config, rules: RuleSet, identity: Identity,
                 clock: Callable[[], datetime], stop: Callable[[], bool]) -> WatchReport:
    """Read one watched mailbox's new mail; copy the requests to the saraban inbox."""
    report = WatchReport(watch.name)
    since = watch.start_date or _first_day(journal, watch, config, clock)
    for folder in watch.folders:
        key = f"watch:{watch.name}:{folder}"
        validity = box.uidvalidity(folder)
        state = journal.folder_state(key)
        after = state.last_uid if state and state.uidvalidity == validity else 0
        taken: list[int] = []
        last = after
        for fetched in box.fetch_new(folder, after, since_start(since, config),
                                     lambda _uid: False):
            if stop():
                break
            uid = int(fetched.uid)
            last = max(last, uid)
            if fetched.truncated:
                report.left += 1
                log.info("watch %s %s UID %s: left alone (too large to read)", watch.name,
                         folder, uid)
                continue
            mail = parse(fetched.raw, fetched.parts)
            verdict = takes(mail, classify(mail, rules, identity), watch.watched_address, config)
            if not verdict.take:
                report.left += 1
                log.info("watch %s %s UID %s: left alone (%s)", watch.name, folder, uid,
                         verdict.why)
                continue
            copied = _copy(saraban, journal, watch, folder, fetched.uidvalidity, uid,
                           mail.identity, fetched.raw, fetched.received_at, clock)
            taken.append(uid)
            report.taken += copied
            log.info("watch %s %s UID %s: a request (%s), %s", watch.name, folder, uid,
                     verdict.why, "copied to the saraban inbox" if copied else
                     "already in the saraban inbox")
        box.add_keyword(folder, validity, taken, watch.keyword)
        with journal.transaction():
            journal.advance(key, validity, last)
    return report


def since_start(day: date, config: Config) -> datetime:
    """The start of `day` in the agency's zone: the start date is the agency's day."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(config.office_hours.timezone))


def _first_day(journal: Journal, watch: Watch, config: Config, clock: Callable[[], datetime]):
    """Where reading a mailbox starts the first time: watching.lookback_days before the
    first poll that watched it (remembered, so a later poll starts from the same day)."""
    key = f"watch_start:{watch.name}"
    noted = journal.get_meta(key)
    if noted is None:
        noted = (clock().date() - timedelta(days=config.watching.lookback_days)).isoformat()
        with journal.transaction():
            journal.set_meta(key, noted)
    return datetime.fromisoformat(noted).date()


def _copy(saraban: ImapMailbox, journal: Journal, watch: Watch, folder: str, validity: int,
          uid: int, identity: str, raw: bytes, arrived: datetime,
          clock: Callable[[], datetime]) -> bool:
    """Into the saraban inbox once (True when copied now): noted in the journal first; a
    copy that may have gone before a crash is looked for by its header before another."""
    known = journal.watched(identity)
    if known is not None and known["copied_at"]:
        return False
    if journal.find_identity(identity) is not None:
        return False  # the citizen wrote to saraban too (or copied it): that one is registered
    with journal.transaction():
        journal.note_watched(identity, watch.name, folder, validity, uid,
                             watch.watched_address, arrived, clock())
    inbox = saraban.folders.inbox
    if known is None or not saraban.holds_header(inbox, VIA, f"id={identity}"):
        saraban.deliver(inbox, via_header(watch, identity, arrived) + raw)
    with journal.transaction():
        journal.watched_copied(identity, clock())
    return True


def health(journal: Journal, name: str) -> dict | None:
    noted = journal.get_meta(f"watch_health:{name}")
    return json.loads(noted) if noted else None


def note_health(journal: Journal, name: str, now: datetime, error: str = "",
                report: WatchReport | None = None) -> None:
    """The last poll's word on one watched mailbox, for `status`: when it was last read
    and, if the last try failed, why."""
    previous = health(journal, name) or {}
    entry = {"checked_at": now.isoformat(), "ok": not error, "error": error,
             "last_read": now.isoformat() if not error else previous.get("last_read"),
             "taken": (report.taken if report else 0), "left": (report.left if report else 0)}
    with journal.transaction():
        journal.set_meta(f"watch_health:{name}", json.dumps(entry, ensure_ascii=False))


def failure_text(exc: Exception) -> str:
    return str(exc) if isinstance(exc, SarabanError) else f"{type(exc).__name__}: {exc}"

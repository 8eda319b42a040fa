"""Mailbox access: fetch what is new, then mark, flag, move or delete it.

The small interface the poll uses (`Mailbox`) and its IMAP backend (imapclient), with
every protocol detail kept here, out of the business code; the demo's Maildir backend is
in maildir.py. One concept, the IMAP adapter, hence the length."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.response_types import BodyData

from saraban_mail import folders
from saraban_mail.config import Imap
from saraban_mail.errors import LoginRefused, MailboxError
from saraban_mail.parse import ServerPart, identity_of

if TYPE_CHECKING:
    from saraban_mail.oauth import Tokens

FETCH_BATCH = 25  # messages per FETCH: few round trips...
FETCH_BYTES = 8 << 20  # ...and little held at once: a large message comes alone
SIZES_BATCH = 200  # UIDs per FETCH of sizes: a backlog of years is thousands of UIDs, and
# servers refuse a long command line (Dovecot: imap_max_line_length, 64 KB). imapclient's
# fetch lists them one by one (it reads the answer back by that list, so no ranges).
CUT_MESSAGE = 256 << 10  # a message this large has its structure asked for, and...
CUT_PART = 64 << 10  # ...its base64 parts this large located by the server (parse.ServerPart)


def batches(uids: list[int], sizes: dict[int, int]) -> Iterator[tuple[int, list[int]]]:
    """(index of the first, UIDs) of each FETCH: at most FETCH_BATCH messages and, where
    the sizes are known, FETCH_BYTES (a message larger than that is fetched on its own)."""
    start, total = 0, 0
    batch: list[int] = []
    for index, uid in enumerate(uids):
        size = sizes.get(uid, 0)
        if batch and (len(batch) == FETCH_BATCH or total + size > FETCH_BYTES):
            yield start, batch
            start, batch, total = index, [], 0
        batch.append(uid)
        total += size
    if batch:
        yield start, batch


def _uid_ranges(uids: list[int]) -> str:
    """An IMAP sequence set of sorted UIDs, runs written as ranges: 7,9:14,20."""
    runs: list[list[int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(first) if first == last else f"{first}:{last}" for first, last in runs)


def _param(params: object, name: bytes) -> bytes | None:
    """One parameter of a BODYSTRUCTURE parameter list (name, value, name, value...)."""
    if not isinstance(params, (tuple, list)):
        return None
    pairs = zip(params[::2], params[1::2], strict=False)
    return next((bytes(v) for k, v in pairs if isinstance(k, bytes) and isinstance(v, bytes)
                 and k.lower() == name), None)


def _large_parts(structure: BodyData, prefix: str = "") -> list[tuple[str, int, bytes]]:
    """(section, octets, boundary) of each base64 leaf of at least CUT_PART in a
    multipart BODYSTRUCTURE; text parts and forwarded mails (message/*) are left whole."""
    if not structure.is_multipart:
        return []
    boundary = _param(structure[2], b"boundary")
    found: list[tuple[str, int, bytes]] = []
    for number, part in enumerate(structure[0], start=1):
        section = f"{prefix}{number}"
        if part.is_multipart:
            found += _large_parts(part, f"{section}.")
        elif (boundary and isinstance(part[0], bytes) and isinstance(part[5], bytes)
              and part[0].lower() not in (b"text", b"message", b"multipart")
              and part[5].lower() == b"base64" and isinstance(part[6], int)
              and part[6] >= CUT_PART):
            found.append((section, part[6], boundary))
    return found


@dataclass(frozen=True)
class Folders:
    inbox: str
    junk: str | None
    trash: str | None
    sent: str | None
    # imap.extra_folders: those the server has, and those it has not (a problem every poll).
    extra: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    # Junk, Trash or Sent that is needed and was not found: said on every poll.
    problems: tuple[str, ...] = ()
    how: tuple[tuple[str, str], ...] = ()  # (role, "special-use" | "name" | "config")


@dataclass(frozen=True)
class Sought:
    """A message looked for in another folder: what COPY keeps of it."""

    message_id: str
    identity: str  # parse.identity_of its bytes
    received_on: date  # INTERNALDATE's day, kept by COPY


class DeleteRefused(MailboxError):
    """Expunging our messages would expunge someone else's too."""


@dataclass(frozen=True)
class Fetched:
    folder: str
    uidvalidity: int
    uid: int | str
    received_at: datetime  # INTERNALDATE (IMAP) or delivery time (Maildir)
    raw: bytes
    left: int = 0  # messages still to come from this folder in this fetch
    # Larger than the limit: raw holds the header only; size is the whole message's.
    truncated: bool = False
    size: int = 0
    parts: tuple[ServerPart, ...] = ()  # large attachments as the server located them


class Mailbox(Protocol):
    folders: Folders

    def uidvalidity(self, folder: str) -> int: ...

    def fetch_new(self, folder: str, after_uid: int, since: datetime | None,
                  skip: Callable[[int | str], bool]) -> Iterator[Fetched]:
        """What arrived above `after_uid`, from `since` on (an aware time: the start of the
        start date in the agency's zone, which is not the server's)."""
        ...

    def count_before(self, folder: str, after_uid: int, since: datetime) -> int:
        """How many messages above `after_uid` arrived before `since` (left alone)."""
        ...

    @property
    def moves_atomically(self) -> bool:
        """MOVE (RFC 6851); else a move is COPY, then delete (the methods below)."""
        ...

    def apply_many(self, folder: str, uidvalidity: int, uids: list[str], action: str,
                   target: str) -> dict[str, tuple[int, int] | None]:
        """The same action on many messages at once. Returns the UIDs that were still
        there, each with its (UIDVALIDITY, UID) in the target folder when a move says so."""
        ...

    def copy_many(self, folder: str, uidvalidity: int, uids: list[str], target: str
                  ) -> dict[str, tuple[int, int] | None]:
        """COPY: the UIDs still there, each with where it landed when the server says."""
        ...

    def find_copies(self, target: str, wanted: dict[str, Sought]) -> dict[str, tuple[int, int]]:
        """Which of these messages the target folder already holds (a COPY whose answer was
        lost): source UID -> (UIDVALIDITY, UID) in the target."""
        ...

    def delete_many(self, folder: str, uidvalidity: int, uids: list[str]) -> dict[str, None]:
        """Flag \\Deleted and expunge exactly these; DeleteRefused where that is not safe."""
        ...

    def append(self, folder: str, raw: bytes) -> None: ...

    def append_many(self, folder: str, raws: list[bytes]) -> None: ...

    def holds_message_ids(self, folder: str, message_ids: list[str]) -> set[str]:
        """Which of these Message-IDs the folder already holds (after an append that may
        have landed before the poll died)."""
        ...

    def reconnect(self) -> None:
        """After a dropped connection: connect and log in again."""
        ...

    def close(self) -> None: ...


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _uid_set(text: str) -> list[int]:
    found: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        low, high = sorted((int(first), int(last or first)))
        found += range(low, high + 1)
    return found


def _copyuid(answers: list[bytes] | None) -> dict[int, tuple[int, int]]:
    """COPYUID validity source-set target-set (RFC 4315 §3): where each moved UID went."""
    mapping: dict[int, tuple[int, int]] = {}
    for answer in answers or []:
        try:
            validity, source, target = answer.decode().split()[:3]
            pairs = zip(_uid_set(source), _uid_set(target), strict=True)
        except ValueError:
            continue  # an answer we cannot read: the message is simply fetched again
        mapping.update({old: (int(validity), new) for old, new in pairs})
    return mapping


def _login(client: imapclient.IMAPClient, s: Imap, tokens: Tokens | None) -> None:
    if s.auth == "password" or tokens is None:
        client.login(s.username, s.secret())
        return
    for fresh in (False, True):  # a cached access token may have been revoked: renew once
        token = tokens.access_token(fresh=fresh)
        try:
            if s.auth == "oauthbearer":
                client.oauthbearer_login(s.username, token)
            else:
                client.oauth2_login(s.username, token)
            return
        except LoginError:
            if fresh:
                raise


class ImapMailbox:
    """IMAP via imapclient. Messages are read with BODY.PEEK, so nothing is marked
    read until it has been handled."""

    def __init__(self, settings: Imap, tokens: Tokens | None = None,
                 max_bytes: int | None = None, spam_to_trash: bool = True) -> None:
        self.settings, self.tokens, self.max_bytes = settings, tokens, max_bytes
        self.client = self._connect(settings, tokens)
        self._selected: tuple[str, bool] | None = None
        self._validity = 0
        self.folders = self._discover(settings, spam_to_trash)

    def _discover(self, s: Imap, spam_to_trash: bool) -> Folders:
        listing = [folders.Listed(name, frozenset(f.decode().lower() if isinstance(f, bytes)
                                                  else str(f).lower() for f in flags),
                                  sep.decode() if isinstance(sep, bytes) else (sep or "/"))
                   for flags, sep, name in self.client.list_folders()]
        prefix, separator = self.personal_namespace(listing)
        names = {item.name for item in listing}

        def find(flag: str, usual: tuple[str, ...], configured: str) -> folders.Found:
            return folders.find(listing, flag, usual, configured, prefix, separator)

        junk = find("\\junk", folders.JUNK_NAMES, s.junk)
        trash = find("\\trash", folders.TRASH_NAMES, s.trash)
        sent = (folders.Found(None, "off") if s.sent == folders.NO_SENT
                else find("\\sent", folders.SENT_NAMES, s.sent))
        extra = [f for f in dict.fromkeys(s.extra_folders) if f not in (s.inbox, junk.name)]
        return Folders(
            inbox=s.inbox, junk=junk.name, trash=trash.name, sent=sent.name,
            extra=tuple(f for f in extra if f in names),
            missing=tuple(f for f in extra if f not in names),
            problems=tuple(folders.problems(
                junk, trash, sent, spam_to_trash=spam_to_trash,
                configured={"junk": s.junk, "trash": s.trash, "sent": s.sent})),
            how=tuple((role, f.how) for role, f in (("junk", junk), ("trash", trash),
                                                   ("sent", sent)) if f.name),
        )

    def personal_namespace(self, listing: list[folders.Listed]) -> tuple[str, str]:
        """(prefix, separator) of the personal namespace (RFC 2342): `INBOX.` and `.` on
        Courier and Cyrus, `` and `/` on Dovecot; from LIST where there is no NAMESPACE."""
        if self.client.has_capability("NAMESPACE"):
            with contextlib.suppress(IMAPClientError, ValueError, IndexError, TypeError):
                personal = self.client.namespace().personal
                if personal:
                    prefix, separator = personal[0]
                    return str(prefix or ""), str(separator or "/")
        separator = next((item.separator for item in listing), "/")
        return "", separator

    def capabilities(self) -> dict[str, bool]:
        """The capabilities that change what the service does on this server."""
        return {name: bool(self.client.has_capability(name)) for name in
                ("MOVE", "UIDPLUS", "SPECIAL-USE", "MULTIAPPEND", "IDLE", "QUOTA", "NAMESPACE")}

    def reconnect(self) -> None:
        self.close()
        self.client = self._connect(self.settings, self.tokens)
        self._selected = None

    @staticmethod
    def _connect(s: Imap, tokens: Tokens | None) -> imapclient.IMAPClient:
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        try:
            client = imapclient.IMAPClient(
                s.host, port=s.port, ssl=s.security == "tls", ssl_context=context,
                timeout=s.timeout,
            )
            if s.security == "starttls":
                client.starttls(context)
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"cannot connect to IMAP server {s.host}:{s.port}: {exc}") from exc
        client.normalise_times = False  # keep INTERNALDATE's own time zone
        # imapclient turns imaplib's protocol trace on (debug level 5, for its debug
        # logger): each response, literals included, is formatted with repr() whether or
        # not anything is logged. For a 34 MB message that is 78 MB more memory and a
        # second of CPU per 200 MB read. Citizens' mail has no place in a log either.
        client._imap.debug = 0
        # APPEND sends its literal and the closing CRLF as two writes: with Nagle's algorithm
        # the second waits for the server's delayed ACK (40 ms per message on Linux).
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            _login(client, s, tokens)
        except LoginError as exc:
            refused = f"IMAP server {s.host} refused the login for '{s.username}'"
            if tokens is not None:
                tokens.failed(f"{refused} ({s.auth})")
            raise LoginRefused(refused) from exc
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"IMAP login to {s.host} failed: {exc}") from exc
        if tokens is not None:
            tokens.succeeded()
        return client

    def _select(self, folder: str, readonly: bool) -> int:
        try:
            info = self.client.select_folder(folder, readonly=readonly)
        except IMAPClientAbortError:
            raise  # the connection is gone, not the folder
        except IMAPClientError as exc:
            raise MailboxError(f"cannot open folder '{folder}': {exc}") from exc
        self._selected = (folder, readonly)
        return int(info[b"UIDVALIDITY"])

    def uidvalidity(self, folder: str) -> int:
        status = self.client.folder_status(folder, [b"UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"])

    def fetch_new(self, folder: str, after_uid: int, since: datetime | None,
                  skip: Callable[[int | str], bool]) -> Iterator[Fetched]:
        uidvalidity = self._select(folder, readonly=True)
        criteria: list = ["UID", f"{after_uid + 1}:*"]
        if since:
            # SEARCH SINCE goes by the day of INTERNALDATE in the server's own zone: a day
            # earlier here, and the exact time below.
            criteria += ["SINCE", (since - timedelta(days=1)).date()]
        # "n:*" always matches the highest UID, even below n: filter again.
        uids = sorted(u for u in self.client.search(criteria) if u > after_uid and not skip(u))
        sizes: dict[int, int] = {}  # to skip what is too large and to batch by bytes
        for start in range(0, len(uids), SIZES_BATCH):
            wanted = uids[start:start + SIZES_BATCH]
            sizes.update({uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in
                          self.client.fetch(wanted, [b"RFC822.SIZE"]).items()})
        for start, batch in batches(uids, sizes):
            huge = {u for u in batch if self.max_bytes and sizes.get(u, 0) > self.max_bytes}
            cuts = self._cuts([u for u in batch if u not in huge
                                      and sizes.get(u, 0) >= CUT_MESSAGE])
            response = {}
            plain = [u for u in batch if u not in huge and u not in cuts]
            if plain:
                response = self.client.fetch(plain, [b"BODY.PEEK[]", b"INTERNALDATE"])
            by_sections: dict[tuple[str, ...], list[int]] = {}
            for uid, found in cuts.items():
                by_sections.setdefault(tuple(section for section, _, _ in found), []).append(uid)
            for sections, group in by_sections.items():  # most often one group: part 2
                response.update(self.client.fetch(group, [
                    b"BODY.PEEK[]", b"INTERNALDATE",
                    *(f"BODY.PEEK[{section}.MIME]".encode() for section in sections)]))
            if huge:
                response.update({u: {b"BODY[]": d.get(b"BODY[HEADER]", b""), **d} for u, d in
                                 self.client.fetch(sorted(huge), [b"BODY.PEEK[HEADER]",
                                                                  b"INTERNALDATE"]).items()})
            for uid in batch:
                data = response.pop(uid, None)  # each message held only while it is handled
                if not data or b"BODY[]" not in data:
                    continue  # expunged meanwhile
                received = _aware(data[b"INTERNALDATE"])
                if since and received < since:
                    continue
                left = len(uids) - uids.index(uid, start) - 1
                size = sizes.get(uid, 0)
                raw = bytes(data.pop(b"BODY[]"))
                parts = tuple(
                    ServerPart(bytes(data.get(f"BODY[{section}.MIME]".encode()) or b""),
                               octets, boundary)
                    for section, octets, boundary in cuts.get(uid, ()))
                del data
                yield Fetched(folder, uidvalidity, uid, received, raw, left, uid in huge,
                              size or len(raw), parts)

    def count_before(self, folder: str, after_uid: int, since: datetime) -> int:
        self._select(folder, readonly=True)
        found = [uid for uid in self.client.search(
            ["UID", f"{after_uid + 1}:*", "BEFORE", (since + timedelta(days=1)).date()])
            if uid > after_uid]
        dates = self.client.fetch(found, [b"INTERNALDATE"]) if found else {}
        return sum(1 for data in dates.values()
                   if _aware(data[b"INTERNALDATE"]) < since)

    def _cuts(self, uids: list[int]) -> dict[int, list[tuple[str, int, bytes]]]:
        """The large base64 parts of each message, by its BODYSTRUCTURE. A structure the
        client cannot read only means the message is parsed whole."""
        if not uids:
            return {}
        try:
            structures = self.client.fetch(uids, [b"BODYSTRUCTURE"])
        except IMAPClientAbortError:
            raise
        except (IMAPClientError, ValueError, IndexError, TypeError):
            return {}
        cuts = {}
        for uid, data in structures.items():
            structure = data.get(b"BODYSTRUCTURE")
            try:
                found = _large_parts(structure) if isinstance(structure, BodyData) else []
            except (ValueError, IndexError, TypeError):
                found = []
            if found:
                cuts[uid] = found
        return cuts

    def apply_many(self, folder: str, uidvalidity: int, uids: list[str], action: str,
                   target: str) -> dict[str, tuple[int, int] | None]:
        """One SEARCH and one command for a whole batch: a poll of 2,000 spam messages
        moves them in a handful of round trips, not thousands. A move's COPYUID answer
        (RFC 4315) tells where each message went, so it is never downloaded again."""
        if self._selected != (folder, False):
            self._validity = self._select(folder, readonly=False)
        if self._validity != uidvalidity or not uids:
            return {}
        # UID sets written as ranges: a short command line however many messages (silent
        # STOREs: imapclient reads a non-silent answer back by the UIDs listed one by one)
        present = sorted(self.client.search(["UID", _uid_ranges(sorted(map(int, uids)))]))
        moved: dict[int, tuple[int, int]] = {}
        if present:
            wanted = _uid_ranges(present)
            responses = self.client._imap.untagged_responses  # imaplib keeps COPYUID here
            responses.pop("COPYUID", None)
            if action == "seen":
                self.client.add_flags(wanted, [imapclient.SEEN], silent=True)
            elif action == "flag":
                self.client.add_flags(wanted, [imapclient.FLAGGED], silent=True)
            elif action == "unflag":  # a person has decided it
                self.client.remove_flags(wanted, [imapclient.FLAGGED], silent=True)
            elif action == "move" and self.moves_atomically:
                self.client.move(wanted, target)
                moved = _copyuid(responses.pop("COPYUID", None))
            else:  # without MOVE a move is copy_many, find_copies, delete_many (the poll's)
                raise ValueError(f"unknown mailbox action {action!r}")
        return {str(u): moved.get(u) for u in present}

    @property
    def moves_atomically(self) -> bool:
        return bool(self.client.has_capability("MOVE"))

    def _present(self, folder: str, uidvalidity: int, uids: list[str]) -> list[int]:
        if self._selected != (folder, False):
            self._validity = self._select(folder, readonly=False)
        if self._validity != uidvalidity or not uids:
            return []
        return sorted(self.client.search(["UID", _uid_ranges(sorted(map(int, uids)))]))

    def copy_many(self, folder: str, uidvalidity: int, uids: list[str], target: str
                  ) -> dict[str, tuple[int, int] | None]:
        present = self._present(folder, uidvalidity, uids)
        if not present:
            return {}
        responses = self.client._imap.untagged_responses  # imaplib keeps COPYUID here
        responses.pop("COPYUID", None)
        self.client.copy(_uid_ranges(present), target)
        landed = _copyuid(responses.pop("COPYUID", None))
        return {str(u): landed.get(u) for u in present}

    def find_copies(self, target: str, wanted: dict[str, Sought]) -> dict[str, tuple[int, int]]:
        """By Message-ID (else by the day of arrival, which COPY keeps), each candidate
        confirmed by its bytes: a COPY keeps them exactly, so the identity is the same."""
        validity = self._select(target, readonly=True)
        found: dict[str, tuple[int, int]] = {}
        for uid, sought in wanted.items():
            # Without a Message-ID: the days around its arrival (the server's day may be
            # another time zone's).
            criteria: list = (["HEADER", "Message-ID", sought.message_id] if sought.message_id
                              else ["SINCE", sought.received_on - timedelta(days=1),
                                    "BEFORE", sought.received_on + timedelta(days=2)])
            candidates = [c for c in self.client.search(criteria) if c not in
                          {where for _, where in found.values()}]
            for candidate in candidates:
                # The header alone first: a message too large to read was known by it.
                for part in (b"HEADER", b""):
                    data = self.client.fetch([candidate], [b"BODY.PEEK[%s]" % part])
                    raw = bytes(data.get(candidate, {}).get(b"BODY[%s]" % part, b""))
                    if identity_of(raw, sought.message_id) == sought.identity:
                        found[uid] = (validity, candidate)
                        break
                if uid in found:
                    break
        self._selected = None  # the next action selects its folder read-write again
        return found

    def delete_many(self, folder: str, uidvalidity: int, uids: list[str]) -> dict[str, None]:
        """UID EXPUNGE (UIDPLUS) removes only these. Without it EXPUNGE removes every
        message flagged \\Deleted in the folder: it is used only when no other message is
        so flagged (a clerk's mail program may have flagged one and not yet expunged it);
        else these stay flagged and DeleteRefused says why."""
        present = self._present(folder, uidvalidity, uids)
        if not present:
            return {}
        wanted = _uid_ranges(present)
        self.client.add_flags(wanted, [imapclient.DELETED], silent=True)
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(wanted)
        else:
            others = sorted(set(self.client.search(["DELETED"])) - set(present))
            if others:
                raise DeleteRefused(
                    f"{folder}: the server has no UIDPLUS and {len(others)} other message(s) "
                    "there are flagged deleted by someone else, so EXPUNGE would remove them "
                    f"too: {len(present)} message(s) of ours stay flagged deleted until that "
                    "mail is expunged or undeleted")
            self.client.expunge()
        return {str(u): None for u in present}

    def append(self, folder: str, raw: bytes) -> None:
        self.client.append(folder, raw, flags=[imapclient.SEEN])

    def append_many(self, folder: str, raws: list[bytes]) -> None:
        """Copies of sent mail, read: one MULTIAPPEND (RFC 3502) where the server has it,
        all or none of them stored, instead of a round trip each."""
        if len(raws) > 1 and self.client.has_capability("MULTIAPPEND"):
            self.client.multiappend(folder, [{"msg": raw, "flags": [imapclient.SEEN]}
                                             for raw in raws])
        else:
            for raw in raws:
                self.append(folder, raw)

    def holds_message_ids(self, folder: str, message_ids: list[str]) -> set[str]:
        """A SEARCH HEADER Message-ID each: only after an interrupted append, so a few."""
        self._select(folder, readonly=True)
        return {mid for mid in message_ids
                if mid and self.client.search(["HEADER", "Message-ID", mid])}

    def deliver(self, folder: str, raw: bytes) -> None:
        """Put a message in a folder as new mail (unread; the server's time of arrival)."""
        self.client.append(folder, raw)

    def holds_header(self, folder: str, name: str, value: str) -> bool:
        """Does any message of the folder carry this header containing this value?"""
        self._select(folder, readonly=True)
        return bool(self.client.search(["HEADER", name, value]))


    def close(self) -> None:
        with contextlib.suppress(OSError, IMAPClientError, socket.error):
            self.client.logout()


# RFC 2177 asks a client to end IDLE and issue it again at least every 29 minutes (the
# server may drop an idle client after 30); an office router often drops a silent TCP
# connection sooner, and ending IDLE is what finds a connection that died without a word.
IDLE_RENEW = 10 * 60.0


class InboxWatch:
    """A connection of its own (never the poll's) that only waits for mail to arrive in
    INBOX: IMAP IDLE (RFC 2177) where the server has it. Errors are MailboxError."""

    def __init__(self, settings: Imap, tokens: Tokens | None = None) -> None:
        self.inbox = settings.inbox
        self.client = ImapMailbox._connect(settings, tokens)
        try:
            self.can_idle = bool(self.client.has_capability("IDLE"))
        except (OSError, IMAPClientError) as exc:
            self.close()
            raise MailboxError(f"{settings.inbox}: {exc}") from exc

    def next_uid(self) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) of INBOX, from a fresh EXAMINE: mail arrived when the
        UIDNEXT grows."""
        try:
            info = self.client.select_folder(self.inbox, readonly=True)
            if b"UIDNEXT" not in info:  # optional in a SELECT answer before IMAP4rev2
                info = self.client.folder_status(self.inbox, [b"UIDVALIDITY", b"UIDNEXT"])
            return int(info[b"UIDVALIDITY"]), int(info[b"UIDNEXT"])
        except (OSError, IMAPClientError, KeyError) as exc:
            raise MailboxError(f"{self.inbox}: {exc}") from exc

    def wait(self, seconds: float, stop: Callable[[], bool]) -> bool:
        """IDLE for up to `seconds`, or until `stop()`: True when the server told of new
        mail (EXISTS). Looks at `stop` every second, so SIGTERM is never kept waiting."""
        import time

        arrived = False
        try:
            self.client.idle()
            end = time.monotonic() + seconds
            while not arrived and not stop() and time.monotonic() < end:
                began = time.monotonic()
                answers = self.client.idle_check(timeout=1.0)
                arrived = any(len(a) > 1 and a[1] in (b"EXISTS", b"RECENT") for a in answers)
                if not answers and time.monotonic() - began < 0.5:
                    break  # woken with nothing to read: the server closed the connection
            self.client.idle_done()
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"connection lost ({exc})") from exc
        return arrived

    def close(self) -> None:
        with contextlib.suppress(OSError, IMAPClientError, socket.error):
            self.client.logout()


class WatchedMailbox(ImapMailbox):
    """A staff member's mailbox: read with BODY.PEEK in EXAMINE (read-only) mode; its
    folders are not even listed. The only write is a keyword on chosen messages."""

    def __init__(self, settings: Imap, tokens: Tokens | None = None,
                 max_bytes: int | None = None) -> None:
        self.settings, self.tokens, self.max_bytes = settings, tokens, max_bytes
        self.client = self._connect(settings, tokens)
        self._selected = None
        self._validity = 0
        self.folders = Folders(inbox=settings.inbox, junk=None, trash=None, sent=None)

    def uidvalidity(self, folder: str) -> int:
        return self._select(folder, readonly=True)

    def add_keyword(self, folder: str, uidvalidity: int, uids: list[int], keyword: str) -> None:
        """Set a keyword (never a system flag) on these messages, nothing else."""
        if not uids or not keyword or keyword.startswith("\\"):
            return
        if self._select(folder, readonly=False) != uidvalidity:
            return  # the folder was rebuilt: these UIDs no longer name those messages
        self.client.add_flags(uids, [keyword.encode()], silent=True)

"""The IMAP commands that keep the mailbox's space: its quota (GETQUOTAROOT, RFC 2087/9208),
a message's exact bytes by UID, and deleting exactly chosen UIDs (UID EXPUNGE, RFC 4315).

Beside mailbox.py rather than in it: the poll never needs them, and only these delete."""

from __future__ import annotations

from datetime import datetime

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from saraban_mail.errors import MailboxError
from saraban_mail.mailbox import ImapMailbox, _uid_ranges
from saraban_mail.space import Usage


def quota(box: object, now: datetime) -> Usage | None:
    """Storage use and limit of the quota root of INBOX; None where the server has no
    QUOTA capability, no storage limit, or the mailbox is not IMAP (the demo's Maildir)."""
    if not isinstance(box, ImapMailbox):
        return None
    client = box.client
    try:
        if not client.has_capability("QUOTA"):
            return None
        roots, quotas = client.get_quota_root(box.folders.inbox)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        raise MailboxError(f"cannot read the quota: {exc}") from exc
    for found in quotas:
        if str(found.resource).upper() == "STORAGE" and int(found.limit) > 0:
            return Usage(str(found.quota_root), int(found.usage), int(found.limit),
                         now.isoformat())
    return None


def fetch_exact(box: ImapMailbox, folder: str, uidvalidity: int,
                uids: list[int]) -> dict[int, bytes]:
    """The server's bytes of each message (BODY.PEEK[]: nothing is marked read); a UID that
    is gone, or a folder whose UIDVALIDITY changed, is simply absent from the answer."""
    info = box.client.select_folder(folder, readonly=True)
    box._selected = (folder, True)
    if int(info[b"UIDVALIDITY"]) != uidvalidity or not uids:
        return {}
    answer = box.client.fetch(uids, [b"BODY.PEEK[]"])
    return {uid: bytes(data[b"BODY[]"]) for uid, data in answer.items() if b"BODY[]" in data}


def can_delete_exactly(box: ImapMailbox) -> bool:
    """UID EXPUNGE removes only the UIDs named; a plain EXPUNGE would also remove what a
    clerk marked \\Deleted in a mail program, so without UIDPLUS nothing is deleted."""
    return bool(box.client.has_capability("UIDPLUS"))


def delete_exactly(box: ImapMailbox, folder: str, uidvalidity: int, uids: list[int]) -> list[int]:
    """STORE \\Deleted and UID EXPUNGE of exactly these UIDs; the UIDs that were there."""
    if not can_delete_exactly(box):
        raise MailboxError("the server has no UIDPLUS (UID EXPUNGE): mail is left on it")
    info = box.client.select_folder(folder, readonly=False)
    box._selected = None  # mailbox.apply_many selects again: its UIDVALIDITY is its own
    if int(info[b"UIDVALIDITY"]) != uidvalidity or not uids:
        return []
    present = sorted(box.client.search(["UID", _uid_ranges(sorted(uids))]))
    if present:
        wanted = _uid_ranges(present)
        box.client.add_flags(wanted, [imapclient.DELETED], silent=True)
        box.client.uid_expunge(wanted)
    return present

"""The demo's mailbox: a local Maildir++ tree behind the same interface as IMAP
(mailbox.Mailbox), so the demo and the unit tests need no server."""

from __future__ import annotations

import mailbox as stdlib_mailbox
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from saraban_mail.mailbox import Fetched, Folders, Sought


class MaildirMailbox:
    """A local Maildir++ tree (INBOX at the root, .Junk, .Trash, .Sent): the demo's mailbox.

    UIDVALIDITY is 0 and the UID is the Maildir key; delivery time is the file's mtime."""

    moves_atomically = True  # a rename

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        root.parent.mkdir(parents=True, exist_ok=True)  # Maildir makes cur, new, tmp itself
        self.root = stdlib_mailbox.Maildir(root, create=True)
        existing = set(self.root.list_folders())
        for name in ("Junk", "Trash", "Sent"):
            if name not in existing:
                self.root.add_folder(name)
        self.folders = Folders(inbox="INBOX", junk="Junk", trash="Trash", sent="Sent")

    def _box(self, folder: str) -> stdlib_mailbox.Maildir:
        return self.root if folder == "INBOX" else self.root.get_folder(folder)

    def uidvalidity(self, folder: str) -> int:
        return 0

    def fetch_new(self, folder: str, after_uid: int, since: datetime | None,
                  skip: Callable[[int | str], bool]) -> Iterator[Fetched]:
        box = self._box(folder)
        box.clean()
        entries = []
        for key in box.iterkeys():
            if skip(key):
                continue
            message = box.get_message(key)
            received = datetime.fromtimestamp(message.get_date(), tz=UTC)
            if since and received < since:
                continue
            entries.append((received, key))
        for index, (received, key) in enumerate(sorted(entries)):
            raw = box.get_bytes(key)
            size, huge = len(raw), bool(self.max_bytes and len(raw) > self.max_bytes)
            if huge:
                end = raw.find(b"\r\n\r\n")
                end = raw.find(b"\n\n") if end < 0 else end
                raw = raw[:end + 2] if end >= 0 else raw[:65536]
            yield Fetched(folder, 0, key, received, raw, len(entries) - index - 1, huge, size)

    def count_before(self, folder: str, after_uid: int, since: datetime) -> int:
        box = self._box(folder)
        return sum(1 for key in box.iterkeys()
                   if datetime.fromtimestamp(box.get_message(key).get_date(), tz=UTC) < since)

    def apply(self, folder: str, uidvalidity: int, uid: str, action: str, target: str) -> bool:
        box = self._box(folder)
        try:
            message = box.get_message(uid)
        except KeyError:
            return False
        if action == "seen":
            message.add_flag("S")
            box[uid] = message
        elif action == "flag":
            message.add_flag("F")
            box[uid] = message
        elif action == "unflag":
            message.remove_flag("F")
            box[uid] = message
        elif action == "move":
            self._box(target).add(message)  # Maildir.add keeps the delivery time
            box.remove(uid)
        elif action == "delete":
            box.remove(uid)
        else:
            raise ValueError(f"unknown mailbox action {action!r}")
        return True

    def apply_many(self, folder: str, uidvalidity: int, uids: list[str], action: str,
                   target: str) -> dict[str, tuple[int, int] | None]:
        return {uid: None for uid in uids if self.apply(folder, uidvalidity, uid, action, target)}

    def copy_many(self, folder: str, uidvalidity: int, uids: list[str], target: str
                  ) -> dict[str, tuple[int, int] | None]:
        raise NotImplementedError("a Maildir moves by rename (moves_atomically)")

    def find_copies(self, target: str, wanted: dict[str, Sought]) -> dict[str, tuple[int, int]]:
        raise NotImplementedError("a Maildir moves by rename (moves_atomically)")

    def delete_many(self, folder: str, uidvalidity: int, uids: list[str]) -> dict[str, None]:
        return {uid: None for uid in uids if self.apply(folder, uidvalidity, uid, "delete", "")}

    def reconnect(self) -> None:
        return None

    def append(self, folder: str, raw: bytes) -> None:
        message = stdlib_mailbox.MaildirMessage(raw)
        message.set_subdir("cur")
        message.add_flag("S")
        self._box(folder).add(message)

    def append_many(self, folder: str, raws: list[bytes]) -> None:
        for raw in raws:
            self.append(folder, raw)

    def holds_message_ids(self, folder: str, message_ids: list[str]) -> set[str]:
        wanted = set(message_ids)
        box = self._box(folder)
        return {found for key in box.iterkeys()
                if (found := str(box.get_message(key).get("Message-ID", "")).strip()) in wanted}

    def close(self) -> None:
        return None

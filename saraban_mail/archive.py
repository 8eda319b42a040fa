"""Archive, then delete: handled mail copied off the server, oldest first, into a Maildir per
month under archive.dir, each copy verified by SHA-256 against the server's bytes and
journaled before exactly its UID is deleted from the server (UID EXPUNGE).

Why Maildir and not mbox: a Maildir holds each message as its own file with the server's
exact bytes (an mbox quotes "From " lines, so its copy can no longer be checked by hash),
and a file is written under tmp/ and renamed into cur/, so a crash never leaves half a
message. mutt, Thunderbird (with its Maildir store or an import add-on), Evolution, Dovecot
and Python's `mailbox` module open it. Spam is not archived: the Trash rule deletes it."""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from saraban_mail import mailbox_space
from saraban_mail.config import Config
from saraban_mail.journal import Journal
from saraban_mail.mailbox import ImapMailbox
from saraban_mail.record import Record

FETCH = 20  # messages per FETCH of whole bodies


@dataclass
class ArchiveReport:
    archived: int = 0
    deleted: int = 0
    gone: int = 0  # no longer on the server when their turn came (a clerk deleted them)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"archived {self.archived} message(s), deleted {self.deleted} from the server"
                + (f", {self.gone} already gone" if self.gone else ""))


def cutoff(now: datetime, months: int) -> datetime:
    """The same day `months` months back (the month's last day when it has no such day)."""
    month = now.month - months
    year = now.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for day in range(now.day, 27, -1):
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return now.replace(year=year, month=month, day=min(now.day, 28))


def parse_age(text: str) -> int:
    """'12m' or '12' (months), '2y' (years): months."""
    found = re.fullmatch(r"\s*(\d+)\s*([my]?)\s*", text.lower())
    if not found or int(found.group(1)) < 1:
        raise ValueError(f"--older-than takes months such as 12m or years such as 2y, "
                         f"not {text!r}")
    return int(found.group(1)) * (12 if found.group(2) == "y" else 1)


def file_name(folder: str, uidvalidity: int, uid: str, received: datetime) -> str:
    """The copy's name, the same however often it is written: a rerun after a crash
    overwrites its own copy, never adds a second. ':2,S': read, as Maildir marks it."""
    safe = re.sub(r"[^A-Za-z0-9]", "_", folder)
    return f"{int(received.timestamp())}.{safe}-{uidvalidity}-{uid}.saraban:2,S"


def _write(root: Path, month: str, name: str, data: bytes) -> Path:
    folder = root / month
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = folder / "tmp" / name.split(":")[0]
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    target = folder / "cur" / name
    os.replace(temporary, target)
    descriptor = os.open(folder / "cur", os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself survives a power cut
    finally:
        os.close(descriptor)
    return target


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(root: Path, relative: str, sha: str) -> bool:
    path = root / relative
    return bool(relative) and path.exists() and _sha(path.read_bytes()) == sha


def archive(config: Config, journal: Journal, box: ImapMailbox, now: datetime, months: int,
            limit: int = 1_000_000) -> ArchiveReport:
    """Copy, verify, journal, delete: in that order for every message, so an interruption
    anywhere loses nothing and deletes nothing whose copy was not verified."""
    report = ArchiveReport()
    root = config.archive.dir
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    report.deleted += _delete_verified(config, journal, box, now, report)
    folders = [f for f in (box.folders.inbox, *box.folders.extra) if f]
    # In the agency's time zone, as the journal's receipt times are written (compared as text).
    before = cutoff(now.astimezone(ZoneInfo(config.office_hours.timezone)), months)
    while report.archived + report.gone < limit:
        done_before = report.archived + report.gone
        rows = journal.archivable(folders, before, min(limit - report.archived - report.gone,
                                                       200))
        if not rows:
            break
        groups: dict[tuple[str, int], list] = defaultdict(list)
        for row in rows:
            groups[(row["folder"], row["uidvalidity"])].append(row)
        for (folder, validity), group in groups.items():
            for start in range(0, len(group), FETCH):
                batch = group[start:start + FETCH]
                got = mailbox_space.fetch_exact(box, folder, validity,
                                                [int(r["uid"]) for r in batch])
                with journal.transaction():
                    for row in batch:
                        raw = got.get(int(row["uid"]))
                        record = Record.from_json(row["record"])
                        if raw is None:  # gone from the server: nothing left to copy
                            journal.add_archived(folder, validity, row["uid"], row["message"],
                                                 record.message_id, "", "", now)
                            journal.mark_archived_deleted(folder, validity, [row["uid"]], now)
                            report.gone += 1
                            continue
                        sha = _sha(raw)
                        month = record.received_at.strftime("%Y-%m")
                        path = _write(root, month, file_name(folder, validity, row["uid"],
                                                             record.received_at), raw)
                        relative = str(path.relative_to(root))
                        if not _verified(root, relative, sha):
                            report.problems.append(f"{folder} UID {row['uid']}: the copy in "
                                                   f"{path} does not match; left on the server")
                            continue
                        journal.add_archived(folder, validity, row["uid"], row["message"],
                                             record.message_id, relative, sha, now)
                        report.archived += 1
                report.deleted += _delete_verified(config, journal, box, now, report)
        if report.archived + report.gone == done_before:
            break  # what is left could not be copied: it stays on the server, reported
    return report


def _delete_verified(config: Config, journal: Journal, box: ImapMailbox, now: datetime,
                     report: ArchiveReport) -> int:
    """Delete from the server what the journal says was archived and the archive still
    holds, byte for byte; a copy that is missing or changed keeps its mail on the server."""
    if not mailbox_space.can_delete_exactly(box):
        pending = journal.archived_not_deleted()
        if pending and not any("UIDPLUS" in p for p in report.problems):
            report.problems.append(f"{len(pending)} archived message(s) left on the server: it "
                                   "has no UIDPLUS (UID EXPUNGE), and a plain EXPUNGE would also "
                                   "remove what a person marked deleted")
        return 0
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    for row in journal.archived_not_deleted():
        if _verified(config.archive.dir, row["file"], row["sha256"]):
            groups[(row["folder"], row["uidvalidity"])].append(row["uid"])
        else:
            line = (f"{row['folder']} UID {row['uid']}: its archived copy "
                    f"{row['file'] or '(none)'} is missing or changed: not deleted")
            if line not in report.problems:
                report.problems.append(line)
    deleted = 0
    for (folder, validity), uids in groups.items():
        mailbox_space.delete_exactly(box, folder, validity, [int(u) for u in uids])
        with journal.transaction():
            journal.mark_archived_deleted(folder, validity, uids, now)
        deleted += len(uids)
    return deleted


def where(config: Config, journal: Journal, message: int,
          when: Callable[[str], str] = str) -> list[str]:
    """For `show`, once a message is archived: where its copy is (a line shaped like the
    matter's history: time, what, who, detail), and the record kept of it at registration."""
    lines = []
    for row in journal.archived_of(message):
        if row["file"]:
            state = "deleted from the server" if row["deleted_at"] else "still on the server"
            lines.append(f"{when(row['archived_at'])}  archived  (service)  "
                         f"{config.archive.dir / row['file']}; {row['folder']} UID {row['uid']}, "
                         f"{state}; SHA-256 {row['sha256']}")
    kept = journal.record_file(message)
    if lines and kept is not None and kept["file"]:
        lines.append(f"{when(kept['kept_at'])}  kept  (service)  "
                     f"{config.paths.records_dir / kept['file']}; SHA-256 {kept['sha256']}")
    return lines

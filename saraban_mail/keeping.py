"""Keeping the records: what the office holds (by retention kind), purging what is due,
and the yearly disposal list (บัญชีหนังสือขอทำลาย) the head of agency approves first.

retention.py decides; this module finds the files, dates them from the journal, deletes
and notes each purge in the journal (table `purges`, and an event of the matter)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path

from saraban_mail.config import Config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.matters import CANCELLED, DISPOSED, RESULT_SENT
from saraban_mail.retention import KINDS, PERSONAL, Due, Item, RetentionError, due

# A matter in one of these states is closed: evidence counted from its close ages out.
CLOSED = (RESULT_SENT, DISPOSED, CANCELLED)
# A register workbook is never deleted by a purge, whatever asks for it.
REGISTER_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")


class KeepingError(SarabanError):
    """A purge or disposal list that cannot be done as asked."""


@dataclass(frozen=True)
class Purged:
    due: Due
    sha256: str


def _date(moment: str | None, tz: tzinfo) -> date | None:
    return datetime.fromisoformat(moment).astimezone(tz).date() if moment else None


def _mtime(path: Path, tz: tzinfo) -> date:
    return datetime.fromtimestamp(path.stat().st_mtime, tz).date()


def _files(folder: Path) -> Iterator[Path]:
    """Every file under `folder` but hidden ones, in name order. os.walk and string keys:
    pathlib's rglob, is_file and comparisons cost `status` most of a second for a year's
    records."""
    found: list[str] = []
    for root, _dirs, names in os.walk(folder):
        found += [os.path.join(root, name) for name in names if not name.startswith(".")]
    yield from (Path(name) for name in sorted(found))


def archive_dir(config: Config) -> Path | None:
    """The mailbox archive's folder ([archive] dir), where this installation has one."""
    section = getattr(config, "archive", None)
    folder = getattr(section, "dir", None)
    return Path(folder) if folder else None


def inventory(config: Config, journal: Journal, tz: tzinfo, subjects: bool = True) -> list[Item]:
    """Every file a retention kind covers, dated from the journal where it knows the date."""
    base = config.source or Path.cwd()
    facts = journal.message_facts(subjects)
    by_prefix = {row["identity"][:20]: row for row in facts}
    by_ref = {row["identity"][:12]: row for row in facts}
    by_identity = {row["identity"]: row for row in facts}
    by_receipt = {(row["receipt_year"], row["receipt_no"]): row for row in facts
                  if row["receipt_no"] is not None}
    closed = {(m["year"], m["receipt_no"]): _date(m["last_at"], tz)
              for m in journal.matters() if m["state"] in CLOSED}

    prefix = str(base).rstrip(os.sep) + os.sep

    def ref(path: Path) -> str:
        text = str(path)
        return text[len(prefix):] if text.startswith(prefix) else text

    def of_receipt(kind: str, path: Path, year: int | None, number: int | None,
                   book: str = "incoming") -> Item:
        row = by_receipt.get((year, number)) if book == "incoming" else None
        created = _date(row["official_received_at"], tz) if row else None
        return Item(kind, ref(path), created or _mtime(path, tz), closed.get((year, number)),
                    year, number, book, (row["subject"] or "") if row else "")

    items = []
    for path in _files(config.paths.records_dir):
        found = re.search(r"(\d+)", path.stem)
        year = int(path.parent.name) if path.parent.name.isdigit() else None
        items.append(of_receipt("request_records", path, year, int(found.group(1)) if found else None))
    for path in _files(config.paths.data_dir / "attachments"):
        row = by_prefix.get(path.parent.name)
        items.append(of_receipt("attachments", path, row["receipt_year"] if row else None,
                                row["receipt_no"] if row else None))
    for path in _files(config.paths.data_dir / "matters"):
        found = re.fullmatch(r"(\d{4})-(\d+)", path.parent.name)
        year, number = (int(found.group(1)), int(found.group(2))) if found else (None, None)
        items.append(of_receipt(_evidence_kind(journal, year, number, path.name), path, year, number))
    for path in [*_files(config.paths.data_dir / "review"),
                 *_files(config.paths.register_dir / "review")]:
        row = by_identity.get(path.stem) or by_ref.get(path.stem.removeprefix("SM-"))
        decided = _date(row["decided_at"], tz) if row else None
        items.append(Item("review_copies", ref(path), _mtime(path, tz), decided,
                          row["receipt_year"] if row else None, row["receipt_no"] if row else None,
                          subject=(row["subject"] or "") if row else ""))
    for path in _files(config.results.outbox_dir / "sent"):
        found = re.match(r"(\d+)[-_](\d{4})", path.relative_to(config.results.outbox_dir / "sent")
                         .parts[0])
        year, number = (int(found.group(2)), int(found.group(1))) if found else (None, None)
        item = of_receipt("result_pdfs", path, year, number)
        items.append(Item(item.kind, item.ref, _mtime(path, tz), item.closed, year, number,
                          subject=item.subject))
    archive = archive_dir(config)
    for path in _files(archive) if archive else []:
        items.append(Item("mail_archive", ref(path), _mtime(path, tz)))
    for path in _files(config.paths.data_dir / "logs"):
        items.append(Item("logs", ref(path), _mtime(path, tz)))
    return items


def _evidence_kind(journal: Journal, year: int | None, number: int | None, name: str) -> str:
    if year is not None and number is not None:
        for event in journal.events(year, number):
            detail = json.loads(event["detail"])
            if name in detail.get("evidence", []) and detail.get("method") == "video_call":
                return "video_call_images"
    return "identity_evidence"


def table(config: Config) -> dict[str, str]:
    return config.retention.model_dump()


def due_now(config: Config, journal: Journal, today: date, tz: tzinfo) -> list[Due]:
    return due(inventory(config, journal, tz), table(config), today)


def path_of(config: Config, ref: str) -> Path:
    path = Path(ref)
    return path if path.is_absolute() else (config.source or Path.cwd()) / path


def _refuse_registers(config: Config, path: Path) -> None:
    """The registers are never purged: a workbook under register/ is refused outright."""
    inside = config.paths.register_dir.resolve() in path.resolve().parents
    if inside and path.suffix.lower() in REGISTER_SUFFIXES:
        raise RetentionError(f"{path}: a register is never purged")


def purge(config: Config, journal: Journal, chosen: list[Due], now: datetime, actor: str,
          list_year: int | None = None) -> list[Purged]:
    """Delete each chosen item, noting it first (what, when, by which rule): a purge cut
    short is finished by the next one and noted once."""
    done = []
    for item in chosen:
        path = path_of(config, item.item.ref)
        _refuse_registers(config, path)
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        noted = any(p["ref"] == item.item.ref and p["sha256"] == digest for p in journal.purges())
        if not noted:
            with journal.transaction():
                journal.note_purge(ref=item.item.ref, kind=item.item.kind, rule=item.rule,
                                   sha256=digest, year=item.item.year, number=item.item.number,
                                   book=item.item.book, now=now, actor=actor, list_year=list_year)
                if item.item.kind == "result_pdfs" and item.item.number is not None:
                    # The same PDF is in the journal, in the mail that carried it.
                    journal.erase_result_mail(item.item.year or 0, item.item.number)
                if (item.item.book == "incoming" and item.item.number is not None
                        and item.item.year is not None
                        and journal.events(item.item.year, item.item.number)):
                    journal.add_event(item.item.year, item.item.number, kind="record_purged",
                                      actor=actor, now=now,
                                      detail={"ref": item.item.ref, "rule": item.rule})
        path.unlink()
        _drop_empty(path.parent, config)
        done.append(Purged(item, digest))
    return done


def _drop_empty(folder: Path, config: Config) -> None:
    roots = {config.paths.data_dir, config.paths.register_dir, config.paths.records_dir,
             config.results.outbox_dir / "sent", config.paths.data_dir / "review"}
    while folder not in roots and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def unapproved(chosen: list[Due]) -> tuple[list[Due], list[Due]]:
    """(what the service purges itself, what waits for the head's approval)."""
    return ([d for d in chosen if not d.needs_approval], [d for d in chosen if d.needs_approval])


# -- the disposal list (บัญชีหนังสือขอทำลาย) ---------------------------------------------


def make_list(config: Config, journal: Journal, year: int, now: datetime, tz: tzinfo) -> list[dict]:
    """The records needing approval that are due by the end of Buddhist-era `year`, kept
    in the journal (made again until approved) and written to register/to-dispose.xlsx."""
    listed = journal.disposal_list(year)
    if listed is not None and listed["approved_at"]:
        raise KeepingError(f"the disposal list of {year} was approved on "
                           f"{listed['approved_at'][:10]}; it cannot be made again")
    end = date(year - 543, 12, 31)
    items = [_listed(d) for d in due(inventory(config, journal, tz), table(config), end)
             if d.needs_approval]
    with journal.transaction():
        journal.save_disposal_list(year, items, now)
    return items


def _listed(d: Due) -> dict:
    return {"ref": d.item.ref, "kind": d.item.kind, "rule": d.rule, "due_on": d.due_on.isoformat(),
            "created": d.item.created.isoformat(), "year": d.item.year, "number": d.item.number,
            "book": d.item.book, "subject": d.item.subject}


def approve(config: Config, journal: Journal, year: int, by: str, now: datetime,
            actor: str) -> list[Purged]:
    """Record the head's approval of the list of `year`, then purge what it lists."""
    listed = journal.disposal_list(year)
    if listed is None:
        raise KeepingError(f"no disposal list for {year}: make it first (purge --list {year})")
    if not by.strip():
        raise KeepingError("say who approved the list (--by NAME)")
    with journal.transaction():
        journal.approve_disposal_list(year, by.strip(), now)
    listed = journal.disposal_list(year)
    assert listed is not None
    chosen = [Due(Item(i["kind"], i["ref"], date.fromisoformat(i["created"]), None, i["year"],
                       i["number"], i["book"], i["subject"]),
                  date.fromisoformat(i["due_on"]), i["rule"], True)
              for i in json.loads(listed["items"])]
    return purge(config, journal, chosen, now, f"{actor}; approved by {listed['approved_by']}",
                 list_year=year)


# -- what is held, for status and the data custodian ----------------------------------------


def held(config: Config, journal: Journal, today: date, tz: tzinfo) -> dict:
    """Personal data held: count and oldest item by kind, and who answers for it."""
    by_kind: dict[str, dict] = {}
    for item in inventory(config, journal, tz, subjects=False):
        if item.kind not in PERSONAL:
            continue
        entry = by_kind.setdefault(item.kind, {"count": 0, "oldest": item.created.isoformat()})
        entry["count"] += 1
        entry["oldest"] = min(entry["oldest"], item.created.isoformat())
    for entry in by_kind.values():
        entry["oldest_days"] = (today - date.fromisoformat(entry["oldest"])).days
    return {"custodian": config.agency.data_custodian,
            "by_kind": {kind: by_kind[kind] for kind in KINDS if kind in by_kind},
            "purged": len(journal.purges())}

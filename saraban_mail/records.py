"""The request as a record: every registered mail kept as it arrived, records/YEAR/rx-NNNN.eml,
its SHA-256 in the journal and in the register row, so that archiving the mailbox loses nothing.

Intake writes the bytes under records/incoming/ by the mail's identity (the number comes
later); once numbered, `keep` gives the file its receipt number. Both steps repeat safely."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from saraban_mail.config import Config
from saraban_mail.files import private_dir, private_write, shared_dir, shared_write
from saraban_mail.journal import Journal
from saraban_mail.record import Record

log = logging.getLogger("saraban_mail")


def pending_path(config: Config, identity: str) -> Path:
    return config.paths.records_dir / "incoming" / f"{identity}.eml"


def keep_pending(config: Config, identity: str, raw: bytes) -> None:
    """At intake: the mail's bytes under records/incoming/ (always private). With [sharing]
    records the folder above is made the clerks' first, so that they can reach YEAR/."""
    if config.sharing.records:
        shared_dir(config.paths.records_dir, config.sharing)
    private_write(pending_path(config, identity), raw)


def name(year: int, number: int) -> str:
    """The record's file, relative to paths.records_dir: 2569/rx-0012.eml."""
    return f"{year}/rx-{number:04d}.eml"


def register_line(year: int, number: int, record: Record) -> str:
    """The register row's line (หมายเหตุ) naming the kept mail and its hash."""
    if not record.raw_sha256:
        return ""
    return f"อีเมลต้นฉบับเก็บที่ records/{name(year, number)} (SHA-256 {record.raw_sha256})"


@dataclass(frozen=True)
class Kept:
    message: int
    file: str  # '' when the mail predates this (nothing was kept at intake)
    sha256: str
    size: int
    pending: Path  # the copy intake kept by identity, removed once this is journaled


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep(config: Config, journal: Journal, now: datetime) -> list[Kept]:
    """Give each numbered message's mail its record file, verified by hash, then journal it
    and remove the pending copy. A crash at any point leaves one of the two files, found
    again here; a review copy (data/review/) stays where the review list points to it."""
    kept: list[Kept] = []
    root = config.paths.records_dir
    moved = False
    for row in journal.records_to_keep():
        record = Record.from_json(row["record"])
        target = root / name(row["receipt_year"], row["receipt_no"])
        pending = pending_path(config, row["identity"])
        review = config.paths.data_dir / "review" / f"{row['identity']}.eml"
        source = next((p for p in (pending, review) if p.exists()), None)
        if not (target.exists() and _sha(target) == record.raw_sha256) and source is not None:
            if config.sharing.records:
                shared_write(target, source.read_bytes(), config.sharing)
            elif source == pending:
                # A rename within records/: atomic, and no second copy of the bytes. The
                # pending name is gone at once; a crash before the journal's note finds the
                # record by its name and hash at the next poll.
                private_dir(target.parent)
                os.replace(pending, target)
            else:  # the review copy stays where the review list points to it
                private_dir(target.parent)
                temporary = target.with_suffix(".tmp")
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as out:
                    out.write(source.read_bytes())
                os.replace(temporary, target)
            moved = True
        if target.exists():
            sha = _sha(target)
            if record.raw_sha256 and sha != record.raw_sha256:
                log.warning("%s: its hash differs from the mail's at intake", target)
            kept.append(Kept(row["id"], name(row["receipt_year"], row["receipt_no"]), sha,
                             target.stat().st_size, pending))
        else:  # numbered before records were kept: the mailbox (or archive) holds it
            kept.append(Kept(row["id"], "", "", 0, pending))
    if moved:
        # One flush to disk for every record of this poll before the journal notes them
        # (a fsync per file cost 10 ms each: seconds for a morning's mail).
        os.sync()
    # One transaction for all (an old journal's first poll notes thousands), then the
    # pending copies go: a crash before the commit only means doing the above again.
    with journal.transaction():
        for each in kept:
            journal.add_record_file(each.message, each.file, each.sha256, each.size, now)
    for each in kept:
        if each.file and each.pending.exists():
            each.pending.unlink()
    return kept

"""Backup and restore: a dated, verified snapshot of everything the office keeps (journal,
registers, records, data, outbox, rules, templates, the config without its secrets).

A folder, not one archive file: each copy is checked by its SHA-256 against MANIFEST.json,
a restore or a person takes one file without unpacking the rest, and a damaged disk loses
a file, not the whole backup. Written as `.NAME.partial` and renamed once verified."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.config_text import decode_config, safe_config
from saraban_mail.errors import SarabanError
from saraban_mail.files import private_dir, share_file, shared_dir
from saraban_mail.retention import backups_to_keep

NAME = re.compile(r"^saraban-backup-(\d{8})-(\d{6})$")
MANIFEST = "MANIFEST.json"
JOURNAL = "data/journal.sqlite3"
# Never copied: the poll's lock, the journal's live files (copied by SQLite's backup API
# instead), OAuth tokens (renewed by `saraban-mail auth`), office programs' lock files.
SKIP = re.compile(r"^(poll\.lock|journal\.sqlite3(-wal|-shm|-journal)?|oauth-token.*\.json|"
                  r"~\$.*|\.~lock\..*#)$")
# Where each folder goes inside a backup (and a restored office): the default layout.
FOLDERS = ("data", "register", "records", "outbox", "archive", "rules", "templates")


class BackupError(SarabanError):
    """A backup or restore that cannot be made or does not verify."""


@dataclass(frozen=True)
class Made:
    folder: Path
    files: int
    size: int
    rows: dict[str, int]
    pruned: tuple[Path, ...]


def folders_of(config: Config) -> dict[str, Path]:
    """What each folder of a backup is copied from on this installation."""
    from saraban_mail.keeping import archive_dir

    found = {"data": config.paths.data_dir, "register": config.paths.register_dir,
             "records": config.paths.records_dir, "outbox": config.results.outbox_dir,
             "rules": config.paths.rules_dir, "templates": config.paths.templates_dir}
    archive = archive_dir(config)
    if archive is not None:
        found["archive"] = archive
    return found


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy(source: Path, target: Path) -> str:
    """Copy a file private to the service user (the backup holds personal data), synced to
    the disk; its modification time kept (retention dates some files by it). Its SHA-256."""
    private_dir(target.parent)
    digest = hashlib.sha256()
    with open(source, "rb") as inp:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            while chunk := inp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        stamp = os.fstat(inp.fileno())
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    return digest.hexdigest()


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not SKIP.match(path.name) and ".partial" not in path.parts[-2:]:
                yield path


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as inp:
        while chunk := inp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _snapshot_journal(data_dir: Path, target: Path) -> dict[str, int]:
    """The journal through SQLite's online backup, in one read transaction: consistent, and
    in WAL mode a poll writing meanwhile is not blocked. Its row counts, from that snapshot."""
    source_path = data_dir / "journal.sqlite3"
    if not source_path.exists():
        raise BackupError(f"no journal at {source_path}: nothing to back up")
    private_dir(target.parent)
    source = sqlite3.connect(f"{source_path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                             timeout=30)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        source.execute("BEGIN")
        tables = [row[0] for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {t: source.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        source.backup(copy)
        source.execute("COMMIT")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    os.chmod(target, 0o600)
    _fsync(target)
    return rows


def _check_journal(path: Path, rows: dict[str, int]) -> None:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the journal copy {path} is damaged: {verdict}")
        for table, count in rows.items():
            found = connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
            if found != count:
                raise BackupError(f"the journal copy {path}: {table} has {found} rows, not {count}")
    finally:
        connection.close()


def _workbook_opens(path: Path) -> bool:
    import openpyxl

    try:
        openpyxl.load_workbook(path, read_only=True).close()
        return True
    except Exception:  # any reason a workbook does not open: copied again once
        return False


README = """saraban-mail backup made {made} of {agency}

This folder is a complete copy of the office's records: data/journal.sqlite3 (the journal),
register/ (the registers), records/ (each registered mail as it arrived), data/ (attachments,
identity evidence, review copies), outbox/ (results), rules/, templates/ and config.toml.
It holds personal data: keep it where only the custodian and the administrator can read it.
MANIFEST.json lists every file with its SHA-256.

Not copied, to be supplied again after a restore:
{dropped}
- OAuth2 tokens, if the mailbox uses OAuth2: run `saraban-mail auth` again.

Restore onto an empty folder:
    saraban-mail restore {name} /path/to/empty/folder
then run the service with --config /path/to/empty/folder/config.toml.
"""


def make_backup(config: Config, config_file: Path, dest: Path, now: datetime) -> Made:
    """A dated backup under dest, verified by reading it back, then older ones pruned."""
    name = f"saraban-backup-{now:%Y%m%d-%H%M%S}"
    final = dest / name
    if final.exists():
        raise BackupError(f"{final} exists already")
    partial = dest / f".{name}.partial"
    try:
        private_dir(dest)
        with _only_one(dest):
            _make(config, config_file, partial, now, name)
            verify(partial)
            os.rename(partial, final)
            _fsync(dest)
    except OSError as exc:
        raise BackupError(f"cannot write the backup in {dest}: {exc.strerror or exc}") from None
    manifest = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
    pruned = prune(dest, config)
    return Made(final, len(manifest["files"]), verify(final), manifest["journal_rows"],
                tuple(pruned))


@contextmanager
def _only_one(dest: Path) -> Iterator[None]:
    """One backup at a time into a folder (the daemon's and a person's); holding it, the
    folders a killed backup left half written are removed."""
    descriptor = os.open(dest / ".saraban-backup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: one scheduled backup at a time
            pass
        except OSError:
            raise BackupError(f"another backup is being written to {dest}") from None
        for half in dest.glob(".saraban-backup-*.partial"):
            shutil.rmtree(half)
        yield
    finally:
        os.close(descriptor)


def _make(config: Config, config_file: Path, partial: Path, now: datetime, name: str) -> None:
    """Everything into `partial`, with MANIFEST.json written last."""
    private_dir(partial)
    rows = _snapshot_journal(config.paths.data_dir, partial / JOURNAL)
    manifest: dict[str, str] = {JOURNAL: _hash(partial / JOURNAL)}
    for role, folder in folders_of(config).items():
        for path in _walk(folder):
            relative = f"{role}/{path.relative_to(folder).as_posix()}"
            manifest[relative] = _copy(path, partial / relative)
            if path.suffix == ".xlsx" and not _workbook_opens(partial / relative):
                manifest[relative] = _copy(path, partial / relative)  # caught mid-save
                if not _workbook_opens(partial / relative):
                    raise BackupError(f"{path} does not open as a workbook")
    raw = tomllib.loads(decode_config(config_file.read_bytes(), config_file))
    text, dropped = safe_config(raw)
    extra = {"config.toml": text.encode(), "README.txt": README.format(
        made=now.isoformat(timespec="seconds"), agency=config.agency.name_en, name=name,
        dropped="\n".join([f"- {d}" for d in dropped] + [
            "- passwords given by SARABAN_* variables, and password files "
            "(imap/smtp password_file: only their names were kept)"])).encode()}
    for relative, data in extra.items():
        (partial / relative).write_bytes(data)
        os.chmod(partial / relative, 0o600)
        _fsync(partial / relative)
        manifest[relative] = hashlib.sha256(data).hexdigest()
    (partial / MANIFEST).write_text(json.dumps(
        {"made_at": now.isoformat(), "journal_rows": rows, "files": manifest},
        ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(partial / MANIFEST, 0o600)
    _fsync(partial / MANIFEST)


def verify(folder: Path) -> int:
    """Read a backup back: every file against its SHA-256, the journal's integrity and row
    counts. Its size in bytes; BackupError at the first difference."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} is not a saraban-mail backup (no readable {MANIFEST}): "
                          f"{exc}") from None
    size = 0
    for relative, digest in manifest["files"].items():
        path = folder / relative
        if not path.is_file():
            raise BackupError(f"{folder}: {relative} is missing")
        if _hash(path) != digest:
            raise BackupError(f"{folder}: {relative} differs from what was backed up")
        size += path.stat().st_size
    _check_journal(folder / JOURNAL, manifest["journal_rows"])
    return size


def prune(dest: Path, config: Config) -> list[Path]:
    """Remove the dated backups the [backup] keep_* rule no longer keeps."""
    found: dict[date, list[Path]] = {}
    for path in dest.iterdir():
        matched = NAME.match(path.name)
        if matched and path.is_dir():
            found.setdefault(datetime.strptime(matched.group(1), "%Y%m%d").date(), []).append(path)
    keep = backups_to_keep(found, config.backup.keep_daily, config.backup.keep_weekly,
                           config.backup.keep_monthly)
    removed = []
    for day, paths in found.items():
        paths.sort()
        # A day kept keeps its last backup; a day not kept loses them all.
        for path in paths[:-1] if day in keep else paths:
            shutil.rmtree(path)
            removed.append(path)
    return sorted(removed)


def restore(source: Path, target: Path) -> list[str]:
    """Copy a verified backup onto an empty folder: a working office (config.toml at its
    top). What must be supplied again, as README.txt in the backup says."""
    from saraban_mail.config import load_config

    verify(source)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore only onto an empty folder")
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    if not target.exists():
        # Like an installed office: the clerks pass through it to register/ and outbox/;
        # data/, records/ and config.toml inside stay the service's alone.
        target.mkdir(parents=True)
        os.chmod(target, 0o755)
    _copy(source / "config.toml", target / "config.toml")
    config = load_config(target / "config.toml")
    for relative in manifest["files"]:
        # What clerks open (register/, outbox/) gets their group and modes back ([sharing]).
        clerks = relative.split("/")[0] in ("register", "outbox")
        if clerks:
            shared_dir((target / relative).parent, config.sharing)
        _copy(source / relative, target / relative)
        if clerks:
            share_file(target / relative, config.sharing)
    readme = (source / "README.txt").read_text(encoding="utf-8")
    return [line[2:] for line in readme.split("supplied again")[-1].splitlines()
            if line.startswith("- ")]


def last_backup(config: Config) -> dict[str, Any] | None:
    """What the last backup noted in the journal (when, where), or None."""
    from saraban_mail.service import noted

    return noted(config, "last_backup")


def note_backup(config: Config, made: Made, now: datetime) -> None:
    from saraban_mail.journal import Journal

    journal = Journal.open(config.paths.data_dir)
    try:
        journal.set_meta("last_backup", json.dumps(
            {"at": now.isoformat(), "folder": str(made.folder), "files": made.files}))
    finally:
        journal.close()


def warnings(config: Config, moment: datetime) -> list[str]:
    """For check and status: a backup destination that is not there (a disk not mounted),
    or the daemon's backup overdue. (An unnamed custodian is shown by status, not warned.)"""
    found = []
    if config.backup.dest is not None:
        dest = config.backup.dest
        if not dest.is_dir() or not os.access(dest, os.W_OK):
            found.append(f"the backup folder {dest} is missing or not writable "
                         "(is the disk mounted, the share connected?)")
        noted = last_backup(config)
        if noted is None:
            found.append("[backup] dest is set but no backup was made yet")
        elif (moment - datetime.fromisoformat(noted["at"])).days >= 4:
            found.append(f"the last backup is of {noted['at'][:10]}, more than 3 days ago")
    return found


def after_poll(config: Config, config_file: Path, cal: BusinessCalendar, times: list[time],
               moment: datetime) -> Made | None:
    """The daemon's backup ([backup] dest): after the afternoon poll, once a working day
    (schedule.backup_due). None when none is due or none is asked."""
    from saraban_mail.schedule import backup_due

    if config.backup.dest is None:
        return None
    noted = last_backup(config)
    last = datetime.fromisoformat(noted["at"]).astimezone(cal.tz).date() if noted else None
    if not backup_due(cal, times, moment, last):
        return None
    made = make_backup(config, config_file, config.backup.dest, moment)
    note_backup(config, made, moment)
    return made

"""Register notes: a line for a register row (a clerk's step in การปฏิบัติ, a mark), kept
in the journal until the workbook is free, then written once. The poll retries (poll/notes.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from saraban_mail.config import Config
from saraban_mail.errors import RegisterError
from saraban_mail.journal import Journal
from saraban_mail.layout import INCOMING, KINDS, Look, service_ref, workbook_path

__all__ = ["note_in_register", "write_pending_notes"]


def note_in_register(config: Config, year: int, notes: list[tuple[int, str]],
                     journal: Journal, now: datetime | None = None,
                     field: str = "action", book: str = INCOMING.key) -> list[str]:
    """A line in each incoming row's `field` (การปฏิบัติ by default): queued in the journal,
    then written at once if the workbook is free, else by the next poll that finds it free
    (poll/notes.py). Returns the problems: a busy workbook is reported, not fatal.
    With book="outgoing" the numbers are send numbers of the outgoing register."""
    moment = now or datetime.now().astimezone()
    with journal.transaction():
        for number, text in notes:
            journal.queue_note(year, number, row_ref(journal, book, year, number), text,
                               moment, field, book)
    return write_pending_notes(journal, config, moment, year=year)


def row_ref(journal: Journal, book: str, year: int, number: int) -> str:
    """The service's reference of the row a note is for; '' for a clerk's paper row."""
    if book != INCOMING.key:
        return journal.result_ref(year, number)
    found = journal.message_of_receipt(year, number)
    return service_ref(found[1]) if found else ""


def write_pending_notes(journal: Journal, config: Config, now: datetime,
                        year: int | None = None) -> list[str]:
    """Write the queued register notes (of `year`, or all) into their workbooks, one save
    per workbook and column; each written one is marked in the journal."""
    from saraban_mail.register import annotate_rows

    groups: dict[tuple[int, str, str], list[Any]] = {}
    for note in journal.pending_notes(year):
        groups.setdefault((note["year"], note["book"], note["field"]), []).append(note)
    problems = []
    settings = config.registers
    for (book_year, book, field), pending in sorted(groups.items()):
        kind = KINDS[book]
        path = workbook_path(config.paths.register_dir, kind, book_year)
        try:
            done = annotate_rows(
                path, kind, field,
                [(n["receipt_no"], n["ref"], n["text"]) for n in pending],
                look=Look.of(settings),
                summary=journal.summary(book_year) if kind is INCOMING else None,
                agency=config.agency.name_th, backups=settings.backups,
                stale_hours=settings.stale_lock_hours, sharing=config.sharing, now=now)
        except RegisterError as exc:
            problems.append(f"{exc}: {len(pending)} note(s) for the register wait and are "
                            "written at the next poll")
            continue
        written = [n["id"] for n in pending if n["receipt_no"] in done]
        with journal.transaction():
            journal.note_written(written, now)
        missing = sorted({n["receipt_no"] for n in pending} - set(done))
        if missing:
            problems.append(f"rows {', '.join(f'{m}/{book_year}' for m in missing)} not found in "
                            f"{path.name} for their note; retried at the next poll")
    return problems

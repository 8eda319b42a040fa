"""Stage 2, numbering: a receipt number (เลขทะเบียนรับ) for each registered message, in order
of official receipt time, after the highest number in the year's workbook and journal.

With its number a message becomes a matter, gets its register row (written by the next
stage) and its acknowledgement, all in one transaction."""

from __future__ import annotations

from saraban_mail import matters, routes
from saraban_mail.calendar import buddhist_year
from saraban_mail.category import REGISTERED, Category
from saraban_mail.errors import RegisterError
from saraban_mail.layout import incoming_path, stamp
from saraban_mail.poll import registering, replying
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.register import highest_number

# The template that acknowledges each registered category.
ACKNOWLEDGEMENT = {Category.VALID: "acknowledgement", Category.WRONG_CHANNEL: "wrong_channel",
                   Category.OFFICIAL_LETTER: "letter_receipt"}


def next_number(in_sheet: int, in_journal: int) -> int:
    """After the highest a clerk typed and the highest the service gave."""
    return max(in_sheet, in_journal) + 1


def run(ctx: Context, report: PollReport) -> None:
    journal = ctx.journal
    pending = journal.unnumbered(tuple(c.value for c in REGISTERED))
    now = ctx.clock()
    if not pending:
        with journal.transaction():  # acknowledgements held back at an earlier poll
            replying.acknowledge(ctx, report, [], now)
        return
    highest: dict[int, int] = {}
    owed: list[replying.Owed] = []
    with journal.transaction():
        for message, identity, record in pending:
            year = buddhist_year(record.official_received_at)
            if year not in highest:
                try:
                    in_sheet = highest_in_sheet(ctx, year)
                except RegisterError as exc:
                    # Without the sheet's numbers a new number could clash with a clerk's.
                    report.problems.append(f"{exc}; receipt numbers for {year} wait")
                    highest[year] = -1
                    continue
                highest[year] = next_number(in_sheet, journal.highest_receipt(year)) - 1
            if highest[year] < 0:
                continue
            number = highest[year] = highest[year] + 1
            journal.set_receipt(message, year, number)
            matters.on_registered(journal, year, number, record, now)
            row = registering.register_row(ctx.config, ctx.calendar, ctx.mailbox.folders.junk,
                                           record, number, identity)
            route = None
            if ctx.rules.units.units:  # units.toml: passed on to the unit, with its SLA
                routed = routes.on_registered(journal, ctx.config, ctx.rules.units,
                                              ctx.calendar, ctx.templates, message, identity,
                                              year, number, record, now)
                route = routed.route
                row |= {"to": routed.to, "due": routed.due.due.isoformat() if routed.due
                        else None, "remarks": f"{row['remarks']}\n{routed.note}"}
            journal.add_register_row(message, year, number, row)
            kind = ACKNOWLEDGEMENT[record.category]
            if record.requester:
                owed.append(replying.Owed(message, kind, record, f"{number}/{year}", route))
        replying.acknowledge(ctx, report, owed, now)


def highest_in_sheet(ctx: Context, year: int) -> int:
    path = incoming_path(ctx.config.paths.register_dir, year)
    noted = ctx.journal.noted_sheet(year, stamp(path))
    if noted is None:  # changed by someone else since: read, and kept for the write
        return highest_number(path, keep=not ctx.dry_run)
    return max((number for number, _ in noted if number is not None), default=0)



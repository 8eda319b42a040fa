"""Stage 4, the clerks' instructions: lines a clerk typed in the register's การปฏิบัติ
("ขอเอกสาร: ...", "ยกเลิกเลขรับ: ...", "แจ้ง: ...", "ส่ง: <unit>"), carried out once each; the due
dates kept up (routes.keep_up); then each register noted.

The note (numbers, references and the file's identity) lets the next poll's numbering and
`status` skip a workbook no one has saved since."""

from __future__ import annotations

from saraban_mail import corrections, matters, progress, results, routes
from saraban_mail.errors import RegisterError
from saraban_mail.layout import INCOMING, incoming_path, stamp
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.register import read_rows, snapshot


def run(ctx: Context, report: PollReport) -> None:
    now, unsettled = ctx.clock(), set()
    target_of = lambda year, number: results.find_target(  # noqa: E731
        ctx.journal, ctx.config, year, number)
    for year in ctx.journal.register_years():
        path = incoming_path(ctx.config.paths.register_dir, year)
        if not path.exists() or ctx.journal.sheet_settled(year, stamp(path)):
            continue  # no one saved it since every instruction in it was carried out
        try:
            rows = read_rows(path, INCOMING)[1]
        except RegisterError as exc:
            report.problems.append(str(exc))
            continue
        for problems, failed in (
            matters.documents_asked_in(ctx.journal, ctx.config, ctx.templates, ctx.calendar,
                                       now, target_of, year, rows),
            corrections.cancellations_in(ctx.journal, ctx.config, ctx.rules, ctx.calendar,
                                         ctx.templates, now, year, path, rows),
            progress.notices_in(ctx.journal, ctx.config, ctx.rules.units, ctx.templates, now,
                                target_of, year, path, rows),
            routes.rerouted_in(ctx.journal, ctx.config, ctx.rules.units, ctx.calendar,
                               ctx.templates, now, year, rows),
        ):
            report.problems += problems
            if failed:
                unsettled.add(year)
    # Due dates moved by documents that came, and ครบกำหนด cells as the matters stand.
    report.problems += routes.keep_up(ctx.journal, ctx.config, ctx.calendar, now)
    note_sheets(ctx, unsettled)


def note_sheets(ctx: Context, unsettled: set[int]) -> None:
    """Numbers and references of each register's rows with the file's identity, so that
    the next poll's numbering, its clerk instructions and `status` need not open a
    register no one has changed (unless an instruction in it waits: `unsettled`)."""
    for year in ctx.journal.register_years():
        path = incoming_path(ctx.config.paths.register_dir, year)
        if not path.exists():
            continue
        if ctx.journal.sheet_settled(year, stamp(path)) and year not in unsettled:
            continue  # noted as it is
        try:
            seen, rows = snapshot(path, INCOMING)
        except RegisterError:
            continue  # the instructions stage has reported it
        ctx.journal.note_sheet(year, seen, [(r.number, r.ref) for r in rows],
                               settled=year not in unsettled)

"""Stage 3b, register notes: the lines queued for register rows (a clerk's step noted in
การปฏิบัติ, a mark) that could not be written when queued because a clerk had the workbook open.

Each is written once, when the workbook is free, and marked in the journal."""

from __future__ import annotations

from saraban_mail import register_notes
from saraban_mail.poll.context import Context, PollReport


def run(ctx: Context, report: PollReport) -> None:
    if ctx.journal.pending_notes():
        report.problems += register_notes.write_pending_notes(ctx.journal, ctx.config, ctx.clock())

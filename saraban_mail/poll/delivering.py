"""Stage 7, results: what clerks dropped in outbox/ queued, every queued result sent
(results.py does the work), settled entries moved to outbox/sent/, and the inquiry log."""

from __future__ import annotations

from saraban_mail import results
from saraban_mail.poll import inquiries
from saraban_mail.poll.context import Context, PollReport


def run(ctx: Context, report: PollReport) -> None:
    report.problems += results.queue_outbox(ctx.journal, ctx.config, ctx.templates, ctx.clock)
    report.problems += results.deliver(ctx.journal, ctx.config, ctx.transport, ctx.mailbox,
                                       ctx.calendar, ctx.clock)
    results.settle_outbox(ctx.journal, ctx.config)
    report.problems += inquiries.write_inquiries(ctx.journal, ctx.config, ctx.calendar, ctx.clock)

"""Stage 5, the daily follow-up: once a day, overdue documents (one reminder) and matters
silent past the hold (proposed for disposal). The work itself is in matters.py."""

from __future__ import annotations

import logging

from saraban_mail import followup, results
from saraban_mail.errors import RegisterError
from saraban_mail.poll.context import Context, PollReport

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport) -> None:
    today = ctx.clock().astimezone(ctx.calendar.tz).date().isoformat()
    if ctx.journal.get_meta("housekeeping") == today:
        return
    try:
        findings = followup.housekeeping(
            ctx.journal, ctx.config, ctx.templates, ctx.calendar, ctx.clock(),
            lambda year, number: results.find_target(ctx.journal, ctx.config, year, number),
        )
    except RegisterError as exc:  # the disposal list could not be saved: again next poll
        report.problems.append(f"daily follow-up: {exc}; tried again at the next poll")
        return
    for finding in findings:
        log.warning("matter %d/%d: %s", finding.number, finding.year, finding.text)
    ctx.journal.set_meta("housekeeping", today)

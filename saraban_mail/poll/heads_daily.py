"""Stage 5b, the unit heads' daily mail (opt-in, `[notices] heads_daily`): once a working
day, each unit head is told the unit's overdue matters and those due soon (unit_heads.py)."""

from __future__ import annotations

from saraban_mail import unit_heads
from saraban_mail.poll.context import Context, PollReport


def run(ctx: Context, report: PollReport) -> None:
    if not ctx.config.notices.heads_daily or not ctx.rules.units.units:
        return
    today = ctx.clock().astimezone(ctx.calendar.tz).date()
    if ctx.journal.get_meta("heads_daily") == today.isoformat():
        return
    if ctx.calendar.is_working_day(today):  # the heads read it at work: no weekend mail
        mailed = unit_heads.send_daily(ctx.journal, ctx.config, ctx.rules.units, ctx.templates,
                                       ctx.calendar, ctx.clock())
        if mailed:
            report.notes.append(f"overdue list mailed to {len(mailed)} unit head(s): "
                                + ", ".join(mailed))
    with ctx.journal.transaction():
        ctx.journal.set_meta("heads_daily", today.isoformat())

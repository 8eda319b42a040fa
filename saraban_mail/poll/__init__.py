"""One poll: the driver. It runs the stages in order, times each, and notes the poll.

    watched → intake → reviewing (decisions) → numbering → keeping (records) → registering
            → notes → reviewing (the list) → clerk_instructions → bounces → housekeeping
            → heads_daily → sending
            → registering (acknowledgement times) → delivering (results)
            → mailbox_actions → keeping (space: quota, Trash, archive) → alerts

Each stage is a module of this package with a `run(ctx, report)`: it takes its work from
the journal and marks it done there, so a poll that crashes anywhere is finished by the
next one: nothing is lost, nothing happens twice. A dry run stops after numbering."""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from saraban_mail import schedule
from saraban_mail.poll import (
    alerts,
    bounces,
    clerk_instructions,
    delivering,
    heads_daily,
    housekeeping,
    intake,
    keeping,
    mailbox_actions,
    notes,
    numbering,
    output,
    registering,
    reviewing,
    sending,
    watched,
)
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.register import release

__all__ = ["Context", "PollReport", "poll"]

log = logging.getLogger("saraban_mail")

Stage = Callable[[Context, PollReport], None]


def stages(ctx: Context, poll_id: str) -> list[tuple[str, Stage]]:
    """The stages of this poll, by the name its -v log gives their times."""
    found: list[tuple[str, Stage]] = []
    if not ctx.dry_run and ctx.config.watch:
        found.append(("watch", watched.run))
    found.append(("intake", functools.partial(intake.run, poll_id=poll_id)))
    if not ctx.dry_run:
        found.append(("review", reviewing.run))
    found.append(("number", numbering.run))
    if not ctx.dry_run:
        found += [("keep_records", keeping.run_records),
                  ("write_register", registering.run), ("register_notes", notes.run),
                  ("write_review", reviewing.write),
                  ("clerk_instructions", clerk_instructions.run), ("bounces", bounces.run),
                  ("housekeeping", housekeeping.run), ("heads_daily", heads_daily.run),
                  ("send", sending.run),
                  ("register_acks", registering.run_after_send),
                  ("results", delivering.run), ("apply_actions", mailbox_actions.run),
                  ("space", keeping.run), ("alert", alerts.run)]
    return found


def poll(ctx: Context) -> PollReport:
    report = PollReport()
    poll_id = uuid.uuid4().hex
    try:
        for name, stage in stages(ctx, poll_id):
            started = time.perf_counter()
            stage(ctx, report)
            log.debug("stage %s: %.3f s", name, time.perf_counter() - started)
    finally:
        release()  # workbooks kept for a write that did not come
    report.records = [output.handled(ctx.journal, copy)
                      for copy in ctx.journal.copies_of_poll(poll_id)]
    if not ctx.dry_run:
        ended = ctx.clock()
        with ctx.journal.transaction():
            ctx.journal.set_meta("last_poll", json.dumps({
                "at": ended.isoformat(), "handled": len(report.records),
                "problems": report.problems[:20], "notes": report.notes[:20],
            }, ensure_ascii=False))
            ctx.journal.set_meta("poll_times", json.dumps(_poll_times(ctx, ended)))
    return report


def _poll_times(ctx: Context, ended: datetime) -> dict[str, Any]:
    """The next poll times, noted for `status` with the timetable they follow. While the
    last note still covers them they are taken from it (an idle poll, a poll between
    scheduled ones): the holiday table is then not loaded."""
    times = schedule.poll_times(ctx.config.schedule.times, ctx.calendar,
                                ctx.config.schedule.before_closing_minutes)
    key = schedule.timetable(ctx.calendar, times)
    last = json.loads(ctx.journal.get_meta("poll_times") or "null")
    upcoming = (schedule.noted_polls(last, key, ended)
                or schedule.next_polls(ctx.calendar, times, ended, schedule.NOTED_POLLS))
    return {"at": ended.isoformat(), "next_polls": [t.isoformat() for t in upcoming],
            "timetable": key}

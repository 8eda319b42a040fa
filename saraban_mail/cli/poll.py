"""The commands that run polls: `poll` (once), `run` (the daemon) and `demo`, and how a
poll's report is printed (a line per message, or JSON Lines; progress bars on a terminal)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.config import config_path, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, last_poll, now, run_poll
from saraban_mail.thaitext import thai_date, thai_datetime

if TYPE_CHECKING:
    from saraban_mail.poll import PollReport

log = logging.getLogger("saraban_mail")


def print_report(report: PollReport, as_json: bool, dry_run: bool = False,
                 log_json: bool = False) -> int:
    """Each handled message, then notes and problems; a dry run says on every line (and in
    every JSON object) that nothing was changed, and closes with a line saying so. With
    --log-format json what goes to stderr is JSON log lines too."""
    if log_json:
        _log_report(report, as_json, dry_run)
    mark = "[dry run, nothing changed] " if dry_run else ""
    for line in report.records:  # each the JSON object of one message (poll/output.py)
        if as_json:
            print(json.dumps(line | {"dry_run": True} if dry_run else line, ensure_ascii=False),
                  flush=True)
        else:
            receipt = f"{line['receipt_no']}/{line['receipt_year']}" if line["receipt_no"] else "-"
            print(f"{mark}{line['category']:<21} {receipt:>9}  {line['folder']}:{line['uid']}  "
                  f"{line['from'] or '?'}  {line['subject'][:60]!r}  "
                  f"[{', '.join(line['actions'])}]")
    if not log_json:
        for note in report.notes:
            print(f"saraban-mail: {mark}note: {note}", file=sys.stderr)
        for problem in report.problems:
            print(f"saraban-mail: {mark}{problem}", file=sys.stderr)
        if not as_json:
            print(f"{mark}{len(report.records)} message(s) "
                  f"{'would be handled' if dry_run else 'handled'}, "
                  f"{len(report.problems)} problem(s)", file=sys.stderr)
        if dry_run:
            print(f"saraban-mail: {DRY_RUN_DONE}", file=sys.stderr)
    return EXIT_PENDING if report.problems else EXIT_OK


DRY_RUN_DONE = "dry run: nothing was changed (no mailbox, register, journal or mail was touched)"


def _log_report(report: PollReport, as_json: bool, dry_run: bool) -> None:
    said = logging.getLogger("saraban_mail.report")
    extra = {"dry_run": True} if dry_run else {}
    for note in report.notes:
        said.info("%s", note, extra=extra)
    for problem in report.problems:
        said.warning("%s", problem, extra=extra)
    said.info("%d message(s) %s, %d problem(s)", len(report.records),
              "would be handled" if dry_run else "handled", len(report.problems), extra=extra)
    if dry_run:
        said.info("%s", DRY_RUN_DONE, extra=extra)


def cmd_poll(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    show = not args.json and sys.stderr.isatty()
    with ProgressBars(enabled=show) as bars:
        report = run_poll(config, dry_run=args.dry_run, progress=bars.update)
    return print_report(report, args.json, dry_run=args.dry_run,
                        log_json=args.log_format == "json")


class ProgressBars:
    """One bar per folder on a terminal, for a backlog of BACKLOG messages or more."""

    BACKLOG = 50

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def update(self, folder: str, left: int) -> None:
        if not self.enabled:
            return
        if folder not in self.bars:
            if left + 1 < self.BACKLOG:
                self.bars[folder] = None
                return
            import shutil

            from tqdm import tqdm

            # A terminal that reports no size (a serial console) still gets a bar.
            size = shutil.get_terminal_size()
            self.bars[folder] = tqdm(total=left + 1, desc=folder, unit="msg", ncols=size.columns,
                                     nrows=size.lines)
        if self.bars[folder] is not None:
            self.bars[folder].update(1)

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *_: object) -> None:
        for bar in self.bars.values():
            if bar is not None:
                bar.close()


def cmd_demo(args: argparse.Namespace) -> int:
    import time

    from saraban_mail.calendar import BusinessCalendar
    from saraban_mail.demo import DEMO_POLL_AT, create_demo, demo_day

    folder = Path(args.dir).absolute()
    if (folder / "config.toml").exists():  # polled again, as a clerk would: nothing twice
        print(f"a demo office already exists in {folder}: polling it again (to start afresh, "
              "give a new folder)", file=sys.stderr)
        return print_report(run_poll(load_config(folder / "config.toml")), args.json,
                            log_json=args.log_format == "json")
    moment = now()
    day = demo_day(moment, BusinessCalendar())
    config_file = create_demo(folder, day)
    config = load_config(config_file)
    # Polled as at the demo day's morning, as the service would have been: every
    # acknowledgement goes on time. Then once more now, which finds nothing new.
    polled_at = datetime.combine(day, DEMO_POLL_AT, tzinfo=moment.tzinfo)
    started = time.monotonic()
    print(f"demo office created in {folder}: its mail came in the days up to "
          f"{thai_date(day)}, polled as at {thai_datetime(polled_at)}", file=sys.stderr)
    report = run_poll(config, clock=lambda: polled_at + timedelta(
        seconds=time.monotonic() - started))
    report.problems += run_poll(config).problems
    code = print_report(report, args.json, log_json=args.log_format == "json")
    if not args.json:
        print(f"\nregister:  {folder / 'register'}\nreplies:   {folder / 'outbox-mail'}\n"
              f"journal:   {folder / 'data' / 'journal.sqlite3'}\n"
              f"run again: saraban-mail poll --config {config_file}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from saraban_mail import schedule
    from saraban_mail.poll.replying import check_templates
    from saraban_mail.replies import Templates

    def load():
        config = load_config(args.config)
        rules = load_rules(config.paths.rules_dir)
        cal = calendar_for(config, rules)
        check_templates(Templates(config.paths.templates_dir), config, rules, cal, now())
        return (config, cal, schedule.poll_times(config.schedule.times, cal,
                                                 config.schedule.before_closing_minutes),
                config.schedule.interval_minutes)

    def poll_once(config) -> bool:
        try:
            report = run_poll(config, stop=daemon.stopping.is_set)
        except SarabanError as exc:  # noted for status; the next poll tries again
            log.error("poll failed: %s", exc)
            return False
        for note in report.notes:
            log.info("%s", note)
        for problem in report.problems:
            log.warning("%s", problem)
        log.info("poll done: %d message(s) handled, %d problem(s)", len(report.records),
                    len(report.problems))
        _backup_after(config, args.config)
        return True

    def _backup_after(config, given: str | None) -> None:
        """[backup] dest: a backup after the afternoon poll, once a working day."""
        from saraban_mail.backup import after_poll

        try:
            made = after_poll(config, config_path(given).absolute(), daemon.cal, daemon.times, now())
        except SarabanError as exc:  # the service goes on; status, check and the log say why
            log.error("backup failed: %s", exc)
            return
        if made is not None:
            log.info("backup %s: %d file(s), verified", made.folder, made.files)

    def previous(config) -> datetime | None:
        found = last_poll(config)
        return datetime.fromisoformat(found["at"]) if found else None

    from saraban_mail.watcher import watch

    daemon = schedule.Daemon(load, poll_once, previous, now, watch)
    return daemon.run()

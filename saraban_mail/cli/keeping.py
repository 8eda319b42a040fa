"""Keeping the records: `backup`, `restore` and `purge` (retention, the disposal list and
its approval), the commands an IT person runs monthly."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from saraban_mail.cli.exits import EXIT_OK
from saraban_mail.config import config_path, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.service import now


def cmd_backup(args: argparse.Namespace) -> int:
    from saraban_mail.backup import make_backup, note_backup

    config = load_config(args.config)
    dest = Path(args.dest) if args.dest else config.backup.dest
    if dest is None:
        raise SarabanError("say where to back up: saraban-mail backup DEST (or [backup] dest)")
    moment = now()
    made = make_backup(config, config_path(args.config).absolute(), dest, moment)
    note_backup(config, made, moment)
    print(f"backup {made.folder}: {made.files} file(s), {made.size / 2**20:.1f} MB, verified; "
          f"journal {sum(made.rows.values())} row(s)")
    for path in made.pruned:
        print(f"removed older backup {path.name}")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from saraban_mail.backup import restore

    target = Path(args.target).absolute()
    again = restore(Path(args.source), target)
    print(f"restored into {target}; run with --config {target / 'config.toml'}")
    for line in again:
        print(f"supply again: {line}")
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    from saraban_mail import followup, keeping
    from saraban_mail.journal import Journal
    from saraban_mail.rules import load_rules
    from saraban_mail.service import calendar_for

    config = load_config(args.config)
    calendar = calendar_for(config, load_rules(config.paths.rules_dir))
    moment = now().astimezone(calendar.tz)
    actor = os.environ.get("USER") or "administrator"
    journal = Journal.open(config.paths.data_dir)
    try:
        if args.approve is not None:
            if not args.by:
                raise SarabanError("say who approved the list: --by NAME")
            done = keeping.approve(config, journal, args.approve, args.by, moment, actor)
            followup.write_disposal_list(journal, config, calendar)
            print(f"disposal list {args.approve} approved by {args.by}: {len(done)} file(s) purged")
            return EXIT_OK
        if args.list is not None:
            items = keeping.make_list(config, journal, args.list, moment, calendar.tz)
            path = followup.write_disposal_list(journal, config, calendar)
            print(f"disposal list {args.list}: {len(items)} file(s) for the head's approval, "
                  f"in {path} (sheet ขอทำลาย {args.list})")
            return EXIT_OK
        found = keeping.due_now(config, journal, moment.date(), calendar.tz)
        own, waiting = keeping.unapproved(found)
        for item in found:
            how = "needs the head's approval (purge --list YEAR)" if item.needs_approval else "due"
            print(f"{item.item.ref}  {item.rule}  due {item.due_on}  {how}")
        if args.dry_run:
            print(f"{len(own)} file(s) would be purged; {len(waiting)} wait for a disposal list")
            return EXIT_OK
        done = keeping.purge(config, journal, own, moment, actor)
        print(f"{len(done)} file(s) purged; {len(waiting)} wait for a disposal list")
        return EXIT_OK
    finally:
        journal.close()


def personal_line(held: dict) -> str:
    """status: the personal data held, oldest item by kind, and its custodian."""
    kinds = ", ".join(f"{entry['count']} {kind} (oldest {entry['oldest_days']} days)"
                      for kind, entry in held["by_kind"].items()) or "none"
    custodian = held["custodian"] or "not named: set [agency] data_custodian"
    return (f"personal data held: {kinds}; custodian: {custodian}; "
            f"{held['purged']} file(s) purged so far")

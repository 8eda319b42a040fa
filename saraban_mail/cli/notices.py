"""The clerks' command that keeps a requester informed: notify (a progress notice on the
request's thread, logged as the matter's step and noted in the register row)."""

from __future__ import annotations

import argparse

from saraban_mail import progress
from saraban_mail.cli.office import Office
from saraban_mail.rules import load_rules


def cmd_notify(args: argparse.Namespace) -> int:
    notice = progress.Notice(progress.status_of(args.status), (args.text or "").strip())
    office = Office(args)
    target = office.target(args.receipt, args.year)
    units = load_rules(office.config.paths.rules_dir).units
    _, problems = progress.notify(office.journal, office.config, units, office.templates,
                                  target, notice, office.now(), office.actor)
    print(f"progress notice ({notice.status} / {notice.status_en}) sent to {target.recipient} "
          f"for {target.receipt_no}/{target.receipt_year}")
    return office.finish(problems + office.send())

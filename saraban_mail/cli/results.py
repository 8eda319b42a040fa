"""The `send-result` command: a signed result (PDF) for an incoming receipt, queued with
its outgoing number and sent at once; with --dry-run, the message shown and nothing kept."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.cli.office import receipt, send_now
from saraban_mail.config import load_config
from saraban_mail.journal import Journal
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now, tokens_for


def cmd_send_result(args: argparse.Namespace) -> int:
    from saraban_mail import results
    from saraban_mail.replies import Templates
    from saraban_mail.send import transport_for

    config = load_config(args.config)
    rules = load_rules(config.paths.rules_dir)
    templates = Templates(config.paths.templates_dir)
    calendar = calendar_for(config, rules)
    clock = lambda: now().astimezone(calendar.tz)  # noqa: E731
    number, year = receipt(args.receipt, args.year)
    journal = (Journal.scratch if args.dry_run else Journal.open)(config.paths.data_dir)
    try:
        target = results.find_target(journal, config, year, number)
        results.previous_result_gate(journal, year, number, args.force, clock(),
                             os.environ.get("USER") or "clerk")
        files = results.load_files([Path(f) for f in args.files], config)
        mode = "default" if args.password is None else args.password
        prepared = results.queue(journal, config, templates, target, files, now=clock(),
                                 to=args.to or "", subject=args.subject or "", password_mode=mode,
                                 doc_no=args.doc_no or "", dry_run=args.dry_run,
                                 force=args.force, actor=os.environ.get("USER") or "clerk")
        if args.dry_run:
            _show_result(prepared)
            return EXIT_OK
        problems = send_now(config, lambda mailbox: results.deliver(
            journal, config, transport_for(config.smtp, tokens_for(config)), mailbox, calendar,
            clock))
    finally:
        journal.close()
    for problem in problems:
        print(f"saraban-mail: {problem}", file=sys.stderr)
    label = f"result {prepared.send_no}/{prepared.year} for receipt {number}/{year}"
    if any("stays queued" in p or "wait in the journal" in p for p in problems):
        print(f"{label} to {prepared.result.recipient} queued, not sent yet: it goes at the "
              "next poll (status lists it)")
        return EXIT_PENDING
    print(f"{label} to {prepared.result.recipient}"
          + (" (password sent separately)" if prepared.password_mail else ""))
    return EXIT_PENDING if problems else EXIT_OK


def _show_result(prepared: Any) -> None:
    import email.policy

    from saraban_mail.parse import header_text

    message = email.message_from_bytes(prepared.result.raw, policy=email.policy.default)
    for name in ("From", "To", "Subject", "In-Reply-To", "Message-ID"):
        if message[name]:
            print(f"{name}: {header_text(message, name)}")
    for document in prepared.documents:
        state = "encrypted AES-256" if document.encrypted else "as given"
        print(f"attachment: {document.name} ({len(document.data):,} bytes, {state}, "
              f"SHA-256 {document.sha256})")
    print(f"size: {len(prepared.result.raw):,} bytes")
    if prepared.password_mail:
        print("password: random, sent in a separate mail after the document")
    print(f"outgoing number: {prepared.send_no}/{prepared.year} (not reserved: dry run)")

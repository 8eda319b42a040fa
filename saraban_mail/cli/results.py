"""The `send-result` command: a signed result (PDF) for an incoming receipt, queued with
its outgoing number and sent at once; with --dry-run, the message shown and nothing kept."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from saraban_mail.cli.exits import EXIT_ERROR, EXIT_OK, EXIT_PENDING
from saraban_mail.cli.office import receipt, send_now
from saraban_mail.config import load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now, tokens_for

EXIT_NO_SIGNATURE = 1  # a PDF with no signature at all


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
        try:
            prepared = results.queue(journal, config, templates, target, files, now=clock(),
                                     to=args.to or "", subject=args.subject or "",
                                     password_mode=mode, doc_no=args.doc_no or "",
                                     dry_run=args.dry_run, force=args.force,
                                     actor=os.environ.get("USER") or "clerk")
        except results.ResultPending as exc:
            return _wait_in_outbox(args, config, number, year, exc)
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


def _wait_in_outbox(args: argparse.Namespace, config: Any, number: int, year: int,
                    why: Exception) -> int:
    """The seal cannot be made now: a result with the default options waits in outbox/,
    where each poll tries it again; one with options of its own is left to the clerk."""
    import shutil

    from saraban_mail.files import shared_dir

    plain = not (args.to or args.subject or args.doc_no or args.password or args.dry_run
                 or args.force)
    if not plain:
        print(f"saraban-mail: {why}; not queued: send again later", file=sys.stderr)
        return EXIT_PENDING
    outbox = config.results.outbox_dir
    shared_dir(outbox, config.sharing)
    paths = [Path(f) for f in args.files]
    if len(paths) == 1:
        shutil.copy(paths[0], outbox / f"{number}-{year}{paths[0].suffix.lower() or '.pdf'}")
    else:
        folder = outbox / f"{number}-{year}"
        shared_dir(folder, config.sharing)
        for path in paths:
            shutil.copy(path, folder / path.name)
    print(f"saraban-mail: {why}; the files wait in {outbox.name}/ as {number}-{year} and go "
          "sealed at a later poll", file=sys.stderr)
    return EXIT_PENDING


def cmd_verify(args: argparse.Namespace) -> int:
    """What a validation service would say of a PDF's signatures, in Thai and English."""
    from saraban_mail import seal, sealing
    from saraban_mail.thaitext import english_datetime, thai_datetime

    roots: list = []
    if args.roots:
        roots = seal.trust_roots([Path(r) for r in args.roots])
    else:
        try:
            roots = seal.trust_roots(load_config(args.config).seal.trust_roots)
        except SarabanError:
            roots = []  # no configuration: every signer is "not trusted here"
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise seal.SealError(f"{path}: cannot read ({exc.strerror})") from None
    infos = seal.describe(data, roots, args.password)
    if not infos:
        print(f"{path.name}: ไม่มีลายมือชื่ออิเล็กทรอนิกส์ / no electronic signature")
        return EXIT_NO_SIGNATURE
    for n, info in enumerate(infos, 1):
        for line in sealing.report_lines(info, thai_datetime, english_datetime):
            print(f"[{n}] {line}")
    return EXIT_OK if all(i.ok for i in infos) else EXIT_ERROR


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
        if document.seal_line:
            print(f"  {document.seal_line}")
    print(f"size: {len(prepared.result.raw):,} bytes")
    if prepared.password_mail:
        print("password: random, sent in a separate mail after the document")
    print(f"outgoing number: {prepared.send_no}/{prepared.year} (not reserved: dry run)")

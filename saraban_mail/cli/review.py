"""The review queue from the command line: `review` lists the mail that waits for a person
(with its deadline), `review decide` takes one of the five decisions, as คำสั่ง does in
register/review-YEAR.xlsx; `show --review` tells one mail's story."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from saraban_mail import review
from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.cli.office import receipt
from saraban_mail.config import load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.record import Record
from saraban_mail.rules import load_rules
from saraban_mail.thaitext import thai_datetime


def waiting(journal: Journal, every: bool = False) -> list[dict[str, Any]]:
    """The queue as plain values (what status and `review --json` print)."""
    found = []
    for entry in journal.reviews("1" if every else "r.decision IS NULL"):
        record = Record.from_json(entry["record"])
        found.append({
            "item": f"{entry['number']}/{entry['year']}",
            "received_at": record.received_at.isoformat(),
            "official_received_at": record.official_received_at.isoformat(),
            "ack_due": record.ack_due.isoformat() if record.ack_due else None,
            "from": record.requester_label or record.from_addr,
            "subject": record.subject,
            "why": record.reviewed.why if record.reviewed else review.why(record.rule,
                                                                          record.reason),
            "decision": entry["decision"], "by": entry["actor"], "decided_at": entry["decided_at"],
            "outcome": entry["outcome"], "problem": entry["problem"],
        })
    return found


def line(item: dict[str, Any]) -> str:
    """One mail of the queue as a clerk reads it."""
    due = thai_datetime(datetime.fromisoformat(item["ack_due"])) if item["ack_due"] else "-"
    text = (f"{item['item']}  ตอบรับภายใน {due}  {item['from'] or '(ไม่ทราบผู้ส่ง)'}  "
            f"{(item['subject'] or '(ไม่มีหัวเรื่อง)')[:50]!r}: {item['why']}")
    if item["decision"]:
        text += f"  → {review.THAI[item['decision']]} ({item['by']})"
    if item["problem"] and not item["decision"]:
        text += f"  [คำสั่งไม่ถูกต้อง: {item['problem']}]"
    return text


def cmd_review(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    journal = Journal.open(config.paths.data_dir)
    try:
        items = waiting(journal, every=args.all)
    finally:
        journal.close()
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return EXIT_OK
    for item in items:
        print(line(item))
    print(f"{sum(1 for i in items if not i['decision'])} mail(s) wait for a person; decide in "
          f"{config.paths.register_dir}/review-YEAR.xlsx (คำสั่ง) or with "
          "saraban-mail review decide N --register|--wrong-agency ID|--wrong-channel ID|--spam|"
          "--no-action REASON", file=sys.stderr)
    return EXIT_OK


def cmd_review_decide(args: argparse.Namespace) -> int:
    """Note the decision, then poll: the poll carries it out (number, register, replies,
    mailbox), exactly as it does a decision typed in the register."""
    from saraban_mail.service import run_poll

    config = load_config(args.config)
    rules = load_rules(config.paths.rules_dir)
    decision, argument = _decision(args)
    verdict = review.check(review.Verdict(decision, argument), rules)
    number, year = receipt(args.item, args.year)
    actor = args.by or os.environ.get("USER") or "clerk"
    journal = Journal.open(config.paths.data_dir)
    try:
        entry = journal.review(year, number)
        if entry is None:
            raise SarabanError(f"no mail {number}/{year} in the review queue (saraban-mail review)")
        if entry["decision"]:
            raise SarabanError(f"mail {number}/{year} was decided already: "
                               f"{review.THAI[entry['decision']]} by {entry['actor']} "
                               f"at {entry['decided_at'][:16]}")
        from saraban_mail.service import now

        with journal.transaction():
            journal.decide_review(entry["message"], decision=verdict.decision,
                                  argument=verdict.argument, actor=actor, via="command",
                                  now=now())
    finally:
        journal.close()
    try:
        report = run_poll(config)
    except SarabanError as exc:
        print(f"saraban-mail: decided; carried out at the next poll ({exc})", file=sys.stderr)
        return EXIT_PENDING
    journal = Journal.open(config.paths.data_dir)
    try:
        done = journal.review(year, number)
    finally:
        journal.close()
    print(f"{number}/{year}: {done['outcome'] if done and done['outcome'] else 'decided'}")
    for problem in report.problems:
        print(f"saraban-mail: {problem}", file=sys.stderr)
    return EXIT_PENDING if report.problems else EXIT_OK


def _decision(args: argparse.Namespace) -> tuple[str, str]:
    if args.register:
        return review.REGISTER, ""
    if args.spam:
        return review.SPAM, ""
    if args.wrong_agency:
        return review.WRONG_AGENCY, args.wrong_agency
    if args.wrong_channel:
        return review.WRONG_CHANNEL, args.wrong_channel
    return review.NO_ACTION, args.no_action


def history(journal: Journal, year: int, number: int) -> list[str]:
    """One mail of the review queue, from arrival to what was done."""
    entry = journal.review(year, number)
    if entry is None:
        raise SarabanError(f"no mail {number}/{year} in the review queue")
    record = Record.from_json(entry["record"])
    lines = [f"{record.received_at:%Y-%m-%d %H:%M}  arrived: {record.requester_label or record.from_addr}"
             f"  {record.subject!r}",
             f"{entry['noted_at'][:16].replace('T', ' ')}  needs a person: "
             f"{record.reviewed.why if record.reviewed else review.why(record.rule, record.reason)}"]
    if entry["listed_at"]:
        lines.append(f"{entry['listed_at'][:16].replace('T', ' ')}  listed in review-{year}.xlsx")
    if entry["decision"]:
        how = "typed in คำสั่ง" if entry["via"] == "register" else "saraban-mail review decide"
        lines.append(f"{entry['decided_at'][:16].replace('T', ' ')}  decided: "
                     f"{review.THAI[entry['decision']]}"
                     + (f": {entry['argument']}" if entry["argument"] else "")
                     + f"  ({entry['actor']}, {how})")
    if entry["carried_at"]:
        lines.append(f"{entry['carried_at'][:16].replace('T', ' ')}  carried out"
                     + (f": {entry['outcome']}" if entry["outcome"] else ""))
    if entry["receipt_no"]:
        lines.append(f"registered as {entry['receipt_no']}/{entry['receipt_year']}: "
                     f"saraban-mail show {entry['receipt_no']}/{entry['receipt_year']}")
    return lines

"""The command line: poll, run, demo, check, status, and the clerks' commands.

This module only parses the command line and sets up logging, so that `--help` starts at
once; each group of commands is a module beside it (poll, status, registers, matters,
results, setup), loaded only when one of its commands runs. Expected failures (config,
rules, login, workbook, a full disk) end as one line on stderr and a non-zero exit code;
only programming errors show a traceback."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime

from saraban_mail import __version__
from saraban_mail.cli.exits import EXIT_ERROR
from saraban_mail.errors import SarabanError


class TextLines(logging.Formatter):
    """One line per event. Under systemd (JOURNAL_STREAM set) each line starts with its
    syslog priority, <3> to <7>, so journald files it at the right level; journald adds
    the time itself."""

    PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}

    def __init__(self) -> None:
        super().__init__("saraban-mail: %(levelname)s: %(message)s")
        self.journald = bool(os.environ.get("JOURNAL_STREAM"))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.journald:
            prefix = f"<{self.PRIORITY.get(record.levelname, 6)}>"
            text = "\n".join(prefix + line for line in text.splitlines())
        return text


class JsonLines(logging.Formatter):
    """--log-format json: one object per line (time with its zone, level, message, error),
    the time in the service's zone, as every time it prints; a multi-line message stays one
    line (JSON escapes the newlines)."""

    def __init__(self) -> None:
        super().__init__()
        from saraban_mail.calendar import BANGKOK

        self.zone = BANGKOK

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, self.zone).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        if getattr(record, "dry_run", False):
            entry["dry_run"] = True
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def fail(args: argparse.Namespace, text: str) -> None:
    """The one line of an expected failure: on stderr, or as a JSON log line."""
    if getattr(args, "log_format", "text") == "json":
        logging.getLogger("saraban_mail").error("%s", text)
    else:
        print(f"saraban-mail: error: {text}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="saraban-mail", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=__version__)
    top.add_argument("-v", "--verbose", action="store_true",
                     help="log progress to stderr (`run` logs its start, polls and stop anyway)")
    top.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="json: one JSON object per log line, for log collectors")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("poll", help="handle new mail once")
    p.add_argument("--config", help="config file (default: $SARABAN_CONFIG or ./config.toml)")
    p.add_argument("--dry-run", action="store_true", help="decide and print; change nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per message on stdout")
    p.set_defaults(func="poll:cmd_poll")

    p = sub.add_parser("demo", help="create a demo office with sample mail and poll it")
    p.add_argument("dir", nargs="?", default="saraban-demo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="poll:cmd_demo")

    p = sub.add_parser("run", help="the service: poll on schedule until stopped")
    p.add_argument("--config")
    p.set_defaults(func="poll:cmd_run")

    p = sub.add_parser("auth", help="OAuth2 mailboxes: the one-time consent (device code)")
    p.add_argument("--config")
    p.add_argument("--watch", metavar="NAME", help="for the [[watch]] mailbox of this name")
    p.set_defaults(func="setup:cmd_auth")

    p = sub.add_parser("install-service", help="write the systemd unit for this installation")
    p.add_argument("--config")
    p.add_argument("--user", default="saraban", help="the service user (default: saraban)")
    p.add_argument("--out", default="/etc/systemd/system/saraban-mail.service")
    p.set_defaults(func="setup:cmd_install_service")

    p = sub.add_parser("check", help="validate config and rules, log in to the mailbox")
    p.add_argument("--config")
    p.set_defaults(func="status:cmd_check")

    p = sub.add_parser("archive", help="copy handled mail off the server, verify, delete it there")
    p.add_argument("--config")
    p.add_argument("--older-than", default="12m", help="months (12m) or years (2y); default 12m")
    p.add_argument("--limit", type=int, default=0, help="at most this many messages (oldest)")
    p.set_defaults(func="space:cmd_archive")

    p = sub.add_parser("send-result", help="send a signed result (PDF) for an incoming receipt")
    p.add_argument("receipt", help="incoming receipt number: 12 or 12/2569")
    p.add_argument("files", nargs="+", help="PDF file(s); JPEG/PNG if results.allow_images")
    p.add_argument("--config")
    p.add_argument("--year", type=int, help="Buddhist-era year of the receipt (default: this year)")
    p.add_argument("--to", help="recipient (default: the requester of the receipt)")
    p.add_argument("--subject", help="subject (default from the template)")
    p.add_argument("--password", help="auto | none | a password of your own "
                   "(default: auto for personal documents, else results.password)")
    p.add_argument("--doc-no", help="the letter's own number (ที่), e.g. นม 0023/123")
    p.add_argument("--dry-run", action="store_true", help="show the message; send nothing")
    p.add_argument("--force", metavar="REASON",
                   help="send for a high-risk matter whose identity is not verified, or one "
                        "that already has a result or was disposed (logged)")
    p.set_defaults(func="results:cmd_send_result")

    p = sub.add_parser("verify", help="check the electronic signatures of a PDF, as the ETDA "
                       "validation service would (Thai and English)")
    p.add_argument("file", help="the PDF")
    p.add_argument("--config")
    p.add_argument("--roots", nargs="*", help="trusted CA certificates (default: seal.trust_roots)")
    p.add_argument("--password", help="the PDF's password, when it has one")
    p.set_defaults(func="results:cmd_verify")

    def matter_parser(name: str, text: str):
        q = sub.add_parser(name, help=text)
        q.add_argument("receipt", help="incoming receipt number: 12 or 12/2569")
        q.add_argument("--year", type=int, help="Buddhist-era year (default: this year)")
        q.add_argument("--config")
        q.add_argument("--by", help="who does this (default: $USER), for the matter's history")
        return q

    q = matter_parser("request-docs", "ask the requester for missing documents")
    q.add_argument("--items", required=True, help="what is missing, as the citizen should read it")
    q.add_argument("--days", type=int, help="working days to send them (default: config)")
    q.set_defaults(func="matters:cmd_request_docs")
    q = matter_parser("video-call", "send a video-call appointment for identity proofing")
    q.add_argument("--at", required=True,
                   help='date and time as typed: "2 ธ.ค. 2569 10.00", 2569-12-02 10:00 (BE) '
                        "or 2026-12-02T10:00")
    q.add_argument("--link", help="where the call takes place")
    q.add_argument("--force", metavar="REASON",
                   help="appoint in the past or out of office hours anyway (logged)")
    q.set_defaults(func="matters:cmd_video_call")
    q = matter_parser("verify-identity", "record how a high-risk requester's identity was proven")
    q.add_argument("--method", required=True, help="in_person, video_call or digital_id")
    q.add_argument("--evidence", nargs="*", default=[], help="evidence files (kept privately)")
    q.set_defaults(func="matters:cmd_verify_identity")
    q = matter_parser("dispose", "close a matter proposed for disposal")
    q.add_argument("--approved-by", required=True, help="the head of agency who approved")
    q.add_argument("--force", metavar="REASON",
                   help="dispose of a matter the service did not propose (logged)")
    q.set_defaults(func="matters:cmd_dispose")
    q = matter_parser("correct", "cancel a receipt number given by mistake (the row stays)")
    how = q.add_mutually_exclusive_group(required=True)
    how.add_argument("--cancel", metavar="REASON", help="registered by mistake, and why")
    how.add_argument("--wrong-agency", metavar="ID",
                     help="another agency's matter (rules/agencies.toml): the sender is told")
    how.add_argument("--spam", action="store_true", help="spam: the mail goes to Trash")
    q.set_defaults(func="matters:cmd_correct")
    q = matter_parser("undo", "take back a matter's last step (disposal, cancellation, ...)")
    q.add_argument("--reason", default="", help="why, for the matter's history")
    q.set_defaults(func="matters:cmd_undo")
    q = matter_parser("route", "pass a matter to another unit of rules/units.toml")
    q.add_argument("unit", help="the unit's id or Thai name (saraban-mail deadlines lists them)")
    q.set_defaults(func="matters:cmd_route")
    q = matter_parser("show", "the whole history of a matter")
    q.add_argument("--review", action="store_true",
                   help="the number is one of the review queue's (saraban-mail review)")
    q.set_defaults(func="matters:cmd_show")
    q = matter_parser("notify", "send the requester a progress notice on the request's thread")
    q.add_argument("--status", required=True,
                   help="อยู่ระหว่างพิจารณา, ส่งเรื่องให้ส่วนงานที่รับผิดชอบแล้ว, อยู่ระหว่างดำเนินการ, "
                        "อนุมัติแล้ว, ไม่อนุมัติ or ดำเนินการแล้วเสร็จ (or its English)")
    q.add_argument("--text", help="a line of your own, in Thai, added to the notice")
    q.set_defaults(func="notices:cmd_notify")

    p = sub.add_parser("review", help="mail that needs a person: list it, or decide one")
    p.add_argument("--config")
    p.add_argument("--all", action="store_true", help="decided ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="review:cmd_review")
    rev = p.add_subparsers(dest="review_command")
    q = rev.add_parser("decide", help="take a decision, as คำสั่ง in review-YEAR.xlsx does")
    q.add_argument("item", help="the queue's number: 3 or 3/2569")
    q.add_argument("--year", type=int, help="Buddhist-era year (default: this year)")
    q.add_argument("--config")
    q.add_argument("--by", help="who decides (default: $USER), for the journal")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--register", action="store_true", help="ลงรับ: register and acknowledge")
    which.add_argument("--wrong-agency", metavar="ID", help="ผิดหน่วยงาน: an agency of rules/agencies.toml")
    which.add_argument("--wrong-channel", metavar="ID", help="ผิดช่องทาง: a channel of rules/channels.toml")
    which.add_argument("--spam", action="store_true", help="สแปม")
    which.add_argument("--no-action", metavar="REASON", help="ไม่ต้องดำเนินการ, and why")
    q.set_defaults(func="review:cmd_review_decide")
    q = sub.add_parser("deadlines", help="overdue documents and matters to propose for disposal; "
                       "matters overdue or due this week, and requests no unit took")
    q.add_argument("--config")
    q.set_defaults(func="matters:cmd_deadlines")

    q = sub.add_parser("faq", help="the inquiry log as a CSV for an FAQ")
    q.add_argument("--config")
    q.add_argument("--year", type=int, help="Buddhist-era year (default: this year)")
    q.add_argument("--out", help="output file (default: faq-YEAR.csv)")
    q.set_defaults(func="matters:cmd_faq")

    q = sub.add_parser("report", help="the head's report: a fiscal year or a month as a "
                       "workbook, a PDF to sign and CSV")
    q.add_argument("--config")
    when = q.add_mutually_exclusive_group(required=True)
    when.add_argument("--fiscal-year", metavar="YEAR",
                      help="Thai fiscal year, Buddhist era: 2569 is 1 Oct 2568 to 30 Sep 2569")
    when.add_argument("--month", metavar="YYYY-MM",
                      help="a month: 2569-11 (Buddhist era; a year below 2400 is read as CE)")
    q.add_argument("--out", help="folder for the files (default: the register folder)")
    q.set_defaults(func="report:cmd_report")

    p = sub.add_parser("register", help="check or export the register workbooks")
    reg = p.add_subparsers(dest="register_command", required=True)
    q = reg.add_parser("check", help="gaps, duplicate numbers, rows missing from the sheet")
    q.add_argument("--config")
    q.add_argument("--year", type=int, help="Buddhist-era year (default: every year known)")
    q.add_argument("--repair", action="store_true", help="write missing rows again")
    q.set_defaults(func="registers:cmd_register_check")
    q = reg.add_parser("export", help="the register sheet as CSV or a plain workbook")
    q.add_argument("--config")
    q.add_argument("--year", type=int, required=True, help="Buddhist-era year, e.g. 2569")
    q.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    q.add_argument("--out", help="output file (default: incoming-YEAR-export.FORMAT)")
    q.set_defaults(func="registers:cmd_register_export")

    p = sub.add_parser("backup", help="a dated, verified backup of everything the office keeps")
    p.add_argument("dest", nargs="?", help="folder to back up into (default: [backup] dest)")
    p.add_argument("--config")
    p.set_defaults(func="keeping:cmd_backup")
    p = sub.add_parser("restore", help="a backup onto an empty folder: a working office")
    p.add_argument("source", help="the backup folder (saraban-backup-...)")
    p.add_argument("target", help="an empty folder")
    p.set_defaults(func="keeping:cmd_restore")
    p = sub.add_parser("purge", help="delete what the retention table says is due")
    p.add_argument("--config")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--dry-run", action="store_true", help="list what is due, delete nothing")
    how.add_argument("--list", type=int, metavar="YEAR",
                     help="make the year's disposal list (บัญชีหนังสือขอทำลาย) for approval")
    how.add_argument("--approve", type=int, metavar="YEAR",
                     help="record the head's approval of the year's list, then purge it")
    p.add_argument("--by", help="the head of agency who approved (with --approve)")
    p.set_defaults(func="keeping:cmd_purge")

    p = sub.add_parser("status", help="what the journal holds and what waits")
    p.add_argument("--config")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func="status:cmd_status")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if args.log_format == "json" else TextLines())
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[handler])
    # The service logs its start, each poll and its stop at INFO, shown without -v; -v adds
    # each stage's time. Other libraries speak only of warnings, unless -v.
    logging.getLogger("saraban_mail").setLevel(
        logging.DEBUG if args.verbose else logging.INFO if args.command == "run"
        else logging.WARNING)
    # A poll's notes and problems, when they go to the log (--log-format json).
    logging.getLogger("saraban_mail.report").setLevel(logging.INFO)
    logging.captureWarnings(True)  # a library's warnings.warn: a log line like any other
    # pypdf warns about every quirk of a scanned file; our own errors say what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    group, _, name = args.func.partition(":")
    try:
        # After parsing: --help needs none of the commands' modules.
        command = getattr(importlib.import_module(f"saraban_mail.cli.{group}"), name)
        return command(args)
    except SarabanError as exc:
        fail(args, str(exc))
        return EXIT_ERROR
    except (sqlite3.Error, OSError) as exc:  # the disk or the journal gave out mid-way
        fail(args, f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


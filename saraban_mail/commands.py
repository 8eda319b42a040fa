"""The commands behind the command line (`cli.py` parses it): poll, run, demo, check,
status, and the clerks' commands.

Expected failures (config, rules, login, workbook) end as one line on stderr and a
non-zero exit code; only programming errors show a traceback."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from saraban_mail import oauth
from saraban_mail.audit import Audit, Entry, audit
from saraban_mail.calendar import BANGKOK, BusinessCalendar, buddhist_year
from saraban_mail.cli import EXIT_OK, EXIT_PENDING
from saraban_mail.config import Config, config_path, load_config
from saraban_mail.errors import LoginRefused, MailboxError, SarabanError
from saraban_mail.journal import Journal, single_instance
from saraban_mail.layout import INCOMING, incoming_path, service_ref, stamp
from saraban_mail.oauth import Tokens
from saraban_mail.rules import RuleSet, load_rules
from saraban_mail.thaitext import thai_date

if TYPE_CHECKING:
    from saraban_mail.mailbox import Mailbox
    from saraban_mail.pipeline import Context, PollReport

log = logging.getLogger("saraban_mail")


def now() -> datetime:
    """The clock: SARABAN_NOW (ISO 8601 with offset) fixes it, for tests and for re-running
    a day's deadlines; otherwise the time in Bangkok."""
    fixed = os.environ.get("SARABAN_NOW")
    if fixed:
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            raise SarabanError(f"SARABAN_NOW={fixed!r} is not an ISO 8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=BANGKOK)
    return datetime.now(BANGKOK)


def calendar_for(config: Config, rules: RuleSet) -> BusinessCalendar:
    hours = config.office_hours
    return BusinessCalendar(
        opening=hours.open, closing=hours.close, ack_by=hours.ack_by,
        tz=ZoneInfo(hours.timezone), added=rules.holidays_added,
        removed=rules.holidays_removed,
    )


def tokens_for(config: Config, clock: Callable[[], datetime] | None = None) -> Tokens | None:
    return Tokens(config.oauth, config.paths.data_dir, clock or now) if config.uses_oauth else None


def open_mailbox(config: Config, tokens: Tokens | None = None, *, retry: bool = True,
                 sleep: Callable[[float], None] = time.sleep) -> Mailbox:
    """Connect and log in; an unreachable server is tried again after each of
    network.retry_delays (a refused login is not: it would only lock the account)."""
    from saraban_mail.mailbox import ImapMailbox, MaildirMailbox

    limit = int(config.policy.max_message_mb * 2**20)
    if config.mailbox.backend == "maildir":
        return MaildirMailbox(config.mailbox.maildir, limit)
    waits = iter(config.network.retry_delays if retry else [])
    while True:
        try:
            return ImapMailbox(config.imap, tokens, limit)
        except LoginRefused:
            raise
        except MailboxError as exc:
            wait = next(waits, None)
            if wait is None:
                raise
            log.warning("%s; trying again in %g s", exc, wait)
            sleep(wait)


def transport(config: Config, tokens: Tokens | None = None):
    from saraban_mail.send import transport_for

    return transport_for(config.smtp, tokens, config.network.retry_delays)


def build_context(config: Config, *, dry_run: bool = False, clock=None) -> Context:
    from saraban_mail.pipeline import Context, check_templates
    from saraban_mail.replies import Templates

    rules = load_rules(config.paths.rules_dir)
    templates = Templates(config.paths.templates_dir)
    clock = clock or now
    calendar = calendar_for(config, rules)
    check_templates(templates, config, rules, calendar, clock())
    tokens = tokens_for(config, clock)
    mailbox = open_mailbox(config, tokens)
    try:
        journal = (Journal.scratch if dry_run else Journal.open)(config.paths.data_dir)
    except BaseException:
        mailbox.close()
        raise
    return Context(
        config=config,
        rules=rules,
        calendar=calendar,
        journal=journal,
        mailbox=mailbox,
        transport=transport(config, tokens),
        templates=templates,
        clock=clock,
        dry_run=dry_run,
    )


def run_poll(config: Config, *, dry_run: bool = False, clock=None,
             stop: Callable[[], bool] | None = None,
             progress: Callable[[str, int], None] | None = None) -> PollReport:
    """One poll; never two at once on one data folder (a dry run changes nothing: no lock).
    A poll that cannot start (server down, login refused) is noted for `status` and, once
    a day, told to the administrator by email."""
    from saraban_mail.pipeline import poll

    with contextlib.nullcontext() if dry_run else single_instance(config.paths.data_dir):
        try:
            ctx = build_context(config, dry_run=dry_run, clock=clock)
        except MailboxError as exc:  # config, rules, templates: one clear error, nothing written
            if not dry_run:
                _poll_failed(config, clock or now, exc)
            raise
        if stop is not None:
            ctx.stop = stop
        if progress is not None:
            ctx.progress = progress
        try:
            return poll(ctx)
        finally:
            ctx.mailbox.close()
            ctx.journal.close()


def _poll_failed(config: Config, clock: Callable[[], datetime], error: Exception) -> None:
    from saraban_mail.pipeline import alert_admin

    journal = Journal.open(config.paths.data_dir)
    try:
        moment = clock()
        journal.set_meta("last_failure", json.dumps({"at": moment.isoformat(), "error": str(error)},
                                                    ensure_ascii=False))
        try:
            alert_admin(journal, config, transport(config, tokens_for(config, clock)), moment,
                        [f"the poll of {moment:%Y-%m-%d %H:%M} could not start: {error}"])
        except SarabanError as again:
            log.warning("cannot tell the administrator: %s", again)
    finally:
        journal.close()


def _print_report(report: PollReport, as_json: bool) -> int:
    for record in report.records:
        if as_json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            receipt = f"{record['receipt_no']}/{record['receipt_year']}" if record["receipt_no"] else "-"
            print(f"{record['category']:<21} {receipt:>9}  {record['folder']}:{record['uid']}  "
                  f"{record['from'] or '?'}  {record['subject'][:60]!r}  "
                  f"[{', '.join(record['actions'])}]")
    for problem in report.problems:
        print(f"saraban-mail: {problem}", file=sys.stderr)
    if not as_json:
        print(f"{len(report.records)} message(s) handled, {len(report.problems)} problem(s)",
              file=sys.stderr)
    return EXIT_PENDING if report.problems else EXIT_OK


def cmd_poll(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    show = not args.json and sys.stderr.isatty()
    with ProgressBars(enabled=show) as bars:
        report = run_poll(config, dry_run=args.dry_run, progress=bars.update)
    return _print_report(report, args.json)


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
    from saraban_mail.demo import create_demo

    folder = Path(args.dir).absolute()
    config_file = create_demo(folder)
    print(f"demo office created in {folder}", file=sys.stderr)
    report = run_poll(load_config(config_file))
    code = _print_report(report, args.json)
    if not args.json:
        print(f"\nregister:  {folder / 'register'}\nreplies:   {folder / 'outbox-mail'}\n"
              f"journal:   {folder / 'data' / 'journal.sqlite3'}\n"
              f"run again: saraban-mail poll --config {config_file}", file=sys.stderr)
    return code


def last_poll(config: Config) -> dict[str, Any] | None:
    path = config.paths.data_dir / "journal.sqlite3"
    if not path.exists():
        return None
    journal = Journal.open(config.paths.data_dir)
    try:
        value = journal.get_meta("last_poll")
    finally:
        journal.close()
    return json.loads(value) if value else None


def cmd_run(args: argparse.Namespace) -> int:
    from saraban_mail import schedule
    from saraban_mail.pipeline import check_templates
    from saraban_mail.replies import Templates

    def load():
        config = load_config(args.config)
        rules = load_rules(config.paths.rules_dir)
        cal = calendar_for(config, rules)
        check_templates(Templates(config.paths.templates_dir), config, rules, cal, now())
        return (config, cal, schedule.poll_times(config.schedule.times, cal),
                config.schedule.interval_minutes)

    def poll_once(config) -> None:
        try:
            report = run_poll(config, stop=daemon.stopping.is_set)
        except SarabanError as exc:  # noted for status; the next poll tries again
            log.error("poll failed: %s", exc)
            return
        for problem in report.problems:
            log.warning("%s", problem)
        log.warning("poll done: %d message(s) handled, %d problem(s)", len(report.records),
                    len(report.problems))

    def previous(config) -> datetime | None:
        found = last_poll(config)
        return datetime.fromisoformat(found["at"]) if found else None

    daemon = schedule.Daemon(load, poll_once, previous, now)
    return daemon.run()


UNIT = """[Unit]
Description=saraban-mail: the agency's central mailbox (saraban@)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
Environment=SARABAN_CONFIG={config}
ExecStart={executable} run
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={writable}
PrivateTmp=yes
ProtectHome={protect_home}
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def cmd_auth(args: argparse.Namespace) -> int:
    """The one-time OAuth2 consent (device code), then a test login."""
    config = load_config(args.config)
    if args.watch:
        return _auth_watch(config, args.watch)
    if not config.uses_oauth:
        raise SarabanError("imap.auth and smtp.auth are both 'password': no OAuth2 to set up")
    oauth.device_login(config.oauth, config.paths.data_dir, print, now)
    print(f"token kept in {config.paths.data_dir / oauth.TOKEN_FILE}")
    if config.imap.auth != "password" and config.mailbox.backend == "imap":
        open_mailbox(config, tokens_for(config), retry=False).close()
        print(f"IMAP login ok: {config.imap.username}")
    return EXIT_OK


def _auth_watch(config: Config, name: str) -> int:
    from saraban_mail.mailbox import WatchedMailbox

    watch = next((w for w in config.watch if w.name == name), None)
    if watch is None:
        raise SarabanError(f"no [[watch]] entry is named '{name}'")
    if watch.auth == "password":
        raise SarabanError(f"watch '{name}' logs in with a password: no OAuth2 to set up")
    file = oauth.watch_token_file(name)
    oauth.device_login(config.oauth, config.paths.data_dir, print, now, file=file)
    print(f"token kept in {config.paths.data_dir / file}")
    WatchedMailbox(watch, oauth.watch_tokens(config, watch, now)).close()
    print(f"IMAP login ok: {watch.username}")
    return EXIT_OK


def cmd_install_service(args: argparse.Namespace) -> int:
    """Write the systemd unit for this installation and this config file."""
    import shutil

    config = load_config(args.config)
    source = config_path(args.config).absolute()
    executable = shutil.which("saraban-mail") or f"{sys.executable} -m saraban_mail"
    writable = sorted({str(config.paths.data_dir), str(config.paths.register_dir),
                       str(config.results.outbox_dir)})
    protect_home = "read-only" if any(w.startswith("/home/") for w in writable) else "yes"
    unit = UNIT.format(user=args.user, config=source, executable=executable,
                       writable=" ".join(writable), protect_home=protect_home)
    out = Path(args.out)
    out.write_text(unit, encoding="utf-8")
    print(f"{out} written; then: systemctl daemon-reload && systemctl enable --now {out.stem}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from saraban_mail import schedule
    from saraban_mail.pipeline import check_templates
    from saraban_mail.replies import Templates
    from saraban_mail.send import SmtpTransport, transport_for

    config = load_config(args.config)
    rules = load_rules(config.paths.rules_dir)
    calendar = calendar_for(config, rules)
    templates = Templates(config.paths.templates_dir)
    check_templates(templates, config, rules, calendar, now())
    print(f"config ok: {config.source}")
    print(f"rules ok: {len(rules.agencies)} agencies, {len(rules.channels)} channels, "
          f"{len(rules.spam)} spam rules, {len(rules.high_risk)} high-risk types; templates ok")
    warnings: list[str] = []
    tokens = tokens_for(config)
    box = open_mailbox(config, tokens, retry=False)
    try:
        f = box.folders
        print(f"mailbox ok: inbox={f.inbox} junk={f.junk} trash={f.trash} sent={f.sent}")
        if not f.junk:
            warnings.append("no junk folder found; set imap.junk")
        if not f.trash:
            warnings.append("no trash folder found: spam is only marked read; set imap.trash")
    finally:
        box.close()
    for watch in config.watch:
        problem = _check_watch(config, watch)
        if problem:
            warnings.append(f"watched mailbox {watch.name}: {problem}")
        else:
            print(f"watched {watch.name} ok: {watch.username}, folders {', '.join(watch.folders)}")
    transport = transport_for(config.smtp, tokens)
    if isinstance(transport, SmtpTransport):
        print(f"smtp ok: {transport.check()}")
    else:
        print(f"smtp: pickup folder {config.smtp.pickup_dir}")
    times = schedule.poll_times(config.schedule.times, calendar)
    upcoming = ", ".join(f"{p:%a %d %b %H:%M}" for p in schedule.next_polls(calendar, times, now()))
    print(f"next polls: {upcoming}")
    warnings += schedule.deadline_warnings(calendar, times)
    register_dir = config.paths.register_dir
    probe = register_dir if register_dir.exists() else register_dir.parent
    if not os.access(probe, os.W_OK):
        warnings.append(f"the register folder {register_dir} is not writable")
    data = config.paths.data_dir
    # Windows has no such mode bits: there the folder's ACL is the administrator's to set.
    if sys.platform != "win32" and data.exists() and data.stat().st_mode & 0o077:
        warnings.append(f"the data folder {data} is readable by others: chmod 700 {data}")
    warnings += oauth.warnings(config, now())
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_PENDING if warnings else EXIT_OK


def _check_watch(config: Config, watch: Any) -> str:
    """Log in to a watched mailbox and open each folder read-only; '' when all is well."""
    from imapclient.exceptions import IMAPClientError

    from saraban_mail.mailbox import WatchedMailbox

    box = None
    try:
        box = WatchedMailbox(watch, oauth.watch_tokens(config, watch, now))
        for folder in watch.folders:
            box.uidvalidity(folder)
        return ""
    except (SarabanError, OSError, IMAPClientError) as exc:
        return str(exc)
    finally:
        if box is not None:
            box.close()


def _audits(config: Config, journal: Journal, years: list[int], *,
            noted: bool = False) -> list[Audit]:
    """The audit of each year's register; with `noted`, from the numbers the last poll
    noted when the workbook has not changed since (status need not open a large file)."""
    found = []
    for year in years:
        path = incoming_path(config.paths.register_dir, year)
        rows = journal.noted_sheet(year, stamp(path)) if noted else None
        if rows is None:
            from saraban_mail.register import read_rows

            rows = [(r.number, r.ref) for r in read_rows(path, INCOMING)[1]] if path.exists() else []
        entries = [Entry(number, service_ref(identity), written_at is not None, message)
                   for number, identity, written_at, message in journal.register_entries(year)]
        found.append(audit(year, path, entries, rows))
    return found


def _acks(journal: Journal) -> dict[str, list[dict[str, str | None]]]:
    due: list[dict[str, str | None]] = []
    late: list[dict[str, str | None]] = []
    for row in journal.acks_outstanding():
        item = {"receipt": f"{row['receipt_no']}/{row['receipt_year']}", "to": row["requester"],
                "due": row["due"], "sent": row["sent_at"]}
        (late if row["sent_at"] else due).append(item)
    return {"due": due, "late": late}


def _matter_states(journal: Journal) -> dict[str, Any]:
    from saraban_mail import matters

    by_state: dict[str, int] = {}
    waiting = []
    for matter in journal.matters():
        state = matter["state"] or "?"
        by_state[state] = by_state.get(state, 0) + 1
        if state in matters.WAITING_FOR:
            waiting.append({"receipt": f"{matter['receipt_no']}/{matter['year']}", "state": state,
                            "waiting_for": matters.WAITING_FOR[state], "since": matter["last_at"]})
    return {"by_state": by_state, "waiting": waiting}


# A poll this long after its time has not finished (a large backlog takes minutes).
LATE_POLL = timedelta(hours=1)


def _next_poll(config: Config, calendar: BusinessCalendar, noted: dict[str, Any] | None,
               moment: datetime) -> tuple[datetime | None, list[str]]:
    """The next scheduled poll (from the times the last poll noted, while they cover
    `moment`), with a warning when the first of them is well past and no poll finished."""
    from saraban_mail import schedule

    times = schedule.poll_times(config.schedule.times, calendar)
    key = schedule.timetable(calendar, times)
    late = []
    if noted and noted.get("timetable") == key and noted.get("next_polls"):
        expected = datetime.fromisoformat(noted["next_polls"][0]).astimezone(calendar.tz)
        if moment > expected + LATE_POLL:
            late.append(f"the poll due at {expected:%Y-%m-%d %H:%M} has not finished: "
                        "is the service running (saraban-mail run)?")
    upcoming = schedule.noted_polls(noted, key, moment) or schedule.next_polls(calendar, times,
                                                                                moment, 1)
    return next(iter(upcoming), None), late


def cmd_status(args: argparse.Namespace) -> int:
    """Is it working? One screen, or one JSON object for monitoring."""
    config = load_config(args.config)
    moment = now()
    rules = load_rules(config.paths.rules_dir)
    calendar = calendar_for(config, rules)
    journal = Journal.open(config.paths.data_dir)
    try:
        registers = []
        for year in journal.register_years():
            try:
                registers.extend(_audits(config, journal, [year], noted=True))
            except SarabanError as exc:
                print(f"saraban-mail: {exc}", file=sys.stderr)
        last = json.loads(journal.get_meta("last_poll") or "null")
        upcoming, late_poll = _next_poll(config, calendar,
                                         json.loads(journal.get_meta("poll_times") or "null"),
                                         moment)
        today = moment.astimezone(calendar.tz).date()
        pending_rows = len(journal.pending_register_rows())
        status: dict[str, Any] = {
            "last_poll": last,
            "last_failure": json.loads(journal.get_meta("last_failure") or "null"),
            "next_poll": upcoming.isoformat() if upcoming else None,
            "today": journal.counts(today.isoformat()),
            "this_year": journal.counts(str(today.year)),
            "messages": journal.counts(),
            "pending_register_rows": pending_rows,
            # Why rows wait: what the last poll could not write (the workbook open, locked).
            "pending_register_why": [p for p in (last or {}).get("problems", [])
                                     if "register" in p or "workbook" in p] if pending_rows else [],
            "pending_mail": len(journal.pending_mail()),
            "pending_mailbox_actions": len(journal.pending_actions()),
            "acknowledgements": _acks(journal),
            "matters": _matter_states(journal),
            "warnings": late_poll + oauth.warnings(config, moment),
            "registers": [
                {"file": a.path.name, "rows": a.rows, "highest": a.highest, "gaps": a.gaps,
                 "duplicates": a.duplicates, "missing": a.missing, "pending": a.pending,
                 "clashes": a.clashes}
                for a in registers
            ],
            "watched": [_watch_health(journal, w.name, w.watched_address) for w in config.watch],
        }
    finally:
        journal.close()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return EXIT_OK
    _print_status(status, registers)
    return EXIT_OK


def _watch_health(journal: Journal, name: str, address: str) -> dict[str, Any]:
    noted = json.loads(journal.get_meta(f"watch_health:{name}") or "{}")
    return {"name": name, "address": address, "ok": noted.get("ok"),
            "checked_at": noted.get("checked_at"), "last_read": noted.get("last_read"),
            "error": noted.get("error", ""), "copied": journal.watched_count(name)}


def _print_some(lines: list[str], shown: int = 5) -> None:
    """Keep status to one screen: the first few, and how many more (--json lists all)."""
    for line in lines[:shown]:
        print(f"  {line}")
    if len(lines) > shown:
        print(f"  ... and {len(lines) - shown} more (status --json lists them all)")


def _print_status(status: dict[str, Any], registers: list[Audit]) -> None:
    last, failure = status["last_poll"], status["last_failure"]
    if last:
        print(f"last poll: {last['at'][:16]}, {last['handled']} message(s), "
              f"{len(last['problems'])} problem(s)")
        for problem in last["problems"]:
            print(f"  {problem}")
    else:
        print("last poll: never")
    if failure and (not last or failure["at"] > last["at"]):
        print(f"last poll FAILED at {failure['at'][:16]}: {failure['error']}")
    print(f"next poll: {(status['next_poll'] or '-')[:16]}")
    for label, key in (("today", "today"), ("this year", "this_year")):
        counts = ", ".join(f"{k} {v}" for k, v in status[key].items()) or "none"
        print(f"{label}: {counts}")
    print(f"waiting: {status['pending_register_rows']} register row(s), {status['pending_mail']} "
          f"mail(s) to send, {status['pending_mailbox_actions']} mailbox action(s)")
    for why in status["pending_register_why"]:
        print(f"  {why}")
    acks = status["acknowledgements"]
    print(f"acknowledgements still due: {len(acks['due'])}, sent late: {len(acks['late'])}")
    _print_some([f"{item['receipt']}  due {item['due'][:16]}  sent {(item['sent'] or '-')[:16]}"
                 for item in acks["due"] + acks["late"]])
    print(f"matters by state: {status['matters']['by_state']}")
    _print_some([f"{item['receipt']}  {item['state']}: waiting for {item['waiting_for']}"
                 for item in status["matters"]["waiting"]])
    for seen in status["watched"]:
        if seen["ok"] is None:
            state = "not read yet"
        elif seen["ok"]:
            state = f"ok, read {seen['last_read'][:16]}"
        else:
            since = f"; last read {seen['last_read'][:16]}" if seen["last_read"] else ""
            state = f"FAILING at {seen['checked_at'][:16]}: {seen['error']}{since}"
        print(f"watched {seen['name']} ({seen['address']}): {state}; "
              f"{seen['copied']} request(s) copied in all")
    for warning in status["warnings"]:
        print(f"warning: {warning}")
    for found in registers:
        print("\n".join(found.lines()))


def cmd_register_check(args: argparse.Namespace) -> int:
    from saraban_mail.pipeline import write_register

    config = load_config(args.config)
    journal = Journal.open(config.paths.data_dir)
    try:
        years = [args.year] if args.year else journal.register_years()
        audits = _audits(config, journal, years)
        if args.repair and any(a.missing for a in audits):
            with journal.transaction():
                for found in audits:
                    journal.rewrite_rows(list(found.missing_messages))
            rules = load_rules(config.paths.rules_dir)
            problems = write_register(journal, config, calendar_for(config, rules),
                                      now)
            for problem in problems:
                print(f"saraban-mail: {problem}", file=sys.stderr)
            audits = _audits(config, journal, years)
    finally:
        journal.close()
    for found in audits:
        print("\n".join(found.lines()))
    return EXIT_OK if all(a.clean for a in audits) else EXIT_PENDING


def cmd_register_export(args: argparse.Namespace) -> int:
    from saraban_mail.register import export_csv, export_xlsx, read_rows

    config = load_config(args.config)
    path = incoming_path(config.paths.register_dir, args.year)
    if not path.exists():
        raise SarabanError(f"no register for {args.year}: {path} does not exist")
    out = Path(args.out or f"{path.stem}-export.{args.format}")
    if args.format == "csv":
        headings, rows = read_rows(path, INCOMING)
        export_csv(out, headings, rows)
    else:
        export_xlsx(path, out, INCOMING)
    print(f"{out}")
    return EXIT_OK


def _receipt(text: str, year: int | None) -> tuple[int, int]:
    number, _, in_text = text.partition("/")
    if not number.isdigit() or (in_text and not in_text.isdigit()):
        raise SarabanError(f"receipt '{text}' is not a number like 12 or 12/2569")
    return int(number), int(in_text or year or buddhist_year(now()))


def cmd_send_result(args: argparse.Namespace) -> int:
    from saraban_mail import results
    from saraban_mail.replies import Templates
    from saraban_mail.send import transport_for

    config = load_config(args.config)
    rules = load_rules(config.paths.rules_dir)
    templates = Templates(config.paths.templates_dir)
    calendar = calendar_for(config, rules)
    clock = lambda: now().astimezone(calendar.tz)  # noqa: E731
    number, year = _receipt(args.receipt, args.year)
    journal = (Journal.scratch if args.dry_run else Journal.open)(config.paths.data_dir)
    try:
        target = results.find_target(journal, config, year, number)
        files = results.load_files([Path(f) for f in args.files], config)
        mode = "default" if args.password is None else args.password
        prepared = results.queue(journal, config, templates, target, files, now=clock(),
                                 to=args.to or "", subject=args.subject or "", password_mode=mode,
                                 doc_no=args.doc_no or "", dry_run=args.dry_run,
                                 force=args.force, actor=os.environ.get("USER") or "clerk")
        if args.dry_run:
            _show_result(prepared)
            return EXIT_OK
        problems = _send_now(config, lambda mailbox: results.deliver(
            journal, config, transport_for(config.smtp, tokens_for(config)), mailbox, calendar,
            clock))
    finally:
        journal.close()
    for problem in problems:
        print(f"saraban-mail: {problem}", file=sys.stderr)
    label = f"result {prepared.send_no}/{prepared.year} for receipt {number}/{year}"
    print(f"{label} to {prepared.result.recipient}"
          + (" (password sent separately)" if prepared.password_mail else ""))
    return EXIT_PENDING if problems else EXIT_OK


def _send_now(config: Config, step: Callable[[Mailbox | None], list[str]]) -> list[str]:
    """Send what a clerk's command queued, unless a poll is running: then that poll (or
    the next) sends it, so nothing goes twice."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(single_instance(config.paths.data_dir))
        except SarabanError:
            return ["a poll is running: it sends the queued mail"]
        mailbox: Mailbox | None = None
        try:
            mailbox = open_mailbox(config, tokens_for(config), retry=False)
            stack.callback(mailbox.close)
        except SarabanError as exc:
            print(f"saraban-mail: {exc}; the copy in Sent is made at the next poll",
                  file=sys.stderr)
        return step(mailbox)


class _Office:
    """What a clerk's command needs: config, journal, templates, calendar, and a way to
    send what it queued at once (the poll retries whatever could not go)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from saraban_mail.replies import Templates

        self.config = load_config(args.config)
        rules = load_rules(self.config.paths.rules_dir)
        self.templates = Templates(self.config.paths.templates_dir)
        self.calendar = calendar_for(self.config, rules)
        self.journal = Journal.open(self.config.paths.data_dir)
        self.actor = getattr(args, "by", None) or os.environ.get("USER") or "clerk"

    def now(self) -> datetime:
        return now().astimezone(self.calendar.tz)

    def target(self, receipt: str, year: int | None):
        from saraban_mail import results

        number, year = _receipt(receipt, year)
        return results.find_target(self.journal, self.config, year, number)

    def send(self) -> list[str]:
        from saraban_mail.pipeline import send_queued
        from saraban_mail.send import transport_for

        return _send_now(self.config, lambda mailbox: send_queued(
            self.journal, self.config, transport_for(self.config.smtp, tokens_for(self.config)),
            mailbox, self.now))

    def finish(self, problems: list[str]) -> int:
        self.journal.close()
        for problem in problems:
            print(f"saraban-mail: {problem}", file=sys.stderr)
        return EXIT_PENDING if problems else EXIT_OK


def cmd_request_docs(args: argparse.Namespace) -> int:
    from saraban_mail import matters

    office = _Office(args)
    target = office.target(args.receipt, args.year)
    days = args.days or office.config.followup.documents_days
    deadline, _ = matters.request_documents(office.journal, office.config, office.templates,
                                            office.calendar, target, args.items, days,
                                            office.now(), office.actor)
    problems = office.send()
    problems += matters.note_in_register(
        office.config, target.receipt_year,
        [(target.receipt_no, f"ขอเอกสารเพิ่มเติม ครบกำหนด {thai_date(deadline)}")], office.journal)
    print(f"asked {target.recipient} for documents on {target.receipt_no}/{target.receipt_year}; "
          f"due {deadline.isoformat()}")
    return office.finish(problems)


def cmd_video_call(args: argparse.Namespace) -> int:
    from saraban_mail import matters

    office = _Office(args)
    target = office.target(args.receipt, args.year)
    at = datetime.fromisoformat(args.at).replace(tzinfo=office.calendar.tz)
    matters.video_call(office.journal, office.config, office.templates, target, at,
                       args.link or "", office.now(), office.actor)
    print(f"video-call appointment sent to {target.recipient} for {at:%Y-%m-%d %H:%M}")
    return office.finish(office.send())


def cmd_verify_identity(args: argparse.Namespace) -> int:
    from saraban_mail import matters

    office = _Office(args)
    number, year = _receipt(args.receipt, args.year)
    stored = matters.verify_identity(office.journal, office.config, year, number, args.method,
                                     [Path(p) for p in args.evidence], office.now(), office.actor)
    print(f"identity of {number}/{year} verified ({args.method}); {len(stored)} evidence file(s) "
          "kept privately")
    return office.finish([])


def cmd_deadlines(args: argparse.Namespace) -> int:
    from saraban_mail import matters, results

    office = _Office(args)
    findings = matters.housekeeping(
        office.journal, office.config, office.templates, office.calendar, office.now(),
        lambda year, number: results.find_target(office.journal, office.config, year, number),
    )
    office.journal.set_meta("housekeeping", office.now().date().isoformat())
    for finding in findings:
        print(f"{finding.number}/{finding.year}  {finding.kind}  {finding.text}")
    if not findings:
        print("no deadline passed, nothing to dispose")
    print(f"list for the head of agency: {office.config.paths.register_dir / 'to-dispose.xlsx'}",
          file=sys.stderr)
    return office.finish(office.send())


def cmd_dispose(args: argparse.Namespace) -> int:
    from saraban_mail import matters

    office = _Office(args)
    number, year = _receipt(args.receipt, args.year)
    problems = matters.dispose(office.journal, office.config, year, number, args.approved_by,
                               office.now())
    matters.write_disposal_list(office.journal, office.config, office.calendar)
    print(f"matter {number}/{year} disposed, approved by {args.approved_by}")
    return office.finish(problems)


def cmd_show(args: argparse.Namespace) -> int:
    from saraban_mail import matters

    office = _Office(args)
    number, year = _receipt(args.receipt, args.year)
    for line in matters.history(office.journal, year, number, office.calendar):
        print(line)
    return office.finish([])


def cmd_faq(args: argparse.Namespace) -> int:
    """The inquiry log as a CSV to build an FAQ from: what was asked, and where the answer is."""
    import csv

    from saraban_mail.layout import INQUIRIES, workbook_path
    from saraban_mail.register import read_rows

    config = load_config(args.config)
    year = args.year or buddhist_year(now())
    path = workbook_path(config.paths.register_dir, INQUIRIES, year)
    if not path.exists():
        raise SarabanError(f"no inquiry log for {year}: {path} does not exist")
    rows = read_rows(path, INQUIRIES)[1]
    out = Path(args.out or f"faq-{year}.csv")
    with open(out, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["เรื่อง", "แหล่งข้อมูล", "หมายเหตุ", "เลขทะเบียนรับ", "วันที่รับเรื่อง",
                         "วันที่ตอบกลับ"])
        for row in sorted(rows, key=lambda r: str(r.values.get("subject") or "")):
            v = row.values
            writer.writerow([v.get("subject") or "", v.get("source") or "", v.get("remarks") or "",
                             row.number or "", _day(v.get("received")), _day(v.get("replied"))])
    print(out)
    return EXIT_OK


def _day(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else ""


def _show_result(prepared) -> None:
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









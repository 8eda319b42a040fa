"""The administrator's commands: `status` (is it working? one screen, or JSON for
monitoring) and `check` (config, rules, templates, logins, folders, permissions)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from saraban_mail import backup, oauth, space
from saraban_mail.audit import Audit
from saraban_mail.calendar import BusinessCalendar
from saraban_mail.cli.exits import EXIT_OK, EXIT_PENDING
from saraban_mail.cli.keeping import personal_line
from saraban_mail.cli.registers import audit_registers
from saraban_mail.cli.review import line as review_line
from saraban_mail.cli.review import waiting
from saraban_mail.config import Config, load_config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.keeping import held
from saraban_mail.rules import load_rules
from saraban_mail.service import calendar_for, now, open_mailbox, tokens_for
from saraban_mail.thaitext import thai_date, thai_iso


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
                registers.extend(audit_registers(config, journal, [year], noted=True))
            except SarabanError as exc:
                print(f"saraban-mail: {exc}", file=sys.stderr)
        last = json.loads(journal.get_meta("last_poll") or "null")
        upcoming, late_poll = _next_poll(config, calendar,
                                         json.loads(journal.get_meta("poll_times") or "null"),
                                         moment)
        today = moment.astimezone(calendar.tz).date()
        pending_rows = len(journal.pending_register_rows())
        # Results live apart from replies (the results table), but wait for SMTP the same.
        results = [{"outgoing": f"{r['send_no']}/{r['year']}",
                    "receipt": f"{r['receipt_no']}/{r['receipt_year']}", "to": r["recipient"],
                    "error": r["last_error"]} for r in journal.results_to_send()]
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
            "pending_mail": len(journal.pending_mail()) + len(results),
            "pending_results": results,
            "pending_mailbox_actions": len(journal.pending_actions()),
            "acknowledgements": _acks(journal),
            "matters": _matter_states(journal),
            # Against each service's SLA (routes.py): overdue, due within the week, and
            # requests no unit took (left with the saraban desk).
            "service_levels": _service_levels(journal, today),
            # Our mail a bounce reported undeliverable (ส่งไม่ถึง), newest first.
            "undeliverable": _undeliverable(journal),
            # Mail a person must decide (needs_review), each with its deadline.
            "review": waiting(journal),
            "warnings": late_poll + oauth.warnings(config, moment) + backup.warnings(config, moment),
            "last_backup": json.loads(journal.get_meta("last_backup") or "null"),
            "registers": [
                {"file": a.path.name, "rows": a.rows, "highest": a.highest, "gaps": a.gaps,
                 "duplicates": a.duplicates, "missing": a.missing, "pending": a.pending,
                 "clashes": a.clashes}
                for a in registers
            ],
            "watched": [_watch_health(journal, w.name, w.watched_address) for w in config.watch],
            # The quota as the last poll read it: null before any, {} where there is none.
            "mailbox_space": json.loads(journal.get_meta("mailbox_space") or "null"),
            # Personal data held, by retention kind, and its custodian [seed 004 §2 ข้อ ๔–๕].
            "personal_data": held(config, journal, today, calendar.tz),
        }
        usage = space.Usage.from_json(journal.get_meta("mailbox_space"))
        status["warnings"] += space.warnings(usage, config.quota.warn_percent)
    finally:
        journal.close()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return EXIT_OK
    _print_status(status, registers, calendar.tz)
    return EXIT_OK


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


def _service_levels(journal: Journal, today: Any) -> dict[str, list[dict[str, Any]]]:
    from saraban_mail.routes import due_of

    return due_of(journal, today)


def _undeliverable(journal: Journal) -> list[dict[str, Any]]:
    return [{"kind": row["kind"], "to": row["recipient"], "at": row["bounced_at"],
             "reason": row["bounce_reason"],
             "receipt": f"{row['receipt_no']}/{row['receipt_year']}" if row["receipt_no"] else None,
             "outgoing": f"{row['send_no']}/{row['send_year']}" if row["send_no"] else None}
            for row in journal.bounced_mail()]


# A poll this long after its time has not finished (a large backlog takes minutes).
LATE_POLL = timedelta(hours=1)


def _next_poll(config: Config, calendar: BusinessCalendar, noted: dict[str, Any] | None,
               moment: datetime) -> tuple[datetime | None, list[str]]:
    """The next scheduled poll (from the times the last poll noted, while they cover
    `moment`), with a warning when the first of them is well past and no poll finished."""
    from saraban_mail import schedule

    times = schedule.poll_times(config.schedule.times, calendar,
                                config.schedule.before_closing_minutes)
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


def _print_status(status: dict[str, Any], registers: list[Audit], tz: tzinfo | None = None) -> None:
    """One screen for a person: dates a clerk reads in the Buddhist era (JSON keeps ISO)."""
    last, failure = status["last_poll"], status["last_failure"]
    if last:
        print(f"last poll: {last['at'][:16]}, {last['handled']} message(s), "
              f"{len(last['problems'])} problem(s)")
        for problem in last["problems"]:
            print(f"  {problem}")
        for note in last.get("notes", []):
            print(f"  note: {note}")
    else:
        print("last poll: never")
    if failure and (not last or failure["at"] > last["at"]):
        print(f"last poll FAILED at {failure['at'][:16]}: {failure['error']}")
    print(f"next poll: {(status['next_poll'] or '-')[:16]}")
    for label, key in (("today", "today"), ("this year", "this_year")):
        counts = ", ".join(f"{k} {v}" for k, v in status[key].items()) or "none"
        print(f"{label}: {counts}")
    results = status["pending_results"]
    print(f"waiting: {status['pending_register_rows']} register row(s), {status['pending_mail']} "
          f"mail(s) to send" + (f" ({len(results)} result(s))" if results else "")
          + f", {status['pending_mailbox_actions']} mailbox action(s)")
    for why in status["pending_register_why"]:
        print(f"  {why}")
    _print_some([f"result {r['outgoing']} for receipt {r['receipt']} to {r['to']}"
                 + (f": {r['error']}" if r["error"] else "") for r in results])
    acks = status["acknowledgements"]
    print(f"acknowledgements still due: {len(acks['due'])}, sent late: {len(acks['late'])}")
    _print_some([f"{item['receipt']}  due {thai_iso(item['due'], tz)}  "
                 f"sent {thai_iso(item['sent'], tz)}" for item in acks["due"] + acks["late"]])
    print(f"waiting for a person: {len(status['review'])} mail(s) (saraban-mail review)")
    _print_some([review_line(item) for item in status["review"]])
    by_state = status["matters"]["by_state"]
    print("matters: " + (", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
                         or "none"))
    _print_some([f"{item['receipt']}  {item['state']}: waiting for "
                 f"{item['waiting_for']} since {thai_iso(item['since'], tz)}"
                 for item in status["matters"]["waiting"]])
    levels = status["service_levels"]
    if any(levels.values()):
        print(f"service levels: {len(levels['overdue'])} overdue, {len(levels['soon'])} due "
              f"this week, {len(levels['unrouted'])} with no unit (saraban-mail deadlines)")
        _print_some([f"{m['receipt']}  overdue since {m['due']}, {m['unit'] or '-'}"
                     for m in levels["overdue"]]
                    + [f"{m['receipt']}  no unit: saraban-mail route {m['receipt']} UNIT"
                       for m in levels["unrouted"]])
    undeliverable = status["undeliverable"]
    if undeliverable:
        print(f"undeliverable: {len(undeliverable)} mail(s) bounced")
        _print_some([f"{item['kind']}"
                     + (f" {item['outgoing']}" if item["outgoing"] else "")
                     + (f" of {item['receipt']}" if item["receipt"] else "")
                     + f" to {item['to']} ({thai_iso(item['at'], tz)}): {item['reason']}"
                     for item in undeliverable])
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
    if status["mailbox_space"] is not None:
        print(space.line(space.Usage.from_json(json.dumps(status["mailbox_space"]))))
    print(personal_line(status["personal_data"]))
    done = status["last_backup"]
    print(f"last backup: {thai_iso(done['at'], tz)} in {done['folder']}" if done else
          "last backup: none (saraban-mail backup DEST)")
    shown = set(last["problems"]) if last else set()  # the mailbox space: said once
    for warning in status["warnings"]:
        if warning not in shown:
            print(f"warning: {warning}")
    for found in registers:
        print("\n".join(found.lines()))


def cmd_check(args: argparse.Namespace) -> int:
    from saraban_mail import schedule
    from saraban_mail.poll.replying import check_templates
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
        how = dict(f.how)
        listed = " ".join(f"{role}={name or '(none)'}" + (f" ({how[role]})" if role in how else "")
                          for role, name in (("inbox", f.inbox), ("junk", f.junk),
                                             ("trash", f.trash), ("sent", f.sent)))
        print(f"mailbox ok: {listed}")
        capabilities = getattr(box, "capabilities", None)
        if capabilities:
            # What the service does differently by what the server announces.
            have = capabilities()
            print("server: " + " ".join(f"{name}={'yes' if on else 'no'}"
                                        for name, on in have.items()))
            print("  moves: " + ("MOVE" if have["MOVE"] else
                                 "COPY, then delete (each step noted, never twice)")
                  + "; removes: " + ("UID EXPUNGE" if have["UIDPLUS"] else
                                     "EXPUNGE only when no one else's mail is flagged deleted")
                  + "; new mail: " + ("IDLE" if have["IDLE"] else "a poll every few minutes"))
        warnings += f.problems
        if f.extra:
            print(f"extra folders read like the inbox: {', '.join(f.extra)}")
        warnings += [f"imap.extra_folders: the server has no folder '{name}'"
                     for name in f.missing]
        from saraban_mail.mailbox_space import quota

        try:
            usage = quota(box, now())
            print(space.line(usage))
            warnings += space.warnings(usage, config.quota.warn_percent)
        except SarabanError as exc:  # the other checks still run and are shown
            warnings.append(f"mailbox space: {exc}")
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
        try:
            print(f"smtp ok: {transport.check()}")
        except SarabanError as exc:  # the other checks still run and are shown
            warnings.append(f"smtp: {exc}")
    else:
        print(f"smtp: pickup folder {config.smtp.pickup_dir}")
    times = schedule.poll_times(config.schedule.times, calendar,
                                config.schedule.before_closing_minutes)
    upcoming = ", ".join(f"{p:%a %d %b %H:%M}" for p in schedule.next_polls(calendar, times, now()))
    print(f"next polls: {upcoming}")
    warnings += schedule.deadline_warnings(calendar, times, config.schedule.watch)
    print(_start_date_line(config))
    register_dir = config.paths.register_dir
    probe = register_dir if register_dir.exists() else register_dir.parent
    if not os.access(probe, os.W_OK):
        warnings.append(f"the register folder {register_dir} is not writable")
    # What the clerks' group needs, with the command that fixes it (files.sharing_problems).
    from saraban_mail.files import sharing_problems

    for folder, what in ((register_dir, "register"), (config.results.outbox_dir, "outbox")):
        warnings += [p for p in sharing_problems(folder, config.sharing, what) if p not in warnings]
    data = config.paths.data_dir
    # Windows has no such mode bits: there the folder's ACL is the administrator's to set.
    if sys.platform != "win32" and data.exists() and data.stat().st_mode & 0o077:
        warnings.append(f"the data folder {data} is readable by others: chmod 700 {data}")
    warnings += oauth.warnings(config, now()) + backup.warnings(config, now())
    if config.seal.pkcs12 is not None:
        from saraban_mail import seal

        found = seal.health(config.seal, now())
        warnings += found.lines
        if not found.lines:
            print(f"seal ok: {config.seal.pkcs12.name}, timestamps from {config.seal.tsa_url}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_PENDING if warnings else EXIT_OK


def _start_date_line(config: Config) -> str:
    """Where mail starts to count: the setting, or the day the first poll chose."""
    chosen = config.policy.start_date
    if chosen:
        return f"start date: {chosen} ({thai_date(chosen)}), policy.start_date"
    kept = None
    if (config.paths.data_dir / "journal.sqlite3").exists():
        journal = Journal.open(config.paths.data_dir)
        try:
            kept = journal.get_meta("start_date")
        finally:
            journal.close()
    if kept:
        day = date.fromisoformat(kept)
        return (f"start date: {day} ({thai_date(day)}), chosen by the first poll and kept in "
                "the journal (policy.start_date is not set)")
    return ("start date: policy.start_date is not set: the first poll starts at its own day "
            "and leaves older mail alone")


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

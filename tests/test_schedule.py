"""The daemon's timetable, and the daemon itself against the real servers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time as clock
from datetime import date, datetime, time, timedelta

from saraban_mail.calendar import BANGKOK, BusinessCalendar
from saraban_mail.schedule import (
    NOTED_POLLS,
    deadline_warnings,
    missed,
    next_polls,
    noted_polls,
    poll_times,
    timetable,
)
from tests.conftest import deliver
from tests.test_intake_e2e import records, run_poll

CAL = BusinessCalendar()
TIMES = poll_times([], CAL, 30)


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BANGKOK)


def test_default_checks_are_at_opening_and_before_closing():
    # "เมื่อเริ่มงานและก่อนเลิกงาน": the afternoon check half an hour before closing, not at
    # the same instant as the same-day deadline (its acknowledgements were then late).
    assert [time(8, 30), time(16, 0)] == TIMES
    assert poll_times([], BusinessCalendar(closing=time(16, 0)), 45) == [time(8, 30), time(15, 15)]
    assert poll_times([time(16, 30), time(9, 0)], CAL, 30) == [time(9, 0), time(16, 30)]


def test_next_polls_skip_weekends_and_holidays():
    # Friday 10 April 2026 after closing: Monday-Wednesday are Songkran.
    assert next_polls(CAL, TIMES, bkk(2026, 4, 10, 17, 0)) == [
        bkk(2026, 4, 16, 8, 30), bkk(2026, 4, 16, 16, 0), bkk(2026, 4, 17, 8, 30)]


def test_a_pc_switched_on_late_catches_up_the_missed_poll():
    last = bkk(2026, 11, 20, 16, 0)  # Friday's afternoon poll ran
    assert missed(CAL, TIMES, last, bkk(2026, 11, 23, 9, 10)) == bkk(2026, 11, 23, 8, 30)
    assert missed(CAL, TIMES, bkk(2026, 11, 23, 8, 30), bkk(2026, 11, 23, 9, 10)) is None
    assert missed(CAL, TIMES, last, bkk(2026, 11, 22, 12, 0)) is None  # Sunday: nothing due


def test_noted_poll_times_hold_until_the_last_and_only_for_their_timetable():
    noted_at = bkk(2026, 4, 10, 17, 0)  # Friday after closing; Songkran Monday-Wednesday
    key = timetable(CAL, TIMES)
    ahead = next_polls(CAL, TIMES, noted_at, NOTED_POLLS)
    note = {"at": noted_at.isoformat(), "next_polls": [t.isoformat() for t in ahead],
            "timetable": key}
    moment = noted_at
    while held := noted_polls(note, key, moment):
        assert held == next_polls(CAL, TIMES, moment, len(held))  # what the holiday table says
        moment += timedelta(minutes=7)
    assert ahead[0] == bkk(2026, 4, 16, 8, 30)
    assert ahead[-1] - timedelta(minutes=7) < moment  # held up to the last noted time
    assert noted_polls(note, key, bkk(2026, 4, 10, 16, 59)) == []  # before the note
    assert noted_polls(None, key, noted_at) == []
    decree = BusinessCalendar(added={date(2026, 4, 16): "วันหยุดราชการเป็นกรณีพิเศษ"})
    assert noted_polls(note, timetable(decree, TIMES), noted_at) == []
    assert noted_polls(note, timetable(CAL, [time(9, 0)]), noted_at) == []


def test_a_timetable_that_cannot_meet_the_deadlines_is_warned_about():
    assert deadline_warnings(CAL, TIMES, watching=True) == []
    assert "acknowledged late" in deadline_warnings(CAL, [time(11, 0), time(16, 30)], True)[0]
    assert "same-day deadline" in deadline_warnings(CAL, [time(8, 30), time(13, 0)], True)[0]
    # Without the watch, mail after a 16:00 check waits for the next morning: said so.
    (unwatched,) = deadline_warnings(CAL, TIMES, watching=False)
    assert "schedule.watch is off" in unwatched and "16:00" in unwatched
    assert deadline_warnings(CAL, [time(8, 30), time(16, 30)], watching=False) == []


def test_new_mail_is_what_neither_the_journal_nor_the_last_poll_has_seen():
    from saraban_mail.watcher import Seen, is_new

    assert is_new(7, 2, None, None)  # a first message, no journal yet
    assert not is_new(7, 1, None, None)  # an empty INBOX
    assert not is_new(7, 11, (7, 10), None)  # all taken
    assert is_new(7, 12, (7, 10), None)
    assert is_new(8, 11, (7, 10), None)  # the folder was rebuilt: UIDs start again
    # Mail older than policy.start_date stays above the journal's mark: new only once.
    assert not is_new(7, 12, (7, 3), Seen(7, 12))
    assert is_new(7, 13, (7, 3), Seen(7, 12))
    assert is_new(7, 12, (7, 3), Seen(6, 12))


def cli_env(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(extra)
    return env


def test_the_daemon_catches_up_at_start_and_stops_cleanly_on_sigterm(office, dovecot,
                                                                     imap_account, smtp):
    from saraban_mail.demo import samples

    permit = samples()[0]
    deliver(dovecot, imap_account, "INBOX", permit.raw, permit.received_at)
    # Monday 23 November 2026, 09:10: the 08:30 poll was missed (no poll ever ran).
    env = cli_env(SARABAN_NOW="2026-11-23T09:10:00+07:00")
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "run", "--config",
                               str(office)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = clock.monotonic() + 60
        while clock.monotonic() < deadline and not smtp.messages:
            clock.sleep(0.2)
        assert smtp.messages, "the catch-up poll did not run"
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "catching up now" in err and "stopping" in err
    status = subprocess.run([sys.executable, "-m", "saraban_mail", "status", "--json",
                             "--config", str(office)], env=env, capture_output=True, text=True)
    last = json.loads(status.stdout)["last_poll"]
    assert last["handled"] == 1 and last["at"].startswith("2026-11-23T09:10")
    assert records(run_poll(office, "--json")) == []  # consistent: nothing left half-done


def test_sigterm_in_the_middle_of_a_poll_stops_cleanly_and_loses_nothing(office, dovecot,
                                                                         imap_account, smtp):
    import sqlite3

    from tests.test_service_e2e import citizen_request

    for n in range(80):
        deliver(dovecot, imap_account, "INBOX", *citizen_request(n, padding=2000))
    env = cli_env(SARABAN_NOW="2026-11-23T09:10:00+07:00")
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "run", "--config",
                               str(office)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    journal = office.parent / "data" / "journal.sqlite3"
    seen = 0
    try:
        deadline = clock.monotonic() + 60
        while clock.monotonic() < deadline and seen < 3:
            clock.sleep(0.02)
            if journal.exists():
                with contextlib.suppress(sqlite3.Error):
                    db = sqlite3.connect(journal, timeout=0.1)
                    seen = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
                    db.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "stopping" in err and "Traceback" not in err
    db = sqlite3.connect(journal)
    taken = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    db.close()
    assert 3 <= taken < 80, "SIGTERM came too late to be in the middle of the poll"
    rest = run_poll(office, "--json")  # the next poll finishes the work, once
    assert rest.returncode == 0, rest.stderr
    assert len(records(rest)) == 80 - taken
    acks = sorted(r for _, rcpts, _ in smtp.messages for r in rcpts)
    assert acks == sorted(f"citizen{n}@gmail.com" for n in range(80))


def test_sighup_reloads_and_an_invalid_new_config_keeps_the_old_one(office, dovecot, smtp):
    env = cli_env(SARABAN_NOW="2026-11-23T09:10:00+07:00")
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "run", "--config",
                               str(office)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    good = office.read_text()
    try:
        clock.sleep(3)  # the daemon is up and has done its catch-up poll
        office.write_text(good + "\n[schedule]\ntimes = [\"25:99\"]\n")
        daemon.send_signal(signal.SIGHUP)
        clock.sleep(1.5)
        office.write_text(good + '\n[schedule]\ntimes = ["08:30", "16:00"]\n')
        daemon.send_signal(signal.SIGHUP)
        clock.sleep(1.5)
        assert daemon.poll() is None, "the daemon exited on a reload"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    refused = err.index("new configuration refused, keeping the old one")
    assert "schedule.times" in err[refused:].splitlines()[0]
    assert err.index("configuration and rules reloaded") > refused


def test_check_says_what_is_wrong(office, dovecot, imap_account, smtp, monkeypatch):
    ok = subprocess.run([sys.executable, "-m", "saraban_mail", "check", "--config", str(office)],
                        capture_output=True, text=True, env=os.environ.copy())
    assert ok.returncode == 0, ok.stderr
    assert "next polls:" in ok.stdout and f"smtp ok: 127.0.0.1:{smtp.port}" in ok.stdout
    assert smtp.messages == []  # logged in, sent nothing
    office.write_text(office.read_text() + '\n[schedule]\ntimes = ["11:00"]\n')
    late = subprocess.run([sys.executable, "-m", "saraban_mail", "check", "--config", str(office)],
                          capture_output=True, text=True, env=os.environ.copy())
    assert late.returncode == 3 and "acknowledged late" in late.stderr
    office.write_text(office.read_text().replace('username = "', 'junk = "Nope"\nusername = "'))
    wrong = subprocess.run([sys.executable, "-m", "saraban_mail", "check", "--config",
                            str(office)], capture_output=True, text=True, env=os.environ.copy())
    assert wrong.returncode == 3, wrong.stderr
    assert 'imap.junk = "Nope": the server has no such folder' in wrong.stderr
    password = subprocess.run(
        [sys.executable, "-m", "saraban_mail", "check", "--config", str(office)],
        capture_output=True, text=True, env=dict(os.environ, SARABAN_IMAP__PASSWORD="Wr0ng-Pa55"))
    assert password.returncode == 2 and "refused the login" in password.stderr
    assert "Wr0ng-Pa55" not in password.stderr + password.stdout  # the password is never shown
    office.write_text("[imap\nport = 1\n")
    broken = subprocess.run([sys.executable, "-m", "saraban_mail", "check", "--config",
                             str(office)], capture_output=True, text=True, env=os.environ.copy())
    assert broken.returncode == 2 and "not valid TOML" in broken.stderr and "line 1" in broken.stderr


def test_install_service_writes_a_unit_systemd_accepts(tmp_path):
    import shutil

    from saraban_mail.demo import create_demo

    config = create_demo(tmp_path / "office")
    unit = tmp_path / "saraban-mail.service"
    result = subprocess.run([sys.executable, "-m", "saraban_mail", "install-service", "--config",
                             str(config), "--user", "root", "--out", str(unit)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = unit.read_text()
    assert f"SARABAN_CONFIG={config}" in text and "ProtectSystem=strict" in text
    assert f"ReadWritePaths={tmp_path / 'office' / 'data'}" in text
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                                text=True)
        problems = [line for line in verify.stderr.splitlines()
                    if "saraban-mail.service" in line and "Failed to" not in line]
        assert problems == [], verify.stderr

"""Acknowledgement on arrival: `saraban-mail run` watches INBOX (IMAP IDLE against the real
Dovecot) and registers and acknowledges new mail within seconds, between the scheduled checks;
without IDLE it looks every schedule.watch_minutes; a dropped connection is made again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from saraban_mail.layout import INCOMING
from tests.conftest import CONFIG, IN_CI, deliver
from tests.servers import PASSWORD, CuttingProxy, Dovecot, dovecot_available, start_dovecot
from tests.test_service_e2e import citizen_request

# Dovecot 2.3's own list without IDLE, as a server that lacks it announces itself.
NO_IDLE = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES "
           "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
           "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
           "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SPECIAL-USE")
ARRIVAL_WAIT = 20.0  # seconds: the bound the watch must meet (it takes one or two)


class Daemon:
    """`saraban-mail run` as a subprocess, its log lines read as they come."""

    def __init__(self, config: Path, now: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "saraban_mail", "run", "--config", str(config)],
            env=dict(os.environ, SARABAN_NOW=now), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        until(lambda: self.log.count(text) >= count, timeout, f"no {text!r} in the log:\n{self.log}")

    def stop(self) -> float:
        """SIGTERM; the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        return time.monotonic() - started


@contextmanager
def running(config: Path, now: str) -> Iterator[Daemon]:
    daemon = Daemon(config, now)
    try:
        yield daemon
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


def until(check: Callable[[], bool], timeout: float, message: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(message)
        time.sleep(0.2)


def acknowledged(smtp, address: str) -> bool:
    return any(address in rcpts for _, rcpts, _ in smtp.messages)


def incoming_rows(config: Path) -> dict[str, dict[str, object]]:
    path = config.parent / "register" / "incoming-2569.xlsx"
    if not path.exists():
        return {}
    try:
        sheet = openpyxl.load_workbook(path).worksheets[0]
    except Exception:  # caught in the middle of an atomic replace: read again
        return {}
    titles = [c.title for c in INCOMING.columns]
    rows = {}
    for values in sheet.iter_rows(min_row=3, values_only=True):
        row = dict(zip(titles, values, strict=False))
        rows[str(row["เรื่อง"])] = row
    return rows


def arrive(dovecot: Dovecot, account: str, n: int, when: str) -> str:
    """Deliver citizen n's request, arrived at `when` (the daemon's clock); its sender."""
    raw, _ = citizen_request(n)
    deliver(dovecot, account, "INBOX", raw, datetime.fromisoformat(when))
    return f"citizen{n}@gmail.com"


def registered_and_acknowledged(config: Path, smtp, n: int) -> None:
    """Within ARRIVAL_WAIT of its arrival: the acknowledgement at the SMTP server, and the
    register row with its receipt number and the time it went."""
    until(lambda: acknowledged(smtp, f"citizen{n}@gmail.com"), ARRIVAL_WAIT,
          f"request {n} was not acknowledged within {ARRIVAL_WAIT:g} s")
    subject = f"ขอข้อมูลข่าวสาร เรื่องที่ {n}"
    until(lambda: bool(incoming_rows(config).get(subject, {}).get("ตอบรับเมื่อ")),
          ARRIVAL_WAIT, f"request {n} has no register row with its acknowledgement time")
    row = incoming_rows(config)[subject]
    assert row["เลขทะเบียนรับ"]
    assert row["ตอบรับเมื่อ"] <= row["กำหนดตอบรับ"]


def test_mail_is_registered_and_acknowledged_on_arrival_and_sigterm_stops_at_once(
        office, dovecot, imap_account, smtp):
    # Monday 23 November 2026, 16:25: after the 16:00 check, five minutes before closing.
    # Mail now is due today; no scheduled poll comes before tomorrow's 08:30.
    now = "2026-11-23T16:25:00+07:00"
    with running(office, now) as daemon:
        daemon.wait_for("watching INBOX for new mail (IMAP IDLE)")
        arrive(dovecot, imap_account, 1, now)
        registered_and_acknowledged(office, smtp, 1)
        arrive(dovecot, imap_account, 2, now)  # the watch goes on after its poll
        registered_and_acknowledged(office, smtp, 2)
        daemon.process.send_signal(signal.SIGHUP)  # a reload: watched with the new config
        daemon.wait_for("watching INBOX for new mail", count=2)
        arrive(dovecot, imap_account, 3, now)
        registered_and_acknowledged(office, smtp, 3)
        took = daemon.stop()
    assert daemon.process.returncode == 0, daemon.log
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in daemon.log and daemon.lines[-1].endswith("stopped")
    status = subprocess.run([sys.executable, "-m", "saraban_mail", "status", "--json", "--config",
                             str(office)], capture_output=True, text=True,
                            env=dict(os.environ, SARABAN_NOW="2026-11-23T16:31:00+07:00"))
    acks = json.loads(status.stdout)["acknowledgements"]
    assert acks == {"due": [], "late": []}  # every one on time, none waiting


def test_mail_present_when_the_daemon_starts_is_taken_at_once(office, dovecot, imap_account,
                                                             smtp, monkeypatch):
    from tests.test_intake_e2e import run_poll

    # The morning check ran at 08:45; the service was down from then and starts at 10:00:
    # no check was missed, and the mail of 09:40 is due today.
    address = arrive(dovecot, imap_account, 4, "2026-11-23T08:40:00+07:00")
    monkeypatch.setenv("SARABAN_NOW", "2026-11-23T08:45:00+07:00")
    assert run_poll(office, "--json").returncode == 0
    arrive(dovecot, imap_account, 5, "2026-11-23T09:40:00+07:00")  # while it was down
    with running(office, "2026-11-23T10:00:00+07:00") as daemon:
        registered_and_acknowledged(office, smtp, 5)
        daemon.stop()
    assert "catching up" not in daemon.log  # no check was missed: the watch took it
    assert sum(address in rcpts for _, rcpts, _ in smtp.messages) == 1


def test_mail_after_hours_is_acknowledged_at_once_and_received_at_the_next_opening(
        office, dovecot, imap_account, smtp):
    # Monday 19:00, after closing: the watch does not wait for Tuesday's 08:30 check.
    now = "2026-11-23T19:00:00+07:00"
    with running(office, now) as daemon:
        daemon.wait_for("watching INBOX for new mail (IMAP IDLE)")
        arrive(dovecot, imap_account, 8, now)
        registered_and_acknowledged(office, smtp, 8)
        daemon.stop()
    row = incoming_rows(office)["ขอข้อมูลข่าวสาร เรื่องที่ 8"]
    assert row["วันเวลาที่อีเมลเข้าระบบ"] == datetime(2026, 11, 23, 19, 0)
    assert row["วันเวลารับ (ตามกฎหมาย)"] == datetime(2026, 11, 24, 8, 30)  # the calendar's
    assert row["กำหนดตอบรับ"] == datetime(2026, 11, 24, 10, 0)
    assert row["ตอบรับเมื่อ"] == datetime(2026, 11, 23, 19, 0)


@pytest.fixture(scope="module")
def dovecot_without_idle():
    if not dovecot_available():
        (pytest.fail if IN_CI else pytest.skip)("Dovecot is not installed")
    server = start_dovecot(settings=f"imap_capability = {NO_IDLE}")
    yield server
    server.close()


def test_without_idle_the_daemon_looks_every_few_seconds(tmp_path, dovecot_without_idle, smtp,
                                                        monkeypatch):
    import imapclient

    account = dovecot_without_idle.account()
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot_without_idle.port, ssl=False)
    client.login(account, PASSWORD)
    assert b"IDLE" not in client.capabilities()
    client.logout()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(imap_port=dovecot_without_idle.port, account=account,
                                    smtp_port=smtp.port)
                      + "\n[schedule]\nwatch_minutes = 0.05\n", encoding="utf-8")
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
    with running(config, "2026-11-23T11:00:00+07:00") as daemon:
        daemon.wait_for("every 0.05 min: the server has no IDLE")
        arrive(dovecot_without_idle, account, 6, "2026-11-23T11:00:00+07:00")
        registered_and_acknowledged(config, smtp, 6)
        took = daemon.stop()
    assert daemon.process.returncode == 0 and took < 5, daemon.log


def test_a_dropped_watch_connection_is_made_again(office, dovecot, imap_account, smtp):
    # The first IDLE dies on the wire (a router dropping the connection), as the server
    # answers it: the watch notices, connects again after network.retry_delays, and watches.
    relay = CuttingProxy(dovecot.port, cuts=1, cut_on=b"IDLE")
    office.write_text(office.read_text().replace(f"port = {dovecot.port}", f"port = {relay.port}"))
    try:
        with running(office, "2026-11-23T11:00:00+07:00") as daemon:
            daemon.wait_for("watching INBOX for new mail (IMAP IDLE)", count=2)
            assert relay.cut == 1
            assert "watching INBOX: watching INBOX: connection lost" not in daemon.log
            assert "connection lost" in daemon.log and "trying again in 0.2 s" in daemon.log
            arrive(dovecot, imap_account, 7, "2026-11-23T11:00:00+07:00")
            registered_and_acknowledged(office, smtp, 7)
            daemon.stop()
    finally:
        relay.close()
    assert daemon.process.returncode == 0 and "Traceback" not in daemon.log, daemon.log

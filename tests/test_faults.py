"""Faults: the network, the servers, the disk and the clock misbehave in the middle of a
poll. Each time the service says so clearly, and a later run completes the work with the
invariants of the crash suite (registered once, 1..N, one acknowledgement each, nothing
lost or moved twice, `register check` clean).

The disk faults mount a tiny tmpfs or a read-only bind mount in a private mount
namespace (unshare -m), so the rest of the machine never sees them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saraban_mail.demo import samples
from tests.conftest import IN_CI, SERVERS, deliver, each_server
from tests.servers import CuttingProxy, start_dovecot
from tests.test_crash import CRASH_CONFIG, check_invariants, mailbox_of

# Every fault on the plain Dovecot and on one imitating Courier-IMAP (no MOVE: COPY, then
# delete, each step noted so that a cut between them copies nothing twice).
dovecot = pytest.fixture(name="dovecot", params=SERVERS)(each_server)


def poll(office: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", "poll", "--config", str(office)],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=300)


def prepare(office: Path, dovecot, account: str, count: int, seed: int = 7, offset: int = 0):
    if CRASH_CONFIG not in office.read_text():
        office.write_text(office.read_text().replace("[policy]\n", "[policy]\n" + CRASH_CONFIG))
    mail = mailbox_of(count + offset, seed)[offset:]
    for folder, raw, when in mail:
        deliver(dovecot, account, folder, raw, when)
    return mail


def point(office: Path, old: int, new: int) -> None:
    office.write_text(office.read_text().replace(f"port = {old}\n", f"port = {new}\n"))


def one_clear_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert lines, result.stderr
    return lines[-1]


def in_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (root, or unshare allowed)."""
    if not shutil.which("unshare"):
        pytest.fail("unshare is missing") if IN_CI else pytest.skip("unshare is missing")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        message = f"no mount namespaces here: {probe.stderr.decode().strip()}"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)


def test_connection_cut_mid_move_moves_each_message_once(office, dovecot, imap_account, smtp):
    """The line cut right after the server was sent MOVE, or on a server without MOVE right
    after COPY (its answer never heard): the retry must not copy again."""
    mail = prepare(office, dovecot, imap_account, 40)
    command = b" COPY " if dovecot.imitates else b" MOVE "
    proxy = CuttingProxy(dovecot.port, cut_on=command, cuts=2)  # as many as retry_delays
    point(office, dovecot.port, proxy.port)
    result = poll(office)
    proxy.close()
    assert proxy.cut == 2
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("connecting again") == 2
    point(office, proxy.port, dovecot.port)
    assert poll(office).returncode == 0
    check_invariants(office, dovecot, imap_account, smtp, mail)


def test_server_restarted_during_a_poll(office, dovecot, imap_account, smtp):
    # restarted here: not the suite's shared server (same users, same kind of server)
    own = start_dovecot(imitate=dovecot.imitates)
    try:
        account = imap_account
        point(office, dovecot.port, own.port)
        office.write_text(office.read_text().replace("retry_delays = [0.2, 0.5]",
                                                     "retry_delays = [1, 2, 4]"))
        mail = prepare(office, own, account, 150)
        process = subprocess.Popen([sys.executable, "-m", "saraban_mail", "poll", "--config",
                                    str(office)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        journal = office.parent / "data" / "journal.sqlite3"
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
            with contextlib.suppress(sqlite3.Error):
                db = sqlite3.connect(journal, timeout=0.1)
                seen = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
                db.close()
        own.stop()
        time.sleep(0.5)
        own.start()
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "connecting again" in err and "Traceback" not in err
        assert 5 <= seen < 150
        assert poll(office).returncode == 0
        check_invariants(office, own, account, smtp, mail)
    finally:
        own.close()


def test_smtp_refusing_for_good_is_reported_and_not_retried(office, dovecot, imap_account, smtp):
    permit = samples()[0]  # a valid request
    deliver(dovecot, imap_account, "INBOX", permit.raw, permit.received_at)
    smtp.refuse = "550 5.1.1 mailbox unavailable"
    first = poll(office)
    assert first.returncode == 3
    assert "550 5.1.1 mailbox unavailable (refused for good)" in first.stderr
    smtp.refuse = ""
    again = poll(office)
    assert again.returncode == 0 and smtp.messages == []


def test_smtp_server_that_hangs_times_out_and_sends_later(office, dovecot, imap_account, smtp):
    mail = prepare(office, dovecot, imap_account, 12)
    office.write_text(office.read_text().replace('[smtp]\n', '[smtp]\ntimeout = 1\n', 1))
    smtp.hang = 3
    started = time.monotonic()
    first = poll(office)
    assert time.monotonic() - started < 60
    assert first.returncode == 3, first.stderr
    assert "Timed out" in first.stderr or "timed out" in first.stderr
    assert smtp.messages == []
    smtp.hang = 0
    assert poll(office).returncode == 0
    check_invariants(office, dovecot, imap_account, smtp, mail)


def test_disk_full_while_saving_the_register(office, dovecot, imap_account, smtp):
    mail = prepare(office, dovecot, imap_account, 20)
    register = office.parent / "register"
    register.mkdir()
    full = in_namespace(f"mount -t tmpfs -o size=4k tmpfs {register} && exec {sys.executable} "
                        f"-m saraban_mail poll --config {office}")
    assert full.returncode == 3, full.stderr
    line = next(line for line in full.stderr.splitlines() if "register" in line.lower())
    assert "No space left on device" in line and "Traceback" not in full.stderr
    assert smtp.messages  # the acknowledgements did not wait for the workbook
    again = poll(office)
    assert again.returncode == 0, again.stderr
    check_invariants(office, dovecot, imap_account, smtp, mail)


def test_read_only_data_folder_is_one_clear_line_and_touches_nothing(office, dovecot,
                                                                    imap_account, smtp):
    first = prepare(office, dovecot, imap_account, 5)
    assert poll(office).returncode == 0
    later = prepare(office, dovecot, imap_account, 5, offset=5)
    data = office.parent / "data"
    locked = in_namespace(f"mount --bind {data} {data} && mount -o remount,bind,ro {data} && "
                          f"exec {sys.executable} -m saraban_mail poll --config {office}")
    assert locked.returncode == 2, locked.stderr
    assert "read-only" in one_clear_line(locked).lower()
    sent = len(smtp.messages)
    assert poll(office).returncode == 0
    assert len(smtp.messages) > sent
    check_invariants(office, dovecot, imap_account, smtp, first + later)


def test_the_clock_jumping_back_and_forth(office, dovecot, imap_account, smtp):
    # The jump to January would rightly empty Trash of the spam moved in November (older
    # than policy.trash_days): kept here, so that every message can be counted at the end.
    office.write_text(office.read_text().replace("[policy]\n", "[policy]\ntrash_days = 3650\n"))
    mail = []
    for offset, now in ((0, "2026-11-23T09:00:00+07:00"), (6, "2026-11-20T09:00:00+07:00"),
                        (12, "2027-01-04T09:00:00+07:00"), (18, "2026-11-23T08:00:00+07:00")):
        mail += prepare(office, dovecot, imap_account, 6, offset=offset)
        result = poll(office, SARABAN_NOW=now)
        assert result.returncode == 0, result.stderr
    check_invariants(office, dovecot, imap_account, smtp, mail)


def test_the_daemon_keeps_running_while_the_server_is_down(office, dovecot, smtp):
    point(office, dovecot.port, 1)
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "run", "--config",
                               str(office)], env=dict(os.environ,
                                                      SARABAN_NOW="2026-11-23T09:10:00+07:00"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # the catch-up poll fails, after its retries
        assert daemon.poll() is None, "the daemon exited on a network error"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0
    assert "poll failed: cannot connect to IMAP server 127.0.0.1:1" in err
    assert "Traceback" not in err

"""Keeping the records against a real Dovecot: the quota read and warned of at 85 % and
95 % (a Dovecot with its quota plugin), Trash emptied of the service's old spam only, each
registered mail kept as it arrived, and `archive` copying, verifying and only then deleting."""

from __future__ import annotations

import email.policy
import hashlib
import json
import mailbox
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import samples
from tests.conftest import CONFIG, IN_CI, deliver, imap_client
from tests.servers import PASSWORD, dovecot_available, start_dovecot

QUOTA_KB = 1000
QUOTA = f"""
mail_plugins = $mail_plugins quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage={QUOTA_KB}K
}}
"""


def cli(config: Path, *args: str, now: str = "") -> subprocess.CompletedProcess:
    env = os.environ.copy()
    if now:
        env["SARABAN_NOW"] = now
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=180)


def request(n: int, when: datetime, size: int = 0) -> bytes:
    """A distinct, ordinary request from citizen n."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"ประชาชน {n} <citizen{n}@gmail.com>"
    msg["To"] = "saraban@nongtuayang.go.th"
    msg["Subject"] = f"ขอข้อมูลข่าวสาร เรื่องที่ {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<space-{n}@gmail.example>"
    msg.set_content(f"ขอข้อมูลเรื่องที่ {n} ค่ะ\nFrom the start of the year\n" + "x" * size)
    return msg.as_bytes()


def office_for(server, folder: Path, smtp, monkeypatch, extra: str = "") -> tuple[Path, str]:
    account = server.account()
    config = folder / "config.toml"
    text = CONFIG.format(imap_port=server.port, account=account, smtp_port=smtp.port)
    text = text.replace("[agency]\n", "[agency]\nadmin_email = \"it@nongtuayang.go.th\"\n")
    config.write_text(text + extra, encoding="utf-8")
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
    monkeypatch.delenv("SARABAN_CONFIG", raising=False)
    return config, account


@pytest.fixture(scope="module")
def quota_dovecot():
    if not dovecot_available():
        if IN_CI:
            pytest.fail("Dovecot is not installed (run tests/setup-and-run.sh)")
        pytest.skip("Dovecot is not installed")
    server = start_dovecot(settings=QUOTA)
    yield server
    server.close()


def fill_to(server, account: str, percent: int) -> None:
    """Mail in Sent (which no poll reads) until the quota is used `percent` %."""
    client = imap_client(server, account)
    try:
        used = client.get_quota_root("INBOX")[1][0].usage
        wanted = QUOTA_KB * percent // 100 - used
        head = b"Subject: filler\r\n\r\n"
        client.append("Sent", head + b"f" * (wanted * 1024 + 100 - len(head)))
        assert client.get_quota_root("INBOX")[1][0].usage * 100 // QUOTA_KB == percent
    finally:
        client.logout()


def test_quota_warned_at_85_and_95_percent(quota_dovecot, smtp, tmp_path, monkeypatch):
    config, account = office_for(quota_dovecot, tmp_path, smtp, monkeypatch)
    when = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)
    deliver(quota_dovecot, account, "INBOX", request(1, when), when)
    fill_to(quota_dovecot, account, 85)

    checked = cli(config, "check")
    assert re.search(r"mailbox space: 85\d KB of 1,000 KB \(85%\)", checked.stdout), checked.stdout
    assert "over 80%" in checked.stderr and "URGENT" not in checked.stderr, checked.stderr
    assert checked.returncode == 3

    polled = cli(config, "poll", now="2026-11-30T09:00:00+07:00")
    assert polled.returncode in (0, 3), polled.stderr
    alert = [m for m in smtp.messages if "it@nongtuayang.go.th" in m[1]]
    assert len(alert) == 1 and b"over 80%" in alert[0][2]
    status = json.loads(cli(config, "status", "--json", now="2026-11-30T09:05:00+07:00").stdout)
    assert status["mailbox_space"]["limit_kb"] == QUOTA_KB
    assert any("over 80%" in w for w in status["warnings"])
    assert "mailbox space:" in cli(config, "status", now="2026-11-30T09:05:00+07:00").stdout

    fill_to(quota_dovecot, account, 95)
    checked = cli(config, "check")
    assert "over 90%" in checked.stderr and "URGENT" in checked.stderr, checked.stderr
    deliver(quota_dovecot, account, "INBOX", request(2, when), when)  # a save: a new สรุป
    polled = cli(config, "poll", now="2026-12-01T09:00:00+07:00")
    assert polled.returncode in (0, 3), polled.stderr
    alert = [m for m in smtp.messages if "it@nongtuayang.go.th" in m[1]]
    assert len(alert) == 2 and b"over 90%" in alert[1][2] and b"URGENT" in alert[1][2]
    book = openpyxl.load_workbook(tmp_path / "register" / "incoming-2569.xlsx")
    summary = [row for row in book["สรุป"].iter_rows(values_only=True)
               if row[0] == "พื้นที่กล่องจดหมาย (โควตา)"]
    assert summary and "จาก 1,000 KB (85%)" in summary[0][1], summary  # as the last poll read


def test_a_server_without_quota_is_said_so(office, dovecot):
    checked = cli(office, "check")
    assert "mailbox space: the server reports no quota" in checked.stdout, checked.stdout


def test_registered_mail_is_kept_as_it_arrived_with_its_hash_in_the_register(
        office, dovecot, imap_account, smtp):
    permit = next(s for s in samples() if s.key == "building_permit")
    deliver(dovecot, imap_account, permit.folder, permit.raw, permit.received_at)
    polled = cli(office, "poll")
    assert polled.returncode in (0, 3), polled.stderr
    client = imap_client(dovecot, imap_account)
    client.select_folder("INBOX", readonly=True)
    server = next(iter(client.fetch(client.search("ALL"), ["BODY.PEEK[]"]).values()))[b"BODY[]"]
    client.logout()
    kept = office.parent / "records" / "2569" / "rx-0001.eml"
    assert kept.read_bytes() == server
    assert kept.stat().st_mode & 0o077 == 0  # private unless [sharing] records = true
    assert list((office.parent / "records" / "incoming").iterdir()) == []
    sha = hashlib.sha256(server).hexdigest()
    book = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx")
    cells = [str(c) for row in book.worksheets[0].iter_rows(values_only=True) for c in row if c]
    assert any(f"records/2569/rx-0001.eml (SHA-256 {sha})" in c for c in cells)


def test_a_record_interrupted_between_its_two_names_is_finished_by_the_next_poll(
        office, dovecot, imap_account, smtp):
    """As if the poll died after numbering, before the journal noted the record: the mail
    is still under records/incoming/ by identity; the next poll names it, once."""
    for n in (1, 2):
        deliver(dovecot, imap_account, "INBOX", request(n, OLD), OLD)
    assert cli(office, "poll").returncode in (0, 3)
    root = office.parent / "records"
    first, second = root / "2569" / "rx-0001.eml", root / "2569" / "rx-0002.eml"
    journal = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    identity = journal.execute("SELECT identity FROM messages WHERE receipt_no = 1").fetchone()[0]
    journal.execute("DELETE FROM records")  # nothing noted...
    journal.commit()
    data = first.read_bytes()
    first.rename(root / "incoming" / f"{identity}.eml")  # ...one not yet renamed
    assert cli(office, "poll").returncode in (0, 3)
    assert first.read_bytes() == data and second.exists()
    assert list((root / "incoming").iterdir()) == []
    rows = journal.execute("SELECT file, sha256 FROM records ORDER BY file").fetchall()
    assert rows == [("2569/rx-0001.eml", hashlib.sha256(data).hexdigest()),
                    ("2569/rx-0002.eml", hashlib.sha256(second.read_bytes()).hexdigest())]


def test_a_mail_registered_from_the_review_queue_is_kept_from_its_review_copy(
        office, dovecot, imap_account, smtp):
    doubtful = next(s for s in samples() if s.category == "needs_review")
    deliver(dovecot, imap_account, "INBOX", doubtful.raw, doubtful.received_at)
    assert cli(office, "poll").returncode in (0, 3)
    assert not (office.parent / "records" / "2569").exists()
    decided = cli(office, "review", "decide", "1", "--year", "2569", "--register", "--by", "สมศรี")
    assert decided.returncode in (0, 3), decided.stderr
    assert cli(office, "poll").returncode in (0, 3)
    kept = office.parent / "records" / "2569" / "rx-0001.eml"
    assert kept.read_bytes() == doubtful.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_trash_is_emptied_of_the_services_old_spam_only(office, dovecot, imap_account, smtp):
    spam = next(s for s in samples() if s.key == "gambling_spam")
    deliver(dovecot, imap_account, "INBOX", spam.raw, spam.received_at)
    own = b"Subject: a clerk's own deleted mail\r\nMessage-ID: <clerk@x>\r\n\r\nmine\r\n"
    deliver(dovecot, imap_account, "Trash", own, spam.received_at)

    def trash() -> list[bytes]:
        client = imap_client(dovecot, imap_account)
        client.select_folder("Trash", readonly=True)
        found = [d[b"BODY[HEADER.FIELDS (SUBJECT)]"] for d in client.fetch(
            client.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]).values()]
        client.logout()
        return found

    assert cli(office, "poll", now="2026-11-30T09:00:00+07:00").returncode in (0, 3)
    assert len(trash()) == 2
    assert cli(office, "poll", now="2026-12-20T09:00:00+07:00").returncode in (0, 3)
    assert len(trash()) == 2  # 20 days: kept (policy.trash_days = 30)
    assert cli(office, "poll", now="2027-01-05T09:00:00+07:00").returncode in (0, 3)
    assert trash() == [b"Subject: a clerk's own deleted mail\r\n\r\n"]
    journal = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    assert journal.execute("SELECT COUNT(*) FROM trash_emptied").fetchone()[0] == 1


# -- archive, then delete ----------------------------------------------------------------

OLD = datetime(2026, 1, 12, 9, 0, tzinfo=BANGKOK)


def archived_office(office: Path, dovecot, account: str, count: int) -> dict[str, bytes]:
    """`count` requests from January 2026 and one from October, polled and answered."""
    sent = {}
    for n in range(1, count + 1):
        raw = request(n, OLD + timedelta(hours=n), size=(n % 7) * 3000)
        deliver(dovecot, account, "INBOX", raw, OLD + timedelta(hours=n))
        sent[f"<space-{n}@gmail.example>"] = raw
    late = datetime(2026, 10, 5, 9, 0, tzinfo=BANGKOK)
    deliver(dovecot, account, "INBOX", request(999, late), late)
    office.write_text(office.read_text().replace(
        "[policy]\n", "[policy]\nmax_replies_per_sender_per_day = 1000\n"), encoding="utf-8")
    polled = cli(office, "poll", now="2026-11-30T09:00:00+07:00")
    assert polled.returncode in (0, 3), polled.stderr
    return sent


def on_server(dovecot, account: str) -> dict[str, bytes]:
    client = imap_client(dovecot, account)
    client.select_folder("INBOX", readonly=True)
    got = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    client.logout()
    found = {}
    for data in got.values():
        raw = bytes(data[b"BODY[]"])
        mid = email.message_from_bytes(raw)["Message-ID"]
        found[mid] = raw
    return found


def in_archive(folder: Path) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for month in sorted(folder.glob("20*")):
        box = mailbox.Maildir(month, factory=None, create=False)
        for key, message in box.items():  # Python's own reader opens it...
            with box.get_file(key) as handle:  # ...and the file holds the server's bytes
                found.setdefault(message["Message-ID"], []).append(handle.read())
    return found


def test_archive_copies_verifies_then_deletes_oldest_first(office, dovecot, imap_account, smtp):
    sent = archived_office(office, dovecot, imap_account, 5)
    done = cli(office, "archive", "--older-than", "12m", "--limit", "3",
               now="2027-03-01T10:00:00+07:00")
    assert done.returncode == 0, done.stderr
    assert "archived 3 message(s), deleted 3 from the server" in done.stdout
    archive = office.parent / "archive"
    kept = in_archive(archive)
    assert sorted(kept) == [f"<space-{n}@gmail.example>" for n in (1, 2, 3)]  # oldest first
    for mid, copies in kept.items():
        assert copies == [sent[mid]]  # the server's bytes, once
    left = on_server(dovecot, imap_account)
    assert sorted(left) == sorted(["<space-4@gmail.example>", "<space-5@gmail.example>",
                                   "<space-999@gmail.example>"])
    again = cli(office, "archive", now="2027-03-01T10:00:00+07:00")
    assert "archived 2 message(s), deleted 2 from the server" in again.stdout, again.stdout
    assert list(on_server(dovecot, imap_account)) == ["<space-999@gmail.example>"]
    shown = cli(office, "show", "1/2569")
    assert "archived" in shown.stdout and str(archive / "2026-01" / "cur") in shown.stdout
    assert "deleted from the server" in shown.stdout
    assert "records/2569/rx-0001.eml; SHA-256 " + hashlib.sha256(sent["<space-1@gmail.example>"]
                                                                 ).hexdigest() in shown.stdout
    assert "2027" not in shown.stdout.replace("2026-01", "")  # times in the Buddhist era
    if shutil.which("mutt") and shutil.which("script"):  # a common mail program opens it
        (office.parent / "Mail").mkdir()
        opened = subprocess.run(  # on a terminal of its own (script), then quit
            ["script", "-q", "-c", f"mutt -n -F /dev/null -R -f {archive / '2026-01'} "
             "-e 'set quit=yes' -e 'push <quit>'", "/dev/null"], capture_output=True, timeout=60,
            env={**os.environ, "TERM": "xterm", "HOME": str(office.parent)},
            stdin=subprocess.DEVNULL)
        assert opened.returncode == 0, opened.stdout
        assert opened.stdout.count(b"Jan 12") == 5, opened.stdout  # its index: every message
    elif IN_CI:
        pytest.fail("mutt is not installed (run tests/setup-and-run.sh)")


def test_archive_refuses_a_wrong_age(office, dovecot):
    done = cli(office, "archive", "--older-than", "soon")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--older-than takes months" in done.stderr


def nothing_lost(office: Path, dovecot, account: str, sent: dict[str, bytes]) -> tuple[int, int]:
    """Every message on the server or, byte for byte, in the archive; none twice in the
    archive; the journal's deleted ones verified there. (archived, on the server)"""
    server, kept = on_server(dovecot, account), in_archive(office.parent / "archive")
    for mid, raw in sent.items():
        assert server.get(mid) == raw or kept.get(mid) == [raw], mid
        assert len(kept.get(mid, [])) <= 1, f"{mid} archived twice"
    journal = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    for file, sha in journal.execute(
            "SELECT file, sha256 FROM archived WHERE deleted_at IS NOT NULL"):
        data = (office.parent / "archive" / file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, file
    journal.close()
    return len(kept), len(server)


def crash_archive(office: Path, dovecot, account: str, count: int, kills: int,
                  seed: int) -> int:
    import random
    import signal
    import time

    sent = archived_office(office, dovecot, account, count)
    rng = random.Random(seed)
    env = os.environ | {"SARABAN_NOW": "2027-03-01T10:00:00+07:00"}
    mid_work = 0
    copies = lambda: len(list((office.parent / "archive").glob("*/cur/*")))  # noqa: E731
    for done in range(kills):
        process = subprocess.Popen([sys.executable, "-m", "saraban_mail", "archive", "--config",
                                    str(office)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=env)
        # Killed once it has written a random share of what is left (so that each kill lands
        # in the middle of the work however fast the machine), then a moment later: between
        # a copy and its journal line, between the line and the deletion, or within one.
        had = copies()
        target = had + rng.randint(1, max(1, (count - had) // (kills - done + 1)))
        while process.poll() is None and copies() < target:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.005))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        err = process.stderr.read().decode() if process.stderr else ""
        assert process.returncode in (0, -signal.SIGKILL) and "Traceback" not in err, err
        after = nothing_lost(office, dovecot, account, sent)
        mid_work += process.returncode == -signal.SIGKILL and after[1] > 1
    final = cli(office, "archive", now="2027-03-01T10:00:00+07:00")
    assert final.returncode == 0, final.stderr
    kept, left = nothing_lost(office, dovecot, account, sent)
    assert (kept, left) == (count, 1)  # all of January archived, October's still there
    return mid_work


def test_archive_killed_at_random_points_loses_nothing(office, dovecot, imap_account, smtp):
    mid_work = crash_archive(office, dovecot, imap_account, 40, 6, seed=2569)
    assert mid_work >= 5  # the kills landed while messages were being archived


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_archive_killed_at_random_points_long(office, dovecot, imap_account, smtp, seed):
    crash_archive(office, dovecot, imap_account, 150, 20, seed=seed)


def test_archive_runs_by_itself_when_the_quota_passes_its_threshold(
        quota_dovecot, smtp, tmp_path, monkeypatch):
    config, account = office_for(quota_dovecot, tmp_path, smtp, monkeypatch,
                                 "\n[archive]\nauto_at_percent = 80\n")
    for n in (1, 2):
        deliver(quota_dovecot, account, "INBOX", request(n, OLD), OLD)
    assert cli(config, "poll", now="2026-11-30T09:00:00+07:00").returncode in (0, 3)
    assert len(on_server(quota_dovecot, account)) == 2  # under 80 %: nothing archived
    fill_to(quota_dovecot, account, 85)
    polled = cli(config, "poll", now="2027-03-01T09:00:00+07:00")
    assert polled.returncode in (0, 3), polled.stderr
    assert on_server(quota_dovecot, account) == {}
    assert sorted(in_archive(tmp_path / "archive")) == ["<space-1@gmail.example>",
                                                        "<space-2@gmail.example>"]
    last = json.loads(cli(config, "status", "--json").stdout)["last_poll"]
    assert any("archived 2 message(s)" in note for note in last["notes"]), last


def test_records_given_to_the_clerks_group_when_sharing_says_so(office, dovecot, imap_account,
                                                                smtp):
    office.write_text(office.read_text() + "\n[sharing]\nrecords = true\n", encoding="utf-8")
    deliver(dovecot, imap_account, "INBOX", request(1, OLD), OLD)
    assert cli(office, "poll").returncode in (0, 3)
    root = office.parent / "records"
    assert (root / "2569" / "rx-0001.eml").stat().st_mode & 0o777 == 0o660
    assert (root / "2569").stat().st_mode & 0o7777 == 0o2770
    assert (root / "incoming").stat().st_mode & 0o777 == 0o700  # not yet a record: private

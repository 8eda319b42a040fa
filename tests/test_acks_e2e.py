"""Every registered request acknowledged (issue 18 §2, §5), against the real Dovecot and SMTP
server: several requests from one address in a poll go out as one mail naming every receipt
number; what the per-sender cap holds back is a reported problem and goes at a later poll;
mail in imap.extra_folders is read like INBOX's."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import openpyxl

from saraban_mail.calendar import BANGKOK
from tests.conftest import deliver

CITIZEN = "many.requests@gmail.com"
AGENCY = "saraban@nongtuayang.go.th"


def request(n: int, sender: str = CITIZEN) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"] = f"นางสาว ขยัน ยื่นเรื่อง <{sender}>", AGENCY
    msg["Subject"] = f"ขอข้อมูลข่าวสารเรื่องที่ {n}"
    msg["Message-ID"] = f"<acks-{n}-{sender}@gmail.example>"
    msg.set_content(f"ขอสำเนาเอกสารชุดที่ {n} ค่ะ ขอบคุณค่ะ")
    return msg.as_bytes()


def poll_at(config: Path, now: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "saraban_mail", "poll", "--config", str(config), "--json"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, SARABAN_NOW=now))


def texts(smtp, start: int = 0) -> list[tuple[list[str], str, str]]:
    """(recipients, subject, plain text) of what the SMTP server accepted since `start`."""
    out = []
    for _, recipients, raw in smtp.messages[start:]:
        got = email.message_from_bytes(raw, policy=email.policy.default)
        body = got.get_body(("plain",))
        out.append((recipients, str(got["Subject"]), body.get_content() if body else ""))
    return out


def test_seven_requests_from_one_address_in_one_poll_are_all_acknowledged(
        office, dovecot, imap_account, smtp):
    when = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)
    for n in range(1, 8):
        deliver(dovecot, imap_account, "INBOX", request(n), when + timedelta(minutes=n))
    result = poll_at(office, "2026-11-23T10:00:00+07:00")
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["receipt_no"] for r in got) == list(range(1, 8))
    assert all(r["mail"] and r["mail"][0]["status"] == "sent" for r in got)
    sent = texts(smtp)
    assert len(sent) == 1  # one mail, under the loop brake's count of five a day
    recipients, subject, body = sent[0]
    assert recipients == [CITIZEN]
    thai, _, english = body.partition("-" * 70)
    for n in range(1, 8):
        assert f"{n}/2569" in subject
        assert f"เลขทะเบียนรับ {n}/2569: ขอข้อมูลข่าวสารเรื่องที่ {n}" in thai
        assert f"Receipt number {n}/2569:" in english
    # Every row's ตอบรับเมื่อ is filled (at the next save of the workbook).
    assert poll_at(office, "2026-11-23T10:05:00+07:00").returncode == 0
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    header = next(row for row in sheet.iter_rows(max_row=3, values_only=True) if "ตอบรับเมื่อ" in row)
    column = header.index("ตอบรับเมื่อ")
    rows = [row for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]]
    assert len(rows) == 7 and all(row[column] for row in rows), rows
    status = subprocess.run(
        [sys.executable, "-m", "saraban_mail", "status", "--config", str(office), "--json"],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, SARABAN_NOW="2026-11-23T10:05:00+07:00"))
    acks = json.loads(status.stdout)["acknowledgements"]
    assert acks["due"] == [] and acks["late"] == [], acks  # none waits, none late


def test_a_poll_over_the_cap_reports_the_held_ones_and_sends_them_the_next_day(
        office, dovecot, imap_account, smtp):
    office.write_text(office.read_text().replace(
        "[policy]\n", "[policy]\nmax_replies_per_sender_per_day = 1\n"))
    morning = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)
    deliver(dovecot, imap_account, "INBOX", request(1), morning)
    assert poll_at(office, "2026-11-23T09:30:00+07:00").returncode == 0
    assert len(texts(smtp)) == 1
    for n in (2, 3):  # two more that day: the address has had its one mail
        deliver(dovecot, imap_account, "INBOX", request(n), morning + timedelta(hours=n))
    held = poll_at(office, "2026-11-23T13:00:00+07:00")
    assert held.returncode == 3, held.stderr  # a problem: work is pending
    line = next(p for p in held.stderr.splitlines() if "held back" in p)
    assert "2/2569, 3/2569" in line and CITIZEN in line
    assert "2026-11-23T16:30:00+07:00" in line  # the deadline they miss
    assert [r["mail"] for r in map(json.loads, held.stdout.splitlines())] == [
        [{"kind": "acknowledgement", "to": CITIZEN, "status": "held"}]] * 2
    assert len(texts(smtp)) == 1
    again = poll_at(office, "2026-11-23T16:25:00+07:00")  # still held, still reported
    assert again.returncode == 3 and "2/2569, 3/2569" in again.stderr
    assert len(texts(smtp)) == 1
    status = subprocess.run(
        [sys.executable, "-m", "saraban_mail", "status", "--config", str(office), "--json"],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, SARABAN_NOW="2026-11-23T16:26:00+07:00"))
    assert [a["receipt"] for a in json.loads(status.stdout)["acknowledgements"]["due"]] == [
        "2/2569", "3/2569"]
    # A fourth that evening, after hours; and the clerk cancels 3/2569 (registered twice).
    deliver(dovecot, imap_account, "INBOX", request(4), morning + timedelta(hours=9))
    assert poll_at(office, "2026-11-23T17:30:00+07:00").returncode == 3
    cancel = subprocess.run(
        [sys.executable, "-m", "saraban_mail", "correct", "3/2569", "--cancel", "ซ้ำ",
         "--config", str(office)], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, SARABAN_NOW="2026-11-23T17:40:00+07:00"))
    assert cancel.returncode == 0, cancel.stderr
    # The next working day's first poll has room: one mail naming the two still owed.
    next_day = poll_at(office, "2026-11-24T08:35:00+07:00")
    assert next_day.returncode == 0, next_day.stderr
    [(_, subject, body)] = texts(smtp, 1)
    assert "2/2569" in subject and "4/2569" in subject and "3/2569" not in subject + body
    assert poll_at(office, "2026-11-24T09:00:00+07:00").returncode == 0
    assert len(smtp.messages) == 2  # sent once


def test_extra_folders_are_read_like_the_inbox_and_a_missing_one_is_reported(
        office, dovecot, imap_account, smtp):
    from tests.conftest import imap_client
    from tests.offices import cli

    client = imap_client(dovecot, imap_account)
    client.create_folder("Requests")
    client.logout()
    office.write_text(office.read_text().replace(
        'username = "', 'extra_folders = ["Requests", "Nope"]\nusername = "'))
    when = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)
    deliver(dovecot, imap_account, "Requests", request(1, "filtered.citizen@gmail.com"), when)
    spam = EmailMessage(policy=email.policy.SMTP)
    spam["From"], spam["To"], spam["Subject"] = "promo@slot.example", AGENCY, "สล็อต บาคาร่า"
    spam["Message-ID"], spam["X-Spam-Flag"] = "<spam-extra@slot.example>", "YES"
    spam.set_content("สล็อต บาคาร่า คาสิโน เว็บตรง")
    deliver(dovecot, imap_account, "Requests", spam.as_bytes(), when)

    first = poll_at(office, "2026-11-23T10:00:00+07:00")
    assert first.returncode == 3, first.stderr
    assert "Nope: named in imap.extra_folders but the server has no such folder" in first.stderr
    got = {r["category"]: r for r in map(json.loads, first.stdout.splitlines())}
    assert got.keys() == {"valid", "spam"}
    assert got["valid"]["folder"] == "Requests" and got["valid"]["receipt_no"] == 1
    assert got["valid"]["actions"] == ["register", "acknowledge", "seen"]  # not moved
    [(recipients, subject, _)] = texts(smtp)
    assert recipients == ["filtered.citizen@gmail.com"] and "1/2569" in subject
    client = imap_client(dovecot, imap_account)
    client.select_folder("Requests", readonly=True)
    flags = client.fetch(client.search("ALL"), ["FLAGS"])
    client.logout()
    assert [sorted(f[b"FLAGS"]) for f in flags.values()] == [[b"\\Seen"]]  # spam went to Trash

    again = poll_at(office, "2026-11-23T11:00:00+07:00")  # every poll says so, nothing twice
    assert again.returncode == 3 and "Nope: named in imap.extra_folders" in again.stderr
    assert again.stdout == "" and len(smtp.messages) == 1

    check = cli("check", "--config", str(office))
    assert "extra folders read like the inbox: Requests" in check.stdout
    assert "imap.extra_folders: the server has no folder 'Nope'" in check.stderr

"""Correcting a decision already made, against the real Dovecot and SMTP servers: a receipt
number cancelled from the register or the command line stays in the register and is never
given again; a disposal needs the service's proposal or a reason; any step can be undone."""

from __future__ import annotations

import email.policy
import json
import sqlite3
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import openpyxl

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY
from tests.conftest import deliver, imap_client
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import at, cli, sent, set_clock


def request(n: int, when: datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"ประชาชน {n} <citizen{n}@gmail.com>"
    msg["To"] = AGENCY
    msg["Subject"] = f"ขอข้อมูลเรื่องที่ {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<correct-{n}@gmail.example>"
    msg.set_content(f"ขอข้อมูลเรื่องที่ {n} ค่ะ")
    return msg.as_bytes()


def registered(office, dovecot, account, monkeypatch, count: int) -> None:
    for n in range(1, count + 1):
        when = datetime(2026, 4, 16, 9, n, tzinfo=BANGKOK)
        deliver(dovecot, account, "INBOX", request(n, when), when)
    set_clock(monkeypatch, at(16, 10))
    assert [r["receipt_no"] for r in records(run_poll(office, "--json"))] == list(
        range(1, count + 1))


def book(office):
    return office.parent / "register" / "incoming-2569.xlsx"


def action_of(office, number: int) -> str:
    sheet = openpyxl.load_workbook(book(office)).worksheets[0]
    column = [c.value for c in sheet[2]].index("การปฏิบัติ") + 1
    row = next(r for r in sheet.iter_rows(min_row=3) if r[0].value == number)
    return str(sheet.cell(row[0].row, column).value or "")


def type_action(office, number: int, text: str, who: str) -> None:
    workbook = openpyxl.load_workbook(book(office))
    sheet = workbook.worksheets[0]
    column = [c.value for c in sheet[2]].index("การปฏิบัติ") + 1
    row = next(r for r in sheet.iter_rows(min_row=3) if r[0].value == number)
    sheet.cell(row[0].row, column, text)
    workbook.properties.lastModifiedBy = who
    workbook.save(book(office))


def state(office, number: int) -> str:
    db = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    try:
        return db.execute("SELECT state FROM events WHERE year = 2569 AND receipt_no = ? AND state"
                          " IS NOT NULL ORDER BY id DESC LIMIT 1", (number,)).fetchone()[0]
    finally:
        db.close()


def test_a_number_cancelled_in_the_register_stays_and_is_never_given_again(
        office, dovecot, imap_account, smtp, monkeypatch):
    registered(office, dovecot, imap_account, monkeypatch, 3)
    smtp.messages.clear()
    type_action(office, 2, "ยกเลิกเลขรับ: ผิดหน่วยงาน pea", who="สมศรี")
    set_clock(monkeypatch, at(16, 14))
    polled = run_poll(office, "--json")
    assert polled.returncode == 0, polled.stderr
    (told,) = sent(smtp)
    assert told["To"] == "citizen2@gmail.com" and "การไฟฟ้าส่วนภูมิภาค" in told.get_body().get_content()
    note = action_of(office, 2)
    assert note.startswith("ยกเลิกเลขรับ: ผิดหน่วยงาน pea\nยกเลิกเลขรับ: เป็นเรื่องของ การไฟฟ้าส่วนภูมิภาค")
    assert "สมศรี (ทะเบียน)" in note and "เลขนี้ไม่นำไปใช้ซ้ำ" in note
    assert state(office, 2) == "cancelled"
    check = cli(office, "register", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "cancelled (kept, never given again): 2" in check.stdout and "gaps" not in check.stdout
    # The next request gets 4: number 2 is used.
    when = datetime(2026, 4, 16, 15, 0, tzinfo=BANGKOK)
    deliver(dovecot, imap_account, "INBOX", request(4, when), when)
    assert [r["receipt_no"] for r in records(run_poll(office, "--json"))] == [4]
    sheet = openpyxl.load_workbook(book(office)).worksheets[0]
    assert [r[0].value for r in sheet.iter_rows(min_row=3)] == [1, 2, 3, 4]
    # Done once: the instruction still in the cell does nothing more.
    smtp.messages.clear()
    run_poll(office, "--json")
    assert smtp.messages == [] and action_of(office, 2).count("เลขนี้ไม่นำไปใช้ซ้ำ") == 1
    assert json.loads(cli(office, "status", "--json").stdout)["matters"]["by_state"][
        "cancelled"] == 1


def test_corrections_from_the_command_line_and_undo(office, dovecot, imap_account, smtp,
                                                    monkeypatch):
    registered(office, dovecot, imap_account, monkeypatch, 3)
    smtp.messages.clear()
    set_clock(monkeypatch, at(16, 14))
    spam = cli(office, "correct", "1/2569", "--spam", "--by", "สมชาย")
    assert spam.returncode == 0, spam.stderr
    assert smtp.messages == []  # spam is answered by no one
    assert run_poll(office, "--json").returncode == 0
    client = imap_client(dovecot, imap_account)
    try:
        client.select_folder("Trash", readonly=True)
        (uid,) = client.search("ALL")
        moved = client.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])[uid]
        assert b"correct-1@gmail.example" in moved[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]
    finally:
        client.logout()
    assert "ยกเลิกเลขรับ: อีเมลขยะ (โดย สมชาย" in action_of(office, 1)
    again = cli(office, "correct", "1/2569", "--cancel", "ซ้ำ")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already cancelled" in again.stderr

    done = cli(office, "correct", "3/2569", "--cancel", "ลงรับซ้ำกับหนังสือกระดาษ", "--by", "สมชาย")
    assert done.returncode == 0 and state(office, 3) == "cancelled"
    undone = cli(office, "undo", "3/2569", "--reason", "ยกเลิกผิดแถว", "--by", "สมชาย")
    assert undone.returncode == 0, undone.stderr
    assert "cancelled undone; now received" in undone.stdout
    assert state(office, 3) == "received"
    assert "ยกเลิกการยกเลิกเลขรับ (โดย สมชาย" in action_of(office, 3)
    story = cli(office, "show", "3/2569").stdout
    assert "cancelled → cancelled" in story and "undone → received" in story


def test_dispose_needs_a_proposal_or_a_reason_and_can_be_undone(office, dovecot, imap_account,
                                                               smtp, monkeypatch):
    registered(office, dovecot, imap_account, monkeypatch, 1)
    refused = cli(office, "dispose", "1/2569", "--approved-by", "นายก")
    assert refused.returncode == 2 and "not proposed for disposal" in refused.stderr
    assert state(office, 1) == "received"
    forced = cli(office, "dispose", "1/2569", "--approved-by", "นายก", "--force",
                 "ผู้ขอถอนเรื่องทางโทรศัพท์")
    assert forced.returncode == 0, forced.stderr
    assert state(office, 1) == "disposed"
    assert "forced: ผู้ขอถอนเรื่องทางโทรศัพท์" in cli(office, "show", "1/2569").stdout
    undone = cli(office, "undo", "1/2569", "--by", "นายก")
    assert undone.returncode == 0 and state(office, 1) == "received"
    assert "ยกเลิกการจำหน่ายเรื่อง (โดย นายก" in action_of(office, 1)
    nothing = cli(office, "undo", "1/2569")
    assert nothing.returncode == 2 and "no step to undo" in nothing.stderr

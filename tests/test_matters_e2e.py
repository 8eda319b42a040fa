"""A matter from receipt to result or disposal, against the real Dovecot and SMTP servers,
with the clock set by SARABAN_NOW (no sleeps)."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfWriter

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY, samples
from tests.conftest import deliver
from tests.test_intake_e2e import records, run_poll

PERMIT = next(s for s in samples() if s.key == "building_permit")
WITHDRAW = next(s for s in samples() if s.key == "withdraw_complaint")


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def at(day: int, hour: int = 10, month: int = 4) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=BANGKOK)


def set_clock(monkeypatch, moment: datetime) -> None:
    monkeypatch.setenv("SARABAN_NOW", moment.isoformat())


def sent(smtp) -> list[EmailMessage]:
    return [email.message_from_bytes(raw, policy=email.policy.default)
            for _, _, raw in smtp.messages]


def a_pdf(path: Path) -> Path:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    with open(path, "wb") as out:
        writer.write(out)
    return path


def citizen_reply(sender: str, subject: str, in_reply_to: str, when: datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<reply-{when:%d%H%M}@gmail.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content("ส่งเอกสารตามที่ขอครับ")
    msg.add_attachment(b"%PDF-1.4 deed", maintype="application", subtype="pdf",
                       filename="โฉนด.pdf")
    return msg.as_bytes()


@pytest.fixture
def permit_registered(office, dovecot, imap_account, smtp, monkeypatch):
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    smtp.messages.clear()
    return office


def test_documents_asked_replied_linked_and_result_sent(permit_registered, dovecot,
                                                         imap_account, smtp, monkeypatch,
                                                         tmp_path):
    office = permit_registered
    set_clock(monkeypatch, at(17))
    asked = cli(office, "request-docs", "1/2569", "--items", "สำเนาโฉนดที่ดิน", "--days", "5",
                "--by", "สมศรี")
    assert asked.returncode == 0, asked.stderr
    assert "due 24 เม.ย. 2569" in asked.stdout  # five working days after Friday 17 April (BE)
    (request,) = sent(smtp)
    assert request["To"] == "somchai.j@gmail.com"
    assert request["In-Reply-To"].strip() == "<40d6907b9fde.202604161014@mail.example>"
    body = request.get_body().get_content()
    assert "สำเนาโฉนดที่ดิน" in body and "24 เม.ย. 2569" in body and "30 วัน" in body

    reply = citizen_reply("สมชาย ใจดี <somchai.j@gmail.com>",
                          f"Re: {request['Subject']}", request["Message-ID"].strip(), at(20, 9))
    deliver(dovecot, imap_account, "INBOX", reply, at(20, 9))
    set_clock(monkeypatch, at(20, 16))
    (record,) = records(run_poll(office, "--json"))
    assert (record["receipt_no"], record["related_receipt"]) == (2, "1/2569")
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    assert "เกี่ยวข้องกับเลขทะเบียนรับที่ 1/2569" in sheet["H4"].value
    assert "ขอเอกสารเพิ่มเติม ครบกำหนด 24 เม.ย. 2569" in sheet["G3"].value

    result = cli(office, "send-result", "1/2569", str(a_pdf(tmp_path / "ใบอนุญาต.pdf")),
                 "--password", "none")
    assert result.returncode == 0, result.stderr
    story = cli(office, "show", "1/2569")
    assert story.returncode == 0
    # issue 17: each line opens with its Buddhist-era time, then the event
    kinds = [line.split("  ")[1].split()[0] for line in story.stdout.splitlines()]
    assert story.stdout.startswith("16 เม.ย. 2569 เวลา 11.00 น.  registered")
    assert "deadline: 24 เม.ย. 2569" in story.stdout and "2026-" not in story.stdout
    assert kinds == ["registered", "documents_requested", "reply_received", "result_sent"]
    assert "→ documents_received" in story.stdout and "(สมศรี)" in story.stdout


def test_a_forged_tag_from_another_sender_is_not_linked(permit_registered, dovecot,
                                                        imap_account, monkeypatch):
    office = permit_registered
    forged = citizen_reply("Mallory <mallory@evil.example>",
                           "[รับที่ 1/2569] ขอยกเลิกคำขอ", "", at(17, 9))
    deliver(dovecot, imap_account, "INBOX", forged, at(17, 9))
    genuine = citizen_reply("สมชาย ใจดี <somchai.j@gmail.com>",
                            "เพิ่มเติม [รับที่ 1/2569]", "", at(17, 9).replace(minute=5))
    deliver(dovecot, imap_account, "INBOX", genuine, at(17, 9).replace(minute=5))
    set_clock(monkeypatch, at(17, 11))
    got = {r["from"]: r for r in records(run_poll(office, "--json"))}
    assert got["mallory@evil.example"]["related_receipt"] is None
    assert got["mallory@evil.example"]["receipt_no"] == 2  # still registered: every document is
    assert got["somchai.j@gmail.com"]["related_receipt"] == "1/2569"


def test_high_risk_result_waits_for_identity(office, dovecot, imap_account, smtp, monkeypatch,
                                             tmp_path):
    set_clock(monkeypatch, at(16, 14))
    deliver(dovecot, imap_account, "INBOX", WITHDRAW.raw, WITHDRAW.received_at)
    assert records(run_poll(office, "--json"))[0]["high_risk"] is True
    document = str(a_pdf(tmp_path / "หนังสือแจ้ง.pdf"))
    blocked = cli(office, "send-result", "1/2569", document)
    assert blocked.returncode == 2 and "identity is not yet verified" in blocked.stderr
    before = len(smtp.messages)

    call = cli(office, "video-call", "1/2569", "--at", "2026-04-20T10:00",
               "--link", "https://meet.example/saraban")
    assert call.returncode == 0, call.stderr
    appointment = sent(smtp)[before]
    assert appointment["To"] == "chaiwat.office@gmail.com"
    assert "บัตรประจำตัวประชาชน" in appointment.get_body().get_content()

    evidence = tmp_path / "บันทึกภาพ.png"
    evidence.write_bytes(b"\x89PNG\r\n\x1a\nscreenshot")
    verified = cli(office, "verify-identity", "1/2569", "--method", "video_call",
                   "--evidence", str(evidence))
    assert verified.returncode == 0, verified.stderr
    (kept,) = (office.parent / "data" / "matters" / "2569-1").iterdir()
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    assert cli(office, "send-result", "1/2569", document).returncode == 0


def test_force_sends_for_an_unverified_high_risk_matter_and_logs_why(office, dovecot,
                                                                     imap_account, smtp,
                                                                     monkeypatch, tmp_path):
    set_clock(monkeypatch, at(16, 14))
    deliver(dovecot, imap_account, "INBOX", WITHDRAW.raw, WITHDRAW.received_at)
    run_poll(office)
    forced = cli(office, "send-result", "1/2569", str(a_pdf(tmp_path / "r.pdf")),
                 "--force", "ผู้ขอมาแสดงบัตรที่สำนักงานแล้ว")
    assert forced.returncode == 0, forced.stderr
    story = cli(office, "show", "1/2569").stdout
    assert "identity_check_overridden" in story and "ผู้ขอมาแสดงบัตรที่สำนักงานแล้ว" in story


def test_silence_past_the_hold_is_proposed_then_disposed(permit_registered, smtp, monkeypatch):
    office = permit_registered
    # The hold counts calendar days by default (issue 18, test_bounces_e2e); an agency may
    # count working days instead: this test keeps that option honest.
    with office.open("a", encoding="utf-8") as config:
        config.write("\n[followup]\nhold_in_working_days = true\n")
    set_clock(monkeypatch, at(17))
    assert cli(office, "request-docs", "1/2569", "--items", "แบบแปลน", "--days",
               "5").returncode == 0
    set_clock(monkeypatch, at(27))  # past the 24 April deadline
    overdue = cli(office, "deadlines")
    assert "1/2569  documents_overdue" in overdue.stdout
    reminder = sent(smtp)[-1]
    assert "แจ้งเตือน" in reminder["Subject"] and reminder["To"] == "somchai.j@gmail.com"
    count = len(smtp.messages)
    assert "documents_overdue" in cli(office, "deadlines").stdout
    assert len(smtp.messages) == count  # one reminder only

    set_clock(monkeypatch, at(12, month=6))  # 29 working days after the reminder: not yet
    assert "proposed_for_disposal" not in cli(office, "deadlines").stdout
    # 30 working days: Labour Day, Coronation Day, the Royal Ploughing Ceremony, Visakha Bucha
    # (in lieu) and the Queen's birthday are not counted.
    set_clock(monkeypatch, at(15, month=6))
    proposed = cli(office, "deadlines")
    assert "1/2569  proposed_for_disposal" in proposed.stdout
    listing = openpyxl.load_workbook(office.parent / "register" / "to-dispose.xlsx").worksheets[0]
    assert listing["A3"].value == "1/2569" and listing["B3"].value == "ขออนุญาตก่อสร้างอาคาร"

    status = cli(office, "status")
    assert "to_dispose" in status.stdout and "head of agency" in status.stdout
    closed = cli(office, "dispose", "1/2569", "--approved-by", "นายกเทศมนตรี")
    assert closed.returncode == 0, closed.stderr
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    assert "จำหน่ายเรื่อง อนุมัติโดย นายกเทศมนตรี" in sheet["G3"].value
    assert "disposed" in cli(office, "show", "1/2569").stdout
    listing = openpyxl.load_workbook(office.parent / "register" / "to-dispose.xlsx").worksheets[0]
    assert listing["A3"].value is None


def test_status_lists_acknowledgements_due_and_late(office, dovecot, imap_account, smtp,
                                                    monkeypatch):
    smtp.refuse = "451 try later"
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    run_poll(office)
    status = cli(office, "status")
    assert "acknowledgements still due: 1, sent late: 0" in status.stdout
    smtp.refuse = ""
    set_clock(monkeypatch, at(17, 9))
    run_poll(office)  # the ack goes the next morning, after its 16:30 deadline
    status = cli(office, "status")
    assert "acknowledgements still due: 0, sent late: 1" in status.stdout


def test_a_clerk_asks_for_documents_from_the_register(permit_registered, smtp, monkeypatch):
    office = permit_registered
    path = office.parent / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(path)
    book.worksheets[0]["G3"] = "ขอเอกสาร: สำเนาบัตรประชาชนของผู้ขอ"
    book.save(path)
    set_clock(monkeypatch, at(17))
    assert run_poll(office).returncode == 0
    (request,) = sent(smtp)
    assert "สำเนาบัตรประชาชนของผู้ขอ" in request.get_body().get_content()
    assert run_poll(office).returncode == 0
    assert len(smtp.messages) == 1  # asked once
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert sheet["G3"].value.splitlines() == ["ขอเอกสาร: สำเนาบัตรประชาชนของผู้ขอ",
                                              "ขอเอกสารเพิ่มเติม ครบกำหนด 28 เม.ย. 2569"]
    assert "(clerk (register))" in cli(office, "show", "1/2569").stdout

    # Unchanged since every instruction in it was carried out: the next poll does not open
    # it. Shown with the file's bytes swapped for garbage of the same size, inode and time.
    before, times = path.read_bytes(), path.stat()
    path.write_bytes(b"\0" * len(before))
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    idle = run_poll(office)
    path.write_bytes(before)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert idle.returncode == 0 and "cannot read register" not in idle.stderr, idle.stderr

    book = openpyxl.load_workbook(path)  # a clerk's second instruction: read and carried out
    book.worksheets[0]["G3"] = sheet["G3"].value + "\nขอเอกสาร: สำเนาทะเบียนบ้าน"
    book.save(path)
    assert run_poll(office).returncode == 0
    assert "สำเนาทะเบียนบ้าน" in sent(smtp)[-1].get_body().get_content()


def test_requests_for_information_are_logged_and_their_answer_dated(office, dovecot,
                                                                    imap_account, smtp,
                                                                    monkeypatch, tmp_path):
    songkran = next(s for s in samples() if s.key == "songkran")  # "ขอสอบถาม..."
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", songkran.raw, songkran.received_at)
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)  # not an inquiry
    run_poll(office)
    log_path = office.parent / "register" / "inquiries-2569.xlsx"
    sheet = openpyxl.load_workbook(log_path).worksheets[0]
    assert [c.value for c in sheet[2]][:7] == ["เลขทะเบียนรับ", "วันที่รับเรื่อง", "วันที่ตอบกลับ",
                                               "ผู้ขอรับบริการ", "เรื่อง", "แหล่งข้อมูล", "หมายเหตุ"]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 1 and rows[0][4] == "ขอรับเบี้ยยังชีพผู้สูงอายุ" and rows[0][2] is None

    book = openpyxl.load_workbook(log_path)
    book.worksheets[0]["F3"] = "ประกาศกองสวัสดิการสังคม"  # the clerk notes the source
    book.save(log_path)
    set_clock(monkeypatch, at(17, 10))
    number = rows[0][0]
    assert cli(office, "send-result", f"{number}/2569", str(a_pdf(tmp_path / "คำตอบ.pdf")),
               "--password", "none").returncode == 0
    run_poll(office)
    sheet = openpyxl.load_workbook(log_path).worksheets[0]
    assert sheet["C3"].value == datetime(2026, 4, 17, 10, 0)
    assert sheet["F3"].value == "ประกาศกองสวัสดิการสังคม"
    faq = cli(office, "faq", "--year", "2569", "--out", str(tmp_path / "faq.csv"))
    assert faq.returncode == 0, faq.stderr
    text = (tmp_path / "faq.csv").read_text(encoding="utf-8-sig")
    assert "ขอรับเบี้ยยังชีพผู้สูงอายุ,ประกาศกองสวัสดิการสังคม" in text

"""Sending results against the real Dovecot and SMTP servers: one command or one dropped
file, the outgoing register, the incoming row, the Sent folder, and passwords."""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader, PdfWriter

from saraban_mail.demo import samples
from tests.conftest import deliver, imap_client
from tests.test_intake_e2e import records, run_poll

PERMIT = next(s for s in samples() if s.key == "building_permit")


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def pdf(path: Path, pages: int = 1, padding: int = 0) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    if padding:
        writer.add_attachment("padding.bin", os.urandom(padding))
    with open(path, "wb") as out:
        writer.write(out)
    return path


@pytest.fixture
def registered(office, dovecot, imap_account, smtp):
    """An office whose building-permit request is registered as 1/2569."""
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    got = records(run_poll(office, "--json"))
    assert got[0]["receipt_no"] == 1
    smtp.messages.clear()
    return office


def received(smtp) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=email.policy.default)
            for _, _, raw in smtp.messages]


def outgoing_rows(office: Path) -> list[tuple]:
    sheet = openpyxl.load_workbook(office.parent / "register" / "outgoing-2569.xlsx").worksheets[0]
    return list(sheet.iter_rows(min_row=3, values_only=True))


def incoming_action(office: Path, row: int = 3) -> str:
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    return sheet.cell(row, 7).value


def test_send_result_answers_the_request_and_logs_it_everywhere(registered, smtp, dovecot,
                                                                  imap_account, tmp_path):
    result = cli(registered, "send-result", "1", str(pdf(tmp_path / "ใบอนุญาตก่อสร้าง.pdf")),
                 "--password", "none")
    assert result.returncode == 0, result.stderr
    assert "result 1/2569 for receipt 1/2569 to somchai.j@gmail.com" in result.stdout

    (message,) = received(smtp)
    assert message["To"] == "somchai.j@gmail.com"
    assert message["In-Reply-To"] == "<40d6907b9fde.202604161014@mail.example>"
    assert message["Subject"].startswith("[ส่งที่ 1/2569]") and "รับที่ 1/2569" in message["Subject"]
    assert message["Auto-Submitted"] is None  # a result is the agency speaking, not a robot
    body = message.get_body().get_content()
    assert "เทศบาลตำบลหนองตัวอย่าง" in body and "Nong Tua Yang" in body
    assert "เลขทะเบียนส่ง: 1/2569" in body and "0 4400 0000" in body
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "ใบอนุญาตก่อสร้าง.pdf"
    raw = smtp.messages[0][2].decode("ascii", "replace")
    assert re.search(r"filename\*(0\*)?=utf-8''", raw)  # RFC 2231 for Thunderbird and webmail
    assert re.search(r'name="=\?utf-8\?b\?[A-Za-z0-9+/=]+\?="', raw)  # RFC 2047 for Outlook
    assert PdfReader(io.BytesIO(attachment.get_content())).pages

    (row,) = outgoing_rows(registered)
    assert row[0] == 1 and row[8] == "somchai.j@gmail.com" and row[9] == "1/2569"
    assert "SHA-256" in row[10] and row[12] == message["Message-ID"]
    assert incoming_action(registered).startswith("ส่งผลทางอีเมลแล้ว ทะเบียนส่งที่ 1/2569")

    client = imap_client(dovecot, imap_account)
    try:
        client.select_folder("Sent", readonly=True)
        subjects = [d[b"ENVELOPE"].subject for d in
                    client.fetch(client.search("ALL"), ["ENVELOPE"]).values()]
        assert sum(b"=?utf-8?" in s or b"1/2569" in s for s in subjects) >= 2  # ack + result
    finally:
        client.logout()

    again = run_poll(registered, "--json")
    assert again.returncode == 0 and again.stdout == ""
    assert len(smtp.messages) == 1  # nothing is sent twice


def test_password_protected_result_opens_only_with_the_second_mails_password(
        registered, smtp, tmp_path):
    result = cli(registered, "send-result", "1/2569", str(pdf(tmp_path / "สำเนา.pdf")),
                 "--password", "auto")
    assert result.returncode == 0, result.stderr
    document, password_mail = received(smtp)
    assert password_mail["In-Reply-To"].strip() == document["Message-ID"].strip()
    (attachment,) = document.iter_attachments()
    reader = PdfReader(io.BytesIO(attachment.get_content()))
    assert reader.is_encrypted
    assert reader.decrypt("wrong-password") == 0
    password = re.search(r"^ {4}(\S{12})\s*$", password_mail.get_body().get_content(), re.M).group(1)
    reader = PdfReader(io.BytesIO(attachment.get_content()))
    assert reader.decrypt(password) != 0 and len(reader.pages) == 1
    assert "อีเมลอีกฉบับ" in document.get_body().get_content()

    # The password is nowhere at the agency: not in the register, the journal or the output.
    data = registered.parent / "data" / "journal.sqlite3"
    sqlite3.connect(data).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    assert password.encode() not in data.read_bytes()
    with zipfile.ZipFile(registered.parent / "register" / "outgoing-2569.xlsx") as archive:
        assert not any(password.encode() in archive.read(n) for n in archive.namelist())
    assert password not in result.stdout + result.stderr
    assert "รหัสผ่านส่งแยกอีกฉบับ" in outgoing_rows(registered)[0][7]


def test_a_clerk_typed_row_with_an_address_can_be_answered(registered, smtp, tmp_path):
    path = registered.parent / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    sheet.append([2, "", None, "นางมาลี <malee@hotmail.com>", "นายก", "ขอหนังสือรับรอง"])
    book.save(path)
    result = cli(registered, "send-result", "2", str(pdf(tmp_path / "หนังสือรับรอง.pdf")),
                 "--password", "none")
    assert result.returncode == 0, result.stderr
    (message,) = received(smtp)
    assert message["To"] == "malee@hotmail.com"
    assert "ขอหนังสือรับรอง" in message["Subject"]
    assert incoming_action(registered, row=4).startswith("ส่งผลทางอีเมลแล้ว ทะเบียนส่งที่ 1/2569")


def test_a_row_without_an_address_is_a_clear_error(registered, smtp, tmp_path):
    path = registered.parent / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(path)
    book.worksheets[0].append([2, "", None, "โรงเรียนบ้านหนอง", "นายก", "ขอใช้สถานที่"])
    book.save(path)
    result = cli(registered, "send-result", "2", str(pdf(tmp_path / "a.pdf")))
    assert result.returncode == 2
    assert "row 2/2569 has no email address" in result.stderr and result.stderr.count("\n") == 1
    assert cli(registered, "send-result", "9", str(pdf(tmp_path / "a.pdf"))).returncode == 2


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: (p.write_bytes(b"just text, not a PDF"), p)[1], "not a PDF"),
    (lambda p: pdf(p, padding=11 * 1024 * 1024), "over the 10 MB limit"),
    (lambda p: (p.write_bytes(b"%PDF-1.4\nbroken"), p)[1], "not a readable PDF"),
])
def test_bad_files_are_refused_and_nothing_is_sent(registered, smtp, tmp_path, make, message):
    good = pdf(tmp_path / "good.pdf")
    bad = make(tmp_path / "bad.pdf")
    result = cli(registered, "send-result", "1", str(good), str(bad))
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert smtp.messages == []
    assert not (registered.parent / "register" / "outgoing-2569.xlsx").exists()


def test_smtp_down_keeps_the_result_queued_and_it_goes_once_later(registered, smtp, tmp_path):
    smtp.refuse = "451 4.3.0 try again later"
    down = cli(registered, "send-result", "1", str(pdf(tmp_path / "r.pdf")), "--password", "none")
    assert down.returncode == 3 and "stays queued" in down.stderr
    assert not (registered.parent / "register" / "outgoing-2569.xlsx").exists()  # not accepted yet
    run_poll(registered)  # still down: retried, still queued
    smtp.refuse = ""
    up = run_poll(registered)
    assert up.returncode == 0, up.stderr
    assert len(smtp.messages) == 1
    assert [r[0] for r in outgoing_rows(registered)] == [1]  # the number reserved at first
    run_poll(registered)
    assert len(smtp.messages) == 1


def test_outbox_folder_sends_dropped_files_and_refuses_bad_ones(registered, smtp, tmp_path):
    outbox = registered.parent / "outbox"
    outbox.mkdir()
    pdf(outbox / "1-2569.pdf")
    (outbox / "7-2569.pdf").write_bytes(b"%PDF-1.4 not really")
    (outbox / "note.txt").write_text("not for sending")
    result = run_poll(registered)
    assert result.returncode == 3  # the bad one is reported
    assert "outbox/7-2569.pdf" in result.stderr
    assert [m["To"] for m in received(smtp)] == ["somchai.j@gmail.com"]
    assert (outbox / "sent" / "1-2569.pdf").exists() and not (outbox / "1-2569.pdf").exists()
    assert (outbox / "failed" / "7-2569.pdf").exists()
    reason = (outbox / "failed" / "7-2569.pdf.txt").read_text()
    assert "not a readable PDF" in reason or "no receipt 7/2569" in reason
    # issue 17: a name that matches no receipt is set aside and reported, not left silently
    assert "outbox/note.txt" in result.stderr and (outbox / "failed" / "note.txt").exists()
    assert len(outgoing_rows(registered)) == 1


def test_outbox_folder_with_several_files(registered, smtp):
    folder = registered.parent / "outbox" / "1-2569"
    folder.mkdir(parents=True)
    pdf(folder / "ใบอนุญาต.pdf")
    pdf(folder / "แผนที่.pdf", pages=2)
    assert run_poll(registered).returncode == 0
    (message,) = received(smtp)
    assert sorted(a.get_filename() for a in message.iter_attachments()) == ["แผนที่.pdf",
                                                                           "ใบอนุญาต.pdf"]
    assert (registered.parent / "outbox" / "sent" / "1-2569").is_dir()


def test_dry_run_shows_the_message_and_changes_nothing(registered, smtp, tmp_path):
    result = cli(registered, "send-result", "1", str(pdf(tmp_path / "ใบอนุญาต.pdf")), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "To: somchai.j@gmail.com" in result.stdout
    assert "attachment: ใบอนุญาต.pdf" in result.stdout
    assert smtp.messages == []
    assert not (registered.parent / "register" / "outgoing-2569.xlsx").exists()
    real = cli(registered, "send-result", "1", str(pdf(tmp_path / "ใบอนุญาต.pdf")))
    assert "result 1/2569" in real.stdout  # the dry run reserved no number

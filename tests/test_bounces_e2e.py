"""Bounces of our mail (issue 18 §4), against the real Dovecot and SMTP servers: linked to the
acknowledgement or result they report on, the matter and the registers marked ส่งไม่ถึง,
`status` listing them, and a requester with no other contact held 30 calendar days."""

from __future__ import annotations

import email.policy
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import openpyxl

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY, samples
from tests.bounce_mail import exchange_legacy, postfix_plain, rfc3464
from tests.conftest import deliver
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import a_pdf, at, cli, set_clock

PERMIT = next(s for s in samples() if s.key == "building_permit")  # "โทร 081 234 5678"
DEMO_BOUNCE = next(s for s in samples() if s.key == "bounce")  # to nobody@example.com


def a_request(sender: str, subject: str, when: datetime, text: str = "") -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<req-{when:%d%H%M}@example.net>"
    msg.set_content(text or "เรียน เจ้าหน้าที่\nขอสำเนาทะเบียนพาณิชย์ของร้านค้าด้วยค่ะ")
    return msg.as_bytes()


def incoming_rows(office) -> dict[int, dict[str, object]]:
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    titles = [cell.value for cell in sheet[2]]
    return {row[0]: dict(zip(titles, row, strict=False))
            for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]}


def status(office) -> dict:
    shown = cli(office, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_a_bounced_acknowledgement_marks_the_matter_and_starts_the_30_day_hold(
        office, dovecot, imap_account, smtp, monkeypatch):
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX",
            a_request("มาลี <malee.nomail@example.com>", "ขอสำเนาทะเบียนพาณิชย์", at(16, 10)),
            at(16, 10))
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    ((_, _, acknowledgement),) = smtp.messages
    smtp.messages.clear()

    # Postfix's report, with the acknowledgement's headers returned, 2 minutes later.
    arrived = at(16, 11).replace(minute=2)
    deliver(dovecot, imap_account, "INBOX",
            rfc3464(acknowledgement, "malee.nomail@example.com", arrived), arrived)
    set_clock(monkeypatch, at(16, 14))
    polled = run_poll(office, "--json")
    assert polled.returncode == 0, polled.stderr
    (bounce,) = records(polled)
    assert bounce["category"] == "automated" and bounce.get("receipt_no") is None
    assert smtp.messages == []  # a bounce is never answered

    story = cli(office, "show", "1/2569").stdout
    assert "mail_bounced → unreachable" in story
    assert "malee.nomail@example.com" in story and "User unknown" in story
    (undeliverable,) = status(office)["undeliverable"]
    assert (undeliverable["kind"], undeliverable["receipt"], undeliverable["to"]) == (
        "acknowledgement", "1/2569", "malee.nomail@example.com")
    assert "550 5.1.1" in undeliverable["reason"]
    shown = cli(office, "status").stdout
    assert "undeliverable: 1 mail(s) bounced" in shown
    assert "acknowledgement of 1/2569 to malee.nomail@example.com" in shown

    remarks = incoming_rows(office)[1]["หมายเหตุ"]
    assert "ส่งไม่ถึง: หนังสือตอบรับ ถึง malee.nomail@example.com: 550 5.1.1" in remarks
    assert "ไม่มีช่องทางติดต่ออื่น เก็บเรื่องไว้ 30 วัน" in remarks

    # 30 calendar days from the bounce (seed 002 init §3.2), not 30 working days.
    set_clock(monkeypatch, datetime(2026, 5, 15, 10, tzinfo=BANGKOK))
    assert "proposed_for_disposal" not in cli(office, "deadlines").stdout
    set_clock(monkeypatch, datetime(2026, 5, 16, 10, tzinfo=BANGKOK))
    assert "1/2569  proposed_for_disposal" in cli(office, "deadlines").stdout
    listing = openpyxl.load_workbook(office.parent / "register" / "to-dispose.xlsx").worksheets[0]
    assert listing["A3"].value == "1/2569"


def test_a_bounced_result_is_noted_in_both_registers_and_the_phone_comes_first(
        office, dovecot, imap_account, smtp, monkeypatch, tmp_path):
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    run_poll(office)
    assert "โทรศัพท์ในคำขอ: 081-234-5678" in incoming_rows(office)[1]["หมายเหตุ"]
    sent = cli(office, "send-result", "1/2569", str(a_pdf(tmp_path / "ใบอนุญาต.pdf")),
               "--password", "none")
    assert sent.returncode == 0, sent.stderr
    result = smtp.messages[-1][2]

    # Postfix's plain-text form: no delivery-status part, the result attached.
    deliver(dovecot, imap_account, "INBOX",
            postfix_plain(result, "somchai.j@gmail.com", at(17, 9)), at(17, 9))
    set_clock(monkeypatch, at(17, 10))
    assert run_poll(office).returncode == 0

    story = cli(office, "show", "1/2569").stdout
    assert "mail_bounced" in story and "→ unreachable" not in story  # a phone was given
    remarks = incoming_rows(office)[1]["หมายเหตุ"]
    assert "ส่งไม่ถึง: หนังสือแจ้งผล ทะเบียนส่งที่ 1/2569 ถึง somchai.j@gmail.com" in remarks
    assert "โปรดติดต่อผู้ขอทางโทรศัพท์ 081-234-5678" in remarks
    sheet = openpyxl.load_workbook(office.parent / "register" / "outgoing-2569.xlsx").worksheets[0]
    titles = [cell.value for cell in sheet[2]]
    outgoing = dict(zip(titles, next(sheet.iter_rows(min_row=3, values_only=True)), strict=False))
    assert "ส่งไม่ถึง: <somchai.j@gmail.com>: host mx.example.com" in outgoing["หมายเหตุ"]
    (undeliverable,) = status(office)["undeliverable"]
    assert (undeliverable["kind"], undeliverable["outgoing"], undeliverable["receipt"]) == (
        "result", "1/2569", "1/2569")


def test_exchange_and_recipient_only_reports_are_linked_and_a_stranger_is_not(
        office, dovecot, imap_account, smtp, monkeypatch):
    set_clock(monkeypatch, at(16, 11))
    for minute, sender in ((1, "a.one@example.org"), (2, "b.two@example.org")):
        when = at(16, 10).replace(minute=minute)
        deliver(dovecot, imap_account, "INBOX",
                a_request(sender, f"ขอข้อมูลข่าวสาร {minute}", when), when)
    run_poll(office)
    acknowledgements = {to[0]: raw for _, to, raw in smtp.messages}
    later = at(16, 13)
    # Exchange's older report names the acknowledgement it returns; the second report
    # returns nothing of it and is linked by its recipient and time.
    deliver(dovecot, imap_account, "INBOX",
            exchange_legacy(acknowledgements["a.one@example.org"], "a.one@example.org", later),
            later)
    deliver(dovecot, imap_account, "INBOX",
            rfc3464(acknowledgements["b.two@example.org"], "b.two@example.org", later,
                    returned=False), later)
    deliver(dovecot, imap_account, "INBOX", DEMO_BOUNCE.raw, later)
    set_clock(monkeypatch, at(16, 14))
    polled = run_poll(office, "--json")
    assert [r["category"] for r in records(polled)] == ["automated"] * 3

    found = {item["to"]: item for item in status(office)["undeliverable"]}
    assert set(found) == {"a.one@example.org", "b.two@example.org"}  # not nobody@example.com
    assert found["a.one@example.org"]["receipt"] == "1/2569"
    assert "not recognized" in found["a.one@example.org"]["reason"]
    assert found["b.two@example.org"]["receipt"] == "2/2569"
    for number in (1, 2):
        assert "mail_bounced → unreachable" in cli(office, "show", f"{number}/2569").stdout

    # The requester writes again from another server: reachable, the matter goes on.
    back = at(17, 9)
    deliver(dovecot, imap_account, "INBOX",
            a_request("b.two@example.org", "[รับที่ 2/2569] ติดต่อกลับค่ะ", back), back)
    set_clock(monkeypatch, at(17, 10))
    assert run_poll(office).returncode == 0
    story = cli(office, "show", "2/2569").stdout
    assert "reply_received → received" in story
    assert "mail_bounced → unreachable" in cli(office, "show", "1/2569").stdout


def test_a_bounced_acknowledgement_naming_several_receipts_marks_each_matter(
        office, dovecot, imap_account, smtp, monkeypatch):
    set_clock(monkeypatch, at(16, 11))
    for minute in (1, 2):
        deliver(dovecot, imap_account, "INBOX",
                a_request("มาลี <malee.nomail@example.com>", f"ขอสำเนาเอกสาร {minute}",
                          at(16, 10).replace(minute=minute)), at(16, 10).replace(minute=minute))
    assert [r["receipt_no"] for r in records(run_poll(office, "--json"))] == [1, 2]
    ((_, _, both),) = smtp.messages  # one mail names 1/2569 and 2/2569
    deliver(dovecot, imap_account, "INBOX",
            rfc3464(both, "malee.nomail@example.com", at(16, 12)), at(16, 12))
    set_clock(monkeypatch, at(16, 13))
    assert run_poll(office, "--json").returncode == 0
    for number in ("1/2569", "2/2569"):
        assert "mail_bounced" in cli(office, "show", number).stdout, number
    rows = incoming_rows(office)
    assert all("ส่งไม่ถึง: หนังสือตอบรับ" in str(rows[n]["หมายเหตุ"]) for n in (1, 2))

"""The review queue against the real Dovecot and SMTP servers: mail the service cannot
decide is listed for the clerks with its deadline and a copy they can open, and each of the
five decisions, typed in the register or given on the command line, is carried out."""

from __future__ import annotations

import email.policy
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY
from tests.conftest import deliver, imap_client
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import at, cli, sent, set_clock

# Words of two agencies at once: the rules disagree, so a person decides.
CONFLICT = "ไฟฟ้าดับทั้งซอย และบัตรประชาชนหายด้วยครับ"


def doubtful(n: int, when: datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"ประชาชน {n} <person{n}@gmail.com>"
    msg["To"] = AGENCY
    msg["Subject"] = f"เรื่องที่ {n}: ขอความช่วยเหลือ"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<doubtful-{n}@gmail.example>"
    msg.set_content(CONFLICT)
    return msg.as_bytes()


def arrive(dovecot, account, count: int) -> list[datetime]:
    times = [datetime(2026, 4, 16, 10, 10 * n, tzinfo=BANGKOK) for n in range(count)]
    for n, when in enumerate(times, start=1):
        deliver(dovecot, account, "INBOX", doubtful(n, when), when)
    return times


def review_book(office: Path) -> Path:
    return office.parent / "register" / "review-2569.xlsx"


def rows(path: Path) -> list[dict[str, object]]:
    sheet = openpyxl.load_workbook(path)["รอตรวจสอบ"]
    headings = [c.value for c in sheet[2]]
    return [dict(zip(headings, (c.value for c in row), strict=False))
            for row in sheet.iter_rows(min_row=3) if any(c.value for c in row)]


def type_instructions(path: Path, by_number: dict[int, str], who: str) -> None:
    """The clerk types in คำสั่ง and saves, as Excel would (with the author's name)."""
    book = openpyxl.load_workbook(path)
    sheet = book["รอตรวจสอบ"]
    headings = [c.value for c in sheet[2]]
    column = headings.index("คำสั่ง") + 1
    for row in sheet.iter_rows(min_row=3):
        if row[0].value in by_number:
            sheet.cell(row[0].row, column, by_number[row[0].value])
    book.properties.lastModifiedBy = who
    book.save(path)


def flags(dovecot, account) -> dict[str, list[tuple]]:
    client = imap_client(dovecot, account)
    try:
        found = {}
        for folder in ("INBOX", "Trash"):
            client.select_folder(folder, readonly=True)
            found[folder] = sorted(tuple(sorted(d[b"FLAGS"]))
                                   for d in client.fetch(client.search("ALL"), ["FLAGS"]).values())
        return found
    finally:
        client.logout()


def incoming(office: Path) -> list[dict[str, object]]:
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    headings = [c.value for c in sheet[2]]
    return [dict(zip(headings, (c.value for c in row), strict=False))
            for row in sheet.iter_rows(min_row=3) if row[0].value is not None]


def test_each_doubtful_mail_is_listed_with_its_deadline_and_a_copy_to_open(
        office, dovecot, imap_account, smtp, monkeypatch):
    arrive(dovecot, imap_account, 2)
    set_clock(monkeypatch, at(16, 11))
    first = records(run_poll(office, "--json"))
    assert [r["category"] for r in first] == ["needs_review"] * 2
    assert smtp.messages == []  # no one is answered before a person decides
    listed = rows(review_book(office))
    assert [r["ลำดับ"] for r in listed] == [1, 2]
    assert listed[0]["กำหนดตอบรับ"] == datetime(2026, 4, 16, 16, 30)
    assert listed[0]["วันเวลารับ (ตามกฎหมาย)"] == datetime(2026, 4, 16, 10, 0)
    assert "เข้าได้กับกฎมากกว่าหนึ่งข้อ" in listed[0]["เหตุที่ต้องตรวจสอบ"]
    assert listed[0]["ผู้ส่ง"] == "ประชาชน 1 <person1@gmail.com>"
    copy = review_book(office).parent / listed[1]["สำเนาอีเมล"]
    assert copy.read_bytes().startswith(b"From: ") and b"doubtful-2@gmail.example" in copy.read_bytes()
    link = openpyxl.load_workbook(review_book(office))["รอตรวจสอบ"].cell(3, 8).hyperlink
    assert link is not None and link.target == listed[0]["สำเนาอีเมล"]

    status = json.loads(cli(office, "status", "--json").stdout)
    assert [(i["item"], i["ack_due"]) for i in status["review"]] == [
        ("1/2569", "2026-04-16T16:30:00+07:00"), ("2/2569", "2026-04-16T16:30:00+07:00")]
    text = cli(office, "status").stdout
    assert "waiting for a person: 2 mail(s)" in text
    assert "1/2569  ตอบรับภายใน 16 เม.ย. 2569 เวลา 16.30 น." in text
    assert "2/2569" in cli(office, "review").stdout
    # A second poll lists nothing twice.
    run_poll(office, "--json")
    assert len(rows(review_book(office))) == 2


def test_the_five_decisions_typed_in_the_register_are_carried_out(
        office, dovecot, imap_account, smtp, monkeypatch):
    times = arrive(dovecot, imap_account, 5)
    set_clock(monkeypatch, at(16, 11))
    run_poll(office, "--json")
    type_instructions(review_book(office), {
        1: "ลงรับ", 2: "ผิดหน่วยงาน: pea", 3: "ผิดช่องทาง : e_bidding", 4: "สแปม",
        5: "ไม่ต้องดำเนินการ: แจ้งเพื่อทราบ ไม่ใช่คำขอ"}, who="สมศรี ใจดี")
    set_clock(monkeypatch, at(17, 9))
    polled = run_poll(office, "--json")
    assert polled.returncode == 0, polled.stderr

    registered = incoming(office)
    assert [(r["เลขทะเบียนรับ"], r["อีเมลผู้ส่ง"]) for r in registered] == [
        (1, "person1@gmail.com"), (2, "person3@gmail.com")]
    # Received by law when it arrived, not when the clerk decided.
    assert registered[0]["วันเวลารับ (ตามกฎหมาย)"] == times[0].replace(tzinfo=None)
    assert "สมศรี ใจดี สั่งลงรับ" in registered[0]["หมายเหตุ"]
    by_to = {}
    for m in sent(smtp):
        by_to.setdefault(m["To"], []).append(m["Subject"])
    assert sorted(by_to) == ["person1@gmail.com", "person2@gmail.com", "person3@gmail.com"]
    assert any("1/2569" in s for s in by_to["person1@gmail.com"])
    assert any("การไฟฟ้าส่วนภูมิภาค" in s or "Provincial Electricity" in s
               for s in by_to["person2@gmail.com"])
    assert any("2/2569" in s for s in by_to["person3@gmail.com"])

    mailbox = flags(dovecot, imap_account)
    assert len(mailbox["Trash"]) == 1  # the spam
    assert all(b"\\Flagged" not in f and b"\\Seen" in f for f in mailbox["INBOX"])
    outcomes = [r["ผลการดำเนินการ"] for r in rows(review_book(office))]
    assert outcomes[0].startswith("ลงรับแล้ว เลขทะเบียนรับ 1/2569; ส่งตอบรับถึง person1@gmail.com")
    assert "การไฟฟ้าส่วนภูมิภาค" in outcomes[1] and "2/2569" in outcomes[2]
    assert outcomes[3].startswith("สแปม: ย้ายไปที่ Trash") and outcomes[4].startswith(
        "ไม่ต้องดำเนินการ: แจ้งเพื่อทราบ")
    assert all("สั่งโดย สมศรี ใจดี" in o for o in outcomes)
    assert json.loads(cli(office, "status", "--json").stdout)["review"] == []
    story = cli(office, "show", "1", "--year", "2569")
    assert "review_decided" in story.stdout and "สมศรี ใจดี" in story.stdout
    assert "decided: สแปม  (สมศรี ใจดี, typed in คำสั่ง)" in cli(
        office, "show", "4", "--year", "2569", "--review").stdout
    # Nothing happens twice.
    smtp.messages.clear()
    assert records(run_poll(office, "--json")) == [] and smtp.messages == []


def test_a_wrong_instruction_is_reported_and_waits(office, dovecot, imap_account, smtp,
                                                   monkeypatch):
    arrive(dovecot, imap_account, 1)
    set_clock(monkeypatch, at(16, 11))
    run_poll(office, "--json")
    type_instructions(review_book(office), {1: "ผิดหน่วยงาน: ประปา"}, who="สมศรี")
    polled = run_poll(office, "--json")
    assert polled.returncode == 3
    assert "review-2569.xlsx ลำดับ 1: ไม่พบหน่วยงาน 'ประปา'" in polled.stderr
    (row,) = rows(review_book(office))
    assert row["ผลการดำเนินการ"].startswith("ยังไม่ได้ดำเนินการ: ไม่พบหน่วยงาน")
    assert smtp.messages == []
    type_instructions(review_book(office), {1: "ผิดหน่วยงาน: การไฟฟ้าส่วนภูมิภาค"}, who="สมศรี")
    assert run_poll(office, "--json").returncode == 0
    (row,) = rows(review_book(office))
    assert row["ผลการดำเนินการ"].startswith("แจ้งผู้ส่งให้ติดต่อ การไฟฟ้าส่วนภูมิภาค")
    assert [m["To"] for m in sent(smtp)] == ["person1@gmail.com"]


def test_a_decision_from_the_command_line(office, dovecot, imap_account, smtp, monkeypatch):
    arrive(dovecot, imap_account, 1)
    set_clock(monkeypatch, at(16, 11))
    run_poll(office, "--json")
    wrong = cli(office, "review", "decide", "1", "--year", "2569", "--wrong-channel", "nope")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "ไม่พบช่องทาง" in wrong.stderr
    done = cli(office, "review", "decide", "1/2569", "--register", "--by", "สมชาย")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1/2569: ลงรับแล้ว เลขทะเบียนรับ 1/2569")
    (ack,) = sent(smtp)
    assert ack["To"] == "person1@gmail.com" and "1/2569" in ack["Subject"]
    again = cli(office, "review", "decide", "1/2569", "--spam")
    assert again.returncode == 2 and "decided already" in again.stderr
    assert "decided: ลงรับ  (สมชาย, saraban-mail review decide)" in cli(
        office, "show", "1/2569", "--review").stdout

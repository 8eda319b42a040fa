"""Routing and service levels end to end, against the real Dovecot and SMTP servers: requests
routed to their units (forwarded once), a re-route typed in the register and by command, due
dates across holidays that stop while documents are awaited, and the overdue list."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest

from saraban_mail.calendar import BANGKOK
from tests.conftest import deliver
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import cli, set_clock
from tests.test_register_sharing import libreoffice_csv
from tests.test_register_sharing import soffice as soffice  # noqa: F401 (the fixture)

AGENCY = "saraban@nongtuayang.go.th"
UNITS = """
[[unit]]
id = "works"
name_th = "กองช่าง"
name_en = "Public Works Division"
email = "works@nongtuayang.go.th"
phone = "0 4400 0000 ต่อ 103"

[[unit]]
id = "health"
name_th = "กองสาธารณสุขและสิ่งแวดล้อม"
name_en = "Public Health and Environment Division"
email = "health@nongtuayang.go.th"
phone = "0 4400 0000 ต่อ 104"

[[unit]]
id = "palad"
name_th = "สำนักปลัด"
email = "palad@nongtuayang.go.th"
phone = "0 4400 0000 ต่อ 101"

[[unit]]
id = "finance"
name_th = "กองคลัง"
phone = "0 4400 0000 ต่อ 102"

[[service]]
id = "building_permit"
name_th = "การขออนุญาตก่อสร้างอาคาร"
name_en = "building permit"
unit = "works"
keywords = ["ขออนุญาตก่อสร้าง"]
sla_days = 45
sla_kind = "calendar"
documents = ["สำเนาโฉนดที่ดิน", "แบบแปลน"]

[[service]]
id = "waste_collection"
name_th = "การขอรับบริการเก็บขนขยะมูลฝอย"
name_en = "waste collection"
unit = "health"
keywords = ["เก็บขยะ"]
sla_days = 7

[[service]]
id = "elderly_allowance"
name_th = "การลงทะเบียนรับเงินเบี้ยยังชีพผู้สูงอายุ"
unit = "palad"
keywords = ["เบี้ยยังชีพ"]
sla_days = 15
"""


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BANGKOK)


def mail(n: int, sender: str, subject: str, text: str, when: datetime,
         pdf: bool = False, in_reply_to: str = "") -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, AGENCY, subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<route-{n}-{when:%m%d%H%M}@gmail.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(text)
    if pdf:
        msg.add_attachment(b"%PDF-1.4 plan", maintype="application", subtype="pdf",
                           filename="แบบแปลน.pdf")
    return msg.as_bytes()


@pytest.fixture
def routed_office(office: Path) -> Path:
    (office.parent / "rules").mkdir()
    (office.parent / "rules" / "units.toml").write_text(UNITS, encoding="utf-8")
    return office


def sent(smtp) -> list[tuple[list[str], EmailMessage]]:
    return [(to, email.message_from_bytes(raw, policy=email.policy.default))
            for _, to, raw in smtp.messages]


def sheet_of(office: Path):
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    heads = {str(c.value): c.column for c in sheet[2] if c.value}
    return sheet, heads


def cell(office: Path, number: int, heading: str):
    sheet, heads = sheet_of(office)
    return sheet.cell(2 + number, heads[heading]).value


def body(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


REQUESTS = [  # (sender, subject, text, with a pdf)
    ("สมชาย <somchai@gmail.example>", "ขออนุญาตก่อสร้างบ้าน", "แนบแบบแปลนมาด้วยครับ", True),
    ("สมหญิง <somying@gmail.example>", "ขยะหน้าบ้าน", "ขอให้มาเก็บขยะซอย 3 ด้วยค่ะ", False),
    ("ยาย <yai@gmail.example>", "สอบถาม", "ขอลงทะเบียนรับเบี้ยยังชีพค่ะ", False),
    ("นาย ก <kor@gmail.example>", "สวัสดีครับ", "ขอสอบถามเวลาเปิดทำการ", False),
]


def test_three_services_go_to_three_units_once_and_the_acknowledgements_name_them(
        routed_office, dovecot, imap_account, smtp, monkeypatch):
    office = routed_office
    for n, (sender, subject, text, pdf) in enumerate(REQUESTS):
        deliver(dovecot, imap_account, "INBOX", mail(n, sender, subject, text, at(4, 10, 9, n),
                                                     pdf), at(4, 10, 9, n))
    set_clock(monkeypatch, at(4, 10, 10))
    smtp.refuse = "451 4.3.0 try again later"  # numbered and queued, nothing sent: a repeat
    first = run_poll(office, "--json")
    assert [r["receipt_no"] for r in records(first)] == [1, 2, 3, 4], first.stderr
    assert smtp.messages == []
    smtp.refuse = ""
    for _ in range(2):  # the poll that sends, and one more: each mail once
        assert run_poll(office).returncode in (0, 2)
    forwards = {tuple(to): m for to, m in sent(smtp) if m["X-Saraban-Receipt"]}
    assert sorted(forwards) == [("health@nongtuayang.go.th",), ("palad@nongtuayang.go.th",),
                                ("works@nongtuayang.go.th",)]
    assert len([1 for to, m in sent(smtp) if m["X-Saraban-Receipt"]]) == 3
    permit = forwards[("works@nongtuayang.go.th",)]
    assert permit["X-Saraban-Receipt"] == "1/2569" and permit["Auto-Submitted"] == "auto-forwarded"
    original = next(p for p in permit.iter_attachments()
                    if p.get_content_type() == "message/rfc822").get_content()
    assert original["Subject"] == "ขออนุญาตก่อสร้างบ้าน"
    assert [a.get_filename() for a in original.iter_attachments()] == ["แบบแปลน.pdf"]
    assert "1/2569" in permit["Subject"] and "กองช่าง" in body(permit)

    acks = {to[0]: body(m) for to, m in sent(smtp) if not m["X-Saraban-Receipt"]}
    assert "ส่วนงานที่รับผิดชอบ: กองช่าง โทร 0 4400 0000 ต่อ 103" in acks["somchai@gmail.example"]
    assert "ภายใน 45 วัน นับจากวันที่ได้รับเอกสารครบถ้วน" in acks["somchai@gmail.example"]
    assert "เอกสารที่มักต้องใช้: สำเนาโฉนดที่ดิน, แบบแปลน" in acks["somchai@gmail.example"]
    assert "tel. 0 4400 0000 ext. 104" in acks["somying@gmail.example"]
    assert "ภายใน 7 วันทำการ" in acks["somying@gmail.example"]
    assert "within 7 working days of receiving all required documents" in \
        acks["somying@gmail.example"]
    plain = acks["kor@gmail.example"]  # unmatched: the text as without units
    assert "ส่วนงานที่รับผิดชอบ" not in plain
    assert "ภายใน 15 วันทำการ นับแต่วันที่ได้รับเรื่องและเอกสารครบถ้วน" in plain

    assert [cell(office, n, "ถึง") for n in (1, 2, 3, 4)] == [
        "กองช่าง", "กองสาธารณสุขและสิ่งแวดล้อม", "สำนักปลัด", "งานสารบรรณ"]
    # Received Friday 10 April: 7 working days skip Songkran (13-15 April) -> 24 April;
    # 45 calendar days -> Monday 25 May; 15 working days skip 1 and 4 May -> 8 May.
    dues = [cell(office, n, "ครบกำหนด") for n in (1, 2, 3, 4)]
    assert dues[:3] == [datetime(2026, 5, 25), datetime(2026, 4, 24), datetime(2026, 5, 8)]
    assert dues[3] is None
    assert "ส่งต่อกองช่าง ทางอีเมล works@nongtuayang.go.th" in cell(office, 1, "หมายเหตุ")

    status = json.loads(cli(office, "status", "--json").stdout)["service_levels"]
    assert [m["receipt"] for m in status["unrouted"]] == ["4/2569"]
    # Our forward coming back to the central mailbox (a unit alias that includes it) is
    # our own mail: never a new request.
    deliver(dovecot, imap_account, "INBOX", smtp.messages[0][2], at(4, 10, 11))
    again = records(run_poll(office, "--json"))
    assert [r["category"] for r in again] == ["automated"]


def test_a_clerk_re_routes_in_the_register_and_by_command(routed_office, dovecot,
                                                          imap_account, smtp, monkeypatch):
    office = routed_office
    for n, (sender, subject, text, _) in enumerate(REQUESTS[1:3]):
        deliver(dovecot, imap_account, "INBOX", mail(n, sender, subject, text, at(4, 20, 9, n)),
                at(4, 20, 9, n))
    set_clock(monkeypatch, at(4, 20, 10))
    assert run_poll(office).returncode == 0
    smtp.messages.clear()
    path = office.parent / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    heads = {str(c.value): c.column for c in sheet[2] if c.value}
    sheet.cell(3, heads["การปฏิบัติ"], "ส่ง: กองช่าง")  # row 1: waste -> works, by Thai name
    book.save(path)
    set_clock(monkeypatch, at(4, 20, 11))
    for _ in range(2):  # read once: the second poll does not forward again
        assert run_poll(office).returncode == 0
    (forward,) = [m for to, m in sent(smtp) if to == ["works@nongtuayang.go.th"]]
    assert forward["X-Saraban-Receipt"] == "1/2569" and len(smtp.messages) == 1
    assert "29 เม.ย. 2569" in body(forward)  # the due date the new unit works to
    assert cell(office, 1, "ถึง") == "กองช่าง"
    # The service stays the health division's: a new unit, the same due date.
    assert cell(office, 1, "ครบกำหนด") == datetime(2026, 4, 29)
    story = cli(office, "show", "1/2569").stdout
    assert "re-routed to works by a clerk" in story and "(clerk (register))" in story

    moved = cli(office, "route", "2/2569", "finance", "--by", "สมศรี")
    assert moved.returncode == 0, moved.stderr
    assert "routed to กองคลัง" in moved.stdout and "hand it on" in moved.stdout
    assert cell(office, 2, "ถึง") == "กองคลัง" and len(smtp.messages) == 1  # no address
    wrong = cli(office, "route", "2/2569", "roads")
    assert wrong.returncode != 0 and "no unit 'roads'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_due_dates_pause_for_documents_and_the_overdue_list(routed_office, dovecot,
                                                            imap_account, smtp, monkeypatch,
                                                            tmp_path, soffice):
    office = routed_office
    sender, subject, text, _ = REQUESTS[1]  # waste collection: 7 working days
    deliver(dovecot, imap_account, "INBOX", mail(1, sender, subject, text, at(4, 20)), at(4, 20))
    set_clock(monkeypatch, at(4, 20, 10))
    assert run_poll(office).returncode == 0
    assert cell(office, 1, "ครบกำหนด") == datetime(2026, 4, 29)

    set_clock(monkeypatch, at(4, 21, 10))
    asked = cli(office, "request-docs", "1/2569", "--items", "แผนที่ตั้งบ้าน", "--days", "5")
    assert asked.returncode == 0, asked.stderr
    request_id = [m for _, m in sent(smtp)][-1]["Message-ID"].strip()
    assert run_poll(office).returncode == 0
    assert cell(office, 1, "ครบกำหนด") == "หยุดนับ: รอเอกสารจากผู้ขอ"
    set_clock(monkeypatch, at(4, 30, 10))  # past the first due date, but paused
    assert "1/2569  overdue" not in cli(office, "deadlines").stdout

    reply = mail(9, sender, "Re: เก็บขยะ", "แผนที่ตามแนบค่ะ", at(4, 27), in_reply_to=request_id)
    deliver(dovecot, imap_account, "INBOX", reply, at(4, 27))
    set_clock(monkeypatch, at(4, 27, 10))
    (answer,) = records(run_poll(office, "--json"))
    assert answer["related_receipt"] == "1/2569"
    # Paused 22-27 April (4 working days): 29 April moves past 1 and 4 May to 7 May.
    assert cell(office, 1, "ครบกำหนด") == datetime(2026, 5, 7)
    # The documents reach the unit that has the matter.
    assert [m["X-Saraban-Receipt"] for to, m in sent(smtp)
            if to == ["health@nongtuayang.go.th"]] == ["1/2569", "2/2569"]

    set_clock(monkeypatch, at(5, 6, 10))
    soon = cli(office, "deadlines").stdout
    assert "1/2569  due_soon  due 7 พ.ค. 2569" in soon
    set_clock(monkeypatch, at(5, 8, 10))
    late = cli(office, "deadlines").stdout
    assert "1/2569  overdue  due 7 พ.ค. 2569 (1 day(s) late), health" in late
    levels = json.loads(cli(office, "status", "--json").stdout)["service_levels"]
    assert [m["receipt"] for m in levels["overdue"]] == ["1/2569"]
    assert "1 overdue" in cli(office, "status").stdout

    # LibreOffice opens the register with the new column, and keeps its overdue colour.
    path = office.parent / "register" / "incoming-2569.xlsx"
    shown = libreoffice_csv(soffice, path, tmp_path / "lo")
    column = shown[1].index("ครบกำหนด")
    assert shown[2][column] == "7 พ.ค. 2569"
    subprocess.run([soffice, f"-env:UserInstallation={(tmp_path / 'p2').as_uri()}",
                    "--headless", "--convert-to", "xlsx", "--outdir", str(tmp_path / "x"),
                    str(path)], check=True, capture_output=True, timeout=180)
    saved = openpyxl.load_workbook(tmp_path / "x" / path.name).worksheets[0]
    rules = [r for cf in saved.conditional_formatting for r in cf.rules]
    assert any("TODAY()" in (r.formula or [""])[0] for r in rules)


def test_an_old_register_without_the_due_column_gets_it_at_the_end(tmp_path, monkeypatch):
    """A workbook made before ครบกำหนด existed (or a clerk deleted it): the heading is added
    after the last column, the clerks' columns stay, and the due date goes under it."""
    from tests.offices import add_mail, office_with, poll, request

    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1))
    monkeypatch.setenv("SARABAN_NOW", "2026-11-23T10:00:00+07:00")
    assert poll(config).returncode == 0
    path = tmp_path / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    heads = [c.value for c in sheet[2]]
    sheet.delete_cols(heads.index("ครบกำหนด") + 1)
    sheet.cell(2, len(heads), "ผู้รับผิดชอบ")  # a clerk's own column, last
    book.save(path)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "units.toml").write_text(UNITS, encoding="utf-8")
    add_mail(tmp_path, *request(2, "ขอให้มาเก็บขยะ"))
    assert poll(config).returncode == 0
    sheet = openpyxl.load_workbook(path).worksheets[0]
    heads = [c.value for c in sheet[2]]
    assert heads[-2:] == ["ผู้รับผิดชอบ", "ครบกำหนด"]
    # Monday 23 November 2026 + 7 working days (24-27, 30 November, 1-2 December).
    assert sheet.cell(4, len(heads)).value == datetime(2026, 12, 2)
    assert sheet.cell(4, heads.index("ถึง") + 1).value == "กองสาธารณสุขและสิ่งแวดล้อม"
    assert sheet.cell(3, len(heads)).value is None  # registered before units.toml: no SLA

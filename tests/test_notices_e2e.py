"""Keeping the requester and the unit heads informed, against the real Dovecot and SMTP
servers: progress notices from `notify` and from "แจ้ง: ..." typed in the register, sent
once on the request's thread; the unit heads' daily list of overdue matters (opt-in).

The `routed` and `due` steps that routing writes are seeded here with `journal.add_event`."""

from __future__ import annotations

import email.policy
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY
from saraban_mail.journal import Journal
from tests.conftest import deliver
from tests.test_corrections_e2e import action_of, type_action
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import at, cli, sent, set_clock

UNITS = """
[[unit]]
id = "works"
name_th = "กองช่าง"
name_en = "Public Works Division"
email = "works@nongtuayang.go.th"
phone = "0 4400 0000 ต่อ 103"
head = "ผู้อำนวยการกองช่าง"
head_email = "works.head@nongtuayang.go.th"

[[unit]]
id = "health"
name_th = "กองสาธารณสุขและสิ่งแวดล้อม"
name_en = "Public Health and Environment Division"
phone = "0 4400 0000 ต่อ 104"
head_email = "health.head@nongtuayang.go.th"

[[unit]]
id = "palad"
name_th = "สำนักปลัด"
phone = "0 4400 0000 ต่อ 101"

[[unit]]
id = "finance"
name_th = "กองคลัง"
head_email = "finance.head@nongtuayang.go.th"

[[service]]
id = "building_permit"
name_th = "ขออนุญาตก่อสร้างอาคาร"
unit = "works"
keywords = ["ขออนุญาตก่อสร้าง"]
sla_days = 45
sla_kind = "calendar"
"""


def request(n: int, when: datetime) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"ประชาชน {n} <citizen{n}@gmail.com>"
    msg["To"] = AGENCY
    msg["Subject"] = f"คำขอเรื่องที่ {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<notice-{n}@gmail.example>"
    msg.set_content(f"ขอรับบริการเรื่องที่ {n} ค่ะ")
    return msg.as_bytes()


def with_units(office: Path, extra: str = "") -> Path:
    rules = office.parent / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "units.toml").write_text(UNITS, encoding="utf-8")
    if extra:
        with office.open("a", encoding="utf-8") as config:
            config.write(extra)
    return office


def register(office: Path, dovecot, account: str, monkeypatch, count: int, day: int,
             month: int = 4) -> None:
    for n in range(1, count + 1):
        when = datetime(2026, month, day, 9, n, tzinfo=BANGKOK)
        deliver(dovecot, account, "INBOX", request(n, when), when)
    set_clock(monkeypatch, at(day, 10, month))
    assert [r["receipt_no"] for r in records(run_poll(office, "--json"))] == list(
        range(1, count + 1))


def seed(office: Path, number: int, *, unit: str | None, due: date | None = None,
         state: str | None = None, kind: str = "routed") -> None:
    """The steps routing and service levels (another part of issue 20) write."""
    journal = Journal.open(office.parent / "data")
    try:
        moment = at(1)
        if kind == "routed":
            journal.add_event(2569, number, kind="routed", actor="service", now=moment,
                              detail={"unit": unit, "service": None, "rule": "test",
                                      "reason": "seeded", "by": "rule"})
            if due:
                journal.add_event(2569, number, kind="due", actor="service", now=moment,
                                  detail={"due": due.isoformat(), "sla_days": 5,
                                          "sla_kind": "working", "why": "seeded"})
        if state == "awaiting_documents":  # as request-docs leaves it
            journal.add_event(2569, number, kind="documents_requested", actor="test", now=moment,
                              state=state, detail={"items": "แบบแปลน", "deadline": "2026-04-30"})
        elif state:
            journal.add_event(2569, number, kind=state, actor="test", now=moment, state=state)
    finally:
        journal.close()


def bodies(smtp) -> list[tuple[str, str, str]]:
    return [(m["To"], m["Subject"], m.get_body().get_content().replace("\r\n", "\n"))
            for m in sent(smtp)]


# -- progress notices ------------------------------------------------------------------------


def test_notify_sends_one_notice_on_the_thread_naming_status_unit_phone_and_due(
        office, dovecot, imap_account, smtp, monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 1, day=16)
    seed(office, 1, unit="works", due=date(2026, 4, 30))
    smtp.messages.clear()
    set_clock(monkeypatch, at(17))
    done = cli(office, "notify", "1/2569", "--status", "อยู่ระหว่างพิจารณา", "--by", "สมศรี",
               "--text", "เจ้าหน้าที่จะออกตรวจสถานที่วันที่ 22 เม.ย.")
    assert done.returncode == 0, done.stderr
    (notice,) = sent(smtp)
    assert notice["To"] == "citizen1@gmail.com"
    assert notice["In-Reply-To"].strip() == "<notice-1@gmail.example>"
    assert "<notice-1@gmail.example>" in notice["References"]
    assert "[รับที่ 1/2569]" in notice["Subject"] and "อยู่ระหว่างพิจารณา" in notice["Subject"]
    body = notice.get_body().get_content()
    thai, english = body.split("-" * 70)
    assert "กองช่าง โทร 0 4400 0000 ต่อ 103" in thai and "30 เม.ย. 2569" in thai
    assert "เจ้าหน้าที่จะออกตรวจสถานที่วันที่ 22 เม.ย." in thai and "คำขอเรื่องที่ 1" in thai
    assert "under consideration" in english and "tel. 0 4400 0000 ext. 103" in english
    assert "30 Apr 2026" in english and "กอง" not in english
    assert "แจ้งความคืบหน้า: อยู่ระหว่างพิจารณา" in action_of(office, 1)
    story = cli(office, "show", "1/2569").stdout
    assert "notified" in story and "(สมศรี)" in story
    # The next poll sends nothing more.
    assert run_poll(office).returncode == 0
    assert len(smtp.messages) == 1


def test_a_notify_line_in_the_register_sends_once_even_after_a_failed_send(
        office, dovecot, imap_account, smtp, monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 2, day=16)
    seed(office, 2, unit="works")
    smtp.messages.clear()
    type_action(office, 2, "ตรวจแล้ว\nแจ้ง: อนุมัติแล้ว - รับใบอนุญาตได้ที่กองช่าง", who="สมศรี")
    set_clock(monkeypatch, at(17, 11))
    # The SMTP server is unreachable at this poll: the notice waits in the journal.
    monkeypatch.setenv("SARABAN_SMTP__PORT", "1")
    first = run_poll(office)
    assert smtp.messages == [] and first.returncode != 0
    monkeypatch.delenv("SARABAN_SMTP__PORT")
    set_clock(monkeypatch, at(17, 14))
    assert run_poll(office).returncode == 0
    (notice,) = sent(smtp)
    assert notice["To"] == "citizen2@gmail.com"
    assert notice["In-Reply-To"].strip() == "<notice-2@gmail.example>"
    body = notice.get_body().get_content()
    assert "อนุมัติแล้ว" in body and "รับใบอนุญาตได้ที่กองช่าง" in body and "ต่อ 103" in body
    note = action_of(office, 2)
    assert note.count("แจ้งความคืบหน้า: อนุมัติแล้ว - รับใบอนุญาตได้ที่กองช่าง") == 1
    assert "สมศรี (ทะเบียน)" in note
    # The line stays in the cell for weeks: nothing more is sent.
    set_clock(monkeypatch, at(4, 10, month=5))
    assert run_poll(office).returncode == 0
    assert len(smtp.messages) == 1


def test_an_unknown_status_is_one_line_and_sends_nothing(office, dovecot, imap_account, smtp,
                                                         monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 1, day=16)
    smtp.messages.clear()
    refused = cli(office, "notify", "1/2569", "--status", "เสร็จแล้วจ้า")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "ไม่รู้จักสถานะ" in refused.stderr and "อยู่ระหว่างพิจารณา" in refused.stderr
    type_action(office, 1, "แจ้ง: เสร็จแล้วจ้า", who="สมศรี")
    polled = run_poll(office)
    assert "Traceback" not in polled.stderr
    (line,) = [x for x in polled.stderr.splitlines() if "ไม่รู้จักสถานะ" in x]
    assert "แถว 1/2569" in line
    assert smtp.messages == [] and "แจ้งความคืบหน้า" not in action_of(office, 1)


def test_a_high_risk_unverified_matter_gets_the_generic_notice(office, dovecot, imap_account,
                                                               smtp, monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 1, day=16)
    seed(office, 1, unit=None, state="identity_pending", kind="state")
    smtp.messages.clear()
    with_text = cli(office, "notify", "1/2569", "--status", "in progress", "--text", "x")
    assert with_text.returncode == 2 and "ยังไม่ยืนยันตัวตน" in with_text.stderr
    assert smtp.messages == []
    assert cli(office, "notify", "1/2569", "--status", "in progress").returncode == 0
    ((to, subject, body),) = bodies(smtp)
    assert to == "citizen1@gmail.com" and "อยู่ระหว่างดำเนินการ" in subject
    assert "คำขอเรื่องที่ 1" not in body and "ประชาชน 1" not in body  # no subject, no name


def test_no_notice_for_a_cancelled_matter(office, dovecot, imap_account, smtp, monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 1, day=16)
    assert cli(office, "correct", "1/2569", "--cancel", "ลงรับซ้ำ").returncode == 0
    smtp.messages.clear()
    refused = cli(office, "notify", "1/2569", "--status", "อนุมัติแล้ว")
    assert refused.returncode == 2 and "cancelled" in refused.stderr and smtp.messages == []


# -- the unit heads' daily mail --------------------------------------------------------------


@pytest.fixture
def heads_office(office, dovecot, imap_account, smtp, monkeypatch):
    """Eight matters received Wednesday 1 April 2026, routed and due as below; today is
    Friday 10 April, before Songkran (13-15 April): three working days ahead reach the 20th."""
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 8, day=1)
    seed(office, 1, unit="works", due=date(2026, 4, 8))  # overdue 2 working days
    seed(office, 2, unit="works", due=date(2026, 4, 17))  # due soon, counting Songkran out
    seed(office, 3, unit="works", due=date(2026, 4, 21))  # not yet
    seed(office, 4, unit="works", due=date(2026, 4, 3), state="awaiting_documents")  # paused
    seed(office, 5, unit="health", due=date(2026, 4, 9))  # overdue
    seed(office, 6, unit="palad", due=date(2026, 4, 2))  # overdue, but the unit has no head mail
    seed(office, 7, unit="works", due=date(2026, 4, 1), state="result_sent")  # done
    seed(office, 8, unit="works", due=date(2026, 4, 7))
    seed(office, 8, unit="health", due=date(2026, 4, 7))  # re-routed: health's now
    smtp.messages.clear()
    return office


def heads_mail(smtp) -> dict[str, str]:
    return {to: body for to, _, body in bodies(smtp) if to.endswith(".head@nongtuayang.go.th")}


def listed(body: str, part: str) -> list[str]:
    """The receipt numbers of the Thai half's "เกินกำหนด" or "ใกล้ครบกำหนด" list."""
    thai = body.split("-" * 70)[0]
    section = thai.split(f"\n{part} ")[1].split("\n\n")[0]
    return [line.split()[0] for line in section.splitlines()[1:] if "/2569" in line]


def test_each_unit_head_gets_its_overdue_and_soon_due_matters_once_a_day(heads_office, smtp,
                                                                         monkeypatch):
    office = heads_office
    set_clock(monkeypatch, at(10, 8))
    assert run_poll(office).returncode == 0
    assert heads_mail(smtp) == {}  # opt-in: off by default

    with office.open("a", encoding="utf-8") as config:
        config.write("\n[notices]\nheads_daily = true\n")
    set_clock(monkeypatch, at(10, 9))
    assert run_poll(office).returncode == 0
    mails = heads_mail(smtp)
    assert set(mails) == {"works.head@nongtuayang.go.th", "health.head@nongtuayang.go.th"}
    works, health = mails["works.head@nongtuayang.go.th"], mails["health.head@nongtuayang.go.th"]
    assert listed(works, "เกินกำหนด") == ["1/2569"] and listed(works, "ใกล้ครบกำหนด") == ["2/2569"]
    assert "เกิน 2 วันทำการ" in works and "ครบกำหนด 8 เม.ย. 2569" in works
    assert "รับ 1 เม.ย. 2569" in works and "คำขอเรื่องที่ 1" in works
    assert listed(health, "เกินกำหนด") == ["8/2569", "5/2569"]
    assert listed(health, "ใกล้ครบกำหนด") == []
    assert "ผู้อำนวยการกองช่าง" in works

    count = len(smtp.messages)
    set_clock(monkeypatch, at(10, 15))
    assert run_poll(office).returncode == 0
    assert len(smtp.messages) == count  # once a day
    set_clock(monkeypatch, at(11, 10))  # Saturday: no mail
    assert run_poll(office).returncode == 0
    assert len(smtp.messages) == count
    set_clock(monkeypatch, at(16, 9))  # the next working day after Songkran
    assert run_poll(office).returncode == 0
    later = heads_mail(smtp)
    assert len(smtp.messages) == count + 2
    assert listed(later["works.head@nongtuayang.go.th"], "เกินกำหนด") == ["1/2569"]
    assert listed(later["works.head@nongtuayang.go.th"], "ใกล้ครบกำหนด") == ["2/2569", "3/2569"]


def test_a_notice_asked_while_the_clerk_keeps_the_workbook_open_goes_once_and_is_noted_later(
        office, dovecot, imap_account, smtp, monkeypatch):
    with_units(office)
    register(office, dovecot, imap_account, monkeypatch, 1, day=16)
    smtp.messages.clear()
    type_action(office, 1, "แจ้ง: ส่งเรื่องให้ส่วนงานที่รับผิดชอบแล้ว", who="สมศรี")
    lock = office.parent / "register" / ".~lock.incoming-2569.xlsx#"
    lock.write_text("clerk,office-pc")  # she still has it open: the line for the row waits
    set_clock(monkeypatch, at(17, 9))
    first = run_poll(office)
    assert "open in a spreadsheet program" in first.stderr
    assert len(smtp.messages) == 1 and "แจ้งความคืบหน้า" not in action_of(office, 1)
    lock.unlink()
    for hour in (11, 14):
        set_clock(monkeypatch, at(17, hour))
        assert run_poll(office).returncode == 0
    assert len(smtp.messages) == 1
    assert action_of(office, 1).count("แจ้งความคืบหน้า: ส่งเรื่องให้ส่วนงานที่รับผิดชอบแล้ว") == 1

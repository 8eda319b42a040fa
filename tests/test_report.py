"""The head's report (saraban-mail report): a year seeded in the journal, counted by hand, is
what the workbook, the CSV and the PDF say; LibreOffice opens the workbook; the PDF's Thai
text comes out whole; an empty period says so."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pypdf
import pytest

from saraban_mail import report
from saraban_mail.calendar import BANGKOK
from saraban_mail.category import Category
from saraban_mail.cli import main
from saraban_mail.cli.exits import EXIT_ERROR
from saraban_mail.demo import samples
from saraban_mail.journal import Journal
from saraban_mail.record import Record, WatchedOrigin
from saraban_mail.rules import default_dir
from tests.conftest import IN_CI, deliver
from tests.test_intake_e2e import records, run_poll

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
AGENCY = "เทศบาลตำบลหนองตัวอย่าง"
WORKS, HEALTH, PALAD = "กองช่าง", "กองสาธารณสุขและสิ่งแวดล้อม", "สำนักปลัด"
BUILDING = "การขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือเคลื่อนย้ายอาคาร"
WASTE = "การขอรับบริการเก็บขนขยะมูลฝอย"
COMPLAINT = "เรื่องร้องเรียน ร้องทุกข์"
ELDERLY = "การลงทะเบียนรับเงินเบี้ยยังชีพผู้สูงอายุ"
NOW = "2026-10-05T09:00:00+07:00"  # after fiscal year 2569 ended (30 Sep 2026)


def at(y: int, m: int, d: int, h: int = 9, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=BANGKOK)


BASE = Record(
    message_id="", thread_id="", folder="INBOX", uid=1, from_addr="", from_name="",
    requester="", requester_name="", subject="คำขอ", date_header=None, references=(),
    category=Category.VALID, rule="default", reason="", high_risk=False, high_risk_rule="",
    agency=None, channel=None, received_at=at(2025, 1, 1), official_received_at=at(2025, 1, 1),
    ack_due=None, attachments=(), planned=())


class Seeder:
    """Matters written through the journal's own calls, as numbering, routing and results do."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def matter(self, year: int, number: int, official: datetime, *, category: str = "valid",
               requester: str = "citizen@example.com", watched: bool = False,
               ack_sent: datetime | None = None, high_risk: bool = False,
               route: tuple[str | None, str | None] = (None, None), due: date | None = None,
               states: tuple[str, ...] = (), result: datetime | None = None,
               result_in_table: bool = False) -> None:
        j = self.journal
        record = replace(
            BASE, message_id=f"<{number}.{year}@example.com>", requester=requester,
            category=Category(category), high_risk=high_risk, received_at=official,
            official_received_at=official, ack_due=official.replace(hour=16, minute=30),
            watched=WatchedOrigin("somsri", "somsri@example.go.th", official) if watched else None)
        message = j.add_message(identity=f"{number}/{year}", uidvalidity=1, record=record,
                                poll="p", now=official)
        j.set_receipt(message, year, number)
        j.add_event(year, number, kind="registered", actor="service", now=official,
                    state="identity_pending" if high_risk else "received")
        if requester:
            mail = j.queue_mail(message=message, kind="acknowledgement", recipient=requester,
                                message_id=f"<ack{number}.{year}@x>", raw=b"", now=official)
            if ack_sent:
                j.mark_sent(mail, ack_sent)
        if route != (None, None) or due:
            j.add_event(year, number, kind="routed", actor="service", now=official,
                        detail={"unit": route[0], "service": route[1], "rule": "r", "reason": "",
                                "by": "rule"})
        if due:
            j.add_event(year, number, kind="due", actor="service", now=official,
                        detail={"due": due.isoformat(), "sla_days": 7, "sla_kind": "working",
                                "why": ""})
        for state in states:
            j.add_event(year, number, kind=state, actor="clerk", now=official, state=state)
        if result and result_in_table:
            row = j.add_result(year=year, send_no=number, receipt_year=year, receipt_no=number,
                               recipient=requester, message_id=f"<r{number}@x>", raw=b"",
                               password_raw=None, row={}, source=f"s{number}", now=result)
            j.update_result(row, sent_at=result)
        elif result:
            j.add_event(year, number, kind="result_sent", actor="service", now=result,
                        state="result_sent")

    def year(self) -> None:
        """Fiscal year 2569 (1 Oct 2025 to 30 Sep 2026) and a matter either side of it."""
        m = self.matter
        on_time = timedelta(minutes=5)
        # Before the fiscal year: not counted.
        m(2568, 90, at(2025, 9, 30), ack_sent=at(2025, 9, 30, 9, 5))
        # 1: building permit, result after 35 days (6 Oct → 10 Nov), before its due date.
        m(2568, 91, at(2025, 10, 6), ack_sent=at(2025, 10, 6) + on_time,
          route=("works", "building_permit"), due=date(2025, 11, 20), result=at(2025, 11, 10))
        # 2: waste collection, result after 4 days, kept in the results table only.
        m(2568, 92, at(2025, 10, 20, 10), ack_sent=at(2025, 10, 20, 10, 5),
          route=("health", "waste_collection"), due=date(2025, 10, 29),
          result=at(2025, 10, 24, 14), result_in_table=True)
        # 3: wrong channel, acknowledged the next morning (late), result after 52 days, a
        # week past its due date: a breach.
        m(2568, 93, at(2025, 11, 3), category="wrong_channel", ack_sent=at(2025, 11, 4),
          route=("works", "building_permit"), due=date(2025, 12, 18), result=at(2025, 12, 25))
        # 4: from a watched staff mailbox; routed to health, then re-routed to palad by a clerk.
        m(2568, 94, at(2025, 12, 1, 13), watched=True, ack_sent=at(2025, 12, 1, 13, 5),
          route=("health", "waste_collection"), due=date(2025, 12, 22), result=at(2025, 12, 10))
        self.journal.add_event(2568, 94, kind="routed", actor="clerk", now=at(2025, 12, 2),
                               detail={"unit": "palad", "service": "complaint", "rule": "clerk",
                                       "reason": "ส่ง: palad", "by": "clerk"})
        # 5: elderly allowance, high-risk, result after 15 days.
        m(2569, 1, at(2026, 1, 5), high_risk=True, ack_sent=at(2026, 1, 5) + on_time,
          route=("palad", "elderly_allowance"), due=date(2026, 1, 26),
          states=("identity_verified",), result=at(2026, 1, 20))
        # 6: an official letter no service matched: it stays with the saraban desk.
        m(2569, 2, at(2026, 2, 2), category="official_letter", ack_sent=at(2026, 2, 2) + on_time,
          route=(None, None))
        self.journal.add_event(2569, 2, kind="routed", actor="service", now=at(2026, 2, 2),
                               detail={"unit": None, "service": None, "rule": "none",
                                       "reason": "no service matched", "by": "rule"})
        # 7: waste collection, past its due date but paused for the citizen's documents.
        m(2569, 3, at(2026, 3, 2), ack_sent=at(2026, 3, 2) + on_time,
          route=("health", "waste_collection"), due=date(2026, 3, 11),
          states=("awaiting_documents",))
        # 8: waste collection, never acknowledged, overdue and open: a breach.
        m(2569, 4, at(2026, 4, 1), route=("health", "waste_collection"), due=date(2026, 4, 10))
        # 9: a complaint proposed for disposal (closed for the service level).
        m(2569, 5, at(2026, 5, 4), ack_sent=at(2026, 5, 4) + on_time,
          route=("palad", "complaint"), due=date(2026, 5, 25), states=("to_dispose",))
        # 10: a building permit disposed of.
        m(2569, 6, at(2026, 6, 1), ack_sent=at(2026, 6, 1) + on_time,
          route=("works", "building_permit"), due=date(2026, 7, 16),
          states=("to_dispose", "disposed"))
        # 11: a number cancelled (registered by mistake): not counted, only noted.
        m(2569, 7, at(2026, 6, 15), ack_sent=at(2026, 6, 15) + on_time, states=("cancelled",))
        # 12: a building permit received on 29 Sep 2026, due in November: not yet due.
        m(2569, 8, at(2026, 9, 29), ack_sent=at(2026, 9, 29) + on_time,
          route=("works", "building_permit"), due=date(2026, 11, 13))
        # After the fiscal year (fiscal year 2570): not counted.
        m(2569, 9, at(2026, 10, 1), ack_sent=at(2026, 10, 1) + on_time)


@pytest.fixture
def seeded_office(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(Path(default_dir("rules")) / "units.toml", rules / "units.toml")
    config = tmp_path / "config.toml"
    config.write_text(f'[agency]\nname_th = "{AGENCY}"\n\n[paths]\ndata_dir = "data"\n'
                      'register_dir = "register"\nrules_dir = "rules"\n', encoding="utf-8")
    monkeypatch.setenv("SARABAN_NOW", NOW)
    return config


def seeded(config: Path) -> None:
    journal = Journal.open(config.parent / "data")
    with journal.transaction():
        Seeder(journal).year()
    journal.close()


def run(config: Path, *args: str, capsys) -> tuple[int, str]:
    code = main(["report", "--config", str(config), *args])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def sheet_rows(path: Path, name: str) -> list[tuple]:
    sheet = openpyxl.load_workbook(path)[name]
    return [tuple(row) for row in sheet.iter_rows(min_row=4, values_only=True)
            if row[0] and len(row) > 1 and row[1] is not None]


def test_the_year_counted_by_hand_is_in_the_workbook_the_csv_and_the_pdf(seeded_office, capsys):
    seeded(seeded_office)
    code, out = run(seeded_office, "--fiscal-year", "2569", capsys=capsys)
    assert code == 0
    folder = seeded_office.parent / "register"
    assert "11 matters, 2 past their service level" in out
    book = folder / "report-fy2569.xlsx"

    # 12 matters in the year less the cancelled one; 2 outside the year.
    summary = dict(r[:2] for r in sheet_rows(book, "สรุป"))
    assert summary == {
        "จำนวนเรื่องรับทั้งหมด": 11,
        "ตอบรับภายในกำหนด": 9,  # all but 3 (next morning) and 8 (never)
        "ตอบรับล่าช้า": 1,
        "ยังไม่ได้ตอบรับทั้งที่ถึงกำหนดแล้ว": 1,
        "ร้อยละการตอบรับภายในกำหนด": 81.8,  # 9 of 11
        "ส่งผลการดำเนินการแล้ว": 5,  # 1 to 5
        "เรื่องที่เกินกำหนดตามมาตรฐานการให้บริการ": 2,  # 3 (late result), 8 (overdue, open)
        "เรื่องที่มีความเสี่ยงสูง (ต้องยืนยันตัวตน)": 1,
        "จำหน่ายเรื่องแล้ว": 1,
        "เสนอจำหน่ายเรื่อง": 1,
        "เลขรับที่ยกเลิก (ไม่นับในรายงาน)": 1,
    }
    assert sheet_rows(book, "รายเดือน") == [
        ("ต.ค. 2568", 2), ("พ.ย. 2568", 1), ("ธ.ค. 2568", 1), ("ม.ค. 2569", 1),
        ("ก.พ. 2569", 1), ("มี.ค. 2569", 1), ("เม.ย. 2569", 1), ("พ.ค. 2569", 1),
        ("มิ.ย. 2569", 1), ("ก.ค. 2569", 0), ("ส.ค. 2569", 0), ("ก.ย. 2569", 1)]
    # Days to result: building 35 and 52 → median 43.5, 90th percentile 35 + 0.9 × 17 = 50.3.
    # Matter 4 counts where the clerk re-routed it (complaint, palad), not where the rule did.
    assert sheet_rows(book, "งานบริการ")[:5] == [
        (BUILDING, WORKS, 4, 2, 43.5, 50.3, 1),
        (WASTE, HEALTH, 3, 1, 4, 4.0, 1),
        (COMPLAINT, PALAD, 2, 1, 9, 9.0, 0),
        (ELDERLY, PALAD, 1, 1, 15, 15.0, 0),
        ("ไม่ระบุ", "ไม่ระบุ", 1, 0, "-", "-", 0),
    ]
    assert sheet_rows(book, "ส่วนงาน")[:4] == [
        (WORKS, 4, 2, 1, 0), (HEALTH, 3, 1, 1, 1), (PALAD, 3, 2, 0, 0), ("ไม่ระบุ", 1, 0, 0, 0)]
    assert sheet_rows(book, "ช่องทาง") == [
        ("อีเมลสารบรรณ", 8), ("ผิดช่องทาง", 1), ("อีเมลเจ้าหน้าที่", 1), ("หนังสือราชการ", 1)]
    assert sheet_rows(book, "เกินกำหนด") == [
        ("93/2568", BUILDING, WORKS, "18 ธ.ค. 2568", "25 ธ.ค. 2568"),
        ("4/2569", WASTE, HEALTH, "10 เม.ย. 2569", "ยังไม่ส่งผล")]
    charts = openpyxl.load_workbook(book)
    assert [len(charts[name]._charts) for name in ("รายเดือน", "งานบริการ")] == [1, 1]

    raw = (folder / "report-fy2569-services.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "งานบริการ"
    assert rows[1] == [BUILDING, WORKS, "4", "2", "43.5", "50.3", "1"]
    assert list(csv.reader(io.StringIO(
        (folder / "report-fy2569-channels.csv").read_text("utf-8-sig"))))[1] == ["อีเมลสารบรรณ", "8"]

    pdf = pypdf.PdfReader(folder / "report-fy2569.pdf")
    assert len(pdf.pages) <= 2
    text = "\n".join(page.extract_text() for page in pdf.pages)
    for words in ("รายงานสถิติ", "จำนวนเรื่อง", AGENCY, "ปีงบประมาณ พ.ศ. 2569", "หัวหน้าส่วนราชการ",
                  "จำนวนเรื่องตามส่วนงาน", "เรื่องที่เกินกำหนด", "ลงชื่อ", "กองสาธารณสุข"):
        assert words in text, words
    assert "\x0c" not in text and "จานวน" not in text


def test_a_month_in_either_era_and_an_empty_year(seeded_office, capsys):
    seeded(seeded_office)
    folder = seeded_office.parent / "register"
    code, out = run(seeded_office, "--month", "2025-10", capsys=capsys)  # CE: October 2568
    assert code == 0 and "เดือน ตุลาคม 2568: 2 matters" in out
    assert sheet_rows(folder / "report-2568-10.xlsx", "รายเดือน") == [("ต.ค. 2568", 2)]

    code, out = run(seeded_office, "--fiscal-year", "2560", capsys=capsys)
    assert code == 0 and "nothing registered" in out
    book = folder / "report-fy2560.xlsx"
    assert dict(r[:2] for r in sheet_rows(book, "สรุป"))["จำนวนเรื่องรับทั้งหมด"] == 0
    text = pypdf.PdfReader(folder / "report-fy2560.pdf").pages[0].extract_text()
    assert "ไม่มีเรื่องรับในช่วงเวลานี้" in text

    assert main(["report", "--config", str(seeded_office), "--month", "2569-13"]) == EXIT_ERROR
    assert "month '2569-13' is not a year and month" in capsys.readouterr().err


def test_libreoffice_opens_the_report_workbook(seeded_office, capsys, tmp_path):
    if not SOFFICE:
        if IN_CI:
            pytest.fail("LibreOffice is not installed (run tests/setup-and-run.sh)")
        pytest.skip("LibreOffice is not installed")
    seeded(seeded_office)
    run(seeded_office, "--fiscal-year", "2569", capsys=capsys)
    out = tmp_path / "lo"
    # Token 12 = 3: the third sheet (งานบริการ), cells as LibreOffice shows them.
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={(out / 'profile').as_uri()}", "--headless",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,"
         "false,3", "--outdir", str(out), str(seeded_office.parent / "register" / "report-fy2569.xlsx")],
        check=True, capture_output=True, timeout=180)
    # With a sheet chosen, LibreOffice names the file after it.
    rows = list(csv.reader((out / "report-fy2569-งานบริการ.csv").open(encoding="utf-8")))
    assert rows[2][:7] == ["งานบริการ", "ส่วนงาน", "จำนวนเรื่อง", "ส่งผลแล้ว", "มัธยฐาน (วัน)",
                           "เปอร์เซ็นไทล์ที่ 90 (วัน)", "เกินกำหนด"]
    assert [BUILDING, WORKS, "4", "2", "43.5", "50.3", "1"] in [r[:7] for r in rows]


def test_fiscal_year_and_percentile_rules():
    year = report.fiscal_year("2569")
    assert (year.start, year.end) == (date(2025, 10, 1), date(2026, 10, 1))
    assert report.fiscal_year("2026") == year  # a year below 2400 is CE
    assert len(year.months) == 12 and year.months[0] == (2025, 10)
    # 10 values 1..10: rank 0.9 × 9 = 8.1 → 9 + 0.1 × (10 - 9) = 9.1.
    assert report.p90(list(range(1, 11))) == 9.1
    assert report.p90([7]) == 7.0


def test_matters_registered_by_real_polls_are_reported(office, dovecot, imap_account, smtp,
                                                       monkeypatch, capsys):
    """Three requests polled from Dovecot and acknowledged through the SMTP server: the
    report reads their channel, acknowledgement and risk from what the poll kept."""
    chosen = {s.key: s for s in samples()}
    for key in ("building_permit", "e_bidding", "withdraw_complaint"):
        deliver(dovecot, imap_account, "INBOX", chosen[key].raw, chosen[key].received_at)
    monkeypatch.setenv("SARABAN_NOW", "2026-04-16T15:00:00+07:00")
    polled = records(run_poll(office, "--json"))
    assert sorted(r["category"] for r in polled) == ["valid", "valid", "wrong_channel"]
    assert len(smtp.messages) == 3  # the acknowledgements went
    monkeypatch.setenv("SARABAN_NOW", "2026-05-01T09:00:00+07:00")
    code, out = run(office, "--month", "2569-04", "--out", str(office.parent / "head"),
                    capsys=capsys)
    assert code == 0 and "เดือน เมษายน 2569: 3 matters" in out
    book = office.parent / "head" / "report-2569-04.xlsx"
    summary = dict(r[:2] for r in sheet_rows(book, "สรุป"))
    assert (summary["จำนวนเรื่องรับทั้งหมด"], summary["ตอบรับภายในกำหนด"],
            summary["เรื่องที่มีความเสี่ยงสูง (ต้องยืนยันตัวตน)"]) == (3, 3, 1)
    assert sheet_rows(book, "ช่องทาง") == [
        ("อีเมลสารบรรณ", 2), ("ผิดช่องทาง", 1), ("อีเมลเจ้าหน้าที่", 0), ("หนังสือราชการ", 0)]
    # No rules/units.toml in this office: nothing is routed, all stays with the saraban desk.
    assert sheet_rows(book, "ส่วนงาน") == [("ไม่ระบุ", 3, 0, 0, 0)]

"""The register shared with clerks: their edits survive, an open or damaged workbook is
never written, numbers stay 1..N, and LibreOffice reads what the service wrote."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.chart import BarChart, Reference

from saraban_mail.demo import samples
from saraban_mail.register import INCOMING, OUTGOING, Look, append_rows, backups_of, read_rows
from tests.conftest import IN_CI
from tests.offices import add_mail, by_key, cli, office_with, poll, request

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture
def soffice():
    if not SOFFICE:
        message = "LibreOffice is not installed (run tests/setup-and-run.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return SOFFICE


def book_of(folder: Path, year: int = 2569) -> Path:
    return folder / "register" / f"incoming-{year}.xlsx"


def numbers(path: Path) -> list[int | None]:
    return [r.number for r in read_rows(path, INCOMING)[1]]


def deliver_requests(folder: Path, start: int, count: int) -> None:
    for n in range(start, start + count):
        add_mail(folder, *request(n))


def records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- layout -----------------------------------------------------------------------------


def test_a_new_register_has_the_official_layout(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    assert poll(config).returncode == 0
    book = openpyxl.load_workbook(book_of(tmp_path))
    sheet = book["ทะเบียนหนังสือรับ"]
    assert "ทะเบียนหนังสือรับ" in sheet["A1"].value and "2569" in sheet["A1"].value
    headings = [c.value for c in sheet[2]]
    assert headings[:8] == ["เลขทะเบียนรับ", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง",
                            "การปฏิบัติ", "หมายเหตุ"]
    assert headings[-1] == "อ้างอิงระบบ"
    assert sheet.freeze_panes == "B3"
    assert sheet.print_title_rows == "$2:$2"
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.paperSize == 9
    assert sheet["F2"].font.name == "TH Sarabun New"
    assert sheet["F3"].alignment.wrap_text
    assert sheet.auto_filter.ref == "A2:S3"  # through ครบกำหนด, our 19th column
    assert book.sheetnames == ["ทะเบียนหนังสือรับ", "สรุป"]


def test_the_outgoing_register_has_form_14_columns(tmp_path):
    path = tmp_path / "outgoing-2569.xlsx"
    row = {"send_no": 1, "to": "นายสมชาย", "subject": "ใบอนุญาต", "email": "a@b.th",
           "answers": "5/2569", "sent_at": "2026-11-23T10:00:00+07:00", "ref": "SO-1"}
    append_rows(path, OUTGOING, "ทะเบียนหนังสือส่ง ปี พ.ศ. 2569", [row])
    sheet = openpyxl.load_workbook(path)["ทะเบียนหนังสือส่ง"]
    assert [c.value for c in sheet[2]][:8] == ["เลขทะเบียนส่ง", "ที่", "ลงวันที่", "จาก", "ถึง",
                                                "เรื่อง", "การปฏิบัติ", "หมายเหตุ"]
    assert sheet["A3"].value == 1 and sheet["L3"].is_date  # ส่งเมื่อ


def test_summary_sheet_counts_months_and_categories_with_a_chart(tmp_path):
    config = office_with(tmp_path, samples())
    assert poll(config).returncode == 0
    book = openpyxl.load_workbook(book_of(tmp_path))
    summary = book["สรุป"]
    headings = [summary.cell(3, c).value for c in range(1, 10)]
    april = [summary.cell(7, c).value for c in range(1, 10)]
    assert april[0] == "เม.ย."
    counts = dict(zip(headings, april, strict=True))
    assert counts["คำขอ/เรื่องทั่วไป"] == 9 and counts["อีเมลขยะ"] == 2
    with zipfile.ZipFile(book_of(tmp_path)) as archive:
        assert any(n.startswith("xl/charts/chart") for n in archive.namelist())


# -- clerk edits --------------------------------------------------------------------------


def test_clerk_columns_inserted_in_the_middle_and_filters_survive(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    sheet.insert_cols(3)
    sheet["C2"] = "ผู้รับผิดชอบ"
    sheet["C3"] = "กองช่าง"
    sheet["I3"] = "เสนอนายกฯ แล้ว"  # การปฏิบัติ moved from G to H... the clerk types in it
    sheet.cell(2, 20, "หมายเหตุของฝ่าย")
    sheet.cell(3, 20, "ด่วน")
    sheet.auto_filter.ref = "A2:T3"
    book.save(path)

    deliver_requests(tmp_path, 2, 1)
    assert poll(config).returncode == 0
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert [sheet.cell(r, 1).value for r in (3, 4)] == [1, 2]
    assert (sheet["C3"].value, sheet["I3"].value, sheet.cell(3, 20).value) == (
        "กองช่าง", "เสนอนายกฯ แล้ว", "ด่วน")
    assert sheet["C4"].value is None  # nothing of ours in the clerk's column
    assert sheet["G4"].value == "ขอข้อมูลข่าวสาร 2"  # เรื่อง, found by its heading
    assert sheet.auto_filter.ref == "A2:T4"


def test_a_number_a_clerk_typed_twice_is_reported_never_renumbered(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    lock = path.with_name(f"~${path.name}")
    lock.write_bytes(b"\x05clerk")
    deliver_requests(tmp_path, 2, 1)
    assert records(poll(config))[0]["receipt_no"] == 2  # ack sent with number 2
    # Meanwhile the clerk, with the workbook open, typed paper mail as number 2.
    book = openpyxl.load_workbook(path)
    book.worksheets[0].append([2, "ศธ 0001/1", None, "โรงเรียน", "นายก", "หนังสือกระดาษ"])
    book.save(path)
    lock.unlink()

    result = poll(config)
    assert result.returncode == 3
    assert "number 2/2569 was given to an email and a clerk also typed it" in result.stderr
    assert numbers(path) == [1, 2, 2]
    status = cli("status", "--config", str(config), "--json")
    register = json.loads(status.stdout)["registers"][0]
    assert register["clashes"] == [2] and register["duplicates"] == [2]


# -- open, stale, damaged ------------------------------------------------------------------


@pytest.mark.parametrize("lock_name", ["~$incoming-2569.xlsx", ".~lock.incoming-2569.xlsx#"])
def test_either_lock_convention_keeps_rows_pending_until_it_goes(tmp_path, lock_name):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    before = path.read_bytes()
    lock = path.with_name(lock_name)
    lock.write_text(",clerk,office-pc,23.11.2026 09:00,file:///x;")
    deliver_requests(tmp_path, 2, 2)
    first = poll(config)
    assert first.returncode == 3 and "open in a spreadsheet program" in first.stderr
    assert [r["receipt_no"] for r in records(first)] == [2, 3]
    assert len(list((tmp_path / "outbox-mail").glob("*.eml"))) == 3  # acks still went out
    assert path.read_bytes() == before
    pending = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert pending["pending_register_rows"] == 2

    lock.unlink()
    assert poll(config).returncode == 0
    assert numbers(path) == [1, 2, 3]


def test_a_stale_lock_is_reported_and_still_respected(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    register = tmp_path / "register"
    register.mkdir()
    lock = register / "~$incoming-2569.xlsx"
    lock.write_bytes(b"\x05clerk")
    two_days_ago = time.time() - 48 * 3600
    os.utime(lock, (two_days_ago, two_days_ago))
    result = poll(config)
    assert result.returncode == 3
    assert "stale lock file ~$incoming-2569.xlsx by clerk (it is 48 hours old)" in result.stderr
    assert not book_of(tmp_path).exists()


def test_a_libreoffice_lock_whose_program_is_gone_is_reported_as_stale(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    register = tmp_path / "register"
    register.mkdir()
    (register / ".~lock.incoming-2569.xlsx#").write_text(
        f",clerk,{socket.gethostname()},23.11.2026 09:00,file:///x;")
    result = poll(config)
    if "stale" not in result.stderr:  # a LibreOffice runs on this machine right now
        assert "open in a spreadsheet program" in result.stderr
    else:
        assert "its program is no longer running" in result.stderr


def test_libreoffice_really_holding_the_workbook_open(tmp_path, soffice):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    profile = tmp_path / "lo-profile"
    office = subprocess.Popen(
        [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    lock = path.with_name(f".~lock.{path.name}#")
    try:
        deadline = time.monotonic() + 60
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lock.exists(), "LibreOffice did not open the workbook"
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        deliver_requests(tmp_path, 2, 1)
        held = poll(config)
        assert held.returncode == 3 and "open in a spreadsheet program" in held.stderr
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    finally:
        os.killpg(office.pid, signal.SIGTERM)
        office.wait(30)
    lock.unlink(missing_ok=True)  # a killed LibreOffice leaves its lock, like a crash
    assert poll(config).returncode == 0
    assert numbers(path) == [1, 2]


@pytest.mark.parametrize("content", [
    b"this is not a workbook",
    bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600,  # what Excel writes for a password
])
def test_an_unreadable_workbook_is_never_overwritten(tmp_path, content):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    register = tmp_path / "register"
    register.mkdir()
    book_of(tmp_path).write_bytes(content)
    result = poll(config)
    assert result.returncode == 3
    assert "damaged, not an .xlsx file, or password-protected" in result.stderr
    assert "left untouched" in result.stderr
    assert book_of(tmp_path).read_bytes() == content
    assert not list((register / ".backups").glob("*")) if (register / ".backups").exists() else True
    # Without the sheet's numbers the service cannot number safely: it waits.
    assert records(result)[0]["receipt_no"] is None

    book_of(tmp_path).unlink()  # the administrator restores or removes the file
    again = poll(config)
    assert again.returncode == 0, again.stderr
    assert numbers(book_of(tmp_path)) == [1]


def test_a_clerks_chart_is_never_silently_dropped(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    book = openpyxl.load_workbook(path)
    mine = book.create_sheet("กราฟของฉัน")
    mine.append(["a", 1])
    chart = BarChart()
    chart.add_data(Reference(mine, min_col=2, min_row=1, max_row=1))
    mine.add_chart(chart, "D2")
    book.save(path)
    before = path.read_bytes()
    deliver_requests(tmp_path, 2, 1)
    result = poll(config)
    assert result.returncode == 3
    assert "sheet 'กราฟของฉัน' holds a chart or picture" in result.stderr
    assert path.read_bytes() == before


def test_only_the_last_backups_are_kept(tmp_path):
    config = office_with(tmp_path, [])
    config.write_text(config.read_text() + "\n[registers]\nbackups = 2\n")
    for n in range(1, 5):
        deliver_requests(tmp_path, n, 1)
        assert poll(config).returncode == 0
    kept = backups_of(book_of(tmp_path))
    assert len(kept) == 2
    assert numbers(kept[-1]) == [1, 2, 3]  # the version before the last save


def test_rows_remembered_after_a_save_are_those_read_back_and_a_clerks_save_is_seen(tmp_path):
    from datetime import date, datetime

    from saraban_mail import register

    path = tmp_path / "incoming-2569.xlsx"
    rows = [{"receipt_no": n, "ref": f"SM-{n}", "doc_date": date(2026, 11, n),
             "received_at": datetime(2026, 11, n, 9, 30), "subject": f"=เรื่อง {n}",
             "email": f"c{n}@gmail.com"} for n in range(1, 4)]
    append_rows(path, INCOMING, "t", rows)
    remembered = read_rows(path, INCOMING)
    register._known.clear()
    assert read_rows(path, INCOMING) == remembered  # what the file holds, read afresh
    assert remembered[1][0].values["doc_date"] == datetime(2026, 11, 1)

    book = openpyxl.load_workbook(path)  # a clerk adds a paper row and saves
    book.worksheets[0].append([4, None, "ที่ 9/2569"])
    book.save(path)
    assert numbers(path) == [1, 2, 3, 4]


def test_a_workbook_read_for_numbering_is_loaded_once_for_the_write_unless_a_clerk_saves(
    tmp_path, monkeypatch
):
    from saraban_mail import register

    path = tmp_path / "incoming-2569.xlsx"
    append_rows(path, INCOMING, "t", [{"receipt_no": 1, "ref": "SM-1", "subject": "หนึ่ง"}])
    book = openpyxl.load_workbook(path)  # a clerk's save: our remembered rows are stale
    book.worksheets[0].append([2, None, "ที่ 9/2569"])
    book.save(path)
    loads: list[bool] = []
    real = openpyxl.load_workbook
    monkeypatch.setattr(register.openpyxl, "load_workbook",
                        lambda *a, **k: loads.append(k.get("read_only", False)) or real(*a, **k))

    assert register.highest_number(path, keep=True) == 2
    append_rows(path, INCOMING, "t", [{"receipt_no": 3, "ref": "SM-3", "subject": "สาม"}])
    assert loads == [False]  # one whole load, no read-only read before it
    assert numbers(path) == [1, 2, 3]

    assert register.highest_number(path, keep=True) == 3  # remembered after our save
    assert loads == [False]
    book = real(path)  # the clerk saves between our numbering and our write
    register._known.clear()
    assert register.highest_number(path, keep=True) == 3
    book.worksheets[0].append([4, None, "ที่ 10/2569"])
    book.save(path)
    append_rows(path, INCOMING, "t", [{"receipt_no": 5, "ref": "SM-5", "subject": "ห้า"}])
    assert loads == [False, False, False]  # the kept book was not used: the file changed
    assert numbers(path) == [1, 2, 3, 4, 5]
    register._known.clear()
    register.highest_number(path, keep=True)  # kept, and no write follows in this poll
    assert list(register._loaded) == [path.resolve()]
    register.release()  # the end of the poll
    assert register._loaded == {}


# -- safe text -----------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["=1+1", "+66 81 234 5678", "-2+3", "@SUM(A1)",
                                     "\t=cmd|' /C calc'!A0", '=HYPERLINK("http://x","คลิก")'])
def test_citizen_text_is_a_string_cell_never_a_formula(tmp_path, subject):
    path = tmp_path / "incoming-2569.xlsx"
    append_rows(path, INCOMING, "t", [{"receipt_no": 1, "subject": subject, "ref": "SM-1"}])
    cell = openpyxl.load_workbook(path).worksheets[0]["F3"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == (subject, "s", True)


def libreoffice_csv(soffice: str, workbook: Path, out: Path) -> list[list[str]]:
    """What LibreOffice shows: the sheet converted headless, cells as displayed, UTF-8."""
    subprocess.run(
        [soffice, f"-env:UserInstallation={(out / 'profile').as_uri()}", "--headless",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true",
         "--outdir", str(out), str(workbook)],
        check=True, capture_output=True, timeout=180,
    )
    with open(out / f"{workbook.stem}.csv", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_libreoffice_shows_thai_text_buddhist_dates_and_literal_formulas(tmp_path, soffice):
    config = office_with(tmp_path, [by_key("formula_subject"), by_key("outlook_874_after_friday_close")])
    assert poll(config).returncode == 0
    rows = libreoffice_csv(soffice, book_of(tmp_path), tmp_path / "lo")
    assert rows[0][0].startswith("ทะเบียนหนังสือรับ เทศบาลตำบลหนองตัวอย่าง")
    assert rows[1][:6] == ["เลขทะเบียนรับ", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง"]
    friday, formula = rows[2], rows[3]
    assert friday[5] == "แจ้งซ่อมไฟส่องสว่างสาธารณะ"
    assert friday[2] == "10 เม.ย. 2569"  # ลงวันที่: a real date shown in the Buddhist era
    assert friday[10] == "16 เม.ย. 2569 08:30"  # official receipt time
    assert formula[5] == '=HYPERLINK("http://evil.example","ขอข้อมูล")'


# -- check, repair, export -----------------------------------------------------------------


def test_register_check_finds_a_deleted_row_and_repair_writes_it_again(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 3)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    book = openpyxl.load_workbook(path)
    book.worksheets[0].delete_rows(4)  # number 2, deleted by mistake
    book.save(path)
    check = cli("register", "check", "--config", str(config))
    assert check.returncode == 3
    assert "rows missing from the sheet: 2" in check.stdout
    repair = cli("register", "check", "--config", str(config), "--repair")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert sorted(numbers(path)) == [1, 2, 3]


def test_register_check_reports_gaps_in_clerk_numbering(tmp_path):
    config = office_with(tmp_path, [])
    deliver_requests(tmp_path, 1, 1)
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    book = openpyxl.load_workbook(path)
    book.worksheets[0].append([3, "", None, "จังหวัด", "นายก", "หนังสือกระดาษ"])
    book.save(path)
    check = cli("register", "check", "--config", str(config), "--year", "2569")
    assert check.returncode == 3 and "gaps (no row): 2" in check.stdout


def test_export_as_csv_and_as_a_plain_workbook(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    assert poll(config).returncode == 0
    out = tmp_path / "out.csv"
    assert cli("register", "export", "--config", str(config), "--year", "2569",
               "--out", str(out)).returncode == 0
    with open(out, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "เลขทะเบียนรับ" and rows[1][0] == "1"
    assert rows[1][2] == "2026-04-16" and rows[1][5] == "ขออนุญาตก่อสร้างอาคาร"
    xlsx = tmp_path / "out.xlsx"
    assert cli("register", "export", "--config", str(config), "--year", "2569", "--format",
               "xlsx", "--out", str(xlsx)).returncode == 0
    assert openpyxl.load_workbook(xlsx).sheetnames == ["ทะเบียนหนังสือรับ"]
    missing = cli("register", "export", "--config", str(config), "--year", "2570")
    assert missing.returncode == 2 and "no register for 2570" in missing.stderr


def test_look_settings_reach_the_cells(tmp_path):
    path = tmp_path / "incoming-2569.xlsx"
    append_rows(path, INCOMING, "t", [{"receipt_no": 1, "subject": "x", "ref": "SM-1",
                                       "official_received_at": "2026-11-23T09:00:00+07:00"}],
                look=Look("thai_digits", "TH SarabunPSK", 16))
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert sheet["F3"].font.name == "TH SarabunPSK" and sheet["F3"].font.sz == 16
    assert sheet["K3"].number_format.startswith("[$-D07041E]")

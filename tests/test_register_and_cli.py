"""The register workbook shared with clerks, the configuration, and the command line.

These run against a local Maildir and a pickup folder: real files, no server needed."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from saraban_mail.config import load_config
from saraban_mail.errors import ConfigError
from saraban_mail.files import safe_filename
from tests.offices import by_key, cli, office_with, poll


def test_numbers_continue_after_a_clerks_paper_rows_and_keep_the_clerks_edits(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    assert poll(config).returncode == 0
    book_path = tmp_path / "register" / "incoming-2569.xlsx"
    book = openpyxl.load_workbook(book_path)
    sheet = book.worksheets[0]
    sheet.append([2, "นม 0023/123", None, "สำนักงานจังหวัด", "นายกเทศมนตรี", "หนังสือกระดาษ"])
    sheet.cell(3, 7, "ส่งกองช่างแล้ว")  # the clerk's note in การปฏิบัติ
    book.create_sheet("บันทึกเจ้าหน้าที่")["A1"] = "งานค้างของฝ่าย"
    book.save(book_path)

    root = mailbox.Maildir(tmp_path / "maildir")
    message = mailbox.MaildirMessage(by_key("english_html").raw)
    message.set_date(by_key("english_html").received_at.timestamp())
    root.add(message)
    result = poll(config)
    assert result.returncode == 0, result.stderr
    assert [r["receipt_no"] for r in map(json.loads, result.stdout.splitlines())] == [3]

    book = openpyxl.load_workbook(book_path)
    sheet = book.worksheets[0]
    assert [row[0] for row in sheet.iter_rows(min_row=3, values_only=True)] == [1, 2, 3]
    assert sheet.cell(3, 7).value == "ส่งกองช่างแล้ว"
    assert book.sheetnames == ["ทะเบียนหนังสือรับ", "บันทึกเจ้าหน้าที่", "สรุป"]
    assert book["บันทึกเจ้าหน้าที่"]["A1"].value == "งานค้างของฝ่าย"
    assert len(list((tmp_path / "register" / ".backups").glob("incoming-2569.*.xlsx"))) == 1


def test_open_workbook_keeps_rows_pending_and_writes_them_at_the_next_poll(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    register = tmp_path / "register"
    register.mkdir()
    lock = register / ".~lock.incoming-2569.xlsx#"
    lock.write_text("clerk,office-pc")
    first = poll(config)
    assert first.returncode == 3
    assert "open in a spreadsheet program" in first.stderr
    assert json.loads(first.stdout)["receipt_no"] == 1
    assert len(list((tmp_path / "outbox-mail").glob("*.eml"))) == 1  # the ack still went
    assert not (register / "incoming-2569.xlsx").exists()

    lock.unlink()
    second = poll(config)
    assert second.returncode == 0, second.stderr
    sheet = openpyxl.load_workbook(register / "incoming-2569.xlsx").worksheets[0]
    assert [row[0] for row in sheet.iter_rows(min_row=3, values_only=True)] == [1]
    assert len(list((tmp_path / "outbox-mail").glob("*.eml"))) == 1
    # The acknowledgement went while the row waited: its time is in the row written later.
    assert isinstance(sheet.cell(3, 13).value, datetime)


def test_formula_looking_subject_is_stored_as_text(tmp_path):
    config = office_with(tmp_path, [by_key("formula_subject")])
    assert poll(config).returncode == 0
    sheet = openpyxl.load_workbook(tmp_path / "register" / "incoming-2569.xlsx").worksheets[0]
    cell = sheet.cell(3, 6)
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s" and cell.quotePrefix
    assert cell.value == '=HYPERLINK("http://evil.example","ขอข้อมูล")'


def test_register_dates_are_real_dates_shown_in_buddhist_era(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    assert poll(config).returncode == 0
    sheet = openpyxl.load_workbook(tmp_path / "register" / "incoming-2569.xlsx").worksheets[0]
    official = sheet.cell(3, 11)
    assert official.is_date and official.value.year == 2026
    assert official.number_format.startswith("[$-107041E]")


def test_needs_review_keeps_the_raw_message(tmp_path):
    config = office_with(tmp_path, [by_key("no_sender")])
    record = json.loads(poll(config).stdout)
    assert record["category"] == "needs_review"
    kept = list((tmp_path / "data" / "review").glob("*.eml"))
    # (the Maildir stores LF line ends; the bytes are otherwise those delivered)
    assert len(kept) == 1
    assert kept[0].read_bytes() == by_key("no_sender").raw.replace(b"\r\n", b"\n")


@pytest.mark.parametrize(("name", "safe"), [
    ("../../etc/passwd", "passwd"), ("CON", "_CON"), ("a\x00b\u202egnp.exe", "a_b_gnp.exe"),
    ("..\\..\\boot.ini", "boot.ini"), (".hidden", "hidden"), ("ใบอนุญาต.pdf", "ใบอนุญาต.pdf"),
])
def test_attachment_names_are_made_safe(name, safe):
    assert safe_filename(name) == safe


def test_demo_runs_then_a_second_poll_prints_nothing(tmp_path):
    demo = cli("demo", str(tmp_path / "office"), "--json")
    assert demo.returncode == 0, demo.stderr
    got = [json.loads(line) for line in demo.stdout.splitlines()]
    assert {r["category"] for r in got} == {
        "spam", "automated", "wrong_agency_forward", "wrong_agency", "wrong_channel", "valid",
        "needs_review"}
    mails = [m.read_bytes() for m in (tmp_path / "office" / "outbox-mail").glob("*.eml")]
    # The replies, and the requests the example units.toml routed, forwarded to their units.
    forwards = [m for m in mails if b"\nX-Saraban-Receipt:" in m.replace(b"\r\n", b"\n")]
    assert (len(mails) - len(forwards), len(forwards) > 0) == (14, True)
    again = poll(tmp_path / "office" / "config.toml")
    assert (again.returncode, again.stdout) == (0, "")


def test_bad_config_key_is_one_line_naming_key_and_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[imap]\nport = "nine"\n')
    result = cli("poll", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"{config}: imap.port:" in result.stderr
    config.write_text('[imap]\nprot = 1\n')
    assert "imap.prot: unknown setting (did you mean port?)" in cli("poll", "--config", str(config)).stderr


def test_missing_config_says_what_to_do(tmp_path):
    result = cli("poll", cwd=tmp_path)
    assert result.returncode == 2
    assert "copy config.example.toml" in result.stderr


def test_environment_overrides_the_file_and_paths_resolve_against_it(tmp_path, monkeypatch):
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text('[imap]\nusername = "file"\n[paths]\ndata_dir = "var"\n')
    monkeypatch.setenv("SARABAN_IMAP__USERNAME", "env")
    monkeypatch.setenv("SARABAN_POLICY__MAX_REPLIES_PER_SENDER_PER_DAY", "2")
    loaded = load_config(config)
    assert loaded.imap.username == "env"
    assert loaded.policy.max_replies_per_sender_per_day == 2
    assert loaded.paths.data_dir == tmp_path / "conf" / "var"
    monkeypatch.setenv("SARABAN_CONFIG", str(config))
    assert load_config().imap.username == "env"
    monkeypatch.setenv("SARABAN_OFFICE_HOURS__CLOSE", "07:00")
    with pytest.raises(ConfigError, match="office_hours.close"):
        load_config(config)


def test_example_config_is_valid(monkeypatch):
    example = Path(__file__).parent.parent / "config.example.toml"
    config = load_config(example)
    assert (config.imap.host, config.imap.port, config.imap.security) == (
        "imap.mail.go.th", 993, "tls")


def test_several_requests_from_one_sender_are_acknowledged_in_one_mail_under_the_cap(tmp_path):
    config = office_with(tmp_path, [])
    config.write_text(config.read_text().replace(
        "[policy]\n", "[policy]\nmax_replies_per_sender_per_day = 2\n"))
    root = mailbox.Maildir(tmp_path / "maildir")
    base = by_key("building_permit")
    for n in range(4):
        # Four different mails from one sender on one day.
        message = mailbox.MaildirMessage(base.raw.replace(b"Message-ID: <", f"Message-ID: <{n}".encode())
                                         .replace(b"--\n", f"--\n\n{n}".encode(), 0) + f"\n{n}\n".encode())
        message.set_date(base.received_at.timestamp() + n)
        root.add(message)
    got = [json.loads(line) for line in poll(config).stdout.splitlines()]
    assert [r["receipt_no"] for r in got] == [1, 2, 3, 4]  # all registered
    # One mail naming all four: the cap (two a day) counts mails, and costs no receipt its
    # acknowledgement (issue 18; held-back ones: tests/test_acks_e2e.py).
    [sent] = list((tmp_path / "outbox-mail").glob("*.eml"))
    subject = str(email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)["Subject"])
    assert all(f"{n}/2569" in subject for n in range(1, 5))
    assert [[m["status"] for m in r["mail"]] for r in got] == [["sent"]] * 4


def test_a_broken_template_is_one_clear_error_before_any_mail_is_touched(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "acknowledgement.txt.j2").write_text("Subject: {{ receipt }\n\nbody")
    result = poll(config)
    assert result.returncode == 2
    assert "acknowledgement.txt.j2" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "data" / "journal.sqlite3").exists()


def test_a_message_the_pipeline_fails_on_is_flagged_and_the_poll_goes_on(tmp_path, monkeypatch):
    from saraban_mail.config import load_config
    from saraban_mail.poll import intake
    from saraban_mail.service import run_poll

    config = office_with(tmp_path, [by_key("building_permit"), by_key("english_html")])
    real = intake.classify

    def failing(mail, rules, us):
        if "building" in mail.subject.lower() or "ก่อสร้าง" in mail.subject:
            raise RuntimeError("boom")
        return real(mail, rules, us)

    monkeypatch.setattr(intake, "classify", failing)
    report = run_poll(load_config(config))
    by_rule = {r["rule"]: r for r in report.records}
    assert set(by_rule) == {"internal_error", "default"}
    assert by_rule["internal_error"]["category"] == "needs_review"
    assert by_rule["internal_error"]["actions"] == ["keep_raw", "flag"]
    assert any("boom" in p for p in report.problems)
    assert len(list((tmp_path / "data" / "review").glob("*.eml"))) == 1
    flagged = [m for m in mailbox.Maildir(tmp_path / "maildir") if "F" in m.get_flags()]
    assert len(flagged) == 1


def test_thai_digit_dates_are_a_display_format_only(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    config.write_text(config.read_text() + '\n[registers]\ndate_style = "thai_digits"\n')
    assert poll(config).returncode == 0
    cell = openpyxl.load_workbook(tmp_path / "register" / "incoming-2569.xlsx").worksheets[0]["K3"]
    assert cell.is_date and cell.number_format.startswith("[$-D07041E]")


def test_two_polls_never_run_at_once(tmp_path):
    from saraban_mail.journal import single_instance

    config = office_with(tmp_path, [by_key("building_permit")])
    with single_instance(tmp_path / "data"):
        blocked = poll(config)
        assert blocked.returncode == 2
        assert "another poll is running (pid " in blocked.stderr
        assert blocked.stdout == ""
    assert json.loads(poll(config).stdout)["receipt_no"] == 1  # the lock went with its holder


def test_the_next_poll_need_not_read_the_register_the_service_saved_last(tmp_path):
    """The acknowledgement times are saved after sending; that save is noted like the first,
    so a 20,000-row register is not read again by the next poll's numbering or by status."""
    from saraban_mail.journal import Journal
    from saraban_mail.layout import incoming_path, stamp

    config = office_with(tmp_path, [by_key("building_permit")])
    assert poll(config).returncode == 0
    book = incoming_path(tmp_path / "register", 2569)
    sheet = openpyxl.load_workbook(book).worksheets[0]
    acked = [c.value for c in sheet[2]].index("ตอบรับเมื่อ")
    assert sheet.cell(3, acked + 1).value is not None  # the second save happened
    journal = Journal.open(tmp_path / "data")
    try:
        noted = journal.noted_sheet(2569, stamp(book))
        assert noted is not None and [number for number, _ in noted] == [1]
        assert journal.sheet_settled(2569, stamp(book))
    finally:
        journal.close()

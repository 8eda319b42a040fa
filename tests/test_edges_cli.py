"""A new user's rough edges at the command line: the config file as Windows saves it,
errors for people, Buddhist-era dates, the first poll's start date, dry runs, JSON logs."""

from __future__ import annotations

import json
from datetime import date

import pytest

from saraban_mail.config import load_config
from saraban_mail.errors import ConfigError
from tests.offices import cli

THAI_NAME = "เทศบาลตำบลหนองตัวอย่าง"


def test_config_saved_with_a_bom_or_as_windows_thai_ansi_is_read(tmp_path):
    config = tmp_path / "config.toml"
    text = f'[agency]\nname_th = "{THAI_NAME}"\n'
    config.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_config(config).agency.name_th == THAI_NAME
    config.write_bytes(text.encode("cp874"))
    assert load_config(config).agency.name_th == THAI_NAME


def test_config_in_an_encoding_that_is_not_thai_is_refused_naming_the_encoding(tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes('[agency]\nname_en = "Ünïcödé"\n'.encode("utf-16"))
    result = cli("check", "--config", str(config))
    assert result.returncode == 2
    assert "not UTF-8 nor Windows Thai (cp874)" in result.stderr and "save it as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_config_mistake_is_reported_at_once_in_words_for_people(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[imap]\nusrname = "saraban"\n[office_hours]\nopen = "8.30"\n'
                      '[policy]\nstart_date = "1 Dec"\n', encoding="utf-8")
    result = cli("poll", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "3 settings to fix" in result.stderr
    assert "imap.usrname: unknown setting (did you mean username?)" in result.stderr
    assert "office_hours.open: use HH:MM, e.g. 08:30" in result.stderr
    assert "policy.start_date: use YYYY-MM-DD" in result.stderr


def test_unknown_section_suggests_the_near_one(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[imapp]\nport = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown section \[imapp\] \(did you mean imap\?\)"):
        load_config(config)


@pytest.mark.parametrize("written", ['"2569-11-30"', "2569-11-30", '"2026-11-30"'])
def test_start_date_in_the_buddhist_era_is_converted(tmp_path, written):
    config = tmp_path / "config.toml"
    config.write_text(f"[policy]\nstart_date = {written}\n", encoding="utf-8")
    assert load_config(config).policy.start_date == date(2026, 11, 30)


def test_a_buddhist_era_date_that_does_not_exist_is_refused_clearly(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[policy]\nstart_date = "2569-02-30"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="policy.start_date: 2569-02-30 is not a date"):
        load_config(config)


def _office_without_start_date(tmp_path):
    from tests.offices import office_with

    config = office_with(tmp_path, [])
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("start_date = 2026-01-01\n", ""), encoding="utf-8")
    return config


def test_first_poll_without_start_date_leaves_older_mail_alone_and_keeps_its_day(
        tmp_path, monkeypatch):
    from datetime import datetime, timedelta

    from saraban_mail.calendar import BANGKOK
    from tests.offices import add_mail, request

    config = _office_without_start_date(tmp_path)
    old, _ = request(1)  # a mailbox with history: a request of last week
    add_mail(tmp_path, old, datetime(2026, 11, 16, 9, 0, tzinfo=BANGKOK))
    fresh, when = request(2)  # 23 Nov 2026, 09:02
    add_mail(tmp_path, fresh, when)
    monkeypatch.setenv("SARABAN_NOW", "2026-11-23T10:00:00+07:00")
    first = cli("poll", "--config", str(config), "--json")
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["subject"] for line in first.stdout.splitlines()] == [
        "ขอข้อมูลข่าวสาร 2"]
    assert "policy.start_date is not set: this first poll starts at today, 2026-11-23" in first.stderr
    assert "INBOX: 1 message(s) from before the start date 2026-11-23" in first.stderr

    # A day later the same day still counts: mail of the 23rd that arrived late is read.
    late, _ = request(3)
    add_mail(tmp_path, late, when + timedelta(hours=1))
    monkeypatch.setenv("SARABAN_NOW", "2026-11-24T10:00:00+07:00")
    second = cli("poll", "--config", str(config), "--json")
    assert [json.loads(line)["subject"] for line in second.stdout.splitlines()] == [
        "ขอข้อมูลข่าวสาร 3"]
    status = cli("status", "--config", str(config))
    assert "note: INBOX: 1 message(s) from before the start date" in status.stdout
    check = cli("check", "--config", str(config))
    assert ("start date: 2026-11-23 (23 พ.ย. 2569), chosen by the first poll and kept in the "
            "journal") in check.stdout


def test_mail_left_alone_because_of_start_date_is_counted_in_the_poll_and_status(
        tmp_path, monkeypatch):
    from datetime import datetime

    from saraban_mail.calendar import BANGKOK
    from tests.offices import add_mail, request

    config = _office_without_start_date(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[policy]\n", "[policy]\nstart_date = 2569-11-20\n"), encoding="utf-8")
    for n in (1, 2):
        add_mail(tmp_path, request(n)[0], datetime(2026, 11, 10 + n, 9, 0, tzinfo=BANGKOK))
    add_mail(tmp_path, *request(3))
    monkeypatch.setenv("SARABAN_NOW", "2026-11-23T10:00:00+07:00")
    result = cli("poll", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert ("note: INBOX: 2 message(s) from before the start date 2026-11-20 (20 พ.ย. 2569) "
            "left alone (policy.start_date)") in result.stderr
    assert "1 message(s) handled" in result.stderr
    assert "from before the start date 2026-11-20" in cli("status", "--config", str(config)).stdout


def test_check_names_the_smtp_password_file_when_only_the_imap_password_is_set(office, tmp_path):
    # The example's set-up: SARABAN_IMAP__PASSWORD exported (the office fixture), and the
    # SMTP login's password_file, which is not there.
    missing = tmp_path / "etc" / "smtp-password"
    office.write_text(office.read_text(encoding="utf-8").replace(
        'security = "plain"\n\n[network]',
        f'security = "plain"\nusername = "saraban"\npassword_file = "{missing}"\n\n[network]'),
        encoding="utf-8")
    result = cli("check", "--config", str(office))
    assert "Traceback" not in result.stderr
    assert "mailbox ok" in result.stdout  # the IMAP side was checked
    assert result.returncode != 0
    assert (f"smtp: smtp.password_file (the SMTP login): cannot read password file {missing}"
            in result.stderr)
    assert "set SARABAN_SMTP__PASSWORD or write the password in that file" in result.stderr


@pytest.mark.parametrize("typed", [
    "2 ธ.ค. 2569 10.00", "2 ธันวาคม 2569 เวลา 10.00 น.", "๒ ธ.ค. ๒๕๖๙ ๑๐.๐๐", "2/12/2569 10:00",
    "2569-12-02 10:00", "2026-12-02T10:00", "2026-12-02 10.00",
])
def test_appointment_times_are_read_as_clerks_type_them(typed):
    from datetime import datetime

    from saraban_mail.calendar import BANGKOK
    from saraban_mail.thaitext import parse_clerk_datetime

    assert parse_clerk_datetime(typed, BANGKOK) == datetime(2026, 12, 2, 10, 0, tzinfo=BANGKOK)


@pytest.mark.parametrize(("typed", "why"), [
    ("tomorrow 10am", "write e.g. 2 ธ.ค. 2569 10.00"),
    ("2 Dec 2569 10.00", "write e.g."),
    ("30 ก.พ. 2569 10.00", "day is out of range"),
    ("2 ธค. 2569", "write e.g."),
    ("2 ธ.ค. 2569 24.00", "hour must be"),
    ("2 มกรา 2569 10.00", "'มกรา' is not a Thai month"),
])
def test_appointment_times_that_are_not_dates_are_refused_saying_why(typed, why):
    from saraban_mail.calendar import BANGKOK
    from saraban_mail.thaitext import parse_clerk_datetime

    with pytest.raises(ValueError, match=why):
        parse_clerk_datetime(typed, BANGKOK)


def test_video_call_takes_a_thai_date_refuses_past_or_closed_times_and_words_risk_truly(
        office, dovecot, imap_account, smtp, monkeypatch):
    from tests.conftest import deliver
    from tests.test_intake_e2e import records, run_poll
    from tests.test_matters_e2e import PERMIT, WITHDRAW, at, sent, set_clock
    from tests.test_matters_e2e import cli as matter_cli

    set_clock(monkeypatch, at(16, 14))  # Thursday 16 April 2026
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    deliver(dovecot, imap_account, "INBOX", WITHDRAW.raw, WITHDRAW.received_at)
    got = {r["subject"]: r for r in records(run_poll(office, "--json"))}
    permit = next(r for r in got.values() if not r["high_risk"])
    risky = next(r for r in got.values() if r["high_risk"])
    permit_no = f"{permit['receipt_no']}/2569"
    before = len(smtp.messages)

    for when, why in (("1 เม.ย. 2569 10.00", "it is in the past"),
                      ("18 เม.ย. 2569 10.00", "is a Saturday"),
                      ("20 เม.ย. 2569 19.30", "19.30 is outside office hours (08.30-16.30)"),
                      ("20 April 2026", "--at: '20 April 2026' is not a date and time")):
        refused = matter_cli(office, "video-call", permit_no, "--at", when)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert len(smtp.messages) == before  # nothing was sent

    call = matter_cli(office, "video-call", permit_no, "--at", "20 เม.ย. 2569 10.00")
    assert call.returncode == 0, call.stderr
    assert "20 เม.ย. 2569 เวลา 10.00 น." in call.stdout
    body = sent(smtp)[before].get_body().get_content()
    assert "20 เม.ย. 2569 เวลา 10.00 น." in body
    assert "ความเสี่ยงสูง" not in body and "high-risk" not in body

    forced = matter_cli(office, "video-call", permit_no, "--at", "2569-04-18 10:00",
                        "--force", "ผู้ขอสะดวกวันเสาร์")
    assert forced.returncode == 0, forced.stderr
    assert "forced: ผู้ขอสะดวกวันเสาร์" in matter_cli(office, "show", permit_no).stdout

    high = matter_cli(office, "video-call", f"{risky['receipt_no']}/2569", "--at",
                      "2026-04-20T11:00")
    assert high.returncode == 0, high.stderr
    body = sent(smtp)[-1].get_body().get_content()
    assert "ความเสี่ยงสูง" in body and "high-risk" in body


def test_request_docs_refuses_empty_items_and_days_below_one(office, dovecot, imap_account,
                                                             smtp, monkeypatch):
    from tests.conftest import deliver
    from tests.test_intake_e2e import records, run_poll
    from tests.test_matters_e2e import PERMIT, at, set_clock
    from tests.test_matters_e2e import cli as matter_cli

    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    before = len(smtp.messages)
    for extra, why in ((["--items", "  "], "say which documents are missing (--items)"),
                       (["--items", "โฉนด", "--days", "0"], "at least 1 working day to send "
                                                            "documents, not 0"),
                       (["--items", "โฉนด", "--days", "-3"], "not -3 (--days)")):
        refused = matter_cli(office, "request-docs", "1/2569", *extra)
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
    assert len(smtp.messages) == before
    assert "documents_requested" not in matter_cli(office, "show", "1/2569").stdout


def test_request_docs_note_waits_for_a_workbook_a_clerk_has_open_and_a_poll_writes_it(
        office, dovecot, imap_account, smtp, monkeypatch):
    import openpyxl

    from tests.conftest import deliver
    from tests.test_intake_e2e import records, run_poll
    from tests.test_matters_e2e import PERMIT, at, set_clock
    from tests.test_matters_e2e import cli as matter_cli

    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    book = office.parent / "register" / "incoming-2569.xlsx"
    lock = book.with_name(f"~${book.name}")  # Excel's owner file: a clerk has it open
    lock.write_bytes(b"\x06somsri" + b" " * 50)
    set_clock(monkeypatch, at(17))
    asked = matter_cli(office, "request-docs", "1/2569", "--items", "สำเนาโฉนดที่ดิน",
                       "--days", "5")
    assert asked.returncode == 3, asked.stderr  # done, with something left pending
    assert "is open in a spreadsheet program" in asked.stderr
    assert "1 note(s) for the register wait and are written at the next poll" in asked.stderr
    assert "by hand" not in asked.stderr
    assert "ขอเอกสาร" not in str(openpyxl.load_workbook(book).worksheets[0]["G3"].value or "")

    set_clock(monkeypatch, at(17, 13))
    still = run_poll(office)  # still open: the note still waits, and says so
    assert "note(s) for the register wait" in still.stderr
    lock.unlink()
    set_clock(monkeypatch, at(17, 16))
    run_poll(office)
    note = openpyxl.load_workbook(book).worksheets[0]["G3"].value
    assert note.count("ขอเอกสารเพิ่มเติม ครบกำหนด 24 เม.ย. 2569") == 1
    run_poll(office)  # written once
    assert openpyxl.load_workbook(book).worksheets[0]["G3"].value == note


def test_send_result_refuses_a_second_result_or_a_disposed_matter_unless_forced(
        office, dovecot, imap_account, smtp, monkeypatch, tmp_path):
    from tests.conftest import deliver
    from tests.test_intake_e2e import records, run_poll
    from tests.test_matters_e2e import PERMIT, a_pdf, at, set_clock
    from tests.test_matters_e2e import cli as matter_cli

    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    document = str(a_pdf(tmp_path / "ใบอนุญาต.pdf"))
    set_clock(monkeypatch, at(17))
    first = matter_cli(office, "send-result", "1/2569", document, "--password", "none")
    assert first.returncode == 0, first.stderr
    sent_before = len(smtp.messages)

    again = matter_cli(office, "send-result", "1/2569", document, "--password", "none")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert ("matter 1/2569 already has a result (1/2569, sent 17 เม.ย. 2569): check the receipt "
            "number, or send anyway with --force REASON") in again.stderr
    assert len(smtp.messages) == sent_before

    forced = matter_cli(office, "send-result", "1/2569", document, "--password", "none",
                        "--force", "ฉบับแก้ไขคำผิด")
    assert forced.returncode == 0, forced.stderr
    assert len(smtp.messages) > sent_before
    story = matter_cli(office, "show", "1/2569").stdout
    assert "result_check_overridden" in story and "reason: ฉบับแก้ไขคำผิด" in story


def test_send_result_refuses_a_disposed_matter(office, dovecot, imap_account, smtp, monkeypatch,
                                               tmp_path):
    from tests.conftest import deliver
    from tests.test_intake_e2e import records, run_poll
    from tests.test_matters_e2e import PERMIT, a_pdf, at, set_clock
    from tests.test_matters_e2e import cli as matter_cli

    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    # Disposed as the dispose command records it (the rules for when it may are its own).
    from saraban_mail.journal import Journal
    from saraban_mail.matters import DISPOSED

    journal = Journal.open(office.parent / "data")
    journal.add_event(2569, 1, kind="disposed", actor="นายกเทศมนตรี", now=at(17), state=DISPOSED,
                      detail={"approved_by": "นายกเทศมนตรี"})
    journal.close()
    before = len(smtp.messages)
    refused = matter_cli(office, "send-result", "1/2569", str(a_pdf(tmp_path / "r.pdf")))
    assert refused.returncode == 2 and "matter 1/2569 was disposed (จำหน่ายเรื่อง)" in refused.stderr
    assert len(smtp.messages) == before


def test_dry_run_says_on_every_line_and_record_that_nothing_was_changed(tmp_path):
    from tests.offices import by_key, office_with

    config = office_with(tmp_path, [by_key("building_permit"), by_key("english_html"),
                                    by_key("gambling_spam")])
    text = cli("poll", "--config", str(config), "--dry-run")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("[dry run, nothing changed] ") for line in lines)
    assert all("dry run" in line for line in text.stderr.splitlines())
    assert text.stderr.splitlines()[-1].startswith("saraban-mail: dry run: nothing was changed")
    as_json = cli("poll", "--config", str(config), "--dry-run", "--json")
    got = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(got) == 3 and all(record["dry_run"] is True for record in got)
    assert "dry run: nothing was changed" in as_json.stderr
    assert not (tmp_path / "register" / "incoming-2569.xlsx").exists()
    real = cli("poll", "--config", str(config), "--json")
    assert all("dry_run" not in json.loads(line) for line in real.stdout.splitlines())


def test_run_logs_its_start_and_stop_at_info_without_v_every_line_json_with_the_zone(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    from tests.offices import by_key, office_with

    config = office_with(tmp_path, [by_key("building_permit")])
    env = dict(os.environ, SARABAN_NOW="2026-11-23T09:10:00+07:00")
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "--log-format", "json",
                               "run", "--config", str(config)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any((tmp_path / "register").glob("incoming-*")):
            time.sleep(0.2)
        time.sleep(1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # each line is JSON
    messages = [(line["level"], line["message"].split(";")[0]) for line in lines]
    assert ("info", "running") in messages
    assert ("info", "stopping: the current poll finishes first") in messages
    assert messages[-1] == ("info", "stopped")
    assert any(m.startswith("poll done: 1 message(s) handled") for _, m in messages)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+07:00", line["time"])
               for line in lines)


def test_poll_with_json_logs_writes_only_json_to_stderr_even_a_dry_run_and_a_failure(tmp_path):
    from tests.offices import by_key, office_with

    config = office_with(tmp_path, [by_key("building_permit")])
    dry = cli("--log-format", "json", "poll", "--config", str(config), "--dry-run")
    assert dry.returncode == 0
    logged = [json.loads(line) for line in dry.stderr.splitlines()]
    assert logged and all(line["dry_run"] is True for line in logged)
    assert logged[-1]["message"].startswith("dry run: nothing was changed")
    broken = cli("--log-format", "json", "poll", "--config", str(tmp_path / "none.toml"))
    (line,) = [json.loads(text) for text in broken.stderr.splitlines()]
    assert line["level"] == "error" and "no configuration file" in line["message"]

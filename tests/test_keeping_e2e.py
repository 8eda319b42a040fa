"""Keeping the records (issue 22, parts 4-6): a backup restored onto an empty folder is a
working office (real Dovecot and SMTP: nothing lost, nothing repeated), and purges follow the
retention table, the disposal list and its approval, never touching a register."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
from pathlib import Path

import openpyxl

from saraban_mail.demo import samples
from tests.conftest import deliver
from tests.offices import cli, request
from tests.test_intake_e2e import records, run_poll
from tests.test_matters_e2e import a_pdf, at, set_clock

PERMIT = next(s for s in samples() if s.key == "building_permit")
WITHDRAW = next(s for s in samples() if s.key == "withdraw_complaint")


def keeping(config: Path, *args: str):
    return cli(*args, "--config", str(config))


def register_numbers(folder: Path) -> list[int]:
    sheet = openpyxl.load_workbook(folder / "register" / "incoming-2569.xlsx").worksheets[0]
    return [row[0] for row in sheet.iter_rows(min_row=3, values_only=True)
            if isinstance(row[0], int)]


def test_backup_destroy_restore_poll_loses_nothing_and_repeats_nothing(
        office, dovecot, imap_account, smtp, monkeypatch, tmp_path):
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert [r["receipt_no"] for r in records(run_poll(office, "--json"))] == [1]
    assert len(smtp.messages) == 1  # the acknowledgement
    office.write_text(office.read_text().replace("[agency]\n", "[agency]\n"
                                                 'data_custodian = "นางสมศรี ใจดี"\n'))
    assert (tmp_path / "records" / "2569" / "rx-0001.eml").read_bytes() == PERMIT.raw

    dest = tmp_path / "usb-disk"
    made = cli("backup", str(dest), "--config", str(office))
    assert made.returncode == 0, made.stderr
    (backup,) = dest.glob("saraban-backup-*")
    assert backup.name.startswith("saraban-backup-2026") and "verified" in made.stdout
    # private to the service user: the backup holds personal data
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in backup.rglob("*") if p.is_file())
    manifest = json.loads((backup / "MANIFEST.json").read_text())
    assert {"data/journal.sqlite3", "register/incoming-2569.xlsx", "records/2569/rx-0001.eml",
            "config.toml", "README.txt"} <= set(manifest["files"])
    assert not any("poll.lock" in name or "oauth-token" in name for name in manifest["files"])
    assert "data_custodian" in (backup / "config.toml").read_text()

    # destroyed: the office's folders and its config
    for name in ("data", "register", "records", "config.toml"):
        target = tmp_path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    restored = tmp_path / "restored"
    refused = cli("restore", str(backup), str(dest))  # not empty: refused
    assert refused.returncode == 2 and "not empty" in refused.stderr
    done = cli("restore", str(backup), str(restored))
    assert done.returncode == 0, done.stderr
    config = restored / "config.toml"
    assert register_numbers(restored) == [1]

    set_clock(monkeypatch, at(16, 14))
    again = run_poll(config, "--json")
    assert again.returncode == 0, again.stderr
    assert records(again) == [] and len(smtp.messages) == 1  # nothing registered or sent again
    deliver(dovecot, imap_account, "INBOX", WITHDRAW.raw, at(16, 14))
    (new,) = records(run_poll(config, "--json"))
    assert new["receipt_no"] == 2  # numbering goes on from the backup
    assert len(smtp.messages) == 2
    assert register_numbers(restored) == [1, 2]


def test_a_backup_keeps_no_secret_and_says_what_to_supply_again(office, tmp_path, monkeypatch):
    secret = "backup-test-only-secret"
    office.write_text(office.read_text().replace(
        "[smtp]\n", f'[smtp]\npassword = "{secret}"\nusername = "saraban"\n'))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journal.sqlite3").touch()
    (tmp_path / "data" / "oauth-token.json").write_text('{"refresh_token": "x"}')
    set_clock(monkeypatch, at(16, 11))
    made = cli("backup", str(tmp_path / "dest"), "--config", str(office))
    assert made.returncode == 0, made.stderr
    (backup,) = (tmp_path / "dest").glob("saraban-backup-*")
    for path in backup.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    assert not (backup / "data" / "oauth-token.json").exists()
    assert "smtp.password" in (backup / "README.txt").read_text()
    office.write_text(office.read_text().replace(secret, ""))


def test_a_damaged_backup_is_refused_by_restore(office, tmp_path, monkeypatch):
    (tmp_path / "register").mkdir()
    openpyxl.Workbook().save(tmp_path / "register" / "incoming-2569.xlsx")
    sqlite3.connect(tmp_path / "journal.sqlite3").close()
    (tmp_path / "data").mkdir()
    shutil.move(tmp_path / "journal.sqlite3", tmp_path / "data" / "journal.sqlite3")
    set_clock(monkeypatch, at(16, 11))
    assert cli("backup", str(tmp_path / "dest"), "--config", str(office)).returncode == 0
    (backup,) = (tmp_path / "dest").glob("saraban-backup-*")
    (backup / "register" / "incoming-2569.xlsx").write_bytes(b"changed")
    refused = cli("restore", str(backup), str(tmp_path / "new"))
    assert refused.returncode == 2
    assert "register/incoming-2569.xlsx differs" in refused.stderr
    assert "Traceback" not in refused.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_purge_follows_the_retention_table_and_never_touches_a_register(
        office, dovecot, imap_account, smtp, monkeypatch, tmp_path):
    base = tmp_path
    set_clock(monkeypatch, at(16, 11))
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    raw, when = request(7)
    deliver(dovecot, imap_account, "INBOX", raw, at(16, 10))
    assert sorted(r["receipt_no"] for r in records(run_poll(office, "--json"))) == [1, 2]
    assert sorted(p.name for p in (base / "records" / "2569").iterdir()) == [
        "rx-0001.eml", "rx-0002.eml"]  # each registered mail kept as it arrived
    selfie = a_pdf(tmp_path / "selfie.pdf")
    assert keeping(office, "verify-identity", "1/2569", "--method", "video_call",
                   "--evidence", str(selfie)).returncode == 0
    (base / "outbox").mkdir()
    a_pdf(base / "outbox" / "1-2569.pdf")  # the result, dropped where the clerk drops it
    run_poll(office, "--json")
    assert (base / "outbox" / "sent" / "1-2569.pdf").exists()
    registers = {p: digest(p) for p in (base / "register").glob("*going-*.xlsx")}
    assert registers

    # 40 days on: the video-call image of the closed matter is due, nothing else
    set_clock(monkeypatch, at(26, 11, month=5))
    held = json.loads(keeping(office, "status", "--json").stdout)["personal_data"]["by_kind"]
    assert held["video_call_images"]["count"] == 1 and held["request_records"]["count"] == 2
    assert held["request_records"]["oldest_days"] == 40  # received 16 April
    listed = keeping(office, "purge", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "video_call_images=30d" in listed.stdout and "request_records" not in listed.stdout
    assert (base / "data" / "matters" / "2569-1").exists()
    done = keeping(office, "purge")
    assert "1 file(s) purged" in done.stdout, done.stdout + done.stderr
    assert not list((base / "data" / "matters").rglob("*.pdf"))
    story = keeping(office, "show", "1/2569")
    assert "record_purged" in story.stdout

    # ten years on: records and attachments are due, but only through the disposal list
    set_clock(monkeypatch, at(17, 11, month=4).replace(year=2036))
    assert "wait for a disposal list" in keeping(office, "purge").stdout
    assert (base / "records" / "2569" / "rx-0001.eml").exists()
    made = keeping(office, "purge", "--list", "2579")
    assert made.returncode == 0, made.stderr
    book = openpyxl.load_workbook(base / "register" / "to-dispose.xlsx")
    sheet = book["ขอทำลาย 2579"]
    header = [c.value for c in sheet[4]]
    assert header == ["ลำดับที่", "ที่หนังสือ", "ลงวันที่", "เรื่อง", "รหัสแฟ้ม", "การพิจารณา",
                      "หมายเหตุ"]
    numbers = [row[1] for row in sheet.iter_rows(min_row=5, values_only=True)]
    assert "เลขรับ 1/2569" in numbers and "เลขรับ 2/2569" in numbers
    assert keeping(office, "purge", "--approve", "2579").returncode == 2  # who approved?
    approved = keeping(office, "purge", "--approve", "2579", "--by", "นายกเทศมนตรี")
    assert approved.returncode == 0, approved.stderr
    assert not (base / "records" / "2569" / "rx-0001.eml").exists()
    assert not list((base / "outbox" / "sent").rglob("*.pdf"))
    assert {p: digest(p) for p in registers} == registers  # the registers, untouched
    journal = sqlite3.connect(base / "data" / "journal.sqlite3")
    rules = {row[0] for row in journal.execute("SELECT rule FROM purges")}
    assert {"video_call_images=30d", "request_records=10y", "result_pdfs=10y"} <= rules
    # the result's PDF is gone from the journal too (the mail that carried it)
    assert journal.execute("SELECT length(raw) FROM results").fetchall() == [(0,)]
    approvals = journal.execute("SELECT approved_by FROM disposal_lists").fetchall()
    assert approvals == [("นายกเทศมนตรี",)]
    book = openpyxl.load_workbook(base / "register" / "to-dispose.xlsx")
    assert "อนุมัติโดย นายกเทศมนตรี" in book["ขอทำลาย 2579"]["A3"].value

    status = json.loads(keeping(office, "status", "--json").stdout)
    assert status["personal_data"]["purged"] >= 4
    assert "attachments" not in status["personal_data"]["by_kind"]  # purged with approval
    shown = keeping(office, "status").stdout
    assert "custodian: not named: set [agency] data_custodian" in shown


def test_as_the_office_runs_the_backup_is_the_services_alone_and_a_restore_is_the_clerks_again(
        office_accounts, office_folder):
    from tests.accounts import run_as, user_env
    from tests.test_clerk_files import (
        OPEN_FOR_WRITING,
        assert_shared,
        clerk_run,
        deliver,
        service_office,
        service_poll,
    )

    accounts = office_accounts
    office = office_folder.parent
    config = service_office(accounts, office_folder)
    deliver(accounts, office, 1)
    assert service_poll(accounts, config).returncode == 0

    def as_service(*args: str):
        return run_as(accounts.service, [accounts.python, "-m", "saraban_mail", *args],
                      umask=0o077, env=user_env(accounts.service))

    made = as_service("backup", str(office / "usb"), "--config", str(config))
    assert made.returncode == 0, made.stderr
    (backup,) = (office / "usb").glob("saraban-backup-*")
    copy = backup / "register" / "incoming-2569.xlsx"
    assert clerk_run(accounts, OPEN_FOR_WRITING, str(copy)).returncode != 0  # personal data

    restored = office / "restored"
    done = as_service("restore", str(backup), str(restored))
    assert done.returncode == 0, done.stderr
    book = restored / "register" / "incoming-2569.xlsx"
    assert_shared(accounts, book)
    info = (restored / "register").stat()
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (accounts.gid, 0o2770)
    assert stat.S_IMODE((restored / "data").stat().st_mode) == 0o700
    assert clerk_run(accounts, OPEN_FOR_WRITING, str(book)).returncode == 0
    again = service_poll(accounts, restored / "config.toml")
    assert again.returncode == 0 and records(again) == [], again.stderr

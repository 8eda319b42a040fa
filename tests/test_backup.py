"""The backup's own guarantees, on real files and a real SQLite journal: a consistent
snapshot while a poll writes, a half backup never taken for a whole one, and pruning."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from saraban_mail.backup import BackupError, make_backup, prune, restore, verify
from saraban_mail.calendar import BANGKOK
from saraban_mail.config import load_config
from saraban_mail.journal import Journal


@pytest.fixture
def little_office(tmp_path: Path):
    (tmp_path / "config.toml").write_text('[agency]\nname_en = "Test"\n'
                                          '[imap]\npassword = "not-for-backup"\n')
    config = load_config(tmp_path / "config.toml")
    journal = Journal.open(config.paths.data_dir)
    journal.set_meta("start_date", "2026-01-01")
    journal.close()
    return config, tmp_path / "config.toml"


def test_a_poll_writing_meanwhile_is_not_blocked_and_the_snapshot_is_consistent(little_office,
                                                                                tmp_path):
    config, file = little_office
    writer = sqlite3.connect(config.paths.data_dir / "journal.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a poll in the middle of its transaction
    writer.execute("INSERT INTO meta VALUES ('half', 'written')")
    started = time.monotonic()
    made = make_backup(config, file, tmp_path / "dest", datetime(2026, 11, 30, 17, tzinfo=BANGKOK))
    assert time.monotonic() - started < 10  # WAL: the reader never waits for the writer
    writer.execute("COMMIT")  # nor the writer for the backup
    copy = sqlite3.connect(made.folder / "data" / "journal.sqlite3")
    assert copy.execute("SELECT key FROM meta").fetchall() == [("start_date",)]
    assert made.rows["meta"] == 1


def test_a_half_backup_is_never_taken_for_a_whole_one(little_office, tmp_path):
    config, file = little_office
    dest = tmp_path / "dest"
    made = make_backup(config, file, dest, datetime(2026, 11, 30, 17, tzinfo=BANGKOK))
    half = dest / ".saraban-backup-20261201-170000.partial"
    half.mkdir()
    (half / "register").mkdir()
    with pytest.raises(BackupError, match="not a saraban-mail backup"):
        restore(half, tmp_path / "new")
    assert prune(dest, config) == [] and half.exists()  # another backup's, maybe in progress
    manifest = json.loads((made.folder / "MANIFEST.json").read_text())
    (made.folder / "data" / "journal.sqlite3").write_bytes(b"")
    with pytest.raises(BackupError, match="journal.sqlite3 differs"):
        verify(made.folder)
    assert manifest["journal_rows"]["meta"] == 1
    # the next backup, holding the folder's lock, knows the half one was cut short
    make_backup(config, file, dest, datetime(2026, 12, 1, 17, tzinfo=BANGKOK))
    assert not half.exists()


def test_a_backup_killed_at_any_moment_leaves_only_whole_backups(little_office, tmp_path):
    config, file = little_office
    for n in range(150):
        path = config.paths.data_dir / "attachments" / f"{n:04d}" / "scan.pdf"
        path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(40_000))
    dest = tmp_path / "dest"
    rng = random.Random(22)
    env = os.environ | {"SARABAN_NOW": "2026-11-30T17:00:00+07:00"}
    mid_work = 0
    for kill in range(6):
        env["SARABAN_NOW"] = f"2026-11-{kill + 20}T17:00:00+07:00"
        started = subprocess.Popen([sys.executable, "-m", "saraban_mail", "backup", str(dest),
                                    "--config", str(file)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once it has begun writing (the folder appears), at a random moment after.
        half = dest / f".saraban-backup-202611{kill + 20}-170000.partial"
        while started.poll() is None and not half.exists():
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))  # the moment of the kill, not a wait for time
        started.send_signal(signal.SIGKILL)
        started.wait()
        mid_work += half.exists()
        for whole in dest.glob("saraban-backup-*"):
            verify(whole)  # whatever carries the final name is complete
    assert mid_work >= 3  # most kills landed while files were being copied
    made = make_backup(config, file, dest, datetime(2026, 11, 30, 18, tzinfo=BANGKOK))
    assert len(list(made.folder.rglob("scan.pdf"))) == 150
    assert not list(dest.glob(".*.partial"))


def test_old_backups_are_pruned_by_the_keep_rule(little_office, tmp_path):
    config, _ = little_office
    dest = tmp_path / "dest"
    for month in range(1, 13):
        for day in (1, 15, 28):
            (dest / f"saraban-backup-2026{month:02d}{day:02d}-170000").mkdir(parents=True)
    (dest / "saraban-backup-20261128-090000").mkdir()
    removed = prune(dest, config)
    left = sorted(p.name for p in dest.iterdir())
    assert "saraban-backup-20261128-090000" in {p.name for p in removed}  # same day, older
    daily = [(12, 28), (12, 15), (12, 1), (11, 28), (11, 15), (11, 1), (10, 28)]
    monthly = [(m, 28) for m in range(1, 10)]  # the last of each earlier month
    assert left == sorted(f"saraban-backup-2026{m:02d}{d:02d}-170000" for m, d in daily + monthly)
    assert "saraban-backup-20261201-170000" in left  # the newest
    assert "saraban-backup-20260115-170000" not in left  # neither daily, weekly nor monthly
    assert "saraban-backup-20260128-170000" in left  # the last of its month


def test_check_and_status_warn_when_the_backup_disk_is_not_there(little_office, tmp_path):
    from saraban_mail.backup import note_backup, warnings

    config, file = little_office
    assert warnings(config, datetime(2026, 11, 30, tzinfo=BANGKOK)) == []  # no dest: no backup asked
    config = config.model_copy(update={"backup": config.backup.model_copy(
        update={"dest": tmp_path / "usb"})})
    found = warnings(config, datetime(2026, 11, 30, tzinfo=BANGKOK))
    assert any("is the disk mounted" in w for w in found)
    made = make_backup(config, file, tmp_path / "usb", datetime(2026, 11, 30, 17, tzinfo=BANGKOK))
    note_backup(config, made, datetime(2026, 11, 30, 17, tzinfo=BANGKOK))
    assert warnings(config, datetime(2026, 12, 2, 17, tzinfo=BANGKOK)) == []
    assert "more than 3 days ago" in warnings(config, datetime(2026, 12, 5, tzinfo=BANGKOK))[0]


def test_the_daemon_backs_up_after_the_afternoon_poll_once_a_working_day(little_office, tmp_path):
    from datetime import time as clock

    from saraban_mail.backup import after_poll
    from saraban_mail.calendar import BusinessCalendar

    config, file = little_office
    cal, times = BusinessCalendar(), [clock(8, 30), clock(16, 0)]
    assert after_poll(config, file, cal, times, datetime(2026, 11, 30, 16, 5, tzinfo=BANGKOK)) is None
    config = config.model_copy(update={"backup": config.backup.model_copy(
        update={"dest": tmp_path / "usb"})})

    def at(day: int, hour: int, minute: int = 5):
        return after_poll(config, file, cal, times, datetime(2026, 12, day, hour, minute,
                                                             tzinfo=BANGKOK))

    assert at(1, 8, 35) is None  # the morning poll
    assert at(1, 16).folder.name == "saraban-backup-20261201-160500"
    assert at(1, 16, 40) is None  # once a day
    assert at(2, 16) is not None
    assert at(5, 16) is None  # a Saturday
    assert sorted(p.name for p in (tmp_path / "usb").glob("saraban-backup-*")) == [
        "saraban-backup-20261201-160500", "saraban-backup-20261202-160500"]


def test_the_config_copy_drops_every_secret_and_keeps_the_rest_loadable(tmp_path):
    import tomllib

    from saraban_mail.config_text import safe_config

    raw = tomllib.loads('''
[agency]
name_th = "เทศบาล \\"ตัวอย่าง\\""
[imap]
password = "a1"
password_file = "/etc/saraban/imap"
[oauth]
client_secret = "a2"
[results]
password = "auto"
[policy]
start_date = 2026-01-01
[office_hours]
open = 08:00:00
[[watch]]
name = "somsri"
host = "imap.example.go.th"
password = "a3"
[[watch]]
name = "somchai"
host = "imap.example.go.th"
''')
    text, dropped = safe_config(raw)
    assert dropped == ["imap.password", "watch.password (somsri)", "oauth.client_secret"]
    assert not any(secret in text for secret in ('"a1"', '"a2"', '"a3"'))
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    assert config.results.password == "auto"  # a setting, not a secret
    assert config.agency.name_th == 'เทศบาล "ตัวอย่าง"'
    assert [w.name for w in config.watch] == ["somsri", "somchai"]
    assert config.imap.password_file == Path("/etc/saraban/imap")
    assert config.paths.register_dir == tmp_path / "register"
    assert str(config.policy.start_date) == "2026-01-01" and config.office_hours.open.hour == 8

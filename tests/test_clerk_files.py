"""Files a clerk can open: the [sharing] group and modes kept across every atomic save (the
service run as its own OS user, the clerk as another, locally and over a real Samba share),
`install-service` making the unit's folders, `check` naming what the clerks' group lacks,
temporaries of a killed save removed, a lock's age by the service's clock, every clash named."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from saraban_mail.calendar import BANGKOK
from saraban_mail.config import load_config
from saraban_mail.errors import ConfigError
from saraban_mail.files import remove_stale_temporaries, temporary_prefix
from saraban_mail.register import INCOMING, OUTGOING, append_rows, backups_of, read_rows
from tests.offices import add_mail, cli, office_with, poll, request

SHARING = '\n[sharing]\ngroup = "{group}"\n'


def book_of(folder: Path) -> Path:
    return folder / "register" / "incoming-2569.xlsx"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- without other accounts ----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["rw-rw----", "0668", "66000", ""])
def test_a_mode_that_is_not_octal_is_refused_at_load(tmp_path, bad):
    config = office_with(tmp_path, [])
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[sharing]\nfile_mode = "{bad}"\n')
    with pytest.raises(ConfigError, match="file_mode must be an octal mode"):
        load_config(config)


def test_every_save_gives_the_workbooks_file_mode_whatever_the_umask(tmp_path):
    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1, "สอบถามค่าธรรมเนียม"))  # an inquiry: the inquiry log too
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    os.chmod(path, 0o600)
    add_mail(tmp_path, *request(2))
    previous = os.umask(0o077)  # the unit's UMask=0077
    try:
        assert poll(config).returncode == 0
    finally:
        os.umask(previous)
    assert mode(path) == 0o660  # [sharing] file_mode's default, not mkstemp's 0600
    assert mode(tmp_path / "register" / "inquiries-2569.xlsx") == 0o660
    backups = list((path.parent / ".backups").glob("*.xlsx"))
    assert backups and all(mode(b) == 0o660 for b in backups)


def test_a_save_without_sharing_settings_keeps_the_replaced_files_mode(tmp_path):
    path = tmp_path / "outgoing-2569.xlsx"
    row = {"send_no": 1, "to": "นายสมชาย", "subject": "ใบอนุญาต", "ref": "SO-1"}
    append_rows(path, OUTGOING, "ทะเบียนหนังสือส่ง", [row])
    os.chmod(path, 0o640)
    append_rows(path, OUTGOING, "ทะเบียนหนังสือส่ง", [row | {"send_no": 2, "ref": "SO-2"}])
    assert mode(path) == 0o640 and [mode(b) for b in backups_of(path)] == [0o640]


def test_a_killed_saves_temporaries_are_removed_by_the_next_save_and_only_those(tmp_path):
    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1))
    register = tmp_path / "register"
    register.mkdir()
    finished = subprocess.Popen(["true"])
    finished.wait()
    living = subprocess.Popen(["sleep", "60"])
    try:
        host = temporary_prefix().split("@", 1)[1]
        dead = register / f".saving-{finished.pid}@{host}abc.xlsx"
        alive = register / f".saving-{living.pid}@{host}def.xlsx"
        old_style = register / ".saving-k2j4h5.xlsx"  # named before names carried the process
        young_old_style = register / ".saving-x8d7f6.xlsx"
        clerks = register / "saving-notes.xlsx"
        for each in (dead, alive, old_style, young_old_style, clerks):
            each.write_bytes(b"PK half a workbook")
        two_hours_ago = time.time() - 7200
        os.utime(old_style, (two_hours_ago, two_hours_ago))
        result = poll(config)
        assert result.returncode == 0, result.stderr
        assert not dead.exists() and not old_style.exists()
        assert alive.exists() and young_old_style.exists() and clerks.exists()
        assert book_of(tmp_path).exists()
        assert [p.name for p in register.glob(".saving-*")] != []
        living.kill()
        living.wait()
        assert remove_stale_temporaries(register) == [alive]
    finally:
        living.kill()
        living.wait()


def test_the_age_of_a_lock_is_measured_by_the_services_clock(tmp_path):
    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1))
    register = tmp_path / "register"
    register.mkdir()
    (register / "~$incoming-2569.xlsx").write_bytes(b"\x05clerk")  # made now, by the machine
    later = (datetime.now(BANGKOK) + timedelta(hours=48)).isoformat()
    result = subprocess.run([sys.executable, "-m", "saraban_mail", "poll", "--config", str(config),
                             "--json"], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, SARABAN_NOW=later))
    assert result.returncode == 3
    assert "stale lock file ~$incoming-2569.xlsx by clerk (it is 48 hours old)" in result.stderr


def test_a_clash_typed_after_the_emails_row_is_named_by_the_next_poll_that_writes(tmp_path):
    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1))
    assert poll(config).returncode == 0
    path = book_of(tmp_path)
    book = openpyxl.load_workbook(path)  # the workbook closed: the clerk types paper mail as 1
    book.worksheets[0].append([1, "ศธ 0001/1", None, "โรงเรียน", "นายก", "หนังสือกระดาษ"])
    book.save(path)
    add_mail(tmp_path, *request(2))
    result = poll(config)
    assert result.returncode == 3
    assert "number 1/2569 was given to an email and a clerk also typed it" in result.stderr
    assert "receipt number 1 is also on a row a clerk typed" in result.stderr  # the log line
    assert [r.number for r in read_rows(path, INCOMING)[1]] == [1, 1, 2]


def test_check_names_what_the_clerks_group_lacks_with_the_fix(tmp_path):
    config = office_with(tmp_path, [])
    add_mail(tmp_path, *request(1))
    assert poll(config).returncode == 0
    register = tmp_path / "register"
    os.chmod(book_of(tmp_path), 0o600)
    os.chmod(register, 0o700)
    result = cli("check", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert f"the register folder {register}: the group cannot read and write it (mode 700); " \
           "it lacks the setgid bit" in result.stderr
    assert "1 file(s) in the register folder the clerks' group cannot read and write " \
           "(incoming-2569.xlsx)" in result.stderr
    assert f"find {register} -type d -exec chmod 2770 {{}} +; find {register} -type f -exec " \
           "chmod 0660 {} +" in result.stderr
    fix = result.stderr.split("fix with: ")[1].splitlines()[0]
    subprocess.run(fix, shell=True, check=True)
    again = cli("check", "--config", str(config))
    assert "register folder" not in again.stderr, again.stderr

    with config.open("a", encoding="utf-8") as out:
        out.write(SHARING.format(group="no-such-clerks"))
    missing = cli("check", "--config", str(config))
    assert missing.returncode == 3
    assert missing.stderr.count("[sharing] group 'no-such-clerks' does not exist: "
                                "groupadd no-such-clerks") == 1

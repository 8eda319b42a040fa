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
from tests.accounts import Accounts, run_as, shared_folder, user_env
from tests.offices import add_mail, by_key, cli, office_with, poll, request
from tests.samba import Share, smbclient

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
    os.chown(path, -1, 4242)  # a group the administrator gave it ([sharing] group unset)
    add_mail(tmp_path, *request(2))
    previous = os.umask(0o077)  # the unit's UMask=0077
    try:
        assert poll(config).returncode == 0
    finally:
        os.umask(previous)
    assert mode(path) == 0o660  # [sharing] file_mode's default, not mkstemp's 0600
    assert path.stat().st_gid == 4242
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


# -- the service as its own OS user, the clerk as another ------------------------------------

OPEN_FOR_WRITING = "import sys\nfor p in sys.argv[1:]:\n    open(p, 'r+b').close()"
CLERK_EDIT = """import sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
sheet = book.worksheets[0]
sheet.cell(3, 7, 'เสนอนายกฯ แล้ว')  # การปฏิบัติ of the email's row
sheet.append([int(sys.argv[2]), 'ศธ 0001/77', None, 'โรงเรียนบ้านหนอง', 'นายก', 'หนังสือกระดาษ'])
book.save(sys.argv[1])
"""


def service_office(accounts: Accounts, register: Path) -> Path:
    """An office around the shared `register` folder (2770, service:group): the rest belongs to
    the service, as its home would; [sharing] names the clerks' group."""
    office = register.parent
    config = office_with(office, [])
    with config.open("a", encoding="utf-8") as out:
        out.write(SHARING.format(group=accounts.group))
    give_to_service(accounts, office)
    shared_folder(office / "outbox", accounts)  # as install-service makes it
    return config


def give_to_service(accounts: Accounts, office: Path) -> None:
    os.chown(office, accounts.service_uid, -1)
    for path in office.rglob("*"):
        if not {"register", "outbox"} & set(path.relative_to(office).parts):
            os.chown(path, accounts.service_uid, -1, follow_symlinks=False)


def deliver(accounts: Accounts, office: Path, n: int, subject: str = "ขอข้อมูลข่าวสาร") -> None:
    add_mail(office, *request(n, subject))
    give_to_service(accounts, office)


def service_poll(accounts: Accounts, config: Path) -> subprocess.CompletedProcess:
    """A poll as the service runs: its own account, the unit's UMask=0077."""
    return run_as(accounts.service, [accounts.python, "-m", "saraban_mail", "poll", "--config",
                                     str(config), "--json"], umask=0o077,
                  env=user_env(accounts.service))


def clerk_run(accounts: Accounts, code: str, *args: str) -> subprocess.CompletedProcess:
    return run_as(accounts.clerk, [accounts.python, "-c", code, *args], umask=0o007)


def assert_shared(accounts: Accounts, path: Path) -> None:
    info = path.stat()
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (accounts.gid, 0o660), path


def test_the_clerk_opens_every_file_meant_for_them_after_many_saves(
        office_accounts: Accounts, office_folder: Path):
    accounts = office_accounts
    office = office_folder.parent
    config = service_office(accounts, office_folder)
    outbox = office / "outbox"
    deliver(accounts, office, 1, "สอบถามค่าธรรมเนียม")  # an inquiry: the inquiry log too
    doubtful = by_key("no_sender")  # needs a person: the review list and its copy too
    add_mail(office, doubtful.raw, doubtful.received_at)
    give_to_service(accounts, office)
    for n in range(2, 6):
        result = service_poll(accounts, config)
        assert result.returncode == 0, result.stderr
        deliver(accounts, office, n)
    # the clerk, at the workbook between saves, types in it as Excel saves: in place
    edited = clerk_run(accounts, CLERK_EDIT, str(book_of(office)), "5")
    assert edited.returncode == 0, edited.stderr
    (outbox / "99-2569.pdf").write_bytes(b"%PDF-1.4 no such receipt")  # dropped by a clerk
    os.chown(outbox / "99-2569.pdf", accounts.clerk_uid, accounts.gid)
    result = service_poll(accounts, config)
    assert result.returncode == 3 and "outbox/99-2569.pdf: no receipt 99/2569" in result.stderr

    register = office_folder
    shared = [register / "incoming-2569.xlsx", register / "inquiries-2569.xlsx",
              register / "to-dispose.xlsx", outbox / "failed" / "99-2569.pdf.txt",
              register / "review-2569.xlsx", *sorted((register / "review").glob("SM-*.eml")),
              *sorted((register / ".backups").glob("*.xlsx"))]
    assert len(shared) >= 10 and shared[5].suffix == ".eml"
    for path in shared:
        assert_shared(accounts, path)
    for folder in (register / ".backups", register / "review", outbox, outbox / "sent",
                   outbox / "failed"):
        if folder.exists():
            info = folder.stat()
            assert info.st_gid == accounts.gid and stat.S_IMODE(info.st_mode) == 0o2770, folder
    opened = clerk_run(accounts, OPEN_FOR_WRITING, *map(str, shared))
    assert opened.returncode == 0, opened.stderr
    sheet = openpyxl.load_workbook(register / "incoming-2569.xlsx").worksheets[0]
    assert sheet["G3"].value == "เสนอนายกฯ แล้ว"
    assert [r.number for r in read_rows(register / "incoming-2569.xlsx", INCOMING)[1]] == [
        1, 2, 3, 4, 5, 6]
    # the private data folder stays the service's alone
    data = office / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert clerk_run(accounts, OPEN_FOR_WRITING, str(data / "journal.sqlite3")).returncode != 0


def test_install_service_makes_the_units_folders_and_is_harmless_twice(
        office_accounts: Accounts, tmp_path: Path):
    accounts = office_accounts
    office = Path(tempfile_dir(accounts)) / "srv"
    office.mkdir()
    config = office_with(office, [])
    with config.open("a", encoding="utf-8") as out:
        out.write(SHARING.format(group=accounts.group))
    (office / "outbox").mkdir(mode=0o755)  # one there already, as an old set-up left it
    unit = tmp_path / "saraban-mail.service"
    for _ in range(2):
        result = cli("install-service", "--config", str(config), "--user", accounts.service,
                     "--out", str(unit))
        assert result.returncode == 0, result.stderr
    text = unit.read_text()
    writable = text.split("ReadWritePaths=")[1].splitlines()[0].split()
    assert sorted(writable) == sorted(str(office / n) for n in ("data", "outbox", "register"))
    for path in writable:
        assert Path(path).is_dir(), path
    data = (office / "data").stat()
    assert (data.st_uid, stat.S_IMODE(data.st_mode)) == (accounts.service_uid, 0o700)
    for name in ("register", "outbox", "outbox/sent", "outbox/failed"):
        info = (office / name).stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
            accounts.service_uid, accounts.gid, 0o2770), name
    assert f"folder {office / 'register'}: {accounts.service}:{accounts.group}, mode 2770" \
        in result.stdout
    nobody = cli("install-service", "--config", str(config), "--user", "no-such-svc",
                 "--out", str(unit))
    assert nobody.returncode != 0 and "there is no OS user 'no-such-svc'" in nobody.stderr
    assert "Traceback" not in nobody.stderr


def tempfile_dir(accounts: Accounts) -> str:
    import tempfile

    folder = tempfile.mkdtemp(dir=accounts.base)
    os.chmod(folder, 0o755)
    return folder


def test_the_clerk_edits_the_register_over_samba_and_the_service_respects_excels_owner_file(
        office_accounts: Accounts, office_folder: Path, samba_share: Share, tmp_path: Path):
    """The office as set up in systemd/README.md: register/ shared with force group and create
    masks; the clerk's PC fetches, edits and puts back the workbook with Excel's owner file."""
    accounts = office_accounts
    office = office_folder.parent
    config = service_office(accounts, office_folder)
    book = book_of(office)

    def clerk(commands: str) -> None:
        smbclient(samba_share, samba_share.clerk, samba_share.password,
                  f'lcd "{tmp_path}"; {commands}')

    deliver(accounts, office, 1)
    assert service_poll(accounts, config).returncode == 0
    assert_shared(accounts, book)
    # Excel opens it from the share: the owner file first, then the edits saved in place.
    (tmp_path / "owner").write_bytes(b"\x0cclerk-pc-one" + b" " * 40)
    clerk('put owner "~$incoming-2569.xlsx"; get incoming-2569.xlsx edited.xlsx')
    edited = openpyxl.load_workbook(tmp_path / "edited.xlsx")
    sheet = edited.worksheets[0]
    sheet.cell(3, 7, "เสนอนายกฯ แล้ว")  # การปฏิบัติ
    sheet.append([2, "ศธ 0001/77", None, "โรงเรียนบ้านหนอง", "นายก", "หนังสือกระดาษ"])
    edited.save(tmp_path / "edited.xlsx")
    clerk("put edited.xlsx incoming-2569.xlsx")
    before = book.read_bytes()

    deliver(accounts, office, 2)
    held = service_poll(accounts, config)
    assert held.returncode == 3
    assert "incoming-2569.xlsx is open in a spreadsheet program (~$incoming-2569.xlsx by " \
           "clerk-pc-one): 1 row(s) wait in the journal" in held.stderr
    assert book.read_bytes() == before  # not written while the clerk has it open
    assert '"receipt_no": 3' in held.stdout  # numbered after the clerk's paper row 2

    clerk('del "~$incoming-2569.xlsx"')  # Excel closed
    for n in range(3, 8):  # five saves, each with a new mail
        result = service_poll(accounts, config)
        assert result.returncode == 0, result.stderr
        assert_shared(accounts, book)
        assert book.stat().st_uid == accounts.service_uid  # replaced by the service's save
        deliver(accounts, office, n)
    assert not list(office_folder.glob(".saving-*"))
    rows = read_rows(book, INCOMING)[1]
    assert [r.number for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0].values["action"] == "เสนอนายกฯ แล้ว"

    # the clerk still fetches, opens and overwrites it over the share
    clerk("get incoming-2569.xlsx again.xlsx")
    again = openpyxl.load_workbook(tmp_path / "again.xlsx")
    again.worksheets[0].cell(4, 7, "ส่งกองช่างแล้ว")
    again.save(tmp_path / "again.xlsx")
    clerk("put again.xlsx incoming-2569.xlsx")
    assert openpyxl.load_workbook(book).worksheets[0]["G4"].value == "ส่งกองช่างแล้ว"
    assert_shared(accounts, book)
    for backup in (office_folder / ".backups").glob("*.xlsx"):
        assert_shared(accounts, backup)

"""Tests of the run-as-the-office fixtures themselves: the accounts, the shared folder and the Samba
share do what later tests rely on, and each check is shown able to fail."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.accounts import Accounts, run_as
from tests.samba import Share, smbclient

WRITE = "import sys; open(sys.argv[1], sys.argv[2]).write(sys.argv[3])"
CREATE_0600 = "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600))"


def write_as(accounts: Accounts, user: str, path: Path, text: str, mode: str = "a"):
    # umask 0007 as the service unit sets it: group rw, nothing for others
    return run_as(user, [accounts.python, "-c", WRITE, str(path), mode, text], umask=0o007)


def test_service_file_in_shared_folder_is_writable_by_clerk(office_accounts: Accounts, office_folder: Path):
    register = office_folder / "register.xlsx"
    assert write_as(office_accounts, office_accounts.service, register, "svc", "w").returncode == 0
    info = register.stat()
    assert (info.st_uid, info.st_gid) == (office_accounts.service_uid, office_accounts.gid)  # setgid folder
    assert stat.S_IMODE(info.st_mode) == 0o660
    result = write_as(office_accounts, office_accounts.clerk, register, "+clerk")
    assert result.returncode == 0, result.stderr
    assert register.read_text() == "svc+clerk"


def test_private_service_file_is_not_writable_by_clerk(office_accounts: Accounts, office_folder: Path):
    private = office_folder / "private.xlsx"
    made = run_as(office_accounts.service, [office_accounts.python, "-c", CREATE_0600, str(private)])
    assert made.returncode == 0, made.stderr
    result = write_as(office_accounts, office_accounts.clerk, private, "clerk")
    assert result.returncode != 0 and "PermissionError" in result.stderr
    assert private.read_text() == ""


def test_run_as_keeps_no_root_power(office_accounts: Accounts):
    """A program in a root-only folder cannot be started: the user, not root, resolves its path."""
    hidden = office_accounts.base / "root-only"
    hidden.mkdir(mode=0o700, exist_ok=True)
    program = Path(shutil.copy("/usr/bin/true", hidden / "true"))
    os.chmod(program, 0o755)
    assert run_as("root", [str(program)]).returncode == 0
    with pytest.raises(PermissionError):
        run_as(office_accounts.service, [str(program)])


def test_clerk_round_trip_over_samba(office_accounts: Accounts, samba_share: Share, tmp_path: Path):
    data = os.urandom(50_000)
    (tmp_path / "sent.xlsx").write_bytes(data)
    smbclient(samba_share, samba_share.clerk, samba_share.password,
              f'lcd "{tmp_path}"; put sent.xlsx register.xlsx; get register.xlsx back.xlsx; mkdir 2569')
    assert (tmp_path / "back.xlsx").read_bytes() == data
    on_disk = (samba_share.folder / "register.xlsx").stat()
    assert (on_disk.st_uid, on_disk.st_gid) == (office_accounts.clerk_uid, office_accounts.gid)
    assert stat.S_IMODE(on_disk.st_mode) == 0o660  # force create mode, whatever the client asked
    folder = (samba_share.folder / "2569").stat()
    assert folder.st_gid == office_accounts.gid and stat.S_IMODE(folder.st_mode) == 0o2770


def test_clerk_owner_file_appears_on_disk(samba_share: Share, tmp_path: Path):
    (tmp_path / "owner").write_bytes(b"\x0bclerk-pc" + b" " * 44)
    smbclient(samba_share, samba_share.clerk, samba_share.password,
              f'lcd "{tmp_path}"; put owner "~$register.xlsx"')
    assert (samba_share.folder / "~$register.xlsx").read_bytes().startswith(b"\x0bclerk-pc")


def test_clerk_overwrites_service_file_over_samba(office_accounts: Accounts, samba_share: Share,
                                                   tmp_path: Path):
    register = samba_share.folder / "register.xlsx"
    assert write_as(office_accounts, office_accounts.service, register, "from service", "w").returncode == 0
    (tmp_path / "edited.xlsx").write_text("from clerk")
    smbclient(samba_share, samba_share.clerk, samba_share.password,
              f'lcd "{tmp_path}"; put edited.xlsx register.xlsx')
    assert register.read_text() == "from clerk"
    assert register.stat().st_uid == office_accounts.service_uid  # overwritten in place, not replaced


def test_clerk_cannot_overwrite_private_service_file_over_samba(office_accounts: Accounts,
                                                                samba_share: Share, tmp_path: Path):
    private = samba_share.folder / "private.xlsx"
    made = run_as(office_accounts.service, [office_accounts.python, "-c", CREATE_0600, str(private)])
    assert made.returncode == 0, made.stderr
    (tmp_path / "edited.xlsx").write_text("from clerk")
    with pytest.raises(RuntimeError, match="NT_STATUS_ACCESS_DENIED"):
        smbclient(samba_share, samba_share.clerk, samba_share.password,
                  f'lcd "{tmp_path}"; put edited.xlsx private.xlsx')
    assert private.read_text() == ""

"""OS accounts for tests that run as the office runs: a service user and a clerk in one group,
`run_as` to run a command as either, and shared folders set up as the register folder is.

Root hides every permission defect, so these tests need root only to create the accounts and to
switch to them; the code under test then runs as `sarabansvc`, the clerk as `sarabanclerk`.

Permission traps found while building this (each handled below):
- pytest's `tmp_path` lives under /tmp/pytest-of-root, mode 0700, which pytest resets on every
  session: other users cannot reach it. Shared folders live under a base made here with
  `tempfile.mkdtemp(dir="/tmp")` and chmod 0755 (mkdtemp makes 0700).
- `setpriv --reuid` still holds root's capabilities when it starts the program: see `run_as`.
- An interpreter under a 0700 home (a venv made from pyenv under /root) cannot be run by the
  accounts. `Accounts.python` is then the system interpreter of the same version, and the
  environment `user_env` builds puts the venv's packages and the project on PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

GROUP = "sarabantest"
SERVICE = "sarabansvc"
CLERK = "sarabanclerk"
IN_CI = os.environ.get("CI", "").lower() == "true"
PROJECT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_pythonpath = ""  # set by the fixture when the accounts need the venv's packages spelled out


@dataclass(frozen=True)
class Accounts:
    group: str
    gid: int
    service: str
    service_uid: int
    clerk: str
    clerk_uid: int
    base: Path  # 0755 under /tmp: every account can traverse it
    python: str  # an interpreter both accounts can run, with the project importable


def require_root(what: str) -> None:
    """Skip (fail under CI=true) a test that needs root to create and switch accounts."""
    if os.geteuid() != 0:
        message = f"{what} needs root to create OS accounts and run as them (run the tests as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def ensure_accounts() -> None:
    """Create the group and both users unless they exist (root). Each user keeps a group of its own
    and gets `sarabantest` as a supplementary group, as a clerk added to the share group has: a
    file joins `sarabantest` only through the setgid folder or Samba's `force group`."""
    # The suite runs in parallel workers (pytest-xdist): one creates the accounts at a time,
    # or two useradd calls race for /etc/passwd's lock and one fails.
    with open(Path(tempfile.gettempdir()) / "saraban-test-accounts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_accounts()


def _ensure_accounts() -> None:
    subprocess.run(["groupadd", "--force", GROUP], check=True, capture_output=True)
    for user, kind in ((SERVICE, ["--system"]), (CLERK, [])):
        result = subprocess.run(
            ["useradd", *kind, "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--groups", GROUP, user],
            capture_output=True, text=True,
        )
        try:  # exit 9 is "exists already": the user, or only a group of that name (an error)
            pwd.getpwnam(user)
        except KeyError:
            raise RuntimeError(f"useradd {user} ({result.returncode}): {result.stderr}") from None
        if user not in grp.getgrnam(GROUP).gr_mem:
            subprocess.run(["usermod", "--append", "--groups", GROUP, user], check=True, capture_output=True)


def user_env(user: str, **extra: str) -> dict[str, str]:
    """A login-like environment for `user`; `extra` adds or overrides variables."""
    entry = pwd.getpwnam(user)
    env = {"PATH": SYSTEM_PATH, "HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8"}
    if _pythonpath:
        env["PYTHONPATH"] = _pythonpath
    return env | extra


def run_as(user: str, argv: Sequence[str], *, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run `argv` as `user` with that user's groups, as a service manager's User= does, and return
    the CompletedProcess (text, output captured, unless kwargs say otherwise). Pass `umask=0o007`
    for the service's umask; env defaults to `user_env(user)`, cwd to / (the test's own cwd may
    be unreachable for the user). An unreachable program raises PermissionError."""
    entry = pwd.getpwnam(user)
    kwargs.setdefault("env", user_env(user))
    kwargs.setdefault("cwd", "/")
    kwargs.setdefault("text", True)
    if not {"stdout", "stderr", "capture_output"} & kwargs.keys():
        kwargs["capture_output"] = True
    # Not `setpriv --reuid`: util-linux 2.38 keeps every capability up to its execve, so the
    # program's path is resolved with root's DAC override (a venv under 0700 /root starts).
    # Here the child becomes the user (setgroups, setregid, setreuid: capabilities go) first.
    return subprocess.run(list(argv), user=entry.pw_uid, group=entry.pw_gid,
                          extra_groups=os.getgrouplist(user, entry.pw_gid), timeout=timeout, **kwargs)


def shared_folder(path: Path, accounts: Accounts) -> Path:
    """Make `path` (created if missing) a register folder as the office sets it up: owner the
    service, group `sarabantest`, mode 2770, setgid so what anyone creates inside joins the group."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, accounts.service_uid, accounts.gid)
    os.chmod(path, 0o2770)  # after chown, which may clear setgid
    return path


def _python_for_accounts() -> str:
    """This interpreter if the service account can run it and import the project, else the system
    one of the same version with the venv's packages on PYTHONPATH (see the module docstring)."""
    global _pythonpath
    probe = ["-c", "import saraban_mail"]
    _pythonpath = ""
    with contextlib.suppress(PermissionError):
        if run_as(SERVICE, [sys.executable, *probe]).returncode == 0:
            return sys.executable
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path=SYSTEM_PATH)
    _pythonpath = os.pathsep.join([str(PROJECT), *site.getsitepackages()])
    if system:
        result = run_as(SERVICE, [system, *probe])
        if result.returncode == 0:
            return system
    raise RuntimeError(f"no Python the account {SERVICE} can run imports saraban_mail: "
                       f"{sys.executable} is unreachable and {system or 'no system Python'} failed")


@pytest.fixture(scope="session")
def office_accounts() -> Iterator[Accounts]:
    """The service and clerk accounts, and a base folder both can reach (removed at the end)."""
    require_root("running as the office runs")
    ensure_accounts()
    base = Path(tempfile.mkdtemp(prefix="saraban-office-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        group = grp.getgrnam(GROUP)
        accounts = Accounts(GROUP, group.gr_gid, SERVICE, pwd.getpwnam(SERVICE).pw_uid,
                            CLERK, pwd.getpwnam(CLERK).pw_uid, base, _python_for_accounts())
        yield accounts
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def office_folder(office_accounts: Accounts) -> Iterator[Path]:
    """A fresh register folder (2770, service:sarabantest) for one test, removed after it."""
    parent = Path(tempfile.mkdtemp(dir=office_accounts.base))
    os.chmod(parent, 0o755)
    yield shared_folder(parent / "register", office_accounts)
    shutil.rmtree(parent, ignore_errors=True)

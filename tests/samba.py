"""A real Samba server for the tests: smbd on a free loopback port sharing one folder as `register`,
as the office shares its register folder to the clerks' Windows PCs, and `smbclient` to reach it.

smbd runs as root (it switches to the connecting user per session, as in the office) but reads
only a temporary smb.conf whose state, locks, passwords, pid and log all live in a temporary
folder: a system Samba, if any, is untouched."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.accounts import IN_CI, Accounts
from tests.servers import free_port, stop_group

SMBD = shutil.which("smbd") or "/usr/sbin/smbd"  # /usr/sbin is not on every PATH
SMBPASSWD = shutil.which("smbpasswd") or "/usr/bin/smbpasswd"
SMBCLIENT = shutil.which("smbclient") or "/usr/bin/smbclient"
CLERK_PASSWORD = "Clerk-smb-Pw7"

CONF = """[global]
server role = standalone server
smb ports = {port}
interfaces = lo
bind interfaces only = yes
disable netbios = yes
load printers = no
printcap name = /dev/null
disable spoolss = yes
rpc start on demand helpers = no
map to guest = never
passdb backend = tdbsam:{root}/private/passdb.tdb
private dir = {root}/private
lock directory = {root}/lock
state directory = {root}/state
cache directory = {root}/cache
pid directory = {root}/run
ncalrpc dir = {root}/run/ncalrpc
usershare path = {root}/usershares
log file = {root}/log.smbd
max log size = 0
log level = 1

[register]
path = {folder}
read only = no
valid users = @{group}
force group = {group}
create mask = 0660
force create mode = 0660
directory mask = 2770
force directory mode = 2770
"""


@dataclass
class Share:
    root: Path  # the temporary state: smb.conf, passdb, locks, log
    folder: Path
    port: int
    clerk: str
    password: str
    process: subprocess.Popen
    name: str = "register"

    @property
    def conf(self) -> Path:
        return self.root / "smb.conf"

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob("log.*")) + [
            self.root / "smbd.out"] if p.exists())

    def stop(self) -> None:
        """Stop smbd and the connection processes it forked: all are in its process group."""
        stop_group(self.process)


def samba_available() -> bool:
    return all(os.path.exists(tool) for tool in (SMBD, SMBPASSWD, SMBCLIENT))


@contextlib.contextmanager
def serving(folder: Path, accounts: Accounts, timeout: float = 20.0) -> Iterator[Share]:
    """Share `folder` as `register` to the clerk (password CLERK_PASSWORD) until the block ends."""
    root = Path(tempfile.mkdtemp(prefix="saraban-samba-"))
    try:
        for sub in ("private", "lock", "state", "cache", "run", "usershares"):
            (root / sub).mkdir()
        port = free_port()
        conf = root / "smb.conf"
        conf.write_text(CONF.format(port=port, root=root, folder=folder, group=accounts.group))
        subprocess.run([SMBPASSWD, "-c", str(conf), "-s", "-a", accounts.clerk], check=True, timeout=30,
                       input=f"{CLERK_PASSWORD}\n{CLERK_PASSWORD}\n", capture_output=True, text=True)
        with open(root / "smbd.out", "wb") as out:
            # Its own session, and --no-process-group so smbd stays in it: one killpg then stops
            # smbd and every connection process. (The on-demand RPC helper, samba-dcerpcd, would
            # leave the group with setsid and outlive the test: the config turns it off, so
            # file access works and only RPC does not: `smbclient -L` lists no shares.)
            process = subprocess.Popen(
                [SMBD, "--foreground", "--no-process-group", f"--configfile={conf}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        share = Share(root, folder, port, accounts.clerk, CLERK_PASSWORD, process)
        try:
            _wait_listening(share, timeout)
            yield share
        finally:
            share.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_listening(share: Share, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if share.process.poll() is not None:
            raise RuntimeError(f"smbd exited with {share.process.returncode}:\n{share.log()}")
        try:
            with socket.create_connection(("127.0.0.1", share.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"smbd does not listen on 127.0.0.1:{share.port} after {timeout} s:\n{share.log()}")


def smbclient(share: Share, user: str, password: str, commands: str, timeout: float = 30) -> (
        subprocess.CompletedProcess):
    """Run smbclient commands (`"lcd /x; put a b; get b c"`) on the share as `user`; raise with its
    output when any command fails. The password goes in the environment, not on the command line."""
    argv = [SMBCLIENT, f"//127.0.0.1/{share.name}", "--port", str(share.port), f"--configfile={share.conf}",
            "--user", user, "--max-protocol", "SMB3", "--command", commands]
    env = {"PATH": os.environ.get("PATH", ""), "PASSWD": password, "LANG": "C.UTF-8"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    # smbclient can exit 0 after a failed command; its NT_STATUS_ line is the signal
    if result.returncode != 0 or "NT_STATUS_" in result.stdout + result.stderr:
        output = result.stdout + result.stderr
        raise RuntimeError(f"smbclient {commands!r} failed ({result.returncode}):\n{output}")
    return result


@pytest.fixture
def samba_share(office_accounts: Accounts, office_folder: Path) -> Iterator[Share]:
    """smbd sharing `office_folder` (override that fixture to share another folder) as `register`."""
    if not samba_available():
        message = f"Samba is not installed ({SMBD}, {SMBCLIENT}; run tests/setup-and-run.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with serving(office_folder, office_accounts) as share:
        yield share

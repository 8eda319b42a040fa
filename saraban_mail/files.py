"""The service's files outside the journal: private ones (0700/0600), the ones clerks share
(the [sharing] group and modes, kept across atomic saves), and safe names from a mail."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saraban_mail.config import Sharing

log = logging.getLogger("saraban_mail")


def private_dir(folder: Path) -> None:
    """Create folder and any missing parent readable by the service user only (0700);
    Path.mkdir(parents=True, mode=...) gives the mode to the last one only."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def private_write(path: Path, data: bytes) -> None:
    """Write a file only the service user can read, creating its private folders."""
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def safe_filename(name: str) -> str:
    """A name from the mail, made harmless: no path, no control or RTL characters,
    no leading dot, no reserved Windows device name, at most 100 characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()\u0e00-\u0e7f]", "_", name).strip(" .") or "attachment"
    stem = name.split(".")[0].upper()
    if stem in {"CON", "PRN", "AUX", "NUL"} or re.fullmatch(r"(COM|LPT)\d", stem):
        name = "_" + name
    if len(name) > 100:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        suffix = Path(name).suffix[:10]
        name = f"{name[:80]}-{digest}{suffix}"
    return name


# -- files clerks share -------------------------------------------------------------------
# Written files get the mode and group explicitly (not by umask): the unit's UMask=0077 keeps
# data/ private, and mkstemp makes 0600 files whatever the umask.


def group_id(sharing: Sharing | None) -> int | None:
    """The gid of [sharing] group; None when unset or unknown (`check` reports the latter)."""
    if sharing is None or not sharing.group:
        return None
    try:
        import grp
    except ImportError:  # Windows: the share's ACL decides
        return None
    try:
        return grp.getgrnam(sharing.group).gr_gid
    except KeyError:
        return None


def _set_group(path: Path, gid: int, *, quiet: bool = False) -> None:
    if os.stat(path).st_gid == gid:
        return
    try:
        os.chown(path, -1, gid)
    except OSError as exc:  # not a member of the group: the save goes on, check says why
        if not quiet:
            log.warning("cannot give %s the group %d: %s", path, gid, exc.strerror)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def share_file(path: Path, sharing: Sharing | None, *, like: Path | None = None) -> None:
    """Give a file just written (a temporary before its rename) the mode and group clerks need:
    [sharing] file_mode and group (no group set: that of `like`, the file it replaces, when the
    service may give it); without a Sharing, the mode and group of `like`, else what an ordinary
    open() would have given. A [sharing] group that cannot be set is logged."""
    if sys_windows():
        return
    gid = group_id(sharing)
    before = like.stat() if like is not None and like.exists() else None
    if sharing is not None:
        mode = sharing.file_bits
    elif before is not None:
        mode = stat.S_IMODE(before.st_mode)
    else:
        mode = 0o666 & ~_current_umask()
    if gid is not None:
        _set_group(path, gid)
    elif before is not None:
        _set_group(path, before.st_gid, quiet=True)
    os.chmod(path, mode)  # after chown, which clears set-id bits


def shared_dir(folder: Path, sharing: Sharing | None) -> None:
    """Create folder and any missing parent as clerks' folders ([sharing] folder_mode, group).
    Folders that exist are left as the administrator set them (`check` judges them).

    Created under a umask that lets the mode through, so that a setgid parent passes on its
    setgid bit without a chmod: the unit's RestrictSUIDSGID refuses any chmod that sets it."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    bits = sharing.folder_bits if sharing is not None else 0o2770
    gid = group_id(sharing)
    for each in reversed(missing):
        previous = os.umask(0o777 & ~bits)
        try:
            each.mkdir(mode=bits & 0o777, exist_ok=True)
        finally:
            os.umask(previous)
        if sys_windows():
            continue
        if gid is not None:
            _set_group(each, gid)
        if stat.S_IMODE(each.stat().st_mode) != bits:
            try:
                os.chmod(each, bits)
            except OSError:  # setgid refused (RestrictSUIDSGID): keep the permission bits
                os.chmod(each, (bits & 0o777) | (each.stat().st_mode & stat.S_ISGID))


def shared_write(path: Path, data: bytes, sharing: Sharing | None) -> None:
    """Write a file clerks open (a review copy, a note in outbox/failed/): atomically, with the
    [sharing] mode and group, creating its folders as clerks' folders."""
    shared_dir(path.parent, sharing)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(),
                                    suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        share_file(Path(temp), sharing, like=path)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def sys_windows() -> bool:
    return os.name == "nt"


# -- temporaries of an atomic save ----------------------------------------------------------
# A save killed midway leaves its temporary in the clerks' folder (a `.saving-` file Windows
# shows over the share and cannot open). Each names the process and computer that wrote it,
# so the next save can tell its own dead ones from a save running now.

TEMPORARY = ".saving-"
_TEMPORARY_NAME = re.compile(r"^\.saving-(\d+)@([A-Za-z0-9._]+)-")
# No save takes this long: a temporary this old is dead whoever wrote it (a reused pid, a
# temporary from another computer, or one from before names carried the process).
TEMPORARY_MAX_AGE = 3600.0


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


def temporary_prefix() -> str:
    return f"{TEMPORARY}{os.getpid()}@{_host()}-"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the `.saving-` temporaries a killed save left in `folder`: those whose process
    (named in the file name) no longer runs on this computer, and any older than an hour.
    Returns what was removed. Only our prefix: a clerk's files are never touched."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMPORARY):
            continue
        try:
            age = time.time() - entry.lstat().st_mtime
        except OSError:
            continue
        match = _TEMPORARY_NAME.match(entry.name)
        dead = match is not None and match.group(2) == _host() and not _running(int(match.group(1)))
        if (dead or age > TEMPORARY_MAX_AGE) and entry.is_file():
            try:
                entry.unlink()
            except OSError:
                continue
            log.info("removed %s, left by a save that did not finish", entry)
            removed.append(entry)
    return removed


def sharing_problems(folder: Path, sharing: Sharing, what: str) -> list[str]:
    """What keeps the clerks' group from reading and writing `folder` and the files in it,
    each with the command that fixes it (for `check`); [] when all is well or on Windows."""
    if sys_windows():
        return []
    gid = group_id(sharing)
    if sharing.group and gid is None:
        return [f"[sharing] group '{sharing.group}' does not exist: groupadd {sharing.group}, "
                f"then add the service user and the clerks to it (usermod -aG {sharing.group} USER)"]
    if not folder.exists():
        return []
    fix = (f"chgrp -R {sharing.group} {folder}; " if sharing.group else "") + (
        f"find {folder} -type d -exec chmod {sharing.folder_mode} {{}} +; "
        f"find {folder} -type f -exec chmod {sharing.file_mode} {{}} +")
    problems = []
    info = folder.stat()
    wrong = []
    if gid is not None and info.st_gid != gid:
        wrong.append(f"its group is not {sharing.group}")
    if info.st_mode & 0o070 != 0o070:
        wrong.append(f"the group cannot read and write it (mode {stat.S_IMODE(info.st_mode):o})")
    if sharing.folder_bits & stat.S_ISGID and not info.st_mode & stat.S_ISGID:
        wrong.append("it lacks the setgid bit, so new files would not join the group")
    if wrong:
        problems.append(f"the {what} folder {folder}: {'; '.join(wrong)}: fix with: {fix}")
    bad = []
    for entry in sorted(folder.rglob("*")):
        if entry.name.startswith(("~$", ".~lock.", TEMPORARY)) or not entry.is_file():
            continue
        mode = entry.stat()
        if (gid is not None and mode.st_gid != gid) or mode.st_mode & 0o060 != 0o060:
            bad.append(entry)
    if bad:
        names = ", ".join(str(p.relative_to(folder)) for p in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        problems.append(f"{len(bad)} file(s) in the {what} folder the clerks' group cannot read "
                        f"and write ({names}{more}): fix with: {fix}")
    return problems

"""The service's own files outside the journal: private folders and files (0700/0600),
and names from a mail made safe to use as file names."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


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

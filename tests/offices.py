"""A demo-style office on a local Maildir with a pickup folder: real files, no server."""

from __future__ import annotations

import email.policy
import mailbox
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from saraban_mail.calendar import BANGKOK
from saraban_mail.demo import AGENCY, CONFIG, STAFF, Sample, samples


def office_with(folder: Path, chosen: list[Sample]) -> Path:
    config = folder / "config.toml"
    config.write_text(CONFIG.format(agency=AGENCY, staff=STAFF), encoding="utf-8")
    root = mailbox.Maildir(folder / "maildir", create=True)
    root.add_folder("Junk")
    for sample in chosen:
        add_mail(folder, sample.raw, sample.received_at, sample.folder)
    return config


def add_mail(folder: Path, raw: bytes, when: datetime, box: str = "INBOX") -> None:
    root = mailbox.Maildir(folder / "maildir", create=True)
    message = mailbox.MaildirMessage(raw)
    message.set_date(when.timestamp())
    (root.get_folder("Junk") if box == "Junk" else root).add(message)


def request(n: int, subject: str = "ขอข้อมูลข่าวสาร") -> tuple[bytes, datetime]:
    """A distinct, ordinary request from citizen n, on a working morning in 2026."""
    when = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK) + timedelta(minutes=n)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"ประชาชน {n} <citizen{n}@gmail.com>"
    msg["To"] = AGENCY
    msg["Subject"] = f"{subject} {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<request-{n}@gmail.example>"
    msg.set_content(f"ขอข้อมูลเรื่องที่ {n} ค่ะ")
    return msg.as_bytes(), when


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def poll(config: Path) -> subprocess.CompletedProcess:
    return cli("poll", "--config", str(config), "--json")


def by_key(key: str) -> Sample:
    return next(s for s in samples() if s.key == key)

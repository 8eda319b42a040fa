"""Mail loops: two agencies running the service, pointed at each other, and a citizen's
auto-responder that answers everything. A small router hands what the SMTP server accepts
to the recipients' real Dovecot mailboxes; the exchange must stop by itself."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from saraban_mail.calendar import BANGKOK
from tests.conftest import CONFIG, deliver
from tests.servers import PASSWORD

A, B = "saraban@a-town.go.th", "saraban@b-town.go.th"
CITIZEN = "busy.citizen@gmail.com"
NOW = "2026-11-23T09:00:00+07:00"


def office(folder: Path, dovecot, smtp, address: str) -> tuple[Path, str]:
    folder.mkdir()
    account = dovecot.account()
    text = CONFIG.format(imap_port=dovecot.port, account=account, smtp_port=smtp.port)
    (folder / "config.toml").write_text(text.replace("saraban@nongtuayang.go.th", address))
    return folder / "config.toml", account


def poll(config: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "saraban_mail", "poll", "--config", str(config)],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, SARABAN_IMAP__PASSWORD=PASSWORD, SARABAN_NOW=NOW))
    assert result.returncode in (0, 3), result.stderr


def mail(sender: str, to: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = make_msgid(domain=sender.partition("@")[2])
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def auto_reply(original: bytes, style: str) -> bytes:
    """What the citizen's auto-responder sends back to anything it receives."""
    got = email.message_from_bytes(original, policy=email.policy.default)
    extra = {"In_Reply_To": str(got["Message-ID"]).strip()}
    subject = f"Re: {got['Subject']}"
    if style == "rfc3834":
        extra["Auto_Submitted"] = "auto-replied"
    elif style == "subject":
        subject = f"Automatic reply: {got['Subject']}"
    return mail(CITIZEN, str(got["From"]), subject, "I am away until next month.", **extra)


@pytest.mark.parametrize("style", ["rfc3834", "subject", "bare"])
def test_two_agencies_and_an_auto_responder_stop_by_themselves(tmp_path, dovecot, smtp, style):
    a, a_account = office(tmp_path / "a", dovecot, smtp, A)
    b, b_account = office(tmp_path / "b", dovecot, smtp, B)
    mailboxes = {A: a_account, B: b_account}
    when = datetime(2026, 11, 23, 8, 0, tzinfo=BANGKOK)
    # A clerk of B writes to A from B's central address; the citizen writes to both.
    deliver(dovecot, a_account, "INBOX", mail(B, A, "ขอสำเนาหนังสือ", "ขอสำเนาหนังสือเลขที่ 12"), when)
    deliver(dovecot, a_account, "INBOX", mail(CITIZEN, A, "ขอข้อมูลข่าวสาร", "ขอข้อมูลค่ะ"), when)
    deliver(dovecot, b_account, "INBOX", mail(CITIZEN, B, "ขออนุญาตใช้สถานที่", "ขออนุญาตค่ะ"), when)

    exchanged: Counter = Counter()
    routed = 0
    rounds = 0
    while rounds < 12:
        rounds += 1
        poll(a)
        poll(b)
        new = smtp.messages[routed:]
        routed = len(smtp.messages)
        if not new:
            break
        for sender, recipients, raw in new:
            for rcpt in recipients:
                exchanged[(sender, rcpt)] += 1
                if rcpt in mailboxes:
                    deliver(dovecot, mailboxes[rcpt], "INBOX", raw, when)
                elif rcpt == CITIZEN:  # the auto-responder answers at once, always
                    answer = auto_reply(raw, style)
                    exchanged[(CITIZEN, sender)] += 1
                    deliver(dovecot, mailboxes[sender], "INBOX", answer, when)
    else:
        pytest.fail(f"still exchanging after 12 rounds: {dict(exchanged)}")
    print(f"loop {style}: {dict(exchanged)}, quiet after round {rounds}")
    assert exchanged[(A, B)] == 1 and exchanged[(B, A)] == 0  # one acknowledgement, no answer
    if style == "bare":
        # Nothing marks the first answer as automatic: it is taken as the citizen's reply and
        # acknowledged; the same words a second time are not (per-sender cap: 5 a day).
        assert exchanged[(A, CITIZEN)] == exchanged[(B, CITIZEN)] == 2
    else:
        assert exchanged[(A, CITIZEN)] == exchanged[(B, CITIZEN)] == 1

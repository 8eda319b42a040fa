"""Servers that are not Dovecot, imitated by Dovecot: what the service does where a folder
cannot be found, where EXPUNGE would take someone else's deleted mail (no UIDPLUS), and
where copies to Sent go one APPEND at a time (no MULTIAPPEND) and the poll dies midway."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import imapclient
import pytest
from imapclient.exceptions import IMAPClientAbortError

from saraban_mail.config import load_config
from saraban_mail.demo import samples
from saraban_mail.mailbox import ImapMailbox
from saraban_mail.service import run_poll as poll_in_process
from tests.conftest import CONFIG, IN_CI, deliver, imap_client
from tests.offices import request
from tests.servers import PASSWORD, dovecot_available, start_dovecot


@pytest.fixture(scope="module")
def bare():
    """No UIDPLUS, no MOVE, no SPECIAL-USE, and no Junk folder at all."""
    if not dovecot_available():
        pytest.fail("Dovecot is not installed") if IN_CI else pytest.skip("no Dovecot")
    server = start_dovecot(imitate="bare")
    yield server
    server.close()


def office_on(server, tmp_path: Path, smtp, monkeypatch, admin: bool = False) -> Path:
    config = tmp_path / "config.toml"
    text = CONFIG.format(imap_port=server.port, account=server.account(), smtp_port=smtp.port)
    if admin:
        text = text.replace('email = "saraban@', 'admin_email = "it@nongtuayang.go.th"\n'
                                                 'email = "saraban@', 1)
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
    monkeypatch.delenv("SARABAN_CONFIG", raising=False)
    return config


def account_of(config: Path) -> str:
    return next(line.split('"')[1] for line in config.read_text().splitlines()
                if line.startswith("username = "))


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]).strip()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def test_without_junk_every_poll_status_and_the_administrator_hear_of_it(
        bare, tmp_path, smtp, monkeypatch):
    config = office_on(bare, tmp_path, smtp, monkeypatch, admin=True)
    raw, when = request(1)
    deliver(bare, account_of(config), "INBOX", raw, when)
    for _ in range(2):  # every poll, not only the first
        result = cli(config, "poll")
        assert result.returncode == 3, result.stderr
        assert "no junk folder found on the server" in result.stderr
        assert "seed 004 App.3 §2" in result.stderr and "set imap.junk" in result.stderr
    status = cli(config, "status")
    assert "no junk folder found on the server" in status.stdout
    alerts = [email.message_from_bytes(m, policy=email.policy.default) for _, to, m in
              smtp.messages if to == ["it@nongtuayang.go.th"]]
    assert len(alerts) == 1  # once a day
    assert "no junk folder found" in alerts[0].get_body().get_content()
    # The inbox was still read: the request is registered and acknowledged.
    assert any(to == ["citizen1@gmail.com"] for _, to, _ in smtp.messages)
    check = cli(config, "check")
    assert check.returncode == 3 and "junk=(none)" in check.stdout
    assert "UIDPLUS=no" in check.stdout and "EXPUNGE only when no one else" in check.stdout


def test_without_uidplus_expunge_never_takes_a_clerks_deleted_mail(bare, tmp_path, smtp,
                                                                    monkeypatch):
    """Spam moves to Trash by COPY, flag deleted, EXPUNGE. A plain EXPUNGE would also remove
    the mail a clerk flagged deleted and has not expunged: so it waits, said as a problem."""
    config = office_on(bare, tmp_path, smtp, monkeypatch)
    account = account_of(config)
    spam = next(s for s in samples() if s.key == "gambling_spam")
    clerk_mail, when = request(7, "เรื่องที่เจ้าหน้าที่ลบไว้")
    deliver(bare, account, "INBOX", clerk_mail, when)
    client = imap_client(bare, account)
    client.select_folder("INBOX")
    client.add_flags(client.search("ALL"), [imapclient.DELETED])  # flagged, not expunged
    client.logout()
    deliver(bare, account, "INBOX", spam.raw, spam.received_at)

    first = cli(config, "poll")
    assert first.returncode == 3
    assert "no UIDPLUS and 1 other message(s)" in first.stderr

    def contents() -> dict[str, list[bytes]]:
        client = imap_client(bare, account)
        try:
            found = {}
            for folder in ("INBOX", "INBOX.Trash"):
                client.select_folder(folder, readonly=True)
                fetched = client.fetch(client.search("ALL"), [b"BODY.PEEK[HEADER.FIELDS "
                                                              b"(MESSAGE-ID)]"])
                found[folder] = sorted(bytes(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]).strip()
                                       for d in fetched.values())
            return found
        finally:
            client.logout()

    spam_id = b"Message-ID: " + email.message_from_bytes(spam.raw)["Message-ID"].encode()
    clerk_id = b"Message-ID: <request-7@gmail.example>"
    assert contents() == {"INBOX": sorted([clerk_id, spam_id]), "INBOX.Trash": [spam_id]}
    again = cli(config, "poll")  # still waiting: and the copy is not made twice
    assert again.returncode == 3 and contents()["INBOX.Trash"] == [spam_id]

    client = imap_client(bare, account)  # the clerk undeletes their mail
    client.select_folder("INBOX")
    client.remove_flags(client.search(["HEADER", "Message-ID", "<request-7@gmail.example>"]),
                        [imapclient.DELETED])
    client.logout()
    last = cli(config, "poll")
    assert last.returncode == 3  # Junk is still missing on this server, nothing else
    assert "UIDPLUS" not in last.stderr
    assert contents() == {"INBOX": [clerk_id], "INBOX.Trash": [spam_id]}


def test_without_multiappend_copies_to_sent_land_once_after_a_death_midway(
        dovecot_courier, tmp_path, smtp, monkeypatch):
    config = office_on(dovecot_courier, tmp_path, smtp, monkeypatch)
    account = account_of(config)
    for n in range(3):
        raw, when = request(n)
        deliver(dovecot_courier, account, "INBOX", raw, when)
    original, calls = ImapMailbox.append, []

    def second_append_dies(self, folder, raw):
        calls.append(folder)
        original(self, folder, raw)
        if len(calls) == 2:
            raise IMAPClientAbortError("connection lost after the second APPEND")

    monkeypatch.setattr(ImapMailbox, "append", second_append_dies)
    report = poll_in_process(load_config(config))
    assert calls == ["INBOX.Sent Items"] * 2, calls  # one APPEND each: no MULTIAPPEND
    assert any("copy to INBOX.Sent Items failed" in p for p in report.problems)
    monkeypatch.setattr(ImapMailbox, "append", original)
    report = poll_in_process(load_config(config))
    assert report.problems == [], report.problems

    client = imap_client(dovecot_courier, account)
    client.select_folder("INBOX.Sent Items", readonly=True)
    held = [message_id(bytes(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])) for d in client.fetch(
        client.search("ALL"), [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).values()]
    client.logout()
    sent = [message_id(m) for _, _, m in smtp.messages]
    assert len(sent) == 3 and sorted(held) == sorted(sent)  # each once


def test_on_the_imitation_junk_is_found_by_name_and_read(
        dovecot_courier, tmp_path, smtp, monkeypatch):
    """On the imitation every folder is found by name: a poll has nothing to complain of."""
    config = office_on(dovecot_courier, tmp_path, smtp, monkeypatch)
    raw, when = request(1)
    deliver(dovecot_courier, account_of(config), "Junk", raw, when)
    result = cli(config, "poll", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["folder"] == "INBOX.Junk E-mail" and record["receipt_no"] == 1

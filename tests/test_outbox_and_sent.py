"""What waits to go out, against the real Dovecot and SMTP servers: a file in outbox/ that
names no receipt, a result queued while the SMTP server refuses, and copies to Sent after a
poll died in the middle of appending them."""

from __future__ import annotations

import email
import email.policy
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from imapclient.exceptions import IMAPClientAbortError

from saraban_mail.config import load_config
from saraban_mail.mailbox import ImapMailbox
from saraban_mail.service import run_poll as poll_in_process
from tests.conftest import deliver, imap_client
from tests.offices import request
from tests.test_intake_e2e import records, run_poll
from tests.test_results_e2e import PERMIT, pdf


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


@pytest.fixture
def registered(office, dovecot, imap_account, smtp):
    deliver(dovecot, imap_account, "INBOX", PERMIT.raw, PERMIT.received_at)
    assert records(run_poll(office, "--json"))[0]["receipt_no"] == 1
    smtp.messages.clear()
    return office


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]).strip()


def sent_message_ids(dovecot, account) -> list[str]:
    client = imap_client(dovecot, account)
    try:
        client.select_folder("Sent", readonly=True)
        fetched = client.fetch(client.search("ALL"), [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return sorted(message_id(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
                      for data in fetched.values())
    finally:
        client.logout()


# -- outbox/ files that name no receipt -------------------------------------------------


def test_outbox_file_naming_no_receipt_is_moved_aside_with_a_note(registered, tmp_path):
    outbox = registered.parent / "outbox"
    outbox.mkdir()
    pdf(outbox / "result.pdf")
    pdf(outbox / "12_2569.pdf")
    (outbox / ".hidden.pdf").write_bytes(b"%PDF-1.4 kept")
    (outbox / "sent").mkdir()
    (outbox / "failed").mkdir()
    (outbox / "Thumbs.db").write_bytes(b"windows keeps this")

    result = run_poll(registered, "--json")
    assert result.returncode != 0  # a problem to report, not silence
    for name in ("result.pdf", "12_2569.pdf"):
        assert f"outbox/{name}" in result.stderr, result.stderr
        assert not (outbox / name).exists()
        assert (outbox / "failed" / name).exists()
        note = (outbox / "failed" / f"{name}.txt").read_text(encoding="utf-8")
        assert "12-2569.pdf" in note and "N-YYYY" in note and "12-2569/" in note
    assert "did you mean 12-2569.pdf" in result.stderr
    assert (outbox / ".hidden.pdf").exists() and (outbox / "Thumbs.db").exists()
    assert sorted(p.name for p in (outbox / "failed").iterdir()) == [
        "12_2569.pdf", "12_2569.pdf.txt", "result.pdf", "result.pdf.txt"]
    again = run_poll(registered, "--json")
    assert again.returncode == 0, again.stderr  # reported once, not at every poll


# -- a result queued while the SMTP server refuses ------------------------------------------


def test_result_refused_by_smtp_waits_in_status_and_the_matter_is_not_sent(registered, smtp,
                                                                           tmp_path):
    smtp.refuse = "451 4.3.0 try again later"
    result = cli(registered, "send-result", "1", str(pdf(tmp_path / "ผล.pdf")),
                 "--password", "none")
    assert result.returncode != 0 and "stays queued" in result.stderr, result.stderr
    assert "queued, not sent yet" in result.stdout
    assert smtp.messages == []

    status = json.loads(cli(registered, "status", "--json").stdout)
    assert status["pending_mail"] == 1 and status["pending_results"] == [
        {"outgoing": "1/2569", "receipt": "1/2569", "to": "somchai.j@gmail.com",
         "error": "451 4.3.0 try again later"}]
    text = cli(registered, "status").stdout
    assert "1 mail(s) to send (1 result(s))" in text, text
    show = cli(registered, "show", "1/2569").stdout
    assert "result_sent" not in show, show

    smtp.refuse = ""
    again = run_poll(registered, "--json")
    assert again.returncode == 0, again.stderr
    assert len(smtp.messages) == 1
    status = json.loads(cli(registered, "status", "--json").stdout)
    assert status["pending_mail"] == 0 and status["pending_results"] == []
    assert "result_sent" in cli(registered, "show", "1/2569").stdout


# -- copies to Sent after an append that died -------------------------------------------------


def _dying_append(monkeypatch, method: str) -> tuple[list[int], Callable[[], None]]:
    """The APPEND reaches the server, then the connection drops before the journal hears.
    Returns the calls seen and how to put the real method back."""
    original = getattr(ImapMailbox, method)
    calls: list[int] = []

    def append_then_die(self, folder, raws):
        calls.append(1)
        original(self, folder, raws)
        raise IMAPClientAbortError("connection lost after the append")

    monkeypatch.setattr(ImapMailbox, method, append_then_die)
    return calls, lambda: monkeypatch.setattr(ImapMailbox, method, original)


def test_copies_to_sent_land_once_after_an_append_that_died(office, dovecot, imap_account, smtp,
                                                           monkeypatch):
    for n in range(3):
        raw, when = request(n)
        deliver(dovecot, imap_account, "INBOX", raw, when)
    config = load_config(office)
    calls, restore = _dying_append(monkeypatch, "append_many")
    report = poll_in_process(config)
    assert calls and any("copy to Sent failed" in p for p in report.problems), report.problems
    acks = [message_id(raw) for _, _, raw in smtp.messages]
    assert len(acks) == 3 and sent_message_ids(dovecot, imap_account) == sorted(acks)

    restore()
    report = poll_in_process(load_config(office))
    assert not any("Sent" in p for p in report.problems), report.problems
    assert sent_message_ids(dovecot, imap_account) == sorted(acks)  # each once
    journal = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    assert journal.execute("SELECT COUNT(*) FROM outbox WHERE filed_at IS NULL").fetchone()[0] == 0

    # One reply more: the normal path appends it without searching for the earlier ones.
    raw, when = request(9)
    deliver(dovecot, imap_account, "INBOX", raw, when)
    searches: list[object] = []
    monkeypatch.setattr(ImapMailbox, "holds_message_ids",
                        lambda self, folder, ids: searches.append(ids) or set())
    poll_in_process(load_config(office))
    assert searches == [] and len(sent_message_ids(dovecot, imap_account)) == 4


def test_result_copy_to_sent_lands_once_after_an_append_that_died(registered, dovecot,
                                                                 imap_account, smtp, tmp_path,
                                                                 monkeypatch):
    before = sent_message_ids(dovecot, imap_account)
    calls, restore = _dying_append(monkeypatch, "append")
    outbox = registered.parent / "outbox"
    outbox.mkdir()
    pdf(outbox / "1-2569.pdf")
    report = poll_in_process(load_config(registered))
    assert calls and any("failed" in p for p in report.problems), report.problems
    assert len(sent_message_ids(dovecot, imap_account)) == len(before) + 1

    restore()
    report = poll_in_process(load_config(registered))
    assert report.problems == []
    after = sent_message_ids(dovecot, imap_account)
    assert len(after) == len(before) + 1 and len(set(after)) == len(after)


def test_maildir_tells_which_message_ids_its_folder_holds(tmp_path):
    from saraban_mail.maildir import MaildirMailbox

    box = MaildirMailbox(tmp_path / "maildir")
    raw, _ = request(1)
    box.append_many("Sent", [raw])
    assert box.holds_message_ids("Sent", ["<request-1@gmail.example>", "<other@x>"]) == {
        "<request-1@gmail.example>"}
    assert box.holds_message_ids("INBOX", ["<request-1@gmail.example>"]) == set()

"""The pure parts of issue 18 §4: which of our mails a bounce names and why it failed
(bounces.read_bounce), which sent mail it is linked to (poll/bounces.find_sent), and the
telephone numbers of a request (thaitext.phones_in)."""

from __future__ import annotations

import email.policy
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from saraban_mail import matters
from saraban_mail.bounces import Bounce, read_bounce
from saraban_mail.calendar import BANGKOK
from saraban_mail.journal import Journal
from saraban_mail.poll.bounces import find_sent
from saraban_mail.thaitext import phones_in
from tests.bounce_mail import exchange_legacy, postfix_plain, rfc3464

WHEN = datetime(2026, 4, 16, 11, 5, tzinfo=BANGKOK)
OURS = (b"From: saraban@nongtuayang.go.th\r\nTo: somchai.j@gmail.com\r\n"
        b"Subject: =?utf-8?b?4Lij4Lix4Lia4LiX4Li14LmIIDEvMjU2OQ==?=\r\n"
        b"Message-ID: <ack.1@nongtuayang.go.th>\r\nAuto-Submitted: auto-replied\r\n\r\nbody\r\n")


def test_an_rfc3464_report_names_the_returned_headers_recipient_and_reason():
    found = read_bounce(rfc3464(OURS, "Somchai.J@gmail.com", WHEN))
    assert found == Bounce(("somchai.j@gmail.com",),
                           "550 5.1.1 <Somchai.J@gmail.com>: Recipient address rejected: User "
                           "unknown in virtual mailbox table", ("<ack.1@nongtuayang.go.th>",))
    whole = read_bounce(rfc3464(OURS, "a@example.com", WHEN, headers_only=False))
    assert whole is not None and whole.original_ids == ("<ack.1@nongtuayang.go.th>",)
    bare = read_bounce(rfc3464(OURS, "a@example.com", WHEN, returned=False,
                               diagnostic="", status="5.2.2"))
    assert bare == Bounce(("a@example.com",), "status 5.2.2", ())


def test_a_delay_warning_is_not_a_bounce():
    assert read_bounce(rfc3464(OURS, "a@example.com", WHEN, action="delayed",
                               status="4.4.1")) is None


def test_postfix_plain_text_is_linked_by_the_attached_original():
    found = read_bounce(postfix_plain(OURS, "somchai.j@gmail.com", WHEN))
    assert found is not None and found.original_ids == ("<ack.1@nongtuayang.go.th>",)
    assert found.reason == ("<somchai.j@gmail.com>: host mx.example.com[192.0.2.7] said: "
                            "550 5.1.1 mailbox unavailable (in reply to RCPT TO command)")


def test_exchange_legacy_report_names_its_recipient_through_flufl_bounce():
    found = read_bounce(exchange_legacy(OURS, "somchai.j@gmail.com", WHEN))
    assert found is not None
    assert found.recipients == ("somchai.j@gmail.com",)
    assert found.original_ids == ("<ack.1@nongtuayang.go.th>",)
    assert "The recipient name is not recognized" in found.reason


def test_a_citizen_forwarding_our_mail_or_an_out_of_office_is_not_a_bounce():
    forward = EmailMessage(policy=email.policy.SMTP)
    forward["From"] = "somchai.j@gmail.com"
    forward["To"] = "saraban@nongtuayang.go.th"
    forward["Subject"] = "Fwd: ตอบรับ"
    forward.set_content("ส่งต่อให้ดูครับ")
    forward.add_attachment(email.message_from_bytes(OURS, policy=email.policy.SMTP))
    assert read_bounce(forward.as_bytes()) is None
    away = EmailMessage(policy=email.policy.SMTP)
    away["From"] = "somchai.j@gmail.com"
    away["Subject"] = "Out of office"
    away["Auto-Submitted"] = "auto-replied"
    away.set_content("I am away until Monday.")
    assert read_bounce(away.as_bytes()) is None


@pytest.mark.parametrize(("text", "phones"), [
    ("สมชาย ใจดี โทร 081 234 5678", ("081-234-5678",)),
    ("โทร ๐๘๙-๑๑๑-๒๒๒๒ หรือ 02-123-4567", ("089-111-2222", "02-123-4567")),
    ("mobile +66 81 234 5678 / 0812345678", ("081-234-5678",)),
    ("สำนักงาน 044.123.456", ("044-123-456",)),
    ("เลขบัตร 1 2345 67890 12 3 วันที่ 01-02-2569 รหัสไปรษณีย์ 30000 เลขที่ 0123456789", ()),
    ("ติดต่อเทศบาลที่ 0 4400 0000", ()),  # the agency's own number, quoted back
])
def test_phone_numbers_in_a_request(text, phones):
    assert phones_in(text, ("0 4400 0000",)) == phones


def _sent(journal: Journal, recipient: str, message_id: str, at: datetime) -> int:
    with journal.transaction():
        journal.queue_mail(message=None, kind="acknowledgement", recipient=recipient,
                           message_id=message_id, raw=b"x", now=at)
        mail = journal.pending_mail()[-1]["id"]
        journal.mark_sent(mail, at)
    return int(mail)


def test_a_bounce_is_linked_by_message_id_else_by_recipient_and_time(tmp_path: Path):
    journal = Journal.scratch(tmp_path)
    first = _sent(journal, "a@example.com", "<one@us>", WHEN - timedelta(days=2))
    second = _sent(journal, "a@example.com", "<two@us>", WHEN - timedelta(hours=1))
    _sent(journal, "a@example.com", "<three@us>", WHEN + timedelta(hours=1))  # after it
    by_id = find_sent(journal, Bounce(("a@example.com",), "", ("<one@us>",)), WHEN)
    assert by_id is not None and by_id[1]["id"] == first
    by_recipient = find_sent(journal, Bounce(("a@example.com",), "", ("<theirs@x>",)), WHEN)
    assert by_recipient is not None and by_recipient[1]["id"] == second
    assert find_sent(journal, Bounce(("a@example.com",), "", ()), WHEN + timedelta(days=9)) is None
    assert find_sent(journal, Bounce(("nobody@example.com",), "", ()), WHEN) is None


def test_the_requester_writing_again_ends_the_unreachable_state(tmp_path: Path):
    journal = Journal.scratch(tmp_path)
    journal.add_event(2569, 1, kind="registered", actor="service", now=WHEN,
                      state=matters.AWAITING_DOCUMENTS)
    with_phone = matters.mail_bounced(journal, 2569, 1, recipient="a@example.com", reason="x",
                                      kind="acknowledgement", phones=("081-234-5678",),
                                      requester=True, now=WHEN)
    assert not with_phone and journal.state_of(2569, 1) == matters.AWAITING_DOCUMENTS
    assert matters.mail_bounced(journal, 2569, 1, recipient="a@example.com", reason="x",
                                kind="request_documents", phones=(), requester=True, now=WHEN)
    assert journal.state_of(2569, 1) == matters.UNREACHABLE
    assert matters._before_bounce(journal, 2569, 1) == matters.AWAITING_DOCUMENTS

"""Bounces as mail servers send them, built with the stdlib email package: an RFC 3464
report (Postfix, Exchange Online, Gmail), Postfix's older plain-text form with the original
attached, and the old Exchange form that quotes the recipient in its text."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime

AGENCY = "saraban@nongtuayang.go.th"


def _returned(original: bytes) -> Message:
    return email.message_from_bytes(original, policy=email.policy.SMTP)


def _envelope(sender: str, subject: str, when: datetime, mid: str) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = mid
    msg["Auto-Submitted"] = "auto-replied"
    return msg


def rfc3464(original: bytes, recipient: str, when: datetime, *, action: str = "failed",
            status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient "
            "address rejected: User unknown in virtual mailbox table",
            headers_only: bool = True, returned: bool = True) -> bytes:
    """Postfix's DSN: text, message/delivery-status, and the original's headers
    (text/rfc822-headers) or the whole original (message/rfc822), or nothing of it
    (RET=HDRS not honoured, a relay that strips it)."""
    msg = _envelope("Mail Delivery System <MAILER-DAEMON@mail.nongtuayang.go.th>",
                    "Undelivered Mail Returned to Sender", when,
                    f"<dsn.{when:%d%H%M%S}@mail.nongtuayang.go.th>")
    msg.set_content(
        "This is the mail system at host mail.nongtuayang.go.th.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n")
    msg.make_mixed()
    msg.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
    status_part = Message()
    status_part["Content-Type"] = "message/delivery-status"
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mail.nongtuayang.go.th"
    per_message["Arrival-Date"] = format_datetime(when)
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = "dns; mx.example.com"
    per_recipient["Diagnostic-Code"] = diagnostic.format(r=recipient)
    status_part.set_payload([per_message, per_recipient])
    msg.attach(status_part)
    if not returned:
        pass
    elif headers_only:
        head = original.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in original else (
            original.split(b"\n\n", 1)[0])
        returned = Message()
        returned["Content-Type"] = "text/rfc822-headers"
        returned.set_payload(head.decode("ascii", "replace"))
        msg.attach(returned)
    else:
        wrapper = Message()
        wrapper["Content-Type"] = "message/rfc822"
        wrapper.set_payload([_returned(original)])
        msg.attach(wrapper)
    return msg.as_bytes()


def postfix_plain(original: bytes, recipient: str, when: datetime) -> bytes:
    """The plain-text form: no delivery-status part; the original attached as message/rfc822."""
    msg = _envelope("MAILER-DAEMON@mail.example.net (Mail Delivery System)",
                    "Undelivered Mail Returned to Sender", when,
                    f"<plain.{when:%d%H%M%S}@mail.example.net>")
    del msg["Auto-Submitted"]
    msg.set_content(
        "This is the mail system at host mail.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "                   The mail system\n\n"
        f"<{recipient}>: host mx.example.com[192.0.2.7] said: 550 5.1.1\n"
        "    mailbox unavailable (in reply to RCPT TO command)\n")
    msg.add_attachment(_returned(original))
    return msg.as_bytes()


def exchange_legacy(original: bytes, recipient: str, when: datetime) -> bytes:
    """Exchange's older non-delivery report (5.5/2000): the recipient only in the text,
    the original attached."""
    returned = _returned(original)
    msg = _envelope("System Administrator <postmaster@exchange.example.org>",
                    "Undeliverable: " + str(returned["Subject"]), when,
                    f"<ndr.{when:%d%H%M%S}@exchange.example.org>")
    del msg["Auto-Submitted"]
    sent = format_datetime(when)
    msg.set_content(
        "Your message\n\n"
        "  To:      Somchai\n"
        "  Subject: (the acknowledgement)\n"
        f"  Sent:    {sent}\n\n"
        "did not reach the following recipient(s):\n\n"
        f"{recipient} on {sent}\n"
        "    The recipient name is not recognized\n"
        "    The MTS-ID of the original message is: c=TH;a= ;p=Example;l=SERVER0426\n"
        "    MSEXCH:IMS:Example:EXAMPLE:SERVER 0 (000C05A6) Unknown Recipient\n")
    msg.add_attachment(returned)
    return msg.as_bytes()

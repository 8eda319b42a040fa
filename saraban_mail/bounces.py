"""Delivery failures read from a bounce: which of our mails it reports on (the Message-ID
of the returned original), to whom it failed, and why, as one `Bounce`.

Pure: the standard forms (RFC 3464 `message/delivery-status`) are read with the stdlib's
email package, the common non-standard ones (Exchange, Postfix, qmail, ...) by flufl.bounce."""

from __future__ import annotations

import email
import email.message
import re
from dataclasses import dataclass
from email.parser import HeaderParser
from email.utils import parseaddr

# Actions of RFC 3464 §2.3.3 that say the mail did not arrive and will not.
_FAILED = "failed"
_NOT_FAILURES = {"delayed", "delivered", "relayed", "expanded"}
# A status code of RFC 3463 (5.1.1) or a reply code of SMTP (550), for a reason in plain text.
_CODE = re.compile(r"\b(?:[45]\.\d{1,3}\.\d{1,3}|[45]\d\d)\b")
# A Message-ID line of an original whose headers a non-standard bounce quotes in its text.
_QUOTED_ID = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_BOUNCERS = ("mailer-daemon", "postmaster")


@dataclass(frozen=True)
class Bounce:
    """A report that mail of ours could not be delivered."""

    recipients: tuple[str, ...]  # the addresses it failed for, lower case
    reason: str  # one line, as the reporting server gave it
    original_ids: tuple[str, ...]  # Message-IDs of the returned original, best first

    def to_json(self) -> dict[str, object]:
        return {"recipients": list(self.recipients), "reason": self.reason,
                "original_ids": list(self.original_ids)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Bounce:
        return cls(tuple(data.get("recipients") or ()),  # type: ignore[arg-type]
                   str(data.get("reason") or ""),
                   tuple(data.get("original_ids") or ()))  # type: ignore[arg-type]


def read_bounce(raw: bytes) -> Bounce | None:
    """The bounce this mail is, or None: a delay warning, an auto-reply or a newsletter
    is not one. A report with neither a recipient nor a returned original says nothing
    that could be linked, and is None too."""
    msg = email.message_from_bytes(raw)
    report = _delivery_status(msg)
    original = _original_ids(msg)
    if report is not None:
        failed = [(rcpt, why) for rcpt, action, why in report if action == _FAILED]
        if not failed and all(action in _NOT_FAILURES for _, action, _ in report):
            return None  # "delayed": the server still tries
        recipients = tuple(dict.fromkeys(r for r, _ in failed if r))
        reason = next((why for _, why in failed if why), "")
    else:
        recipients, reason = _non_standard(msg)
        if not recipients and not (original and _from_bouncer(msg)):
            return None
    if not recipients and not original:
        return None
    return Bounce(recipients, (reason or _reason_in_text(msg, recipients)
                               or str(msg.get("Subject", "")).strip())[:300], original)


def _delivery_status(msg: email.message.Message) -> list[tuple[str, str, str]] | None:
    """(recipient, action, reason) of each per-recipient block of an RFC 3464 report."""
    found = None
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
            continue
        found = found or []
        payload = part.get_payload()
        blocks: list[email.message.Message] = (
            [b for b in payload if isinstance(b, email.message.Message)]
            if isinstance(payload, list) else  # unparsed: the stdlib left it as text
            [HeaderParser().parsestr(b) for b in str(payload).split("\n\n") if b.strip()])
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            recipient = _typed_address(block.get("Final-Recipient") or block.get(
                "Original-Recipient") or "")
            action = str(block.get("Action", "")).strip().lower()
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            _, _, diagnostic = diagnostic.rpartition(";") if ";" in diagnostic[:12] else (
                "", "", diagnostic)
            status = str(block.get("Status", "")).strip()
            why = diagnostic.strip() or (f"status {status}" if status else "")
            if recipient or action:
                found.append((recipient, action, why))
    return found


def _typed_address(value: str) -> str:
    """"rfc822; someone@example.com" → someone@example.com."""
    value = " ".join(str(value).split())
    _, _, address = value.partition(";") if ";" in value else ("", "", value)
    return parseaddr(address.strip())[1].lower()


def _non_standard(msg: email.message.Message) -> tuple[tuple[str, ...], str]:
    """The permanent failures flufl.bounce's detectors find in the other forms."""
    from flufl.bounce import all_failures

    try:
        _, permanent = all_failures(msg)
    except Exception:  # a detector that trips on odd mail: no recipient, the rest still links
        return (), ""
    recipients = sorted(a.decode("ascii", "replace").lower() for a in permanent)
    return tuple(r for r in recipients if "@" in r), ""


def _original_ids(msg: email.message.Message) -> tuple[str, ...]:
    """The returned original's Message-ID: in a message/rfc822 or text/rfc822-headers
    part, else quoted in the text (Exchange's "Original message headers")."""
    ids: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, email.message.Message) and inner.get("Message-ID"):
                ids.append(str(inner["Message-ID"]).strip())
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            headers = HeaderParser().parsestr(_text(part))
            if headers.get("Message-ID"):
                ids.append(str(headers["Message-ID"]).strip())
    if not ids:
        for part in msg.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                ids += _QUOTED_ID.findall(_text(part))
    return tuple(dict.fromkeys(ids))


def _from_bouncer(msg: email.message.Message) -> bool:
    sender = parseaddr(str(msg.get("From", "")))[1].lower()
    return (sender.partition("@")[0] in _BOUNCERS
            or str(msg.get("Return-Path", "")).strip() == "<>")


def _reason_in_text(msg: email.message.Message, recipients: tuple[str, ...]) -> str:
    """The line of the human-readable part with an error code, else the one naming a failed
    recipient, with the indented lines that continue it."""
    for part in msg.walk():
        if part.get_content_type() != "text/plain":
            continue
        lines = _text(part).splitlines()
        for wanted in (lambda s: bool(_CODE.search(s)),
                       lambda s: any(r in s.lower() for r in recipients)
                       and not s.lower().startswith(("to:", "cc:"))):
            for index, line in enumerate(lines):
                if line.strip() and wanted(line.strip()):
                    found = [line]
                    for after in lines[index + 1:index + 2]:
                        if not after[:1].isspace() or not after.strip():
                            break
                        found.append(after)
                    return " ".join(" ".join(found).split())
        return ""
    return ""


def _text(part: email.message.Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload())
    return data.decode(part.get_content_charset() or "utf-8", "replace")

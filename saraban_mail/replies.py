"""Replies: render the bilingual templates and build the RFC 5322 message to send.

Every reply threads to the original, carries Auto-Submitted (RFC 3834) and never
copies a citizen's CR/LF into a header of ours."""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from saraban_mail.errors import TemplateError
from saraban_mail.rules import default_dir


@dataclass(frozen=True)
class Reply:
    kind: str
    recipient: str
    message_id: str
    raw: bytes


class Templates:
    """Templates from the configured folder, falling back to the shipped ones."""

    def __init__(self, folder: Path) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([
                jinja2.FileSystemLoader(str(folder)),
                jinja2.FileSystemLoader(str(default_dir("templates"))),
            ]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # plain text mail
        )

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """(subject, body) of template `name`: its first line is 'Subject: ...'."""
        try:
            text = self.env.get_template(f"{name}.txt.j2").render(**context)
        except jinja2.TemplateNotFound:
            raise TemplateError(f"template {name}.txt.j2 is missing") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {name}.txt.j2: {exc}") from None
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise TemplateError(f"template {name}.txt.j2 must start with a 'Subject:' line")
        return one_line(first.removeprefix("Subject:")), re.sub(r"\n{3,}", "\n\n", body.strip("\n"))


def one_line(text: str) -> str:
    return " ".join(text.split())[:900]


@dataclass(frozen=True)
class Envelope:
    """Who we are and what we answer."""

    from_name: str
    from_addr: str
    domain: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()


def build(kind: str, to: str, subject: str, body: str, sender: Envelope, now: datetime,
          *, attach: bytes | None = None, auto: str | None = "auto-replied",
          files: tuple[tuple[str, str, bytes], ...] = (), message_id: str = "",
          headers: dict[str, str] | None = None) -> Reply:
    """One message: `attach` forwards a whole mail; `files` are (name, type, bytes);
    `headers` are further ones (X-Saraban-Receipt of a forward to a unit)."""
    extra = headers or {}
    message_id = message_id or make_msgid(idstring=kind.replace("_", "-"), domain=sender.domain)
    headers = {
        "From": formataddr((sender.from_name, sender.from_addr), charset="utf-8"),
        "To": to,
        "Subject": one_line(subject),
        "Date": format_datetime(now),
        "Message-ID": message_id,
    }
    if sender.in_reply_to:
        headers["In-Reply-To"] = sender.in_reply_to
    thread = [r for r in (*sender.references, sender.in_reply_to) if r]
    if thread:
        headers["References"] = " ".join(dict.fromkeys(thread))[-900:].lstrip()
    headers |= extra
    if auto:
        headers["Auto-Submitted"] = auto
        headers["X-Auto-Response-Suppress"] = "All"
    if files:
        return Reply(kind, to, message_id, _with_files(headers, body, files))
    msg = EmailMessage(policy=email.policy.SMTP)
    for name, value in headers.items():
        _set_header(msg, name, value)
    msg.set_content(body, charset="utf-8", cte="8bit" if body.isascii() else "base64")
    if attach is not None:
        original = email.message_from_bytes(attach, policy=email.policy.default)
        msg.add_attachment(original, filename="original.eml")
    return Reply(kind, to, message_id, msg.as_bytes())


def _set_header(msg: EmailMessage, name: str, value: str) -> None:
    """A header folded once. Given as text, the modern policy parses each value into a
    tree and folds it again on output: most of the time a reply takes to build."""
    if "\r" in value or "\n" in value:
        msg[name] = value  # which refuses it
    elif value.isascii() and len(name) + 2 + len(value) <= 78:
        msg.set_raw(name, value)  # nothing to fold or encode: the policy would write the same
    elif name == "From":
        msg.set_raw(name, _folded(name, value))  # the same for every reply
    elif name == "Subject":
        msg.set_raw(name, Header(value, "utf-8", header_name=name).encode(linesep="\r\n"))
    else:
        msg[name] = value


@functools.lru_cache(maxsize=8)
def _folded(name: str, value: str) -> str:
    return email.policy.SMTP.fold(name, value).removeprefix(f"{name}: ").removesuffix("\r\n")


def _with_files(headers: dict[str, str], body: str,
                files: tuple[tuple[str, str, bytes], ...]) -> bytes:
    """Built with the compat32 classes, which keep parameters as given: Outlook shows a
    name given only as RFC 2231 filename* as "Untitled Attachment", so Content-Type also
    carries name= as an RFC 2047 encoded word, which the modern policy would re-encode."""
    outer = MIMEMultipart()
    for name, value in headers.items():
        if name == "Subject":
            outer[name] = Header(value, "utf-8")  # type: ignore[assignment]  # folded by compat32
        else:
            outer[name] = value
    outer.attach(MIMEText(body, "plain", "utf-8"))
    for filename, content_type, data in files:
        maintype, subtype = content_type.split("/", 1)
        part = (MIMEImage(data, _subtype=subtype) if maintype == "image"
                else MIMEApplication(data, _subtype=subtype))
        part.set_param("name", encoded_word(filename))
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
        outer.attach(part)
    return outer.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


def encoded_word(text: str) -> str:
    if text.isascii():
        return text
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="

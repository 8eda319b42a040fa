"""Replies: render the bilingual templates and build the RFC 5322 message to send.

Every reply threads to the original, carries Auto-Submitted (RFC 3834) and never
copies a citizen's CR/LF into a header of ours."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
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
          *, attach: bytes | None = None, auto: str = "auto-replied") -> Reply:
    msg = EmailMessage(policy=email.policy.SMTP)
    message_id = make_msgid(idstring=kind.replace("_", "-"), domain=sender.domain)
    msg["From"] = formataddr((sender.from_name, sender.from_addr))
    msg["To"] = to
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if sender.in_reply_to:
        msg["In-Reply-To"] = sender.in_reply_to
    thread = [r for r in (*sender.references, sender.in_reply_to) if r]
    if thread:
        msg["References"] = " ".join(dict.fromkeys(thread))[-900:].lstrip()
    msg["Auto-Submitted"] = auto
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body, charset="utf-8", cte="8bit" if body.isascii() else "base64")
    if attach is not None:
        original = email.message_from_bytes(attach, policy=email.policy.default)
        msg.add_attachment(original, filename="original.eml")
    return Reply(kind, to, message_id, msg.as_bytes())

"""Stage 9, the administrator's alert: what needs a person (OAuth2 token trouble; Junk,
Trash or Sent not found; the seal's certificate or TSA; a mailbox near its quota; a poll that
could not start), mailed to agency.admin_email at most once a day."""

from __future__ import annotations

import email.policy
import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from saraban_mail import oauth, space
from saraban_mail.config import Config
from saraban_mail.errors import SendError
from saraban_mail.journal import Journal
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.send import Outgoing, Transport
from saraban_mail.space import Usage

log = logging.getLogger("saraban_mail")


def run(ctx: Context, report: PollReport) -> None:
    usage = Usage.from_json(ctx.journal.get_meta("mailbox_space"))
    alert_admin(ctx.journal, ctx.config, ctx.transport, ctx.clock(),
                oauth.warnings(ctx.config, ctx.clock()) + list(ctx.mailbox.folders.problems)
                + space.warnings(usage, ctx.config.quota.warn_percent)
                + seal_warnings(ctx))


def seal_warnings(ctx: Context) -> list[str]:
    """The seal's certificate at 30, 14 and 3 days before its end (each tier once), when
    expired, and a TSA that does not answer: asked only when an alert could go today."""
    now, journal = ctx.clock(), ctx.journal
    if (ctx.config.seal.pkcs12 is None or not ctx.config.agency.admin_email
            or journal.get_meta("admin_alerted") == now.date().isoformat()):
        return []
    from saraban_mail import seal

    found = seal.health(ctx.config.seal, now)
    told = journal.get_meta("seal_expiry_tier")
    lines = found.lines
    if found.tier is not None and str(found.tier) == told:
        lines = [line for line in lines if " expires in " not in line]  # this tier was told
    if found.tier is not None:
        journal.set_meta("seal_expiry_tier", str(found.tier))
    return lines


def alert_admin(journal: Journal, config: Config, transport: Transport, now: datetime,
                lines: list[str]) -> None:
    """Tell agency.admin_email what needs a person, at most once a day."""
    to = config.agency.admin_email
    if not to or not lines or journal.get_meta("admin_alerted") == now.date().isoformat():
        return
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.agency.email
    msg["To"] = to
    msg["Subject"] = "saraban-mail: ต้องดำเนินการ / action needed"
    msg["Date"] = now
    msg["Message-ID"] = make_msgid(domain=config.agency.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(["saraban-mail needs a person:", "", *(f"- {line}" for line in lines),
                               "", "saraban-mail status / saraban-mail check show more."]))
    try:
        sent = transport.send_all(config.agency.email, [Outgoing(0, to, msg.as_bytes())])
    except SendError as exc:
        log.warning("cannot tell the administrator: %s", exc)
        return
    if sent and sent[0].ok:
        journal.set_meta("admin_alerted", now.date().isoformat())

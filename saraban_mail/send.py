"""Sending: hand finished messages to the SMTP server (aiosmtplib) or a pickup folder.

A transport only delivers bytes; what to send and when is the pipeline's business."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from saraban_mail.config import Smtp
from saraban_mail.errors import SendError, SendLoginRefused

if TYPE_CHECKING:
    from saraban_mail.oauth import Tokens

log = logging.getLogger("saraban_mail")


@dataclass(frozen=True)
class Outgoing:
    id: int
    recipient: str
    raw: bytes


@dataclass(frozen=True)
class Result:
    id: int
    ok: bool
    permanent: bool = False
    error: str = ""


OnSent = Callable[[Result], None]


class Transport(Protocol):
    def send_all(self, sender: str, mails: list[Outgoing],
                 on_sent: OnSent | None = None) -> list[Result]:
        """Try every mail; raise SendError only when the server cannot be reached.
        on_sent is called the moment the server has accepted each mail, so the journal
        can note it before the next goes: a crash then resends at most the one in hand."""
        ...


class SmtpTransport:
    """Sends over one connection; a connection that cannot be made or drops is tried again
    after each of `delays` seconds, continuing with the message that was in hand."""

    def __init__(self, settings: Smtp, tokens: Tokens | None = None,
                 delays: Sequence[float] = ()) -> None:
        self.s, self.tokens, self.delays = settings, tokens, list(delays)

    def send_all(self, sender: str, mails: list[Outgoing],
                 on_sent: OnSent | None = None) -> list[Result]:
        return asyncio.run(self._send_all(sender, mails, on_sent)) if mails else []

    def check(self) -> str:
        """Connect and log in, send nothing: for `saraban-mail check`."""
        return asyncio.run(self._check())

    async def _check(self) -> str:
        client = await self._connect()
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
        return f"{self.s.host}:{self.s.port} ({self.s.security})"

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.s
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout, tls_context=context,
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
        )
        try:
            await client.connect()
            await self._login(client)
        except aiosmtplib.SMTPAuthenticationError as exc:
            refused = f"SMTP server {s.host} refused the login for '{s.username}'"
            if self.tokens is not None:
                self.tokens.failed(f"{refused} ({s.auth})")
            raise SendLoginRefused(refused) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(f"cannot reach SMTP server {s.host}:{s.port}: {exc}") from exc
        return client

    async def _login(self, client: aiosmtplib.SMTP) -> None:
        s = self.s
        if not s.username:
            return
        if s.auth == "password" or self.tokens is None:
            await client.login(s.username, s.secret())
            return
        for fresh in (False, True):  # a cached access token may have been revoked: renew once
            token = self.tokens.access_token(fresh=fresh)
            try:
                if s.auth == "oauthbearer":
                    await _oauthbearer(client, s.username, token)
                else:
                    await client.auth_xoauth2(s.username, token)
                self.tokens.succeeded()
                return
            except aiosmtplib.SMTPAuthenticationError:
                if fresh:
                    raise

    async def _send_all(self, sender: str, mails: list[Outgoing],
                        on_sent: OnSent | None) -> list[Result]:
        results: list[Result] = []
        waits = iter(self.delays)
        while True:
            done = len(results)
            try:
                await self._send_some(sender, mails[done:], results, on_sent)
            except SendLoginRefused:
                raise
            except SendError as exc:
                wait = next(waits, None)
                if wait is None:
                    if results:  # part went: report the rest as waiting, not the server as down
                        return results
                    raise
                log.warning("%s; trying again in %g s", exc, wait)
                await asyncio.sleep(wait)
                continue
            if len(results) == len(mails) or results[-1].ok or results[-1].permanent:
                return results
            # The connection dropped in the middle: try the message in hand again.
            wait = next(waits, None)
            if wait is None:
                return results
            log.warning("SMTP connection lost (%s); trying again in %g s", results[-1].error, wait)
            results.pop()
            await asyncio.sleep(wait)

    async def _send_some(self, sender: str, mails: list[Outgoing], results: list[Result],
                         on_sent: OnSent | None) -> None:
        client = await self._connect()
        try:
            for mail in mails:
                try:
                    await client.sendmail(sender, [mail.recipient], mail.raw)
                    results.append(Result(mail.id, True))
                    if on_sent is not None:
                        on_sent(results[-1])
                except aiosmtplib.SMTPResponseException as exc:
                    results.append(Result(mail.id, False, exc.code >= 500,
                                          f"{exc.code} {exc.message}"))
                    if exc.code in (421, -1):  # the server closes the connection
                        results[-1] = Result(mail.id, False, False, results[-1].error)
                        return
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    results.append(Result(mail.id, False, True, str(exc)))
                except (aiosmtplib.SMTPException, OSError) as exc:
                    results.append(Result(mail.id, False, False, str(exc)))
                    return  # the connection is gone
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()


async def _oauthbearer(client: aiosmtplib.SMTP, user: str, token: str) -> None:
    """SASL OAUTHBEARER (RFC 7628), which aiosmtplib does not offer by name."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    identity = user.replace("=", "=3D").replace(",", "=2C")
    payload = f"n,a={identity},\x01auth=Bearer {token}\x01\x01".encode()
    response = await client.execute_command(b"AUTH", b"OAUTHBEARER",
                                            base64.b64encode(payload))
    if response.code == 334:  # an error in a challenge: answer with ^A to get the final code
        response = await client.execute_command(base64.b64encode(b"\x01"))
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)


class PickupTransport:
    """Writes each message as an .eml file: the demo's "server"."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send_all(self, sender: str, mails: list[Outgoing],
                 on_sent: OnSent | None = None) -> list[Result]:
        self.folder.mkdir(parents=True, exist_ok=True)
        results = []
        for mail in mails:
            # Time first, so the folder lists in sending order; unique even for one id.
            stamp = f"{time.time_ns()}-{uuid.uuid4().hex[:6]}"
            target = self.folder / f"{stamp}-{mail.recipient.replace('/', '_')}.eml"
            handle, temp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                out.write(mail.raw)
            os.replace(temp, target)
            results.append(Result(mail.id, True))
            if on_sent is not None:
                on_sent(results[-1])
        return results


def transport_for(settings: Smtp, tokens: Tokens | None = None,
                  delays: Sequence[float] = ()) -> Transport:
    return PickupTransport(settings.pickup_dir) if settings.transport == "pickup" else (
        SmtpTransport(settings, tokens, delays)
    )

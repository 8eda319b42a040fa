"""Sending: hand finished messages to the SMTP server (aiosmtplib) or a pickup folder.

A transport only delivers bytes; what to send and when is the pipeline's business."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from saraban_mail.config import Smtp
from saraban_mail.errors import SendError


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


class Transport(Protocol):
    def send_all(self, sender: str, mails: list[Outgoing]) -> list[Result]:
        """Try every mail; raise SendError only when the server cannot be reached."""
        ...


class SmtpTransport:
    def __init__(self, settings: Smtp) -> None:
        self.s = settings

    def send_all(self, sender: str, mails: list[Outgoing]) -> list[Result]:
        return asyncio.run(self._send_all(sender, mails)) if mails else []

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
            if s.username:
                await client.login(s.username, s.secret())
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SendError(f"SMTP server {s.host} refused the login for '{s.username}'") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(f"cannot reach SMTP server {s.host}:{s.port}: {exc}") from exc
        return client

    async def _send_all(self, sender: str, mails: list[Outgoing]) -> list[Result]:
        client = await self._connect()
        results = []
        try:
            for mail in mails:
                try:
                    await client.sendmail(sender, [mail.recipient], mail.raw)
                    results.append(Result(mail.id, True))
                except aiosmtplib.SMTPResponseException as exc:
                    results.append(Result(mail.id, False, exc.code >= 500,
                                          f"{exc.code} {exc.message}"))
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    results.append(Result(mail.id, False, True, str(exc)))
                except (aiosmtplib.SMTPException, OSError) as exc:
                    results.append(Result(mail.id, False, False, str(exc)))
                    break  # the connection is gone: the rest waits for the next poll
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
        return results


class PickupTransport:
    """Writes each message as an .eml file: the demo's "server"."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send_all(self, sender: str, mails: list[Outgoing]) -> list[Result]:
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
        return results


def transport_for(settings: Smtp) -> Transport:
    return PickupTransport(settings.pickup_dir) if settings.transport == "pickup" else (
        SmtpTransport(settings)
    )

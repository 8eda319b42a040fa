"""A dropped IMAP connection in the middle of a stage: connect again and resume.

Stages resume from the journal, so running a step again after a reconnect repeats nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from saraban_mail.errors import LoginRefused, MailboxError
from saraban_mail.poll.context import Context

log = logging.getLogger("saraban_mail")

NETWORK_ERRORS = (MailboxError, IMAPClientError, OSError)
# The connection itself is gone (dropped, timed out, server restarted): worth connecting again.
CONNECTION_LOST = (IMAPClientAbortError, OSError)


def with_reconnect(ctx: Context, what: str, step: Callable[[], object]) -> Exception | None:
    """Run step; when the connection drops, connect again after each of
    network.retry_delays and run it again (steps resume from the journal).
    Returns the last error if it never worked."""
    waits = iter(ctx.config.network.retry_delays)
    while True:
        try:
            step()
            return None
        except CONNECTION_LOST as exc:
            last: Exception = exc
        except NETWORK_ERRORS as exc:  # the server said no: connecting again would not help
            return exc
        while True:
            wait = next(waits, None)
            if wait is None or ctx.stop():
                return last
            log.warning("%s: %s; connecting again in %g s", what, last, wait)
            ctx.sleep(wait)
            try:
                ctx.mailbox.reconnect()
                break
            except LoginRefused as again:
                return again
            except NETWORK_ERRORS as again:
                last = again

"""Which folder is Junk, Trash and Sent on a given server, and what is wrong when one is missing.

Pure decisions over the server's LIST and NAMESPACE answers: by SPECIAL-USE flag (RFC 6154)
where the server gives them, else by the names mail programs and servers use, looked for
within the personal namespace (Courier and Cyrus put every folder under `INBOX.`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The names each folder goes by, most usual first: Dovecot, Zimbra and Thunderbird (Junk,
# Trash, Sent), Exchange and Microsoft 365 (Junk Email / Junk E-mail, Deleted Items, Sent
# Items), Apple (Deleted Messages, Sent Messages), Gmail (Spam, Trash or Bin, Sent Mail under
# [Gmail]/ or [Google Mail]/), Yahoo (Bulk Mail), and Outlook's Thai names.
JUNK_NAMES = ("Junk", "Junk Email", "Junk E-mail", "Junk Mail", "Spam", "Bulk Mail",
              "อีเมลขยะ", "จดหมายขยะ")
TRASH_NAMES = ("Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin",
               "รายการที่ถูกลบ", "ถังขยะ")
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "รายการที่ส่ง",
              "จดหมายที่ส่ง")
# Gmail keeps its own folders under a parent named for the service in some countries.
PARENTS = ("[Gmail]", "[Google Mail]")
NO_SENT = "none"  # imap.sent = "none": the server files sent mail itself (Gmail, Microsoft 365)


@dataclass(frozen=True)
class Listed:
    """One line of the server's LIST answer."""

    name: str
    flags: frozenset[str]  # lower-cased, e.g. "\\junk"
    separator: str = "/"


@dataclass(frozen=True)
class Found:
    """A folder found for a role, and how: "config", "special-use" or "name"."""

    name: str | None
    how: str = ""


def candidates(names: Iterable[str], prefix: str, separator: str, inbox: str = "INBOX"
               ) -> list[str]:
    """Every full name a folder of these names may have on this server: as is, within the
    personal namespace (`INBOX.Junk`), under INBOX (`INBOX/Junk`), under Gmail's parent."""
    found: list[str] = []
    for name in names:
        forms = [name, f"{prefix}{name}" if prefix else name, f"{inbox}{separator}{name}",
                 *(f"{parent}{separator}{name}" for parent in PARENTS)]
        found += [form for form in forms if form not in found]
    return found


def find(listing: list[Listed], flag: str, names: tuple[str, ...], configured: str,
         prefix: str, separator: str) -> Found:
    """The folder for one role: the configured name (also tried within the namespace),
    else the one the server flags, else the first usual name the server has."""
    by_name = {item.name: item for item in listing}
    if configured:
        for name in (configured, f"{prefix}{configured}"):
            if name in by_name:
                return Found(name, "config")
        return Found(None, "config")  # named but absent: the caller says so
    flagged = [item.name for item in listing if flag in item.flags]
    if flagged:
        return Found(flagged[0], "special-use")
    lowered = {item.name.lower(): item.name for item in listing}
    for name in candidates(names, prefix, separator):
        if name.lower() in lowered:
            return Found(lowered[name.lower()], "name")
    return Found(None)


def problems(junk: Found, trash: Found, sent: Found, *, spam_to_trash: bool,
             configured: dict[str, str]) -> list[str]:
    """What a poll must say, every time, about folders it needs and cannot find."""
    lines = []
    for role, found, why in (
        ("junk", junk, "mail in Junk is not read, though reading it twice a day is a duty "
                       "[seed 004 App.3 §2]"),
        ("trash", trash if spam_to_trash else Found("-"), "spam is only marked read"),
        ("sent", sent if configured.get("sent") != NO_SENT else Found("-"),
         "no copy of sent mail is kept in the mailbox (imap.sent = \"none\" if the server "
         "files it itself)"),
    ):
        if found.name:
            continue
        if found.how == "config":
            lines.append(f"imap.{role} = \"{configured.get(role)}\": the server has no such "
                         f"folder: {why}")
        else:
            lines.append(f"no {role} folder found on the server (by SPECIAL-USE flag or usual "
                         f"name): {why}; set imap.{role}")
    return lines

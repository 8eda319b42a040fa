"""The mailbox's space as plain numbers: its use against the quota, and what that means
(a warning at each of quota.warn_percent), for check, status, the alert and the สรุป sheet."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Usage:
    """STORAGE use and limit of the quota root holding INBOX, in KiB (RFC 9208 units)."""

    root: str
    used_kb: int
    limit_kb: int
    at: str = ""  # when it was read (ISO), as noted in the journal

    @property
    def percent(self) -> float:
        return 100.0 * self.used_kb / self.limit_kb if self.limit_kb else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> Usage | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(**data) if data else None


NO_QUOTA = "the server reports no quota (no IMAP QUOTA capability, or no limit on storage)"


def _size(kb: int) -> str:
    return f"{kb / 1024:,.1f} MB" if kb >= 1024 else f"{kb:,} KB"


def line(usage: Usage | None) -> str:
    """One line for a person: 'mailbox space: 870 KB of 1.0 MB (85%)'."""
    if usage is None:
        return f"mailbox space: {NO_QUOTA}"
    return (f"mailbox space: {_size(usage.used_kb)} of {_size(usage.limit_kb)} "
            f"({usage.percent:.0f}%)")


def line_th(usage: Usage | None) -> str:
    """The สรุป sheet's figure, in Thai."""
    if usage is None:
        return "เซิร์ฟเวอร์ไม่แจ้งโควตา"
    return (f"ใช้ {_size(usage.used_kb)} จาก {_size(usage.limit_kb)} ({usage.percent:.0f}%)"
            + (f" ณ {usage.at[:16].replace('T', ' ')}" if usage.at else ""))


def warnings(usage: Usage | None, thresholds: list[int]) -> list[str]:
    """A warning once use reaches the lowest threshold, naming the highest one passed: a
    full mailbox bounces citizens' mail and the agency never learns of it."""
    if usage is None or not usage.limit_kb:
        return []
    passed = [t for t in sorted(thresholds) if usage.percent >= t]
    if not passed:
        return []
    urgent = " URGENT: when it is full, citizens' mail bounces" if passed[-1] == max(
        thresholds) else ""
    return [f"{line(usage)}: over {passed[-1]}%.{urgent} Run `saraban-mail archive "
            "--older-than 12m`, or ask the mail provider for more space"]

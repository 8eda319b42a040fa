"""The categories a message can fall in, and which of them are registered.

Apart from `classify` so that the journal and `status` can name a category without
loading the mail parser."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    SPAM = "spam"
    AUTOMATED = "automated"
    WRONG_AGENCY_FORWARD = "wrong_agency_forward"
    WRONG_AGENCY = "wrong_agency"
    WRONG_CHANNEL = "wrong_channel"
    OFFICIAL_LETTER = "official_letter"  # หนังสือราชการ from another state agency
    VALID = "valid"
    NEEDS_REVIEW = "needs_review"

    @property
    def registered(self) -> bool:
        """ลงทะเบียนรับ: only requests that are ours get a receipt number."""
        return self in REGISTERED


REGISTERED = (Category.VALID, Category.WRONG_CHANNEL, Category.OFFICIAL_LETTER)

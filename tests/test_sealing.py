"""The pure decisions about a result file (sealing.py): what is done to it, the register's
line about it, the certificate's warning tiers, and what a signature report says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from saraban_mail.sealing import SignatureInfo, expiry_tier, handling, intake_note, seal_line


@pytest.mark.parametrize(("signed", "protect", "seal", "expected"), [
    (False, False, True, (False, True, False)),
    (False, True, True, (True, True, False)),  # encrypted, then sealed
    (True, False, True, (False, True, False)),  # sealed incrementally, never rewritten
    (True, True, True, (False, True, True)),  # protected by a ZIP, never by rewriting
    (True, True, False, (False, False, True)),
    (False, False, False, (False, False, False)),
])
def test_a_signed_pdf_is_never_encrypted_by_rewriting(signed, protect, seal, expected):
    how = handling(pdf=True, signed=signed, protect=protect, seal=seal)
    assert (how.encrypt, how.seal, how.zip) == expected


def test_an_image_is_neither_sealed_nor_encrypted():
    assert handling(pdf=False, signed=False, protect=False, seal=True).seal is False


@pytest.mark.parametrize(("days", "tier"), [(31, None), (30, 30), (15, 30), (14, 14), (4, 14),
                                            (3, 3), (0, 3), (-2, 3)])
def test_expiry_tiers_are_30_14_and_3_days(days, tier):
    assert expiry_tier(days, [30, 14, 3]) == tier


def test_the_register_line_names_certificate_time_and_digest():
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    line = seal_line(True, subject="เทศบาล", serial="1A", timestamp=at, sha256="ab" * 32)
    assert "ใบรับรอง เทศบาล เลขที่ 1A" in line and "2026-11-30 08:00:00" in line
    assert line.endswith("ab" * 32)
    assert seal_line(False, sha256="cd").startswith("ไม่ได้ประทับตราอิเล็กทรอนิกส์")


def _info(**changes) -> SignatureInfo:
    base = dict(field="Sig1", signer="บริษัท ก", serial="1", signed_at=None, timestamp=None,
                timestamp_ok=None, intact=True, valid=True, trusted=True, revoked=False,
                changed_after=False, later_updates=False)
    return SignatureInfo(**(base | changes))


def test_the_intake_note_says_valid_untrusted_or_broken():
    assert intake_note([_info()], str) == "ลงนามโดย บริษัท ก: ถูกต้อง ไม่มีการประทับเวลา"
    assert "ไม่ทราบผู้ออกใบรับรอง" in intake_note([_info(trusted=False)], str)
    assert "ไม่ถูกต้อง" in intake_note([_info(intact=False)], str)
    assert "ไม่ถูกต้อง" in intake_note([_info(changed_after=True)], str)

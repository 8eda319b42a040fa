"""What happens to a result file before it goes (pure): sealed, encrypted then sealed, sent as
an AES-256 password ZIP, or as it is; and the outgoing register's line about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")


@dataclass(frozen=True)
class Handling:
    encrypt: bool  # pypdf AES-256: rewrites the file, so never for a signed one
    seal: bool  # the agency's seal, an incremental update
    zip: bool  # an AES-256 password ZIP around the file (seed 004 §8 ข้อ ๔)


def handling(*, pdf: bool, signed: bool, protect: bool, seal: bool) -> Handling:
    """A PDF a person signed is never rewritten: protected, it goes in a password ZIP;
    the seal, an incremental update, keeps that signature valid."""
    if not pdf:
        return Handling(encrypt=False, seal=False, zip=False)
    if signed:
        return Handling(encrypt=False, seal=seal, zip=protect)
    return Handling(encrypt=protect, seal=seal, zip=False)


def seal_line(sealed: bool, *, subject: str = "", serial: str = "",
              timestamp: datetime | None = None, sha256: str = "", signed_before: bool = False,
              zipped: bool = False) -> str:
    """One line of the outgoing register's ไฟล์ที่ส่ง about a file: sealed or not, by which
    certificate, the TSA's time, and the SHA-256 of the file as sent."""
    parts = []
    if sealed:
        parts.append(f"ประทับตราอิเล็กทรอนิกส์ ใบรับรอง {subject} เลขที่ {serial}")
        parts.append(f"ประทับเวลา {timestamp:%Y-%m-%d %H:%M:%S %Z}" if timestamp
                     else "ไม่มีการประทับเวลา (TSA)")
    else:
        parts.append("ไม่ได้ประทับตราอิเล็กทรอนิกส์")
    if signed_before:
        parts.append("มีลายมือชื่ออิเล็กทรอนิกส์เดิม ไม่แก้ไขไฟล์")
    if zipped:
        parts.append("ส่งใน ZIP ตั้งรหัสผ่าน AES-256")
    parts.append(f"SHA-256 ที่ส่ง {sha256}")
    return "; ".join(parts)


def expiry_tier(days_left: int, tiers: list[int]) -> int | None:
    """The smallest warning tier (30, 14, 3 days) the certificate has entered, or None."""
    entered = [t for t in tiers if days_left <= t]
    return min(entered) if entered else None


@dataclass(frozen=True)
class SignatureInfo:
    """One signature of a PDF, as a validation service would report it."""

    field: str
    signer: str
    serial: str
    signed_at: datetime | None  # the signer's own claim
    timestamp: datetime | None  # a TSA's token, when there is one
    timestamp_ok: bool | None
    intact: bool  # the signed bytes are unchanged
    valid: bool  # the cryptographic signature checks
    trusted: bool  # the chain reaches a trusted root
    revoked: bool
    changed_after: bool  # the document was changed after signing beyond signing and stamps
    later_updates: bool  # later revisions that only sign or add validation data
    error: str = ""

    @property
    def ok(self) -> bool:
        return (self.intact and self.valid and self.trusted and not self.changed_after
                and not self.revoked and self.timestamp_ok is not False)


def report_lines(info: SignatureInfo, thai: Callable[[datetime], str],
                 english: Callable[[datetime], str]) -> list[str]:
    """Thai and English lines for one signature, in the order a validation service gives."""
    yes_no = {True: ("ผ่าน", "passed"), False: ("ไม่ผ่าน", "failed")}
    signature = info.intact and info.valid and not info.changed_after
    lines = [f"ลายมือชื่อ / signature: {info.signer} (serial {info.serial}, field {info.field})"]
    th, en = yes_no[signature]
    lines.append(f"PDF-Digital Signature: {th} / {en}")
    if info.trusted:
        lines.append("ผู้ออกใบรับรอง: เชื่อถือได้ / issuer: trusted")
    else:
        lines.append("ผู้ออกใบรับรอง: ไม่ทราบผู้ออกใบรับรอง / issuer not trusted here")
    if info.revoked:
        lines.append("ใบรับรองถูกเพิกถอน / the certificate is revoked")
    if info.timestamp is not None:
        at = info.timestamp.astimezone(BANGKOK)
        th, en = yes_no[bool(info.timestamp_ok)]
        lines.append(f"PDF-Timestamp: {th} / {en} ({thai(at)} / {english(at)})")
    else:
        lines.append("PDF-Timestamp: ไม่มี / none"
                     + (f" (เวลาที่ผู้ลงนามระบุ / signer's own time: "
                        f"{english(info.signed_at.astimezone(BANGKOK))})" if info.signed_at else ""))
    if info.changed_after:
        lines.append("เอกสารถูกแก้ไขหลังลงนาม / the document was changed after signing")
    elif info.later_updates:
        lines.append("เอกสารไม่ถูกแก้ไขหลังลงนาม (มีเพียงลายมือชื่อหรือข้อมูลตรวจสอบเพิ่มเติม) / "
                     "not changed after signing (only signatures or validation data added)")
    else:
        lines.append("เอกสารไม่ถูกแก้ไขหลังลงนาม / not changed after signing")
    if info.error:
        lines.append(f"ตรวจสอบไม่ได้ / cannot be checked: {info.error}")
    return lines


def intake_note(infos: list[SignatureInfo], thai: Callable[[datetime], str]) -> str:
    """The incoming register's หมายเหตุ for a signed attachment (seed 002 §3.3(5)-(6)): a
    copy signed under a trusted CA needs no further check with its issuer."""
    parts = []
    for info in infos:
        state = ("ถูกต้อง" if info.ok else "ไม่ถูกต้อง" if not (info.intact and info.valid)
                 or info.changed_after or info.revoked else "ลายมือชื่อถูกต้อง แต่ไม่ทราบผู้ออกใบรับรอง")
        when = (f" ประทับเวลา {thai(info.timestamp.astimezone(BANGKOK))}" if info.timestamp
                else " ไม่มีการประทับเวลา")
        parts.append(f"ลงนามโดย {info.signer}: {state}{when}")
    return "; ".join(parts)

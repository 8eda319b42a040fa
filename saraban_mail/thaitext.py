"""Thai text helpers: Buddhist-era dates, Thai digits, and text normalisation for matching.

Pure functions; used by templates, the register and the rules."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, tzinfo
from typing import Any

MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)
MONTHS_EN = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)
_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def thai_digits(text: str) -> str:
    return text.translate(_THAI_DIGITS)


def thai_date(day: date, *, digits: bool = False) -> str:
    """23 พ.ย. 2569 (or ๒๓ พ.ย. ๒๕๖๙)."""
    text = f"{day.day} {MONTHS_SHORT[day.month - 1]} {day.year + 543}"
    return thai_digits(text) if digits else text


def thai_datetime(moment: datetime, *, digits: bool = False) -> str:
    """23 พ.ย. 2569 เวลา 08.30 น. (Thai writes the time with a dot)."""
    text = f"{thai_date(moment.date())} เวลา {moment:%H.%M} น."
    return thai_digits(text) if digits else text


def thai_iso(text: str | None, tz: tzinfo | None = None) -> str:
    """An ISO date or time as the journal keeps it, for a clerk to read (Buddhist era,
    in the agency's zone); text that is not ISO comes back as it is, None as '-'."""
    if not text:
        return "-"
    try:
        if len(text) == 10:
            return thai_date(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if tz is not None and moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return thai_datetime(moment)


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(T[\d:.]+([+-]\d{2}:\d{2}|Z)?)?")


def readable(value: Any, tz: tzinfo | None = None) -> Any:
    """A value of the journal (an event's detail) as a clerk reads it: ISO dates and
    times in the Buddhist era, a list as its items."""
    if isinstance(value, str) and _ISO.fullmatch(value):
        return thai_iso(value, tz)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def english_date(day: date) -> str:
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"


def english_datetime(moment: datetime) -> str:
    return f"{moment.day} {MONTHS_EN[moment.month - 1]} {moment.year}, {moment:%H:%M}"


def fold(text: str) -> str:
    """Normalise for keyword matching: NFKC (so SARA AM matches either spelling), casefold."""
    return unicodedata.normalize("NFKC", text).casefold()


MONTHS_LONG = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)
# A year above this is Buddhist-era (พ.ศ.): 2569 is 2026.
_BE_FROM, _BE_OFFSET = 2400, 543
_CLOCK = r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})"
_TIME = rf"\s*(?:เวลา\s*)?{_CLOCK}(?:\s*น\.?)?"
_ARABIC_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_FORMS = (
    # 2026-12-02T10:00, 2569-12-02 10:00
    re.compile(rf"(?P<year>\d{{4}})-(?P<month>\d{{1,2}})-(?P<day>\d{{1,2}})(?:T|\s+){_CLOCK}"),
    # 2/12/2569 10.00
    re.compile(rf"(?P<day>\d{{1,2}})/(?P<month>\d{{1,2}})/(?P<year>\d{{4}}){_TIME}"),
    # 2 ธ.ค. 2569 10.00, วันที่ 2 ธันวาคม 2569 เวลา 10.00 น.
    re.compile(rf"(?:วันที่\s*)?(?P<day>\d{{1,2}})\s*(?P<name>[ก-๛.]+)\s*(?:พ\.ศ\.\s*)?"
               rf"(?P<year>\d{{4}}){_TIME}"),
)


def parse_clerk_datetime(text: str, tz: tzinfo) -> datetime:
    """A date and time as a clerk types it, in zone `tz`: "2 ธ.ค. 2569 10.00",
    "2 ธันวาคม 2569 เวลา 10.00 น.", "2/12/2569 10:00", "2569-12-02 10:00" or
    "2026-12-02T10:00". A year above 2400 is Buddhist-era. ValueError says what is wrong."""
    cleaned = " ".join(text.translate(_ARABIC_DIGITS).split())
    for form in _FORMS:
        match = form.fullmatch(cleaned)
        if match:
            break
    else:
        raise ValueError(f"'{text}' is not a date and time: write e.g. 2 ธ.ค. 2569 10.00 or "
                         "2569-12-02 10:00")
    parts = match.groupdict()
    month = int(parts["month"]) if parts.get("month") else _month_of(parts["name"], text)
    year = int(parts["year"])
    if year > _BE_FROM:
        year -= _BE_OFFSET
    try:
        return datetime(year, month, int(parts["day"]), int(parts["hour"]),
                        int(parts["minute"]), tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a date and time ({exc})") from None


def _month_of(name: str, text: str) -> int:
    wanted = name.replace(" ", "")
    for index, (short, long) in enumerate(zip(MONTHS_SHORT, MONTHS_LONG, strict=True), 1):
        if wanted in (short, short.replace(".", ""), long):
            return index
    raise ValueError(f"'{text}': '{name}' is not a Thai month (ม.ค. ... ธ.ค.)")


# A Thai telephone number as people write it: 081-234-5678, 0812345678, 02 123 4567,
# 0 4400 0000, +66 81 234 5678 (Thai digits too); separators one space, dash or dot.
_PHONE = re.compile(r"(?<![\w+])(?:\+66[ -]?(?:\(0\))?[ -]?|0)(\d(?:[ .-]?\d){7,8})(?![\d])")


def phones_in(text: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The telephone numbers in `text`, written the usual way (081-234-5678, 02-123-4567,
    044-123-456), each once; numbers in `exclude` (the agency's own) are left out."""
    def national(match: re.Match[str]) -> str:
        return "0" + re.sub(r"\D", "", match.group(1))

    left_out = {national(m) for e in exclude for m in _PHONE.finditer(e.translate(_ARABIC_DIGITS))}
    found: dict[str, None] = {}
    for match in _PHONE.finditer(text.translate(_ARABIC_DIGITS)):
        digits = national(match)
        mobile = len(digits) == 10 and digits[1] in "689"
        landline = len(digits) == 9 and digits[1] in "234567"
        if (mobile or landline) and digits not in left_out:
            found[_grouped(digits)] = None
    return tuple(found)


def _grouped(digits: str) -> str:
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if digits[1] == "2":  # Bangkok: 02-123-4567
        return f"{digits[:2]}-{digits[2:5]}-{digits[5:]}"
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"

"""Official letters (หนังสือราชการ) from other state agencies: who counts as one, and what a
letter says of itself (ที่, ลงวันที่, the agency, เรื่อง) in its mail or its attached PDF.

Pure functions of text and bytes; `classify` decides with them and the register row shows
them. How a letter is told from a state agency's newsletter: a letter carries a document
number line (ที่ นม ๐๐๒๓/ว ๑๒๓) or a PDF; mail sent in bulk (List-Id, Precedence: bulk,
Auto-Submitted: auto-generated) from a state domain with neither is a newsletter or notice,
which a clerk judges in the review queue rather than the service registering or ignoring it."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import date

from saraban_mail.thaitext import MONTHS_LONG, MONTHS_SHORT

log = logging.getLogger("saraban_mail")

# The first page of a PDF larger than this is not read: a letter is a few hundred kB.
MAX_PDF_BYTES = 15 * 2**20

_DIGIT = "0-9๐-๙"
_TO_ARABIC = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
# ที่ (the document number): the sender's code of two or more Thai consonants (นม, มท, อว,
# สพร.), its office number (๐๐๒๓, ๐๘๑๐.๔), a slash, ว for a circular (หนังสือเวียน), the
# running number. "บ้านเลขที่ 12/3" is an address, not a letter (and has no code).
DOC_NO = re.compile(
    rf"(?<!เลข)ที่\s*[:：]?\s*"
    rf"(?P<no>[ก-ฮ][ก-ฮ.]{{1,6}}\s*[{_DIGIT}][{_DIGIT}.]*\s*/\s*(?:ว\s*\.?\s*)?[{_DIGIT}][{_DIGIT}.]*)"
)
_MONTH_NAMES = "|".join(sorted(
    [re.escape(m) for m in MONTHS_LONG]
    + [re.escape(m) for m in MONTHS_SHORT]
    + [re.escape(m.replace(".", "")) for m in MONTHS_SHORT], key=len, reverse=True))
# ลงวันที่: ๑๒ พฤศจิกายน ๒๕๖๙, 12 พ.ย. 2569, ๑๒ พฤศจิกายน พ.ศ. ๒๕๖๙ (a Buddhist-era year).
THAI_DATE = re.compile(
    rf"(?<![{_DIGIT}])(?P<day>[{_DIGIT}]{{1,2}})\s*(?P<month>{_MONTH_NAMES})\s*"
    rf"(?:พ\s*\.\s*ศ\s*\.\s*)?(?P<year>[{_DIGIT}]{{4}})(?![{_DIGIT}])"
)
SUBJECT_LINE = re.compile(r"^[ \t]*เรื่อง[ \t]*[:：]?[ \t]*(?P<subject>\S.*?)[ \t]*$", re.M)
# ส่วนราชการ: the memo form's line naming the office it comes from.
OFFICE_LINE = re.compile(r"^[ \t]*ส่วนราชการ[ \t]*[:：]?[ \t]*(?P<office>\S.*?)[ \t]*$", re.M)
_AGENCY_WORDS = ("ศาลากลาง", "สำนักงาน", "สำนัก", "กรม", "กระทรวง", "กอง", "องค์การ",
                 "องค์กร", "เทศบาล", "ที่ว่าการ", "มหาวิทยาลัย", "โรงเรียน", "โรงพยาบาล",
                 "สถาบัน", "ศูนย์", "การไฟฟ้า", "การประปา", "ตำรวจ", "สถานี", "ศาล")
_AGENCY = re.compile(rf"^[ \t]*(?P<name>(?:{'|'.join(_AGENCY_WORDS)})[^\n]*?)[ \t]*$")


@dataclass(frozen=True)
class StateSenders:
    """Who is a state agency (rules/state_domains.toml): a domain covers its subdomains."""

    domains: tuple[str, ...] = ()
    addresses: frozenset[str] = frozenset()

    def includes(self, address: str) -> bool:
        address = address.strip().lower()
        if not address or "@" not in address:
            return False
        if address in self.addresses:
            return True
        host = address.rpartition("@")[2].rstrip(".")
        return any(host == d or host.endswith(f".{d}") for d in self.domains)


@dataclass(frozen=True)
class Letter:
    """What an official letter says of itself, for the register's official columns."""

    doc_no: str = ""  # ที่, as written (Thai digits kept)
    doc_date: date | None = None  # ลงวันที่, the letter's own date
    doc_date_text: str = ""  # as written, e.g. "๑๒ พฤศจิกายน ๒๕๖๙"
    agency: str = ""  # จาก
    subject: str = ""  # เรื่อง
    found_in: str = ""  # "subject", "body" or the PDF's file name
    has_pdf: bool = False

    @property
    def is_letter(self) -> bool:
        """What tells a letter from a newsletter: a document number or a PDF."""
        return bool(self.doc_no) or self.has_pdf

    def to_json(self) -> dict[str, object]:
        return {"doc_no": self.doc_no,
                "doc_date": self.doc_date.isoformat() if self.doc_date else None,
                "doc_date_text": self.doc_date_text, "agency": self.agency,
                "subject": self.subject, "found_in": self.found_in, "has_pdf": self.has_pdf}

    @classmethod
    def from_json(cls, data: dict) -> Letter:
        day = data.get("doc_date")
        return cls(doc_no=data.get("doc_no", ""), doc_date=date.fromisoformat(day) if day else None,
                   doc_date_text=data.get("doc_date_text", ""), agency=data.get("agency", ""),
                   subject=data.get("subject", ""), found_in=data.get("found_in", ""),
                   has_pdf=bool(data.get("has_pdf")))


def _tidy(text: str) -> str:
    """PDF text often carries the sara am as nikhahit + sara aa, and odd spacing."""
    return text.replace("\u0e4d\u0e32", "\u0e33").replace("\u00a0", " ")


def document_number(text: str) -> tuple[str, int] | None:
    """The ที่ of a letter and where it ends in `text`, with its spacing made single."""
    match = DOC_NO.search(text)
    if match is None:
        return None
    number = " ".join(match.group("no").split())
    number = re.sub(r"\s*/\s*", "/", number)
    return number, match.end()


def thai_date(text: str, start: int = 0) -> tuple[date, str] | None:
    """The first Thai date in `text` from `start`, as a date and as written."""
    for match in THAI_DATE.finditer(text, start):
        month_name = match.group("month")
        month = next(i for i, (short, long) in enumerate(zip(MONTHS_SHORT, MONTHS_LONG,
                                                             strict=True), 1)
                     if month_name in (short, long, short.replace(".", "")))
        year = int(match.group("year").translate(_TO_ARABIC)) - 543
        try:
            return date(year, month, int(match.group("day").translate(_TO_ARABIC))), \
                " ".join(match.group(0).split())
        except ValueError:
            continue  # 31 เมษายน: not a date
    return None


def _agency_in(text: str, number_end: int) -> str:
    """The agency named by the letter: the memo's ส่วนราชการ line, or the address block
    beside or under the ที่ line (ศาลากลางจังหวัด..., สำนักงาน...)."""
    office = OFFICE_LINE.search(text)
    if office:
        return _clip(office.group("office"))
    if number_end < 0:
        return ""
    rest = text[number_end:]
    same_line, _, after = rest.partition("\n")
    for line in [same_line, *after.split("\n")[:3]]:
        found = _AGENCY.match(line.strip())
        if found:
            return _clip(found.group("name"))
    return ""


def _clip(text: str) -> str:
    # A memo puts ส่วนราชการ, its telephone and ที่ on one line: the office ends before them.
    text = re.split(r"\s{2,}|\s+(?:โทร|ที่\s)", text.strip())[0]
    return text[:120]


def read_letter(subject: str, body: str, pdfs: tuple[tuple[str, str], ...] = (), *,
                sender_name: str = "", sender_domain: str = "") -> Letter:
    """ที่, ลงวันที่, จาก and เรื่อง from the mail's subject, its text and the first page of each
    attached PDF (name, text), in that order; each field from the first source that has it,
    preferring the source of the document number. จาก falls back to the sender's name, then
    its domain; เรื่อง to the mail's subject."""
    sources = [("subject", subject), ("body", _tidy(body))] + [(n, _tidy(t)) for n, t in pdfs]
    doc_no, found_in, ends = "", "", {name: -1 for name, _ in sources}
    for name, text in sources:
        found = document_number(text)
        if found:
            ends[name] = found[1]
            if not doc_no:
                doc_no, found_in = found[0], name
    # The source holding the number first: its date, agency and subject belong together.
    ordered = sorted(sources, key=lambda s: s[0] != found_in) if found_in else sources
    when = None
    for name, text in ordered:
        when = (thai_date(text, max(ends[name], 0)) if ends[name] >= 0 else None) \
            or thai_date(text)
        if when:
            break
    agency = next((a for name, text in ordered if (a := _agency_in(text, ends[name]))), "")
    title = next((m.group("subject") for name, text in ordered if name != "subject"
                  and (m := SUBJECT_LINE.search(text))), "")
    return Letter(
        doc_no=doc_no, doc_date=when[0] if when else None, doc_date_text=when[1] if when else "",
        agency=agency or sender_name or sender_domain,
        subject=" ".join(title.split())[:300] or subject, found_in=found_in,
        has_pdf=bool(pdfs),
    )


def pdf_first_page(data: bytes) -> str:
    """The text of a PDF's first page; '' for a PDF that cannot be read (damaged, encrypted,
    too large): the letter is still registered, its clerk reads the rest."""
    if len(data) > MAX_PDF_BYTES or not data.startswith(b"%PDF"):
        return ""
    try:
        from pypdf import PdfReader  # only when a state agency sent a PDF

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted or not reader.pages:
            return ""
        return reader.pages[0].extract_text() or ""
    except Exception as exc:  # a hostile or damaged PDF is no reason to lose the letter
        log.info("PDF not read: %s", exc)
        return ""

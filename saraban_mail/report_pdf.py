"""The head's report as a printable A4 PDF in Thai: the agency, the period in the Buddhist era,
the tables and a line for the head's signature, with a Thai font embedded.

Why fpdf2: it embeds a TrueType subset and shapes Thai with HarfBuzz (uharfbuzz), so marks
stack right (ที่, ป้), and it needs no system library. WeasyPrint (Pango) also breaks Thai
lines, but it writes the text layer glyph by glyph: the vowel ำ, which HarfBuzz draws as two
glyphs, comes out of the PDF as า ("จานวน"), and a copied or searched word is lost. fpdf2 maps
a cluster's text to its first glyph; the other glyphs of the cluster are given an empty text
below (`_silence_cluster_tails`). fpdf2 breaks lines at spaces only, so lines are cut where
libthai finds word breaks (`thaibreak`)."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saraban_mail.errors import SarabanError
from saraban_mail.report import Report, Table
from saraban_mail.thaibreak import breaks, wrap
from saraban_mail.thaitext import thai_datetime

# Thai fonts with an open licence, best first: Laksaman is TLWG's free TH Sarabun New (the
# government's standard face), from Debian's fonts-tlwg-laksaman-ttf.
FAMILIES = ("TH Sarabun New", "Sarabun", "Laksaman", "Garuda", "Loma", "Norasi")
BREACH_ROWS = 12  # the PDF lists this many breaches; the workbook and CSV list them all


@dataclass(frozen=True)
class Fonts:
    regular: Path
    bold: Path


def find_fonts(configured: str) -> Fonts:
    """[report] font (a .ttf; its bold beside it as NAME-Bold.ttf, if any), else a Thai
    family fontconfig knows."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise SarabanError(f"[report] font: no font file {path}")
        bold = path.with_name(f"{path.stem}-Bold{path.suffix}")
        return Fonts(path, bold if bold.is_file() else path)
    listing = ""
    if shutil.which("fc-list"):
        listing = subprocess.run(["fc-list", "--format", "%{family}\t%{style}\t%{file}\n"],
                                 capture_output=True, text=True, check=False).stdout
    faces: dict[tuple[str, str], Path] = {}
    for line in listing.splitlines():
        family, style, file = (line.split("\t") + ["", ""])[:3]
        if file.lower().endswith((".ttf", ".otf")):
            for name in family.split(","):
                for one in style.split(","):
                    faces.setdefault((name.strip(), one.strip()), Path(file))
    for family in FAMILIES:
        regular = faces.get((family, "Regular")) or faces.get((family, "Book"))
        if regular:
            return Fonts(regular, faces.get((family, "Bold"), regular))
    raise SarabanError("no Thai font for the PDF report: install fonts-tlwg-laksaman-ttf "
                       "(Debian) or set [report] font = \"/path/to/THSarabunNew.ttf\"")


def pdf_bytes(report: Report, fonts: Fonts) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(18, 15, 18)
    pdf.set_auto_page_break(False)
    pdf.add_font("thai", "", str(fonts.regular))
    pdf.add_font("thai", "B", str(fonts.bold))
    pdf.set_text_shaping(True, script="thai", language="tha")
    pdf.set_title(f"รายงานสถิติ {report.period.label}")
    pdf.add_page()
    page = _Page(pdf)
    page.text("รายงานสถิติการรับเรื่องและการให้บริการทางไปรษณีย์อิเล็กทรอนิกส์", 18, bold=True)
    page.text(report.agency, 16, bold=True)
    page.text(f"{report.period.label}  (ข้อมูล ณ {thai_datetime(report.as_of)})", 14)
    if not report.count:
        page.text("ไม่มีเรื่องรับในช่วงเวลานี้", 16, bold=True)
    for table in report.tables:
        if table.key == "breaches":
            if not table.rows:
                continue
            rest = len(table.rows) - BREACH_ROWS
            table = Table(table.key, table.title, table.headers, table.rows[:BREACH_ROWS],
                          f"และอีก {rest} เรื่อง ดูในไฟล์ตาราง" if rest > 0 else "")
        if table.key == "months" and len(table.rows) > 1:  # across the page: months as columns
            table = Table(table.key, f"{table.title} (จำนวนเรื่อง)",
                          tuple(str(r[0]) for r in table.rows), (tuple(r[1] for r in table.rows),))
        page.table(table)
    page.signature()
    out = bytes(pdf.output())
    return _silence_cluster_tails(out, pdf)


class _Page:
    """Lines, tables and the signature on A4 pages, with a new page when one is full."""

    LINE = 6.0  # mm a line of 13-point text takes

    def __init__(self, pdf) -> None:
        self.pdf = pdf
        self.width = pdf.w - pdf.l_margin - pdf.r_margin

    def room(self, height: float) -> None:
        if self.pdf.get_y() + height > self.pdf.h - self.pdf.b_margin:
            self.pdf.add_page()

    def text(self, text: str, size: float, *, bold: bool = False, align: str = "C") -> None:
        self.pdf.set_font("thai", "B" if bold else "", size)
        lines = wrap(text, self.width, self.pdf.get_string_width)
        self.room(len(lines) * size * 0.5)
        for line in lines:
            self.pdf.cell(self.width, size * 0.5, line, align=align, new_x="LMARGIN", new_y="NEXT")

    def table(self, table: Table) -> None:
        pdf = self.pdf
        widths = self._widths(table)
        first = self._row_height(table.rows[0], widths) if table.rows else 0
        self.room(10 + self._row_height(table.headers, widths) + first)  # no lone title
        pdf.ln(2.5)
        self.text(table.title, 15, bold=True, align="L")
        self._row(table.headers, widths, bold=True)
        for row in table.rows:
            if self._row_height(row, widths) + pdf.get_y() > pdf.h - pdf.b_margin:
                pdf.add_page()
                self._row(table.headers, widths, bold=True)
            self._row(row, widths)
        if table.note:
            pdf.set_font("thai", "", 11)
            for line in wrap(table.note, self.width, pdf.get_string_width):
                self.room(5)
                pdf.cell(self.width, 5, line, new_x="LMARGIN", new_y="NEXT")

    def _widths(self, table: Table) -> list[float]:
        """Figures as wide as their widest word or value; names share what is left, in
        proportion to their length, never narrower than their longest word."""
        count = len(table.headers)
        if table.key == "months":
            return [self.width / count] * count
        pdf, pad = self.pdf, 3.0
        pdf.set_font("thai", "B", 13)
        longest_word = [max(_words(h, pdf.get_string_width)) + pad for h in table.headers]
        natural = [pdf.get_string_width(h) + pad for h in table.headers]
        pdf.set_font("thai", "", 13)
        for row in table.rows:
            for i, value in enumerate(row):
                text = _show(value)
                natural[i] = max(natural[i], pdf.get_string_width(text) + pad)
                longest_word[i] = max(longest_word[i], max(_words(text, pdf.get_string_width)) + pad)
        names = [i == 0 or any(isinstance(r[i], str) and r[i] != "-" for r in table.rows)
                 for i in range(count)]
        widths = [0.0 if names[i] else max(14.0, longest_word[i]) for i in range(count)]
        left = self.width - sum(widths)
        wanted = sum(natural[i] for i in range(count) if names[i])
        for i in range(count):
            if names[i]:
                widths[i] = max(longest_word[i], natural[i] * min(1.0, left / wanted))
        widths[0] += self.width - sum(widths)  # what is left (or missing) to the first column
        return widths

    def _cells(self, row, widths, bold: bool = False) -> list[list[str]]:
        self.pdf.set_font("thai", "B" if bold else "", 13)
        return [wrap(_show(v), w - 2.4, self.pdf.get_string_width)
                for v, w in zip(row, widths, strict=True)]

    def _row_height(self, row, widths) -> float:
        return max(len(c) for c in self._cells(row, widths)) * self.LINE + 1

    def _row(self, row, widths, *, bold: bool = False) -> None:
        pdf = self.pdf
        cells = self._cells(row, widths, bold)
        height = max(len(c) for c in cells) * self.LINE + 1
        x, y = pdf.l_margin, pdf.get_y()
        for index, (lines, width) in enumerate(zip(cells, widths, strict=True)):
            pdf.rect(x, y, width, height)
            align = "L" if bold or isinstance(row[index], str) else "R"
            for n, line in enumerate(lines):
                pdf.set_xy(x + 1.2, y + 0.5 + n * self.LINE)
                pdf.cell(width - 2.4, self.LINE, line, align=align)
            x += width
        pdf.set_xy(pdf.l_margin, y + height)

    def signature(self) -> None:
        pdf = self.pdf
        self.room(40)
        pdf.ln(14)
        pdf.set_font("thai", "", 15)
        half = self.width / 2
        for line in ("ลงชื่อ ..............................................",
                     "(..............................................)",
                     "หัวหน้าส่วนราชการ",
                     "วันที่ ........./........................./.............."):
            pdf.set_x(pdf.l_margin + half)
            pdf.cell(half, 8, line, align="C", new_x="LMARGIN", new_y="NEXT")


def _words(text: str, measure) -> list[float]:
    """The width of each piece of text between two places a line may break."""
    cuts = [0, *breaks(text), len(text)]
    return [measure(text[a:b].strip()) for a, b in zip(cuts, cuts[1:], strict=False)] or [0.0]


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _silence_cluster_tails(data: bytes, pdf) -> bytes:
    """Give the glyphs after the first of a shaped cluster an empty text in the font's
    ToUnicode map (fpdf2 leaves them out, and a reader then shows their raw code, e.g. the
    า of ำ as a control character): the cluster's text is already on its first glyph."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    tails = {f"/F{font.i}": sorted(code for glyph, code in font.subset.items()
                                   if glyph is not None and glyph.unicode == ())
             for font in pdf.fonts.values() if hasattr(font, "subset")}
    if not any(tails.values()):
        return data
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    done: set[int] = set()
    for page in writer.pages:
        resources: Any = page["/Resources"]
        for name, ref in resources["/Font"].items():
            font = ref.get_object()
            to_unicode = font.get(NameObject("/ToUnicode"))
            if not tails.get(name) or to_unicode is None or id(to_unicode) in done:
                continue
            stream = to_unicode.get_object()
            entries = "".join(f"<{code:02X}> <>\n" for code in tails[name])
            block = f"{len(tails[name])} beginbfchar\n{entries}endbfchar\n".encode()
            stream.set_data(stream.get_data().replace(b"endcmap", block + b"endcmap", 1))
            done.add(id(to_unicode))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()

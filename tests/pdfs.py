"""Small PDFs for tests: a letter's first page as text that pypdf reads back, Thai included."""

from __future__ import annotations


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is `lines` (Thai too): a Type0 font with Identity-H,
    each glyph id the character's code point, and a ToUnicode map saying so."""
    def hexstr(text: str) -> str:
        return "<" + "".join(f"{ord(c):04X}" for c in text) + ">"
    ops = ["BT", "/F1 14 Tf", "16 TL", "50 800 Td"]
    for line in lines:
        ops += [f"{hexstr(line)} Tj", "T*"]
    ops.append("ET")
    content = "\n".join(ops).encode()
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            b"/CMapName /Identity-UCS def /CMapType 2 def\n"
            b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
            b"2 beginbfrange <0020> <007E> <0020> <0E00> <0E7F> <0E00> endbfrange\n"
            b"endcmap CMapName currentdict /CMap defineresource pop end end\n")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Garuda /Encoding /Identity-H"
        b" /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Garuda /CIDToGIDMap /Identity"
        b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
        b" /DW 500 >>",
        b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"endstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)

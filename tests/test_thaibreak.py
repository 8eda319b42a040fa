"""Where Thai lines break in the PDF report: between words (libthai), and never between a
consonant and its vowel or tone mark, with libthai or without."""

from __future__ import annotations

import unicodedata

from saraban_mail import thaibreak

TEXT = "องค์การบริหารส่วนตำบลได้รับคำขอผ่านไปรษณีย์อิเล็กทรอนิกส์"


def no_split_syllable(lines: list[str]) -> bool:
    return all(unicodedata.category(line[0]) != "Mn" and line[0] not in "ะาำ" for line in lines)


def test_thai_breaks_between_words():
    assert thaibreak.available()  # libthai0: tests/setup-and-run.sh installs it
    lines = thaibreak.wrap(TEXT, 14, len)
    assert "".join(lines) == TEXT
    assert lines[:4] == ["องค์การบริหาร", "ส่วนตำบลได้รับ", "คำขอผ่าน", "ไปรษณีย์"]
    assert all(len(line) <= 14 for line in lines) and no_split_syllable(lines)


def test_without_libthai_lines_break_at_spaces_and_never_inside_a_syllable(monkeypatch):
    monkeypatch.setattr(thaibreak, "_libthai", lambda: None)
    assert thaibreak.wrap("จำนวนเรื่อง ส่งผลแล้ว", 12, len) == ["จำนวนเรื่อง", "ส่งผลแล้ว"]
    lines = thaibreak.wrap(TEXT, 9, len)
    assert "".join(lines) == TEXT and no_split_syllable(lines)

"""The pure parts of progress notices and of the overdue rule: what a clerk typed, and
which matter is late or due soon."""

import pytest

from saraban_mail.progress import Notice, NoticeError, read_line, status_of


def test_a_status_is_found_in_thai_or_english_whatever_the_spaces():
    assert status_of(" อนุมัติ แล้ว ") == "อนุมัติแล้ว"
    assert status_of("Not Approved") == "ไม่อนุมัติ"
    with pytest.raises(NoticeError, match="ไม่รู้จักสถานะ.*อยู่ระหว่างพิจารณา"):
        status_of("เสร็จแล้วจ้า")


def test_a_line_is_a_status_and_an_optional_free_text():
    assert read_line("อยู่ระหว่างพิจารณา") == Notice("อยู่ระหว่างพิจารณา")
    assert read_line("อนุมัติแล้ว - รับได้ที่ห้อง 2-3") == Notice("อนุมัติแล้ว", "รับได้ที่ห้อง 2-3")
    assert read_line("ไม่อนุมัติ– ขาดเอกสาร").text == "ขาดเอกสาร"

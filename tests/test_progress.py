"""The pure parts of progress notices and of the overdue rule: what a clerk typed, and
which matter is late or due soon."""

from datetime import date

import pytest

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.overdue import Standing, for_heads
from saraban_mail.progress import Notice, NoticeError, read_line, status_of
from saraban_mail.units import Unit, Units

CAL = BusinessCalendar()


def test_a_status_is_found_in_thai_or_english_whatever_the_spaces():
    assert status_of(" อนุมัติ แล้ว ") == "อนุมัติแล้ว"
    assert status_of("Not Approved") == "ไม่อนุมัติ"
    with pytest.raises(NoticeError, match="ไม่รู้จักสถานะ.*อยู่ระหว่างพิจารณา"):
        status_of("เสร็จแล้วจ้า")


def test_a_line_is_a_status_and_an_optional_free_text():
    assert read_line("อยู่ระหว่างพิจารณา") == Notice("อยู่ระหว่างพิจารณา")
    assert read_line("อนุมัติแล้ว - รับได้ที่ห้อง 2-3") == Notice("อนุมัติแล้ว", "รับได้ที่ห้อง 2-3")
    assert read_line("ไม่อนุมัติ– ขาดเอกสาร").text == "ขาดเอกสาร"


def standing(number: int, due: date, state: str = "received", unit: str = "works",
             working: bool = True) -> Standing:
    return Standing(2569, number, "x", date(2026, 4, 1), due, working, unit, state)


def test_a_paused_or_closed_matter_is_never_late():
    today = date(2026, 4, 20)
    assert standing(1, date(2026, 4, 10)).overdue(today)
    for state in ("awaiting_documents", "result_sent", "cancelled", "disposed", "to_dispose"):
        assert not standing(1, date(2026, 4, 10), state).overdue(today)
    assert not standing(1, today).overdue(today)  # due today is not late yet


def test_days_late_count_as_the_service_level_counts_and_soon_skips_songkran():
    late = standing(1, date(2026, 4, 10))
    assert late.days_late(date(2026, 4, 16), CAL) == 1  # 13-15 April are Songkran
    assert standing(1, date(2026, 4, 10), working=False).days_late(date(2026, 4, 16), CAL) == 6
    friday = date(2026, 4, 10)
    assert standing(2, date(2026, 4, 20)).due_soon(friday, CAL, 3)
    assert not standing(2, date(2026, 4, 21)).due_soon(friday, CAL, 3)


def test_only_units_with_a_head_address_and_something_to_say_get_a_list():
    units = Units(units=(Unit(id="works", name_th="กองช่าง", head_email="h@x.go.th"),
                         Unit(id="palad", name_th="สำนักปลัด"),
                         Unit(id="finance", name_th="กองคลัง", head_email="f@x.go.th")))
    lists = for_heads([standing(1, date(2026, 4, 1)), standing(2, date(2026, 4, 1), unit="palad")],
                      units, date(2026, 4, 10), CAL, 3)
    assert [(x.unit.id, [s.number for s in x.overdue]) for x in lists] == [("works", [1])]

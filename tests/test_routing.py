"""Routing a request to a service and unit, and its service level (pure: routing.py, sla.py)."""

from datetime import date, datetime

from saraban_mail.calendar import BANGKOK, BusinessCalendar
from saraban_mail.routing import by_clerk, processing_time, route
from saraban_mail.rules import default_dir, load_rules
from saraban_mail.sla import due_date, due_soon, overdue, resumed
from saraban_mail.units import Service, Unit, Units

UNITS = load_rules(default_dir("rules")).units  # the shipped example
CAL = BusinessCalendar()


def test_a_keyword_in_the_subject_or_text_finds_the_service_and_its_unit():
    found = route("ขออนุญาตก่อสร้างบ้านพักอาศัย", "", UNITS)
    assert (found.service, found.unit, found.rule) == ("building_permit", "works",
                                                       "service:building_permit")
    assert "'ขออนุญาตก่อสร้าง'" in found.reason
    by_text = route("สอบถาม", "ขอลงทะเบียนรับ เบี้ยยังชีพ ผู้สูงอายุค่ะ", UNITS)
    assert (by_text.service, by_text.unit) == ("elderly_allowance", "palad")
    assert route("Request", "please send a GARBAGE COLLECTION truck", UNITS).unit == "health"


SERVICES = Units(
    units=(Unit(id="a", name_th="กองเอ"), Unit(id="b", name_th="กองบี")),
    services=(
        Service(id="first", name_th="หนึ่ง", unit="a", keywords=("ถนน",), sla_days=5),
        Service(id="second", name_th="สอง", unit="b", keywords=("ไฟฟ้า", "ถนน"), sla_days=5),
        Service(id="third", name_th="สาม", unit="b", keywords=("น้ำ",),
                subject_patterns=(r"^ประปา",), sla_days=5),
    ))


def test_when_several_match_subject_beats_text_then_more_keywords_then_file_order():
    # "น้ำ" in the subject beats two keywords in the text only.
    assert route("แจ้งเรื่องน้ำ", "ถนน ไฟฟ้า", SERVICES).service == "third"
    # Both in the text: two keywords of "second" beat one of "first".
    assert route("แจ้งเรื่อง", "ถนน ไฟฟ้า", SERVICES).service == "second"
    # One keyword each: the file's order.
    assert route("ถนนชำรุด", "", SERVICES).service == "first"
    # A subject pattern is a subject match.
    found = route("ประปาไม่ไหล", "ถนน ไฟฟ้า", SERVICES)
    assert found.service == "third" and "/^ประปา/" in found.reason


def test_thai_is_matched_whatever_the_sara_am_spelling_and_words_whatever_the_spacing():
    # SARA AM typed as NIKHAHIT + SARA AA, as some keyboards do: the same word.
    assert route("แจ้งเรื่องน\u0e49\u0e4d\u0e32ไม่ไหล", "", SERVICES).service == "third"
    assert route("Request", "a Waste\n   Collection truck, please", UNITS).unit == "health"


def test_nothing_matched_stays_with_the_saraban_desk():
    found = route("สวัสดีครับ", "ขอสอบถามเรื่องทั่วไป", SERVICES)
    assert (found.service, found.unit, found.rule) == (None, None, "unmatched")


def test_a_clerk_names_a_unit_by_id_or_thai_name_and_keeps_the_service_only_if_its_own():
    assert by_clerk("B", SERVICES, "second") is not None
    assert by_clerk("กองบี", SERVICES, "second").service == "second"  # type: ignore[union-attr]
    moved = by_clerk(" กองเอ ", SERVICES, "second")
    assert moved is not None and (moved.unit, moved.service, moved.rule) == ("a", None, "clerk")
    assert by_clerk("กองซี", SERVICES, None) is None


def test_working_days_skip_weekends_and_songkran_calendar_days_end_on_an_open_day():
    waste = UNITS.service("waste_collection")  # 7 working days
    received = datetime(2026, 4, 10, 9, 0, tzinfo=BANGKOK)  # Friday before Songkran
    # Mon 13 - Wed 15 April are Songkran; 16, 17, 20, 21, 22, 23, 24.
    assert due_date(received, waste, CAL).due == date(2026, 4, 24)
    permit = UNITS.service("building_permit")  # 45 calendar days
    # 45 days after 1 May 2026 is Monday 15 June; after 2 May: Tuesday 16 June.
    assert due_date(datetime(2026, 5, 1, 9, tzinfo=BANGKOK), permit, CAL).due == date(2026, 6, 15)
    # 45 days after 16 April is Sunday 31 May (Visakha Bucha), and Monday 1 June is its
    # substitute holiday: the next working day, Tuesday 2 June.
    assert due_date(datetime(2026, 4, 16, 9, tzinfo=BANGKOK), permit, CAL).due == date(2026, 6, 2)


def test_the_time_waiting_for_documents_moves_the_due_date():
    waste = UNITS.service("waste_collection")
    first = due_date(datetime(2026, 4, 20, 9, tzinfo=BANGKOK), waste, CAL)
    assert first.due == date(2026, 4, 29)
    # Asked on Tuesday 21 April, the documents came Monday 27 April: 4 working days paused
    # (22, 23, 24, 27); from 29 April: 30 April, then 1 May (Labour Day) and 4 May
    # (Coronation Day) skipped, 5, 6, 7 May.
    later = resumed(first, date(2026, 4, 21), date(2026, 4, 27), CAL)
    assert later.due == date(2026, 5, 7) and "moved 4 working days" in later.why


def test_overdue_only_when_open_and_not_waiting_for_the_requester():
    today, due = date(2026, 5, 1), date(2026, 4, 30)
    assert overdue(due, "received", today)
    assert not overdue(due, "awaiting_documents", today)
    assert not any(overdue(due, s, today) for s in ("result_sent", "cancelled", "disposed",
                                                    "to_dispose"))
    assert not overdue(date(2026, 5, 1), "received", today)
    assert due_soon(date(2026, 5, 8), "documents_received", today)
    assert not due_soon(date(2026, 5, 9), "received", today)


def test_the_acknowledgement_says_working_days_and_complete_documents():
    th, en = processing_time(UNITS.service("waste_collection"))
    assert th.startswith("ภายใน 7 วันทำการ นับจากวันที่ได้รับเอกสารครบถ้วน")
    assert "7 working days of receiving all required documents" in en
    assert "ภายใน 45 วัน นับจาก" in processing_time(UNITS.service("building_permit"))[0]

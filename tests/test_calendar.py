"""The business calendar: official receipt time and acknowledgement deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from saraban_mail.calendar import (
    BANGKOK,
    BusinessCalendar,
    ack_due,
    buddhist_year,
    official_received_at,
)

CAL = BusinessCalendar()


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BANGKOK)


def test_mail_after_closing_on_friday_counts_from_monday_opening():
    received = bkk(2026, 11, 20, 18, 0)  # Friday
    assert official_received_at(received, CAL) == bkk(2026, 11, 23, 8, 30)
    assert ack_due(received, CAL) == bkk(2026, 11, 23, 10, 0)


def test_mail_within_hours_is_received_at_once_and_due_by_closing():
    received = bkk(2026, 11, 23, 9, 12)
    assert official_received_at(received, CAL) == received
    assert ack_due(received, CAL) == bkk(2026, 11, 23, 16, 30)


def test_mail_before_opening_counts_from_that_mornings_opening():
    received = bkk(2026, 11, 24, 6, 40)
    assert official_received_at(received, CAL) == bkk(2026, 11, 24, 8, 30)
    assert ack_due(received, CAL) == bkk(2026, 11, 24, 10, 0)


def test_mail_at_closing_time_counts_from_the_next_working_day():
    assert official_received_at(bkk(2026, 11, 23, 16, 30), CAL) == bkk(2026, 11, 24, 8, 30)


def test_songkran_holidays_are_skipped():
    received = bkk(2026, 4, 13, 10, 0)
    assert official_received_at(received, CAL) == bkk(2026, 4, 16, 8, 30)


def test_utc_internaldate_is_read_in_bangkok_time():
    # 02:00 UTC is 09:00 in Bangkok: within hours.
    received = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert official_received_at(received, CAL) == bkk(2026, 11, 23, 9, 0)


def test_royal_ploughing_day_is_a_government_holiday():
    assert not CAL.is_working_day(date(2026, 5, 13))


def test_clerk_added_and_removed_holidays_apply():
    cal = BusinessCalendar(added={date(2026, 11, 24): "วันหยุดพิเศษ"},
                           removed=frozenset({date(2026, 12, 31)}))
    assert official_received_at(bkk(2026, 11, 23, 17, 0), cal) == bkk(2026, 11, 25, 8, 30)
    assert cal.is_working_day(date(2026, 12, 31))


def test_opening_hours_come_from_configuration():
    cal = BusinessCalendar(opening=time(8, 0), closing=time(16, 0))
    assert official_received_at(bkk(2026, 11, 20, 16, 15), cal) == bkk(2026, 11, 23, 8, 0)


def test_buddhist_era_year():
    assert buddhist_year(date(2026, 1, 1)) == 2569


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)))
def test_official_time_is_never_earlier_and_always_within_working_hours(naive: datetime):
    received = naive.replace(tzinfo=BANGKOK)
    official = official_received_at(received, CAL)
    assert official >= received
    assert CAL.within_hours(official)
    assert official - received < timedelta(days=15)
    due = ack_due(received, CAL)
    assert official <= due <= CAL.at(official.date(), CAL.closing)

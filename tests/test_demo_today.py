"""The demo as a new user meets it: its mail dated in the days before the run, every
acknowledgement on time, the register's ตอบรับเมื่อ cells and สรุป sheet right at once,
and a second `demo` on the same folder saying so."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import openpyxl
import pytest

from saraban_mail.calendar import BANGKOK, BusinessCalendar, ack_due, official_received_at
from saraban_mail.demo import DEMO_POLL_AT, demo_day, samples
from saraban_mail.layout import stamp
from tests.offices import cli, poll

CALENDAR = BusinessCalendar()


@pytest.mark.parametrize("now", [
    "2026-11-30T20:10",  # a Monday evening
    "2026-11-30T09:00",  # a Monday before the demo's poll time: the Monday before
    "2026-12-05T20:00",  # a Saturday
    "2026-12-08T15:00",  # the Tuesday after Monday 7, the holiday in lieu of Saturday 5 Dec
    "2027-04-15T10:00",  # Songkran
])
def test_demo_mail_is_recent_and_keeps_each_samples_purpose(now):
    moment = datetime.fromisoformat(now).replace(tzinfo=BANGKOK)
    day = demo_day(moment, CALENDAR)
    polled = datetime.combine(day, DEMO_POLL_AT, tzinfo=BANGKOK)
    assert polled <= moment and moment - polled < timedelta(days=10)
    assert CALENDAR.is_working_day(day) and not CALENDAR.is_working_day(day - timedelta(1))
    by_key = {s.key: s for s in samples(day, CALENDAR)}
    for sample in by_key.values():
        assert sample.received_at < polled, sample.key
        if sample.category in ("valid", "wrong_channel"):
            assert ack_due(sample.received_at, CALENDAR) >= polled, sample.key
    after_close = by_key["outlook_874_after_friday_close"].received_at
    assert not CALENDAR.within_hours(after_close) and after_close.date() < day - timedelta(1)
    assert official_received_at(after_close, CALENDAR) == CALENDAR.at(day, CALENDAR.opening)
    assert not CALENDAR.is_working_day(by_key["songkran"].received_at.date())
    assert CALENDAR.within_hours(by_key["building_permit"].received_at)
    assert by_key["gambling_spam"].folder == "Junk" and by_key["legit_in_junk"].folder == "Junk"


def test_fixed_samples_stay_in_april_2026():
    permit = next(s for s in samples() if s.key == "building_permit")
    assert permit.received_at == datetime(2026, 4, 16, 10, 15, tzinfo=BANGKOK)


def test_demo_status_is_clean_and_the_register_is_right_at_once(tmp_path):
    office = tmp_path / "office"
    demo = cli("demo", str(office), "--json")
    assert demo.returncode == 0, demo.stderr
    assert "polled as at" in demo.stderr
    status = json.loads(cli("status", "--config", str(office / "config.toml"), "--json").stdout)
    assert status["acknowledgements"] == {"due": [], "late": []}
    text = cli("status", "--config", str(office / "config.toml")).stdout
    assert "acknowledgements still due: 0, sent late: 0" in text

    path = office / "register" / "incoming-2569.xlsx"
    if not path.exists():  # a demo run in another Buddhist-era year
        path = next((office / "register").glob("incoming-*.xlsx"))
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    titles = [c.value for c in sheet[2]]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert len(rows) == 11
    assert all(isinstance(r[titles.index("ตอบรับเมื่อ")], datetime) for r in rows)
    facts = {r[0]: r[1] for r in book["สรุป"].iter_rows(min_row=19, values_only=True) if r[0]}
    assert facts["ตอบรับภายในกำหนด"] == 11 and facts["ยังไม่ได้ตอบรับ"] == 0
    assert facts["อีเมลตอบกลับที่รอส่ง (ส่งหลังบันทึกทะเบียน)"] == 0

    # A poll that sends nothing does not save the workbook again.
    before = stamp(path)
    assert poll(office / "config.toml").returncode == 0
    assert stamp(path) == before

    again = cli("demo", str(office), "--json")
    assert again.returncode == 0 and again.stdout == ""
    assert "already exists" in again.stderr
    mails = [m.read_bytes() for m in (office / "outbox-mail").glob("*.eml")]
    # The replies, and the requests the example units.toml routed, forwarded to their units.
    forwards = [m for m in mails if b"\nX-Saraban-Receipt:" in m.replace(b"\r\n", b"\n")]
    assert (len(mails) - len(forwards), len(forwards) > 0) == (14, True)

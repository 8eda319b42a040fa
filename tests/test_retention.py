"""The retention core: periods, what is due and from when, the backups a grandfather-father-
son rule keeps, and the registers that no rule ever purges."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saraban_mail.config import Config, Paths
from saraban_mail.retention import Due, Item, RetentionError, add_period, backups_to_keep, due

TABLE = Config().retention.model_dump()


def test_periods_count_days_months_and_years_and_forever_never_ends():
    assert add_period(date(2026, 1, 31), "30d") == date(2026, 3, 2)
    assert add_period(date(2026, 1, 31), "1m") == date(2026, 2, 28)
    assert add_period(date(2024, 2, 29), "10y") == date(2034, 2, 28)
    assert add_period(date(2026, 1, 1), "forever") is None


def test_evidence_counts_from_the_close_of_its_matter_and_records_from_receipt():
    today = date(2026, 6, 1)
    open_matter = Item("identity_evidence", "data/matters/2569-1/a.jpg", date(2026, 1, 5))
    closed = Item("identity_evidence", "data/matters/2569-2/a.jpg", date(2026, 1, 5),
                  closed=date(2026, 4, 1))
    recent = Item("identity_evidence", "data/matters/2569-3/a.jpg", date(2026, 1, 5),
                  closed=date(2026, 5, 20))
    record = Item("request_records", "records/2569/rx-0001.eml", date(2016, 5, 31))
    young = Item("request_records", "records/2569/rx-0002.eml", date(2016, 6, 2))
    found = due([open_matter, closed, recent, record, young], TABLE, today)
    assert [(d.item.ref, d.rule, d.needs_approval) for d in found] == [
        ("data/matters/2569-2/a.jpg", "identity_evidence=30d", False),
        ("records/2569/rx-0001.eml", "request_records=10y", True),
    ]


def test_forever_keeps_a_kind_whatever_its_age():
    table = TABLE | {"attachments": "forever"}
    old = Item("attachments", "data/attachments/x/01-a.pdf", date(1990, 1, 1))
    assert due([old], table, date(2090, 1, 1)) == []


def test_a_register_is_never_due():
    with pytest.raises(RetentionError, match="never purged"):
        due([Item("register", "register/incoming-2569.xlsx", date(2000, 1, 1))], TABLE,
            date(2090, 1, 1))


def test_a_purge_refuses_a_register_whatever_the_rule_says(tmp_path):
    from saraban_mail.journal import Journal
    from saraban_mail.keeping import purge

    config = Config(paths=Paths(data_dir=tmp_path / "data", register_dir=tmp_path / "register"))
    config = config.model_copy(update={"source": tmp_path})
    (tmp_path / "register").mkdir()
    book = tmp_path / "register" / "incoming-2569.xlsx"
    book.write_bytes(b"PK register")
    wrong = Due(Item("request_records", "register/incoming-2569.xlsx", date(2000, 1, 1)),
                date(2010, 1, 1), "request_records=10y", True)
    journal = Journal.open(config.paths.data_dir)
    with pytest.raises(RetentionError, match="register is never purged"):
        purge(config, journal, [wrong], datetime(2030, 1, 1, tzinfo=UTC), "test")
    assert book.read_bytes() == b"PK register" and journal.purges() == []


def test_backups_kept_seven_daily_four_weekly_twelve_monthly():
    days = [date(2026, 11, 30) - timedelta(days=n) for n in range(400)]
    keep = backups_to_keep(days, 7, 4, 12)
    assert set(days[:7]) <= keep
    assert len(keep) <= 7 + 4 + 12
    assert date(2026, 1, 31) in keep  # the newest of a month a year back
    assert date(2025, 10, 31) not in keep  # past the twelve months


@given(st.sets(st.dates(date(2020, 1, 1), date(2030, 1, 1)), min_size=1, max_size=60),
       st.integers(1, 8), st.integers(0, 5), st.integers(0, 13))
def test_the_newest_backup_is_always_kept_and_never_more_than_the_rule(days, daily, weekly,
                                                                       monthly):
    keep = backups_to_keep(days, daily, weekly, monthly)
    assert max(days) in keep and keep <= days
    assert len(keep) <= daily + weekly + monthly


def test_the_table_names_every_kind_and_passwords_are_not_one():
    from saraban_mail.retention import KINDS

    assert set(TABLE) == set(KINDS)
    assert "passwords" not in TABLE  # never stored: nothing to keep or purge


def test_the_daemon_backs_up_once_a_working_day_after_the_afternoon_poll():
    from saraban_mail.calendar import BANGKOK, BusinessCalendar
    from saraban_mail.schedule import backup_due

    cal = BusinessCalendar()
    times = [time(8, 30), time(16, 0)]
    monday = date(2026, 11, 30)
    assert not backup_due(cal, times, datetime(2026, 11, 30, 8, 31, tzinfo=BANGKOK), None)
    assert backup_due(cal, times, datetime(2026, 11, 30, 16, 2, tzinfo=BANGKOK), None)
    assert not backup_due(cal, times, datetime(2026, 11, 30, 16, 2, tzinfo=BANGKOK), monday)
    assert not backup_due(cal, times, datetime(2026, 11, 29, 16, 2, tzinfo=BANGKOK), None)  # Sunday


def test_a_period_written_in_words_is_one_clear_line(tmp_path):
    from saraban_mail.config import load_config
    from saraban_mail.errors import ConfigError

    (tmp_path / "config.toml").write_text('[retention]\nidentity_evidence = "30 days"\n')
    with pytest.raises(ConfigError, match=r'identity_evidence must be a period such as "30d"'):
        load_config(tmp_path / "config.toml")

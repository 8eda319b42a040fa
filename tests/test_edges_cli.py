"""A new user's rough edges at the command line: the config file as Windows saves it,
errors for people, Buddhist-era dates, the first poll's start date, dry runs, JSON logs."""

from __future__ import annotations

from datetime import date

import pytest

from saraban_mail.config import load_config
from saraban_mail.errors import ConfigError
from tests.offices import cli

THAI_NAME = "เทศบาลตำบลหนองตัวอย่าง"


def test_config_saved_with_a_bom_or_as_windows_thai_ansi_is_read(tmp_path):
    config = tmp_path / "config.toml"
    text = f'[agency]\nname_th = "{THAI_NAME}"\n'
    config.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_config(config).agency.name_th == THAI_NAME
    config.write_bytes(text.encode("cp874"))
    assert load_config(config).agency.name_th == THAI_NAME


def test_config_in_an_encoding_that_is_not_thai_is_refused_naming_the_encoding(tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes('[agency]\nname_en = "Ünïcödé"\n'.encode("utf-16"))
    result = cli("check", "--config", str(config))
    assert result.returncode == 2
    assert "not UTF-8 nor Windows Thai (cp874)" in result.stderr and "save it as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_config_mistake_is_reported_at_once_in_words_for_people(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[imap]\nusrname = "saraban"\n[office_hours]\nopen = "8.30"\n'
                      '[policy]\nstart_date = "1 Dec"\n', encoding="utf-8")
    result = cli("poll", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "3 settings to fix" in result.stderr
    assert "imap.usrname: unknown setting (did you mean username?)" in result.stderr
    assert "office_hours.open: use HH:MM, e.g. 08:30" in result.stderr
    assert "policy.start_date: use YYYY-MM-DD" in result.stderr


def test_unknown_section_suggests_the_near_one(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[imapp]\nport = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown section \[imapp\] \(did you mean imap\?\)"):
        load_config(config)


@pytest.mark.parametrize("written", ['"2569-11-30"', "2569-11-30", '"2026-11-30"'])
def test_start_date_in_the_buddhist_era_is_converted(tmp_path, written):
    config = tmp_path / "config.toml"
    config.write_text(f"[policy]\nstart_date = {written}\n", encoding="utf-8")
    assert load_config(config).policy.start_date == date(2026, 11, 30)


def test_a_buddhist_era_date_that_does_not_exist_is_refused_clearly(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[policy]\nstart_date = "2569-02-30"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="policy.start_date: 2569-02-30 is not a date"):
        load_config(config)

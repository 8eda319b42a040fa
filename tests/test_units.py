"""rules/units.toml: the units and services a request is routed to, checked on load."""

from pathlib import Path

import pytest

from saraban_mail.errors import RulesError
from saraban_mail.rules import default_dir, load_rules

UNIT = '[[unit]]\nid = "works"\nname_th = "กองช่าง"\nphone = "044 000 103"\n'
SERVICE = ('[[service]]\nid = "building_permit"\nname_th = "ขออนุญาตก่อสร้าง"\nunit = "{unit}"\n'
           'keywords = ["ขออนุญาตก่อสร้าง"]\nsla_days = 45\nsla_kind = "calendar"\n')


def write(folder: Path, text: str) -> Path:
    (folder / "units.toml").write_text(text, encoding="utf-8")
    return folder


def test_the_shipped_example_names_a_municipality_s_five_units_and_their_services():
    units = load_rules(default_dir("rules")).units
    assert {u.name_th for u in units.units} >= {"สำนักปลัด", "กองคลัง", "กองช่าง",
                                                "กองสาธารณสุขและสิ่งแวดล้อม", "กองการศึกษา"}
    assert units.service("building_permit").sla_days == 45
    assert all(units.unit(s.unit) for s in units.services)


def test_without_units_toml_in_the_rules_folder_nothing_is_routed(tmp_path):
    # The shipped example's addresses belong to no real agency: never a silent fallback.
    assert load_rules(tmp_path).units.services == ()


def test_a_service_of_an_unknown_unit_is_refused_with_file_and_id(tmp_path):
    with pytest.raises(RulesError, match=r"units.toml.*building_permit.*'roads'"):
        load_rules(write(tmp_path, UNIT + SERVICE.format(unit="roads")))


def test_a_service_with_nothing_to_find_it_by_is_refused(tmp_path):
    text = UNIT + SERVICE.format(unit="works").replace('keywords = ["ขออนุญาตก่อสร้าง"]\n', "")
    with pytest.raises(RulesError, match="keywords or subject_patterns"):
        load_rules(write(tmp_path, text))


def test_a_bad_unit_address_or_sla_kind_names_the_key(tmp_path):
    with pytest.raises(RulesError, match=r"id=works.*email"):
        load_rules(write(tmp_path, UNIT + 'email = "works at example"\n'))
    with pytest.raises(RulesError, match="sla_kind"):
        load_rules(write(tmp_path, UNIT + SERVICE.format(unit="works").replace(
            '"calendar"', '"weeks"')))

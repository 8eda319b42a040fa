"""What a clerk reads is Thai and dated in the Buddhist era: the register's ประเภท and
หมายเหตุ cells, and the dates `status` prints; `status` prints lines, not Python values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openpyxl

from saraban_mail.layout import CATEGORY_TH, INCOMING
from tests.offices import by_key, cli, office_with, poll


def incoming_rows(folder: Path) -> dict[str, dict[str, object]]:
    """Each row of the incoming register by its subject, with the cells by column title."""
    sheet = openpyxl.load_workbook(folder / "register" / "incoming-2569.xlsx").worksheets[0]
    titles = [c.title for c in INCOMING.columns]
    rows = {}
    for values in sheet.iter_rows(min_row=3, values_only=True):
        row = dict(zip(titles, values, strict=False))
        rows[str(row["เรื่อง"])] = row
    return rows


def test_register_category_and_remarks_are_thai(tmp_path):
    chosen = [by_key(k) for k in ("building_permit", "e_bidding", "staff_forward",
                                  "withdraw_complaint")]
    config = office_with(tmp_path, chosen)
    assert poll(config).returncode == 0
    rows = incoming_rows(tmp_path)

    permit = rows["ขออนุญาตก่อสร้างอาคาร"]
    assert permit["ประเภท"] == CATEGORY_TH["valid"] == "คำขอ/เรื่องทั่วไป"
    # issue 18: the phone number in the request, for the clerk to try first; issue 22: where
    # the mail is kept as it arrived, and its hash
    number = permit[next(k for k in permit if str(k).startswith("เลขทะเบียนรับ"))]
    kept = tmp_path / "records" / "2569" / f"rx-{number:04d}.eml"
    assert b"somchai.j@gmail.com" in kept.read_bytes()  # the permit request, as it arrived
    sha = hashlib.sha256(kept.read_bytes()).hexdigest()
    assert permit["หมายเหตุ"] == ("รับทางอีเมล\nโทรศัพท์ในคำขอ: 081-234-5678\n"
                                 f"อีเมลต้นฉบับเก็บที่ records/2569/rx-{number:04d}.eml (SHA-256 {sha})")

    bid = rows["ยื่นซองเสนอราคาโครงการถนน คสล."]
    assert bid["ประเภท"] == "ผิดช่องทาง (ลงรับ)"
    assert bid["หมายเหตุ"].startswith(
        "รับทางอีเมล: เป็นเรื่องการยื่นเสนอราคาจัดซื้อจัดจ้าง ช่องทางที่ถูกต้อง: ระบบการจัดซื้อ")

    forward = rows["Fwd: ขอหนังสือรับรองการประกอบกิจการ"]
    assert forward["ประเภท"] == "ผิดช่องทาง (ลงรับ)"
    assert "เจ้าหน้าที่ส่งต่อมา" in forward["หมายเหตุ"]

    withdraw = rows["ขอถอนเรื่องร้องเรียน"]
    assert "เรื่องความเสี่ยงสูง (การถอนเรื่องร้องทุกข์หรือร้องเรียน)" in withdraw["หมายเหตุ"]

    for row in rows.values():  # no rule id, no English reason, no category id
        remarks = str(row["หมายเหตุ"])
        assert "กฎ" not in remarks and "default" not in remarks and "declared" not in remarks
        assert "forwarded by" not in remarks and "_" not in remarks
        assert row["ประเภท"] in CATEGORY_TH.values()


def test_status_prints_readable_lines_with_buddhist_era_dates(tmp_path):
    config = office_with(tmp_path, [by_key("building_permit")])
    poll(config)
    text = cli("status", "--config", str(config)).stdout
    assert "{" not in text and "}" not in text, text
    assert "matters: 1 received" in text, text
    # The sample came on 16 April 2026 and was acknowledged long after: late, in BE.
    assert "1/2569  due 16 เม.ย. 2569 เวลา 16.30 น.  sent " in text, text
    machine = json.loads(cli("status", "--config", str(config), "--json").stdout)
    assert machine["acknowledgements"]["late"][0]["due"].startswith("2026-04-16T16:30")

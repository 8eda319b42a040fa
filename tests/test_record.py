"""The typed record: it reads the JSON journals have always held and writes it back to
the letter, so old journals load and new ones are the same."""

from __future__ import annotations

import json
from datetime import datetime

from saraban_mail.category import Category
from saraban_mail.record import Record

# As the journal held them before the record was typed (written by the earlier code).
WRONG_CHANNEL = (
    '{"message_id": "<bea7@mail.example>", "thread_id": "<bea7@mail.example>", "folder": '
    '"INBOX", "uid": 17, "from": "sales@kosangdee.co.th", "from_name": "บริษัท ก่อสร้างดี จำกัด", '
    '"requester": "sales@kosangdee.co.th", "requester_name": "บริษัท ก่อสร้างดี จำกัด", "subject": '
    '"ยื่นซองเสนอราคาโครงการถนน คสล.", "date_header": "2026-04-16T09:04:00+07:00", "references": '
    '["<a@x>"], "category": "wrong_channel", "rule": "e_bidding", "reason": "declared channel", '
    '"high_risk": false, "high_risk_rule": "", "agency": null, "channel": {"id": "e_bidding", '
    '"keywords": ["ยื่นซองเสนอราคา", "e-bidding"], "name_th": "การยื่นเสนอราคาจัดซื้อจัดจ้าง", '
    '"name_en": "procurement bids", "correct_channel": "e-GP"}, "received_at": '
    '"2026-04-16T09:05:00+07:00", "official_received_at": "2026-04-16T09:05:00+07:00", '
    '"ack_due": "2026-04-16T16:30:00+07:00", "attachments": [{"name": "แบบ.pdf", "type": '
    '"application/pdf", "size": 2078, "sha256": "2d85"}], "planned": ["register", '
    '"acknowledge_wrong_channel", "seen"], "text_sha": "f347", "watched": {"watch": "somchai", '
    '"address": "somchai@nongtuayang.go.th", "arrived_at": "2026-04-16T08:01:02+07:00"}, '
    '"related_receipt": "3/2569", "inquiry": true}'
)
WRONG_AGENCY = (
    '{"message_id": "<74cc@mail.example>", "thread_id": "<74cc@mail.example>", "folder": "Junk", '
    '"uid": "1796.M416P119Q11.vm", "from": "anan.t@gmail.com", "from_name": "Anan", "requester": '
    '"anan.t@gmail.com", "requester_name": "Anan", "subject": "ไฟฟ้าดับทั้งซอย", "date_header": null, '
    '"references": [], "category": "wrong_agency", "rule": "pea", "reason": "matter of PEA", '
    '"high_risk": false, "high_risk_rule": "", "agency": {"id": "pea", "keywords": ["ไฟฟ้าดับ"], '
    '"name_th": "การไฟฟ้าส่วนภูมิภาค", "name_en": "PEA", "contact": "1129", "email": "", '
    '"forward": false}, "channel": null, "received_at": "2026-04-16T19:30:00+07:00", '
    '"official_received_at": "2026-04-17T08:30:00+07:00", "ack_due": null, "attachments": [], '
    '"planned": ["reply_wrong_agency", "seen", "move:INBOX"], "text_sha": "319e"}'
)
# A message the poll failed on: recorded without the text's hash.
INTERNAL_ERROR = (
    '{"message_id": "", "thread_id": "", "folder": "INBOX", "uid": 9, "from": "", "from_name": "", '
    '"requester": "", "requester_name": "", "subject": "", "date_header": null, "references": [], '
    '"category": "needs_review", "rule": "internal_error", "reason": "internal error: boom", '
    '"high_risk": false, "high_risk_rule": "", "agency": null, "channel": null, "received_at": '
    '"2026-04-16T12:00:00+07:00", "official_received_at": "2026-04-16T12:00:00+07:00", "ack_due": '
    'null, "attachments": [], "planned": ["keep_raw", "flag"]}'
)


def test_every_kind_of_journal_record_is_written_back_to_the_letter():
    for text in (WRONG_CHANNEL, WRONG_AGENCY, INTERNAL_ERROR):
        assert Record.from_json(text).to_json() == text


def test_the_record_has_named_typed_fields():
    record = Record.from_json(WRONG_CHANNEL)
    assert record.category is Category.WRONG_CHANNEL and record.category.registered
    assert record.official_received_at == datetime.fromisoformat("2026-04-16T09:05:00+07:00")
    assert record.channel is not None and record.channel.correct_channel == "e-GP"
    assert record.channel.keywords == ("ยื่นซองเสนอราคา", "e-bidding")
    assert record.attachments[0].content_type == "application/pdf"
    assert record.watched is not None and record.watched.arrived_at.hour == 8
    assert record.references == ("<a@x>",)
    assert record.requester_label == "บริษัท ก่อสร้างดี จำกัด <sales@kosangdee.co.th>"
    assert Record.from_json(WRONG_AGENCY).uid == "1796.M416P119Q11.vm"


def test_an_older_record_without_later_fields_still_loads():
    data = json.loads(WRONG_AGENCY)
    for key in ("thread_id", "planned", "text_sha", "high_risk_rule", "from_name"):
        data.pop(key)
    data["agency"]["dropped_setting"] = "no longer in rules/agencies.toml"
    record = Record.from_json(json.dumps(data))
    assert (record.thread_id, record.planned, record.text_sha) == ("", (), None)
    assert record.agency is not None and record.agency.name_th == "การไฟฟ้าส่วนภูมิภาค"
    assert "dropped_setting" not in json.loads(record.to_json())["agency"]


def test_only_registered_mail_carries_its_matter_and_inquiry_keys():
    spam = json.loads(WRONG_AGENCY) | {"category": "spam", "related_receipt": None}
    assert "related_receipt" not in json.loads(Record.from_json(json.dumps(spam)).to_json())
    valid = json.loads(INTERNAL_ERROR) | {"category": "valid"}
    written = json.loads(Record.from_json(json.dumps(valid)).to_json())
    assert written["related_receipt"] is None and written["inquiry"] is False

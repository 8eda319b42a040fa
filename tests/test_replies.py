"""Building replies: headers written once, folded the way every mail program reads back."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.header import decode_header, make_header

import pytest

from saraban_mail.replies import Envelope, build

SENDER = Envelope("เทศบาลตำบลหนองตัวอย่าง Nong Tua Yang Subdistrict Municipality",
                  "saraban@nongtuayang.go.th", "nongtuayang.go.th", "<m1@gmail.com>",
                  tuple(f"<m{n}@gmail.com>" for n in range(1, 30)))
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("subject", [
    "ตอบรับคำขอ เลขรับที่ 123/2569: ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12 หมู่ 3 ตำบลหนองตัวอย่าง"
    " / Acknowledgement of receipt no. 123/2569",
    " ".join(["ก่อสร้าง"] * 30),
    "กกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกก คำขอ ทดสอบ,ทดสอบ (ด่วน) \"quoted\"",
    "=?utf-8?q?looks_encoded?= ขอข้อมูล",
    # Folded by the modern policy, these lost a space between two Thai words.
    "(ด่วน) เลขรับที่ ตอบรับ no. (ด่วน)",
    "no. \"quoted\" Receipt เลขรับที่ คำขอ",
    "Receipt no. 5/2569",
])
def test_subjects_read_back_word_for_word_by_both_decoders(subject):
    raw = build("ack", "citizen@gmail.com", subject, "เรียน ท่าน", SENDER, NOW).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and max(len(line) for line in head.split(b"\r\n")) <= 78
    modern = email.message_from_bytes(raw, policy=email.policy.default)
    legacy = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert str(modern["Subject"]) == subject
    assert str(make_header(decode_header(legacy["Subject"]))) == subject
    assert modern["From"].addresses[0].addr_spec == "saraban@nongtuayang.go.th"
    assert modern["To"].addresses[0].addr_spec == "citizen@gmail.com"
    assert modern["References"].split()[-1] == "<m29@gmail.com>"
    assert modern["Auto-Submitted"] == "auto-replied"
    assert modern.get_content().strip() == "เรียน ท่าน"


def test_a_header_value_with_a_line_break_is_still_refused():
    with pytest.raises(ValueError):
        build("ack", "citizen@gmail.com\r\nBcc: all@x.th", "s", "b", SENDER, NOW)

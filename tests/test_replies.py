"""Building replies: headers written once, folded the way every mail program reads back."""

from __future__ import annotations

import email
import email.policy
import re
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


def _english_halves(tmp_path):
    """Every template rendered with the values the service gives it, for a request whose
    citizen data is in English and whose subject is empty: (name, body, English half)."""
    from pathlib import Path

    from saraban_mail.config import load_config
    from saraban_mail.poll.replying import template_samples
    from saraban_mail.record import Record
    from saraban_mail.replies import Templates
    from saraban_mail.rules import AgencyRule, ChannelRule, default_dir, load_rules
    from saraban_mail.service import calendar_for
    from tests.conftest import CONFIG

    (tmp_path / "config.toml").write_text(CONFIG.format(imap_port=1, account="x", smtp_port=1),
                                          encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    rules = load_rules(default_dir("rules"))
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    record = Record(
        message_id="<m@example>", thread_id="", folder="INBOX", uid=1, from_addr="",
        from_name="", requester="somchai@example.com", requester_name="Somchai Jaidee",
        subject="", date_header=None, references=(), category="valid", rule="default",
        reason="", high_risk=True, high_risk_rule=rules.high_risk[0].id,
        # Thai names beside English ones: the English half must take the English.
        agency=AgencyRule(id="a", name_th="อำเภอเมือง", name_en="Mueang District",
                          contact="0 4400 0001", email="district@example.go.th"),
        channel=ChannelRule(id="c", name_th="ขออนุญาตก่อสร้าง", name_en="building permits",
                            correct_channel="https://permits.example.go.th"),
        received_at=now, official_received_at=now, ack_due=now, attachments=(), planned=(),
    )
    samples = template_samples(config, rules, calendar_for(config, rules), now, record)
    templates = Templates(tmp_path / "no-templates-here")
    separator = "-" * 70
    shipped = [p for p in Path(default_dir("templates")).glob("*.txt.j2")
               if separator in p.read_text(encoding="utf-8")]
    assert len(shipped) >= 11
    for path in sorted(shipped):
        name = path.name.removesuffix(".txt.j2")
        assert name in samples, f"template {name} has no sample in replying.template_samples"
        _, body = templates.render(name, samples[name])
        assert separator in body
        yield name, body, body.split(separator, 1)[1]


def test_the_english_half_of_every_template_carries_no_thai(tmp_path):
    for name, _, english in _english_halves(tmp_path):
        thai = re.findall(r"[^\n]*[\u0e00-\u0e7f][^\n]*", english)
        assert thai == [], f"{name}.txt.j2: Thai in the English half: {thai}"


def test_a_result_says_the_document_may_still_be_asked_for_on_paper(tmp_path):
    [(_, body, english)] = [h for h in _english_halves(tmp_path) if h[0] == "result"]
    assert "ไม่ตัดสิทธิของท่านที่จะขอรับเอกสารฉบับกระดาษ" in body.split("-" * 70)[0]
    assert "ask for the document on paper" in english

"""Classification: every category of the decision table, in its rule order."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from saraban_mail.classify import Category, Identity, classify
from saraban_mail.errors import RulesError
from saraban_mail.parse import parse
from saraban_mail.rules import default_dir, load_rules

RULES = load_rules(default_dir("rules"))
US = Identity(own_addresses=frozenset({"saraban@agency.go.th"}),
              staff=frozenset({"staff@gmail.com"}))


def mail(subject: str = "ขอข้อมูล", body: str = "ขอข้อมูลค่ะ", sender: str = "citizen@gmail.com",
         **headers: str):
    msg = EmailMessage()
    if sender:
        msg["From"] = sender
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return parse(msg.as_bytes())


def decide(message):
    return classify(message, RULES, US)


def test_an_ordinary_request_is_valid_and_names_its_rule():
    d = decide(mail())
    assert (d.category, d.rule, d.requester) == (Category.VALID, "default", "citizen@gmail.com")
    assert d.category.registered


def test_reply_to_is_where_replies_go():
    assert decide(mail(Reply_To="other@gmail.com")).requester == "other@gmail.com"


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"X_Autoreply": "yes"}, {"Precedence": "bulk"},
    {"List_Id": "<news.example.com>"}, {"X_Auto_Response_Suppress": "All"},
])
def test_automated_mail_is_never_answered(headers):
    assert decide(mail(**headers)).category == Category.AUTOMATED


def test_auto_submitted_no_is_a_person():
    assert decide(mail(Auto_Submitted="no")).category == Category.VALID


def test_bounces_and_our_own_address_are_automated():
    assert decide(mail(sender="MAILER-DAEMON@mx.example")).rule == "bounce_sender"
    assert decide(mail(sender="Saraban <saraban@agency.go.th>")).rule == "own_address"


def test_server_spam_flag_and_keyword_rules():
    assert decide(mail(X_Spam_Flag="YES")).rule == "spam_header"
    assert decide(mail("สล็อต เว็บตรง", "เครดิตฟรี")).rule == "th_gambling"
    assert decide(mail("Notice", "Your mailbox is full, click")).rule == "en_phishing"
    assert decide(mail(sender="deals@shop.top")).rule == "bulk_sender_domains"


def test_one_gambling_word_in_a_complaint_is_not_spam():
    d = decide(mail("ร้องเรียนร้านในหมู่บ้าน", "มีการเปิดบ่อนบาคาร่าในหมู่บ้าน ขอให้ตรวจสอบ"))
    assert d.category == Category.VALID


def test_wrong_agency_and_forward_to_an_agency_under_the_same_parent():
    d = decide(mail("ไฟฟ้าดับ"))
    assert (d.category, d.agency.id) == (Category.WRONG_AGENCY, "pea")
    d = decide(mail("บัตรประชาชนหาย ทำอย่างไร"))
    assert (d.category, d.agency.email) == (Category.WRONG_AGENCY_FORWARD,
                                            "saraban@district.example.go.th")


def test_declared_other_channel_is_registered_as_wrong_channel():
    d = decide(mail("ยื่นซองเสนอราคา"))
    assert (d.category, d.rule) == (Category.WRONG_CHANNEL, "e_bidding")
    assert d.category.registered


def test_staff_forward_answers_the_citizen():
    original = EmailMessage()
    original["From"] = "citizen@hotmail.com"
    original["Message-ID"] = "<citizen-1@hotmail.com>"
    original.set_content("ขอข้อมูล")
    outer = EmailMessage()
    outer["From"] = "staff@gmail.com"
    outer["Subject"] = "Fwd"
    outer.set_content("fwd")
    outer.add_attachment(original)
    d = decide(parse(outer.as_bytes()))
    assert (d.category, d.rule, d.requester) == (Category.WRONG_CHANNEL, "staff_forward",
                                                 "citizen@hotmail.com")
    assert d.thread_id == "<citizen-1@hotmail.com>"  # the reply threads to the citizen's mail


def test_conflicting_rules_and_missing_sender_need_review():
    assert decide(mail("ไฟฟ้าดับ และบัตรประชาชนหาย")).rule == "rule_conflict"
    assert decide(mail(sender="")).rule == "no_sender"
    assert decide(mail(Reply_To="saraban@agency.go.th")).rule == "reply_to_self"
    assert decide(parse(b"\xff\xfe")).category in (Category.NEEDS_REVIEW,)


@pytest.mark.parametrize(("text", "rule"), [
    ("ขอให้เปิดเผยข้อมูลส่วนบุคคลของข้าพเจ้า", "personal_data_disclosure"),
    ("ข้าพเจ้าขอสละสิทธิ์การรับเงิน", "legal_right"),
    ("ขอยกเลิกการขออนุญาตตั้งร้าน", "permit_cancellation"),
    ("ขอถอนเรื่องร้องเรียน", "complaint_withdrawal"),
    ("ขอยกเลิกคำร้องที่ยื่นไว้", "request_cancellation"),
    ("Please cancel my request from last week", "request_cancellation"),
])
def test_high_risk_requests_are_flagged(text, rule):
    d = decide(mail("คำขอ", text))
    assert d.high_risk and d.high_risk_rule == rule and d.category == Category.VALID


def test_a_welfare_claim_is_high_risk_only_when_the_agency_enables_the_example_rule(tmp_path):
    claim = mail("ขอรับสิทธิเบี้ยยังชีพผู้สูงอายุ", "ขอใช้สิทธิรับเบี้ยยังชีพค่ะ")
    d = decide(claim)
    assert (d.category, d.high_risk) == (Category.VALID, False)  # seed 000's list: no claims
    shipped = (default_dir("rules") / "high_risk.toml").read_text(encoding="utf-8")
    example = shipped[shipped.index("# [[rule]]"):]
    enabled = shipped.replace(example, "\n".join(
        line.removeprefix("# ") for line in example.splitlines()) + "\n")
    assert 'id = "right_claim"' in enabled.splitlines()
    (tmp_path / "high_risk.toml").write_text(enabled, encoding="utf-8")
    d = classify(claim, load_rules(tmp_path), US)
    assert d.high_risk and d.high_risk_rule == "right_claim"


def test_thai_sara_am_matches_either_spelling():
    # "ยกเลิกคำร้อง" typed with NIKHAHIT + SARA AA instead of SARA AM.
    assert decide(mail("x", "ขอยกเลิกค\u0e4d\u0e32ร้อง")).high_risk


def test_rules_errors_name_the_file_and_key(tmp_path: Path):
    (tmp_path / "agencies.toml").write_text('[[agency]]\nid = "x"\nkeywords = ["a"]\n')
    with pytest.raises(RulesError, match=r"agencies.toml: \[\[agency\]\] #1 \(id=x\): name_th"):
        load_rules(tmp_path)
    (tmp_path / "agencies.toml").write_text("[[agency]\n")
    with pytest.raises(RulesError, match="agencies.toml: not valid TOML"):
        load_rules(tmp_path)


def test_missing_rule_files_fall_back_to_the_shipped_ones(tmp_path: Path):
    assert load_rules(tmp_path).spam == RULES.spam


@pytest.mark.parametrize("subject, automated", [
    ("Automatic reply: ขอข้อมูล", True), ("RE: Out of Office", True),
    ("ตอบกลับอัตโนมัติ: ขอข้อมูล", True), ("Auto-Reply: x", True),
    ("Re: ขอข้อมูล", False), ("Automatic replyx", False),
])
def test_an_auto_reply_without_headers_is_known_by_its_subject_when_it_answers(subject, automated):
    answer = decide(mail(subject=subject, In_Reply_To="<ack-1@agency.go.th>"))
    assert (answer.category == Category.AUTOMATED) is automated
    assert decide(mail(subject=subject)).category == Category.VALID  # not an answer: a request

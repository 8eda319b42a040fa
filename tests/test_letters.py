"""Official letters from state agencies: who is one, what a letter says of itself (ที่,
ลงวันที่, จาก, เรื่อง), and how classify tells a letter from a state newsletter or a bounce."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest

from saraban_mail.calendar import BANGKOK
from saraban_mail.classify import Category, Identity, classify
from saraban_mail.errors import RulesError
from saraban_mail.letters import document_number, pdf_first_page, read_letter, thai_date
from saraban_mail.parse import parse
from saraban_mail.rules import default_dir, load_rules
from tests.pdfs import text_pdf

RULES = load_rules(default_dir("rules"))
US = Identity(own_addresses=frozenset({"saraban@nongtuayang.go.th"}),
              staff=frozenset({"somsri.staff@gmail.com"}))

# A provincial circular as its clerk types it into the mail (ครุฑ form, หนังสือเวียน).
CIRCULAR = """\
ที่ นม ๐๐๒๓/ว ๑๒๓                                   ศาลากลางจังหวัดนครราชสีมา
                                                    ถนนมหาดไทย นม ๓๐๐๐๐

                              ๑๒ พฤศจิกายน ๒๕๖๙

เรื่อง   ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัดแบบบูรณาการ ครั้งที่ ๔/๒๕๖๙

เรียน   นายกเทศมนตรีตำบลทุกแห่ง

อ้างถึง  หนังสือจังหวัดนครราชสีมา ที่ นม ๐๐๒๓/ว ๙๙ ลงวันที่ ๓ ตุลาคม ๒๕๖๙

        ด้วยจังหวัดนครราชสีมากำหนดประชุม ... ในวันที่ ๒๐ พฤศจิกายน ๒๕๖๙
"""
# A memo (บันทึกข้อความ) from a district office, Arabic digits, abbreviated month.
MEMO = """\
บันทึกข้อความ
ส่วนราชการ  ที่ทำการปกครองอำเภอเมืองนครราชสีมา  โทร 0 4424 2020
ที่ นม 0118/2451                    วันที่ 3 ธ.ค. 2569
เรื่อง  ขอความร่วมมือสำรวจข้อมูลผู้สูงอายุ
"""


def mail(sender: str, subject: str, body: str, *, pdf: bytes | None = None,
         **headers: str):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "saraban@nongtuayang.go.th"
    msg["Subject"] = subject
    msg["Message-ID"] = "<letter-1@province.go.th>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    if pdf is not None:
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="letter.pdf")
    return parse(msg.as_bytes())


def decide(message):
    return classify(message, RULES, US)


def test_a_circular_gives_its_number_date_agency_and_subject():
    letter = read_letter("ขอเชิญประชุม", CIRCULAR)
    assert letter.doc_no == "นม ๐๐๒๓/ว ๑๒๓"
    # The letter's own date, not the อ้างถึง letter's nor the meeting's.
    assert letter.doc_date == date(2026, 11, 12)
    assert letter.doc_date_text == "๑๒ พฤศจิกายน ๒๕๖๙"
    assert letter.agency == "ศาลากลางจังหวัดนครราชสีมา"
    assert letter.subject == "ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัดแบบบูรณาการ ครั้งที่ ๔/๒๕๖๙"
    assert letter.found_in == "body" and not letter.has_pdf


def test_a_memo_with_arabic_digits_and_its_office_line():
    letter = read_letter("แจ้งเพื่อทราบ", MEMO)
    assert letter.doc_no == "นม 0118/2451"
    assert letter.doc_date == date(2026, 12, 3)
    assert letter.agency == "ที่ทำการปกครองอำเภอเมืองนครราชสีมา"
    assert letter.subject == "ขอความร่วมมือสำรวจข้อมูลผู้สูงอายุ"


def test_number_and_date_in_the_subject_alone():
    letter = read_letter("ส่งหนังสือ ที่ มท ๐๘๑๐.๔/ว ๒๓๔๕ ลงวันที่ 5 พ.ย. 2569 เรื่อง การจัดงาน",
                         "ตามไฟล์แนบ", sender_name="กรมส่งเสริมการปกครองท้องถิ่น")
    assert letter.doc_no == "มท ๐๘๑๐.๔/ว ๒๓๔๕"
    assert letter.doc_date == date(2026, 11, 5)
    assert letter.agency == "กรมส่งเสริมการปกครองท้องถิ่น"  # the sender's name
    assert letter.subject.startswith("ส่งหนังสือ ที่ มท")  # no เรื่อง line: the mail's subject


@pytest.mark.parametrize("text", [
    "บ้านเลขที่ 12/3 หมู่ที่ 5 ตำบลหนองตัวอย่าง",
    "ที่อยู่ 45/6 ถนนมิตรภาพ",
    "ขอทราบว่าที่ดินแปลง 12/2569 เป็นของใคร",
])
def test_addresses_and_plain_words_are_not_document_numbers(text):
    assert document_number(text) is None


def test_thai_dates_in_every_usual_form():
    assert thai_date("๑ มกราคม พ.ศ. ๒๕๗๐")[0] == date(2027, 1, 1)
    assert thai_date("วันที่ 31 ธ.ค. 2569")[0] == date(2026, 12, 31)
    assert thai_date("31 เมษายน 2569") is None  # not a date
    assert thai_date("12 พย 2569")[0] == date(2026, 11, 12)


def test_the_first_page_of_an_attached_pdf():
    pdf = text_pdf(CIRCULAR.splitlines())
    assert "นม ๐๐๒๓/ว ๑๒๓" in pdf_first_page(pdf)
    assert pdf_first_page(b"%PDF-1.4 damaged") == ""
    assert pdf_first_page(b"not a pdf") == ""


def test_state_senders_come_from_the_rules_file(tmp_path: Path):
    state = RULES.state
    assert state.includes("saraban@nakhonratchasima.go.th")
    assert state.includes("x@go.th") and state.includes("unit@army.mi.th")
    assert state.includes("info@dga.or.th") and state.includes("reg@sut.ac.th")
    assert not state.includes("someone@notgo.th") and not state.includes("a@private.ac.th")
    assert not state.includes("citizen@gmail.com")
    (tmp_path / "state_domains.toml").write_text(
        'domains = ["go.th"]\naddresses = ["abt.example@gmail.com"]\n')
    own = load_rules(tmp_path).state
    assert own.includes("abt.example@gmail.com") and not own.includes("info@dga.or.th")
    (tmp_path / "state_domains.toml").write_text('domains = ["saraban@go.th"]\n')
    with pytest.raises(RulesError, match=r"state_domains.toml: domains: .*not a domain"):
        load_rules(tmp_path)
    (tmp_path / "state_domains.toml").write_text('domain = ["go.th"]\n')
    with pytest.raises(RulesError, match=r"state_domains.toml: domain: Extra inputs"):
        load_rules(tmp_path)


def test_a_circular_through_a_list_is_a_letter_with_a_notice_to_its_person():
    d = decide(mail("งานสารบรรณ จังหวัดนครราชสีมา <saraban@nakhonratchasima.go.th>",
                    "ขอเชิญประชุม", CIRCULAR, List_Id="<circular.nakhonratchasima.go.th>",
                    Precedence="bulk", Reply_To="somchai.k@nakhonratchasima.go.th"))
    assert (d.category, d.rule) == (Category.OFFICIAL_LETTER, "official_letter")
    assert d.requester == "somchai.k@nakhonratchasima.go.th"
    assert d.letter is not None and d.letter.doc_no == "นม ๐๐๒๓/ว ๑๒๓"


def test_no_notice_to_the_list_itself_or_a_no_reply_sender():
    through_list = decide(mail("circular@nakhonratchasima.go.th", "หนังสือเวียน", CIRCULAR,
                               List_Id="<circular.nakhonratchasima.go.th>"))
    assert through_list.category == Category.OFFICIAL_LETTER and through_list.requester == ""
    system = decide(mail("noreply@esaraban.moi.go.th", "หนังสือเข้าใหม่", "มีหนังสือเข้าใหม่",
                         pdf=text_pdf(MEMO.splitlines()), Auto_Submitted="auto-generated"))
    assert system.category == Category.OFFICIAL_LETTER and system.requester == ""
    assert system.letter and system.letter.doc_no == "นม 0118/2451"
    assert system.letter.found_in == "letter.pdf"
    no_reply = decide(mail("no-reply@dla.go.th", "แจ้ง", CIRCULAR))
    assert no_reply.category == Category.OFFICIAL_LETTER and no_reply.requester == ""


def test_a_state_newsletter_goes_to_review_and_a_state_person_is_a_letter():
    news = decide(mail("news@dga.or.th", "จดหมายข่าว DGA ฉบับเดือนพฤศจิกายน",
                       "ติดตามข่าวสารรัฐบาลดิจิทัล", List_Id="<news.dga.or.th>",
                       Precedence="bulk"))
    assert (news.category, news.rule) == (Category.NEEDS_REVIEW, "state_bulk")
    person = decide(mail("somchai.k@nakhonratchasima.go.th", "ขอสำเนาแผนที่", "ขอสำเนาแผนที่ค่ะ"))
    assert person.category == Category.OFFICIAL_LETTER
    assert person.requester == "somchai.k@nakhonratchasima.go.th"
    # The same newsletter from a private sender stays automated, as before.
    assert decide(mail("news@shop.example", "ข่าว", "ข่าว", Precedence="bulk")).category == (
        Category.AUTOMATED)


@pytest.mark.parametrize("sender, headers, rule", [
    ("MAILER-DAEMON@mail.nakhonratchasima.go.th", {"Subject": "Undelivered"}, "bounce_sender"),
    ("saraban@b-town.go.th", {"Auto_Submitted": "auto-replied"}, "auto_submitted"),
    ("director@province.go.th", {"X_Autoreply": "yes"}, "x_autoreply"),
])
def test_answers_and_bounces_from_state_agencies_stay_automated(sender, headers, rule):
    d = decide(mail(sender, headers.pop("Subject", "Re: ขอเชิญประชุม"), CIRCULAR, **headers))
    assert (d.category, d.rule) == (Category.AUTOMATED, rule)


def test_our_own_address_and_our_colleagues_are_not_another_agency():
    assert decide(mail("saraban@nongtuayang.go.th", "x", CIRCULAR)).rule == "own_address"
    colleague = decide(mail("palad@nongtuayang.go.th", "ขออนุญาตลา", "ขออนุญาตลาพักผ่อน"))
    assert colleague.category == Category.VALID


def test_a_numbered_letter_is_not_thrown_away_for_spam_words():
    warning = CIRCULAR + "\nเตือนภัยเว็บพนัน สล็อต บาคาร่า เครดิตฟรี"
    assert decide(mail("saraban@nakhonratchasima.go.th", "เตือนภัย", warning)).category == (
        Category.OFFICIAL_LETTER)
    phishing = decide(mail("admin@mail.go.th", "กล่องจดหมายของคุณเต็ม",
                           "กล่องจดหมายของคุณเต็ม คลิกลิงก์เพื่อยืนยันบัญชี"))
    assert phishing.category == Category.SPAM



def test_several_receipts_in_one_mail_name_each_letters_number(tmp_path):
    from datetime import datetime

    from saraban_mail.config import load_config
    from saraban_mail.poll.replying import template_samples
    from saraban_mail.replies import Templates
    from saraban_mail.service import calendar_for
    from tests.conftest import CONFIG

    (tmp_path / "config.toml").write_text(CONFIG.format(imap_port=1, account="x", smtp_port=1),
                                          encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    now = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)
    samples = template_samples(config, RULES, calendar_for(config, RULES), now)
    templates = Templates(tmp_path / "no-templates-here")
    _, alone = templates.render("letter_receipt", samples["letter_receipt"])
    _, listed = templates.render("acknowledgements", samples["acknowledgements"])
    for body in (alone, listed):
        assert "ที่ นม ๐๐๒๓/ว ๑๒๓ ลงวันที่ ๑๒ พ.ย. ๒๕๖๙" in body

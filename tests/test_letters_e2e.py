"""Official letters from other state agencies against the real Dovecot and SMTP servers
[seed 002 initial tier §2.1]: a circular sent through a list and an e-saraban system's notice
are registered with their ที่ and ลงวันที่ and a receipt notice goes to a person only; a state
newsletter goes to the clerks' review queue; a bounce from a state server stays automated."""

from __future__ import annotations

import email.policy
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl

from saraban_mail.calendar import BANGKOK
from tests.conftest import deliver, imap_client
from tests.pdfs import text_pdf
from tests.test_intake_e2e import records, run_poll
from tests.test_letters import CIRCULAR, MEMO
from tests.test_matters_e2e import sent, set_clock
from tests.test_review_e2e import review_book, type_instructions
from tests.test_review_e2e import rows as review_rows

AGENCY = "saraban@nongtuayang.go.th"
MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK)


def letter(sender: str, subject: str, body: str, n: int, *, pdf: bytes | None = None,
           **headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(MORNING)
    msg["Message-ID"] = f"<letter-{n}@nakhonratchasima.go.th>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    if pdf is not None:
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="หนังสือ.pdf")
    return msg.as_bytes()


def bounce() -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mail.nakhonratchasima.go.th>\r\n"
        f"To: {AGENCY}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(MORNING)}\r\nMessage-ID: <bounce-1@mail.nakhonratchasima.go.th>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nยังส่งไม่ถึงผู้รับ\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mail.nakhonratchasima.go.th\r\n\r\n"
        "Final-Recipient: rfc822; nobody@nakhonratchasima.go.th\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n--b--\r\n"
    ).encode()


def incoming_rows(office: Path) -> list[dict[str, object]]:
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx")[
        "ทะเบียนหนังสือรับ"]
    headings = [c.value for c in sheet[2]]
    return [dict(zip(headings, (c.value for c in row), strict=False))
            for row in sheet.iter_rows(min_row=3) if row[0].value]


def test_letters_from_state_agencies_are_registered_and_a_person_gets_the_receipt_notice(
        office, dovecot, imap_account, smtp, monkeypatch):
    set_clock(monkeypatch, MORNING.replace(hour=10))
    mails = {
        # A provincial circular through the province's list: the author is a person.
        "circular": letter("งานสารบรรณ จังหวัดนครราชสีมา <saraban@nakhonratchasima.go.th>",
                           "ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัด", CIRCULAR, 1,
                           List_Id="หนังสือเวียนจังหวัด <circular.nakhonratchasima.go.th>",
                           List_Post="<mailto:circular@nakhonratchasima.go.th>",
                           Precedence="bulk"),
        # Two e-saraban notices: the letter is the PDF; no person reads the sender.
        "esaraban": letter("ระบบสารบรรณอิเล็กทรอนิกส์ <noreply@esaraban.nakhonratchasima.go.th>",
                           "[e-saraban] มีหนังสือเข้าใหม่", "มีหนังสือเข้าใหม่ โปรดดูไฟล์แนบ", 2,
                           pdf=text_pdf(MEMO.splitlines()), Auto_Submitted="auto-generated"),
        "esaraban2": letter("noreply@esaraban.nakhonratchasima.go.th",
                            "[e-saraban] มีหนังสือเข้าใหม่ (2)", "มีหนังสือเข้าใหม่ โปรดดูไฟล์แนบ",
                            3, pdf=text_pdf(CIRCULAR.splitlines()),
                            Auto_Submitted="auto-generated"),
        "newsletter": letter("DGA News <news@dga.or.th>", "จดหมายข่าวรัฐบาลดิจิทัล ฉบับพฤศจิกายน",
                             "ติดตามข่าวสารและกิจกรรมของสำนักงานพัฒนารัฐบาลดิจิทัล", 4,
                             List_Id="<news.dga.or.th>", Precedence="bulk"),
    }
    for raw in mails.values():
        deliver(dovecot, imap_account, "INBOX", raw, MORNING)
    deliver(dovecot, imap_account, "INBOX", bounce(), MORNING)

    result = run_poll(office, "--json")
    assert result.returncode in (0, 3), result.stderr
    got = {r["message_id"]: r for r in records(result)}
    circular = got["<letter-1@nakhonratchasima.go.th>"]
    first, second = got["<letter-2@nakhonratchasima.go.th>"], got["<letter-3@nakhonratchasima.go.th>"]
    news = got["<letter-4@nakhonratchasima.go.th>"]
    returned = got["<bounce-1@mail.nakhonratchasima.go.th>"]
    for registered in (circular, first, second):
        assert registered["category"] == "official_letter" and registered["receipt_no"], registered
    assert "letter_receipt" in circular["actions"]
    assert "no_notice" in first["actions"] and "no_notice" in second["actions"]
    assert (news["category"], news["rule"], news["receipt_no"]) == ("needs_review", "state_bulk",
                                                                    None)
    assert (returned["category"], returned["rule"]) == ("automated", "delivery_report")

    # The register: the letter's own ที่, ลงวันที่, จาก and เรื่อง (แบบที่ ๑๓).
    by_number = {row["เลขทะเบียนรับ"]: row for row in incoming_rows(office)}
    row = by_number[circular["receipt_no"]]
    assert row["ที่"] == "นม ๐๐๒๓/ว ๑๒๓"
    assert row["ลงวันที่"].date() == date(2026, 11, 12)
    assert row["จาก"] == "ศาลากลางจังหวัดนครราชสีมา"
    assert row["เรื่อง"] == "ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัดแบบบูรณาการ ครั้งที่ ๔/๒๕๖๙"
    assert row["ประเภท"] == "หนังสือราชการ"
    memo = by_number[first["receipt_no"]]
    assert (memo["ที่"], memo["ลงวันที่"].date()) == ("นม 0118/2451", date(2026, 12, 3))
    assert memo["จาก"] == "ที่ทำการปกครองอำเภอเมืองนครราชสีมา"
    assert memo["เรื่อง"] == "ขอความร่วมมือสำรวจข้อมูลผู้สูงอายุ"
    assert memo["อีเมลผู้ส่ง"] == "noreply@esaraban.nakhonratchasima.go.th"
    assert "ไม่ส่งหลักฐานการรับ" in memo["หมายเหตุ"] and "หนังสือ.pdf" in memo["หมายเหตุ"]
    assert len(by_number) == 3

    # One receipt notice, to the person, never to the list or the e-saraban system.
    mail_out = sent(smtp)
    assert [str(m["To"]) for m in mail_out] == ["saraban@nakhonratchasima.go.th"]
    notice = mail_out[0]
    assert notice["Auto-Submitted"] == "auto-replied"
    assert notice["In-Reply-To"] == "<letter-1@nakhonratchasima.go.th>"
    body = notice.get_body().get_content()
    number = f"{circular['receipt_no']}/2569"
    assert ("ได้รับหนังสือ ที่ นม ๐๐๒๓/ว ๑๒๓ ลงวันที่ ๑๒ พฤศจิกายน ๒๕๖๙ ไว้แล้ว "
            f"เลขทะเบียนรับ {number}") in body
    assert f"ไว้แล้ว เลขทะเบียนรับ {number}" in body and f"[รับที่ {number}]" in notice["Subject"]
    assert "dated 12 Nov 2026" in body

    # The newsletter waits for a clerk in the review queue, flagged in the mailbox.
    waiting = review_rows(review_book(office))
    assert [w["เรื่อง"] for w in waiting] == ["จดหมายข่าวรัฐบาลดิจิทัล ฉบับพฤศจิกายน"]
    assert "หน่วยงานของรัฐ" in waiting[0]["เหตุที่ต้องตรวจสอบ"]
    client = imap_client(dovecot, imap_account)
    try:
        client.select_folder("INBOX", readonly=True)
        flagged = client.search(["FLAGGED"])
        subjects = [client.fetch(flagged, ["ENVELOPE"])[u][b"ENVELOPE"].subject for u in flagged]
    finally:
        client.logout()
    assert len(subjects) == 1

    # A second poll sends nothing more and registers nothing twice.
    again = run_poll(office, "--json")
    assert again.returncode in (0, 3), again.stderr
    assert len(sent(smtp)) == 1 and len(incoming_rows(office)) == 3

    # The clerk registers the newsletter after all: an official letter, and still no
    # notice to the list it came from.
    type_instructions(review_book(office), {waiting[0]["ลำดับ"]: "ลงรับ"}, "สมศรี")
    decided = run_poll(office, "--json")
    assert decided.returncode in (0, 3), decided.stderr
    rows = incoming_rows(office)
    assert len(rows) == 4 and rows[-1]["ประเภท"] == "หนังสือราชการ"
    assert rows[-1]["จาก"] == "DGA News" and rows[-1]["เรื่อง"].startswith("จดหมายข่าว")
    assert len(sent(smtp)) == 1

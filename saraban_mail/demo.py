"""The embedded demo: a fictional municipality's office with a Maildir of sample mail.

`saraban-mail demo DIR` writes config, rules and templates to DIR and polls it once,
with replies written as .eml files: no server needed. The tests reuse the samples."""

from __future__ import annotations

import email.policy
import hashlib
import mailbox
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from saraban_mail.calendar import BANGKOK, BusinessCalendar
from saraban_mail.rules import default_dir

AGENCY = "saraban@nongtuayang.go.th"
STAFF = "somsri.staff@gmail.com"


@dataclass(frozen=True)
class Sample:
    key: str
    folder: str  # "INBOX" or "Junk"
    received_at: datetime
    raw: bytes
    category: str  # what the shipped rules should decide
    high_risk: bool = False


# The samples are written for April 2026 (the fixed dates the tests use): Friday 10 after
# closing, Songkran on Tuesday 14, the working days 16 and 17. Each sample's purpose
# depends on its place in that week, so a demo run today moves the week, not the times.
When = Callable[[int, int, int], datetime]
# The demo's poll: as at this time of the demo day, before the 10:00 acknowledgement
# deadline of mail that came after hours, so every acknowledgement goes on time.
DEMO_POLL_AT = time(9, 50)


def _at(day: int, hour: int, minute: int, month: int = 4) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BANGKOK)


def demo_day(moment: datetime, calendar: BusinessCalendar) -> date:
    """The most recent working day after a day off (a Monday, most weeks) whose poll
    time has passed: there is mail from after the last closing and from a day off."""
    day = moment.astimezone(calendar.tz).date()
    while not (calendar.is_working_day(day) and not calendar.is_working_day(day - timedelta(1))
               and calendar.at(day, DEMO_POLL_AT) <= moment):
        day -= timedelta(days=1)
    return day


def _moved(day: date, calendar: BusinessCalendar) -> When:
    """The April week laid on `day`: the working days 16-17 become `day` (their office
    hours squeezed before the demo's poll), the holiday the day off before it, Friday's
    evening the last working day before that."""
    before = day - timedelta(days=1)
    last = before
    while not calendar.is_working_day(last):
        last -= timedelta(days=1)
    opening, closing = calendar.opening, calendar.closing
    open_minutes = (closing.hour - opening.hour) * 60 + closing.minute - opening.minute
    squeeze = (DEMO_POLL_AT.hour * 60 + DEMO_POLL_AT.minute - opening.hour * 60
               - opening.minute - 5) / open_minutes

    def when(sample_day: int, hour: int, minute: int) -> datetime:
        if sample_day == 14:
            return calendar.at(before, time(hour, minute))
        if sample_day == 10:
            return calendar.at(last, time(hour, minute))
        clock = time(hour, minute)
        if clock >= closing:  # an evening: the evening before
            return calendar.at(last, clock)
        if clock < opening:
            return calendar.at(day, clock)
        since = (hour - opening.hour) * 60 + minute - opening.minute
        return calendar.at(day, opening) + timedelta(minutes=since * squeeze)

    return when


def _mail(sender: str, subject: str, body: str, when: datetime, *, msgid: str | None = "auto",
          html: bool = False, charset: str = "utf-8", headers: dict[str, str] | None = None,
          attachments: tuple[tuple[str, str, bytes], ...] = ()) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    if sender:
        msg["From"] = sender
    msg["To"] = AGENCY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    if msgid == "auto":
        digest = hashlib.sha256(f"{sender}|{subject}".encode()).hexdigest()[:12]
        msg["Message-ID"] = f"<{digest}.{when:%Y%m%d%H%M}@mail.example>"
    elif msgid:
        msg["Message-ID"] = msgid
    for name, value in (headers or {}).items():
        msg[name] = value
    if html:
        msg.set_content(body, subtype="html", charset=charset)
    else:
        msg.set_content(body, charset=charset)
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def _legacy_thai(sender: str, subject: str, body: str, when: datetime,
                 charset: str = "windows-874") -> bytes:
    """What Thai Outlook sends: text labelled windows-874 (a charset Python does not know)
    or TIS-620, in 8 bits."""
    import base64

    encoded_subject = base64.b64encode(subject.encode("cp874")).decode()
    return (
        f"From: {sender}\r\nTo: {AGENCY}\r\n"
        f"Subject: =?{charset}?B?{encoded_subject}?=\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"Message-ID: <outlook-{charset}.{when:%Y%m%d%H%M}@mail.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"{charset}\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.replace("\n", "\r\n").encode("cp874")


def _staff_forward(when: datetime, at: When = _at) -> bytes:
    original = EmailMessage(policy=email.policy.SMTP)
    original["From"] = "มานี ใจดี <manee.j@hotmail.com>"
    original["To"] = STAFF
    original["Subject"] = "ขอหนังสือรับรองการประกอบกิจการ"
    original["Date"] = format_datetime(at(16, 8, 5))
    original.set_content("เรียน คุณสมศรี\nดิฉันขอหนังสือรับรองการประกอบกิจการร้านค้า ขอบคุณค่ะ\nมานี")
    outer = EmailMessage(policy=email.policy.SMTP)
    outer["From"] = f"สมศรี (งานทะเบียนพาณิชย์) <{STAFF}>"
    outer["To"] = AGENCY
    outer["Subject"] = "Fwd: ขอหนังสือรับรองการประกอบกิจการ"
    outer["Date"] = format_datetime(when)
    outer["Message-ID"] = f"<staff-fwd.{when:%Y%m%d%H%M}@gmail.example>"
    outer.set_content("ส่งต่อเรื่องจากประชาชนที่ส่งมาที่อีเมลส่วนตัวค่ะ")
    outer.add_attachment(original)
    return outer.as_bytes()


def _bounce(when: datetime) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mail.go.th>\r\n"
        f"To: {AGENCY}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(when)}\r\nMessage-ID: <bounce.{when:%Y%m%d%H%M}@mail.go.th>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system. Your message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mail.go.th\r\n\r\nFinal-Recipient: rfc822; nobody@example.com\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n"
    ).encode()


def samples(day: date | None = None, calendar: BusinessCalendar | None = None) -> list[Sample]:
    """A dozen and more realistic mails, one case at least per category: in April 2026,
    or with `day` in the week that leads to that day (demo_day)."""
    at: When = _at if day is None else _moved(day, calendar or BusinessCalendar())
    pdf = b"%PDF-1.4\n% sample plan\n" + b"0" * 2048 + b"\n%%EOF\n"
    return [
        Sample("building_permit", "INBOX", at(16, 10, 15), _mail(
            "สมชาย ใจดี <somchai.j@gmail.com>", "ขออนุญาตก่อสร้างอาคาร",
            "เรียน นายกเทศมนตรี\nข้าพเจ้าขอยื่นคำขออนุญาตก่อสร้างอาคารพักอาศัย 2 ชั้น "
            "ที่ตำบลหนองตัวอย่าง แนบแบบแปลนมาด้วย\nสมชาย ใจดี โทร 081 234 5678",
            at(16, 10, 14), attachments=(("แบบแปลนบ้าน.pdf", "application/pdf", pdf),),
        ), "valid"),
        Sample("english_html", "INBOX", at(16, 11, 2), _mail(
            "John Smith <john.smith@example.com>", "Request for a business registration certificate",
            "<html><head><style>p{color:red}</style></head><body><p>Dear Sir or Madam,</p>"
            "<p>I would like to request a copy of the business registration certificate for my "
            "shop.</p><p>Regards,<br>John Smith</p></body></html>",
            at(16, 11, 1), html=True,
        ), "valid"),
        Sample("outlook_874_after_friday_close", "INBOX", at(10, 17, 45), _legacy_thai(
            "ประยุทธ์ มั่นคง <prayut.m@hotmail.com>", "แจ้งซ่อมไฟส่องสว่างสาธารณะ",
            "เรียน เจ้าหน้าที่\nไฟส่องสว่างถนนหมู่ 3 เสียหลายดวง ขอให้ช่วยซ่อมด้วยครับ",
            at(10, 17, 44),
        ), "valid"),
        Sample("tis_620", "INBOX", at(17, 9, 40), _legacy_thai(
            "สมศักดิ์ รักดี <somsak.r@hotmail.com>", "แจ้งท่อประปารั่ว",
            "เรียน เจ้าหน้าที่\nท่อประปาหน้าบ้านเลขที่ 12 หมู่ 4 รั่ว ขอให้ช่วยซ่อมด้วยครับ",
            at(17, 9, 39), charset="TIS-620",
        ), "valid"),
        Sample("songkran", "INBOX", at(14, 9, 30), _mail(
            "วันดี ศรีสุข <wandee@yahoo.co.th>", "ขอรับเบี้ยยังชีพผู้สูงอายุ",
            "ขอสอบถามการลงทะเบียนเบี้ยยังชีพผู้สูงอายุของมารดา ค่ะ", at(14, 9, 29),
        ), "valid"),
        Sample("withdraw_complaint", "INBOX", at(16, 13, 40), _mail(
            "ชัยวัฒน์ <chaiwat.k@gmail.com>", "ขอถอนเรื่องร้องเรียน",
            "ข้าพเจ้าขอถอนเรื่องร้องเรียนเรื่องเสียงดังจากโรงงาน ที่ยื่นไว้เมื่อเดือนที่แล้ว",
            at(16, 13, 39), headers={"Reply-To": "chaiwat.office@gmail.com"},
        ), "valid", True),
        Sample("formula_subject", "INBOX", at(16, 14, 5), _mail(
            "Dao <dao.p@gmail.com>", '=HYPERLINK("http://evil.example","ขอข้อมูล")',
            "ขอข้อมูลตารางเก็บขยะของหมู่บ้านค่ะ", at(16, 14, 4),
        ), "valid"),
        Sample("no_message_id", "INBOX", at(16, 15, 10), _mail(
            "Somporn <somporn@gmail.com>", "ขอใช้สถานที่ศาลาประชาคม",
            "ขออนุญาตใช้ศาลาประชาคมจัดงานบุญวันที่ 1 พฤษภาคม", at(16, 15, 9), msgid=None,
        ), "valid"),
        Sample("e_bidding", "INBOX", at(16, 9, 5), _mail(
            "บริษัท ก่อสร้างดี จำกัด <sales@kosangdee.co.th>", "ยื่นซองเสนอราคาโครงการถนน คสล.",
            "ขอยื่นซองเสนอราคาโครงการก่อสร้างถนนคอนกรีตเสริมเหล็ก หมู่ 5", at(16, 9, 4),
        ), "wrong_channel"),
        Sample("staff_forward", "INBOX", at(16, 9, 20), _staff_forward(at(16, 9, 19), at),
               "wrong_channel"),
        Sample("power_outage", "INBOX", at(16, 19, 30), _mail(
            "Anan <anan.t@gmail.com>", "ไฟฟ้าดับทั้งซอย",
            "ไฟฟ้าดับตั้งแต่หกโมงเย็น ช่วยแจ้งด้วยครับ", at(16, 19, 29),
        ), "wrong_agency"),
        Sample("lost_id_card", "INBOX", at(17, 8, 50), _mail(
            "Kanya <kanya.s@gmail.com>", "บัตรประชาชนหาย ต้องทำอย่างไร",
            "บัตรประชาชนหายค่ะ ต้องไปทำบัตรใหม่ที่ไหน", at(17, 8, 49),
        ), "wrong_agency_forward"),
        Sample("gambling_spam", "Junk", at(16, 3, 12), _mail(
            "PG888 <promo@pg888.example>", "สล็อตเว็บตรง เครดิตฟรี 100",
            "สมัครวันนี้ สล็อต แตกง่าย ฝากถอนออโต้ เครดิตฟรี", at(16, 3, 11),
        ), "spam"),
        Sample("phishing", "INBOX", at(16, 6, 0), _mail(
            "IT Support <it-support@mail-go-th.example>", "Your mailbox is full",
            "Your mailbox is full. Verify your account within 24 hours: http://phish.example",
            at(16, 5, 59),
        ), "spam"),
        Sample("out_of_office", "INBOX", at(16, 10, 30), _mail(
            "Director <director@province.go.th>", "Automatic reply: ประชุมประจำเดือน",
            "ขณะนี้ไม่อยู่ที่สำนักงาน จะกลับวันที่ 20 เมษายน", at(16, 10, 29),
            headers={"Auto-Submitted": "auto-replied"},
        ), "automated"),
        Sample("bounce", "INBOX", at(16, 10, 45), _bounce(at(16, 10, 44)), "automated"),
        Sample("legit_in_junk", "Junk", at(16, 11, 30), _mail(
            "นิดา <nida.r@outlook.co.th>", "ขอสำเนาใบเสร็จค่าขยะ",
            "ขอสำเนาใบเสร็จรับเงินค่าธรรมเนียมเก็บขยะเดือนมีนาคม", at(16, 11, 29),
        ), "valid"),
        Sample("no_sender", "INBOX", at(16, 12, 0), _mail(
            "", "(no subject)", "ข้อความที่ไม่มีผู้ส่ง", at(16, 11, 59),
        ), "needs_review"),
    ]


CONFIG = """# Demo office: a local Maildir and replies written to outbox-mail/ (no server).
[agency]
name_th = "เทศบาลตำบลหนองตัวอย่าง"
name_en = "Nong Tua Yang Subdistrict Municipality"
phone = "0 4400 0000"
saraban_phone = "0 4400 0000 ต่อ 101"
email = "{agency}"
website = "https://www.nongtuayang.go.th"

[mailbox]
backend = "maildir"
maildir = "maildir"

[smtp]
transport = "pickup"
pickup_dir = "outbox-mail"

[staff]
addresses = ["{staff}"]

[policy]
# The sample mail is dated: read all of it. An office sets the day the service starts, or
# leaves it unset for the first poll's own day.
start_date = 2026-01-01
"""


def create_demo(folder: Path, day: date | None = None) -> Path:
    """Write the demo office into `folder` (kept if it exists) and return its config path;
    its mail dated in the week that leads to `day` (demo_day), or in April 2026."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rules", "templates"):
        if not (folder / name).exists():
            shutil.copytree(default_dir(name), folder / name)
    (folder / "register").mkdir(exist_ok=True)
    config = folder / "config.toml"
    if not config.exists():
        config.write_text(CONFIG.format(agency=AGENCY, staff=STAFF), encoding="utf-8")
        root = mailbox.Maildir(folder / "maildir", create=True)
        junk = root.add_folder("Junk")
        for sample in samples(day):
            message = mailbox.MaildirMessage(sample.raw)
            message.set_date(sample.received_at.timestamp())
            (junk if sample.folder == "Junk" else root).add(message)
    return config

"""Watched staff mailboxes, against a real Dovecot with several users: a citizen's request
that reached a staff member is copied to saraban, registered and acknowledged once; the
staff mailbox is unchanged but for a keyword; a broken staff account stops nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import deliver, imap_client
from tests.offices import cli, poll
from tests.servers import PASSWORD, free_port

NOW = datetime.now(UTC)
AGENCY = "saraban@nongtuayang.go.th"


def mail(sender: str, to: str, subject: str, text: str, *, key: str, **headers: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Sun, 22 Nov 2026 10:00:00 +0700"
    msg["Message-ID"] = f"<{key}@watch.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


@pytest.fixture
def secrets_dir():
    """Password files outside the suite's temporary folder (which must hold no password)."""
    folder = Path(tempfile.mkdtemp(prefix="saraban-watch-"))
    (folder / "staff-password").write_text(PASSWORD)
    (folder / "wrong-password").write_text("Wr0ng-Pa55")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def watch_entry(name: str, port: int, account: str, password_file: Path) -> str:
    return f"""
[[watch]]
name = "{name}"
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{account}"
password_file = "{password_file}"
timeout = 5
"""


def staff_state(dovecot, account: str) -> dict[int, tuple[bytes, tuple]]:
    """Every message of the staff INBOX: its bytes and flags (\\Recent is session state)."""
    client = imap_client(dovecot, account)
    try:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
        return {uid: (d[b"BODY[]"], tuple(sorted(f for f in d[b"FLAGS"] if f != b"\\Recent")))
                for uid, d in fetched.items()}
    finally:
        client.logout()


def inbox_copies(dovecot, account: str) -> list[bytes]:
    client = imap_client(dovecot, account)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["HEADER", "X-Saraban-Via", "watch="])
        return [d[b"BODY[]"] for d in client.fetch(uids, ["BODY.PEEK[]"]).values()]
    finally:
        client.logout()


def journal_records(office: Path) -> list[dict]:
    with sqlite3.connect(office.parent / "data" / "journal.sqlite3") as db:
        return [json.loads(r[0]) for r in db.execute("SELECT record FROM messages")]


def register_rows(office: Path) -> list[tuple]:
    book = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx")
    return [row for row in book.worksheets[0].iter_rows(min_row=3, values_only=True) if row[0]]


def test_a_request_in_a_staff_mailbox_is_copied_registered_and_acknowledged_once(
    office, dovecot, smtp, secrets_dir
):
    staff = dovecot.account()
    office.write_text(office.read_text() + watch_entry(
        "somchai", dovecot.port, staff, secrets_dir / "staff-password")
        + '\n[watching]\nagency_domains = ["test.example"]\n')
    arrived = NOW - timedelta(days=1)
    request = mail("นายเกษม ใจดี <kasem.citizen@gmail.com>", staff, "ขออนุญาตต่อเติมบ้าน",
                   "เรียนคุณสมชาย ผมขออนุญาตต่อเติมบ้านเลขที่ 12 หมู่ 3 ครับ", key="request")
    deliver(dovecot, staff, "INBOX", request, arrived)
    others = [
        mail("สมศรี <somsri@test.example>", staff, "ขอเอกสารประชุมพรุ่งนี้",
             "ขอเอกสารประชุมด้วยค่ะ", key="colleague"),
        mail("ร้านค้า <news@shop.example>", staff, "โปรโมชั่นเดือนนี้", "ลดราคาทั้งร้าน",
             key="newsletter", List_Unsubscribe="<mailto:leave@shop.example>",
             Precedence="bulk"),
        mail("friend <old.friend@gmail.com>", staff, "นัดกินข้าววันเสาร์",
             "ว่างไหมวันเสาร์นี้", key="friend"),
        mail("ผู้ส่ง <promo@slot.example>", staff, "สล็อต บาคาร่า เว็บตรง",
             "สล็อต บาคาร่า คาสิโน เว็บตรง ฝากถอนออโต้", key="spam"),
    ]
    for raw in others:
        deliver(dovecot, staff, "INBOX", raw, arrived)
    old = mail("นางมาลี <malee@gmail.com>", staff, "ขอสำเนาทะเบียนบ้าน", "ขอสำเนาค่ะ",
               key="old-request")
    deliver(dovecot, staff, "INBOX", old, NOW - timedelta(days=20))  # before watching began
    before = staff_state(dovecot, staff)

    first = cli("-v", "poll", "--config", str(office), "--json")
    assert first.returncode == 0, first.stderr
    # The log names staff mail by folder and UID with a reason id, never who or what.
    assert "INBOX UID 2: left alone (staff_sender)" in first.stderr
    assert "INBOX UID 3: left alone (category:automated)" in first.stderr
    for private in ("somsri", "เอกสารประชุม", "shop.example", "old.friend", "นัดกินข้าว"):
        assert private not in first.stderr

    copies = inbox_copies(dovecot, _saraban(office))
    assert len(copies) == 1 and copies[0].endswith(request)
    records = [r for r in journal_records(office) if r.get("watched")]
    assert len(records) == 1
    record = records[0]
    assert (record["category"], record["rule"], record["requester"]) == (
        "wrong_channel", "watched_mailbox", "kasem.citizen@gmail.com")
    assert record["watched"]["address"] == staff
    assert datetime.fromisoformat(record["watched"]["arrived_at"]) == arrived.replace(microsecond=0)
    # Official receipt: when the saraban inbox got the copy, not when the staff member did.
    assert datetime.fromisoformat(record["received_at"]) > arrived + timedelta(hours=20)
    rows = register_rows(office)
    assert len(rows) == 1 and "ส่งถึง" in rows[0][7] and staff in rows[0][7]
    acks = [m for m in smtp.messages if m[1] == ["kasem.citizen@gmail.com"]]
    assert len(acks) == 1 and AGENCY.encode() in acks[0][2]
    assert len(smtp.messages) == 1  # nobody else heard from us

    after = staff_state(dovecot, staff)
    assert after.keys() == before.keys()
    for uid, (raw, flags) in before.items():
        assert after[uid][0] == raw  # byte for byte
        expected = tuple(sorted((*flags, b"$SarabanCopied"))) if raw == request else flags
        assert after[uid][1] == expected

    second = poll(office)  # a new process: a restart
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(office.parent / "data" / "journal.sqlite3") as db:
        db.execute("UPDATE folders SET last_uid = 0 WHERE folder LIKE 'watch:%'")  # progress lost
    third = poll(office)
    assert third.returncode == 0, third.stderr
    assert len(inbox_copies(dovecot, _saraban(office))) == 1
    assert len(register_rows(office)) == 1 and len(smtp.messages) == 1
    assert staff_state(dovecot, staff) == after

    status = cli("status", "--config", str(office))
    assert f"watched somchai ({staff}): ok" in status.stdout
    assert "1 request(s) copied" in status.stdout


def test_a_request_in_a_staff_mailbox_is_due_from_its_arrival_there_and_the_register_keeps_both(
    office, dovecot, smtp, secrets_dir
):
    from saraban_mail.calendar import ack_due
    from saraban_mail.config import load_config
    from saraban_mail.rules import default_dir, load_rules
    from saraban_mail.service import calendar_for

    staff = dovecot.account()
    office.write_text(office.read_text() + watch_entry(
        "somchai", dovecot.port, staff, secrets_dir / "staff-password")
        + '\n[watching]\nagency_domains = ["test.example"]\nlookback_days = 10\n')
    calendar = calendar_for(load_config(office), load_rules(default_dir("rules")))
    # 10:00 of the latest working day before today: due at its closing, long passed.
    day = NOW.astimezone(calendar.tz).date() - timedelta(days=1)
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    arrived = calendar.at(day, calendar.opening) + timedelta(hours=1)
    deliver(dovecot, staff, "INBOX", mail("นายเกษม ใจดี <kasem.citizen@gmail.com>", staff,
                                          "ขออนุญาตต่อเติมบ้าน", "ขออนุญาตต่อเติมบ้านครับ",
                                          key="due-from-staff"), arrived)
    result = poll(office)
    assert result.returncode == 0, result.stderr
    [got] = [json.loads(line) for line in result.stdout.splitlines()]
    received = datetime.fromisoformat(got["received_at"])
    assert received > arrived + timedelta(hours=12)  # saraban got its copy today
    assert datetime.fromisoformat(got["ack_due"]) == ack_due(arrived, calendar) == \
        calendar.at(day, calendar.closing)
    assert ack_due(received, calendar) > ack_due(arrived, calendar)
    # The register: the official receipt time as saraban got it, the staff arrival in หมายเหตุ.
    [row] = register_rows(office)
    assert "ส่งถึง" in row[7] and "กำหนดตอบรับนับจากเวลาที่ถึงกล่องจดหมายเจ้าหน้าที่" in row[7]
    assert str(arrived.astimezone(calendar.tz).year + 543) in row[7]
    status = json.loads(cli("status", "--config", str(office), "--json").stdout)
    assert [a["receipt"] for a in status["acknowledgements"]["late"]] == [
        f"{got['receipt_no']}/{got['receipt_year']}"]


def _saraban(office: Path) -> str:
    return next(line.split('"')[1] for line in office.read_text().splitlines()
                if line.startswith("username"))


def test_a_broken_staff_account_or_server_does_not_stop_the_saraban_poll(
    office, dovecot, smtp, secrets_dir, imap_account
):
    staff = dovecot.account()
    office.write_text(office.read_text()
                      + watch_entry("wrongpw", dovecot.port, staff, secrets_dir / "wrong-password")
                      + watch_entry("down", free_port(), staff, secrets_dir / "staff-password"))
    direct = mail("นายเกษม <kasem.citizen@gmail.com>", AGENCY, "ขออนุญาตก่อสร้างอาคาร",
                  "ขออนุญาตก่อสร้างอาคารครับ", key="direct")
    deliver(dovecot, imap_account, "INBOX", direct, NOW)

    result = poll(office)
    assert result.returncode == 3, result.stderr  # done, with problems to report
    assert "watched mailbox wrongpw" in result.stderr and "watched mailbox down" in result.stderr
    assert len(register_rows(office)) == 1 and len(smtp.messages) == 1

    status = cli("status", "--config", str(office))
    assert "watched wrongpw" in status.stdout and "FAILING" in status.stdout
    assert "watched down" in status.stdout
    check = cli("check", "--config", str(office))
    assert "watched mailbox wrongpw" in check.stderr and "watched mailbox down" in check.stderr
    for output in (result.stderr, status.stdout, check.stdout, check.stderr):
        assert "Wr0ng-Pa55" not in output and PASSWORD not in output


# -- the narrow rule, without servers --------------------------------------------------


def verdict(raw: bytes, address: str = "somchai@nongtuayang.go.th"):
    from saraban_mail.classify import Identity, classify
    from saraban_mail.config import Config
    from saraban_mail.parse import parse
    from saraban_mail.rules import load_rules
    from saraban_mail.watch import takes

    config = Config.model_validate({"agency": {"email": AGENCY},
                                    "staff": {"addresses": ["somsri.staff@gmail.com"]}})
    parsed = parse(raw)
    rules = load_rules(Path(__file__).resolve().parent.parent / "rules")
    return takes(parsed, classify(parsed, rules, Identity(frozenset({AGENCY}))), address, config)


def with_scan(raw: bytes) -> bytes:
    from email import message_from_bytes
    from email.policy import default

    msg = message_from_bytes(raw, policy=default)
    msg.make_mixed()
    msg.add_attachment(b"%PDF-1.7\n...", maintype="application", subtype="pdf",
                       filename="scan.pdf")
    return msg.as_bytes()


@pytest.mark.parametrize(("raw", "take", "why"), [
    (mail("a <a@gmail.com>", "somchai@nongtuayang.go.th", "ร้องเรียนเสียงดัง", "ร้องเรียนครับ",
          key="k1"), True, "request_keywords"),
    (with_scan(mail("a <a@gmail.com>", "somchai@nongtuayang.go.th", "ส่งเอกสารตามที่คุยกัน",
                    "ตามไฟล์แนบครับ", key="k2")), True, "request_attachment"),
    (mail("a <a@gmail.com>", "somchai@nongtuayang.go.th", "สวัสดีครับ", "โทรกลับด้วยครับ",
          key="k3"), False, "no_sign_of_a_request"),
    (mail("a <a@gmail.com>", "list@lists.example", "ขออนุญาตจัดงาน", "ขออนุญาตครับ",
          key="k4"), False, "not_addressed_to_the_mailbox"),
    (mail("ปลัด <palad@nongtuayang.go.th>", "somchai@nongtuayang.go.th", "ขออนุญาตลา",
          "ขออนุญาตลาพักผ่อน", key="k5"), False, "staff_sender"),
    (mail("สมศรี <somsri.staff@gmail.com>", "somchai@nongtuayang.go.th", "คำร้องที่รับมา",
          "คำร้องของชาวบ้าน", key="k6"), False, "staff_sender"),
])
def test_the_narrow_rule_takes_only_citizens_requests_addressed_to_the_mailbox(raw, take, why):
    found = verdict(raw)
    assert (found.take, found.why) == (take, why)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_watched_mailbox_with_an_oauth2_login_of_its_own(oauth_servers, smtp, tmp_path,
                                                            monkeypatch):
    """The staff account logs in with OAuth2 (its own consent and token file), saraban
    with a password: the request in the staff mailbox is still copied and acknowledged."""
    auth, dovecot, _ = oauth_servers
    staff, saraban = "user1@test.example", "user2@test.example"
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
    config = tmp_path / "config.toml"
    config.write_text(f"""
[agency]
name_th = "เทศบาลตำบลหนองตัวอย่าง"
name_en = "Nong Tua Yang Subdistrict Municipality"
email = "{AGENCY}"
[imap]
host = "127.0.0.1"
port = {dovecot.port}
security = "plain"
username = "{saraban}"
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "plain"
[oauth]
token_url = "{auth.url}/token"
device_url = "{auth.url}/device"
client_id = "saraban-test"
scope = "imap offline_access"
[[watch]]
name = "somchai"
host = "127.0.0.1"
port = {dovecot.port}
security = "plain"
auth = "xoauth2"
username = "{staff}"
[watching]
agency_domains = ["test.example"]
""", encoding="utf-8")
    before = poll(config)
    assert "watched mailbox somchai" in before.stderr and "saraban-mail auth" in before.stderr

    consent = cli("auth", "--watch", "somchai", "--config", str(config))
    assert consent.returncode == 0, consent.stderr
    assert f"IMAP login ok: {staff}" in consent.stdout
    assert (tmp_path / "data" / "oauth-token-somchai.json").exists()
    assert not (tmp_path / "data" / "oauth-token.json").exists()  # saraban's own is apart

    request = mail("นายเกษม <kasem.citizen@gmail.com>", staff, "คำร้องขอซ่อมถนน",
                   "ขอให้ซ่อมถนนหน้าบ้านครับ", key="oauth-request")
    deliver(dovecot, staff, "INBOX", request, NOW)
    result = poll(config)
    assert result.returncode == 0, result.stderr
    assert len(inbox_copies(dovecot, saraban)) == 1
    assert [m[1] for m in smtp.messages] == [["kasem.citizen@gmail.com"]]

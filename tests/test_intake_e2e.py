"""End to end against a real Dovecot and a real SMTP server: the whole poll, twice.

Every test runs on the plain Dovecot and on one imitating Courier-IMAP (no MOVE, no
SPECIAL-USE, `INBOX.` folders with Outlook's names): the service goes by what it announces."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import imapclient
import openpyxl
import pytest

from saraban_mail.config import Imap
from saraban_mail.demo import samples
from saraban_mail.mailbox import ImapMailbox
from saraban_mail.parse import _cut, parse
from tests.conftest import SERVERS, deliver, each_server, folder_of, imap_client
from tests.servers import PASSWORD

dovecot = pytest.fixture(name="dovecot", params=SERVERS)(each_server)


def run_poll(config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "saraban_mail", "poll", "--config", str(config), *extra],
        capture_output=True, text=True, env=os.environ.copy(), timeout=120,
    )


def records(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def mailbox_state(dovecot, account) -> dict[str, list[tuple[int, tuple]]]:
    client = imap_client(dovecot, account)
    try:
        state = {}
        for folder in ("INBOX", "Junk", "Trash", "Sent"):
            client.select_folder(folder_of(dovecot, folder), readonly=True)
            fetched = client.fetch(client.search("ALL"), ["FLAGS"])
            state[folder] = sorted((uid, tuple(sorted(d[b"FLAGS"]))) for uid, d in fetched.items())
        return state
    finally:
        client.logout()


def load_mixed_mailbox(dovecot, account) -> dict[str, object]:
    """The demo samples plus a duplicate delivery of one of them."""
    by_key = {}
    for sample in samples():
        deliver(dovecot, account, sample.folder, sample.raw, sample.received_at)
        by_key[sample.key] = sample
    permit = by_key["building_permit"]
    duplicate = b"Received: from relay2.example by mx.example; Thu, 16 Apr 2026 10:16:00 +0700\r\n"
    deliver(dovecot, account, "INBOX", duplicate + permit.raw, permit.received_at)
    return by_key


def test_poll_handles_a_mixed_mailbox_and_a_second_poll_changes_nothing(
    office, dovecot, imap_account, smtp
):
    by_key = load_mixed_mailbox(dovecot, imap_account)
    first = run_poll(office, "--json")
    assert first.returncode == 0, first.stderr
    got = records(first)
    by_subject = {}
    for record in got:
        by_subject.setdefault(record["subject"], []).append(record)

    # Every sample decided as the shipped rules intend, and reported once.
    for sample in by_key.values():
        subject = parse(sample.raw).subject
        first_record = by_subject[subject][0]
        assert first_record["category"] == sample.category, (sample.key, first_record)
        assert first_record["high_risk"] == sample.high_risk, sample.key
    duplicates = [r for r in got if r["rule"] == "duplicate"]
    assert len(duplicates) == 1 and duplicates[0]["subject"] == "ขออนุญาตก่อสร้างอาคาร"
    assert len(got) == len(by_key) + 1

    # Receipt numbers 1..N, in order of official receipt time, Buddhist-era year.
    registered = sorted((r for r in got if r["receipt_no"] and r["rule"] != "duplicate"),
                        key=lambda r: r["receipt_no"])
    assert [r["receipt_no"] for r in registered] == list(range(1, 12))
    assert {r["receipt_year"] for r in registered} == {2569}
    officials = [r["official_received_at"] for r in registered]
    assert officials == sorted(officials)

    # Friday after closing, and Songkran, both count from Thursday 16 April 08:30
    # (13–15 April 2026 are the Songkran holidays); the ack is due by 10:00.
    assert by_subject["แจ้งท่อประปารั่ว"][0]["category"] == "valid"  # TIS-620, decoded
    friday = by_subject["แจ้งซ่อมไฟส่องสว่างสาธารณะ"][0]
    assert friday["received_at"] == "2026-04-10T17:45:00+07:00"
    assert friday["official_received_at"] == "2026-04-16T08:30:00+07:00"
    assert friday["ack_due"] == "2026-04-16T10:00:00+07:00"
    songkran = by_subject["ขอรับเบี้ยยังชีพผู้สูงอายุ"][0]
    assert songkran["official_received_at"] == "2026-04-16T08:30:00+07:00"
    in_hours = by_subject["ขออนุญาตก่อสร้างอาคาร"][0]
    assert in_hours["official_received_at"] == "2026-04-16T10:15:00+07:00"
    assert in_hours["ack_due"] == "2026-04-16T16:30:00+07:00"

    # Mail at the SMTP server: one ack per registered message, replies and the forward.
    sent = [(rcpts[0], email.message_from_bytes(raw, policy=email.policy.default))
            for _, rcpts, raw in smtp.messages]
    recipients = sorted(r for r, _ in sent)
    assert recipients == sorted([
        "somchai.j@gmail.com", "john.smith@example.com", "prayut.m@hotmail.com",
        "wandee@yahoo.co.th", "chaiwat.office@gmail.com",  # Reply-To wins
        "dao.p@gmail.com", "somporn@gmail.com", "sales@kosangdee.co.th",
        "manee.j@hotmail.com",  # the citizen behind the staff forward
        "nida.r@outlook.co.th", "somsak.r@hotmail.com", "anan.t@gmail.com", "kanya.s@gmail.com",
        "saraban@district.example.go.th",
    ])
    for _recipient, message in sent:
        assert message["Auto-Submitted"] in ("auto-replied", "auto-forwarded")
        assert message["X-Auto-Response-Suppress"] == "All"
        assert "\n" not in message["Subject"]
    acks = {r: m for r, m in sent if "[รับที่" in m["Subject"]}
    permit_ack = acks["somchai.j@gmail.com"]
    number = by_subject["ขออนุญาตก่อสร้างอาคาร"][0]["receipt_no"]
    assert permit_ack["Subject"].startswith(f"[รับที่ {number}/2569]")
    assert permit_ack["In-Reply-To"] == parse(by_key["building_permit"].raw).message_id
    body = permit_ack.get_body().get_content()
    assert "ได้รับอีเมลของท่านแล้ว" in body and "has received your email" in body
    assert "0 4400 0000" in body and "16 เม.ย. 2569 เวลา 10.15 น." in body
    risky = acks["chaiwat.office@gmail.com"].get_body().get_content()
    assert "ยืนยันตัวตน" in risky and "video call" in risky
    forward = next(m for r, m in sent if r == "saraban@district.example.go.th")
    assert any(p.get_content_type() == "message/rfc822" for p in forward.iter_attachments())

    # Mailbox actions: spam in Trash, the legitimate Junk mail in INBOX and read,
    # needs_review flagged and unread, handled mail read, copies in Sent.
    client = imap_client(dovecot, imap_account)
    try:
        client.select_folder(folder_of(dovecot, "Junk"), readonly=True)
        assert client.search("ALL") == []
        client.select_folder(folder_of(dovecot, "Trash"), readonly=True)
        assert len(client.search("ALL")) == 2
        client.select_folder("INBOX", readonly=True)
        flagged = client.search(["FLAGGED"])
        assert len(flagged) == 1
        assert imapclient.SEEN not in client.get_flags(flagged)[flagged[0]]
        unseen = client.search(["UNSEEN"])
        assert unseen == flagged
        moved = client.search(["SUBJECT", "ขอสำเนาใบเสร็จค่าขยะ".encode()], charset="UTF-8")
        assert len(moved) == 1
        client.select_folder(folder_of(dovecot, "Sent"), readonly=True)
        assert len(client.search("ALL")) == len(smtp.messages)
    finally:
        client.logout()

    # The register: one row per receipt number, citizen text never a formula.
    book_path = office.parent / "register" / "incoming-2569.xlsx"
    sheet = openpyxl.load_workbook(book_path).worksheets[0]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert [row[0] for row in rows] == list(range(1, 12))
    formula = next(c for c in sheet["F"] if str(c.value).startswith("=HYPERLINK"))
    assert formula.data_type == "s"
    files = [c.value for c in sheet[2]].index("ไฟล์แนบ (SHA-256)")  # found by its heading
    attachments = next(row[files] for row in rows if row[5] == "ขออนุญาตก่อสร้างอาคาร")
    assert "แบบแปลนบ้าน.pdf" in attachments

    # Attachments of registered mail are kept privately, under a safe name.
    saved = list((office.parent / "data" / "attachments").rglob("*.pdf"))
    assert [p.name for p in saved] == ["01-แบบแปลนบ้าน.pdf"]
    assert oct(saved[0].stat().st_mode & 0o777) == "0o600"

    # Second poll: no record, no mail, no register write, no flag or move.
    before = (len(smtp.messages), hashlib.sha256(book_path.read_bytes()).hexdigest(),
              mailbox_state(dovecot, imap_account))
    second = run_poll(office, "--json")
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    after = (len(smtp.messages), hashlib.sha256(book_path.read_bytes()).hexdigest(),
             mailbox_state(dovecot, imap_account))
    assert after == before


def test_dry_run_decides_but_changes_nothing(office, dovecot, imap_account, smtp):
    for sample in samples()[:4]:
        deliver(dovecot, imap_account, sample.folder, sample.raw, sample.received_at)
    before = mailbox_state(dovecot, imap_account)
    dry = run_poll(office, "--json", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [r["receipt_no"] for r in records(dry)] != [None] * 4
    assert smtp.messages == []
    assert mailbox_state(dovecot, imap_account) == before
    assert not (office.parent / "register").exists()
    assert not (office.parent / "data").exists()
    real = run_poll(office, "--json")
    assert len(records(real)) == 4  # the dry run left the journal untouched


def test_smtp_down_still_registers_and_sends_at_the_next_poll(office, dovecot, imap_account, smtp):
    sample = samples()[0]
    deliver(dovecot, imap_account, "INBOX", sample.raw, sample.received_at)
    smtp.refuse = "451 4.3.0 try again later"
    first = run_poll(office, "--json")
    assert first.returncode == 3
    assert "will be retried" in first.stderr
    assert records(first)[0]["receipt_no"] == 1
    assert (office.parent / "register" / "incoming-2569.xlsx").exists()
    assert smtp.messages == []

    smtp.refuse = ""
    second = run_poll(office, "--json")
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert [rcpts for _, rcpts, _ in smtp.messages] == [["somchai.j@gmail.com"]]


def test_unreachable_smtp_server_leaves_replies_queued(office, dovecot, imap_account):
    text = office.read_text().replace('port = ', 'port = ', 1)
    smtp_line = next(line for line in text.splitlines()[::-1] if line.startswith("port = "))
    office.write_text(text.replace(smtp_line, "port = 1"))
    sample = samples()[0]
    deliver(dovecot, imap_account, "INBOX", sample.raw, sample.received_at)
    result = run_poll(office)
    assert result.returncode == 3
    assert "cannot reach SMTP server" in result.stderr
    assert "1 message(s) wait in the journal" in result.stderr


def test_refused_login_is_one_clear_line(office, monkeypatch):
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", "wrong")
    result = run_poll(office)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "refused the login" in result.stderr
    assert "Traceback" not in result.stderr


def test_tls_connection_with_a_trusted_certificate(office, dovecot, imap_account, smtp):
    text = office.read_text()
    text = text.replace(f"port = {dovecot.port}", f"port = {dovecot.tls_port}")
    text = text.replace('security = "plain"\nusername',
                        f'security = "tls"\nca_file = "{dovecot.ca_file}"\nusername')
    office.write_text(text)
    sample = samples()[0]
    deliver(dovecot, imap_account, "INBOX", sample.raw, sample.received_at)
    result = run_poll(office, "--json")
    assert result.returncode == 0, result.stderr
    assert records(result)[0]["category"] == "valid"


def test_starttls_connection(office, dovecot, imap_account, smtp):
    text = office.read_text().replace(
        'security = "plain"\nusername',
        f'security = "starttls"\nca_file = "{dovecot.ca_file}"\nusername',
    )
    office.write_text(text)
    result = run_poll(office, "--json")
    assert result.returncode == 0, result.stderr


def test_changed_uidvalidity_rescans_without_handling_twice(office, dovecot, imap_account, smtp):
    import sqlite3

    for sample in samples()[:3]:
        deliver(dovecot, imap_account, sample.folder, sample.raw, sample.received_at)
    assert len(records(run_poll(office, "--json"))) == 3
    journal = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    with journal:
        # As if the server had rebuilt the folder: what we know is under another UIDVALIDITY.
        journal.execute("UPDATE folders SET uidvalidity = uidvalidity + 1")
        journal.execute("UPDATE messages SET uidvalidity = uidvalidity + 1")
        journal.execute("UPDATE copies SET uidvalidity = uidvalidity + 1")
    journal.close()
    again = run_poll(office, "--json")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert len(smtp.messages) == 3


def test_mail_before_start_date_is_left_alone(office, dovecot, imap_account, smtp):
    old, new = samples()[2], samples()[0]  # 10 April and 16 April 2026
    deliver(dovecot, imap_account, "INBOX", old.raw, old.received_at)
    deliver(dovecot, imap_account, "INBOX", new.raw, new.received_at)
    office.write_text(office.read_text().replace("start_date = 2026-01-01",
                                                 "start_date = 2026-04-15"))
    got = records(run_poll(office, "--json"))
    assert [r["subject"] for r in got] == ["ขออนุญาตก่อสร้างอาคาร"]


def test_the_start_date_begins_at_midnight_in_bangkok_not_on_the_servers_day(
        office, dovecot, imap_account, smtp):
    """Dovecot keeps INTERNALDATE in UTC here: 00:40 on 1 December in Bangkok is still
    30 November on the server's day. The start date is the agency's day."""
    from tests.offices import request

    late_evening, _ = request(1, "ก่อนวันเริ่ม")  # 23:50 Bangkok, 30 November
    after_midnight, _ = request(2, "หลังเที่ยงคืน")  # 00:40 Bangkok, 1 December
    deliver(dovecot, imap_account, "INBOX", late_evening, datetime(2026, 11, 30, 16, 50, tzinfo=UTC))
    deliver(dovecot, imap_account, "INBOX", after_midnight,
            datetime(2026, 11, 30, 17, 40, tzinfo=UTC))
    office.write_text(office.read_text().replace("start_date = 2026-01-01",
                                                 "start_date = 2026-12-01"))
    result = run_poll(office, "--json")
    assert [r["subject"] for r in records(result)] == ["หลังเที่ยงคืน 2"]
    assert "1 message(s) from before the start date" in result.stderr


def test_check_logs_in_and_lists_the_folders_it_will_read(office, dovecot, imap_account):
    result = subprocess.run(
        [sys.executable, "-m", "saraban_mail", "check", "--config", str(office)],
        capture_output=True, text=True, env=os.environ.copy(), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    how = "(name)" if dovecot.imitates else "(special-use)"
    assert (f"inbox=INBOX junk={dovecot.junk} {how} trash={dovecot.trash} {how} "
            f"sent={dovecot.sent} {how}") in result.stdout
    # What the service will do on this server, from what it announces.
    if dovecot.imitates:
        assert "MOVE=no" in result.stdout and "SPECIAL-USE=no" in result.stdout
        assert "moves: COPY, then delete" in result.stdout
    else:
        assert "MOVE=yes UIDPLUS=yes SPECIAL-USE=yes MULTIAPPEND=yes IDLE=yes" in result.stdout


def _large_request() -> tuple[bytes, dict[str, bytes]]:
    """A request with a PDF and a photo in a nested multipart, and a forwarded mail that
    carries an attachment of its own (which stays inside the forward)."""
    inner = EmailMessage()
    inner["From"] = "ผู้ร้องเดิม <first.sender@gmail.com>"
    inner["Subject"] = "คำร้องเดิม"
    inner.set_content("คำร้องเดิม")
    inner.add_attachment(b"%PDF-1.4\n" + os.urandom(150_000), maintype="application",
                         subtype="pdf", filename="เดิม.pdf")
    files = {"แบบแปลนบ้าน.pdf": b"%PDF-1.7\n" + os.urandom(400_000),
             "ภาพถ่าย.jpg": b"\xff\xd8\xff\xe0" + os.urandom(120_000)}
    msg = EmailMessage()
    msg["From"] = "ประชาชน <citizen.large@gmail.com>"
    msg["To"] = "saraban@nongtuayang.go.th"
    msg["Subject"] = "ขออนุญาตก่อสร้างอาคาร พร้อมแบบแปลน"
    msg["Message-ID"] = "<large-request@gmail.example>"
    msg["Date"] = "Mon, 23 Nov 2026 09:00:00 +0700"
    msg.set_content("ขออนุญาตก่อสร้างอาคาร ตามแบบแปลนที่แนบมาค่ะ")
    msg.add_alternative("<p>ขออนุญาตก่อสร้างอาคาร ตามแบบแปลนที่แนบมาค่ะ</p>", subtype="html")
    msg.add_attachment(files["แบบแปลนบ้าน.pdf"], maintype="application", subtype="pdf",
                       filename="แบบแปลนบ้าน.pdf")
    msg.add_attachment(inner)
    msg.add_attachment(files["ภาพถ่าย.jpg"], maintype="image", subtype="jpeg",
                       filename="ภาพถ่าย.jpg")
    return msg.as_bytes(policy=email.policy.SMTP), files


def test_large_attachments_located_by_the_server_parse_as_the_whole_message(
    office, dovecot, imap_account, smtp
):
    raw, files = _large_request()
    deliver(dovecot, imap_account, "INBOX", raw, datetime(2026, 11, 23, 9, 5, tzinfo=UTC))
    small = samples()[0].raw
    deliver(dovecot, imap_account, "INBOX", small, datetime(2026, 11, 23, 9, 6, tzinfo=UTC))
    box = ImapMailbox(Imap(host="127.0.0.1", port=dovecot.port, security="plain",
                           username=imap_account, password=PASSWORD))
    try:
        fetched = list(box.fetch_new("INBOX", 0, None, lambda uid: False))
    finally:
        box.close()
    assert [f.raw for f in fetched] == [raw, small]
    large = fetched[0]
    # Dovecot's BODYSTRUCTURE and BODY[n.MIME]: the two attachments, not the forward's.
    assert [p.header.split(b"\r\n")[0] for p in large.parts] == [
        b"Content-Type: application/pdf", b"Content-Type: image/jpeg"]
    assert fetched[1].parts == ()
    assert _cut(raw, large.parts) is not None  # they fit the raw bytes exactly
    assert parse(raw, large.parts) == parse(raw)
    assert {a.name: a.sha256 for a in parse(raw, large.parts).attachments} == {
        **{name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "เดิม.pdf": parse(raw).attachments[1].sha256,
    }

    # The whole poll: registered, and the kept files are the attachments byte for byte.
    result = run_poll(office, "--json")
    assert result.returncode == 0, result.stderr
    kept = office.parent / "data" / "attachments" / parse(raw).identity[:20]
    saved = {p.name: p.read_bytes() for p in kept.iterdir()}
    assert saved["01-แบบแปลนบ้าน.pdf"] == files["แบบแปลนบ้าน.pdf"]
    assert saved["03-ภาพถ่าย.jpg"] == files["ภาพถ่าย.jpg"]


@pytest.mark.parametrize("imitate", ["", "courier"])
def test_a_backlog_longer_than_the_servers_command_line_is_read_whole(tmp_path, monkeypatch,
                                                                      imitate):
    """Years of history: thousands of new UIDs. Listed one by one in a FETCH or a MOVE they
    make a command line the server refuses (Dovecot: imap_max_line_length, 64 KB), and the
    folder could never be read again. Here the limit is 2 KB and the backlog 1,200 messages:
    800 spam (moved to Trash) and 400 out-of-office replies (marked read)."""
    from tests.conftest import CONFIG
    from tests.servers import start_dovecot, start_smtp
    from tests.test_crash import variant

    own = start_dovecot(settings="imap_max_line_length = 2k", imitate=imitate)
    controller, sink = start_smtp()
    try:
        account = own.account()
        by_key = {s.key: s for s in samples()}
        client = imap_client(own, account)
        for n in range(1200):
            sample = by_key["gambling_spam" if n < 800 else "out_of_office"]
            client.append("INBOX", variant(sample.raw, n, sample.key), msg_time=sample.received_at)
        client.logout()
        office = tmp_path / "config.toml"
        office.write_text(CONFIG.format(imap_port=own.port, account=account,
                                        smtp_port=controller.port), encoding="utf-8")
        monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
        first = run_poll(office, "--json")
        assert first.returncode == 0, first.stderr
        got = [r["category"] for r in records(first)]
        assert (len(got), got.count("spam"), got.count("automated")) == (1200, 800, 400)
        client = imap_client(own, account)
        counts = {folder: client.folder_status(folder, [b"MESSAGES", b"UNSEEN"])
                  for folder in ("INBOX", own.trash)}
        client.logout()
        # moved (or copied and expunged) and marked in commands naming UID ranges
        assert {f: (c[b"MESSAGES"], c[b"UNSEEN"]) for f, c in counts.items()} == {
            "INBOX": (400, 0), own.trash: (800, 800)}
        second = run_poll(office, "--json")
        assert second.returncode == 0 and second.stdout == "", second.stderr
    finally:
        controller.stop()
        own.close()

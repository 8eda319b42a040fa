"""The agency's seal against the real Dovecot and SMTP servers and a certomancer PKI: sealed
results validate (and fail once changed), protection keeps seals and earlier signatures valid,
an expired certificate or a silent TSA stops sending, and signed PDFs noticed on intake."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import os
import re
import socket
from pathlib import Path

import openpyxl
import pytest
import pyzipper
from pypdf import PdfReader

from saraban_mail import seal
from saraban_mail.demo import samples
from tests import pki as test_pki
from tests import test_results_e2e
from tests.conftest import deliver
from tests.pdfs import text_pdf
from tests.pki import person_signed, roots, seal_config
from tests.test_intake_e2e import run_poll
from tests.test_results_e2e import cli, outgoing_rows, received

pki = test_pki.pki  # fixtures, under their own names
registered = test_results_e2e.registered

PERMIT = next(s for s in samples() if s.key == "building_permit")


def with_seal(office: Path, text: str) -> Path:
    office.write_text(office.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
    return office


def write_pdf(path: Path, data: bytes | None = None) -> Path:
    path.write_bytes(data or text_pdf(["ใบอนุญาตก่อสร้างอาคาร", "Building permit"]))
    return path


def attachment_of(smtp, index: int = 0) -> tuple[str, bytes, email.message.EmailMessage]:
    message = received(smtp)[index]
    (part,) = message.iter_attachments()
    return part.get_filename(), part.get_content(), message


def test_a_sealed_result_validates_and_fails_after_one_byte_changes(registered, smtp, pki,
                                                                    tmp_path):
    with_seal(registered, seal_config(pki))
    result = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "ใบอนุญาต.pdf")),
                 "--password", "none")
    assert result.returncode == 0, result.stderr
    name, data, message = attachment_of(smtp)
    assert name == "ใบอนุญาต.pdf"
    (info,) = seal.describe(data, roots(pki))
    assert info.ok and info.trusted and info.timestamp is not None and info.timestamp_ok
    assert "หนองตัวอย่าง" in info.signer
    assert "ประทับตราอิเล็กทรอนิกส์" in message.get_body().get_content()
    assert "validation.teda.th" in message.get_body().get_content()

    # One byte of the signed content changed: the signature no longer validates.
    where = data.index(b"/MediaBox [0 0 595 842]") + len(b"/MediaBox [0 0 59")
    tampered = data[:where] + b"6" + data[where + 1:]
    (broken,) = seal.describe(tampered, roots(pki))
    assert not broken.ok and not broken.intact

    (row,) = outgoing_rows(registered)
    files = row[10]
    assert "ประทับตราอิเล็กทรอนิกส์" in files and info.serial in files
    assert f"SHA-256 ที่ส่ง {hashlib.sha256(data).hexdigest()}" in files
    assert "ประทับเวลา 20" in files

    verified = cli(registered, "verify", str(write_pdf(tmp_path / "got.pdf", data)))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PDF-Digital Signature: ผ่าน / passed" in verified.stdout
    assert "PDF-Timestamp: ผ่าน / passed" in verified.stdout
    bad = cli(registered, "verify", str(write_pdf(tmp_path / "bad.pdf", tampered)))
    assert bad.returncode != 0 and "ไม่ผ่าน / failed" in bad.stdout


def test_a_protected_result_is_encrypted_then_sealed(registered, smtp, pki, tmp_path):
    with_seal(registered, seal_config(pki))
    result = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "สำเนา.pdf")),
                 "--password", "auto")
    assert result.returncode == 0, result.stderr
    _, data, _ = attachment_of(smtp)
    password_mail = received(smtp)[1]
    password = re.search(r"^ {4}(\S{12})\s*$", password_mail.get_body().get_content(),
                         re.M).group(1)
    reader = PdfReader(io.BytesIO(data))
    assert reader.is_encrypted and reader.trailer["/Encrypt"]["/V"] == 5  # AES-256
    with pytest.raises(seal.SealError):
        seal.describe(data, roots(pki))  # no password: nothing to read
    (info,) = seal.describe(data, roots(pki), password)
    assert info.ok and info.timestamp is not None
    assert password not in str(outgoing_rows(registered))


@pytest.mark.parametrize("mode", ["none", "auto"])
def test_a_pdf_a_person_signed_is_never_rewritten(registered, smtp, pki, tmp_path, mode):
    with_seal(registered, seal_config(pki))
    original = person_signed(pki, text_pdf(["หนังสืออนุญาต ลงนามโดยนายก"]))
    result = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "อนุญาต.pdf", original)),
                 "--password", mode)
    assert result.returncode == 0, result.stderr
    name, data, message = attachment_of(smtp)
    if mode == "auto":  # protected: an AES-256 ZIP around the file (seed 004 §8 ข้อ ๔)
        assert name == "อนุญาต.zip"
        password = re.search(r"^ {4}(\S{12})\s*$", received(smtp)[1].get_body().get_content(),
                             re.M).group(1)
        with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
            with pytest.raises(RuntimeError):
                archive.read("อนุญาต.pdf")  # no password
            archive.setpassword(password.encode())
            data = archive.read("อนุญาต.pdf")
        assert "ZIP" in message.get_body().get_content()
    assert data.startswith(original)  # the service only appended its seal
    mayor, agency = seal.describe(data, roots(pki))
    assert "สมชาย" in mayor.signer and mayor.intact and mayor.valid and mayor.trusted
    assert not mayor.changed_after and mayor.ok
    assert agency.ok and "หนองตัวอย่าง" in agency.signer
    assert "มีลายมือชื่ออิเล็กทรอนิกส์เดิม" in outgoing_rows(registered)[0][10]


def test_an_expired_certificate_blocks_sending_with_one_clear_line(registered, smtp, pki,
                                                                   tmp_path):
    with_seal(registered, seal_config(pki, "expired"))
    result = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "r.pdf")),
                 "--password", "none")
    assert result.returncode == 2
    assert "expired on 2021-01-01" in result.stderr and result.stderr.count("\n") == 1
    assert smtp.messages == []
    assert not (registered.parent / "register" / "outgoing-2569.xlsx").exists()
    outbox = registered.parent / "outbox"  # a dropped file waits for a new certificate
    outbox.mkdir()
    write_pdf(outbox / "1-2569.pdf")
    polled = run_poll(registered)
    assert "outbox/1-2569.pdf" in polled.stderr and "expired" in polled.stderr
    assert (outbox / "1-2569.pdf").exists() and smtp.messages == []


def test_a_silent_tsa_keeps_the_result_waiting_until_it_answers(registered, smtp, pki, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/tsa"
    base = registered.read_text(encoding="utf-8")
    with_seal(registered, seal_config(pki).replace(pki.tsa_url, dead))
    check = cli(registered, "check")
    assert "the timestamp server (seal.tsa_url) does not answer" in check.stderr
    waiting = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "r.pdf")))
    assert waiting.returncode == 3 and "cannot be reached" in waiting.stderr
    assert waiting.stderr.count("\n") == 1
    outbox = registered.parent / "outbox"
    assert (outbox / "1-2569.pdf").exists()
    polled = run_poll(registered)
    assert "outbox/1-2569.pdf" in polled.stderr and smtp.messages == []  # reported, not sent

    registered.write_text(base + "\n" + seal_config(pki), encoding="utf-8")  # the TSA is back
    assert run_poll(registered).returncode == 0
    _, data, _ = attachment_of(smtp)
    (info,) = seal.describe(data, roots(pki))
    assert info.ok and info.timestamp is not None
    assert (outbox / "sent" / "1-2569.pdf").exists()


def test_without_require_timestamp_a_silent_tsa_gives_a_seal_without_time(registered, smtp, pki,
                                                                          tmp_path):
    with_seal(registered, seal_config(pki, require_timestamp=False).replace(
        pki.tsa_url, "http://127.0.0.1:9/tsa"))
    result = cli(registered, "send-result", "1", str(write_pdf(tmp_path / "r.pdf")),
                 "--password", "none")
    assert result.returncode == 0, result.stderr
    _, data, _ = attachment_of(smtp)
    (info,) = seal.describe(data, roots(pki))
    assert info.intact and info.valid and info.trusted and info.timestamp is None
    assert "ไม่มีการประทับเวลา" in outgoing_rows(registered)[0][10]


def test_a_signed_pdf_sent_to_the_agency_is_noted_in_the_register(office, dovecot, imap_account,
                                                                  smtp, pki):
    from email.message import EmailMessage

    with_seal(office, seal_config(pki))
    mail = email.message_from_bytes(PERMIT.raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    mail.add_attachment(person_signed(pki, text_pdf(["หนังสือรับรอง"])), maintype="application",
                        subtype="pdf", filename="certificate.pdf")
    mail.add_attachment(b"%PDF-1.4\n/ByteRange [0 1 2 3] broken", maintype="application",
                        subtype="pdf", filename="broken.pdf")
    deliver(dovecot, imap_account, "INBOX", mail.as_bytes(), PERMIT.received_at)
    result = run_poll(office)
    assert result.returncode == 0, result.stderr
    sheet = openpyxl.load_workbook(office.parent / "register" / "incoming-2569.xlsx").worksheets[0]
    header = [c.value for c in sheet[2]]
    remarks = sheet.cell(3, header.index("หมายเหตุ") + 1).value
    assert ("certificate.pdf: ลงนามโดย เทศบาลตำบลหนองตัวอย่าง / นายกเทศมนตรี สมชาย: ถูกต้อง "
            "ไม่มีการประทับเวลา") in remarks
    assert "broken.pdf: มีลายมือชื่ออิเล็กทรอนิกส์ แต่ตรวจสอบไม่ได้" in remarks


def test_check_warns_before_the_certificate_ends(office, pki, monkeypatch):
    with_seal(office, seal_config(pki, "soon"))
    monkeypatch.setenv("SARABAN_NOW", "2027-01-01T09:00:00+07:00")
    result = cli(office, "check")
    assert "expires in 8 day(s), on 2027-01-10" in result.stderr, result.stderr
    monkeypatch.setenv("SARABAN_NOW", "2026-10-01T09:00:00+07:00")
    assert "expires in" not in cli(office, "check").stderr
    assert os.environ.get("SARABAN_SEAL_PASSWORD") is None  # given by file only


def test_verify_reports_a_revoked_certificate(pki, tmp_path):
    from saraban_mail.config import Config, Seal

    settings = Seal(pkcs12=pki.p12("revoked"), password_file=pki.password_file,
                    tsa_url=pki.tsa_url, trust_roots=[pki.root_pem])
    sealed = seal.seal(text_pdf(["x"]), seal.load_key(settings), Config(seal=settings))
    (info,) = seal.describe(sealed.data, roots(pki))
    assert info.intact and info.valid and not info.ok
    config = tmp_path / "config.toml"
    config.write_text(f'[seal]\ntrust_roots = ["{pki.root_pem}"]\n', encoding="utf-8")
    result = cli(config, "verify", str(write_pdf(tmp_path / "revoked.pdf", sealed.data)))
    assert result.returncode == 2 and "[1]" in result.stdout, result.stdout + result.stderr
    unsigned = cli(config, "verify", str(write_pdf(tmp_path / "plain.pdf")))
    assert unsigned.returncode == 1 and "no electronic signature" in unsigned.stdout


LAKSAMAN = Path("/usr/share/fonts/truetype/tlwg/Laksaman.ttf")  # tests/setup-and-run.sh


def test_a_visible_stamp_in_thai_keeps_the_seal_valid(pki):
    from saraban_mail.config import Config, Seal

    settings = Seal(pkcs12=pki.p12("agency"), password_file=pki.password_file,
                    tsa_url=pki.tsa_url, visible_stamp=True, stamp_font=LAKSAMAN)
    sealed = seal.seal(text_pdf(["x"]), seal.load_key(settings), Config(seal=settings),
                       stamp="เทศบาลตำบลหนองตัวอย่าง\nวันที่ 30 พ.ย. 2569\nเลขทะเบียนส่ง 1/2569")
    (info,) = seal.describe(sealed.data, roots(pki))
    assert info.ok
    (annotation,) = PdfReader(io.BytesIO(sealed.data)).pages[0]["/Annots"]
    widget = annotation.get_object()
    assert widget["/FT"] == "/Sig" and float(widget["/Rect"][2]) > float(widget["/Rect"][0])
    assert b"Laksaman" in sealed.data  # the Thai font is embedded for the stamp's text


def test_a_visible_stamp_without_a_thai_font_is_a_config_error(office, pki):
    with_seal(office, seal_config(pki, visible_stamp=True))
    result = cli(office, "check")
    assert result.returncode == 2 and "seal.visible_stamp needs seal.stamp_font" in result.stderr


def test_the_admin_alert_tells_each_expiry_tier_once(office, smtp, pki, monkeypatch):
    text = office.read_text(encoding="utf-8").replace(
        "[agency]\n", '[agency]\nadmin_email = "it@nongtuayang.go.th"\n', 1)
    office.write_text(text + "\n" + seal_config(pki, "soon"), encoding="utf-8")

    def alerts_on(day: str) -> list[str]:
        smtp.messages.clear()
        monkeypatch.setenv("SARABAN_NOW", f"{day}T09:00:00+07:00")
        run_poll(office)
        return [m.get_body().get_content() for m in received(smtp)
                if m["To"] == "it@nongtuayang.go.th"]

    (first,) = alerts_on("2026-12-28")  # 12 days left: the 14-day tier
    assert "expires in 12 day(s), on 2027-01-10" in first
    assert alerts_on("2026-12-29") == []  # the same tier is not told again
    (last,) = alerts_on("2027-01-08")  # the 3-day tier
    assert "expires in 1 day(s)" in last

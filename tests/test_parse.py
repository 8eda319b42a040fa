"""Parsing real-world mail: Thai charsets, RFC 2047/2231, HTML, forwards, broken input."""

from __future__ import annotations

import base64
import email.policy
import hashlib
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from saraban_mail.parse import ServerPart, _cut, html_to_text, identity_of, parse

THAI = "ขอรับคำร้องขออนุญาต"


def test_windows_874_subject_and_body_decode_instead_of_becoming_replacement_chars():
    subject = base64.b64encode(THAI.encode("cp874")).decode()
    raw = (f"From: a@b.th\r\nSubject: =?windows-874?B?{subject}?=\r\n"
           "Content-Type: text/plain; charset=windows-874\r\n\r\n").encode() + THAI.encode("cp874")
    mail = parse(raw)
    assert mail.subject == THAI
    assert mail.text == THAI
    assert mail.parse_error is None


def test_tis_620_and_iso_8859_11_bodies():
    for charset in ("TIS-620", "ISO-8859-11"):
        raw = (f"From: a@b.th\r\nSubject: x\r\nContent-Type: text/plain; charset={charset}\r\n"
               "\r\n").encode() + THAI.encode("tis-620")
        assert parse(raw).text == THAI


def test_raw_8bit_thai_headers_are_repaired():
    raw = f"From: สมชาย <a@b.th>\r\nSubject: {THAI}\r\n\r\nbody".encode("cp874")
    mail = parse(raw)
    assert (mail.subject, mail.from_name, mail.from_addr) == (THAI, "สมชาย", "a@b.th")


def test_thai_display_name_split_across_encoded_words_gains_no_space():
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "เทศบาลตำบลหนองตัวอย่าง จังหวัดตัวอย่าง <a@b.th>"
    msg.set_content("x")
    assert parse(msg.as_bytes()).from_name == "เทศบาลตำบลหนองตัวอย่าง จังหวัดตัวอย่าง"


def test_rfc2231_thai_attachment_name_size_and_sha256():
    from urllib.parse import quote

    raw = (
        "From: a@b.th\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{quote('สำเนาบัตร.pdf')}\r\n\r\n"
        f"{base64.b64encode(b'%PDF-1.4 data').decode()}\r\n--b--\r\n"
    ).encode()
    (attachment,) = parse(raw).attachments
    assert attachment.name == "สำเนาบัตร.pdf"
    assert attachment.size == 13
    assert attachment.sha256 == hashlib.sha256(b"%PDF-1.4 data").hexdigest()


def test_html_only_mail_becomes_text_without_scripts_or_styles():
    msg = EmailMessage()
    msg["From"] = "a@b.th"
    msg.set_content("<html><style>p{}</style><script>alert(1)</script><p>ขอ&nbsp;ข้อมูล</p>"
                    "<p>line two</p></html>", subtype="html")
    text = parse(msg.as_bytes()).text
    assert "alert" not in text and "p{}" not in text
    assert "ขอ\xa0ข้อมูล" in text and "line two" in text


def test_html_to_text_survives_garbage():
    assert "a" in html_to_text("<p>a<div <<<>>")


def test_forwarded_message_yields_the_original_sender():
    original = EmailMessage()
    original["From"] = "มานี <manee@hotmail.com>"
    original["Reply-To"] = "manee.work@hotmail.com"
    original["Subject"] = "ขอหนังสือรับรอง"
    original.set_content("ข้อความเดิม")
    outer = EmailMessage()
    outer["From"] = "staff@gmail.com"
    outer["Subject"] = "Fwd: ขอหนังสือรับรอง"
    outer.set_content("ส่งต่อ")
    outer.add_attachment(original)
    mail = parse(outer.as_bytes())
    (forwarded,) = mail.forwarded
    assert (forwarded.from_addr, forwarded.reply_to) == ("manee@hotmail.com", "manee.work@hotmail.com")
    assert "ข้อความเดิม" in mail.text


def test_subject_with_cr_lf_becomes_one_line():
    raw = b"From: a@b.th\r\nSubject: =?utf-8?q?hello=0D=0ABcc=3A_x=40evil.example?=\r\n\r\nx"
    mail = parse(raw)
    assert "\n" not in mail.subject and "\r" not in mail.subject


def test_two_deliveries_of_one_mail_share_an_identity_and_no_message_id_still_has_one():
    raw = b"From: a@b.th\r\nSubject: x\r\n\r\nbody\r\n"
    again = b"Received: from relay by mx; Mon, 1 Jan 2026 00:00:00 +0000\r\n" + raw
    assert parse(raw).identity == parse(again).identity
    assert parse(raw).identity != parse(raw.replace(b"body", b"other")).identity
    assert identity_of(raw, "<a@x>") != identity_of(raw, "<b@x>")


def test_unusable_sender_is_empty():
    assert parse(b"From: not an address\r\n\r\nx").from_addr == ""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes):
    mail = parse(raw)
    assert isinstance(mail.identity, str) and len(mail.identity) == 40


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["utf-8", "windows-874", "x-unknown", "tis-620"]))
def test_parse_never_raises_on_odd_charsets(body: str, charset: str):
    raw = (f"From: a@b.th\r\nSubject: =?{charset}?B?{base64.b64encode(body.encode()).decode()}?=\r\n"
           f"Content-Type: text/plain; charset={charset}\r\n\r\n").encode() + body.encode()
    parse(raw)


# -- large attachments cut out where the IMAP server located them -----------------------

def _with_attachments(*sizes: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "ประชาชน <citizen@gmail.com>"
    msg["To"] = "saraban@nongtuayang.go.th"
    msg["Subject"] = "ขอยื่นเอกสารประกอบคำขอ"
    msg["Message-ID"] = "<cut-1@gmail.example>"
    msg.set_content(THAI)
    msg.add_alternative(f"<p>{THAI}</p>", subtype="html")
    for number, size in enumerate(sizes):
        data = hashlib.sha256(str(number).encode()).digest() * (size // 32)
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=f"ใบ {number}.pdf")
    return msg


def _located(raw: bytes, msg: EmailMessage) -> list[ServerPart]:
    """What BODYSTRUCTURE and BODY[n.MIME] give for each attachment (test_imap_cut checks
    the same against Dovecot): the part's header bytes, content length, boundary."""
    boundary = msg.get_boundary().encode()
    found, at = [], 0
    while (start := raw.find(b"Content-Type: application/pdf", at)) >= 0:
        begin = raw.index(b"\r\n\r\n", start) + 4
        end = raw.index(b"\r\n--" + boundary, begin)
        found.append(ServerPart(raw[start:begin], end - begin, boundary))
        at = end
    return found


def test_attachments_cut_where_the_server_says_parse_as_the_whole_message_does():
    msg = _with_attachments(300_000, 90_000)
    raw = msg.as_bytes(policy=email.policy.SMTP)
    parts = _located(raw, msg)
    assert len(parts) == 2
    skeleton, contents = _cut(raw, parts) or (b"", {})
    assert len(contents) == 2 and len(skeleton) < 10_000  # the stdlib parser sees 10 KB
    whole, cut = parse(raw), parse(raw, parts)
    assert cut == whole and cut.parse_error is None
    assert [a.data for a in cut.attachments] == [a.data for a in whole.attachments]
    assert cut.attachments[0].sha256 == hashlib.sha256(
        msg.get_payload()[1].get_content()).hexdigest()
    assert cut.text == whole.text and THAI in cut.text


def test_hints_that_do_not_fit_the_message_exactly_fall_back_to_the_whole_parse():
    msg = _with_attachments(200_000)
    raw = msg.as_bytes(policy=email.policy.SMTP)
    good = _located(raw, msg)[0]
    whole = parse(raw)
    wrong = [
        ServerPart(good.header, good.octets - 4, good.boundary),  # content too short
        ServerPart(good.header, good.octets + 4, good.boundary),  # runs into the boundary
        ServerPart(good.header, good.octets, b"another-boundary"),
        ServerPart(good.header.replace(b"pdf", b"zip"), good.octets, good.boundary),
        ServerPart(b"\r\n", good.octets, good.boundary),  # no header at all
    ]
    assert _cut(raw, [good]) is not None
    for hint in wrong:
        assert _cut(raw, [hint]) is None, hint
        result = parse(raw, [hint])
        assert result == whole, hint
        assert [a.data for a in result.attachments] == [a.data for a in whole.attachments]


def test_damaged_base64_in_a_located_part_is_decoded_leniently_as_before():
    msg = _with_attachments(100_000)
    raw = msg.as_bytes(policy=email.policy.SMTP)
    part = _located(raw, msg)[0]
    begin = raw.index(part.header) + len(part.header)
    damaged = raw[:begin] + b"QUJD=" + raw[begin + 5:]  # padding in the middle of the data
    assert _cut(damaged, [part]) is None
    result = parse(damaged, [part])
    assert result == parse(damaged) and result.attachments[0].size > 0


def test_a_mail_cannot_pass_off_its_own_text_as_a_cut_part():
    msg = _with_attachments(100_000)
    msg.add_attachment(b"x", maintype="application", subtype="pdf", filename="forged.pdf")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    forged = raw.replace(b"eA==", b"saraban-cut-0000000000000000-0")
    assert forged != raw
    result = parse(forged, _located(forged, msg)[:1])  # the real one is cut, not the forged
    assert result == parse(forged)  # sha256 of each attachment compared too
    assert result.attachments[0].size == 100_000 - 100_000 % 32
    assert result.attachments[-1].name == "forged.pdf"


def test_headers_remembered_by_the_policy_parse_as_the_stdlib_does(monkeypatch):
    from saraban_mail import parse as parse_module
    from saraban_mail.demo import samples

    raws = [sample.raw for sample in samples()]
    raws.append(_with_attachments(100_000).as_bytes(policy=email.policy.SMTP))
    first, again = [parse(raw) for raw in raws], [parse(raw) for raw in raws]  # cold, warm
    monkeypatch.setattr(parse_module, "POLICY", email.policy.default)
    assert first == again == [parse(raw) for raw in raws]


def test_the_remembered_headers_stay_bounded():
    from saraban_mail.parse import POLICY

    made = POLICY.header_factory._made  # type: ignore[attr-defined]
    for n in range(5_000):
        parse(f"From: a{n}@b.th\r\nSubject: {n}\r\nContent-Type: text/plain; x={n}\r\n\r\nx"
              .encode())
    parse(b"From: a@b.th\r\nSubject: " + b"y" * 5_000 + b"\r\n\r\nx")
    assert 0 < len(made) <= 4096 and all(len(value) <= 998 for _, value in made)

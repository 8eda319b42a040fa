"""Sending results: a signed PDF back to the citizen, logged in the outgoing register.

Validate the files, protect personal documents with a password sent separately,
reserve an outgoing number in the journal, send, and only then write the outgoing row,
point the incoming row's การปฏิบัติ at it and file a copy in Sent."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import secrets
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from imapclient.exceptions import IMAPClientError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError

from saraban_mail.calendar import BusinessCalendar, buddhist_year
from saraban_mail.config import Config
from saraban_mail.errors import RegisterError, SarabanError, SendError
from saraban_mail.files import shared_dir, shared_write
from saraban_mail.journal import Journal
from saraban_mail.mailbox import Mailbox
from saraban_mail.register import (
    INCOMING,
    OUTGOING,
    Look,
    annotate_rows,
    append_rows,
    highest_number,
    incoming_path,
    read_rows,
    service_ref,
    workbook_path,
)
from saraban_mail.replies import Envelope, Reply, Templates, build
from saraban_mail.send import Outgoing, Transport
from saraban_mail.thaitext import english_datetime, fold, thai_date, thai_datetime

log = logging.getLogger("saraban_mail")

ACCEPTED = {"pdf": "application/pdf", "jpg": "image/jpeg", "jpeg": "image/jpeg",
            "png": "image/png"}
OUTBOX_NAME = re.compile(r"^(\d+)-(\d{4})(?:\.(pdf|jpe?g|png))?$", re.IGNORECASE)
# No look-alike characters (0/O, 1/l/I): the citizen types it from another mail.
PASSWORD_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"


class ResultError(SarabanError):
    """A result cannot be sent as asked (unknown receipt, bad file, too large, ...)."""


class ResultPending(ResultError):
    """A result that can go later (the timestamp server is unreachable): it waits."""


class SealUnavailable(ResultError):
    """The seal cannot be made until the administrator acts (an expired certificate, a wrong
    password): `send-result` refuses, and files in outbox/ wait there."""


@dataclass(frozen=True)
class Target:
    """The request a result answers, from the journal or from a clerk's row."""

    receipt_year: int
    receipt_no: int
    recipient: str
    name: str
    subject: str
    thread_id: str = ""
    references: tuple[str, ...] = ()
    ref: str = ""  # the incoming row's service reference; empty for a clerk's row
    personal: bool = False


@dataclass(frozen=True)
class Document:
    name: str
    content_type: str
    data: bytes  # as sent (sealed, encrypted or zipped as the file's handling says)
    sha256: str  # of the file the clerk gave (the signed original)
    encrypted: bool
    seal_line: str = ""  # the outgoing register's line on the seal and the SHA-256 as sent
    zipped: bool = False
    sealed: bool = False


# -- which request ------------------------------------------------------------------------


_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def find_target(journal: Journal, config: Config, year: int, number: int) -> Target:
    personal_words = [fold(k) for k in config.results.personal_keywords]
    found = journal.message_of_receipt(year, number)
    if found is not None:
        record = found.record
        return Target(
            receipt_year=year, receipt_no=number, recipient=record.requester,
            name=record.requester_name, subject=record.subject,
            thread_id=record.thread_id or record.message_id,
            references=record.references, ref=service_ref(found.identity),
            personal=record.high_risk_rule == "personal_data_disclosure"
            or any(w in fold(record.subject) for w in personal_words),
        )
    path = incoming_path(config.paths.register_dir, year)
    if not path.exists():
        raise ResultError(f"no receipt {number}/{year}: neither the journal nor {path.name} has it")
    rows = [r for r in read_rows(path, INCOMING)[1] if r.number == number and not r.ref]
    if not rows:
        raise ResultError(f"no receipt {number}/{year} in {path.name}")
    values = rows[0].values
    address = _ADDRESS.search(f"{values.get('email') or ''} {values.get('from') or ''}")
    if not address:
        raise ResultError(
            f"row {number}/{year} has no email address: fill in อีเมลผู้ส่ง, or use --to"
        )
    subject = str(values.get("subject") or "")
    return Target(
        receipt_year=year, receipt_no=number, recipient=address.group(0).lower(),
        name=re.sub(r"<[^>]*>", "", str(values.get("from") or "")).strip(), subject=subject,
        personal=any(w in fold(subject) for w in personal_words),
    )


# -- which files ---------------------------------------------------------------------------


def load_files(paths: list[Path], config: Config) -> list[tuple[str, str, bytes]]:
    """Read and check every file before anything is sent: all or nothing."""
    if not paths:
        raise ResultError("no file to send")
    files, total = [], 0
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ResultError(f"{path}: cannot read ({exc.strerror})") from exc
        total += len(data)
        kind = _sniff(data)
        if kind == "pdf":
            try:
                reader = PdfReader(io.BytesIO(data))
                if reader.is_encrypted:
                    raise ResultError(f"{path.name}: already password-protected; give the plain PDF")
                if len(reader.pages) == 0:
                    raise ResultError(f"{path.name}: the PDF has no pages")
            except (PyPdfError, ValueError, KeyError, TypeError) as exc:
                raise ResultError(f"{path.name}: not a readable PDF ({exc})") from exc
        elif kind in ("jpeg", "png"):
            if not config.results.allow_images:
                raise ResultError(f"{path.name}: an image; scan to PDF, or set results.allow_images")
        else:
            raise ResultError(f"{path.name}: not a PDF (accepted: PDF; JPEG/PNG if allowed)")
        suffix = {"pdf": ".pdf", "jpeg": ".jpg", "png": ".png"}[kind]
        name = path.name if path.suffix.lower() in (suffix, ".jpeg") else f"{path.stem}{suffix}"
        files.append((name, ACCEPTED["jpg" if kind == "jpeg" else kind], data))
    limit = config.results.max_total_mb * 1024 * 1024
    if total > limit:
        raise ResultError(
            f"files total {total / 1048576:.1f} MB, over the {config.results.max_total_mb:g} MB "
            "limit the recipient's server may accept (results.max_total_mb)"
        )
    return files


def _sniff(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return ""


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))


def protect(files: list[tuple[str, str, bytes]], password: str | None,
            sealer: Sealer | None = None) -> list[Document]:
    """Each file sealed, encrypted then sealed, zipped or left as it is (sealing.handling):
    a PDF a person signed is never rewritten."""
    from saraban_mail import seal, sealing

    documents = []
    for name, content_type, data in files:
        digest = hashlib.sha256(data).hexdigest()
        is_pdf = content_type == "application/pdf"
        if password is not None and not is_pdf:
            raise ResultError(f"{name}: an image cannot carry a password; scan it to PDF")
        signed = is_pdf and seal.has_signature(data)
        how = sealing.handling(pdf=is_pdf, signed=signed, protect=password is not None,
                               seal=sealer is not None)
        out, sealed = data, None
        if how.encrypt:
            writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
            writer.encrypt(user_password=password or "", owner_password=secrets.token_urlsafe(24),
                           algorithm="AES-256")
            buffer = io.BytesIO()
            writer.write(buffer)
            out = buffer.getvalue()
        if how.seal and sealer is not None:
            try:
                sealed = seal.seal(out, sealer.key, sealer.config,
                                   password=password if how.encrypt else None, stamp=sealer.stamp)
            except seal.SealPending as exc:
                raise ResultPending(f"{name}: {exc}") from None
            except seal.SealError as exc:
                raise ResultError(f"{name}: {exc}") from None
            out = sealed.data
        sent_name, sent_type = name, content_type
        if how.zip:
            out, sent_name, sent_type = _zipped(name, out, password or ""), \
                f"{Path(name).stem}.zip", "application/zip"
        line = sealing.seal_line(sealed is not None, subject=sealed.subject if sealed else "",
                                 serial=sealed.serial if sealed else "",
                                 timestamp=sealed.timestamp if sealed else None,
                                 sha256=hashlib.sha256(out).hexdigest(), signed_before=signed,
                                 zipped=how.zip)
        documents.append(Document(sent_name, sent_type, out, digest,
                                  how.encrypt or how.zip, line, how.zip, sealed is not None))
    return documents


def _zipped(name: str, data: bytes, password: str) -> bytes:
    import pyzipper

    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED,
                             encryption=pyzipper.WZ_AES) as archive:  # 256-bit by default
        archive.setpassword(password.encode())
        archive.writestr(name, data)
    return buffer.getvalue()


@dataclass(frozen=True)
class Sealer:
    """The seal's key and settings, loaded once for a batch of results."""

    key: Any
    config: Config
    stamp: str = ""


def sealer_for(config: Config, now: datetime) -> Sealer | None:
    """None without [seal]; an expired certificate or a wrong password is one line."""
    from saraban_mail import seal

    if config.seal.pkcs12 is None:
        return None
    try:
        key = seal.load_key(config.seal)
        seal.usable(key, now)
    except (seal.SealError, SarabanError) as exc:
        raise SealUnavailable(str(exc)) from None
    return Sealer(key, config)


# -- the messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    year: int
    send_no: int
    result: Reply
    password_mail: Reply | None
    row: dict[str, Any]
    documents: list[Document]


def prepare(config: Config, templates: Templates, target: Target, documents: list[Document],
            *, year: int, send_no: int, now: datetime, to: str = "", subject: str = "",
            password: str | None = None, doc_no: str = "") -> Prepared:
    agency = config.agency
    recipient = (to or target.recipient).lower()
    receipt = f"{target.receipt_no}/{target.receipt_year}"
    outgoing = f"{send_no}/{year}"
    context = {
        "agency": agency, "receipt": receipt, "outgoing": outgoing,
        "matter": target.subject or "(ไม่มีหัวเรื่อง / no subject)",
        "requester_name": target.name, "files": [d.name for d in documents],
        "protected": password is not None, "password": password or "",
        "sealed": any(d.sealed for d in documents), "zipped": any(d.zipped for d in documents),
        "sent_th": thai_datetime(now), "sent_en": english_datetime(now),
    }
    default_subject, body = templates.render("result", context)
    envelope = Envelope(agency.name_th, agency.email, agency.domain, target.thread_id,
                        target.references)
    result = build("result", recipient, subject or default_subject, body, envelope, now,
                   auto=None, files=tuple((d.name, d.content_type, d.data) for d in documents))
    password_mail = None
    if password is not None:
        pw_subject, pw_body = templates.render("result_password", context)
        password_mail = build("result_password", recipient, pw_subject, pw_body,
                              Envelope(agency.name_th, agency.email, agency.domain,
                                       result.message_id, (result.message_id,)),
                              now, auto=None)
    remarks = ["ส่งทางอีเมล"]
    if password is not None:
        remarks.append("ไฟล์ตั้งรหัสผ่าน รหัสผ่านส่งแยกอีกฉบับ (ไม่บันทึกไว้)")
    row = {
        "send_no": send_no, "doc_no": doc_no, "doc_date": now.date().isoformat(),
        "from": agency.name_th, "to": f"{target.name} <{recipient}>" if target.name else recipient,
        "subject": subject or f"แจ้งผลการดำเนินการ: {context['matter']}",
        "remarks": "\n".join(remarks), "email": recipient,
        "answers": receipt,
        "files": "\n".join(
            f"{d.name} ({len(d.data):,} bytes, SHA-256 ของต้นฉบับ {d.sha256})"
            + (" เข้ารหัส AES-256" if d.encrypted else "")
            + (f"\n  {d.seal_line}" if d.seal_line else "") for d in documents),
        "message_id": result.message_id, "ref": f"SR-{year}-{send_no}",
    }
    return Prepared(year, send_no, result, password_mail, row, documents)


def wants_password(mode: str, config: Config, target: Target) -> bool:
    if mode == "auto":
        return True
    if mode == "none":
        return False
    if mode == "default":
        return config.results.password == "auto" or target.personal
    return True  # an explicit password


def queue(journal: Journal, config: Config, templates: Templates, target: Target,
          files: list[tuple[str, str, bytes]], *, now: datetime, to: str = "", subject: str = "",
          password_mode: str = "default", doc_no: str = "", source: str = "",
          dry_run: bool = False, force: str | None = None, actor: str = "clerk") -> Prepared:
    """Reserve the next outgoing number and queue the result (and its password mail)."""
    from saraban_mail.matters import MatterError, identity_gate

    try:
        identity_gate(journal, target.receipt_year, target.receipt_no, force, now, actor)
    except MatterError as exc:
        raise ResultError(str(exc)) from None
    password = None
    if wants_password(password_mode, config, target):
        password = password_mode if password_mode not in ("auto", "default") else new_password()
    year = buddhist_year(now)
    path = workbook_path(config.paths.register_dir, OUTGOING, year)
    try:
        in_sheet = highest_number(path, OUTGOING)
    except RegisterError as exc:
        raise ResultError(f"{exc}; no outgoing number can be given safely") from exc
    # Sealed before the journal's lock is taken (the TSA may be slow); the stamp names the
    # number the transaction then gives, checked below.
    expected = max(in_sheet, journal.highest_send_no(year)) + 1
    sealer = sealer_for(config, now)
    if sealer is not None and config.seal.visible_stamp:
        sealer = replace(sealer, stamp=f"{config.agency.name_th}\nวันที่ {thai_date(now.date())}"
                                       f"\nเลขทะเบียนส่ง {expected}/{year}")
    documents = protect(files, password, sealer)
    with journal.transaction():
        send_no = max(in_sheet, journal.highest_send_no(year)) + 1
        if sealer is not None and sealer.stamp and send_no != expected:
            raise ResultPending(f"outgoing number {expected}/{year} was taken while sealing; "
                                "sealed again at the next try")
        prepared = prepare(config, templates, target, documents, year=year, send_no=send_no,
                           now=now, to=to, subject=subject, password=password, doc_no=doc_no)
        if not dry_run:
            journal.add_result(
                year=year, send_no=send_no, receipt_year=target.receipt_year,
                receipt_no=target.receipt_no, recipient=prepared.result.recipient,
                message_id=prepared.result.message_id, raw=prepared.result.raw,
                password_raw=prepared.password_mail.raw if prepared.password_mail else None,
                row=prepared.row | {"incoming_ref": target.ref}, source=source, now=now,
            )
    return prepared


def previous_result_gate(journal: Journal, year: int, number: int, force: str | None,
                         now: datetime, actor: str) -> None:
    """A second result, or one for a disposed matter, is most often a wrong receipt number:
    refused unless forced, and the reason is kept in the matter's history."""
    from saraban_mail.matters import DISPOSED

    why = []
    for earlier in journal.results_of_receipt(year, number):
        sent = earlier["sent_at"] or ""
        how = (f"sent {thai_date(datetime.fromisoformat(sent).date())}" if sent else
               "not sent: gave up" if earlier["gave_up_at"] else "queued, not yet sent")
        why.append(f"already has a result ({earlier['send_no']}/{earlier['year']}, {how})")
    if journal.state_of(year, number) == DISPOSED:
        why.append("was disposed (จำหน่ายเรื่อง)")
    if not why:
        return
    if not force:
        raise ResultError(f"matter {number}/{year} {' and '.join(why)}: check the receipt "
                          "number, or send anyway with --force REASON")
    journal.add_event(year, number, kind="result_check_overridden", actor=actor, now=now,
                      detail={"reason": force, "why": " and ".join(why)})


# -- delivering what is queued ------------------------------------------------------------


def deliver(journal: Journal, config: Config, transport: Transport, mailbox: Mailbox | None,
            calendar: BusinessCalendar, clock: Callable[[], datetime]) -> list[str]:
    """Send queued results (each once), then register, annotate and file them."""
    problems: list[str] = []
    for result in journal.results_to_send():
        problems += _send_one(journal, config, transport, result, clock)
    problems += _write_outgoing_rows(journal, config, calendar, clock)
    problems += _annotate_incoming(journal, config, calendar, clock)
    sent_folder = mailbox.folders.sent if mailbox else None
    if mailbox is not None and sent_folder:
        for result in journal.results_where("filed_at IS NULL"):
            try:
                # An earlier attempt may have stored it before the poll died: look first.
                if not (result["filing_at"] and mailbox.holds_message_ids(
                        sent_folder, [result["message_id"]])):
                    journal.update_result(result["id"], filing_at=clock())
                    mailbox.append(sent_folder, result["raw"])
            except (SarabanError, OSError, IMAPClientError) as exc:
                problems.append(f"copy of result {result['send_no']}/{result['year']} to "
                                f"{sent_folder} failed: {exc}; retried next poll")
                break
            journal.update_result(result["id"], filed_at=clock())
    return problems


def _send_one(journal: Journal, config: Config, transport: Transport, result: Any,
              clock: Callable[[], datetime]) -> list[str]:
    label = f"result {result['send_no']}/{result['year']}"
    steps = []
    if result["sent_at"] is None:
        steps.append(("sent_at", result["raw"]))
    if result["password_raw"] is not None:
        steps.append(("password_sent_at", result["password_raw"]))  # always after the document
    for field, raw in steps:
        try:
            (outcome,) = transport.send_all(config.agency.email,
                                            [Outgoing(result["id"], result["recipient"], raw)])
        except SendError as exc:
            journal.update_result(result["id"], attempts=result["attempts"] + 1,
                                  last_error=str(exc)[:500])
            return [f"{label}: {exc}; it stays queued"]
        if not outcome.ok:
            give_up = clock() if outcome.permanent else None
            journal.update_result(result["id"], attempts=result["attempts"] + 1,
                                  last_error=outcome.error[:500], gave_up_at=give_up)
            state = "refused for good" if outcome.permanent else "it stays queued"
            return [f"{label}: {outcome.error} ({state})"]
        if field == "sent_at":
            with journal.transaction():
                journal.update_result(result["id"], sent_at=clock(), last_error=None)
                journal.add_event(result["receipt_year"], result["receipt_no"],
                                  kind="result_sent", actor="service", now=clock(),
                                  state="result_sent",
                                  detail={"outgoing": f"{result['send_no']}/{result['year']}",
                                          "message_id": result["message_id"],
                                          "recipient": result["recipient"]})
        else:  # the password now exists only in the citizen's mailbox
            journal.update_result(result["id"], password_sent_at=clock(), password_raw=None)
    return []


def _look(config: Config) -> Look:
    settings = config.registers
    return Look.of(settings)


def _write_outgoing_rows(journal: Journal, config: Config, calendar: BusinessCalendar,
                         clock: Callable[[], datetime]) -> list[str]:
    problems = []
    by_year: dict[int, list] = defaultdict(list)
    for result in journal.results_where("row_written_at IS NULL"):
        by_year[result["year"]].append(result)
    for year, results in by_year.items():
        path = workbook_path(config.paths.register_dir, OUTGOING, year)
        rows = []
        for result in results:
            row = json.loads(result["row"])
            row.pop("incoming_ref", None)
            sent = datetime.fromisoformat(result["sent_at"]).astimezone(calendar.tz)
            sent = sent.replace(microsecond=0)
            rows.append(row | {"sent_at": sent.isoformat(), "doc_date": sent.date().isoformat()})
        try:
            append_rows(path, OUTGOING, f"ทะเบียนหนังสือส่ง {config.agency.name_th} ปี พ.ศ. {year}",
                        rows, look=Look.of(config.registers), backups=config.registers.backups,
                        stale_hours=config.registers.stale_lock_hours, sharing=config.sharing,
                        now=clock())
        except RegisterError as exc:
            problems.append(f"{exc}: {len(rows)} outgoing row(s) wait in the journal")
            continue
        with journal.transaction():
            for result in results:
                journal.update_result(result["id"], row_written_at=clock())
    return problems


def _annotate_incoming(journal: Journal, config: Config, calendar: BusinessCalendar,
                       clock: Callable[[], datetime]) -> list[str]:
    problems = []
    by_year: dict[int, list] = defaultdict(list)
    for result in journal.results_where("action_written_at IS NULL"):
        by_year[result["receipt_year"]].append(result)
    for year, results in by_year.items():
        notes = []
        for result in results:
            sent = datetime.fromisoformat(result["sent_at"]).astimezone(calendar.tz)
            ref = json.loads(result["row"]).get("incoming_ref", "")
            notes.append((result["receipt_no"], ref,
                          f"ส่งผลทางอีเมลแล้ว ทะเบียนส่งที่ {result['send_no']}/{result['year']} "
                          f"เมื่อ {thai_date(sent.date())}"))
        now = clock().astimezone(calendar.tz)
        try:
            done = annotate_rows(
                incoming_path(config.paths.register_dir, year), INCOMING, "action", notes,
                look=Look.of(config.registers), summary=journal.summary(year, as_of=thai_datetime(now)),
                agency=config.agency.name_th, backups=config.registers.backups,
                stale_hours=config.registers.stale_lock_hours, sharing=config.sharing, now=now,
            )
        except RegisterError as exc:
            problems.append(f"{exc}: the การปฏิบัติ note of {len(notes)} row(s) waits")
            continue
        with journal.transaction():
            for result in results:
                if result["receipt_no"] in done:
                    journal.update_result(result["id"], action_written_at=clock())
        missing = sorted({r["receipt_no"] for r in results} - set(done))
        if missing:
            problems.append(f"incoming rows {missing} of {year} not found for the การปฏิบัติ note; "
                            "retried next poll")
    return problems


# -- the outbox folder ---------------------------------------------------------------------


def outbox_entries(folder: Path) -> list[tuple[Path, int, int]]:
    """(path, number, year) of N-YYYY.pdf files and N-YYYY/ folders dropped in outbox/."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        match = OUTBOX_NAME.match(entry.name)
        if entry.name.startswith(".") or not match:
            continue
        if entry.is_dir() or match.group(3):
            found.append((entry, int(match.group(1)), int(match.group(2))))
    return found


# What a Windows PC or a file manager leaves in a shared folder by itself: never a result.
_SYSTEM_FILES = ("thumbs.db", "desktop.ini", ".ds_store")
_NEAR_NAME = re.compile(r"^\D*(\d+)\D+(\d{4})\D*$")


def outbox_strays(folder: Path) -> list[Path]:
    """What a clerk dropped in outbox/ under a name that matches no receipt (result.pdf,
    12_2569.pdf): hidden files, owner files (~$...) and sent/, failed/ left alone."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if (name.startswith((".", "~$")) or name.lower() in _SYSTEM_FILES
                or (entry.is_dir() and name in ("sent", "failed"))):
            continue
        match = OUTBOX_NAME.match(name)
        if not (match and (entry.is_dir() or match.group(3))):
            found.append(entry)
    return found


def _meant(entry: Path) -> str:
    """The receipt a near-miss name seems to mean (12_2569.pdf: 12-2569), or ''."""
    near = _NEAR_NAME.match(entry.stem if entry.is_file() else entry.name)
    return f"{int(near.group(1))}-{near.group(2)}" if near else ""


def stray_note(entry: Path) -> str:
    """The .txt left beside a stray in outbox/failed/: which names the service expects."""
    example = _meant(entry) or "12-2569"
    return (
        f"ไฟล์ {entry.name} ไม่ได้ส่ง: ชื่อไม่ตรงกับเลขทะเบียนรับใด\n"
        f"ตั้งชื่อไฟล์ผลเป็น เลขรับ-ปี พ.ศ. เช่น {example}.pdf หรือสร้างโฟลเดอร์ {example}/ "
        "ใส่ไฟล์ผลทั้งหมดไว้ในนั้น แล้ววางใน outbox/ อีกครั้ง\n"
        f"Not sent: {entry.name} names no receipt. Expected N-YYYY.pdf (e.g. {example}.pdf; "
        f".jpg/.png when images are allowed) or a folder N-YYYY/ (e.g. {example}/) with the "
        "files, N the receipt number and YYYY its Buddhist-era year.\n"
    )


def _files_of(entry: Path) -> list[Path]:
    return sorted(p for p in entry.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if entry.is_dir() else [entry]


def _source_key(entry: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"outbox:{entry.name}:{digest.hexdigest()[:16]}"


def _move(entry: Path, folder: Path, config: Config) -> Path:
    """Into outbox/sent/ or failed/, folders the clerks' group shares (the entry keeps the
    mode and group it was dropped with: a rename)."""
    shared_dir(folder, config.sharing)
    target = folder / entry.name
    if target.exists():
        target = folder / f"{entry.stem}-{datetime.now():%Y%m%d%H%M%S}{entry.suffix}"
    shutil.move(str(entry), target)
    return target


def queue_outbox(journal: Journal, config: Config, templates: Templates,
                 clock: Callable[[], datetime]) -> list[str]:
    """Queue what clerks dropped in outbox/; refused entries go to outbox/failed/."""
    problems = []
    outbox = config.results.outbox_dir
    for entry in outbox_strays(outbox):
        note, meant = stray_note(entry), _meant(entry)
        if meant:
            meant = f"; did you mean {meant}{entry.suffix if entry.is_file() else '/'}?"
        try:
            moved = _move(entry, outbox / "failed", config)
            shared_write(moved.with_name(moved.name + ".txt"), note.encode(), config.sharing)
        except OSError as exc:  # open on a clerk's PC: moved at a later poll
            problems.append(f"outbox/{entry.name}: names no receipt and cannot be moved "
                            f"({exc.strerror or exc})")
            continue
        problems.append(f"outbox/{entry.name}: the name matches no receipt (expected N-YYYY.pdf "
                        f"or a folder N-YYYY/){meant} (moved to outbox/failed/)")
    for entry, number, year in outbox_entries(outbox):
        files = _files_of(entry)
        key = _source_key(entry, files)
        if journal.result_of_source(key) is not None:
            continue  # queued already; moved to sent/ once it has gone
        try:
            target = find_target(journal, config, year, number)
            queue(journal, config, templates, target, load_files(files, config), now=clock(),
                  source=key)
        except (ResultPending, SealUnavailable) as exc:  # stays in outbox/: tried next poll
            problems.append(f"outbox/{entry.name}: {exc}")
            continue
        except ResultError as exc:
            moved = _move(entry, outbox / "failed", config)
            shared_write(moved.with_name(moved.name + ".txt"), f"{exc}\n".encode(),
                         config.sharing)
            problems.append(f"outbox/{entry.name}: {exc} (moved to outbox/failed/)")
    return problems


def settle_outbox(journal: Journal, config: Config) -> None:
    """Move outbox entries whose result has gone to outbox/sent/."""
    outbox = config.results.outbox_dir
    for entry, _, _ in outbox_entries(outbox):
        result = journal.result_of_source(_source_key(entry, _files_of(entry)))
        if result is not None and result["sent_at"] is not None and (
            result["password_raw"] is None
        ):
            _move(entry, outbox / "sent", config)

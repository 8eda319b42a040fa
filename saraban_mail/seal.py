"""The agency's electronic seal (ตราประทับอิเล็กทรอนิกส์): the PKCS#12 loaded, PDFs sealed with
pyHanko (PAdES B-T, B-LT where revocation data can be fetched), signatures found and described."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from saraban_mail.config import Config
from saraban_mail.config import Seal as SealSettings
from saraban_mail.errors import SarabanError
from saraban_mail.sealing import SignatureInfo

log = logging.getLogger("saraban_mail")


class SealError(SarabanError):
    """The seal cannot be made (no key, a wrong password, an expired certificate)."""


class SealPending(SealError):
    """The seal could be made later (the TSA is unreachable): the result waits."""


@dataclass(frozen=True)
class SealKey:
    signer: object  # pyhanko's SimpleSigner
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Sealed:
    data: bytes  # as sent
    sha256: str  # of `data`
    subject: str
    serial: str
    timestamp: datetime | None  # the TSA's time; None when sealed without one
    level: str  # "B-LT", "B-T" or "B-B"


# -- the key ---------------------------------------------------------------------------------


def load_key(settings: SealSettings) -> SealKey:
    from pyhanko.sign import signers

    if settings.pkcs12 is None:
        raise SealError("seal.pkcs12 is not set")
    if not settings.pkcs12.is_file():
        raise SealError(f"seal.pkcs12: no file {settings.pkcs12}")
    try:
        signer = signers.SimpleSigner.load_pkcs12(
            str(settings.pkcs12), passphrase=settings.secret().encode())
    except (ValueError, OSError) as exc:
        raise SealError(f"seal.pkcs12 {settings.pkcs12.name}: not a PKCS#12 file ({exc})") from None
    if signer is None:  # pyHanko answers a wrong password with None
        raise SealError(f"seal.pkcs12 {settings.pkcs12.name}: wrong password, or not a PKCS#12 "
                        "file with a key and certificate")
    cert = signer.signing_cert
    validity = cert["tbs_certificate"]["validity"]
    return SealKey(signer, subject_of(cert), f"{cert.serial_number:X}",
                   validity["not_before"].native, validity["not_after"].native)


def subject_of(cert) -> str:
    """The certificate's organisation and common name, as a person reads them."""
    names = cert.subject.native
    parts = [names.get("organization_name"), names.get("common_name")]
    seen: list[str] = []
    for part in parts:
        if isinstance(part, list):
            part = ", ".join(part)
        if part and part not in seen:
            seen.append(part)
    return " / ".join(seen) or cert.subject.human_friendly


def usable(key: SealKey, now: datetime) -> None:
    """Refuse a certificate outside its validity: a seal that would not validate."""
    if now >= key.not_after:
        raise SealError(f"the seal certificate ({key.subject}, serial {key.serial}) expired on "
                        f"{key.not_after:%Y-%m-%d}: renew it and set seal.pkcs12; results wait")
    if now < key.not_before:
        raise SealError(f"the seal certificate ({key.subject}) is valid only from "
                        f"{key.not_before:%Y-%m-%d}")


def days_left(key: SealKey, now: datetime) -> int:
    return (key.not_after - now).days


# -- the timestamp -------------------------------------------------------------------------


def _timestamper(url: str, timeout: float):
    """pyHanko's RFC 3161 client over aiohttp (which pyHanko itself requires)."""
    from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

    return HTTPTimeStamper(url, timeout=timeout)


def tsa_problem(settings: SealSettings) -> str:
    """'' when the TSA answers a timestamp request, else why not (for `check`, alerts)."""
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    if not settings.tsa_url:
        return "seal.tsa_url is not set: results are sealed without a timestamp" \
            if not settings.require_timestamp else "seal.tsa_url is not set: results cannot be sealed"
    try:
        asyncio.run(_timestamper(settings.tsa_url, settings.timeout).async_timestamp(
            hashlib.sha256(b"saraban-mail check").digest(), "sha256"))
    except (TimestampRequestError, OSError, ValueError) as exc:
        return f"the timestamp server (seal.tsa_url) does not answer: {exc}"
    return ""


# -- sealing -------------------------------------------------------------------------------


def trust_roots(paths: list[Path]) -> list:
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    roots = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SealError(f"seal.trust_roots: cannot read {path} ({exc.strerror})") from None
        if pem.detect(data):
            roots += [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, True)]
        else:
            roots.append(asn1_x509.Certificate.load(data))
    return roots


def _context(settings: SealSettings, extra_roots: list | None = None):
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(trust_roots=trust_roots(settings.trust_roots) + (extra_roots or []),
                             allow_fetching=True, revocation_mode="soft-fail")


def seal(data: bytes, key: SealKey, config: Config, *, password: str | None = None,
         stamp: str = "") -> Sealed:
    """Seal a PDF as an incremental update (an earlier signature stays valid). With a
    password, the file is one pypdf encrypted (AES-256) and is opened with it to be sealed."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    settings = config.seal
    timestamper = _timestamper(settings.tsa_url, settings.timeout) if settings.tsa_url else None
    if timestamper is None and settings.require_timestamp:
        raise SealError("seal.tsa_url is not set and seal.require_timestamp is true")
    # The chain the PKCS#12 carries (a CA's file has it) anchors the revocation data fetched.
    roots = list(getattr(key.signer, "cert_registry", []))
    attempts = [("B-LT", timestamper, True), ("B-T", timestamper, False)]
    if not settings.require_timestamp:
        attempts.append(("B-B", None, False))
    last: Exception | None = None
    tsa_down = False
    for level, stamper, embed in attempts:
        if stamper is None and level != "B-B" or (tsa_down and stamper is not None):
            continue
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if password is not None:
            writer.encrypt(password)
        meta = signers.PdfSignatureMetadata(
            field_name=f"AgencySeal{_next_field(writer)}",
            reason=settings.reason, location=settings.location or config.agency.name_th,
            name=key.subject, subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=embed,
            validation_context=_context(settings, roots) if embed else None,
        )
        out = io.BytesIO()
        try:
            signers.PdfSigner(meta, key.signer, timestamper=stamper,  # type: ignore[arg-type]
                              stamp_style=_stamp_style(settings, stamp),
                              new_field_spec=_stamp_field(meta.field_name, stamp, settings),
                              ).sign_pdf(writer, output=out,
                                         appearance_text_params={"text": stamp} if stamp else None)
        except TimestampRequestError as exc:
            last, tsa_down = exc, True
            if settings.require_timestamp:
                raise SealPending(f"the timestamp server cannot be reached ({exc}); the result "
                                  "waits and is sealed at a later poll") from None
            continue
        except Exception as exc:  # revocation data that cannot be had: one level down
            if not embed:
                raise SealError(f"the seal cannot be made: {exc}") from exc
            log.info("seal: no revocation data embedded (%s); sealing at B-T", exc)
            last = exc
            continue
        sealed = out.getvalue()
        return Sealed(sealed, hashlib.sha256(sealed).hexdigest(), key.subject, key.serial,
                      _token_time(sealed, password) if stamper else None, level)
    raise SealError(f"the seal cannot be made: {last}")


def _next_field(writer) -> int:
    from pyhanko.sign.fields import enumerate_sig_fields

    return 1 + sum(1 for _ in enumerate_sig_fields(writer))


def _stamp_field(name: str | None, stamp: str, settings: SealSettings):
    if not stamp or not settings.visible_stamp:
        return None
    from pyhanko.sign import fields

    return fields.SigFieldSpec(sig_field_name=name or "AgencySeal1", on_page=0,
                               box=(340, 20, 575, 95))


def _stamp_style(settings: SealSettings, stamp: str):
    if not stamp or not settings.visible_stamp:
        return None
    from pyhanko import stamp as stamps
    from pyhanko.pdf_utils import text

    style: dict = {"stamp_text": "%(text)s", "border_width": 1}
    if settings.stamp_font is not None:  # Thai needs a font with Thai glyphs
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

        style["text_box_style"] = text.TextBoxStyle(
            font=GlyphAccumulatorFactory(str(settings.stamp_font)), font_size=9)
    return stamps.TextStampStyle(**style)


def _token_time(data: bytes, password: str | None) -> datetime | None:
    """The TSA's time in the last signature's timestamp token (RFC 3161 genTime)."""
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    infos = _embedded(data, password)
    if not infos:
        return None
    for signed in extract_tst_data_iter(infos[-1].signer_info, signed=False):
        return signed["encap_content_info"]["content"].parsed["gen_time"].native
    return None


# -- reading signatures -------------------------------------------------------------------


def has_signature(data: bytes) -> bool:
    """Cheap: a PDF that carries a signature dictionary (a /ByteRange); the rest on demand."""
    return data.startswith(b"%PDF-") and b"/ByteRange" in data


def _embedded(data: bytes, password: str | None = None) -> list:
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    if reader.encrypted:
        if password is None:
            raise SealError("the PDF is password-protected: give its password")
        reader.decrypt(password)
    return list(reader.embedded_signatures)


def describe(data: bytes, roots: list, password: str | None = None,
             fetch: bool = True) -> list[SignatureInfo]:
    """Each signature of a PDF checked against `roots`, fetching OCSP/CRL when `fetch`."""
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        embedded = _embedded(data, password)
    except SealError:
        raise
    except Exception as exc:  # a malformed PDF: one line, never a traceback
        raise SealError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    found = []
    for sig in embedded:
        context = ValidationContext(trust_roots=roots, allow_fetching=fetch,
                                    revocation_mode="soft-fail")
        cert = sig.signer_cert
        base = dict(field=sig.field_name, signer=subject_of(cert),
                    serial=f"{cert.serial_number:X}", signed_at=sig.self_reported_timestamp)
        try:
            status = validate_pdf_signature(sig, context, ts_validation_context=context)
        except Exception as exc:
            found.append(SignatureInfo(**base, timestamp=None, timestamp_ok=None, intact=False,
                                       valid=False, trusted=False, revoked=False,
                                       changed_after=False, later_updates=False,
                                       error=str(exc)[:200]))
            continue
        ts = status.timestamp_validity
        whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
        level = status.modification_level
        changed = not whole and (not status.docmdp_ok or level is None or level.name == "OTHER")
        found.append(SignatureInfo(
            **base, timestamp=ts.timestamp if ts else None,
            timestamp_ok=(ts.intact and ts.valid and ts.trusted) if ts else None,
            intact=status.intact, valid=status.valid, trusted=status.trusted,
            revoked=bool(getattr(status, "revoked", False)), changed_after=changed,
            later_updates=not whole and not changed))
    return found


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- the administrator's warnings ----------------------------------------------------------


@dataclass(frozen=True)
class Health:
    lines: list[str]  # what needs the administrator
    tier: int | None  # the expiry warning tier entered (30, 14, 3 days), if any


def health(settings: SealSettings, now: datetime, *, tsa: bool = True) -> Health:
    """The certificate's end near (seal.warn_days), a key that will not load, a silent TSA."""
    from saraban_mail.sealing import expiry_tier

    if settings.pkcs12 is None:
        return Health([], None)
    try:
        key = load_key(settings)
    except SarabanError as exc:
        return Health([f"seal: {exc}"], None)
    lines, left = [], days_left(key, now)
    tier = expiry_tier(left, settings.warn_days)
    if left < 0:
        lines.append(f"seal: the certificate ({key.subject}) expired on {key.not_after:%Y-%m-%d}: "
                     "results wait; renew it (TDID or INET) and set seal.pkcs12")
    elif tier is not None:
        lines.append(f"seal: the certificate ({key.subject}, serial {key.serial}) expires in "
                     f"{left} day(s), on {key.not_after:%Y-%m-%d}: renew it (TDID or INET)")
    if tsa:
        problem = tsa_problem(settings)
        if problem:
            lines.append(f"seal: {problem}" + ("; results wait until it answers"
                                                if settings.require_timestamp else ""))
    return Health(lines, tier)

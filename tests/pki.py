"""A test PKI made by certomancer and served on loopback: a root, the agency's organisation
certificate, a TSA, OCSP and CRLs, an expired and a revoked certificate, a person's."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

AGENCY_TH = "เทศบาลตำบลหนองตัวอย่าง"
P12_PASSWORD = "seal-Pkcs12-pass"  # a test PKCS#12's, handed to the service only by file
ARCH = "saraban"
KEYS = ("root", "ocsp", "tsa", "agency", "expired", "revoked", "mayor", "soon")
SOON_ENDS = "2027-01-10"  # the "soon" certificate's last day, for the expiry warnings


@dataclass(frozen=True)
class Pki:
    folder: Path
    url: str  # http://127.0.0.1:PORT
    root_pem: Path
    tsa_url: str
    password_file: Path

    def p12(self, label: str) -> Path:
        return self.folder / f"{label}.p12"


def _cert(subject: str, valid_to: str, *, usage: list[str], valid_from: str = "2020-01-01",
          revoked: bool = False) -> dict:
    spec = {
        "subject": subject, "issuer": "root",
        "validity": {"valid-from": f"{valid_from}T00:00:00+0000",
                     "valid-to": f"{valid_to}T00:00:00+0000"},
        "extensions": [
            {"id": "key_usage", "critical": True,
             "smart-value": {"schema": "key-usage", "params": usage}},
            {"id": "crl_distribution_points",
             "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}}},
            {"id": "authority_information_access",
             "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": ["root"]}}},
        ],
    }
    if revoked:
        spec["revocation"] = {"revoked-since": "2024-01-01T00:00:00+0000",
                              "reason": "key_compromise"}
    return spec


def _config(url: str) -> dict:
    signing = ["digital_signature", "non_repudiation"]
    certs = {
        "root": {"subject": "root", "issuer": "root", "subject-key": "root",
                 "authority-key": "root",
                 "validity": {"valid-from": "2000-01-01T00:00:00+0000",
                              "valid-to": "2200-01-01T00:00:00+0000"},
                 "extensions": [
                     {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                     {"id": "key_usage", "critical": True,
                      "smart-value": {"schema": "key-usage",
                                      "params": ["digital_signature", "key_cert_sign",
                                                 "crl_sign"]}}]},
        "ocsp": {"subject": "ocsp", "issuer": "root",
                 "validity": {"valid-from": "2000-01-01T00:00:00+0000",
                              "valid-to": "2200-01-01T00:00:00+0000"},
                 "extensions": [
                     {"id": "key_usage", "critical": True,
                      "smart-value": {"schema": "key-usage", "params": ["digital_signature"]}},
                     {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                     {"id": "ocsp_no_check"}]},
        "tsa": {"subject": "tsa", "issuer": "root",
                "validity": {"valid-from": "2000-01-01T00:00:00+0000",
                             "valid-to": "2200-01-01T00:00:00+0000"},
                "extensions": [
                    {"id": "key_usage", "critical": True,
                     "smart-value": {"schema": "key-usage", "params": ["digital_signature"]}},
                    {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]}]},
        "agency": _cert("agency", "2100-01-01", usage=signing),
        "expired": _cert("expired", "2021-01-01", usage=signing),
        "revoked": _cert("revoked", "2100-01-01", usage=signing, revoked=True),
        "mayor": _cert("mayor", "2100-01-01", usage=signing),
        "soon": _cert("soon", SOON_ENDS, usage=signing),
    }
    return {
        "external-url-prefix": url,
        "keysets": {ARCH: {"keys": {k: {"path": f"{k}.key.pem"} for k in KEYS}}},
        "pki-architectures": {ARCH: {
            "keyset": ARCH,
            "entity-defaults": {"country-name": "TH", "organization-name": "Test Root Authority"},
            "entities": {
                "root": {"common-name": "Test Root CA"},
                "ocsp": {"common-name": "Test OCSP Responder"},
                "tsa": {"common-name": "Test Time Stamping Authority"},
                "agency": {"organization-name": AGENCY_TH, "common-name": AGENCY_TH},
                "expired": {"organization-name": AGENCY_TH, "common-name": "Expired seal"},
                "revoked": {"organization-name": AGENCY_TH, "common-name": "Revoked seal"},
                "mayor": {"organization-name": AGENCY_TH, "common-name": "นายกเทศมนตรี สมชาย"},
                "soon": {"organization-name": AGENCY_TH, "common-name": "Ending seal"},
            },
            "certs": certs,
            "services": {
                "ocsp": {"root": {"for-issuer": "root", "responder-cert": "ocsp",
                                  "signing-key": "ocsp"}},
                "crl-repo": {"root": {"for-issuer": "root", "signing-key": "root",
                                      "simulated-update-schedule": "P30D"}},
                "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
            },
        }},
    }


class _Late:
    """A WSGI app set after the server is bound: the URL (with its port) goes into the
    certificates, so the server must exist before the PKI does."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def make_pki(folder: Path) -> tuple[Pki, object]:
    """The PKI in `folder`, served on loopback; (pki, server): call server.shutdown()."""
    from certomancer.integrations.animator import Animator, AnimatorArchStore
    from certomancer.registry import CertomancerConfig
    from werkzeug.serving import make_server

    for label in KEYS:  # certomancer makes no keys: EC P-256, quick to make
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{label}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per OCSP/TSA request
    late = _Late()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    (folder / "certomancer.yml").write_text(yaml.safe_dump(_config(url), allow_unicode=True),
                                            encoding="utf-8")
    config = CertomancerConfig.from_file(str(folder / "certomancer.yml"),
                                         key_search_dir=str(folder))
    arch = config.get_pki_arch(ARCH)
    late.app = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root_pem = folder / "root.pem"
    root_pem.write_bytes(_pem(arch.get_cert("root").dump()))
    for label in ("agency", "expired", "revoked", "mayor", "soon"):
        (folder / f"{label}.p12").write_bytes(arch.package_pkcs12(
            label, certs_to_embed=["root"], password=P12_PASSWORD.encode()))
    password_file = folder / "seal-password"
    password_file.write_text(P12_PASSWORD + "\n")
    password_file.chmod(0o600)
    return Pki(folder, url, root_pem, f"{url}/{ARCH}/tsa/tsa", password_file), server


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    made, server = make_pki(tmp_path_factory.mktemp("pki"))
    yield made
    server.shutdown()  # type: ignore[attr-defined]


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def seal_config(pki: Pki, label: str = "agency", **extra: object) -> str:
    """Lines of a [seal] section for the test office."""
    lines = [
        "[seal]",
        f'pkcs12 = "{pki.p12(label)}"',
        f'password_file = "{pki.password_file}"',
        f'tsa_url = "{pki.tsa_url}"',
        f'trust_roots = ["{pki.root_pem}"]',
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
    return "\n".join(lines) + "\n"


def person_signed(pki: Pki, data: bytes, label: str = "mayor") -> bytes:
    """`data` signed as a person does in Acrobat: an approval signature, no timestamp."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12(str(pki.p12(label)), passphrase=P12_PASSWORD.encode())
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)),
                     signers.PdfSignatureMetadata(field_name="Mayor"), signer=signer, output=out)
    return out.getvalue()


def roots(pki: Pki) -> list:
    from saraban_mail.seal import trust_roots

    return trust_roots([pki.root_pem])

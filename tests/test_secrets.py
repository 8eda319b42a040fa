"""Secrets and permissions: passwords never shown or written, private files, TLS verified,
no password in the clear over a network."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from saraban_mail.config import load_config
from saraban_mail.demo import samples
from saraban_mail.errors import ConfigError
from tests.conftest import deliver
from tests.servers import PASSWORD, SmtpSink, free_port

SMTP_PASSWORD = "smtp-S3cret"


def run(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=dict(os.environ, **env), timeout=120)


@pytest.fixture
def tls_smtp(dovecot):
    """aiosmtpd over implicit TLS with the test CA's certificate, wanting a password."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(dovecot.root / "server.pem"))
    sink = SmtpSink()

    def authenticator(server, session, envelope, mechanism, data):
        return AuthResult(success=data.password == SMTP_PASSWORD.encode())

    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


def use_tls_smtp(office: Path, port: int, old_port: int, ca: Path | None) -> None:
    text = office.read_text()
    smtp = text.index("[smtp]")
    head, tail = text[:smtp], text[smtp:]
    tail = tail.replace(f"port = {old_port}", f"port = {port}").replace(
        'security = "plain"', 'security = "tls"\nusername = "saraban@nongtuayang.go.th"'
        + (f'\nca_file = "{ca}"' if ca else ""), 1)
    office.write_text(head + tail)


def test_passwords_appear_in_no_output_and_no_file(office, dovecot, imap_account, smtp, tls_smtp):
    for sample in samples()[:4]:
        deliver(dovecot, imap_account, sample.folder, sample.raw, sample.received_at)
    use_tls_smtp(office, tls_smtp.port, smtp.port, dovecot.ca_file)
    outputs = [
        run(office, "poll", "--json", SARABAN_SMTP__PASSWORD=SMTP_PASSWORD),
        run(office, "-v", "--log-format", "json", "poll", SARABAN_SMTP__PASSWORD=SMTP_PASSWORD),
        run(office, "poll", SARABAN_IMAP__PASSWORD="Wr0ng-Pa55"),
        run(office, "check", SARABAN_SMTP__PASSWORD=SMTP_PASSWORD),
        run(office, "status"), run(office, "status", "--json"), run(office, "register", "check"),
    ]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert len(tls_smtp.messages) == 4  # sent over TLS with the password login
    assert outputs[2].returncode == 2 and "refused the login" in outputs[2].stderr
    assert outputs[3].returncode == 0, outputs[3].stderr + outputs[3].stdout
    shown = "".join(o.stdout + o.stderr for o in outputs)
    for secret in (PASSWORD, SMTP_PASSWORD, "Wr0ng-Pa55"):
        assert secret not in shown
    for path in office.parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data and SMTP_PASSWORD.encode() not in data, path


def test_data_folder_and_evidence_files_are_private(office, dovecot, imap_account, smtp):
    for sample in samples():  # among them, mail with attachments kept as evidence
        deliver(dovecot, imap_account, sample.folder, sample.raw, sample.received_at)
    assert run(office, "poll").returncode in (0, 3)
    data = office.parent / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    found = list(data.rglob("*"))
    assert any(p.is_file() and p.suffix not in (".sqlite3", ".lock") for p in found), found
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_certificates_are_verified_unless_the_config_names_the_ca(office, dovecot, imap_account,
                                                                  smtp, tls_smtp):
    text = office.read_text().replace(f"port = {dovecot.port}", f"port = {dovecot.tls_port}", 1)
    office.write_text(text.replace('security = "plain"', 'security = "tls"', 1))
    refused = run(office, "poll")
    assert refused.returncode == 2
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "certificate verify failed" in refused.stderr
    office.write_text(office.read_text().replace(
        'security = "tls"', f'security = "tls"\nca_file = "{dovecot.ca_file}"', 1))
    deliver(dovecot, imap_account, "INBOX", samples()[0].raw, samples()[0].received_at)
    use_tls_smtp(office, tls_smtp.port, smtp.port, None)  # SMTP over TLS, its CA not named
    unverified = run(office, "poll", SARABAN_SMTP__PASSWORD=SMTP_PASSWORD)
    assert unverified.returncode == 3
    assert "cannot reach SMTP server" in unverified.stderr and "certificate" in unverified.stderr.lower()
    assert tls_smtp.messages == []  # nothing went to a server we could not verify


@pytest.mark.parametrize("section", ["imap", "smtp"])
def test_no_password_in_the_clear_except_to_this_computer(tmp_path, section):
    config = tmp_path / "config.toml"
    config.write_text(f'[{section}]\nhost = "mail.example.org"\nsecurity = "plain"\n')
    with pytest.raises(ConfigError, match="unencrypted to mail.example.org"):
        load_config(config)
    config.write_text(f'[{section}]\nhost = "127.0.0.1"\nsecurity = "plain"\n')
    assert getattr(load_config(config), section).security == "plain"
    config.write_text(f'[{section}]\nhost = "mail.example.org"\nsecurity = "plain"\n'
                      "allow_plaintext = true\n")
    assert getattr(load_config(config), section).allow_plaintext

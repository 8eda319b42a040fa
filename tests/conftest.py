"""Fixtures: real Dovecot and SMTP servers, and a configured office around them."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import imapclient
import pytest

from tests.accounts import office_accounts, office_folder  # noqa: F401  (fixtures: run as the office runs)
from tests.oauth_server import AuthServer
from tests.samba import samba_share  # noqa: F401  (fixture: the register folder over Samba)
from tests.servers import PASSWORD, Dovecot, dovecot_available, start_dovecot, start_smtp

IN_CI = os.environ.get("CI", "").lower() == "true"


SECRETS = (PASSWORD, "Wr0ng-Pa55", "smtp-S3cret")  # every password the suite hands the service


@pytest.fixture(scope="session", autouse=True)
def no_secret_left_behind(tmp_path_factory):
    """After the whole suite: no file the service wrote (journal, registers, logs, mail,
    evidence, outputs kept by tests) holds a test password."""
    yield
    leaks = []
    for path in tmp_path_factory.getbasetemp().rglob("*"):
        if not path.is_file() or path.stat().st_size > 64 * 2**20:
            continue
        data = path.read_bytes()
        leaks += [f"{path}: {secret}" for secret in SECRETS if secret.encode() in data]
    assert leaks == [], "a password was written to disk:\n" + "\n".join(leaks)


@pytest.fixture(scope="session")
def dovecot():
    if not dovecot_available():
        message = "Dovecot is not installed (run tests/setup-and-run.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = start_dovecot()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dovecot_courier():
    """Dovecot announcing what Courier-IMAP does (no MOVE, SPECIAL-USE or MULTIAPPEND), with
    its `INBOX.` namespace and Outlook's folder names (tests/servers.py IMITATION_*)."""
    if not dovecot_available():
        message = "Dovecot is not installed (run tests/setup-and-run.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = start_dovecot(imitate="courier")
    yield server
    server.close()


# A test module runs on both servers by defining, in the module:
#     dovecot = pytest.fixture(name="dovecot", params=SERVERS)(each_server)
SERVERS = ["dovecot", "courier-like"]


def each_server(request, dovecot):
    """The plain Dovecot, or the one imitating Courier, by the test's parameter."""
    return dovecot if request.param == "dovecot" else request.getfixturevalue("dovecot_courier")


def folder_of(server: Dovecot, name: str) -> str:
    """A folder's name on this server: "Junk" is "INBOX.Junk E-mail" on the imitation."""
    return {"Junk": server.junk, "Trash": server.trash, "Sent": server.sent}.get(name, name)


@pytest.fixture
def smtp():
    controller, sink = start_smtp()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def imap_account(dovecot: Dovecot):
    return dovecot.account()


def imap_client(dovecot: Dovecot, account: str) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(account, PASSWORD)
    return client


def deliver(dovecot: Dovecot, account: str, folder: str, raw: bytes, when: datetime) -> None:
    client = imap_client(dovecot, account)
    try:
        client.append(folder_of(dovecot, folder), raw, msg_time=when)
    finally:
        client.logout()


CONFIG = """
[agency]
name_th = "เทศบาลตำบลหนองตัวอย่าง"
name_en = "Nong Tua Yang Subdistrict Municipality"
phone = "0 4400 0000"
email = "saraban@nongtuayang.go.th"

[mailbox]
backend = "imap"

[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{account}"

[smtp]
transport = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "plain"

[network]
retry_delays = [0.2, 0.5]

[policy]
# The test mail is dated (2026): read all of it, not only what arrived since the first poll.
start_date = 2026-01-01

[staff]
addresses = ["somsri.staff@gmail.com"]
"""


@pytest.fixture
def office(tmp_path: Path, dovecot: Dovecot, imap_account: str, smtp, monkeypatch):
    """A config.toml for a fresh IMAP account; the password comes from the environment."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(imap_port=dovecot.port, account=imap_account,
                                    smtp_port=smtp.port), encoding="utf-8")
    monkeypatch.setenv("SARABAN_IMAP__PASSWORD", PASSWORD)
    monkeypatch.delenv("SARABAN_CONFIG", raising=False)
    return config


@pytest.fixture(scope="module")
def oauth_servers():
    """An OAuth2 provider, a Dovecot that asks it about tokens (and takes passwords too),
    and an SMTP server that wants a token."""
    if not dovecot_available():
        if IN_CI:
            pytest.fail("Dovecot is not installed (run tests/setup-and-run.sh)")
        pytest.skip("Dovecot is not installed")
    auth = AuthServer(user="user1@test.example").start()
    dovecot = start_dovecot(introspection_url=f"{auth.url}/introspect")
    controller, sink = start_smtp(token_ok=auth.active)
    sink.port = controller.port
    yield auth, dovecot, sink
    controller.stop()
    dovecot.close()
    auth.stop()

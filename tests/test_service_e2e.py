"""The service on a flaky network and with OAuth2 mailboxes, against the real servers.

Connections are cut by a relay between the service and Dovecot or the SMTP server; OAuth2
logins go to a Dovecot whose oauth2 passdb asks a local introspection endpoint."""

from __future__ import annotations

import email
import email.policy
import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from saraban_mail.calendar import BANGKOK
from saraban_mail.schedule import NOTED_POLLS
from tests.conftest import deliver
from tests.servers import CuttingProxy


def citizen_request(n: int, padding: int = 0) -> tuple[bytes, datetime]:
    when = datetime(2026, 11, 23, 9, 0, tzinfo=BANGKOK) + timedelta(minutes=n)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"citizen{n}@gmail.com"
    msg["To"] = "saraban@nongtuayang.go.th"
    msg["Subject"] = f"ขอข้อมูลข่าวสาร เรื่องที่ {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<flaky-{n}@gmail.example>"
    msg.set_content(f"ขอข้อมูลเรื่องที่ {n} ค่ะ\n" + "ข้อความ " * padding)
    return msg.as_bytes(), when


def poll(config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *extra, "poll", "--config",
                           str(config), "--json"], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=180)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "saraban_mail", *args, "--config", str(config)],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def records(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def point(config: Path, old_port: int, new_port: int) -> None:
    config.write_text(config.read_text().replace(f"port = {old_port}\n", f"port = {new_port}\n"))


def acknowledged(smtp) -> list[str]:
    return sorted(r for _, rcpts, _ in smtp.messages for r in rcpts)


def test_connection_cut_mid_fetch_reconnects_and_handles_every_message_once(
    office, dovecot, imap_account, smtp
):
    for n in range(30):
        deliver(dovecot, imap_account, "INBOX", *citizen_request(n, padding=3000))
    proxy = CuttingProxy(dovecot.port, after=400_000)  # inside the first FETCH batch
    point(office, dovecot.port, proxy.port)
    result = poll(office)
    proxy.close()
    assert proxy.cut == 1 and proxy.connections >= 2
    assert result.returncode == 0, result.stderr
    assert "connecting again" in result.stderr
    got = records(result)
    assert sorted(r["receipt_no"] for r in got) == list(range(1, 31))
    assert acknowledged(smtp) == sorted(f"citizen{n}@gmail.com" for n in range(30))
    point(office, proxy.port, dovecot.port)
    again = poll(office)
    assert again.returncode == 0 and again.stdout == ""
    assert len(smtp.messages) == 30


def test_server_unreachable_at_first_is_tried_again(office, dovecot, imap_account, smtp):
    deliver(dovecot, imap_account, "INBOX", *citizen_request(1))
    proxy = CuttingProxy(dovecot.port, after=0, cuts=2)  # the greeting never arrives, twice
    point(office, dovecot.port, proxy.port)
    result = poll(office)
    proxy.close()
    assert proxy.cut == 2
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("trying again in") == 2
    assert [r["receipt_no"] for r in records(result)] == [1]


def test_server_that_stays_down_is_one_clear_line_and_noted_for_status(office, dovecot, smtp):
    point(office, dovecot.port, 1)
    result = poll(office)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "saraban-mail: error: cannot connect to IMAP server 127.0.0.1:1")
    status = json.loads(cli(office, "status", "--json").stdout)
    assert "cannot connect" in status["last_failure"]["error"]
    assert "FAILED" in cli(office, "status").stdout


def test_smtp_connection_cut_mid_message_sends_each_acknowledgement_once(
    office, dovecot, imap_account, smtp
):
    for n in range(5):
        deliver(dovecot, imap_account, "INBOX", *citizen_request(n))
    proxy = CuttingProxy(smtp.port, after=6_000, direction="up")  # within the second message
    point(office, smtp.port, proxy.port)
    result = poll(office)
    proxy.close()
    assert proxy.cut == 1
    assert result.returncode == 0, result.stderr
    assert "SMTP connection lost" in result.stderr
    assert acknowledged(smtp) == sorted(f"citizen{n}@gmail.com" for n in range(5))


def test_json_logs_and_status_in_one_screen(office, dovecot, imap_account, smtp):
    deliver(dovecot, imap_account, "INBOX", *citizen_request(1))
    point(office, dovecot.port, 1)
    failed = poll(office, "--log-format", "json")
    lines = [json.loads(line) for line in failed.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == len(failed.stderr.splitlines())  # every line is JSON
    # the two retries, then the one line of the failure
    assert [line["level"] for line in lines] == ["warning", "warning", "error"]
    assert all("trying again" in line["message"] for line in lines[:2])
    point(office, 1, dovecot.port)
    assert poll(office).returncode == 0
    shown = cli(office, "status")
    assert shown.returncode == 0, shown.stderr
    assert "last poll: " in shown.stdout and "1 message(s)" in shown.stdout
    assert "FAILED" not in shown.stdout  # the failure was before the last good poll
    assert "next poll: " in shown.stdout
    assert "valid 1" in shown.stdout  # counts today and this year
    status = json.loads(cli(office, "status", "--json").stdout)
    assert status["this_year"] == {"valid": 1}
    assert status["next_poll"]


def poll_times(config: Path) -> list[str]:
    """The poll times the last poll noted in the journal."""
    journal = sqlite3.connect(config.parent / "data" / "journal.sqlite3")
    try:
        value = journal.execute("SELECT value FROM meta WHERE key = 'poll_times'").fetchone()[0]
    finally:
        journal.close()
    return json.loads(value)["next_polls"]


def status_probe(config: Path, moment: str) -> tuple[dict, bool]:
    """`status --json` at `moment`, and whether that process loaded the holiday table."""
    probe = ("import sys\nfrom saraban_mail.cli import main\ntry:\n    main(sys.argv[1:])\n"
             "finally:\n    print('holidays' in sys.modules, file=sys.stderr)")
    shown = subprocess.run([sys.executable, "-c", probe, "status", "--json", "--config",
                            str(config)], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SARABAN_NOW=moment))
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout), shown.stderr.strip().endswith("True")


def test_status_takes_the_next_poll_from_the_last_poll_and_warns_when_it_did_not_run(
    office, dovecot, imap_account, smtp, monkeypatch
):
    monkeypatch.setenv("SARABAN_NOW", "2026-11-20T16:40:00+07:00")  # after Friday's last check
    assert poll(office).returncode == 0
    status, loaded = status_probe(office, "2026-11-22T12:00:00+07:00")  # Sunday
    assert status["next_poll"] == "2026-11-23T08:30:00+07:00"  # Monday's opening poll
    assert not loaded  # noted by the poll: status did not load the holiday table
    assert not any("has not finished" in w for w in status["warnings"])
    # Monday 09:00: the 08:30 poll may still be running; 10:00: it did not run.
    status, loaded = status_probe(office, "2026-11-23T09:00:00+07:00")
    assert status["next_poll"] == "2026-11-23T16:00:00+07:00" and not loaded
    assert not any("has not finished" in w for w in status["warnings"])
    status, loaded = status_probe(office, "2026-11-23T10:00:00+07:00")
    assert status["next_poll"] == "2026-11-23T16:00:00+07:00" and not loaded
    warning = ("the poll due at 2026-11-23 08:30 has not finished: is the service running "
               "(saraban-mail run)?")
    assert warning in status["warnings"]
    monkeypatch.setenv("SARABAN_NOW", "2026-11-23T10:00:00+07:00")
    assert f"warning: {warning}" in cli(office, "status").stdout
    # A week down: still from the noted times (Monday the 7th is a holiday) ...
    status, loaded = status_probe(office, "2026-12-04T17:00:00+07:00")
    assert status["next_poll"] == "2026-12-08T08:30:00+07:00" and not loaded
    assert warning in status["warnings"]
    # ... and past the last of them, from the holiday table (New Year's Eve and Day).
    status, loaded = status_probe(office, "2026-12-30T17:00:00+07:00")
    assert status["next_poll"] == "2027-01-04T08:30:00+07:00" and loaded
    # The service back: the warning goes; a poll between two poll times keeps the note.
    monkeypatch.setenv("SARABAN_NOW", "2026-12-04T17:00:00+07:00")
    assert poll(office).returncode == 0
    status, _ = status_probe(office, "2026-12-04T17:05:00+07:00")
    assert not any("has not finished" in w for w in status["warnings"])
    noted = poll_times(office)
    assert noted[:3] == ["2026-12-08T08:30:00+07:00", "2026-12-08T16:00:00+07:00",
                         "2026-12-09T08:30:00+07:00"]
    monkeypatch.setenv("SARABAN_NOW", "2026-12-08T12:00:00+07:00")
    assert poll(office).returncode == 0
    assert poll_times(office) == noted[1:]
    assert status_probe(office, "2026-12-08T12:05:00+07:00")[0]["next_poll"] == noted[1]
    # Past the noted times a poll notes them anew, as many as always.
    monkeypatch.setenv("SARABAN_NOW", "2027-01-04T08:30:00+07:00")
    assert poll(office).returncode == 0
    assert poll_times(office)[0] == "2027-01-04T16:00:00+07:00"
    assert len(poll_times(office)) == NOTED_POLLS


def test_progress_bar_on_a_terminal_only(office, dovecot, imap_account, smtp):
    for n in range(60):  # a backlog: the bar shows from 50 messages in a folder
        deliver(dovecot, imap_account, "INBOX", *citizen_request(n))
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "saraban_mail", "poll", "--config",
                                str(office)], stdin=follower, stdout=follower, stderr=follower,
                               env=os.environ.copy())
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(60) == 0
    text = shown.decode(errors="replace")
    assert "INBOX: 100%" in text and "60/60" in text
    assert "60 message(s) handled" in text
    piped = poll(office)  # not a terminal: no bar
    assert piped.returncode == 0 and "%|" not in piped.stderr


# -- OAuth2 ------------------------------------------------------------------------------


OAUTH_CONFIG = """
[agency]
name_th = "เทศบาลตำบลหนองตัวอย่าง"
name_en = "Nong Tua Yang Subdistrict Municipality"
email = "saraban@nongtuayang.go.th"
admin_email = "it@nongtuayang.go.th"

[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
auth = "xoauth2"
username = "user1@test.example"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
auth = "oauthbearer"
username = "user1@test.example"

[oauth]
token_url = "{url}/token"
device_url = "{url}/device"
client_id = "saraban-test"
scope = "imap smtp offline_access"
refresh_token_days = {days}

[network]
retry_delays = [0.2]

[policy]
start_date = 2026-01-01  # the test mail is dated
"""


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_oauth2_consent_login_refresh_and_warnings(oauth_servers, tmp_path, monkeypatch):
    auth, dovecot, smtp = oauth_servers
    monkeypatch.delenv("SARABAN_IMAP__PASSWORD", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(OAUTH_CONFIG.format(imap_port=dovecot.port, smtp_port=smtp.port,
                                          url=auth.url, days=90), encoding="utf-8")
    before = poll(config)
    assert before.returncode == 2
    assert "run `saraban-mail auth`" in before.stderr

    consent = cli(config, "auth")
    assert consent.returncode == 0, consent.stderr
    assert "ABCD-EFGH" in consent.stdout and "IMAP login ok" in consent.stdout
    token_file = tmp_path / "data" / "oauth-token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert auth.grants == ["urn:ietf:params:oauth:grant-type:device_code"] * 2

    deliver(dovecot, "user1@test.example", "INBOX", *citizen_request(1))
    first = poll(config)
    assert first.returncode == 0, first.stderr
    assert [r["receipt_no"] for r in records(first)] == [1]
    assert smtp.logins == ["OAUTHBEARER"]  # the acknowledgement went over an OAuth2 login
    assert acknowledged(smtp) == ["citizen1@gmail.com"]
    assert auth.introspected >= 1  # Dovecot asked the provider about the token

    # The access token ran out: the next poll renews it from the (rotating) refresh token.
    tokens = json.loads(token_file.read_text())
    tokens["expires_at"] = "2000-01-01T00:00:00+07:00"
    token_file.write_text(json.dumps(tokens))
    assert poll(config).returncode == 0
    assert auth.grants[-1] == "refresh_token"
    assert json.loads(token_file.read_text())["refresh_token"] != tokens["refresh_token"]

    # A refresh token near the end of its life: check and status warn, the administrator
    # is told by email once a day.
    config.write_text(config.read_text().replace("refresh_token_days = 90",
                                                 "refresh_token_days = 10"))
    checked = cli(config, "check")
    assert checked.returncode == 3
    assert "refresh token expires about" in checked.stderr
    status = json.loads(cli(config, "status", "--json").stdout)
    assert any("expires about" in w for w in status["warnings"])
    assert poll(config).returncode == 0
    assert poll(config).returncode == 0
    to_admin = [raw for _, rcpts, raw in smtp.messages if rcpts == ["it@nongtuayang.go.th"]]
    assert len(to_admin) == 1
    alert = email.message_from_bytes(to_admin[0], policy=email.policy.default)
    assert alert["Auto-Submitted"] == "auto-generated"
    assert "saraban-mail auth" in alert.get_content()

    # The grant revoked at the provider: one clear line, and status says since when.
    auth.refresh.clear()
    tokens = json.loads(token_file.read_text())
    tokens["expires_at"] = "2000-01-01T00:00:00+07:00"
    token_file.write_text(json.dumps(tokens))
    refused = poll(config)
    assert refused.returncode == 2
    assert "refresh refused" in refused.stderr and "invalid_grant" in refused.stderr
    status = json.loads(cli(config, "status", "--json").stdout)
    assert any("login failing since" in w for w in status["warnings"])

"""Real servers for the tests: Dovecot (IMAP) on a free loopback port, aiosmtpd (SMTP).

Dovecot runs from a temporary config; as root its mail processes run as the
`dovecot` user and its login process as `dovenull`, as Dovecot requires."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "S3cret-imap-pw"  # distinctive: the suite greps its outputs for it
USERS = 400  # one account per test that asks for one, for a whole session


# `python -c PEAK FILE ARGS...` runs `saraban-mail ARGS...` and writes its peak RSS (VmHWM, kB)
# to FILE: ru_maxrss would carry the parent's peak over exec.
PEAK = """
import atexit, sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return line.split()[1]
atexit.register(lambda: open(sys.argv[1], "w").write(hwm()))
from saraban_mail.cli import main
sys.exit(main(sys.argv[2:]))
"""


def stop_group(process: subprocess.Popen) -> None:
    """End a server started in a process group of its own, with every process it started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int
    ca_file: Path
    process: subprocess.Popen | None = None
    _next: int = 0
    # The folders' full names on this server (the imitation of Courier/Cyrus has others).
    junk: str = "Junk"
    trash: str = "Trash"
    sent: str = "Sent"
    imitates: str = ""

    def account(self) -> str:
        self._next += 1
        assert self._next < USERS, "more accounts than tests/servers.py USERS: raise it"
        return f"user{self._next}@test.example"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop Dovecot and every process it started, as a service manager would: open
        IMAP sessions end too (stopping the master alone leaves them running)."""
        if self.process:
            stop_group(self.process)

    def close(self) -> None:
        """Stop for good and remove the temporary folder (mail, indexes, config, log):
        a benchmark's mailbox is gigabytes. `stop` alone keeps it for a `start` again."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            wait_for_port(self.port)
            wait_for_port(self.tls_port)
        except RuntimeError:
            self.stop()
            err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
            raise RuntimeError(f"dovecot did not start: {err}\n{self.log()}") from None


def dovecot_available() -> bool:
    return os.path.exists(DOVECOT)


# Dovecot made to look like the servers many agencies have (Courier-IMAP, Cyrus with
# Outlook-made folders, Zimbra before its MOVE): it announces no MOVE, SPECIAL-USE or
# MULTIAPPEND, puts every folder under `INBOX.` with `.` as separator, and names them as
# Outlook does, with no SPECIAL-USE flag to find them by. The service must go by what the
# server announces: Dovecot would still accept a MOVE it does not announce.
IMITATION_CAPABILITY = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS "
                        "NAMESPACE CHILDREN SORT THREAD=REFERENCES")
IMITATION_NAMESPACE = """namespace inbox {
  inbox = yes
  prefix = INBOX.
  separator = .
  mailbox "Junk E-mail" {
    auto = subscribe
  }
  mailbox "Deleted Items" {
    auto = subscribe
  }
  mailbox "Sent Items" {
    auto = subscribe
  }
}
"""
# imitate="bare": a poorer server still, without UIDPLUS (a plain EXPUNGE removes every
# message flagged deleted) and without any Junk folder.
BARE_CAPABILITY = IMITATION_CAPABILITY.replace("UIDPLUS ", "")
BARE_NAMESPACE = """namespace inbox {
  inbox = yes
  prefix = INBOX.
  separator = .
  mailbox Trash {
    auto = subscribe
  }
  mailbox Sent {
    auto = subscribe
  }
}
"""
PLAIN_NAMESPACE = """namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
"""


def start_dovecot(introspection_url: str = "", settings: str = "", imitate: str = "") -> Dovecot:
    """Dovecot with passwords; with introspection_url also XOAUTH2 and OAUTHBEARER, each
    token checked at that endpoint (RFC 7662) as Dovecot's oauth2 passdb does. `settings`
    are more lines of its configuration. imitate="courier": a server without MOVE,
    SPECIAL-USE and MULTIAPPEND, its folders `INBOX.Junk E-mail` and so on (above)."""
    import trustme

    root = Path(tempfile.mkdtemp(prefix="saraban-dovecot-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        internal, login = "dovecot", "dovenull"
    else:
        internal = login = pwd.getpwuid(os.geteuid()).pw_name
    owner = pwd.getpwnam(internal)
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, owner.pw_uid, owner.pw_gid)

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))

    users = "".join(f"user{i}@test.example:{{PLAIN}}{PASSWORD}::::::\n" for i in range(1, USERS))
    (root / "passwd").write_text(users)
    port, tls_port = free_port(), free_port()
    mechanisms, oauth_passdb = "plain login", ""
    namespace = {"": PLAIN_NAMESPACE, "courier": IMITATION_NAMESPACE,
                 "bare": BARE_NAMESPACE}[imitate]
    capability = {"": "", "courier": f"imap_capability = {IMITATION_CAPABILITY}\n",
                  "bare": f"imap_capability = {BARE_CAPABILITY}\n"}[imitate]
    if introspection_url:
        mechanisms += " xoauth2 oauthbearer"
        (root / "oauth2.conf.ext").write_text(f"""introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
""")
        oauth_passdb = f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}"""
    (root / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{mail}/%u
{settings}
{oauth_passdb}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
{namespace}{capability}""")
    server = Dovecot(root=root, port=port, tls_port=tls_port, ca_file=root / "ca.pem")
    if imitate == "courier":
        server.junk, server.trash, server.sent = ("INBOX.Junk E-mail", "INBOX.Deleted Items",
                                                  "INBOX.Sent Items")
    elif imitate == "bare":
        server.junk, server.trash, server.sent = "", "INBOX.Trash", "INBOX.Sent"
    server.imitates = imitate
    server.start()
    return server


@dataclass
class SmtpSink:
    """aiosmtpd handler keeping every accepted message; `refuse` makes it answer 451/550."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: str = ""
    hang: float = 0.0  # seconds to sit on DATA, then answer 451 (a server that hangs)
    # With a token checker: AUTH XOAUTH2 and OAUTHBEARER, required before sending.
    token_ok: Callable[[str], bool] | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        if self.hang:
            await asyncio.sleep(self.hang)
            return "451 4.4.2 timed out"
        if self.refuse:
            return self.refuse
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def _bearer(self, mechanism: str, args: list[str]) -> AuthResult:
        text = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        found = re.search(r"\x01auth=Bearer ([^\x01]+)\x01", text)
        ok = bool(found and self.token_ok and self.token_ok(found.group(1)))
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)

    async def auth_XOAUTH2(self, server, args: list[str]) -> AuthResult:  # noqa: N802
        return self._bearer("XOAUTH2", args)

    async def auth_OAUTHBEARER(self, server, args: list[str]) -> AuthResult:  # noqa: N802
        return self._bearer("OAUTHBEARER", args)


def start_smtp(token_ok: Callable[[str], bool] | None = None) -> tuple[Controller, SmtpSink]:
    sink = SmtpSink(token_ok=token_ok)
    extra = {"auth_required": True, "auth_require_tls": False} if token_ok else {}
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    return controller, sink


class CuttingProxy:
    """A TCP relay to a loopback port that cuts the first `cuts` connections once more
    than `after` bytes went one way ("down": server to client, "up": client to server),
    as a dropped office network or a restarted server would. With cuts=0 it only relays,
    counting bytes each way and IMAP commands (imaplib's tagged lines)."""

    TAG = re.compile(rb"(?m)^[A-P]{4}\d+ ")

    def __init__(self, target_port: int, after: int = 1 << 62, direction: str = "down",
                 cuts: int = 1, cut_on: bytes = b""):
        self.target, self.after, self.direction, self.cuts = target_port, after, direction, cuts
        self.down = self.up = self.commands = 0
        # Or cut right after forwarding a client command containing these bytes (the server
        # does it, the client never hears the answer), on every connection until `cuts`.
        self.cut_on = cut_on
        self.cut = 0
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def reset(self) -> None:
        self.down = self.up = self.commands = 0

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for end in (client, upstream):  # relay writes as they come, as a router would
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cutting = self.cuts > 0 and not self.cut_on
            self.cuts -= cutting
            state = {"sent": 0, "dead": False}
            for src, dst, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, daemon=True, args=(
                    src, dst, cutting and way == self.direction, state, (client, upstream))).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counting: bool, state: dict,
              pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while data := src.recv(262144):
                if state["dead"]:
                    break  # the answer to a cut command never reaches the client
                if self.cut_on and self.cut_on in data and src is pair[0] and self.cuts > 0:
                    state["dead"] = True
                    dst.sendall(data)
                    self.cuts -= 1
                    self.cut += 1
                    time.sleep(0.3)  # the server acts on it before the line goes dead
                    break
                if counting and state["sent"] + len(data) > self.after:
                    dst.sendall(data[:max(self.after - state["sent"], 0)])
                    self.cut += 1
                    break
                state["sent"] += len(data)
                if src is pair[0]:
                    self.up += len(data)
                    self.commands += len(self.TAG.findall(data))
                else:
                    self.down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

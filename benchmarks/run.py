"""The benchmark: saraban-mail against the physical floor, on the real servers, in one run.

    .venv/bin/python benchmarks/run.py              # the full run (2,000 messages, 20,000 idle)
    .venv/bin/python benchmarks/run.py --quick      # a smoke test at a tiny size (CI)

It starts Dovecot and an SMTP server as the tests do, fills a mailbox (seeded) with an
agency's mix of mail, and measures, side by side in this one run:
  floor     a minimal imapclient script downloading INBOX and Junk (BODY.PEEK[], batches)
  poll      `saraban-mail poll` over the same mailbox (everything: register, replies, moves)
  idle      a poll with nothing new, over the mailbox once handled, and once grown
  register  a poll adding 50 rows to a 20,000-row register, against bare openpyxl load+save
  startup   `saraban-mail --help` and `status`
  arrival   `saraban-mail run` watching INBOX: arrival -> acknowledgement at the SMTP server
Figures are printed as a Markdown report (--out writes it to a file too)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import PASSWORD, PEAK, CuttingProxy, start_dovecot, start_smtp  # noqa: E402
from tests.test_crash import mailbox_of  # noqa: E402

AGENCY = "saraban@nongtuayang.go.th"
FLOOR = """
import email, email.policy, sys, imapclient
client = imapclient.IMAPClient("127.0.0.1", port=int(sys.argv[1]), ssl=False)
mode = sys.argv[4]  # download | shipped | parse
if mode != "shipped":  # imapclient turns imaplib's protocol trace on: it repr()s each literal
    client._imap.debug = 0
client.login(sys.argv[2], sys.argv[3])
count = size = 0
for folder in ("INBOX", "Junk"):
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    for start in range(0, len(uids), 25):
        for data in client.fetch(uids[start:start + 25], [b"BODY.PEEK[]"]).values():
            count += 1
            size += len(data[b"BODY[]"])
            if mode == "parse":  # and give each message to Python's MIME parser
                email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
client.logout()
print(count, size)
"""

MBSYNC = """IMAPAccount bench
Host 127.0.0.1
Port {port}
User {account}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel bench
Far :far:
Near :near:
Patterns INBOX Junk
Create Near
Sync Pull
Expunge None
SyncState *
"""


def floor(port: int, account: str, mode: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FLOOR, str(port), account, PASSWORD, mode],
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip()


def mbsync_floor(work: Path, port: int, account: str) -> float | None:
    """Debian's isync (mbsync) pulling INBOX and Junk into a Maildir; None if not installed."""
    if not shutil.which("mbsync"):
        return None
    mail = work / "mbsync"
    mail.mkdir()
    rc = work / "mbsyncrc"
    rc.write_text(MBSYNC.format(port=port, account=account, password=PASSWORD, mail=mail))
    started = time.perf_counter()
    subprocess.run(["mbsync", "-c", str(rc), "-q", "bench"], capture_output=True, check=True)
    return time.perf_counter() - started


def with_attachment(raw: bytes, rng: random.Random, size: int, n: int) -> bytes:
    """A request carrying a scanned PDF or JPEG of `size` bytes (random content)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"ประชาชน {n} <citizen.attach{n}@gmail.com>"
    msg["To"] = AGENCY
    msg["Subject"] = f"ขอยื่นเอกสารประกอบคำขอ {n}"
    msg["Message-ID"] = f"<bench-attach-{n}@gmail.example>"
    msg.set_content("ขอยื่นเอกสารประกอบคำขออนุญาตตามที่แนบมาค่ะ")
    kind = rng.choice([("application", "pdf", b"%PDF-1.7\n"), ("image", "jpeg", b"\xff\xd8\xff\xe0")])
    data = kind[2] + rng.randbytes(size - len(kind[2]))
    msg.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=f"scan-{n}.{kind[1][:3]}")
    return msg.as_bytes()


def fill(dovecot, account: str, count: int, seed: int, big_mb: int, first: int = 0,
         attachments: bool = True) -> tuple[int, int]:
    import imapclient

    rng = random.Random(seed)
    mail = mailbox_of(count, seed, first)
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(account, PASSWORD)
    total = 0
    for n, (folder, raw, when) in enumerate(mail):
        if attachments and n % 10 == 5:  # 10% carry a PDF or JPEG of 100 KB to 5 MB
            raw = with_attachment(raw, rng, rng.randint(100_000, 5_000_000), n)
        if n == 7 and big_mb:
            raw = with_attachment(raw, rng, big_mb * 2**20, n)
        client.append(folder, raw, msg_time=when)
        total += len(raw)
    client.logout()
    return len(mail), total


def office(folder: Path, port: int, account: str, smtp_port: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text(f"""
[agency]
name_th = "เทศบาลตำบลหนองตัวอย่าง"
name_en = "Nong Tua Yang Subdistrict Municipality"
email = "{AGENCY}"
[imap]
host = "127.0.0.1"
port = {port}
security = "plain"
username = "{account}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
[policy]
max_replies_per_sender_per_day = 100000
start_date = 2020-01-01
[registers]
backups = 100000
""", encoding="utf-8")
    return config


def run_poll(config: Path, env: dict[str, str], profile: str | None = None) -> dict[str, float]:
    """One `saraban-mail -v poll`, its wall time, peak RSS and stage times. With `profile`,
    the poll runs under pyinstrument (a text report to that file) and has no peak RSS."""
    peak = config.parent / "peak"
    peak.write_text("0")
    command = [sys.executable, "-c", PEAK, str(peak)]
    if profile:
        command = [sys.executable, "-m", "pyinstrument", "-r", "text", "--show-all", "-o",
                   profile, "-m", "saraban_mail"]
    started = time.perf_counter()
    result = subprocess.run(command + ["-v", "poll", "--config", str(config)],
                            capture_output=True, text=True, env=env, timeout=7200)
    wall = time.perf_counter() - started
    if result.returncode not in (0, 3):
        raise SystemExit(f"poll failed: {result.stderr[-2000:]}")
    stages = {m[0]: float(m[1]) for m in re.findall(r"stage (\w+): ([\d.]+) s", result.stderr)}
    handled = re.search(r"(\d+) message\(s\) handled", result.stderr)
    return {"wall": wall, "peak_mb": int(peak.read_text()) / 1024, "stages": stages,
            "handled": int(handled.group(1)) if handled else 0}


def saves(register: Path) -> int:
    """Workbook saves: each save after the first keeps a backup (backups are unlimited here)."""
    books = list(register.glob("*.xlsx"))
    return len(books) + len(list((register / ".backups").glob("*.xlsx")))


def timed(command: list[str], env: dict[str, str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def register_case(work: Path, dovecot, smtp, env: dict[str, str], rows: int) -> dict[str, float]:
    """A poll adding 50 rows to a register already holding `rows` (written by the service's
    own writer, styled as in use), against a bare openpyxl load + save of that workbook."""
    import imapclient
    import openpyxl

    from saraban_mail.config import load_config
    from saraban_mail.register import INCOMING, append_rows, incoming_path
    from tests.offices import request

    account = dovecot.account()
    config = office(work / "register-office", dovecot.port, account, smtp.port)
    path = incoming_path(load_config(config).paths.register_dir, 2569)
    append_rows(path, INCOMING, "ทะเบียนหนังสือรับ ปี พ.ศ. 2569", [
        {"receipt_no": n, "ref": "", "doc_no": f"ที่ {n}/2569", "from": f"ประชาชน {n}",
         "to": "นายกเทศมนตรี", "subject": f"ขอข้อมูลข่าวสาร เรื่องที่ {n}",
         "email": f"citizen{n}@gmail.com"} for n in range(1, rows + 1)], backups=0)
    started = time.perf_counter()
    openpyxl.load_workbook(path).save(work / "bare-copy.xlsx")
    bare = time.perf_counter() - started
    found: dict[str, float] = {"bare": bare}
    # cold: the workbook was last saved by someone else (as after a clerk's edit);
    # warm: a poll after the service's own poll (its numbers noted, its rows remembered).
    for case, first in (("cold", 100_000), ("warm", 100_050)):
        client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
        client.login(account, PASSWORD)
        for n in range(first, first + 50):
            raw, when = request(n)
            client.append("INBOX", raw, msg_time=when)
        client.logout()
        before = saves(path.parent)
        polled = run_poll(config, env)
        stages = polled["stages"]
        found |= {f"{case}_work": sum(stages.get(name, 0.0) for name in
                                      ("number", "write_register", "clerk_instructions",
                                       "register_acks")),
                  f"{case}_number": stages.get("number", 0.0),
                  f"{case}_saves": saves(path.parent) - before,
                  f"{case}_handled": polled["handled"]}
    return found


def arrival_case(work: Path, dovecot, smtp, env: dict[str, str], count: int,
                 seed: int) -> dict[str, float]:
    """`saraban-mail run` (IMAP IDLE) while `count` requests arrive one by one, at random
    gaps of ARRIVAL_GAP s on average, within office hours: for each, the time from its
    arrival (its APPEND done) to its acknowledgement accepted by the SMTP server."""
    import threading

    import imapclient

    from tests.test_service_e2e import citizen_request

    account = dovecot.account()
    config = office(work / "arrival-office", dovecot.port, account, smtp.port)
    daemon = subprocess.Popen([sys.executable, "-m", "saraban_mail", "run", "--config",
                               str(config)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(daemon.stderr or []), daemon=True).start()
    acked: dict[str, float] = {}
    done = threading.Event()

    def watch_sink() -> None:  # when each acknowledgement reached the server (5 ms steps)
        seen = len(smtp.messages)
        while not done.is_set():
            while seen < len(smtp.messages):
                for rcpt in smtp.messages[seen][1]:
                    acked.setdefault(rcpt, time.monotonic())
                seen += 1
            time.sleep(0.005)

    threading.Thread(target=watch_sink, daemon=True).start()
    rng = random.Random(seed)
    arrived: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        while not any("watching INBOX" in line for line in log):
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("the daemon did not start watching:\n" + "".join(log))
            time.sleep(0.05)
        client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
        client.login(account, PASSWORD)
        now = datetime.fromisoformat(env["SARABAN_NOW"])  # the daemon's clock: office hours
        for n in range(30000, 30000 + count):
            raw, _ = citizen_request(n)
            client.append("INBOX", raw, msg_time=now)
            arrived[f"citizen{n}@gmail.com"] = time.monotonic()
            time.sleep(rng.expovariate(1 / ARRIVAL_GAP))
        client.logout()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not set(arrived) <= set(acked):
            time.sleep(0.1)
    finally:
        done.set()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
    latencies = sorted(acked[who] - at for who, at in arrived.items() if who in acked)
    return {"count": count, "acked": len(latencies),
            "median": statistics.median(latencies) if latencies else float("nan"),
            "worst": latencies[-1] if latencies else float("nan"),
            "polls": sum("poll (new mail)" in line for line in log)}


ARRIVAL_GAP = 0.5  # mean seconds between two arrivals (exponential: some come together)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=20000, help="mailbox size for the idle poll")
    parser.add_argument("--rows", type=int, default=20000, help="register rows for the write case")
    parser.add_argument("--big-mb", type=int, default=25, help="one attachment this large")
    parser.add_argument("--arrivals", type=int, default=300,
                        help="requests trickled in while `saraban-mail run` watches")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--seed", type=int, default=2569)
    parser.add_argument("--out", help="also write the report here (Markdown)")
    parser.add_argument("--keep", action="store_true", help="keep the offices' folders")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the main poll under pyinstrument, its report to FILE "
                             "(that poll's time and memory are then not comparable)")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.idle, args.rows, args.big_mb, args.arrivals = 40, 80, 200, 1, 24

    env = dict(os.environ, SARABAN_IMAP__PASSWORD=PASSWORD, SARABAN_NOW="2026-11-23T09:00:00+07:00")
    dovecot = start_dovecot()
    smtp_controller, smtp = start_smtp()
    smtp.port = smtp_controller.port
    work = Path(tempfile.mkdtemp(prefix="saraban-bench-"))
    try:
        account = dovecot.account()
        count, size = fill(dovecot, account, args.messages, args.seed, args.big_mb)
        relay = CuttingProxy(dovecot.port, cuts=0)  # relays and counts

        floor_wall, floor_read = floor(relay.port, account, "download")
        floor_bytes, floor_commands = relay.down, relay.commands
        shipped_floor_wall = floor(relay.port, account, "shipped")[0]
        parse_floor_wall = floor(relay.port, account, "parse")[0]  # download and parse
        mbsync_wall = mbsync_floor(work, relay.port, account)
        relay.reset()

        config = office(work / "office", relay.port, account, smtp.port)
        polled = run_poll(config, env, args.profile)
        poll_bytes, poll_commands = relay.down, relay.commands
        poll_saves = saves(work / "office" / "register")
        sent = len(smtp.messages)

        relay.reset()
        idle_small = run_poll(config, env) | {"bytes": relay.down + relay.up,
                                              "commands": relay.commands}
        grow = max(args.idle - count, 0)
        if grow:
            # the idle case is about the number of messages: no attachments (gigabytes)
            fill(dovecot, account, grow, args.seed + 1, 0, first=count, attachments=False)
            run_poll(config, env)  # handle them once
        relay.reset()
        idle_big = run_poll(config, env) | {"bytes": relay.down + relay.up,
                                            "commands": relay.commands}

        register = register_case(work, dovecot, smtp, env, args.rows)
        arrival = arrival_case(work, dovecot, smtp, env, args.arrivals, args.seed + 2)
        status_env = dict(env)
        startup_help = timed([sys.executable, "-m", "saraban_mail", "--help"], env)
        startup_status = timed([sys.executable, "-m", "saraban_mail", "status", "--config",
                                str(config)], status_env)
        python_alone = timed([sys.executable, "-c", "pass"], env)
        figures = {
            "messages": count, "mailbox_mb": size / 2**20, "floor_s": floor_wall,
            "parse_floor_s": parse_floor_wall, "shipped_floor_s": shipped_floor_wall,
            "mbsync_s": mbsync_wall, "floor_read": floor_read, "floor_bytes": floor_bytes,
            "floor_commands": floor_commands, "poll": polled, "poll_bytes": poll_bytes,
            "poll_commands": poll_commands, "poll_saves": poll_saves, "sent": sent,
            "idle_small": idle_small, "idle_big": idle_big, "idle_sizes": [count, count + grow],
            "register": register, "arrival": arrival, "startup_help_s": startup_help,
            "startup_status_s": startup_status, "python_alone_s": python_alone,
        }
    finally:
        smtp_controller.stop()
        dovecot.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = render(figures, args)
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    print(json.dumps(figures, default=str), file=sys.stderr)
    return 0


def render(f: dict, args: argparse.Namespace) -> str:
    poll, reg = f["poll"], f["register"]
    full = (args.messages, args.idle, args.rows, args.big_mb, args.arrivals) == (
        2000, 20000, 20000, 25, 300)
    arrival = f["arrival"]
    kind = "quick smoke test" if args.quick else "full run" if full else "reduced sizes"
    ratio = poll["wall"] / f["floor_s"]
    rate = f["messages"] / poll["wall"]
    stages = ", ".join(f"{k} {v:.2f}" for k, v in sorted(poll["stages"].items(), key=lambda x: -x[1]))
    versions = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# Benchmark results ({kind})",
        "",
        f"Command: `{' '.join(['.venv/bin/python benchmarks/run.py', *sys.argv[1:]])}`"
        + "  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}; Dovecot {versions}",
        "",
        f"Mailbox: {f['messages']:,} messages, {f['mailbox_mb']:.0f} MB (seeded {args.seed}; "
        f"10% with a PDF/JPEG of 100 KB-5 MB, one of {args.big_mb} MB).",
        "",
        "| measure | floor | saraban-mail poll | target |",
        "|---|---|---|---|",
        f"| wall time | {f['floor_s']:.2f} s | {poll['wall']:.2f} s ({rate:.0f} msg/s) | |",
        f"| poll / floor (download only: imapclient with imaplib's protocol trace off) | | "
        f"**{ratio:.2f}x** | <= 3x |",
        f"| floor as a minimal imapclient script is shipped (trace on: repr() of each literal) | "
        f"{f['shipped_floor_s']:.2f} s | **{poll['wall'] / f['shipped_floor_s']:.2f}x** | <= 3x |",
        (f"| mbsync (Debian's isync) pulling the same folders to a Maildir | {f['mbsync_s']:.2f} s"
         f" | {poll['wall'] / f['mbsync_s']:.2f}x | |" if f["mbsync_s"] else
         "| mbsync (Debian's isync) | not installed | | |"),
        f"| download and Python's MIME parser (`email.message_from_bytes`) | "
        f"{f['parse_floor_s']:.2f} s | {poll['wall'] / f['parse_floor_s']:.2f}x | |",
        f"| bytes read from IMAP | {f['floor_bytes'] / 2**20:.1f} MB | {f['poll_bytes'] / 2**20:.1f} MB | |",
        f"| IMAP commands | {f['floor_commands']} | {f['poll_commands']} | |",
        f"| peak RSS | | **{poll['peak_mb']:.0f} MB** | <= 200 MB |",
        f"| workbook saves | | {f['poll_saves']} | one per workbook |",
        f"| replies sent | | {f['sent']} | |",
        "",
        f"Where the poll's time goes (s): {stages}.",
        "",
        "| idle poll (nothing new) | wall | bytes | IMAP commands | target |",
        "|---|---|---|---|---|",
        f"| mailbox of {f['idle_sizes'][0]:,} handled | {f['idle_small']['wall']:.2f} s | "
        f"{f['idle_small']['bytes'] / 1024:.1f} KB | {f['idle_small']['commands']} | <= 50 KB |",
        f"| mailbox of {f['idle_sizes'][1]:,} handled | {f['idle_big']['wall']:.2f} s | "
        f"{f['idle_big']['bytes'] / 1024:.1f} KB | {f['idle_big']['commands']} | same commands |",
        "",
        f"| register of {args.rows:,} rows, a poll adding 50 | time | saves | target |",
        "|---|---|---|---|",
        f"| bare openpyxl load + save | {reg['bare']:.2f} s | 1 | |",
        *(f"| the poll's register work (number, write, clerk instructions, acknowledgement "
          f"times), {label} | "
          f"{reg[case + '_work']:.2f} s (**{reg[case + '_work'] / reg['bare']:.2f}x**; "
          f"numbering {reg[case + '_number']:.2f} s) | {reg[case + '_saves']} | "
          "<= 1.5x, one save per workbook |"
          for case, label in (("cold", "workbook last saved by a clerk"),
                              ("warm", "a poll after a poll"))),
        "",
        f"| arrival → acknowledgement at the SMTP server (`saraban-mail run`, IMAP IDLE; "
        f"{arrival['count']} requests trickled in, {ARRIVAL_GAP:g} s apart on average) | "
        "median | worst | target |",
        "|---|---|---|---|",
        f"| {arrival['acked']} of {arrival['count']} acknowledged, in {arrival['polls']} polls "
        f"| **{arrival['median']:.2f} s** | **{arrival['worst']:.2f} s** | median <= 5 s, "
        "worst <= 60 s |",
        "",
        "| start-up | median of 5 | target |",
        "|---|---|---|",
        f"| `python -c pass` | {f['python_alone_s']:.2f} s | |",
        f"| `saraban-mail --help` | {f['startup_help_s']:.2f} s | <= 0.5 s |",
        f"| `saraban-mail status` | {f['startup_status_s']:.2f} s | <= 0.5 s |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

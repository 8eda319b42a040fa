"""Crash anywhere: `saraban-mail poll` is SIGKILLed at random moments (seeded) over a mailbox
of mixed mail on the real Dovecot and SMTP servers, and run again until a poll completes.
Then nothing may be lost, duplicated or out of step.

CI runs the short form (200 messages, 8 kills). The long form (`-m slow`, or
SARABAN_CRASH_KILLS / SARABAN_CRASH_MESSAGES) is the one tests/RELIABILITY.md reports."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from saraban_mail.classify import Identity, classify
from saraban_mail.demo import STAFF, samples
from saraban_mail.parse import parse
from saraban_mail.rules import default_dir, load_rules
from tests.conftest import SERVERS, deliver, each_server, folder_of, imap_client

# The crash suite runs on the plain Dovecot and on one imitating Courier-IMAP, where a move
# is COPY, then delete: a kill between the two must not leave a message in two folders.
dovecot = pytest.fixture(name="dovecot", params=SERVERS)(each_server)

AGENCY = "saraban@nongtuayang.go.th"


def variant(raw: bytes, n: int, key: str) -> bytes:
    """Copy n of a demo sample: its own Message-ID and its own sender address."""
    split = raw.find(b"\r\n\r\n")
    split = raw.find(b"\n\n") if split < 0 else split
    head, body = raw[:split], raw[split:]
    head = re.sub(rb"(?mi)^Message-ID:.*(?:\r?\n[ \t].*)*(?:\r?\n|$)", b"", head)
    if STAFF.encode() not in head:  # a staff forward keeps its staff sender
        found = re.search(rb"(?mi)^From:.*(?:\r?\n[ \t].*)*", head)
        if found:
            block = re.sub(rb"([A-Za-z0-9._-]+)@", lambda m: m.group(1) + b"+%d@" % n,
                           found.group(0), count=1)
            head = head[:found.start()] + block + head[found.end():]
    head = head.rstrip(b"\r\n") + b"\r\nMessage-ID: <crash-%d-%s@test.example>" % (n, key.encode())
    return head + body


def mailbox_of(count: int, seed: int, first: int = 0) -> list[tuple[str, bytes, object]]:
    """A seeded mix shaped like a real agency's: mostly spam and automated mail. Copies
    are numbered from `first` (their Message-IDs and senders)."""
    rng = random.Random(seed)
    kinds = samples()
    weights = [3 if s.key in ("gambling_spam", "phishing") else
               2 if s.key in ("out_of_office", "bounce") else 1 for s in kinds]
    chosen = rng.choices(kinds, weights=weights, k=count)
    return [(s.folder, variant(s.raw, n, s.key), s.received_at)
            for n, s in enumerate(chosen, start=first)]


CRASH_CONFIG = """max_replies_per_sender_per_day = 1000
"""


def crash_run(office: Path, dovecot, account: str, smtp, messages: int, kills: int,
              seed: int) -> dict[str, int]:
    """Deliver mail in small chunks, start a poll after each, and SIGKILL it at a random
    moment within its expected run time, until `kills` kills have landed in the middle of
    work and at least `messages` messages arrived; then one poll runs to its end."""
    office.write_text(office.read_text().replace("[policy]\n", "[policy]\n" + CRASH_CONFIG))
    pool = mailbox_of(messages * 4, seed)
    rng = random.Random(seed)
    chunk = max(1, messages // (2 * kills))
    delivered = done_kills = mid_work = completed = 0
    expected = 1.5  # seconds a poll takes: learnt from the polls that ran to their end
    while mid_work < kills or delivered < messages:
        for folder, raw, when in pool[delivered:delivered + chunk]:
            deliver(dovecot, account, folder, raw, when)
        delivered = min(delivered + chunk, len(pool))
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "saraban_mail", "poll", "--config", str(office)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        try:
            process.wait(timeout=rng.uniform(0.3, expected) if mid_work < kills else 600)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            done_kills += 1
            mid_work += unfinished(office, delivered)
            continue
        expected = 0.5 * expected + 0.5 * (time.monotonic() - started)
        err = process.stderr.read().decode() if process.stderr else ""
        assert process.returncode in (0, 3), err
        assert "Traceback" not in err, err
        completed += 1
    final = subprocess.run([sys.executable, "-m", "saraban_mail", "poll", "--json", "--config",
                            str(office)], capture_output=True, text=True, env=os.environ.copy(),
                           timeout=600)
    assert final.returncode == 0, final.stderr
    assert final.stdout == "", "a complete poll left work for the next one"
    return check_invariants(office, dovecot, account, smtp, pool[:delivered]) | {
        "kills": done_kills, "kills_mid_work": mid_work, "completed_polls": completed + 1,
        "messages": delivered}


def unfinished(office: Path, delivered: int) -> int:
    """1 when the killed poll left work behind (mail unread, rows, replies or moves)."""
    path = office.parent / "data" / "journal.sqlite3"
    if not path.exists():
        return 1
    db = sqlite3.connect(path)
    try:
        left = db.execute(
            "SELECT (SELECT COUNT(*) FROM messages) < ? OR"
            " EXISTS (SELECT 1 FROM outbox WHERE sent_at IS NULL) OR"
            " EXISTS (SELECT 1 FROM actions WHERE done_at IS NULL) OR"
            " EXISTS (SELECT 1 FROM register_rows WHERE written_at IS NULL)", (delivered,)
        ).fetchone()[0]
    except sqlite3.Error:
        return 1  # killed before the journal had its tables
    finally:
        db.close()
    return int(left)


def check_invariants(office: Path, dovecot, account: str, smtp, mail) -> dict[str, int]:
    rules = load_rules(default_dir("rules"))
    us = Identity(frozenset({AGENCY}), frozenset({STAFF}))
    expected = {parse(raw).message_id: classify(parse(raw), rules, us) for _, raw, _ in mail}
    legit = {mid for mid, d in expected.items() if d.category.registered}
    spam = {mid for mid, d in expected.items() if d.category.value == "spam"}

    db = sqlite3.connect(office.parent / "data" / "journal.sqlite3")
    rows = db.execute("SELECT json_extract(record, '$.message_id'), receipt_year, receipt_no, id"
                      " FROM messages WHERE receipt_no IS NOT NULL").fetchall()
    # Every legitimate message registered exactly once, numbered 1..N per year.
    assert Counter(r[0] for r in rows) == Counter(legit)
    for year in {r[1] for r in rows}:
        numbers = sorted(r[2] for r in rows if r[1] == year)
        assert numbers == list(range(1, len(numbers) + 1))
    sent = db.execute("SELECT o.message_id, o.message, o.kind FROM outbox o"
                      " WHERE o.sent_at IS NOT NULL").fetchall()
    unsent = db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
    db.close()
    assert unsent == 0
    acked = {message for _, message, kind in sent if kind in ("acknowledgement", "wrong_channel")}
    assert acked >= {r[3] for r in rows}, "a registered message has no acknowledgement"

    # At the SMTP server: everything the journal calls sent arrived; count what arrived twice.
    delivered = Counter(str(message_from_bytes(raw, policy=default_policy)["Message-ID"]).strip()
                        for _, _, raw in smtp.messages)  # a long ID is folded onto its own line
    lost = [mid for mid, _, _ in sent if delivered[mid] == 0]
    assert lost == []
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)

    # The mailbox: every message is still there exactly once; spam in Trash, the rest in INBOX.
    client = imap_client(dovecot, account)
    where: Counter = Counter()
    try:
        for folder in ("INBOX", "Junk", "Trash"):
            client.select_folder(folder_of(dovecot, folder), readonly=True)
            uids = client.search("ALL")
            for data in client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).values():
                header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
                where[(header.partition(":")[2].strip(), folder)] += 1
    finally:
        client.logout()
    for mid in expected:
        places = {folder: n for (m, folder), n in where.items() if m == mid}
        assert sum(places.values()) == 1, (mid, places)
        assert set(places) == ({"Trash"} if mid in spam else {"INBOX"}), (mid, places)

    check = subprocess.run([sys.executable, "-m", "saraban_mail", "register", "check", "--config",
                            str(office)], capture_output=True, text=True, env=os.environ.copy())
    assert check.returncode == 0, check.stdout + check.stderr
    return {"registered": len(rows), "acknowledgements": len(acked),
            "duplicate_deliveries": duplicates}


def report(figures: dict[str, int]) -> None:
    line = json.dumps(figures)
    print(f"crash run: {line}")
    out = os.environ.get("SARABAN_RELIABILITY_OUT")
    if out:
        with Path(out).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def test_crash_anywhere_short(office, dovecot, imap_account, smtp):
    kills = int(os.environ.get("SARABAN_CRASH_KILLS", "8"))
    messages = int(os.environ.get("SARABAN_CRASH_MESSAGES", "200"))
    figures = crash_run(office, dovecot, imap_account, smtp, messages, kills, seed=2569)
    report(figures)
    # A kill between the server's "250 OK" and the journal's note of it resends that one
    # message (the at-least-once window); each kill can cost at most one duplicate.
    assert figures["duplicate_deliveries"] <= figures["kills"]
    assert figures["messages"] >= 200


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crash_anywhere_long(office, dovecot, imap_account, smtp, seed):
    figures = crash_run(office, dovecot, imap_account, smtp, 500, 50, seed=seed)
    report(figures | {"seed": seed})
    assert figures["duplicate_deliveries"] <= figures["kills"]


def test_the_mix_is_realistic():
    mail = mailbox_of(200, 2569)
    rules = load_rules(default_dir("rules"))
    us = Identity(frozenset({AGENCY}), frozenset({STAFF}))
    kinds = Counter(classify(parse(raw), rules, us).category.value for _, raw, _ in mail)
    assert kinds["spam"] + kinds["automated"] > kinds["valid"]
    assert kinds["valid"] >= 40 and len({parse(raw).message_id for _, raw, _ in mail}) == 200

"""The journal's queries for `status` and the register audit read its indexes, not every
message's record or every mail's bytes (a journal of years holds hundreds of megabytes)."""

from __future__ import annotations

import re

from saraban_mail.journal import Journal

# A step of a query plan over the wide tables (each message's JSON record, each mail's bytes).
WIDE = re.compile(r"(SCAN|SEARCH) (m|o|messages|outbox)\b")
INDEXES = ("messages_registered", "messages_decided", "outbox_message")


def test_what_status_reads_comes_from_indexes(tmp_path):
    journal = Journal.open(tmp_path)
    statements: list[str] = []
    journal.db.set_trace_callback(statements.append)
    journal.acks_outstanding()
    journal.counts()
    journal.counts("2026-11-23")
    journal.register_entries(2569)
    journal.db.set_trace_callback(None)
    assert len(statements) == 4
    for sql in statements:
        plan = [row[3] for row in journal.db.execute(f"EXPLAIN QUERY PLAN {sql}")]
        wide = [step for step in plan if WIDE.match(step)]
        assert wide, plan
        for step in wide:
            assert any(name in step for name in INDEXES), (sql, plan)
            assert "AUTOMATIC" not in step, (sql, plan)
    journal.close()


def test_counts_by_day_and_year_match_the_prefix(tmp_path):
    journal = Journal.open(tmp_path)
    for n, decided in enumerate(["2026-11-22T23:59:59+07:00", "2026-11-23T00:00:00+07:00",
                                 "2026-11-23T16:30:00+07:00", "2027-01-01T08:30:00+07:00"]):
        journal.db.execute(
            "INSERT INTO messages (identity, folder, uidvalidity, uid, category, rule,"
            " official_received_at, record, poll, decided_at) VALUES (?, 'INBOX', 1, ?, ?, 'r',"
            " ?, '{}', 'p', ?)", (f"id{n}", str(n), "valid" if n % 2 else "spam", decided, decided))
    assert journal.counts("2026-11-23") == {"spam": 1, "valid": 1}
    assert journal.counts("2026") == {"spam": 2, "valid": 1}
    assert journal.counts("2027") == {"valid": 1}
    assert journal.counts() == {"spam": 2, "valid": 2}
    journal.close()

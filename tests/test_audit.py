"""The register audit: the journal's receipt numbers against the sheet's rows."""

from __future__ import annotations

from pathlib import Path

from saraban_mail.audit import Entry, audit

PATH = Path("incoming-2569.xlsx")


def ours(number: int, written: bool = True) -> Entry:
    return Entry(number, f"SM-{number:012d}", written, 100 + number)


def test_a_register_that_holds_every_number_once_is_clean():
    entries = [ours(1), ours(2), ours(3)]
    rows = [(e.number, e.ref) for e in entries]
    found = audit(2569, PATH, entries, rows)
    assert found.clean and found.lines() == ["incoming-2569.xlsx: 3 row(s), highest number 3"]


def test_each_kind_of_fault_is_named_with_its_numbers():
    entries = [ours(1), ours(2), ours(3), ours(5), ours(6, written=False)]
    rows = [
        (1, ours(1).ref),
        (2, ours(2).ref), (2, ""),  # a clerk typed the service's number again
        # 3: the service wrote it, someone deleted the row
        (5, ours(5).ref),
        (7, ""), (7, ""),  # a clerk's own number, twice
        (None, ""),  # a clerk's row without a number
        # 4: no one has it; 6 waits in the journal (the workbook was open)
    ]
    found = audit(2569, PATH, entries, rows)
    assert (found.rows, found.highest) == (7, 7)
    assert found.gaps == [4]
    assert found.duplicates == [2, 7]
    assert found.missing == [3] and found.missing_messages == (103,)
    assert found.pending == [6]
    assert found.clashes == [2]
    assert not found.clean
    assert "incoming-2569.xlsx: gaps (no row): 4" in found.lines()
    assert "incoming-2569.xlsx: waiting to be written: 6" in found.lines()


def test_a_large_register_with_rows_waiting_is_audited_whole():
    # A poll's backlog registered while the clerks kept the workbook open: thousands wait.
    entries = [ours(n, written=n <= 10_000) for n in range(1, 20_001)]
    rows = [(n, ours(n).ref) for n in range(1, 10_001) if n != 4_321]
    found = audit(2569, PATH, entries, rows)
    assert found.highest == 20_000 and len(found.pending) == 10_000
    assert found.missing == [4_321] and found.gaps == [] and found.duplicates == []

"""Register audit: does the workbook hold every number the journal gave out, once?

A pure comparison of the journal's entries with the sheet's rows; `register check`
prints it and `--repair` writes the missing rows again."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """A receipt number as the journal knows it."""

    number: int
    ref: str
    written: bool
    message: int


@dataclass(frozen=True)
class Audit:
    year: int
    path: Path
    rows: int
    highest: int
    gaps: list[int]  # numbers below the highest that no row carries and none waits for
    duplicates: list[int]  # numbers on more than one row
    missing: list[int]  # written by the service once, but its row is gone from the sheet
    pending: list[int]  # waiting in the journal (the workbook was open or unreadable)
    clashes: list[int]  # numbers on a service row and on a row a clerk typed
    missing_messages: tuple[int, ...] = ()
    cancelled: list[int] = dataclass_field(default_factory=list)  # used, never given again

    @property
    def clean(self) -> bool:
        return not (self.gaps or self.duplicates or self.missing or self.clashes)

    def lines(self) -> list[str]:
        name = self.path.name
        out = [f"{name}: {self.rows} row(s), highest number {self.highest}"]
        for label, numbers in (("gaps (no row)", self.gaps), ("duplicate numbers", self.duplicates),
                               ("rows missing from the sheet", self.missing),
                               ("waiting to be written", self.pending),
                               ("numbers a clerk also typed", self.clashes),
                               ("cancelled (kept, never given again)", self.cancelled)):
            if numbers:
                out.append(f"{name}: {label}: {', '.join(map(str, numbers))}")
        return out


def audit(year: int, path: Path, entries: list[Entry],
          rows: list[tuple[int | None, str]], cancelled: tuple[int, ...] = ()) -> Audit:
    """`rows`: the number and the service's reference of each data row of the sheet
    (no reference: a row a clerk typed); `cancelled`: numbers cancelled, used all the same."""
    counts = Counter(number for number, _ in rows if number is not None)
    refs = {ref for _, ref in rows if ref}
    pending = sorted(e.number for e in entries if not e.written)
    missing = [e for e in entries if e.written and e.ref not in refs]
    ours = {e.number for e in entries}
    clerk_numbers = {number for number, ref in rows if not ref and number is not None}
    highest = max([*counts, *pending, 0])
    accounted = {*counts, *pending, *(e.number for e in missing), *cancelled}
    return Audit(
        year=year,
        path=path,
        rows=len(rows),
        highest=highest,
        gaps=[n for n in range(1, highest + 1) if n not in accounted],
        duplicates=sorted(n for n, c in counts.items() if c > 1),
        missing=sorted(e.number for e in missing),
        pending=pending,
        clashes=sorted(ours & clerk_numbers),
        missing_messages=tuple(e.message for e in missing),
        cancelled=sorted(cancelled),
    )

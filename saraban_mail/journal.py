"""The journal: the service's memory in SQLite, and why a crash repeats and loses nothing.

Every stage reads its pending work from here and marks it done here; the mailbox,
the workbook and the SMTP server are only ever changed after the journal says so."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from saraban_mail.layout import Summary
from saraban_mail.record import Record
from saraban_mail.space import Usage
from saraban_mail.space import line_th as space_line_th

SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    folder TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid TEXT NOT NULL,
    category TEXT NOT NULL, rule TEXT NOT NULL,
    requester TEXT NOT NULL DEFAULT '',
    official_received_at TEXT NOT NULL,
    receipt_year INTEGER, receipt_no INTEGER,
    record TEXT NOT NULL,
    poll TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    UNIQUE (receipt_year, receipt_no)
);
CREATE TABLE IF NOT EXISTS copies (
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages(id), kind TEXT NOT NULL, poll TEXT NOT NULL,
    PRIMARY KEY (folder, uidvalidity, uid)
);
CREATE TABLE IF NOT EXISTS register_rows (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    year INTEGER NOT NULL, receipt_no INTEGER NOT NULL, row TEXT NOT NULL,
    written_at TEXT, ack_written_at TEXT,
    inquiry_written_at TEXT, inquiry_replied_at TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    message INTEGER REFERENCES messages(id),
    kind TEXT NOT NULL, recipient TEXT NOT NULL, message_id TEXT NOT NULL, raw BLOB NOT NULL,
    created_at TEXT NOT NULL, sent_at TEXT, filed_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, gave_up_at TEXT,
    filing_at TEXT,  -- a copy to Sent was attempted: it may be there already
    -- a row for a further receipt named in one combined acknowledgement: the mail itself
    -- is row `part_of`, and this row is sent, refused and filed with it
    part_of INTEGER REFERENCES outbox(id)
);
-- Acknowledgements held back by the per-sender cap: sent at the first poll with room for
-- them (the next day's), never dropped.
CREATE TABLE IF NOT EXISTS held_acks (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    kind TEXT NOT NULL, held_at TEXT NOT NULL, released_at TEXT
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    message INTEGER NOT NULL REFERENCES messages(id),
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
    done_at TEXT, last_error TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL, send_no INTEGER NOT NULL,
    receipt_year INTEGER NOT NULL, receipt_no INTEGER NOT NULL,
    recipient TEXT NOT NULL, message_id TEXT NOT NULL,
    raw BLOB NOT NULL,
    -- the password mail; erased once sent: the password is kept nowhere else
    password_raw BLOB,
    row TEXT NOT NULL, source TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, sent_at TEXT, password_sent_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, gave_up_at TEXT,
    row_written_at TEXT, action_written_at TEXT, filed_at TEXT,
    filing_at TEXT,  -- a copy to Sent was attempted: it may be there already
    UNIQUE (year, send_no)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL, receipt_no INTEGER NOT NULL,
    at TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,
    state TEXT,  -- the matter's state from this event on (NULL: unchanged)
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_matter ON events(year, receipt_no, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Requests found in a watched (staff) mailbox and copied to the saraban inbox.
CREATE TABLE IF NOT EXISTS watched (
    identity TEXT PRIMARY KEY,
    watch TEXT NOT NULL,          -- the [[watch]] entry's name
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    address TEXT NOT NULL,        -- the address the citizen wrote to
    arrived_at TEXT NOT NULL,     -- when it reached that mailbox (its INTERNALDATE)
    noted_at TEXT NOT NULL,
    copied_at TEXT                -- set once the saraban inbox holds the copy
);
-- Lines to add to a register row (a step's note in การปฏิบัติ, a mark), written when the
-- workbook is free: at once, or by a later poll when a clerk had it open.
CREATE TABLE IF NOT EXISTS register_notes (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL, receipt_no INTEGER NOT NULL,
    ref TEXT NOT NULL DEFAULT '', -- the row's service reference; '' for a clerk's paper row
    field TEXT NOT NULL DEFAULT 'action', -- the column's key in layout.INCOMING
    text TEXT NOT NULL,
    created_at TEXT NOT NULL, written_at TEXT
);
CREATE INDEX IF NOT EXISTS register_notes_pending ON register_notes(written_at);
-- Mail that needs a person (needs_review), listed for the clerks, and what they decided.
CREATE TABLE IF NOT EXISTS reviews (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    year INTEGER NOT NULL, number INTEGER NOT NULL,  -- ลำดับ in that year's review list
    noted_at TEXT NOT NULL,
    listed_at TEXT,               -- its row written to register/review-YEAR.xlsx
    decision TEXT, argument TEXT NOT NULL DEFAULT '', actor TEXT, via TEXT, decided_at TEXT,
    carried_at TEXT,              -- the decision carried out in the journal
    problem TEXT,                 -- why the clerk's last instruction could not be taken
    outcome TEXT, outcome_written_at TEXT,
    UNIQUE (year, number)
);
-- Delivery failures reported by mail (bounces), and the mail of ours each was linked to.
CREATE TABLE IF NOT EXISTS bounces (
    message INTEGER PRIMARY KEY REFERENCES messages(id),  -- the bounce itself (automated)
    bounce TEXT NOT NULL,         -- bounces.Bounce as JSON
    noted_at TEXT NOT NULL,
    linked_at TEXT,               -- looked for: linked, or found to report on nothing of ours
    linked_to TEXT NOT NULL DEFAULT ''  -- "outbox:ID" or "results:ID"; '' for nothing of ours
);
-- Each registered mail kept as it arrived (records/YEAR/rx-NNNN.eml), and its SHA-256.
CREATE TABLE IF NOT EXISTS records (
    message INTEGER PRIMARY KEY REFERENCES messages(id),
    file TEXT NOT NULL,           -- relative to paths.records_dir; '' when there was none
    sha256 TEXT NOT NULL, size INTEGER NOT NULL, kept_at TEXT NOT NULL
);
-- Mail copied off the server into archive.dir, verified by hash, then deleted there.
CREATE TABLE IF NOT EXISTS archived (
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid TEXT NOT NULL,
    message INTEGER REFERENCES messages(id), message_id TEXT NOT NULL,
    file TEXT NOT NULL,           -- relative to archive.dir: MONTH/cur/NAME
    sha256 TEXT NOT NULL, archived_at TEXT NOT NULL,
    deleted_at TEXT,              -- gone from the server (only after the copy was verified)
    PRIMARY KEY (folder, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS archived_message ON archived(message);
-- Spam the service had moved to Trash, deleted from there after policy.trash_days.
CREATE TABLE IF NOT EXISTS trash_emptied (
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid TEXT NOT NULL,
    message INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (folder, uidvalidity, uid)
);
-- Records purged under the retention table (retention.py): what, when, by which rule.
CREATE TABLE IF NOT EXISTS purges (
    id INTEGER PRIMARY KEY,
    ref TEXT NOT NULL, kind TEXT NOT NULL, rule TEXT NOT NULL, sha256 TEXT NOT NULL,
    year INTEGER, receipt_no INTEGER, book TEXT NOT NULL DEFAULT 'incoming',
    at TEXT NOT NULL, actor TEXT NOT NULL,
    list_year INTEGER  -- the disposal list (บัญชีหนังสือขอทำลาย) that approved it, if any
);
-- The yearly disposal lists for the head of agency, and the approval of each.
CREATE TABLE IF NOT EXISTS disposal_lists (
    year INTEGER PRIMARY KEY,     -- Buddhist era
    items TEXT NOT NULL,          -- JSON: [{ref, kind, rule, due_on, year, number, ...}]
    made_at TEXT NOT NULL, approved_by TEXT, approved_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(sent_at, gave_up_at);
CREATE INDEX IF NOT EXISTS actions_pending ON actions(done_at);
CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox(recipient, created_at);
-- What status and the register audit read, held apart from the wide rows (each message's
-- record, each mail's bytes) so that they do not read the whole journal.
CREATE INDEX IF NOT EXISTS outbox_message ON outbox(message, kind, sent_at);
CREATE INDEX IF NOT EXISTS messages_decided ON messages(decided_at, category);
CREATE INDEX IF NOT EXISTS messages_registered ON messages(receipt_year, receipt_no, identity,
    requester, json_extract(record, '$.ack_due')) WHERE receipt_no IS NOT NULL;
"""

# Columns added since the first journals: an older journal gets them when it is opened.
ADDED_COLUMNS = (
    ("outbox", "filing_at", "TEXT"),
    ("results", "filing_at", "TEXT"),
    # A bounce reported the mail undeliverable (ส่งไม่ถึง), and why.
    ("outbox", "bounced_at", "TEXT"),
    ("outbox", "bounce_reason", "TEXT"),
    ("results", "bounced_at", "TEXT"),
    ("results", "bounce_reason", "TEXT"),
    # Which register a note is for: incoming (แบบที่ ๑๓) or outgoing (แบบที่ ๑๔).
    ("register_notes", "book", "TEXT NOT NULL DEFAULT 'incoming'"),
    # One acknowledgement mail naming several receipts: the others point at it.
    ("outbox", "part_of", "INTEGER REFERENCES outbox(id)"),
    # A move on a server without MOVE is COPY, then delete: the COPY is noted before it is
    # sent (copy_started_at) and once answered (copied_to: "UIDVALIDITY:UID", or "" when the
    # server did not say where), so a retry never copies twice [issue: servers without MOVE].
    ("actions", "copy_started_at", "TEXT"),
    ("actions", "copied_to", "TEXT"),
)


# Indexes on the added columns (made once they exist). Added at the end of each row, behind
# the mail's bytes: without an index `status` would read every mail ever sent to find them.
LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_bounced ON outbox(bounced_at) WHERE bounced_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_parts ON outbox(part_of) WHERE part_of IS NOT NULL;
"""


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    last_uid: int


class Stored(NamedTuple):
    """A message as the journal holds it: its row id, identity and record."""

    id: int
    identity: str
    record: Record


@dataclass(frozen=True)
class Known:
    id: int
    folder: str
    uidvalidity: int
    uid: str


@contextmanager
def single_instance(data_dir: Path) -> Iterator[None]:
    """Hold data_dir/poll.lock: two polls at once could fetch and number the same mail.
    An OS lock, so a crashed poll never leaves it behind."""
    from saraban_mail.errors import JournalError, SarabanError

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        descriptor = os.open(data_dir / "poll.lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot use the data folder {data_dir}: {exc.strerror or exc}") from None
    handle = os.fdopen(descriptor, "a+")  # held for the whole poll
    try:
        try:
            _lock(handle)
        except OSError:
            holder = "another process"
            with contextlib.suppress(OSError):  # Windows refuses to read a locked byte
                handle.seek(0)
                holder = handle.read().strip() or holder
            raise SarabanError(f"another poll is running ({holder}); try again later") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def _lock(handle: Any) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)  # every process locks the same first byte ("a+" starts at the end)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class Journal:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        for table, column, kind in ADDED_COLUMNS:
            names = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in names:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.db.executescript(LATER_INDEXES)

    @classmethod
    def open(cls, data_dir: Path) -> Journal:
        """Open (creating) data_dir/journal.sqlite3, private to the service user."""
        from saraban_mail.errors import JournalError

        path = data_dir / "journal.sqlite3"
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(data_dir, 0o700)
            connection = sqlite3.connect(path, isolation_level=None, timeout=30)
            os.chmod(path, 0o600)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            # Erased data (a sent PDF password) is overwritten, not left in free pages.
            connection.execute("PRAGMA secure_delete=ON")
            return cls(connection)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {path}: {exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from None

    @classmethod
    def scratch(cls, data_dir: Path) -> Journal:
        """An in-memory copy for --dry-run: decide everything, keep nothing, create nothing."""
        memory = sqlite3.connect(":memory:", isolation_level=None)
        path = data_dir / "journal.sqlite3"
        if path.exists():
            source = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            source.backup(memory)
            source.close()
        return cls(memory)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- folders and copies -------------------------------------------------------------

    def folder_state(self, folder: str) -> FolderState | None:
        row = self.db.execute(
            "SELECT uidvalidity, last_uid FROM folders WHERE folder = ?", (folder,)
        ).fetchone()
        return FolderState(row[0], row[1]) if row else None

    def set_folder_state(self, folder: str, state: FolderState) -> None:
        self.db.execute(
            "INSERT INTO folders VALUES (?, ?, ?) ON CONFLICT(folder) DO UPDATE SET "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            (folder, state.uidvalidity, state.last_uid),
        )

    def advance(self, folder: str, uidvalidity: int, uid: int | str) -> None:
        if isinstance(uid, int):
            current = self.folder_state(folder)
            last = current.last_uid if current and current.uidvalidity == uidvalidity else 0
            self.set_folder_state(folder, FolderState(uidvalidity, max(last, uid)))

    def known_copy(self, folder: str, uidvalidity: int, uid: int | str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM copies WHERE folder = ? AND uidvalidity = ? AND uid = ?",
            (folder, uidvalidity, str(uid)),
        ).fetchone() is not None

    def find_identity(self, identity: str) -> Known | None:
        row = self.db.execute(
            "SELECT id, folder, uidvalidity, uid FROM messages WHERE identity = ?",
            (identity,),
        ).fetchone()
        if row is None:
            return None
        return Known(row["id"], row["folder"], row["uidvalidity"], row["uid"])

    def add_copy(self, folder: str, uidvalidity: int, uid: int | str, message: int, kind: str,
                 poll: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO copies VALUES (?, ?, ?, ?, ?, ?)",
            (folder, uidvalidity, str(uid), message, kind, poll),
        )

    # -- messages -----------------------------------------------------------------------

    def add_message(self, *, identity: str, uidvalidity: int, record: Record, poll: str,
                    now: datetime) -> int:
        cursor = self.db.execute(
            "INSERT INTO messages (identity, folder, uidvalidity, uid, category, rule, requester,"
            " official_received_at, record, poll, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (identity, record.folder, uidvalidity, str(record.uid), str(record.category),
             record.rule, record.requester, _iso(record.official_received_at),
             record.to_json(), poll, _iso(now)),
        )
        return int(cursor.lastrowid or 0)

    def stored(self, message: int) -> Stored:
        row = self.db.execute("SELECT id, identity, record FROM messages WHERE id = ?",
                              (message,)).fetchone()
        return Stored(row[0], row[1], Record.from_json(row[2]))

    def record(self, message: int) -> Record:
        row = self.db.execute("SELECT record FROM messages WHERE id = ?", (message,)).fetchone()
        return Record.from_json(row[0])

    def unnumbered(self, categories: tuple[str, ...]) -> list[Stored]:
        """Registrable messages still without a receipt number, in official-time order."""
        marks = ",".join("?" * len(categories))
        return [Stored(row[0], row[1], Record.from_json(row[2])) for row in self.db.execute(
            f"SELECT id, identity, record FROM messages WHERE receipt_no IS NULL"
            f" AND category IN ({marks}) ORDER BY official_received_at, id",
            categories,
        )]

    def highest_receipt(self, year: int) -> int:
        row = self.db.execute(
            "SELECT MAX(receipt_no) FROM messages WHERE receipt_year = ?", (year,)
        ).fetchone()
        return int(row[0] or 0)

    def set_receipt(self, message: int, year: int, number: int) -> None:
        self.db.execute(
            "UPDATE messages SET receipt_year = ?, receipt_no = ? WHERE id = ?",
            (year, number, message),
        )

    def receipt(self, message: int) -> tuple[int | None, int | None]:
        row = self.db.execute(
            "SELECT receipt_year, receipt_no FROM messages WHERE id = ?", (message,)
        ).fetchone()
        return row[0], row[1]

    def copies_of_poll(self, poll: str) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT folder, uidvalidity, uid, message, kind FROM copies WHERE poll = ?"
            " AND kind IN ('original', 'duplicate') ORDER BY rowid", (poll,)
        ).fetchall()

    # -- register rows ------------------------------------------------------------------

    def add_register_row(self, message: int, year: int, number: int, row: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO register_rows (message, year, receipt_no, row) VALUES (?, ?, ?, ?)",
            (message, year, number, json.dumps(row, ensure_ascii=False)),
        )

    def pending_register_rows(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT message, year, receipt_no, row FROM register_rows WHERE written_at IS NULL"
            " ORDER BY year, receipt_no"
        ).fetchall()

    def unwritten_acks(self, year: int) -> list[sqlite3.Row]:
        """Acknowledgements sent since their register row was written: the row's
        'sent' cell is filled at the next save of that workbook."""
        return self.db.execute(
            "SELECT r.message, r.receipt_no, o.sent_at, m.identity,"
            " r.written_at IS NOT NULL AS row_written FROM register_rows r"
            " JOIN messages m ON m.id = r.message JOIN outbox o"
            " ON o.message = r.message AND o.kind IN ('acknowledgement', 'wrong_channel', 'letter_receipt')"
            " WHERE r.year = ? AND r.ack_written_at IS NULL AND o.sent_at IS NOT NULL",
            (year,),
        ).fetchall()

    def mark_rows_written(self, messages: list[int], now: datetime) -> None:
        self.db.executemany(
            "UPDATE register_rows SET written_at = ? WHERE message = ?",
            [(_iso(now), m) for m in messages],
        )

    def mark_acks_written(self, messages: list[int], now: datetime) -> None:
        self.db.executemany(
            "UPDATE register_rows SET ack_written_at = ? WHERE message = ?",
            [(_iso(now), m) for m in messages],
        )

    # -- outbox -------------------------------------------------------------------------

    def queue_mail(self, *, message: int | None, kind: str, recipient: str, message_id: str,
                   raw: bytes, now: datetime, part_of: int | None = None) -> int:
        cursor = self.db.execute(
            "INSERT INTO outbox (message, kind, recipient, message_id, raw, created_at, part_of)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message, kind, recipient, message_id, raw, _iso(now), part_of),
        )
        return int(cursor.lastrowid or 0)

    def replies_on(self, recipient: str, day: date) -> int:
        """Mails (not receipts: a combined acknowledgement is one) to `recipient` that day."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND substr(created_at, 1, 10) = ?"
            " AND part_of IS NULL", (recipient, day.isoformat()),
        ).fetchone()
        return int(row[0])

    def hold_ack(self, message: int, kind: str, now: datetime) -> None:
        self.db.execute("INSERT OR IGNORE INTO held_acks (message, kind, held_at) VALUES (?, ?, ?)",
                        (message, kind, _iso(now)))

    def held_acks(self) -> list[tuple[int, str, Record]]:
        """(message, kind, record) of acknowledgements waiting for room under the cap."""
        rows = self.db.execute(
            "SELECT h.message, h.kind, m.record FROM held_acks h JOIN messages m"
            " ON m.id = h.message WHERE h.released_at IS NULL ORDER BY h.message").fetchall()
        return [(row[0], row[1], Record.from_json(row[2])) for row in rows]

    def held_kind(self, message: int) -> str | None:
        """The kind of the message's acknowledgement if the cap holds it back."""
        row = self.db.execute("SELECT kind FROM held_acks WHERE message = ? AND released_at IS NULL",
                              (message,)).fetchone()
        return row[0] if row else None

    def release_ack(self, message: int, now: datetime) -> None:
        self.db.execute("UPDATE held_acks SET released_at = ? WHERE message = ?",
                        (_iso(now), message))

    def pending_mail(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, message, kind, recipient, message_id, raw, attempts FROM outbox"
            " WHERE sent_at IS NULL AND gave_up_at IS NULL AND part_of IS NULL ORDER BY id"
        ).fetchall()

    def unfiled_mail(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, raw, message_id, filing_at FROM outbox"
            " WHERE sent_at IS NOT NULL AND filed_at IS NULL AND part_of IS NULL ORDER BY id"
        ).fetchall()

    def mark_filing(self, mails: list[int], now: datetime) -> None:
        """A copy to Sent is about to be appended: if the poll dies before mark_filed,
        the next one looks in Sent before appending again."""
        self.db.executemany("UPDATE outbox SET filing_at = ? WHERE id = ?",
                            [(_iso(now), mail) for mail in mails])

    def mark_sent(self, mail: int, now: datetime) -> None:
        self.db.execute("UPDATE outbox SET sent_at = ?, last_error = NULL"
                        " WHERE id = ? OR part_of = ?", (_iso(now), mail, mail))

    def mark_filed(self, mail: int, now: datetime) -> None:
        self.db.execute("UPDATE outbox SET filed_at = ? WHERE id = ? OR part_of = ?",
                        (_iso(now), mail, mail))

    def mark_send_failed(self, mail: int, error: str, *, give_up: datetime | None) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, gave_up_at = ?"
            " WHERE id = ? OR part_of = ?",
            (error[:500], _iso(give_up) if give_up else None, mail, mail),
        )

    def mail_of(self, message: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT kind, recipient, sent_at, last_error, gave_up_at FROM outbox WHERE message = ?"
            " ORDER BY id", (message,)
        ).fetchall()

    # -- mailbox actions ----------------------------------------------------------------

    def add_action(self, message: int, folder: str, uidvalidity: int, uid: int | str,
                   action: str, target: str = "", seq: int = 0) -> None:
        self.db.execute(
            "INSERT INTO actions (message, folder, uidvalidity, uid, action, target, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message, folder, uidvalidity, str(uid), action, target, seq),
        )

    def pending_actions(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, message, folder, uidvalidity, uid, action, target, copy_started_at,"
            " copied_to FROM actions WHERE done_at IS NULL ORDER BY folder, message, seq, id"
        ).fetchall()

    def note_copy(self, action: int, *, started: datetime | None = None,
                  copied_to: str | None = None) -> None:
        """A fallback move's COPY: about to be sent, or answered (and where it landed)."""
        if started is not None:
            self.db.execute("UPDATE actions SET copy_started_at = ? WHERE id = ?",
                            (_iso(started), action))
        if copied_to is not None:
            self.db.execute("UPDATE actions SET copied_to = ? WHERE id = ?", (copied_to, action))

    def mark_action(self, action: int, now: datetime, error: str | None = None) -> None:
        if error is None:
            self.db.execute("UPDATE actions SET done_at = ?, last_error = NULL WHERE id = ?",
                            (_iso(now), action))
        else:
            self.db.execute("UPDATE actions SET last_error = ? WHERE id = ?", (error[:500], action))

    def pending_inquiries(self) -> list[sqlite3.Row]:
        """Requests for information to add to the inquiry log, or whose answer went since."""
        return self.db.execute(
            "SELECT r.message, r.year, r.receipt_no, m.identity, m.record, r.inquiry_written_at,"
            " (SELECT MIN(at) FROM events e WHERE e.year = r.year AND e.receipt_no = r.receipt_no"
            "  AND e.kind = 'result_sent') AS replied"
            " FROM register_rows r JOIN messages m ON m.id = r.message"
            " WHERE json_extract(m.record, '$.inquiry') = 1 AND (r.inquiry_written_at IS NULL"
            "  OR r.inquiry_replied_at IS NULL) ORDER BY r.year, r.receipt_no"
        ).fetchall()

    def mark_inquiries(self, messages: list[int], column: str, now: datetime) -> None:
        assert column in ("inquiry_written_at", "inquiry_replied_at")
        self.db.executemany(f"UPDATE register_rows SET {column} = ? WHERE message = ?",
                            [(_iso(now), m) for m in messages])

    def register_entries(self, year: int) -> list[sqlite3.Row]:
        """Every receipt number the journal gave out in `year`, with its register row state."""
        return self.db.execute(
            "SELECT m.receipt_no, m.identity, r.written_at, r.message FROM messages m"
            " LEFT JOIN register_rows r ON r.message = m.id"
            " WHERE m.receipt_year = ? AND m.receipt_no IS NOT NULL ORDER BY m.receipt_no", (year,)
        ).fetchall()

    def register_years(self) -> list[int]:
        rows = self.db.execute("SELECT DISTINCT year FROM register_rows ORDER BY year")
        return [row[0] for row in rows]

    def rewrite_rows(self, messages: list[int]) -> None:
        """--repair: write these rows again at the next register write."""
        self.db.executemany(
            "UPDATE register_rows SET written_at = NULL, ack_written_at = NULL WHERE message = ?",
            [(m,) for m in messages],
        )

    def month_counts(self, year: int) -> dict[int, dict[str, int]]:
        """Mail per month (of official receipt) and category, for Buddhist-era `year`."""
        rows = self.db.execute(
            "SELECT CAST(substr(official_received_at, 6, 2) AS INTEGER), category, COUNT(*)"
            " FROM messages WHERE substr(official_received_at, 1, 4) = ? GROUP BY 1, 2",
            (str(year - 543),),
        )
        months: dict[int, dict[str, int]] = {}
        for month, category, count in rows:
            months.setdefault(month, {})[category] = count
        return months

    def ack_timeliness(self, year: int) -> tuple[int, int, int]:
        """(on time, late, not yet sent) acknowledgements of registered mail of `year`."""
        row = self.db.execute(
            "SELECT"
            " SUM(o.sent_at IS NOT NULL AND o.sent_at <= json_extract(m.record, '$.ack_due')),"
            " SUM(o.sent_at IS NOT NULL AND o.sent_at > json_extract(m.record, '$.ack_due')),"
            " SUM(o.sent_at IS NULL)"
            " FROM messages m LEFT JOIN outbox o ON o.message = m.id"
            " AND o.kind IN ('acknowledgement', 'wrong_channel', 'letter_receipt')"
            # A letter from a system address gets no notice: nothing is outstanding.
            " WHERE m.receipt_year = ? AND COALESCE(m.requester, '') != ''", (year,),
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    # -- results (outgoing register) ------------------------------------------------------

    def highest_send_no(self, year: int) -> int:
        row = self.db.execute("SELECT MAX(send_no) FROM results WHERE year = ?", (year,)).fetchone()
        return int(row[0] or 0)

    def add_result(self, *, year: int, send_no: int, receipt_year: int, receipt_no: int,
                   recipient: str, message_id: str, raw: bytes, password_raw: bytes | None,
                   row: dict[str, Any], source: str, now: datetime) -> int:
        cursor = self.db.execute(
            "INSERT INTO results (year, send_no, receipt_year, receipt_no, recipient, message_id,"
            " raw, password_raw, row, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (year, send_no, receipt_year, receipt_no, recipient, message_id, raw, password_raw,
             json.dumps(row, ensure_ascii=False), source, _iso(now)),
        )
        return int(cursor.lastrowid or 0)

    def result_sources(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT source FROM results WHERE source != ''")}

    def results_to_send(self) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM results WHERE gave_up_at IS NULL AND"
            " (sent_at IS NULL OR (password_raw IS NOT NULL AND password_sent_at IS NULL))"
            " ORDER BY id"
        ).fetchall()

    def results_where(self, condition: str) -> list[sqlite3.Row]:
        return self.db.execute(
            f"SELECT * FROM results WHERE sent_at IS NOT NULL AND {condition} ORDER BY id"
        ).fetchall()

    def results_of_receipt(self, year: int, number: int) -> list[sqlite3.Row]:
        """Every result queued for an incoming receipt (sent or not), oldest first."""
        return self.db.execute(
            "SELECT id, year, send_no, created_at, sent_at, gave_up_at FROM results "
            "WHERE receipt_year = ? AND receipt_no = ? ORDER BY id", (year, number)).fetchall()

    def result_of_source(self, source: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM results WHERE source = ?", (source,)).fetchone()

    def update_result(self, result: int, **fields: Any) -> None:
        allowed = {"sent_at", "password_sent_at", "password_raw", "attempts", "last_error",
                   "gave_up_at", "row_written_at", "action_written_at", "filed_at",
                   "filing_at"}
        assert set(fields) <= allowed, fields
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = [_iso(v) if isinstance(v, datetime) else v for v in fields.values()]
        self.db.execute(f"UPDATE results SET {assignments} WHERE id = ?", (*values, result))

    def message_of_receipt(self, year: int, number: int) -> Stored | None:
        row = self.db.execute(
            "SELECT id, identity, record FROM messages WHERE receipt_year = ? AND receipt_no = ?",
            (year, number),
        ).fetchone()
        return Stored(row[0], row[1], Record.from_json(row[2])) if row else None

    def summary(self, year: int, *, pending_rows: int = 0, as_of: str = "") -> Summary:
        """The numbers of the register's สรุป sheet for Buddhist-era `year`."""
        on_time, late, waiting = self.ack_timeliness(year)
        return Summary(
            year=year, as_of=as_of, by_month=self.month_counts(year),
            acks_on_time=on_time, acks_late=late, acks_waiting=waiting,
            pending={
                "แถวที่รอเขียนลงทะเบียน": max(len(self.pending_register_rows()) - pending_rows, 0),
                "อีเมลตอบกลับที่รอส่ง (ส่งหลังบันทึกทะเบียน)": len(self.pending_mail()),
            },
            space=space_line_th(Usage.from_json(self.get_meta("mailbox_space")))
            if self.get_meta("mailbox_space") is not None else "",
        )

    # -- matters: events and states -------------------------------------------------------

    def add_event(self, year: int, number: int, *, kind: str, actor: str, now: datetime,
                  state: str | None = None, detail: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT INTO events (year, receipt_no, at, actor, kind, state, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (year, number, _iso(now), actor, kind, state,
             json.dumps(detail or {}, ensure_ascii=False)),
        )

    def events(self, year: int, number: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT id, at, actor, kind, state, detail FROM events WHERE year = ? AND receipt_no = ?"
            " ORDER BY id", (year, number),
        ).fetchall()

    def matters(self) -> list[sqlite3.Row]:
        """Every matter with its current state and the time of its last event."""
        return self.db.execute(
            "SELECT year, receipt_no,"
            " (SELECT state FROM events s WHERE s.year = e.year AND s.receipt_no = e.receipt_no"
            "  AND s.state IS NOT NULL ORDER BY s.id DESC LIMIT 1) AS state,"
            " MAX(at) AS last_at FROM events e GROUP BY year, receipt_no ORDER BY year, receipt_no"
        ).fetchall()

    def numbers_in_state(self, year: int, state: str) -> tuple[int, ...]:
        """The receipt numbers of `year` whose matter is now in `state`."""
        return tuple(m["receipt_no"] for m in self.matters()
                     if m["year"] == year and m["state"] == state)

    def state_of(self, year: int, number: int) -> str | None:
        row = self.db.execute(
            "SELECT state FROM events WHERE year = ? AND receipt_no = ? AND state IS NOT NULL"
            " ORDER BY id DESC LIMIT 1", (year, number),
        ).fetchone()
        return row[0] if row else None

    def receipt_of_sent(self, message_id: str) -> tuple[int, int, str] | None:
        """The matter (year, number, requester) a message we sent belongs to."""
        row = self.db.execute(
            "SELECT m.receipt_year, m.receipt_no, m.requester FROM outbox o"
            " JOIN messages m ON m.id = o.message WHERE o.message_id = ?"
            " AND m.receipt_no IS NOT NULL", (message_id,),
        ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT receipt_year, receipt_no, recipient FROM results WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT year, receipt_no, json_extract(detail, '$.recipient') FROM events"
                " WHERE json_extract(detail, '$.message_id') = ?", (message_id,),
            ).fetchone()
        return (row[0], row[1], row[2] or "") if row else None

    def requester_of(self, year: int, number: int) -> str:
        row = self.db.execute(
            "SELECT requester FROM messages WHERE receipt_year = ? AND receipt_no = ?",
            (year, number),
        ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT recipient FROM results WHERE receipt_year = ? AND receipt_no = ?"
                " ORDER BY id DESC LIMIT 1", (year, number),
            ).fetchone()
        return row[0] if row else ""

    def queue_note(self, year: int, number: int, ref: str, text: str, now: datetime,
                   field: str = "action", book: str = "incoming") -> int:
        """A line for the register row of receipt `number`/`year` (found by `ref`, else by
        number), written by `pending_notes`' reader; the same pending text is queued once.
        In the outgoing register (`book`) the number is the send number."""
        row = self.db.execute(
            "SELECT id FROM register_notes WHERE year = ? AND receipt_no = ? AND field = ? "
            "AND text = ? AND book = ? AND written_at IS NULL",
            (year, number, field, text, book)).fetchone()
        if row:
            return int(row[0])
        cursor = self.db.execute(
            "INSERT INTO register_notes (year, receipt_no, ref, field, text, created_at, book) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (year, number, ref, field, text, _iso(now), book))
        return int(cursor.lastrowid or 0)

    def pending_notes(self, year: int | None = None) -> list[sqlite3.Row]:
        """Notes not yet in the workbook, oldest first (of one year, or all)."""
        if year is None:
            return self.db.execute(
                "SELECT * FROM register_notes WHERE written_at IS NULL ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM register_notes WHERE written_at IS NULL AND year = ?"
                               " ORDER BY id", (year,)).fetchall()

    def note_written(self, ids: list[int], now: datetime) -> None:
        self.db.executemany("UPDATE register_notes SET written_at = ? WHERE id = ?",
                            [(_iso(now), i) for i in ids])

    def is_new(self) -> bool:
        """Nothing read yet: no message, no folder's high-water mark."""
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM messages) OR "
                               "EXISTS (SELECT 1 FROM folders)").fetchone()[0] == 0

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET"
                        " value = excluded.value", (key, value))

    def note_watched(self, identity: str, watch: str, folder: str, uidvalidity: int, uid: int,
                     address: str, arrived_at: datetime, now: datetime) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO watched VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (identity, watch, folder, uidvalidity, uid, address, arrived_at.isoformat(),
             now.isoformat()),
        )

    def watched_copied(self, identity: str, now: datetime) -> None:
        self.db.execute("UPDATE watched SET copied_at = ? WHERE identity = ?",
                        (now.isoformat(), identity))

    def watched(self, identity: str) -> sqlite3.Row | None:
        """The watched-mailbox origin of a message, if the service copied it from one."""
        return self.db.execute("SELECT * FROM watched WHERE identity = ?", (identity,)).fetchone()

    def watched_count(self, watch: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM watched WHERE watch = ?",
                                   (watch,)).fetchone()[0])

    def note_sheet(self, year: int, stamp: tuple[int, int, int],
                   rows: list[tuple[int | None, str]], settled: bool = False) -> None:
        """The (number, reference) of each row of a year's register, as read from the file
        with this identity (inode, size, modification time); `settled`: every clerk's
        instruction in it has been carried out."""
        self.set_meta(f"sheet:{year}", json.dumps({"stamp": list(stamp), "rows": rows,
                                                   "settled": settled}))

    def sheet_settled(self, year: int, stamp: tuple[int, int, int]) -> bool:
        """Is the file still the one noted, with nothing left to do in it?"""
        note = json.loads(self.get_meta(f"sheet:{year}") or "null")
        return bool(note and any(stamp) and tuple(note["stamp"]) == stamp
                    and note.get("settled"))

    def noted_sheet(self, year: int, stamp: tuple[int, int, int]
                    ) -> list[tuple[int | None, str]] | None:
        """The rows noted for that year if the file is still the one they were read from."""
        note = json.loads(self.get_meta(f"sheet:{year}") or "null")
        if not note or tuple(note["stamp"]) != stamp or not any(stamp):
            return None
        return [(number, ref) for number, ref in note["rows"]]

    def acks_outstanding(self) -> list[sqlite3.Row]:
        """Registered mail whose acknowledgement has not gone, or went after ack_due."""
        return self.db.execute(
            "SELECT m.receipt_year, m.receipt_no, m.requester,"
            " json_extract(m.record, '$.ack_due') AS due, o.sent_at FROM messages m"
            " LEFT JOIN outbox o ON o.message = m.id"
            " AND o.kind IN ('acknowledgement', 'wrong_channel', 'letter_receipt')"
            " WHERE m.receipt_no IS NOT NULL AND COALESCE(m.requester, '') != ''"
            " AND (o.sent_at IS NULL OR"
            " o.sent_at > json_extract(m.record, '$.ack_due'))"
            " ORDER BY m.receipt_year, m.receipt_no"
        ).fetchall()

    def answered_with(self, requester: str, text_sha: str) -> bool:
        """Has this requester already sent these very words in answer to a mail of ours?"""
        return self.db.execute(
            "SELECT 1 FROM messages WHERE requester = ? AND json_extract(record, '$.text_sha') = ?"
            " AND json_extract(record, '$.related_receipt') IS NOT NULL LIMIT 1",
            (requester, text_sha)).fetchone() is not None

    def counts(self, decided: str = "") -> dict[str, int]:
        """Messages per category; decided: only those handled on a day or in a year
        ("2026-11-23", "2026"), by the agency's clock."""
        rows = self.db.execute(
            "SELECT category, COUNT(*) FROM messages WHERE decided_at >= ? AND decided_at < ?"
            " GROUP BY category ORDER BY category",  # every text that starts with `decided`
            (decided, decided + "\uffff"))
        return {row[0]: row[1] for row in rows}

    # -- the review queue: mail that needs a person --------------------------------------

    def unlisted_reviews(self) -> list[Stored]:
        """needs_review mail not yet in the review queue, in order of arrival."""
        return [Stored(row[0], row[1], Record.from_json(row[2])) for row in self.db.execute(
            "SELECT m.id, m.identity, m.record FROM messages m LEFT JOIN reviews r"
            " ON r.message = m.id WHERE m.category = 'needs_review' AND r.message IS NULL"
            " ORDER BY m.official_received_at, m.id")]

    def add_review(self, message: int, year: int, now: datetime) -> int:
        """Put a message in `year`'s review queue; returns its number (ลำดับ) there."""
        number = int(self.db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM reviews"
                                     " WHERE year = ?", (year,)).fetchone()[0])
        self.db.execute("INSERT INTO reviews (message, year, number, noted_at) VALUES (?,?,?,?)",
                        (message, year, number, _iso(now)))
        return number

    def reviews(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Review entries with their message's identity and record; `where` on r.*."""
        return self.db.execute(
            "SELECT r.*, m.identity, m.record, m.receipt_year, m.receipt_no FROM reviews r"
            f" JOIN messages m ON m.id = r.message WHERE {where} ORDER BY r.year, r.number",
            params).fetchall()

    def review(self, year: int, number: int) -> sqlite3.Row | None:
        found = self.reviews("r.year = ? AND r.number = ?", (year, number))
        return found[0] if found else None

    def decide_review(self, message: int, *, decision: str, argument: str, actor: str, via: str,
                      now: datetime) -> None:
        self.db.execute(
            "UPDATE reviews SET decision = ?, argument = ?, actor = ?, via = ?, decided_at = ?,"
            " problem = NULL WHERE message = ? AND decision IS NULL",
            (decision, argument, actor, via, _iso(now), message))

    def update_review(self, message: int, **fields: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE reviews SET {names} WHERE message = ?",
                        (*[_iso(v) if isinstance(v, datetime) else v for v in fields.values()],
                         message))

    def redecide(self, message: int, record: Record) -> None:
        """A person's decision replaces the service's: category, rule, requester, record."""
        self.db.execute(
            "UPDATE messages SET category = ?, rule = ?, requester = ?, record = ? WHERE id = ?",
            (str(record.category), record.rule, record.requester, record.to_json(), message))

    def latest_copy(self, message: int) -> tuple[str, int, str] | None:
        """Where the message is now: its last known copy that is not a second delivery."""
        row = self.db.execute(
            "SELECT folder, uidvalidity, uid FROM copies WHERE message = ? AND kind != 'duplicate'"
            " ORDER BY rowid DESC LIMIT 1", (message,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def next_action_seq(self, message: int) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM actions WHERE message = ?",
                                   (message,)).fetchone()[0])

    # -- bounces --------------------------------------------------------------------------

    def add_bounce(self, message: int, bounce: dict[str, Any], now: datetime) -> None:
        self.db.execute("INSERT OR IGNORE INTO bounces (message, bounce, noted_at) VALUES (?, ?, ?)",
                        (message, json.dumps(bounce, ensure_ascii=False), _iso(now)))

    def pending_bounces(self) -> list[sqlite3.Row]:
        """Bounces not yet looked for among our mail, with when they arrived."""
        return self.db.execute(
            "SELECT b.message, b.bounce, json_extract(m.record, '$.received_at') AS arrived"
            " FROM bounces b JOIN messages m ON m.id = b.message"
            " WHERE b.linked_at IS NULL ORDER BY b.message").fetchall()

    def bounce_linked(self, message: int, linked_to: str, now: datetime) -> None:
        self.db.execute("UPDATE bounces SET linked_at = ?, linked_to = ? WHERE message = ?",
                        (_iso(now), linked_to, message))

    def sent_with_id(self, message_id: str) -> tuple[str, sqlite3.Row] | None:
        """Our sent mail with this Message-ID: ("outbox", row) or ("results", row)."""
        for table, own in (("outbox", " AND part_of IS NULL"), ("results", "")):
            row = self.db.execute(f"SELECT * FROM {table} WHERE message_id = ? AND sent_at IS NOT "
                                  f"NULL{own}", (message_id,)).fetchone()
            if row is not None:
                return table, row
        return None

    def parts_of(self, mail: int) -> list[sqlite3.Row]:
        """The rows of the other receipts one acknowledgement mail named (outbox.part_of)."""
        return self.db.execute("SELECT * FROM outbox WHERE part_of = ? ORDER BY id",
                               (mail,)).fetchall()

    def sent_to(self, recipient: str) -> list[tuple[str, sqlite3.Row]]:
        """Our sent mail to `recipient`, either table, for a bounce that names no Message-ID."""
        return [(table, row) for table, own in (("outbox", " AND part_of IS NULL"), ("results", ""))
                for row in self.db.execute(
                    f"SELECT * FROM {table} WHERE recipient = ? AND sent_at IS NOT NULL{own}",
                    (recipient,))]

    def mark_bounced(self, table: str, row: int, reason: str, now: datetime) -> None:
        assert table in ("outbox", "results")
        self.db.execute(f"UPDATE {table} SET bounced_at = COALESCE(bounced_at, ?), "
                        "bounce_reason = ? WHERE id = ?", (_iso(now), reason[:500], row))

    def bounced_mail(self) -> list[sqlite3.Row]:
        """Our mail a bounce reported undeliverable, newest first, with its receipt number."""
        return self.db.execute(
            "SELECT o.kind, o.recipient, o.bounced_at, o.bounce_reason, m.receipt_year,"
            " m.receipt_no, NULL AS send_year, NULL AS send_no FROM outbox o"
            " LEFT JOIN messages m ON m.id = o.message WHERE o.bounced_at IS NOT NULL"
            " UNION ALL SELECT 'result', recipient, bounced_at, bounce_reason, receipt_year,"
            " receipt_no, year, send_no FROM results WHERE bounced_at IS NOT NULL"
            " ORDER BY 3 DESC").fetchall()

    def result_ref(self, year: int, send_no: int) -> str:
        """The service's reference of an outgoing register row (results.prepare's row)."""
        row = self.db.execute("SELECT row FROM results WHERE year = ? AND send_no = ?",
                              (year, send_no)).fetchone()
        return str(json.loads(row[0]).get("ref", "")) if row else ""

    # -- routes and service levels (routes.py) ----------------------------------------------

    def due_matters(self) -> list[tuple[int, int, sqlite3.Row, str, list[sqlite3.Row]]]:
        """Each matter with a `due` event: (year, number, its latest `due` event, the first
        due date, its state changes in order). Two queries, whatever the number of matters."""
        latest = self.db.execute(
            "SELECT e.*, (SELECT json_extract(f.detail, '$.due') FROM events f"
            "  WHERE f.year = e.year AND f.receipt_no = e.receipt_no AND f.kind = 'due'"
            "  ORDER BY f.id LIMIT 1) AS first FROM events e WHERE e.id IN"
            " (SELECT MAX(id) FROM events WHERE kind = 'due' GROUP BY year, receipt_no)"
            " ORDER BY e.year, e.receipt_no").fetchall()
        states: dict[tuple[int, int], list[sqlite3.Row]] = {}
        for row in self.db.execute(
                "SELECT year, receipt_no, id, at, state FROM events WHERE state IS NOT NULL"
                " AND (year, receipt_no) IN (SELECT year, receipt_no FROM events"
                " WHERE kind = 'due') ORDER BY id"):
            states.setdefault((row["year"], row["receipt_no"]), []).append(row)
        return [(r["year"], r["receipt_no"], r, r["first"],
                 states.get((r["year"], r["receipt_no"]), [])) for r in latest]

    def unrouted(self) -> list[tuple[int, int, str | None]]:
        """Matters whose latest `routed` event names no unit (left with the saraban desk)."""
        return [(r[0], r[1], self.state_of(r[0], r[1])) for r in self.db.execute(
            "SELECT year, receipt_no FROM events WHERE id IN (SELECT MAX(id) FROM events"
            " WHERE kind = 'routed' GROUP BY year, receipt_no)"
            " AND json_extract(detail, '$.unit') IS NULL ORDER BY year, receipt_no")]

    def last_notes(self, field: str) -> dict[tuple[int, int], str]:
        """The latest register note queued for each incoming row's `field` (written or not)."""
        return {(r[0], r[1]): str(r[2]) for r in self.db.execute(
            "SELECT year, receipt_no, text FROM register_notes WHERE id IN (SELECT MAX(id)"
            " FROM register_notes WHERE field = ? AND book = 'incoming'"
            " GROUP BY year, receipt_no)", (field,))}

    # -- keeping the records: the request as a record, archive, Trash -------------------

    def records_to_keep(self) -> list[sqlite3.Row]:
        """Numbered messages whose mail is not yet kept as a record."""
        return self.db.execute(
            "SELECT m.id, m.identity, m.receipt_year, m.receipt_no, m.record FROM messages m"
            " LEFT JOIN records r ON r.message = m.id WHERE m.receipt_no IS NOT NULL"
            " AND r.message IS NULL ORDER BY m.receipt_year, m.receipt_no").fetchall()

    def add_record_file(self, message: int, file: str, sha256: str, size: int,
                        now: datetime) -> None:
        self.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
                        (message, file, sha256, size, _iso(now)))

    def record_file(self, message: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM records WHERE message = ?", (message,)).fetchone()

    def archivable(self, folders: list[str], before: datetime, limit: int) -> list[sqlite3.Row]:
        """Handled mail still on the server in these folders, received before `before`,
        oldest first: the journal's copies of messages that are not spam, not waiting for
        review, numbered if registrable, with every mailbox action done, and not archived."""
        marks = ",".join("?" * len(folders))
        return self.db.execute(
            "SELECT c.folder, c.uidvalidity, c.uid, c.message, m.record, m.receipt_year,"
            " m.receipt_no, m.category FROM copies c JOIN messages m ON m.id = c.message"
            f" WHERE c.folder IN ({marks}) AND m.category NOT IN ('spam', 'needs_review')"
            " AND json_extract(m.record, '$.received_at') < ?"
            " AND (m.receipt_no IS NOT NULL OR m.category NOT IN"
            "  ('valid', 'wrong_channel', 'official_letter'))"
            " AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.message = m.id AND a.done_at IS NULL)"
            " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message = m.id AND o.sent_at IS NULL"
            "  AND o.gave_up_at IS NULL)"
            " AND NOT EXISTS (SELECT 1 FROM archived x WHERE x.folder = c.folder"
            "  AND x.uidvalidity = c.uidvalidity AND x.uid = c.uid)"
            " ORDER BY json_extract(m.record, '$.received_at'), c.message LIMIT ?",
            (*folders, _iso(before), limit)).fetchall()

    def add_archived(self, folder: str, uidvalidity: int, uid: str, message: int | None,
                     message_id: str, file: str, sha256: str, now: datetime) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO archived (folder, uidvalidity, uid, message, message_id, file,"
            " sha256, archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (folder, uidvalidity, uid, message, message_id, file, sha256, _iso(now)))

    def archived_not_deleted(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM archived WHERE deleted_at IS NULL"
                               " ORDER BY folder, uidvalidity, CAST(uid AS INTEGER)").fetchall()

    def mark_archived_deleted(self, folder: str, uidvalidity: int, uids: list[str],
                              now: datetime) -> None:
        self.db.executemany(
            "UPDATE archived SET deleted_at = ? WHERE folder = ? AND uidvalidity = ? AND uid = ?",
            [(_iso(now), folder, uidvalidity, uid) for uid in uids])

    def archived_of(self, message: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM archived WHERE message = ?", (message,)).fetchall()

    def spam_in_trash(self, trash: str, before: datetime) -> list[sqlite3.Row]:
        """Copies the service itself moved to Trash as spam (intake's spam action, or a
        person's `trash` decision), moved there before `before` and not yet deleted."""
        return self.db.execute(
            "SELECT DISTINCT c.folder, c.uidvalidity, c.uid, c.message FROM copies c"
            " JOIN messages m ON m.id = c.message JOIN actions a ON a.message = c.message"
            " WHERE c.folder = ? AND c.kind = 'moved' AND a.done_at IS NOT NULL AND a.done_at < ?"
            " AND ((a.action = 'move' AND a.target = c.folder AND m.category = 'spam')"
            "  OR a.action = 'trash')"
            " AND NOT EXISTS (SELECT 1 FROM trash_emptied t WHERE t.folder = c.folder"
            "  AND t.uidvalidity = c.uidvalidity AND t.uid = c.uid)",
            (trash, _iso(before))).fetchall()

    def mark_trash_emptied(self, rows: list[sqlite3.Row], now: datetime) -> None:
        self.db.executemany("INSERT OR IGNORE INTO trash_emptied VALUES (?, ?, ?, ?, ?)",
                            [(r["folder"], r["uidvalidity"], r["uid"], r["message"], _iso(now))
                             for r in rows])

    # -- retention: purges and the disposal lists ------------------------------------------

    def note_purge(self, *, ref: str, kind: str, rule: str, sha256: str, year: int | None,
                   number: int | None, book: str, now: datetime, actor: str,
                   list_year: int | None) -> None:
        self.db.execute(
            "INSERT INTO purges (ref, kind, rule, sha256, year, receipt_no, book, at, actor,"
            " list_year) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref, kind, rule, sha256, year, number, book, _iso(now), actor, list_year))

    def purges(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM purges ORDER BY id").fetchall()

    def disposal_list(self, year: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM disposal_lists WHERE year = ?", (year,)).fetchone()

    def disposal_lists(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM disposal_lists ORDER BY year").fetchall()

    def save_disposal_list(self, year: int, items: list[dict[str, Any]], now: datetime) -> None:
        """Make (or make again, while not approved) the list of `year`."""
        self.db.execute(
            "INSERT INTO disposal_lists (year, items, made_at) VALUES (?, ?, ?)"
            " ON CONFLICT(year) DO UPDATE SET items = excluded.items, made_at = excluded.made_at"
            " WHERE approved_at IS NULL",
            (year, json.dumps(items, ensure_ascii=False), _iso(now)))

    def approve_disposal_list(self, year: int, by: str, now: datetime) -> None:
        self.db.execute("UPDATE disposal_lists SET approved_by = ?, approved_at = ?"
                        " WHERE year = ? AND approved_at IS NULL", (by, _iso(now), year))

    def message_facts(self, subjects: bool = True) -> list[sqlite3.Row]:
        """Each message's identity, receipt, subject, official time and review decision:
        what keeping.py needs to date the files kept of it. Without subjects (status), the
        wide record column is not read."""
        subject = "json_extract(m.record, '$.subject')" if subjects else "''"
        return self.db.execute(
            "SELECT m.identity, m.receipt_year, m.receipt_no, m.official_received_at,"
            f" {subject} AS subject, r.decided_at"
            " FROM messages m LEFT JOIN reviews r ON r.message = m.id").fetchall()

    def erase_result_mail(self, receipt_year: int, receipt_no: int) -> int:
        """A result destroyed under the retention table: its mail's bytes (the PDF inside)
        erased too, once sent and filed; secure_delete overwrites them. Rows erased."""
        return self.db.execute(
            "UPDATE results SET raw = x'' WHERE receipt_year = ? AND receipt_no = ?"
            " AND sent_at IS NOT NULL AND filed_at IS NOT NULL AND length(raw) > 0",
            (receipt_year, receipt_no)).rowcount

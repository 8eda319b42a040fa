"""Stage 8, mark and move: what intake decided for each message in the mailbox (seen,
flag, move to INBOX or Trash, delete), last of all, once its replies are out.

Batched across messages: step k of every message, grouped by folder, action and target."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from saraban_mail.mailbox import Sought
from saraban_mail.poll.context import Context, PollReport
from saraban_mail.poll.reconnect import CONNECTION_LOST, NETWORK_ERRORS, with_reconnect

log = logging.getLogger("saraban_mail")

ACTION_BATCH = 500  # UIDs in one IMAP command, well under servers' line limits


def run(ctx: Context, report: PollReport) -> None:
    failed = with_reconnect(ctx, "marking and moving mail", lambda: apply_pending(ctx, report))
    if failed:
        report.problems.append(f"marking and moving mail failed ({failed}); retried next poll")


def spam_action(ctx: Context) -> tuple[str, str]:
    """What is done to a mail found to be spam, as intake does it (policy.spam_action):
    deleted, moved to Trash, or only marked read where there is no Trash."""
    trash = ctx.mailbox.folders.trash
    if ctx.config.policy.spam_action == "delete":
        return "delete", ""
    return ("move", trash) if trash else ("seen", "")


def _as_spam(ctx: Context, row: Any) -> dict[str, str]:
    """"trash": a mail a person found to be spam (corrections, the review queue)."""
    if row["action"] != "trash":
        return {}
    action, target = spam_action(ctx)
    return {"action": action, "target": target}


def apply_pending(ctx: Context, report: PollReport) -> None:
    """Each message's actions in order (seen or flag before move)."""
    journal = ctx.journal
    steps: dict[int, list[Any]] = defaultdict(list)
    for row in journal.pending_actions():  # ordered by message, then seq
        steps[row["message"]].append(dict(row) | _as_spam(ctx, row))
    for step in range(max((len(rows) for rows in steps.values()), default=0)):
        groups: dict[tuple[str, int, str, str], list[Any]] = defaultdict(list)
        for rows in steps.values():
            if step < len(rows):
                row = rows[step]
                groups[(row["folder"], row["uidvalidity"], row["action"], row["target"])].append(row)
        for (folder, validity, action, target), rows in groups.items():
            for start in range(0, len(rows), ACTION_BATCH):
                batch = rows[start:start + ACTION_BATCH]
                try:
                    done = _apply(ctx, folder, validity, batch, action, target)
                except NETWORK_ERRORS as exc:
                    with journal.transaction():
                        for row in batch:
                            journal.mark_action(row["id"], ctx.clock(), error=str(exc))
                    if isinstance(exc, CONNECTION_LOST):
                        raise
                    report.problems.append(f"{folder}: {action} of {len(batch)} message(s) failed "
                                           f"({exc}); retried next poll")
                    continue
                gone = [r["uid"] for r in batch if r["uid"] not in done]
                if gone:
                    log.info("%s: %d message(s) gone before %s: %s", folder, len(gone), action,
                             ", ".join(gone[:10]))
                with journal.transaction():
                    for row in batch:
                        journal.mark_action(row["id"], ctx.clock())
                        landed = done.get(row["uid"]) or _copied_to(row)
                        if landed:  # known where it went: the next poll need not fetch it
                            journal.add_copy(target, landed[0], landed[1], row["message"],
                                             "moved", "")


def _apply(ctx: Context, folder: str, validity: int, rows: list[Any], action: str,
           target: str) -> dict[str, tuple[int, int] | None]:
    uids = [r["uid"] for r in rows]
    if action == "delete":
        return dict(ctx.mailbox.delete_many(folder, validity, uids))
    if action == "move" and not ctx.mailbox.moves_atomically:
        return _move_by_copy(ctx, folder, validity, rows, target)
    return ctx.mailbox.apply_many(folder, validity, uids, action, target)


def _move_by_copy(ctx: Context, folder: str, validity: int, rows: list[Any], target: str
                  ) -> dict[str, tuple[int, int] | None]:
    """A move where the server has no MOVE (Courier; Zimbra before 2026): COPY, then flag
    deleted and expunge. Each step is noted in the journal before the next, so a connection
    cut or a kill between them repeats no COPY: a COPY that may have been sent without its
    answer being noted is first looked for in the target (mailbox.find_copies)."""
    journal, box = ctx.journal, ctx.mailbox
    copied = {r["uid"] for r in rows if r["copied_to"] is not None}
    unsure = {r["uid"]: r for r in rows if r["copy_started_at"] and r["uid"] not in copied}
    if unsure:
        sought = {}
        for uid, row in unsure.items():
            stored = journal.stored(row["message"])
            sought[uid] = Sought(stored.record.message_id, stored.identity,
                                 stored.record.received_at.date())
        found = box.find_copies(target, sought)
        with journal.transaction():
            for uid, (where_validity, where_uid) in found.items():
                journal.note_copy(unsure[uid]["id"], copied_to=f"{where_validity}:{where_uid}")
        copied |= set(found)
        for row in rows:
            if row["uid"] in found:
                row["copied_to"] = "{}:{}".format(*found[row["uid"]])
    to_copy = [r for r in rows if r["uid"] not in copied]
    if to_copy:
        with journal.transaction():
            for row in to_copy:
                journal.note_copy(row["id"], started=ctx.clock())
        landed = box.copy_many(folder, validity, [r["uid"] for r in to_copy], target)
        with journal.transaction():
            for row in to_copy:
                if row["uid"] in landed:
                    where = landed[row["uid"]]
                    row["copied_to"] = f"{where[0]}:{where[1]}" if where else ""
                    journal.note_copy(row["id"], copied_to=row["copied_to"])
    # Only what is safely in the target leaves the source (gone ones are simply done).
    safe = [r["uid"] for r in rows if r["copied_to"] is not None]
    box.delete_many(folder, validity, safe)
    return {r["uid"]: _copied_to(r) for r in rows if r["copied_to"] is not None}


def _copied_to(row: Any) -> tuple[int, int] | None:
    where = row.get("copied_to")
    if not where:
        return None
    validity, _, uid = where.partition(":")
    return int(validity), int(uid)

"""The poll's output: one JSON Lines object (SPEC §7) per message handled in this poll,
from the journal, with what was queued for it and where that stands."""

from __future__ import annotations

from typing import Any

from saraban_mail.journal import Journal


def handled(journal: Journal, copy: Any) -> dict[str, Any]:
    """The object for one copy the poll took in (a duplicate is named as one)."""
    record = journal.record(copy["message"])
    year, number = journal.receipt(copy["message"])
    duplicate = copy["kind"] == "duplicate"
    uid: int | str = copy["uid"]
    if isinstance(uid, str) and uid.isdigit():
        uid = int(uid)
    return {
        "message_id": record.message_id,
        "folder": copy["folder"],
        "uid": uid,
        "from": record.from_addr,
        "requester": record.requester,
        "subject": record.subject,
        "category": str(record.category),
        "high_risk": record.high_risk,
        "rule": "duplicate" if duplicate else record.rule,
        "reason": "a second copy of a mail already handled" if duplicate else record.reason,
        "receipt_no": number,
        "receipt_year": year,
        "received_at": record.received_at.isoformat(),
        "official_received_at": record.official_received_at.isoformat(),
        "ack_due": record.ack_due.isoformat() if record.ack_due else None,
        "related_receipt": record.related_receipt,
        "actions": ["seen"] if duplicate else list(record.planned),
        "mail": [] if duplicate else [
            {"kind": m["kind"], "to": m["recipient"],
             "status": "sent" if m["sent_at"] else "refused" if m["gave_up_at"] else "pending"}
            for m in journal.mail_of(copy["message"])
        ] + ([{"kind": held, "to": record.requester, "status": "held"}]
             if not duplicate and (held := journal.held_kind(copy["message"])) else []),
    }

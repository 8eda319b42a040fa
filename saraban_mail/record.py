"""The record: what the journal keeps of each message, decided once at intake and read by
every later stage (numbering, register, replies, matters, results, the poll's output).

A frozen dataclass with named fields; `to_json`/`from_json` are the only places that know
its JSON shape, which is the one journals have always held (old journals load as they are)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from saraban_mail.category import Category
from saraban_mail.letters import Letter
from saraban_mail.rules import AgencyRule, ChannelRule

RuleModel = TypeVar("RuleModel", AgencyRule, ChannelRule)


@dataclass(frozen=True)
class AttachmentNote:
    """An attachment as registered: the file itself is kept apart (data/attachments/)."""

    name: str
    content_type: str
    size: int
    sha256: str
    # A signed PDF: who signed, valid or not, the timestamp (seed 002 init §3.3(5)-(6)).
    signature: str = ""


@dataclass(frozen=True)
class WatchedOrigin:
    """A request the service copied from a staff member's mailbox (see watch.py)."""

    watch: str  # the [[watch]] entry's name
    address: str  # the address the citizen wrote to
    arrived_at: datetime  # when it reached that mailbox (its INTERNALDATE)


@dataclass(frozen=True)
class ReviewNote:
    """A person's decision on mail the service could not decide (review.py)."""

    decision: str  # review.DECISIONS
    actor: str
    at: datetime
    via: str  # "register" (typed in คำสั่ง) or "command"
    why: str = ""  # why the service had left it to a person


@dataclass(frozen=True)
class Record:
    message_id: str
    thread_id: str  # the mail our replies thread to (the citizen's own, for a staff forward)
    folder: str
    uid: int | str
    from_addr: str
    from_name: str
    requester: str  # where replies go: Reply-To, else From; the citizen for a staff forward
    requester_name: str
    subject: str
    date_header: datetime | None  # for reference only: receipt counts from the arrival
    references: tuple[str, ...]
    category: Category
    rule: str
    reason: str
    high_risk: bool
    high_risk_rule: str
    agency: AgencyRule | None  # the agency it belongs to (wrong_agency*)
    channel: ChannelRule | None  # the channel it should have used (wrong_channel)
    received_at: datetime  # the IMAP INTERNALDATE, in the agency's time zone
    official_received_at: datetime  # วันเวลารับตามกฎหมาย
    ack_due: datetime | None  # only for registered mail
    attachments: tuple[AttachmentNote, ...]
    planned: tuple[str, ...]  # the actions decided at intake, as the poll's output shows them
    # Set by intake for every mail it could read (not for one it failed on).
    text_sha: str | None = None
    watched: WatchedOrigin | None = None
    # Only meaningful for registered mail: the matter a reply answers ("N/YYYY") and
    # whether it asks for information (the inquiry log).
    related_receipt: str | None = None
    inquiry: bool = False
    reviewed: ReviewNote | None = None  # decided by a person from the review queue
    letter: Letter | None = None  # an official letter's ที่, ลงวันที่, agency and เรื่อง
    # Telephone numbers in the request's text: the clerk tries them when mail does not
    # reach the requester [seed 002 init §3.2].
    phones: tuple[str, ...] = ()
    # SHA-256 of the mail as the server gave it (kept as records/YEAR/rx-NNNN.eml).
    raw_sha256: str = ""

    @property
    def requester_label(self) -> str:
        """"Name <address>", or the address alone."""
        name = self.requester_name
        return f"{name} <{self.requester}>" if name else self.requester

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "thread_id": self.thread_id,
            "folder": self.folder,
            "uid": self.uid,
            "from": self.from_addr,
            "from_name": self.from_name,
            "requester": self.requester,
            "requester_name": self.requester_name,
            "subject": self.subject,
            "date_header": _iso(self.date_header),
            "references": list(self.references),
            "category": str(self.category),
            "rule": self.rule,
            "reason": self.reason,
            "high_risk": self.high_risk,
            "high_risk_rule": self.high_risk_rule,
            "agency": self.agency.model_dump() if self.agency else None,
            "channel": self.channel.model_dump() if self.channel else None,
            "received_at": self.received_at.isoformat(),
            "official_received_at": self.official_received_at.isoformat(),
            "ack_due": _iso(self.ack_due),
            "attachments": [{"name": a.name, "type": a.content_type, "size": a.size,
                             "sha256": a.sha256} | ({"signature": a.signature} if a.signature
                                                   else {}) for a in self.attachments],
            "planned": list(self.planned),
        }
        if self.text_sha is not None:
            data["text_sha"] = self.text_sha
        if self.watched is not None:
            data["watched"] = {"watch": self.watched.watch, "address": self.watched.address,
                               "arrived_at": self.watched.arrived_at.isoformat()}
        if self.category.registered:
            data["related_receipt"] = self.related_receipt
            data["inquiry"] = self.inquiry
        if self.phones:
            data["phones"] = list(self.phones)
        if self.raw_sha256:
            data["raw_sha256"] = self.raw_sha256
        if self.reviewed is not None:
            note = self.reviewed
            data["reviewed"] = {"decision": note.decision, "actor": note.actor,
                                "at": note.at.isoformat(), "via": note.via, "why": note.why}
        if self.letter is not None:
            data["letter"] = self.letter.to_json()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        data = json.loads(text)
        watched, reviewed = data.get("watched"), data.get("reviewed")
        return cls(
            message_id=data.get("message_id", ""),
            thread_id=data.get("thread_id") or "",
            folder=data["folder"],
            uid=data["uid"],
            from_addr=data.get("from", ""),
            from_name=data.get("from_name", ""),
            requester=data.get("requester", ""),
            requester_name=data.get("requester_name", ""),
            subject=data.get("subject", ""),
            date_header=_moment(data.get("date_header")),
            references=tuple(data.get("references", ())),
            category=Category(data["category"]),
            rule=data["rule"],
            reason=data.get("reason", ""),
            high_risk=bool(data.get("high_risk")),
            high_risk_rule=data.get("high_risk_rule", ""),
            agency=_rule(AgencyRule, data.get("agency")),
            channel=_rule(ChannelRule, data.get("channel")),
            received_at=datetime.fromisoformat(data["received_at"]),
            official_received_at=datetime.fromisoformat(data["official_received_at"]),
            ack_due=_moment(data.get("ack_due")),
            attachments=tuple(AttachmentNote(a["name"], a["type"], a["size"], a["sha256"],
                                             a.get("signature", ""))
                              for a in data.get("attachments", ())),
            planned=tuple(data.get("planned", ())),
            text_sha=data.get("text_sha"),
            raw_sha256=data.get("raw_sha256", ""),
            watched=WatchedOrigin(watched["watch"], watched["address"],
                                  datetime.fromisoformat(watched["arrived_at"]))
            if watched else None,
            related_receipt=data.get("related_receipt"),
            inquiry=bool(data.get("inquiry")),
            reviewed=ReviewNote(reviewed["decision"], reviewed["actor"],
                                datetime.fromisoformat(reviewed["at"]), reviewed["via"],
                                reviewed.get("why", ""))
            if reviewed else None,
            letter=Letter.from_json(data["letter"]) if data.get("letter") else None,
            phones=tuple(data.get("phones", ())),
        )


def _rule(model: type[RuleModel], dumped: dict[str, Any] | None) -> RuleModel | None:
    """The rule as it read when the mail was decided, even if rules/ changed since:
    settings the rule no longer has are left out."""
    if not dumped:
        return None
    return model.model_validate({k: v for k, v in dumped.items() if k in model.model_fields})


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

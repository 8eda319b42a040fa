"""A request's route and service level as matter events: the `routed` and `due` events of
the journal, the forward of the registered mail to its unit (once), a clerk's re-route, and
the register's ถึง and ครบกำหนด cells kept in step with them.

The decisions are pure (routing.py, sla.py); this module is the shell around them."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saraban_mail import records, routing, sla
from saraban_mail.calendar import BusinessCalendar
from saraban_mail.config import Config
from saraban_mail.errors import SarabanError
from saraban_mail.journal import Journal
from saraban_mail.matters import new_lines
from saraban_mail.register_notes import note_in_register
from saraban_mail.routing import DESK_TH, Route
from saraban_mail.thaitext import thai_date
from saraban_mail.units import Units

if TYPE_CHECKING:
    from saraban_mail.record import Record
    from saraban_mail.replies import Templates

log = logging.getLogger("saraban_mail")

ROUTED, DUE = "routed", "due"
FORWARD = "unit_forward"  # the outbox kind of a registered mail forwarded to its unit
# Categories whose matter has a service level: requests of citizens. An official letter
# is routed to its unit too (a unit takes it on) but its time is the sender's, not an SLA.
WITH_SLA = ("valid", "wrong_channel")


class RouteError(SarabanError):
    """A re-route that cannot be made (unknown unit, no such matter)."""


# -- reading the events -------------------------------------------------------------------


def latest(journal: Journal, year: int, number: int, kind: str) -> dict[str, Any] | None:
    """The detail of the matter's latest event of `kind`, with its time as "at"."""
    for event in reversed(journal.events(year, number)):
        if event["kind"] == kind:
            return dict(json.loads(event["detail"])) | {"at": event["at"]}
    return None


def current_route(journal: Journal, year: int, number: int) -> Route | None:
    found = latest(journal, year, number, ROUTED)
    if found is None:
        return None
    return Route(found.get("service"), found.get("unit"), found.get("rule", ""),
                 found.get("reason", ""))


def current_due(journal: Journal, year: int, number: int) -> date | None:
    found = latest(journal, year, number, DUE)
    return date.fromisoformat(found["due"]) if found else None


# -- at registration ------------------------------------------------------------------------


def raw_of(config: Config, identity: str, year: int, number: int) -> bytes | None:
    """The registered mail as it arrived: kept by identity at intake until numbering is done
    (`records.pending_path`), then as the record `records/YEAR/rx-NNNN.eml`; the review
    queue's copy for mail a clerk registered."""
    for path in (records.pending_path(config, identity),
                 config.paths.records_dir / records.name(year, number),
                 config.paths.data_dir / "review" / f"{identity}.eml"):
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


def text_of(raw: bytes | None) -> str:
    if raw is None:
        return ""
    from saraban_mail.parse import parse

    try:
        return parse(raw).text
    except Exception:  # unreadable text: the subject alone routes it
        log.exception("could not read a registered mail's text for routing")
        return ""


@dataclass(frozen=True)
class Routed:
    """What registration decided of a request's route: for its row and acknowledgement."""

    route: Route
    due: sla.Due | None
    to: str  # the register's ถึง
    note: str  # the line for หมายเหตุ


def on_registered(journal: Journal, config: Config, units: Units, calendar: BusinessCalendar,
                  templates: Templates, message: int, identity: str, year: int, number: int,
                  record: Record, now: datetime) -> Routed:
    """Route a request just numbered, record `routed` (and `due`), queue the forward.
    Inside the numbering transaction: all of it or none."""
    raw = raw_of(config, identity, year, number)
    related = record.related_receipt
    before = current_route(journal, *reversed([int(x) for x in related.split("/")])) \
        if related else None
    if before is not None:  # an answer to a matter (documents, say) goes where it went
        found = Route(before.service, before.unit, "related", f"answers {related}")
    else:
        found = routing.route(record.subject, text_of(raw), units)
    return _take(journal, config, units, calendar, templates, message, year, number, record,
                 found, "rule", "service", raw, now,
                 with_due=str(record.category) in WITH_SLA and before is None)


def _take(journal: Journal, config: Config, units: Units, calendar: BusinessCalendar,
          templates: Templates, message: int | None, year: int, number: int, record: Record,
          found: Route, by: str, actor: str, raw: bytes | None, now: datetime,
          with_due: bool) -> Routed:
    journal.add_event(year, number, kind=ROUTED, actor=actor, now=now, detail={
        "unit": found.unit, "service": found.service, "rule": found.rule,
        "reason": found.reason, "by": by})
    service = units.service(found.service) if found.service else None
    due = None
    if service is not None and with_due:
        due = sla.due_date(record.official_received_at, service, calendar)
        journal.add_event(year, number, kind=DUE, actor=actor, now=now, detail=due.detail())
    unit = units.unit(found.unit) if found.unit else None
    if unit is None:
        note = "ยังไม่ได้ส่งส่วนงาน: ไม่ตรงกับงานบริการใด อยู่ที่งานสารบรรณ"
    elif not unit.email:
        note = f"ส่ง{unit.name_th} (ไม่มีอีเมลของส่วนงาน เจ้าหน้าที่ส่งต่อเอง)"
    else:  # a re-route keeps the due date: the cover tells the new unit
        kept = due or _kept_due(journal, year, number)
        _forward(journal, config, templates, unit, service, message, year, number, record, kept,
                 raw, now)
        note = f"ส่งต่อ{unit.name_th} ทางอีเมล {unit.email}"
    if service is not None:
        note += f"; งานบริการ: {service.name_th}"
    return Routed(found, due, unit.name_th if unit else DESK_TH, note)


def _kept_due(journal: Journal, year: int, number: int) -> sla.Due | None:
    found = latest(journal, year, number, DUE)
    return sla.Due(date.fromisoformat(found["due"]), int(found["sla_days"]), found["sla_kind"],
                   found.get("why", "")) if found else None


def _forward(journal: Journal, config: Config, templates: Templates, unit: Any,
             service: Any, message: int | None, year: int, number: int, record: Record,
             due: sla.Due | None, raw: bytes | None, now: datetime) -> None:
    """Queue the registered mail to the unit: the cover, the original attached whole (its
    attachments inside), and the receipt number in X-Saraban-Receipt."""
    from saraban_mail.replies import Envelope, build

    receipt = f"{number}/{year}"
    agency = config.agency
    subject, body = templates.render("unit_forward", {
        "agency": agency, "receipt": receipt, "unit": unit.model_dump(),
        "service": service.model_dump() if service else None,
        "subject": record.subject or "(ไม่มีหัวเรื่อง / no subject)",
        "requester": record.requester_label,
        "official_th": thai_date(record.official_received_at.date()),
        "due_th": thai_date(due.due) if due else "", "due_en": due.due.isoformat() if due else "",
        "attached": raw is not None})
    mail = build(FORWARD, unit.email, subject, body,
                 Envelope(agency.name_th, agency.email, agency.domain, "", ()), now,
                 attach=raw, auto="auto-forwarded", headers={"X-Saraban-Receipt": receipt})
    journal.queue_mail(message=message, kind=FORWARD, recipient=unit.email,
                       message_id=mail.message_id, raw=mail.raw, now=now)


# -- a clerk's re-route ----------------------------------------------------------------------


def reroute(journal: Journal, config: Config, units: Units, calendar: BusinessCalendar,
            templates: Templates, year: int, number: int, wanted: str, actor: str,
            now: datetime) -> tuple[Routed, list[str]]:
    """Route a matter to the unit a clerk named (id or Thai name): a `routed` event by
    "clerk", the forward to the new unit once, ถึง rewritten. The due date stays unless the
    service changes: a new unit of the same service works to the same SLA; a unit that is
    not the service's has no SLA of its own, so the earlier due date stays too (the clerk
    knows better than a keyword, not the law's time). Returns problems of the register."""
    found = journal.message_of_receipt(year, number)
    if found is None or journal.state_of(year, number) is None:
        raise RouteError(f"no matter {number}/{year} in the journal")
    before = current_route(journal, year, number)
    choice = routing.by_clerk(wanted, units, before.service if before else None)
    if choice is None:
        known = ", ".join(u.id for u in units.units) or "none (no rules/units.toml)"
        raise RouteError(f"no unit '{wanted}' in units.toml (units: {known})")
    if before is not None and before.unit == choice.unit:
        raise RouteError(f"matter {number}/{year} is already with {choice.unit}")
    with journal.transaction():
        routed = _take(journal, config, units, calendar, templates, found.id, year, number,
                       found.record, choice, "clerk", actor,
                       raw_of(config, found.identity, year, number), now,
                       with_due=False)
    problems = note_in_register(config, year, [(number, routed.to)], journal, now, field="to")
    problems += note_in_register(config, year, [(number, f"{routed.note} (สั่งโดย {actor})")],
                                 journal, now)
    return routed, problems


REROUTE = re.compile(r"^\s*ส่ง\s*:\s*(.+?)\s*$", re.MULTILINE)


def rerouted_in(journal: Journal, config: Config, units: Units, calendar: BusinessCalendar,
                templates: Templates, now: datetime, year: int,
                rows: list[Any]) -> tuple[list[str], bool]:
    """A line "ส่ง: <unit id or Thai name>" a clerk typed in a row's การปฏิบัติ re-routes the
    matter, once per line (a line already carried out, by event, is not again)."""
    problems: list[str] = []
    failed = False
    for number, wanted in new_lines(journal, year, rows, REROUTE, "reroute_read", "line"):
        try:
            _, noted = reroute(journal, config, units, calendar, templates, year, number,
                               wanted, "clerk (register)", now)
            problems += noted
        except SarabanError as exc:
            problems.append(f"ส่ง: in row {number}/{year}: {exc}")
            if not isinstance(exc, RouteError):
                failed = True
                continue
        with journal.transaction():  # read once, carried out or refused
            journal.add_event(year, number, kind="reroute_read", actor="service", now=now,
                              detail={"line": wanted})
    return problems, failed


# -- service levels as time passes -------------------------------------------------------------

# The ครบกำหนด cell of a matter that is no longer counted, by state: text, so that the
# register's overdue colour (a rule on dates) leaves it alone.
SHOWN = {"result_sent": "ส่งผลแล้ว", "disposed": "จำหน่ายเรื่องแล้ว",
         "to_dispose": "เสนอจำหน่ายเรื่อง", "cancelled": "ยกเลิกเลขรับ",
         sla.PAUSED: "หยุดนับ: รอเอกสารจากผู้ขอ"}


def keep_up(journal: Journal, config: Config, calendar: BusinessCalendar,
            now: datetime) -> list[str]:
    """Each matter with a due date: a new `due` event when documents it waited for came
    (the date moved by the paused days), and its ครบกำหนด cell kept as the journal says."""
    notes: dict[int, list[tuple[int, str]]] = {}
    shown_before = journal.last_notes("due")
    for year, number, due_event, first, states in journal.due_matters():
        detail = json.loads(due_event["detail"])
        due = sla.Due(date.fromisoformat(detail["due"]), int(detail["sla_days"]),
                      detail["sla_kind"], detail.get("why", ""))
        paused_on = None
        for state in states:  # the state changes since the due date was set
            if state["id"] < due_event["id"]:
                continue
            day = datetime.fromisoformat(state["at"]).astimezone(calendar.tz).date()
            if state["state"] == sla.PAUSED and paused_on is None:
                paused_on = day
            elif state["state"] != sla.PAUSED and paused_on is not None:
                due = sla.resumed(due, paused_on, day, calendar)
                with journal.transaction():
                    journal.add_event(year, number, kind=DUE, actor="service", now=now,
                                      detail=due.detail())
                paused_on = None
        current = states[-1]["state"] if states else None
        shown = SHOWN.get(current or "", due.due.isoformat())
        if shown != shown_before.get((year, number), first):
            notes.setdefault(year, []).append((number, shown))
    problems = []
    for year, items in notes.items():
        problems += note_in_register(config, year, items, journal, now, field="due")
    return problems


def due_of(journal: Journal, today: date) -> dict[str, list[dict[str, Any]]]:
    """Open matters by how they stand against their service level: "overdue" and "soon"
    (due within the week); and "unrouted": requests that stayed with the saraban desk."""
    found: dict[str, list[dict[str, Any]]] = {"overdue": [], "soon": [], "unrouted": []}
    for year, number, due_event, _, states in journal.due_matters():
        day = date.fromisoformat(json.loads(due_event["detail"])["due"])
        state = states[-1]["state"] if states else None
        item = {"receipt": f"{number}/{year}", "due": day.isoformat(), "state": state,
                "unit": (current_route(journal, year, number) or Route(None, None, "", "")).unit}
        if sla.overdue(day, state, today):
            found["overdue"].append(item | {"days": (today - day).days})
        elif sla.due_soon(day, state, today):
            found["soon"].append(item)
    for year, number, state in journal.unrouted():
        if state not in sla.CLOSED:
            found["unrouted"].append({"receipt": f"{number}/{year}", "state": state})
    return found


def units_path(config: Config) -> Path:
    return config.paths.rules_dir / "units.toml"

"""Routing: which service of rules/units.toml a registered request is, and so which unit
(สำนัก กอง ศูนย์ กลุ่ม) takes it on from the saraban desk. Pure: subject and text in, a `Route` out.

When several services match, one is chosen by (1) a match in the subject (a subject
pattern or a keyword there) over one in the text only, (2) more distinct keywords found,
(3) the order of the file. Nothing matched: the request stays with the saraban desk."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from saraban_mail.thaitext import fold
from saraban_mail.units import Service, Units

DESK_TH = "งานสารบรรณ"  # where an unmatched request stays (the register's ถึง says so)
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Route:
    """The service and unit of a request, with the rule and reason (as classification gives)."""

    service: str | None
    unit: str | None
    rule: str  # "service:<id>", "clerk" or "unmatched"
    reason: str


def _words(text: str) -> str:
    return " ".join(fold(text).split())


def _found(service: Service, subject: str, text: str) -> tuple[str, list[str], list[str]]:
    """The subject pattern that matched ('' if none) and the keywords in subject and text."""
    plain = unicodedata.normalize("NFKC", subject)
    pattern = next((p for p in service.subject_patterns if re.search(p, plain, re.IGNORECASE)),
                   "")
    in_subject = [k for k in service.keywords if _words(k) in subject]
    in_text = [k for k in service.keywords if k not in in_subject and _words(k) in text]
    return pattern, in_subject, in_text


def route(subject: str, text: str, units: Units) -> Route:
    """The service a request is, chosen as the module says; unmatched when none is."""
    folded_subject, folded_text = _words(subject), _words(text)
    best: tuple[tuple[int, int, int], Route] | None = None
    for index, service in enumerate(units.services):
        pattern, in_subject, in_text = _found(service, folded_subject, folded_text)
        if not (pattern or in_subject or in_text):
            continue
        why = []
        if pattern:
            why.append(f"subject matches /{pattern}/")
        if in_subject:
            why.append("subject has " + ", ".join(f"'{k}'" for k in in_subject))
        if in_text:
            why.append("text has " + ", ".join(f"'{k}'" for k in in_text))
        rank = (1 if pattern or in_subject else 0, len(in_subject) + len(in_text), -index)
        found = Route(service.id, service.unit, f"service:{service.id}", "; ".join(why))
        if best is None or rank > best[0]:
            best = (rank, found)
    if best is None:
        return Route(None, None, UNMATCHED, "no service of units.toml matched: stays with the "
                                             "saraban desk")
    return best[1]


def by_clerk(wanted: str, units: Units, service: str | None) -> Route | None:
    """A clerk's choice of unit, by id or Thai name (case and spacing ignored); None when
    no unit is called so. The service stays when it is the new unit's, else none."""
    key = _words(wanted)
    unit = next((u for u in units.units if key in (_words(u.id), _words(u.name_th))), None)
    if unit is None:
        return None
    known = units.service(service) if service else None
    kept = known.id if known is not None and known.unit == unit.id else None
    return Route(kept, unit.id, "clerk", f"re-routed to {unit.id} by a clerk")


def processing_time(service: Service) -> tuple[str, str]:
    """The service's processing time as the acknowledgement says it, in Thai and English:
    counted from complete documents, and not running while they are awaited."""
    th_unit, en_unit = (("วันทำการ", "working days") if service.sla_kind == "working"
                        else ("วัน", "days"))
    return (f"ภายใน {service.sla_days} {th_unit} นับจากวันที่ได้รับเอกสารครบถ้วน "
            "(ไม่นับระยะเวลาที่รอเอกสารจากท่าน)",
            f"within {service.sla_days} {en_unit} of receiving all required documents "
            "(the time does not run while we wait for documents from you)")

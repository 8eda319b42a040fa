"""The agency's units and services (rules/units.toml): who does what, and in how long.

Data only, checked on load by `rules.load_rules`; which service a request is, and its due
date, are decided elsewhere (routing and service levels)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Unit(BaseModel):
    """A unit of the agency (สำนัก กอง ศูนย์ กลุ่ม) that requests are passed to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name_th: str = Field(min_length=1)
    name_en: str = ""
    email: str = ""  # where the registered mail is forwarded; empty: the clerk hands it on
    phone: str = ""  # told to the requester [seed 002 init §2.6]
    head: str = ""  # หัวหน้าส่วนราชการ of the unit, by name or position
    head_email: str = ""  # the daily list of overdue matters goes here (opt-in)

    @field_validator("email", "head_email")
    @classmethod
    def _email(cls, email: str) -> str:
        email = email.strip().lower()
        if email and (email.count("@") != 1 or " " in email):
            raise ValueError("not an email address")
        return email


class Service(BaseModel):
    """A service the agency gives, with its service level (ระยะเวลาให้บริการ)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name_th: str = Field(min_length=1)
    name_en: str = ""
    unit: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()  # looked for in the subject and text, case-insensitively
    subject_patterns: tuple[str, ...] = ()  # regular expressions on the subject
    sla_days: int = Field(ge=1)
    sla_kind: Literal["working", "calendar"] = "working"
    documents: tuple[str, ...] = ()  # documents usually required, told in the acknowledgement
    fee: str = ""
    source: str = ""  # where the figure comes from (the agency's manual for the public, a law)

    @field_validator("keywords")
    @classmethod
    def _no_empty_keyword(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k.strip() for k in keywords):
            raise ValueError("a keyword is empty")
        return keywords

    @field_validator("subject_patterns")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:  # a broken one is refused at start-up, not on a request
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"subject pattern {pattern!r}: {exc}") from None
        return patterns

    @model_validator(mode="after")
    def _findable(self) -> Service:
        if not self.keywords and not self.subject_patterns:
            raise ValueError("a service needs keywords or subject_patterns to be found by")
        return self


@dataclass(frozen=True)
class Units:
    """What rules/units.toml holds: units and services, each service's unit known to exist."""

    units: tuple[Unit, ...] = ()
    services: tuple[Service, ...] = ()

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.id == unit_id), None)

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def problems(self) -> list[str]:
        """A service naming a unit that is not listed (reported by `load_rules`)."""
        known = {u.id for u in self.units}
        return [f"[[service]] id={s.id}: unit '{s.unit}' is not a [[unit]] id"
                for s in self.services if s.unit not in known]

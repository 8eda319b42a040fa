"""What every stage of a poll is given (`Context`) and what it reports (`PollReport`).

Apart from the driver in `__init__.py` so that the stages can import it without a cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from saraban_mail.calendar import BusinessCalendar
from saraban_mail.classify import Identity
from saraban_mail.config import Config
from saraban_mail.journal import Journal
from saraban_mail.mailbox import Mailbox
from saraban_mail.replies import Templates
from saraban_mail.rules import RuleSet
from saraban_mail.send import Transport


@dataclass
class Context:
    config: Config
    rules: RuleSet
    calendar: BusinessCalendar
    journal: Journal
    mailbox: Mailbox
    transport: Transport
    templates: Templates
    clock: Callable[[], datetime]
    dry_run: bool = False
    # Asked to stop (SIGTERM): finish the message in hand, then the stages after intake.
    stop: Callable[[], bool] = lambda: False
    # Called after each message with (folder, messages still to read in that folder).
    progress: Callable[[str, int], None] = lambda folder, left: None
    sleep: Callable[[float], None] = time.sleep

    @property
    def identity(self) -> Identity:
        """Who "we" are to the rules: our own address and the staff who forward."""
        return agency_identity(self.config)


def agency_identity(config: Config) -> Identity:
    return Identity(own_addresses=frozenset({config.agency.email.lower()}),
                    staff=frozenset(config.staff.addresses))


@dataclass
class PollReport:
    # One JSON Lines object (SPEC §7) per message handled in this poll: see output.py.
    records: list[dict[str, Any]] = field(default_factory=list)
    # One line each: work that is left pending or needs a person.
    problems: list[str] = field(default_factory=list)
    # One line each: what a clerk should know although nothing waits (mail left alone
    # because of the start date, the start date the first poll chose).
    notes: list[str] = field(default_factory=list)

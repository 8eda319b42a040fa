"""Property: whatever the interleaving of polls, clerk edits, open-workbook periods and
crashes between the steps of a poll, the register ends up holding 1..N, each number once,
and every number the journal gave out.

The clerk of this model opens, edits and closes the workbook in one step, and types a
paper row's number only when the sheet is up to date; a clerk who numbers while rows
are still pending makes a clash, which is reported (tests/test_register_sharing.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from contextlib import ExitStack, suppress
from pathlib import Path
from unittest import mock

import openpyxl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from saraban_mail import register
from saraban_mail.config import load_config
from saraban_mail.journal import Journal
from saraban_mail.poll import intake, mailbox_actions, sending
from saraban_mail.register import INCOMING, read_rows
from saraban_mail.service import run_poll
from tests.offices import add_mail, office_with, request


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the service catches it)."""


def _crash_after(calls: int):
    seen = {"n": 0}

    def hook(*_args, **_kwargs):
        seen["n"] += 1
        if seen["n"] > calls:
            raise Crash

    return hook


def crash_points(stage: str) -> list:
    """Patches that kill the poll at one step."""
    if stage == "intake":  # after the first message was recorded
        real = intake.intake_one
        hook = _crash_after(1)
        return [mock.patch.object(intake, "intake_one",
                                  side_effect=lambda *a: (hook(), real(*a)))]
    if stage == "before_save":
        return [mock.patch.object(register, "save_atomically", side_effect=Crash)]
    if stage == "after_save":
        return [mock.patch.object(Journal, "mark_rows_written", side_effect=Crash)]
    if stage == "send":
        return [mock.patch.object(sending, "run", side_effect=Crash)]
    if stage == "actions":
        return [mock.patch.object(mailbox_actions, "run", side_effect=Crash)]
    raise ValueError(stage)


class RegisterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="saraban-prop-"))
        self.config_path = office_with(self.folder, [])
        self.config = load_config(self.config_path)
        self.next_mail = 1
        self.paper = 0
        self.locked = False

    @property
    def book(self) -> Path:
        return self.folder / "register" / "incoming-2569.xlsx"

    @property
    def lock(self) -> Path:
        return self.folder / "register" / "~$incoming-2569.xlsx"

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pending(self) -> int:
        journal = Journal.open(self.config.paths.data_dir)
        try:
            return len(journal.pending_register_rows()) + len(
                journal.unnumbered(("valid", "wrong_channel")))
        finally:
            journal.close()

    @rule(count=st.integers(1, 3))
    def mail_arrives(self, count: int) -> None:
        for _ in range(count):
            raw, when = request(self.next_mail)
            add_mail(self.folder, raw, when)
            self.next_mail += 1

    @rule()
    def poll(self) -> None:
        run_poll(self.config)

    @rule(stage=st.sampled_from(["intake", "before_save", "after_save", "send", "actions"]))
    def poll_crashes(self, stage: str) -> None:
        with ExitStack() as stack:
            for patch in crash_points(stage):
                stack.enter_context(patch)
            with suppress(Crash):
                run_poll(self.config)

    @precondition(lambda self: not self.locked)
    @rule()
    def clerk_opens_workbook(self) -> None:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        self.lock.write_bytes(b"\x05clerk")
        self.locked = True

    @precondition(lambda self: self.locked)
    @rule()
    def clerk_closes_workbook(self) -> None:
        self.lock.unlink()
        self.locked = False

    @precondition(lambda self: not self.locked)
    @rule(paper_row=st.booleans())
    def clerk_edits(self, paper_row: bool) -> None:
        if not self.book.exists():
            return
        book = openpyxl.load_workbook(self.book)
        sheet = book.worksheets[0]
        sheet.cell(3, 7, "ส่งกองช่าง")  # an edit in การปฏิบัติ
        if paper_row and self._pending() == 0:
            highest = max((r.number or 0 for r in register.sheet_rows(sheet, INCOMING)), default=0)
            sheet.append([highest + 1, "", None, "หนังสือกระดาษ", "นายก", "เรื่องกระดาษ"])
            self.paper += 1
        book.save(self.book)

    @invariant()
    def numbers_are_never_duplicated(self) -> None:
        if self.book.exists():
            counts = Counter(r.number for r in read_rows(self.book, INCOMING)[1])
            assert all(c == 1 for c in counts.values()), counts

    def check_final(self) -> None:
        if self.locked:
            self.clerk_closes_workbook()
        run_poll(self.config)
        run_poll(self.config)
        emails = self.next_mail - 1
        if emails == 0 and self.paper == 0:
            return
        rows = read_rows(self.book, INCOMING)[1]
        got = sorted(r.number for r in rows)
        assert got == list(range(1, emails + self.paper + 1)), got
        journal = Journal.open(self.config.paths.data_dir)
        try:
            refs = {r.ref for r in rows}
            entries = journal.register_entries(2569)
            assert len(entries) == emails
            assert all(register.service_ref(e["identity"]) in refs for e in entries)
        finally:
            journal.close()


def run_machine(examples: int, steps: int) -> None:
    class Checked(RegisterMachine):
        def teardown(self) -> None:
            try:
                self.check_final()
            finally:
                super().teardown()

    Checked.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    Checked.TestCase().runTest()


def test_register_holds_one_to_n_through_edits_locks_and_crashes():
    run_machine(examples=int(os.environ.get("SARABAN_PROPERTY_EXAMPLES", "60")), steps=12)


@pytest.mark.slow
def test_register_property_long_run():
    run_machine(examples=200, steps=25)

"""The benchmark runs from a checkout at a tiny size (a smoke test: no timing is judged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import IN_CI
from tests.servers import dovecot_available

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_at_a_tiny_size(tmp_path):
    if not dovecot_available():
        import pytest

        (pytest.fail if IN_CI else pytest.skip)("Dovecot is not installed")
    out = tmp_path / "results.md"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    for row in ("| poll / floor (download only", "| floor as a minimal imapclient script",
                "| mbsync (Debian's isync)", "| peak RSS |", "| IMAP commands |", "idle poll",
                "bare openpyxl load + save", "a poll after a poll", "`saraban-mail status`",
                "| arrival → acknowledgement at the SMTP server", "24 of 24 acknowledged"):
        assert row in report
    assert "| 40 messages" in report or "Mailbox: 40 messages" in report
    if IN_CI:  # the setup installs isync: its row has a time, not "not installed"
        assert "| mbsync (Debian's isync) pulling the same folders to a Maildir |" in report

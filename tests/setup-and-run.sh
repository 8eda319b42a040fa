#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run them.
#   bash tests/setup-and-run.sh [pytest arguments]
# Installs Dovecot, LibreOffice Calc, isync and python3-venv when missing, creates .venv,
# installs the package with its test extras, runs ruff and pytest. Tests that need Dovecot fail under CI=true.
# Also installs Samba (smbd, smbclient): tests that run as the office runs share the register
# folder over a real smbd, as root, with OS accounts they create; under CI=true they fail when
# Samba is missing or the tests do not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests need: Dovecot (the IMAP server the end-to-end tests start
# on a free port), LibreOffice Calc (reads the registers as a clerk would), isync (mbsync,
# the benchmark's other download floor), python3-venv.
missing=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-calc)
command -v mbsync >/dev/null 2>&1 || missing+=(isync)  # the benchmark's second floor
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
# Samba: the register folder shared to the clerks' Windows PCs; smbd is in /usr/sbin, often off PATH.
command -v smbd >/dev/null 2>&1 || [ -x /usr/sbin/smbd ] || missing+=(samba)
command -v smbclient >/dev/null 2>&1 || missing+=(smbclient)  # the clerk's side of the share
# A Thai TrueType font (Laksaman, TLWG's free TH Sarabun New): the seal's visible stamp and the
# head's report PDF are drawn with it, found by fontconfig; libthai says where Thai lines may
# break (report_pdf.py, thaibreak.py, tests/test_seal_e2e.py).
command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)
[ -f /usr/share/fonts/truetype/tlwg/Laksaman.ttf ] || missing+=(fonts-tlwg-laksaman-ttf)
ldconfig -p 2>/dev/null | grep -q 'libthai\.so\.0' || missing+=(libthai0)
command -v mutt >/dev/null 2>&1 || missing+=(mutt)  # opens the archive as a clerk's mail program would
command -v useradd >/dev/null 2>&1 || [ -x /usr/sbin/useradd ] || missing+=(passwd)  # the test accounts
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} ..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check .
.venv/bin/mypy saraban_mail
# Two workers (pytest-xdist), a test file at a time each: the suite waits mostly on servers and
# subprocesses, so two halve it on a 2-core machine. SARABAN_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -n "${SARABAN_TEST_WORKERS:-2}" --dist loadfile "$@"

#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run them.
#   bash tests/setup-and-run.sh [pytest arguments]
# Installs Dovecot (dovecot-imapd) when missing, creates .venv, installs the package
# with its test extras, runs ruff and pytest. Tests that need Dovecot fail under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  echo "installing dovecot-imapd ..."
  as_root apt-get update -qq
  # A container has no init: keep the package from starting the system-wide daemon.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq dovecot-imapd >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  echo "installing python3-venv ..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check .
.venv/bin/mypy saraban_mail
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up everything invoice-inbox needs on a fresh Debian machine: system packages, a virtualenv
# with the project installed. Idempotent: a second run only checks.
#   scripts/bootstrap.sh          -> what the service needs to run
#   scripts/bootstrap.sh --test   -> plus what the test suite needs (chromium, swaks, PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Debian packages: redis-server (the embedded queue), poppler-utils (pdftotext for invoice2data).
packages=(redis-server poppler-utils)
commands=(redis-server pdftotext)
if [ "$want_test" = 1 ]; then
  packages+=(chromium swaks)
  commands+=(chromium swaks)
fi

missing=()
for i in "${!commands[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "missing Debian packages: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extra=""
stamp=.venv/.installed
if [ "$want_test" = 1 ]; then
  extra="[test]"
  stamp=.venv/.installed-test
fi
# Reinstall only when the declared dependencies changed since the last install.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".${extra}" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import core, dashboard, mailgate, worker" || { echo "install failed" >&2; exit 1; }
  touch "$stamp"
fi

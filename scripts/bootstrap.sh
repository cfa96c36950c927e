#!/usr/bin/env bash
# Set up everything invoice-inbox needs on a fresh Debian machine: system packages, a virtualenv
# with the project installed. Idempotent: a second run only checks.
#   scripts/bootstrap.sh          -> what the service needs to run
#   scripts/bootstrap.sh --test   -> plus what the test suite needs (chromium, swaks, PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Debian packages: redis-server (the embedded queue), poppler-utils (pdftotext for invoice2data),
# tesseract-ocr (OCR of scans and photos, the worker runs it) with its French, German, Spanish, Italian and
# Dutch data (English comes with it: the issue's six languages), its orientation and script detection data
# (osd: pages scanned or photographed sideways are turned upright), and Simplified Chinese (chi_sim: a page
# whose script OSD says is Han is read again with it).
packages=(redis-server poppler-utils tesseract-ocr)
commands=(redis-server pdftotext tesseract)
if [ "$want_test" = 1 ]; then
  packages+=(chromium swaks dovecot-imapd)
  commands+=(chromium swaks doveadm)
fi

missing=()
for i in "${!commands[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
# swaks speaks STARTTLS only with Perl's TLS modules, which --no-install-recommends leaves out.
if [ "$want_test" = 1 ] && ! perl -MNet::SSLeay -MIO::Socket::SSL -e 1 2>/dev/null; then
  missing+=(libnet-ssleay-perl libio-socket-ssl-perl)
fi
# Tesseract's language data ships as packages without commands: ask tesseract which it has.
for lang in fra deu spa ita nld osd chi_sim; do
  # Debian names the package with a hyphen where tesseract's language code has an underscore (chi_sim).
  tesseract --list-langs 2>/dev/null | grep -qx "$lang" || missing+=("tesseract-ocr-${lang//_/-}")
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
  # pip's and setuptools' chatter goes to a log, shown only when the install fails.
  mkdir -p var
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".${extra}"; } \
      > var/pip-install.log 2>&1; then
    cat var/pip-install.log >&2
    echo "pip install failed (log: var/pip-install.log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import core, dashboard, mailgate, worker" || { echo "install failed" >&2; exit 1; }
  touch "$stamp"
fi
# The dashboard's translations: *.mo files are build output, not in git (the app also recompiles a .po
# newer than its .mo when it starts, for checkouts that skip this step).
.venv/bin/pybabel -q compile -d dashboard/translations

#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is running (installing it on a fresh machine), and
# print the TEST_DATABASE_URL to use. Redis needs nothing here: the tests start their own redis-server.
set -euo pipefail
url=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "installing PostgreSQL" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_ready; then
  cluster=$(ls /etc/postgresql 2>/dev/null | head -n 1)
  if [ -n "$cluster" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$cluster" main start >&2 || true
  fi
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
# Trust authentication on loopback for the test role, as on the project's machines.
if ! psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
  su postgres -c "psql -qc \"ALTER USER postgres PASSWORD NULL\"" >/dev/null 2>&1 || true
  hba=$(su postgres -c "psql -Atqc 'show hba_file'")
  if ! grep -q "invoice-inbox tests" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # invoice-inbox tests' "$hba"
    su postgres -c "psql -qc 'select pg_reload_conf()'" >/dev/null
  fi
  su postgres -c "psql -qc 'create database test'" >/dev/null 2>&1 || true
fi
psql "$url" -Atqc 'select 1' >/dev/null
echo "$url"

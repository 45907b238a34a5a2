#!/usr/bin/env bash
# Runs the whole test suite. Makes sure what the tests need is up first:
# PostgreSQL on 127.0.0.1:5432 and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will fail" >&2
  else
    echo "warning: /usr/bin/chromium missing (install the Debian package 'chromium')" >&2
  fi
fi

# npm tools of the tests (oidc-provider): installed from the lock file when missing
if [ ! -f test-tools/node_modules/.package-lock.json ] \
   || [ test-tools/package-lock.json -nt test-tools/node_modules/.package-lock.json ]; then
  (cd test-tools && npm ci --no-audit --no-fund) || echo "warning: npm ci in test-tools failed" >&2
fi

mkdir -p test-artifacts
exec .venv/bin/pytest "$@"

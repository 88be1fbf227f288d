#!/usr/bin/env bash
# Install the Debian packages the test suite needs when they are missing (CI runs as root on a fresh
# machine). Each step is idempotent and quiet when the package is already there.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" -ne 0 ]; then
    command -v dovecot >/dev/null 2>&1 || echo "note: dovecot is missing and this is not root; email tests will fail" >&2
    [ -x /usr/bin/chromium ] || echo "note: chromium is missing and this is not root; browser tests are skipped" >&2
    exit 0
fi
bash ./ensure-dovecot.sh
bash ./ensure-chromium.sh

#!/usr/bin/env bash
# Make sure Debian's Chromium (and Japanese fonts for readable screenshots) is installed: the console's
# end-to-end tests drive it headless through Playwright. Idempotent; runs as root (CI and dev machines).
set -euo pipefail

if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    apt-get install -y --no-install-recommends chromium fonts-noto-cjk >/dev/null
}
if ! install; then
    apt-get update >/dev/null
    install
fi
test -x /usr/bin/chromium

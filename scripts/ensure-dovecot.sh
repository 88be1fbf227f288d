#!/usr/bin/env bash
# Make sure Dovecot's IMAP server is installed (the email tests start their own unprivileged instance).
# Idempotent: does nothing when `dovecot` is already on the PATH. Runs as root (CI and dev machines).
set -euo pipefail

if command -v dovecot >/dev/null 2>&1; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    apt-get install -y --no-install-recommends dovecot-imapd >/dev/null
}
# The package list may be missing or stale on a fresh machine: update only when the install fails.
if ! install; then
    apt-get update >/dev/null
    install
fi
# The package enables a system-wide service; the tests never use it. Stop it where it was started
# (no systemd in containers: the init script may be absent or fail, which is fine).
if command -v service >/dev/null 2>&1; then
    service dovecot stop >/dev/null 2>&1 || true
fi
command -v dovecot >/dev/null

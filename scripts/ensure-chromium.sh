#!/usr/bin/env bash
# Make sure Debian's Chromium is installed at /usr/bin/chromium, for the web
# console's end-to-end test (internal/e2e/console_test.go). Idempotent: does
# nothing when it is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-chromium: not root and no sudo: install Debian's chromium package as root" >&2
		exit 1
	fi
	SUDO="sudo"
fi

start=$(date +%s)
echo "ensure-chromium: installing Debian's chromium package..."
export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [ ! -x /usr/bin/chromium ]; then
	echo "ensure-chromium: apt-get finished but /usr/bin/chromium is missing" >&2
	exit 1
fi
echo "ensure-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) installed in $(( $(date +%s) - start ))s"

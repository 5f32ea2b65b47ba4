#!/usr/bin/env bash
# Install the JavaScript client's development packages with `npm ci` from
# its committed lockfile (only when the lockfile changed since the last
# install: idempotent), then build its dist/. The client's tests
# (internal/e2e/jsclient_test.go) need both; Chromium comes from
# scripts/ensure-chromium.sh.
set -euo pipefail
cd "$(dirname "$0")/../clients/js"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "ensure-js: node and npm are needed (scripts/ensure-interop.sh installs Debian's)" >&2
	exit 1
fi
stamp=node_modules/.signal-installed
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	start=$(date +%s)
	echo "ensure-js: npm ci in clients/js..."
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
	cp package-lock.json "$stamp"
	echo "ensure-js: installed in $(( $(date +%s) - start ))s"
fi
node scripts/build.mjs

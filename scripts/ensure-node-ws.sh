#!/usr/bin/env bash
# Make sure Node's `ws` package (a strict WebSocket client: UTF-8, masking,
# close codes) is installed for the conformance test
# (internal/e2e/conformance_test.go), in the git-ignored .dev/node.
# Idempotent: does nothing when the pinned version is there.
set -euo pipefail
cd "$(dirname "$0")/.."

WS_VERSION=8.23.0
DIR=.dev/node

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "ensure-node-ws: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
	exit 1
fi
if [ -f "$DIR/node_modules/ws/package.json" ] &&
	node -e "process.exit(require('./$DIR/node_modules/ws/package.json').version === '$WS_VERSION' ? 0 : 1)"; then
	exit 0
fi
mkdir -p "$DIR"
echo "ensure-node-ws: installing ws@$WS_VERSION into $DIR..."
npm install --prefix "$DIR" --no-audit --no-fund --silent "ws@$WS_VERSION" >/dev/null
echo "ensure-node-ws: ws@$WS_VERSION installed"

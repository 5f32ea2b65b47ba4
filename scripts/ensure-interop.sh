#!/usr/bin/env bash
# Make sure the other clients of the interoperability tests are installed:
# Debian's kcat (librdkafka) and, with the machine's Node.js, kafkajs and its
# codecs (internal/e2e/interop_test.go) and Node's ws
# (internal/e2e/conformance_test.go), each in the git-ignored node_modules
# next to its package.json. Idempotent: does nothing when they are there
# (an npm step reruns only when its package.json changes).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
apt_install() {
	if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-interop: not root and no sudo: install Debian's $* as root" >&2
		exit 1
	fi
	echo "ensure-interop: installing Debian's $*..."
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

start=$(date +%s)
if ! command -v kcat >/dev/null 2>&1; then
	apt_install kcat
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm
fi

# kafkajs (Kafka interoperability) and ws (WebSocket conformance, with
# Chromium: internal/e2e/conformance_test.go).
for dir in internal/e2e/testdata/kafkajs internal/e2e/testdata/ws; do
	stamp="$dir/node_modules/.signal-installed"
	if [ ! -f "$stamp" ] || ! cmp -s "$dir/package.json" "$stamp"; then
		echo "ensure-interop: installing $(basename "$dir") into $dir/node_modules..."
		(cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
		cp "$dir/package.json" "$stamp"
	fi
done
if [ "$(( $(date +%s) - start ))" -gt 1 ]; then
	echo "ensure-interop: $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/kcat \1 (librdkafka \2)/p'), node $(node --version), kafkajs and ws ready in $(( $(date +%s) - start ))s"
fi

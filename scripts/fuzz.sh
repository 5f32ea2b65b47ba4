#!/usr/bin/env bash
# Runs every fuzz target of the module, FUZZTIME each (default 30s): the
# packages are found by their `func Fuzz…` in test files, the targets by
# `go test -list`, so a new fuzzer is run without editing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

dirs=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . | xargs -r -n1 dirname | sort -u)
if [ -z "$dirs" ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
n=0
for d in $dirs; do
	for target in $($GO test -list '^Fuzz' "$d" | grep -E '^Fuzz' || true); do
		echo "fuzz: $d $target for $FUZZTIME"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$d"
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $FUZZTIME each"

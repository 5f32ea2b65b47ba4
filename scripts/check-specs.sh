#!/usr/bin/env bash
# Checks the contracts api/openapi.yaml and api/asyncapi.yaml (make specs;
# make test runs it): strict YAML 1.2, the OpenAPI 3.1 and AsyncAPI 3.0
# validators, and Redocly's recommended rules with warnings as errors (see
# api/check/check.mjs and api/check/redocly.yaml). The checkers are the
# npm packages locked in api/check/package-lock.json, installed with npm ci
# into the git-ignored api/check/node_modules; idempotent: installed again
# only when the lockfile changes.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	echo "check-specs: installing Debian's nodejs and npm..."
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

dir=api/check
stamp="$dir/node_modules/.signal-installed"
if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
	start=$(date +%s)
	echo "check-specs: installing the checkers into $dir/node_modules (npm ci)..."
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$dir/package-lock.json" "$stamp"
	echo "check-specs: installed in $(( $(date +%s) - start ))s"
fi

specs=(api/openapi.yaml api/asyncapi.yaml)
if [ $# -gt 0 ]; then specs=("$@"); fi
status=0
node "$dir/check.mjs" "${specs[@]}" || status=1
# Redocly: no telemetry, no update check (the machine reaches no network
# but the package registries); its Node.js version banner is left out.
lint=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	"$dir/node_modules/.bin/redocly" lint --config "$dir/redocly.yaml" --format=stylish "${specs[@]}" 2>&1) || status=1
printf '%s\n' "$lint" | grep -v -e '^[[:space:]]*$' -e '[║╔╚]' || true
if [ "$status" -ne 0 ]; then
	echo "check-specs: ${specs[*]}: see the problems above" >&2
	exit 1
fi
echo "check-specs: ${specs[*]} pass (YAML 1.2 strict, OpenAPI 3.1 / AsyncAPI 3.0, Redocly recommended-strict)"

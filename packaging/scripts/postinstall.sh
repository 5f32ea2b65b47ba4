#!/bin/sh
# signal package: after install or upgrade.
#   deb: $1 = configure, $2 = the version replaced (empty on a first install)
#   rpm: $1 = 1 on a first install, 2 on an upgrade
# A first install only makes systemd see the unit; enabling and starting it
# is the operator's call once /etc/signal is configured. An upgrade restarts
# a running service so that it runs the new binary.
set -e
[ -d /run/systemd/system ] || exit 0
systemctl daemon-reload >/dev/null 2>&1 || true
case "$1" in
configure) [ -z "$2" ] || systemctl try-restart signal.service >/dev/null 2>&1 || true ;;
2) systemctl try-restart signal.service >/dev/null 2>&1 || true ;;
esac
exit 0

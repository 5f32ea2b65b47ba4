#!/bin/sh
# signal package: after removal. Forget the removed unit.
#   deb: $1 = remove, purge, upgrade, ...; rpm: $1 = 0 on removal, 1 on an upgrade
# /etc/signal/signal.env is the operator's file and is left in place.
set -e
[ -d /run/systemd/system ] || exit 0
case "$1" in
remove | purge | 0) systemctl daemon-reload >/dev/null 2>&1 || true ;;
esac
exit 0

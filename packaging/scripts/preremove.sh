#!/bin/sh
# signal package: before removal.
#   deb: $1 = remove (or upgrade, deconfigure, failed-upgrade)
#   rpm: $1 = 0 on removal, 1 on an upgrade
# On removal (not on an upgrade) stop and disable the service.
set -e
[ -d /run/systemd/system ] || exit 0
case "$1" in
remove | 0) systemctl disable --now signal.service >/dev/null 2>&1 || true ;;
esac
exit 0

#!/usr/bin/env bash
# Install Debian packages the project needs from the system, if their program is missing.
# Usage: install-debian-packages.sh PROGRAM:PACKAGE[,PACKAGE...] ...
#   e.g. install-debian-packages.sh /usr/bin/bwrap:bubblewrap /usr/bin/chromium:chromium,chromium-driver
set -euo pipefail
missing=()
for spec in "$@"; do
    program="${spec%%:*}"
    packages="${spec#*:}"
    if [ ! -x "$program" ] && ! command -v "$program" >/dev/null 2>&1; then
        missing+=(${packages//,/ })
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "Missing system packages: run 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
fi
echo "Installing Debian packages: ${missing[*]} ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null

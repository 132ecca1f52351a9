#!/usr/bin/env bash
# The browser test drives Debian's Chromium (never a downloaded browser) through Playwright's
# Python package. Install chromium and chromium-driver if they are missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "The browser test needs Debian's chromium: run 'sudo apt-get install chromium chromium-driver'" >&2
    exit 1
fi
echo "Installing Debian's chromium and chromium-driver for the browser test..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
/usr/bin/chromium --version

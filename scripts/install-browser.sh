#!/usr/bin/env bash
# The browser test drives Debian's Chromium (never a downloaded browser) through Playwright's
# Python package. Install chromium and chromium-driver if they are missing.
set -euo pipefail
bash "$(dirname "$0")/install-debian-packages.sh" /usr/bin/chromium:chromium,chromium-driver
/usr/bin/chromium --version

#!/usr/bin/env bash
# Grading runs every student kernel in a bubblewrap sandbox (grader/pipeline/sandbox.py): install
# Debian's bubblewrap (and util-linux's setpriv, which drops the kernel's rights) if missing.
set -euo pipefail
bash "$(dirname "$0")/install-debian-packages.sh" bwrap:bubblewrap setpriv:util-linux

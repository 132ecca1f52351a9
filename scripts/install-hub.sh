#!/usr/bin/env bash
# The course hub's software, under .hub/ in the checkout (or $CVHUB_HOME), never globally:
#   venv/         the student environment every user's server runs: the student distribution
#                 of cvcourse (no grader), JupyterLab, nbgrader's extensions, ipywidgets, and
#                 JupyterHub itself
#   venv-grader/  the TA environment of the formgrader service: the same plus cvcourse-grader
#                 (cvgrade, hidden checks, torch); deploy/jupyterhub/hubctl.py makes it readable
#                 by the grader user only
#   proxy/        configurable-http-proxy from npm
# Both venvs are built from a system-wide Python (/usr/bin/python3.11): every user's server
# runs it, and an interpreter under /root (pyenv) is unreadable to them.
# Idempotent: a venv is built once; the two local packages are reinstalled when their sources
# change. Versions are those of SCALE-NOTES.md (a full exchange cycle ran with them).
set -euo pipefail
umask 022
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
HUB=${CVHUB_HOME:-$REPO/.hub}
PYTHON=${CVHUB_PYTHON:-/usr/bin/python3.11}
PINS=(jupyterhub==6.1.1 jupyterlab==4.6.6 notebook==7.6.5 nbgrader==0.9.6 ipywidgets==8.1.9)
PROXY_VERSION=5.3.0

if [ ! -x "$PYTHON" ]; then
    echo "The hub needs a system-wide Python 3.11 that every user can run ($PYTHON is missing):" >&2
    echo "  sudo apt-get install python3.11 python3.11-venv   (or set CVHUB_PYTHON)" >&2
    exit 1
fi
case "$(readlink -f "$PYTHON")" in
    /root/*) echo "$PYTHON lives under /root, which other users cannot read" >&2; exit 1 ;;
esac
mkdir -p "$HUB"
chmod 755 "$HUB"

# What the local packages are made of: a change reinstalls them (not their dependencies).
sources=$(cd "$REPO" && find pyproject.toml grader/pyproject.toml jupyter-config cvcourse grader \
    -type f \( -name '*.py' -o -name '*.toml' -o -name '*.npz' -o -name '*.j2' -o -name '*.css' \) \
    -not -path '*/build/*' -not -path '*/__pycache__/*' -not -path '*.egg-info/*' \
    | sort | xargs sha256sum | sha256sum | cut -c1-16)

pip() {  # pip, without the warnings a missing local index folder prints per package
    local venv=$1; shift
    "$venv/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file" >&2)
}

build() {  # build VENV_DIR LOCAL_PACKAGE...
    local venv=$1; shift
    local stamp="$venv/.cvcourse-hub-$sources"
    [ -e "$stamp" ] && return 0
    if [ ! -x "$venv/bin/jupyterhub-singleuser" ]; then
        echo "Building $venv ..."
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
        pip "$venv" install --quiet --upgrade pip
        pip "$venv" install --quiet "${PINS[@]}" "$@"
    fi
    # Not editable: the servers must not read the checkout. Reinstall the local packages.
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && pip "$venv" install --quiet --no-deps --force-reinstall "$@")
    rm -rf "$tmp"
    rm -f "$venv"/.cvcourse-hub-*
    touch "$stamp"
}

build "$HUB/venv" "$REPO[course]"
build "$HUB/venv-grader" "$REPO[course]" "$REPO/grader"

if [ ! -x "$HUB/proxy/node_modules/.bin/configurable-http-proxy" ] \
    || ! grep -q "\"version\": \"$PROXY_VERSION\"" \
        "$HUB/proxy/node_modules/configurable-http-proxy/package.json"; then
    if ! command -v npm >/dev/null; then
        echo "npm is missing: sudo apt-get install npm (configurable-http-proxy comes from npm)" >&2
        exit 1
    fi
    echo "Installing configurable-http-proxy $PROXY_VERSION into $HUB/proxy ..."
    mkdir -p "$HUB/proxy"
    npm install --silent --no-fund --no-audit --prefix "$HUB/proxy" \
        "configurable-http-proxy@$PROXY_VERSION" >/dev/null
fi
echo "hub software ready in $HUB"

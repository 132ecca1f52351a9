#!/usr/bin/env bash
# Start a grading worker on this machine and join the scheduler at $1.
#   bash scripts/cluster/worker.sh tcp://SCHEDULER:8786 [--nworkers 8] [--resources GPU=1]
# Needs the TA distribution installed here (make setup, or `pip install ./grader` in $VENV)
# and bubblewrap (installed below if missing). --preload grader.pipeline.cluster checks the sandbox
# and compiles numba's kernels before the worker takes a task. One single-threaded worker
# process per core by default: each runs one submission at a time, in a grading process of
# its own.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 tcp://SCHEDULER:8786 [dask worker options]"; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd -P)"
VENV="${VENV:-$(cd "$HERE/../.." && pwd -P)/.venv}"
bash "$HERE/../install-sandbox.sh"
# A worker starts its grading processes with multiprocessing: it must not be daemonic.
export DASK_DISTRIBUTED__WORKER__DAEMON=False
scheduler="$1"
shift
exec "$VENV/bin/dask" worker "$scheduler" --nworkers "${NWORKERS:-$(nproc)}" --nthreads 1 \
    --preload grader.pipeline.cluster --name "$(hostname)" "$@"

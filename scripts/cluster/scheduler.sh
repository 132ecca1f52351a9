#!/usr/bin/env bash
# Start the Dask scheduler that `cvgrade autograde --cluster tcp://THIS-HOST:8786` sends
# submissions to. Any machine with the TA distribution (make setup, or
# `pip install ./grader`) will do; it grades nothing itself.
#   bash scripts/cluster/scheduler.sh [extra `dask scheduler` options]
set -euo pipefail
VENV="${VENV:-$(cd "$(dirname "$0")/../.." && pwd -P)/.venv}"
# The head sets these too when it connects (grader.pipeline.cluster): a worker that dies fails its
# task at once (the head owns the one retry) and holds only the tasks it is running.
export DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0
export DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0
exec "$VENV/bin/dask" scheduler --port "${PORT:-8786}" --dashboard-address "${DASHBOARD:-:8787}" "$@"

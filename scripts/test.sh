#!/usr/bin/env bash
# Set everything up (the tests' system packages included), then run the whole test suite (CI
# runs exactly this). Extra arguments go to pytest: `-m "not slow"` runs only the quick tests
# (about 1.5 minutes), `-m "not extended"` leaves out the longest end-to-end ones (the two-node
# cluster, the browser, the worker start-up, retries, early stopping: see docs/index.md, "Tests").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# Tests read real data from here; override with SPARSE_SWEEPS_DATA.
if [ -z "${SPARSE_SWEEPS_DATA:-}" ] && [ -d ../shared/data ]; then
    export SPARSE_SWEEPS_DATA=$(cd ../shared/data && pwd)
fi
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up (the tests' system packages included), then run the test suite. Extra
# arguments go to pytest. Without -m it leaves out the tests marked `extended` (the two-node
# cluster, the browser, the worker start-up, retries, early stopping: see README, "Tests"),
# so that CI stays within about 10 minutes on 2 cores; `-m ''` runs everything, `-m "not slow"`
# only the quick tests (about 1.5 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# Tests read real data from here; override with SPARSE_SWEEPS_DATA.
if [ -z "${SPARSE_SWEEPS_DATA:-}" ] && [ -d ../shared/data ]; then
    export SPARSE_SWEEPS_DATA=$(cd ../shared/data && pwd)
fi
marks=(-m "not extended")
for arg in "$@"; do
    case "$arg" in
        -m | -m*) marks=() ;;
    esac
done
exec .venv/bin/python -m pytest "${marks[@]}" "$@"

#!/usr/bin/env bash
# Set everything up (the tests' system packages included), then run the test suite. Extra
# arguments go to pytest; `-m "not slow"` skips the long end-to-end tests (about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# Tests read real data from here; override with SPARSE_SWEEPS_DATA.
if [ -z "${SPARSE_SWEEPS_DATA:-}" ] && [ -d ../shared/data ]; then
    export SPARSE_SWEEPS_DATA=$(cd ../shared/data && pwd)
fi
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tests read real data from here; override with SPARSE_SWEEPS_DATA.
if [ -z "${SPARSE_SWEEPS_DATA:-}" ] && [ -d ../shared/data ]; then
    export SPARSE_SWEEPS_DATA=$(cd ../shared/data && pwd)
fi
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}  # Ray clusters the tests start themselves
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tests read real data from here; override with SPARSE_SWEEPS_DATA.
export SPARSE_SWEEPS_DATA=${SPARSE_SWEEPS_DATA:-$(cd .. && pwd)/shared/data}
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up, then run the quick MNIST sweep end to end (or, when it already ran here,
# show its trials and Pareto front). Extra arguments go to `sweeps run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${SPARSE_SWEEPS_DATA:-}" ] && [ -d ../shared/data ]; then
    export SPARSE_SWEEPS_DATA=$(cd ../shared/data && pwd)
fi
if [ -f "${SPARSE_SWEEPS_ROOT:-sweeps-data}/specs/mnist-quick.yaml" ]; then
    echo "mnist-quick already ran here: its trials and Pareto front (remove ${SPARSE_SWEEPS_ROOT:-sweeps-data}/ to run it again)"
    exec .venv/bin/sweeps status mnist-quick
fi
exec .venv/bin/sweeps run mnist-quick "$@"

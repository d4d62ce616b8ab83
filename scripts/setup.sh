#!/usr/bin/env bash
# Create (if missing) the virtual environment at .venv and install the project into it,
# editable, with the locked dependency set. A second run skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "setup: $VENV is up to date"
    exit 0
fi
if [ ! -x "$VENV/bin/uv" ]; then
    echo "setup: installing uv into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
fi
echo "setup: installing locked dependencies (requirements.lock)"
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet -r requirements.lock
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --no-deps -e .
echo "$want" > "$STAMP"
echo "setup: done"

#!/usr/bin/env bash
# Create (if missing) the virtual environment at .venv and install the project into it,
# editable, with the locked dependency set. A second run skips what is already installed.
# --test (scripts/test.sh passes it): also the system packages the tests need, once, visibly:
# Chromium (the dashboard's browser test). PostgreSQL comes as a wheel (pgserver, in the lock).
# The tests themselves never install anything.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) TEST=1 ;;
        *) echo "setup: unknown option $arg (only --test)" >&2; exit 2 ;;
    esac
done

system_packages() {
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    if [ ${#missing[@]} -eq 0 ]; then
        echo "setup: test system packages present (chromium)"
        return 0
    fi
    local why=""
    if [ "$(id -u)" -ne 0 ]; then
        why="not root"
    elif ! command -v apt-get >/dev/null 2>&1; then
        why="no apt-get on this system"
    fi
    if [ -z "$why" ]; then
        echo "setup: installing ${missing[*]} with apt-get (once; the browser test needs it)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq; then
            why="apt-get update failed: no reachable package index"
        elif ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            why="apt-get install ${missing[*]} failed"
        fi
    fi
    if [ -n "$why" ]; then
        echo "setup: cannot install ${missing[*]} ($why): tests/test_dashboard_browser.py will fail;" \
             "install it as root: apt-get update && apt-get install -y chromium" >&2
        return 0
    fi
    echo "setup: installed ${missing[*]}"
}
# Bytecode: uv installs no .pyc files, and where PYTHONDONTWRITEBYTECODE=1 is set (as on this
# project's machines) every process then compiles every module it imports from source, about 2 s
# of CPU per `sweeps` command. The environment is compiled once per install (its own stamp; about
# 1.5 CPU-minutes), the project's modules on every run (well under a second).
compile_bytecode() {
    local stamp=$VENV/.compiled site
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "setup: compiling the environment's bytecode (once per install)"
        for site in "$VENV"/lib/python*/site-packages; do
            if [ -d "$site" ]; then
                "$VENV/bin/python" -m compileall -qq -j 0 "$site" >/dev/null 2>&1 || true
            fi
        done
        echo "$want" > "$stamp"
    fi
    "$VENV/bin/python" -m compileall -qq sparsity sweeps dashboards >/dev/null 2>&1 || true
}
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed
want=$(cat requirements.lock pyproject.toml scripts/uv.txt | sha256sum | cut -d' ' -f1)
UV_PIN=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv.txt)

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "setup: $VENV is up to date"
    compile_bytecode
    [ "$TEST" = 1 ] && system_packages
    exit 0
fi
# uv itself: the pinned version, its files checked against scripts/uv.txt's hashes.
if [ ! -x "$VENV/bin/uv" ] || [ "$("$VENV/bin/uv" --version | cut -d' ' -f2)" != "$UV_PIN" ]; then
    echo "setup: installing uv $UV_PIN into $VENV (hash-checked)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r scripts/uv.txt
fi
echo "setup: installing locked dependencies (requirements.lock, hash-checked)"
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --require-hashes -r requirements.lock
# The project itself is built by the locked setuptools in the environment (no build isolation: no
# unpinned build tools fetched from the index outside the hash-checked lock).
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
compile_bytecode
[ "$TEST" = 1 ] && system_packages
echo "setup: done"

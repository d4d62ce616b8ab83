"""A submitted sweep's first step, on the head: does the Python it runs under have what a sweep
needs? Standard library only (it runs before anything else is imported). Prints `READY` and exits 0,
or prints one line naming the missing packages and the fix and exits 2 (`sweeps submit` shows it).

Run as ``PYTHON -m sweeps.run.headcheck`` (`sweeps.run.jobs.entrypoint`).
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

__all__ = ["REQUIRED", "READY", "missing", "main"]

# The project's dependencies (pyproject.toml), distribution name -> the module a sweep imports.
REQUIRED = {
    "torch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio", "soundfile": "soundfile",
    "numpy": "numpy", "pyyaml": "yaml", "rich": "rich", "ray": "ray", "mlflow": "mlflow", "optuna": "optuna",
    "greenlet": "greenlet", "scikit-learn": "sklearn", "matplotlib": "matplotlib", "psycopg2-binary": "psycopg2",
    "safetensors": "safetensors", "onnx": "onnx", "plotly": "plotly", "fsspec": "fsspec",
}
READY = "sweeps: the head's Python has every package a sweep needs"


def missing() -> list[str]:
    """The distributions of `REQUIRED` whose module this Python cannot import."""
    out = []
    for dist, module in REQUIRED.items():
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(dist)
    return out


def main() -> int:
    gone = missing()
    if gone:
        print(f"error: the head's Python ({sys.executable}) lacks {', '.join(gone)}; install the project there "
              f"(pip install -r requirements.lock && pip install -e .) and start Ray with that environment's "
              f"`ray start`, or run the head from the project's image (cluster/Dockerfile)", flush=True)
        return 2
    print(f"{READY} ({sys.executable})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

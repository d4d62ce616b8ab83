"""The sparsity library stands alone: importing it (every submodule) pulls in neither Ray nor MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

FORBIDDEN = ("ray", "mlflow")

SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import sparsity
    imported, failed = ["sparsity"], {}
    for info in pkgutil.walk_packages(sparsity.__path__, "sparsity."):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as e:  # reported, and fails the test
            failed[info.name] = f"{type(e).__name__}: {e}"
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    print(json.dumps({"imported": imported, "failed": failed, "heavy": heavy}))
    """
).replace("FORBIDDEN", repr(FORBIDDEN))


def test_import_sparsity_and_all_submodules_without_ray_or_mlflow():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, result["failed"]
    # The walk found the core modules (guards against an empty walk passing vacuously).
    for name in ("sparsity.functional", "sparsity.kwinners", "sparsity.sparse_weights", "sparsity.network"):
        assert name in result["imported"]
    assert result["heavy"] == [], f"importing sparsity loaded {result['heavy']}"

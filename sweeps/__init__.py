"""sweeps: the sweep service (Ray Tune trials, Optuna multi-objective search, MLflow logging).

Usage reports are off by default: importing the package sets ``RAY_USAGE_STATS_ENABLED=0`` and
``MLFLOW_DISABLE_TELEMETRY=true`` unless they are set already, so every command, the library, the
local Ray it starts and its workers report nothing. Set either variable yourself to turn it on
(``RAY_USAGE_STATS_ENABLED=1``, ``MLFLOW_DISABLE_TELEMETRY=false``).
"""

import os as _os

TELEMETRY_OFF = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
for _name, _value in TELEMETRY_OFF.items():
    _os.environ.setdefault(_name, _value)

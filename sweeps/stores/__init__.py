"""Where a sweep's state lives: the three stores (Ray's storage, the Optuna study, MLflow) resolved
from a spec and the environment (config.py), their passwords and redaction (secrets.py), the checks
that a store is reachable and usable before anything is written (preflight.py), where sweeps live on
this machine (paths.py), and a read-only reader of Optuna's tables for the CLI's read commands
(optuna_tables.py).
"""

from sweeps.stores.config import Stores  # noqa: F401
from sweeps.stores.paths import ROOT_ENV, default_root  # noqa: F401

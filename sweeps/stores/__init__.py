"""Where a sweep's state lives: the three stores (Ray's storage, the Optuna study, MLflow) resolved
from a spec and the environment, their secrets and redaction, the checks that a store is reachable
and usable before anything is written, and a read-only reader of Optuna's tables for the CLI's
read commands.
"""

from sweeps.stores.config import Stores  # noqa: F401
from sweeps.stores.paths import ROOT_ENV, default_root  # noqa: F401

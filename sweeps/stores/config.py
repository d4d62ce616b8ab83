"""The three stores of a sweep, and everything read from the environment about them.

* `Stores`: where results go (Ray storage, MLflow tracking and artifacts, the Optuna study), each
  field falling back on its ``$SPARSE_SWEEPS_*`` variable (`STORE_ENV`), then on the embedded default.
  Every URL a `Stores` holds, and so the saved spec, the Optuna study, MLflow's params and whatever
  is printed or logged, is password-free (`sweeps.stores.secrets`).
* URL normalisation: ``postgresql://`` (the form SQLAlchemy's and Optuna's docs show, which
  SQLAlchemy 2.1 maps to psycopg 3) and ``postgres://`` name the installed driver instead.
* The store variables: a password in one moves to this process's memory and the variable keeps the
  URL without it (`clean_env_value`), so no process started from here inherits it.

Each store is checked before anything is written by `sweeps.stores.preflight`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from sweeps.errors import spec_fail
from sweeps.stores.paths import DEFAULT_ROOT
from sweeps.stores.secrets import strip_password

__all__ = ["STORE_ENV", "Stores", "normalize_url", "setting", "clean_env_value"]

# Cluster mode: a node's environment can point every sweep at the shared stores. A field the spec
# leaves empty takes its variable's value when set (the spec wins), so the saved spec records it
# (without its password).
STORE_ENV = {
    "ray_storage": "SPARSE_SWEEPS_RAY_STORAGE",
    "mlflow_tracking_uri": "SPARSE_SWEEPS_MLFLOW_TRACKING_URI",
    "mlflow_artifact_location": "SPARSE_SWEEPS_MLFLOW_ARTIFACT_LOCATION",
    "optuna_storage": "SPARSE_SWEEPS_OPTUNA_STORAGE",
    "shared_filesystem": "SPARSE_SWEEPS_SHARED_FILESYSTEM",  # 1/true/yes
}
_URL_FIELDS = ("ray_storage", "mlflow_tracking_uri", "mlflow_artifact_location", "optuna_storage")


def setting(name: str) -> str:
    """How errors name a `Stores` field: the spec key and its variable."""
    return f"stores.{name} (${STORE_ENV[name]})"


# -- URLs -----------------------------------------------------------------------------------------

def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` name the PostgreSQL driver that is installed
    (SQLAlchemy 2.1 maps the bare form to psycopg 3; this project installs psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        if find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
        return f"postgresql+psycopg2://{rest}"
    return url


# -- the store variables ----------------------------------------------------------------------

def _load_env_secrets() -> None:
    """Passwords in the $SPARSE_SWEEPS_* store variables move to this process's memory: the variable
    keeps the URL without it, so no process started from here (Ray, its workers, trials) inherits it."""
    for name in _URL_FIELDS:
        var = STORE_ENV[name]
        value = os.environ.get(var, "").strip()
        if value:
            clean = strip_password(normalize_url(value), setting(name))
            if clean != normalize_url(value):
                os.environ[var] = clean


def clean_env_value(name: str, value: str) -> str:
    """A $SPARSE_SWEEPS_* value as it may be handed on: a store URL without its password."""
    field = next((f for f, var in STORE_ENV.items() if var == name), None)
    if field not in _URL_FIELDS:
        return value
    return strip_password(normalize_url(value.strip()), setting(field))


# -- the stores -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stores:
    """Where results go. Empty fields take $SPARSE_SWEEPS_<FIELD> (see `STORE_ENV`) when set, else
    derive from ``root`` (the embedded default): Ray storage at ROOT/ray, MLflow at
    sqlite:///ROOT/mlflow.db with artifacts in ROOT/mlartifacts, Optuna at sqlite:///ROOT/optuna.db.
    URLs are kept without their passwords (see the module's docstring)."""

    root: str = DEFAULT_ROOT
    ray_storage: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_location: str | None = None
    optuna_storage: str | None = None
    # True: local paths here (ray_storage, a file: artifact location) are on a shared volume (NFS)
    # mounted at the same path on every node, so a multi-node cluster may use them.
    shared_filesystem: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shared_filesystem, bool):
            spec_fail("stores.shared_filesystem", f"{self.shared_filesystem!r} must be true or false")
        _load_env_secrets()
        for name, var in STORE_ENV.items():
            value = os.environ.get(var, "").strip()
            if not value or getattr(self, name):
                continue
            if name == "shared_filesystem":
                if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    spec_fail("stores.shared_filesystem", f"${var}={value!r} must be 1/true/yes or 0/false/no")
                value = value.lower() in ("1", "true", "yes")
            object.__setattr__(self, name, value)
        for name in _URL_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str) and value:
                object.__setattr__(self, name, strip_password(normalize_url(value.strip()), setting(name)))

    def resolved(self) -> "Stores":
        """Every setting filled in, the root absolute; resolved stores are returned as they are."""
        if self.is_resolved:
            return self
        root = Path(self.root).expanduser().resolve()
        return Stores(
            root=str(root),
            ray_storage=self.ray_storage or str(root / "ray"),
            mlflow_tracking_uri=self.mlflow_tracking_uri or f"sqlite:///{root / 'mlflow.db'}",
            mlflow_artifact_location=self.mlflow_artifact_location
            or (None if self.mlflow_tracking_uri else (root / "mlartifacts").as_uri()),
            optuna_storage=self.optuna_storage or f"sqlite:///{root / 'optuna.db'}",
            shared_filesystem=self.shared_filesystem,
        )

    @property
    def is_resolved(self) -> bool:
        """Resolving again would change nothing: an absolute, normal root and every store URL set."""
        return (os.path.isabs(self.root) and os.path.normpath(self.root) == self.root
                and bool(self.ray_storage and self.mlflow_tracking_uri and self.optuna_storage))

    def local_only(self) -> list[str]:
        """Settings that only this machine can reach (refused on a multi-node cluster)."""
        r = self.resolved()
        out = []
        if r.mlflow_tracking_uri.startswith(("sqlite:", "file:")) or "://" not in r.mlflow_tracking_uri:
            out.append("stores.mlflow_tracking_uri")
        if r.optuna_storage.startswith("sqlite:"):
            out.append("stores.optuna_storage")
        return out

    def unshared_paths(self) -> list[str]:
        """Settings naming a folder on this machine's disk that other nodes do not see (refused on a
        multi-node cluster unless ``shared_filesystem``). SQLite stores are `local_only` instead."""
        if self.shared_filesystem:
            return []
        r = self.resolved()

        def local(uri: str) -> bool:
            return uri.startswith("file:") or "://" not in uri

        out = []
        if local(r.ray_storage):
            out.append("stores.ray_storage")
        if "stores.mlflow_tracking_uri" in self.local_only():
            return out  # refused as local-only already, artifacts with it
        http = r.mlflow_tracking_uri.startswith(("http://", "https://"))
        art = r.mlflow_artifact_location
        # A database tracking URI (no server) gives new experiments a local ./mlruns folder.
        if (art is None and not http) or (art is not None and local(art)):
            out.append("stores.mlflow_artifact_location")
        return out

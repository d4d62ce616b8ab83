"""An http(s) MLflow server's password, sent by MLflow's client as a header and never through the
environment.

MLflow's REST client reads basic-auth credentials from ``$MLFLOW_TRACKING_USERNAME`` and
``$MLFLOW_TRACKING_PASSWORD``, which every process started from here (the local Ray and its
workers, an ``mlflow server``) would inherit. Instead, `use_store_credentials` registers a
request-auth provider (MLflow's plugin interface) and names it in ``$MLFLOW_TRACKING_AUTH``, a name
and no secret. For each request the provider's auth looks up the password this process holds for
the request's own server (`sweeps.stores.secrets.web_credentials`, by user, host and port: from a
store URL, or a trial's `remember_secrets`) and adds an ``Authorization`` header; a request to any
other host gets none.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sweeps.stores.secrets import authorization, web_credentials

__all__ = ["AUTH_NAME", "use_store_credentials"]

log = logging.getLogger(__name__)

AUTH_NAME = "sparse-sweeps-store"
AUTH_ENV = "MLFLOW_TRACKING_AUTH"


def _provider() -> type:
    import requests.auth
    from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider

    class StoreAuth(requests.auth.AuthBase):
        """The Authorization header of the request's own server, from this process's memory."""

        def __call__(self, r: Any) -> Any:
            header = authorization(r.url)
            if header is not None:
                r.headers["Authorization"] = header
            return r

    class StoreAuthProvider(RequestAuthProvider):
        def get_name(self) -> str:
            return AUTH_NAME

        def get_auth(self) -> Any:
            return StoreAuth()

    return StoreAuthProvider


_registered: type | None = None


def use_store_credentials(tracking_uri: str | None) -> bool:
    """Have MLflow's client send the password this process holds for the http(s) server at
    ``tracking_uri`` (and only there). False, changing nothing, when it holds none, or when
    $MLFLOW_TRACKING_AUTH names another provider (that one then authenticates)."""
    global _registered
    if not tracking_uri or web_credentials(tracking_uri) is None:
        return False
    current = os.environ.get(AUTH_ENV)
    if current and current != AUTH_NAME:
        log.warning("$%s=%s: MLflow authenticates with that provider, not with the password in the tracking URI",
                    AUTH_ENV, current)
        return False
    if _registered is None:
        from sweeps.tracking.mlflow_private import register_request_auth

        _registered = _provider()
        register_request_auth(_registered)
    os.environ[AUTH_ENV] = AUTH_NAME  # a provider's name: no secret
    return True

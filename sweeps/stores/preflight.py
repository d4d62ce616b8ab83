"""Pre-flight checks: each configured store reachable and usable before anything is created or
written. Each failure is one line naming the setting, the host (password masked), the cause and
the fix, raised as `StoreError` (the CLI prints it and exits 2). `mlflow_problem` is the one
MLflow health check of the service.

Import-light: SQLAlchemy, the database drivers and pyarrow are imported only by the checks.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from pathlib import Path
from typing import Callable

from sweeps.errors import StoreError
from sweeps.stores.config import Stores, setting
from sweeps.stores.paths import sqlite_file
from sweeps.stores.secrets import authorization, display, install_hook, scrub, without_userinfo

__all__ = ["preflight", "store_problem", "mlflow_problem", "shared_store_problems", "CHECK_TIMEOUT_S"]

CHECK_TIMEOUT_S = 5.0


def _folder_problem(path: Path) -> str | None:
    """Why ``path`` (a folder that may not exist yet) cannot be created or written, else None."""
    path = path.expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"{path}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{path}: {probe} is a file, not a folder; choose a folder path"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{path}: {probe} is not writable by this user; choose a writable folder or fix its permissions"
    return None


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file:"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
    if uri.startswith("sqlite:"):
        file = sqlite_file(uri)
        return None if file is None else file.parent
    return None if "://" in uri else Path(uri)


def _db_problem(url: str) -> str | None:
    """Connect to a database URL and run SELECT 1; the cause and the fix when that fails."""
    try:
        import sqlalchemy
        from sqlalchemy.pool import NullPool
    except ImportError:  # pragma: no cover (a dependency)
        return "SQLAlchemy is not installed; reinstall the project (bash scripts/setup.sh)"
    install_hook()
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:
        return f"{display(url)} is not a database URL; use e.g. postgresql+psycopg2://USER@HOST:5432/DB"
    host = f"{parsed.host or 'localhost'}:{parsed.port or 'default port'}"
    connect_args = {"connect_timeout": int(CHECK_TIMEOUT_S)} if parsed.get_backend_name() in ("postgresql", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as e:
        return (f"{display(url)}: its driver is not installed ({type(e).__name__}: {e}); use "
                f"postgresql+psycopg2://... for PostgreSQL (psycopg2 is installed)")
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as e:  # driver errors differ: read the cause from the message
        text = " ".join(str(getattr(e, "orig", None) or e).split())
        low = text.lower()
        if "password authentication failed" in low or "access denied" in low:
            cause = (f"password authentication failed for user {parsed.username!r}; set the right password in "
                     f"$PGPASSWORD or in the store URL")
        elif "no password supplied" in low:
            cause = f"the server wants a password for user {parsed.username!r}; set $PGPASSWORD or put it in the URL"
        elif "connection refused" in low:
            cause = f"connection refused at {host}; start the database server there or correct the host and port"
        elif "timeout" in low or "timed out" in low:
            cause = f"no answer from {host} within {CHECK_TIMEOUT_S:.0f}s; check the host, port and firewall"
        elif "could not translate host name" in low or "name or service not known" in low:
            cause = f"unknown host {parsed.host!r}; correct the host name"
        elif "does not exist" in low and "database" in low:
            cause = f"database {parsed.database!r} does not exist on {host}; create it (createdb {parsed.database})"
        elif "unable to open database file" in low:
            cause = "the SQLite file cannot be opened; check its folder exists and is writable"
        else:
            cause = f"{scrub(text)[:300]}; check the URL and the server"
        return f"cannot connect to {display(url)}: {cause}"
    finally:
        engine.dispose()
    return None


def mlflow_problem(url: str, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """What is wrong with the MLflow tracking server at ``url`` (its /health answer), None if it
    answers: the one health check of the service (preflight, `tracking.check_reachable`, the UI).
    The URL's user goes as an ``Authorization`` header with the password this process holds for it
    (`sweeps.stores.secrets.authorization`), never in the URL handed to the HTTP client."""
    import urllib.error
    import urllib.request  # here: with http.client and email, 0.05 s every command would pay

    request = urllib.request.Request(without_userinfo(url).rstrip("/") + "/health")
    if (header := authorization(url)) is not None:
        request.add_unredirected_header("Authorization", header)  # to this server only, not where it redirects
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310 (URI from the spec)
            if r.status == 200:
                return None
            return f"MLflow at {display(url)} answered {r.status} on /health; check it is an MLflow tracking server"
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            return (f"MLflow at {display(url)} refused the credentials ({e.code} on /health); put the right user and "
                    f"password in the URL (http://USER:PASSWORD@HOST:PORT) or in $SPARSE_SWEEPS_MLFLOW_TRACKING_URI")
        return f"MLflow at {display(url)} answered {e.code} on /health; check it is an MLflow tracking server"
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return (f"MLflow tracking server {display(url)} is unreachable ({reason}); start it or correct the URI "
                f"(omit the setting for the embedded SQLite store)")


def _remote_fs_problem(uri: str) -> str | None:
    try:
        import pyarrow.fs
    except ImportError:  # pragma: no cover (Ray's dependency)
        return None
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        fs.get_file_info(path)
    except Exception as e:
        return (f"cannot reach {display(uri)} ({scrub(' '.join(str(e).split()))[:200]}); check the bucket name "
                f"and this machine's credentials for it")
    return None


def _checks(stores: Stores) -> list[tuple[str, Callable[[], str | None]]]:
    r = stores.resolved()
    out: list[tuple[str, Callable[[], str | None]]] = []

    def add(name: str, uri: str | None) -> None:
        if not uri:
            return
        path = _local_path(uri)
        if uri.startswith("sqlite:"):
            if path is not None:
                out.append((name, lambda: _folder_problem(path)))
        elif path is not None:
            out.append((name, lambda: _folder_problem(path)))
        elif uri.startswith(("http://", "https://")):
            if name == "mlflow_tracking_uri":
                out.append((name, lambda: mlflow_problem(uri)))
        elif uri.startswith(("s3://", "gs://", "gcs://")):
            out.append((name, lambda: _remote_fs_problem(uri)))
        elif name in ("optuna_storage", "mlflow_tracking_uri"):
            out.append((name, lambda: _db_problem(uri)))
        if name == "optuna_storage" and uri.startswith(("http://", "https://")):
            out.append((name, lambda: f"{display(uri)} is a web address; Optuna needs a database URL, e.g. "
                                      f"postgresql+psycopg2://USER@HOST:5432/DB"))

    for name in ("optuna_storage", "mlflow_tracking_uri", "mlflow_artifact_location", "ray_storage"):
        add(name, getattr(r, name))
    return out


def store_problem(name: str, uri: str) -> str | None:
    """One store's check (``name`` a `Stores` field), as `preflight` words it; None if it passes."""
    for check_name, check in _checks(Stores(**{name: uri})):
        if check_name == name and (problem := check()):
            return f"{setting(name)}: {problem}"
    return None


def preflight(stores: Stores, timeout: float = 2 * CHECK_TIMEOUT_S + 5) -> None:
    """Check every configured store is reachable and usable; nothing is created or written. Raises
    `StoreError` with one line per failing store (setting, host with the password masked, cause, fix)."""
    checks = _checks(stores)
    results: dict[str, str | None] = {}

    def run(name: str, check: Callable[[], str | None]) -> None:
        try:
            results[name] = check()
        except Exception as e:  # a check must name its store, whatever went wrong
            results[name] = f"check failed: {scrub(str(e))[:200]}"

    threads = [threading.Thread(target=run, args=c, daemon=True, name=f"sweeps-check-{c[0]}") for c in checks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    problems = []
    for name, _ in checks:
        if name not in results:
            problems.append(f"{setting(name)}: no answer within {timeout:.0f}s; check the host and network")
        elif results[name]:
            problems.append(f"{setting(name)}: {results[name]}")
    if problems:
        raise StoreError("\n".join(problems))


def shared_store_problems(stores: Stores, why: str) -> list[str]:
    """What in ``stores`` only this machine reaches, for a cluster that has or can get more than one
    node (``why`` says which: "the cluster at X has 3 nodes", "... has an autoscaler"): one line per
    kind, each with its fix. Empty when every store is shared."""
    local, unshared = stores.local_only(), stores.unshared_paths()
    problems = []
    if local:
        problems.append(
            f"{', '.join(local)}: a SQLite store is reachable from this machine only, but {why}; set it to a server "
            f"every node reaches (e.g. postgresql://... for optuna_storage, http://mlflow:5000 for "
            f"mlflow_tracking_uri; cluster/README.md)"
        )
    if unshared:
        problems.append(
            f"{', '.join(unshared)}: a folder on this machine's disk, but {why}; use s3://... or gs://... (for "
            f"mlflow_artifact_location, or an MLflow server started with --serve-artifacts), or set "
            f"stores.shared_filesystem: true if the path is a shared volume (NFS) mounted at the same path on "
            f"every node"
        )
    return problems

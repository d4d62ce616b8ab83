"""The three stores of a sweep, and everything read from the environment about them.

* `Stores`: where results go (Ray storage, MLflow tracking and artifacts, the Optuna study), each
  field falling back on its ``$SPARSE_SWEEPS_*`` variable (`STORE_ENV`), then on the embedded default.
* URL normalisation: ``postgresql://`` (the form SQLAlchemy's and Optuna's docs show, which
  SQLAlchemy 2.1 maps to psycopg 3) and ``postgres://`` name the installed driver instead.
* Passwords: a password in a store URL is taken out of it as the `Stores` is made, and kept in this
  process only (`_PASSWORDS`). Every URL a `Stores` holds, and so the saved spec, the Optuna study,
  MLflow's params and whatever is printed or logged, is password-free; connections get the password
  back at connect time (a SQLAlchemy ``do_connect`` hook, or ``$PGPASSWORD`` for a child process).
  `display` shows a URL with its password as ``***``; `scrub` blanks known passwords in any text.
* `preflight`: each configured store is checked reachable and usable before anything is created or
  written; each failure is one line naming the setting, the host (password masked), the cause and
  the fix, raised as `StoreError` (the CLI prints it and exits 2).

Import-light: SQLAlchemy, the database drivers and pyarrow are imported only where they are used
(the checks, the connect hook).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Mapping

from sweeps.errors import StoreError, spec_fail
from sweeps.stores.paths import DEFAULT_ROOT, sqlite_file

__all__ = ["STORE_ENV", "Stores", "normalize_url", "display", "redact", "scrub", "preflight",
           "secret_env", "password_env", "install_log_scrubber"]

log = logging.getLogger(__name__)

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
# Passwords a driver hands to its trials (with their parameters, never on disk): {"user@host:port": pw}.
SECRETS_ENV = "SPARSE_SWEEPS_STORE_PASSWORDS"
PASSWORD_ENVS = ("PGPASSWORD", "MYSQL_PWD", "MLFLOW_TRACKING_PASSWORD")  # read by drivers/clients themselves
CHECK_TIMEOUT_S = 5.0


# -- passwords ------------------------------------------------------------------------------------

_PASSWORDS: dict[str, str] = {}  # "user@host:port" -> password, this process only
_lock = threading.Lock()
_hook_installed = False


def _key(user: str | None, host: str | None, port: int | str | None) -> str:
    return f"{user or ''}@{(host or '').lower()}:{port or ''}"


def _split(url: str) -> tuple[urllib.parse.SplitResult, str | None] | None:
    """(parts, password) of a URL with a host part, None for paths and host-less URIs."""
    if "://" not in url:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return None
    return parts, (urllib.parse.unquote(parts.password) if parts.password is not None else None)


def _netloc(parts: urllib.parse.SplitResult, password: str | None) -> str:
    user = parts.netloc.rpartition("@")[0].partition(":")[0] if "@" in parts.netloc else ""
    hostport = parts.netloc.rpartition("@")[2]
    if not user and password is None:
        return hostport
    return f"{user}{'' if password is None else ':' + password}@{hostport}"


def _strip_password(url: str) -> str:
    """``url`` without its password, which is kept for this process's connections."""
    split = _split(url)
    if split is None or split[1] is None:
        return url
    parts, password = split
    user = urllib.parse.unquote(parts.username or "")
    with _lock:
        _PASSWORDS[_key(user, parts.hostname, parts.port)] = password
    if parts.scheme in ("http", "https"):  # MLflow's client reads basic-auth credentials from these
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", user)
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", password)
    else:
        _install_hook()
    return urllib.parse.urlunsplit(parts._replace(netloc=_netloc(parts, None)))


def _password_for(url: str) -> str | None:
    split = _split(url)
    if split is None:
        return None
    parts, inline = split
    if inline is not None:
        return inline
    return _PASSWORDS.get(_key(urllib.parse.unquote(parts.username or ""), parts.hostname, parts.port))


def display(url: str | None) -> str:
    """The URL as it may be shown: its password (inline or known to this process) as ``***``."""
    if not url:
        return str(url)
    split = _split(url)
    if split is None or _password_for(url) is None:
        return url
    return urllib.parse.urlunsplit(split[0]._replace(netloc=_netloc(split[0], "***")))


_CREDENTIALS = re.compile(r"(\w[\w+.-]*://[^/:@\s]*):[^@/\s]+@")


def redact(value: Any) -> Any:
    """The same structure with passwords in URLs (``scheme://user:PASSWORD@host``) replaced by ***."""
    if isinstance(value, str):
        return scrub(_CREDENTIALS.sub(r"\1:***@", value))
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _known_secrets() -> list[str]:
    secrets = list(_PASSWORDS.values()) + [os.environ.get(v, "") for v in PASSWORD_ENVS]
    return sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)  # shorter ones would mangle text


def scrub(text: str) -> str:
    """``text`` with every password known to this process (store URLs, $PGPASSWORD, ...) as ***."""
    text = _CREDENTIALS.sub(r"\1:***@", text)
    for secret in _known_secrets():
        text = text.replace(secret, "***")
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def install_log_scrubber() -> None:
    """Blank known passwords in every record the root logger's handlers emit (the CLI calls it)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter())


def _load_env_secrets() -> None:
    """Passwords from the $SPARSE_SWEEPS_* store variables and from what a driver handed its trials."""
    raw = os.environ.get(SECRETS_ENV, "")
    if raw:
        try:
            found = json.loads(raw)
        except ValueError:
            found = {}
        if found:
            with _lock:
                _PASSWORDS.update({str(k): str(v) for k, v in found.items()})
            _install_hook()
    for name in _URL_FIELDS:
        value = os.environ.get(STORE_ENV[name], "").strip()
        if value:
            _strip_password(normalize_url(value))


def secret_env() -> dict[str, str]:
    """What a trial needs, with its parameters, to connect where this driver does: the store
    passwords this process knows (never written to disk: Ray keeps parameters in memory)."""
    return {SECRETS_ENV: json.dumps(_PASSWORDS)} if _PASSWORDS else {}


def password_env(url: str) -> dict[str, str]:
    """Environment for a child process (an `mlflow server`) that connects to ``url``: its password
    as $PGPASSWORD / $MYSQL_PWD, so it never appears on a command line."""
    password = _password_for(url)
    if password is None:
        return {}
    return {"MYSQL_PWD": password} if url.startswith("mysql") else {"PGPASSWORD": password}


def _install_hook() -> None:
    """Give each SQLAlchemy connection (Optuna's, MLflow's) the password of its user@host:port."""
    global _hook_installed
    if _hook_installed:
        return
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:  # no SQLAlchemy in this process: nothing connects through it
        return

    def inject(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if cparams.get("password") or cparams.get("passwd"):
            return
        user = cparams.get("user") or cparams.get("username")
        password = _PASSWORDS.get(_key(user, cparams.get("host"), cparams.get("port")))
        if password is not None:
            cparams["password"] = password

    event.listen(Engine, "do_connect", inject)
    _hook_installed = True


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
                object.__setattr__(self, name, _strip_password(normalize_url(value.strip())))

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


# -- pre-flight checks ----------------------------------------------------------------------------

def _setting(name: str) -> str:
    return f"stores.{name} (${STORE_ENV[name]})"


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
    _install_hook()
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
    answers: the one health check of the service (preflight, `tracking.check_reachable`, the UI)."""
    import urllib.error
    import urllib.request  # here: with http.client and email, 0.05 s every command would pay

    health = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout) as r:  # noqa: S310 (URI from the spec)
            if r.status == 200:
                return None
            return f"MLflow at {display(url)} answered {r.status} on /health; check it is an MLflow tracking server"
    except urllib.error.HTTPError as e:
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
            problems.append(f"{_setting(name)}: no answer within {timeout:.0f}s; check the host and network")
        elif results[name]:
            problems.append(f"{_setting(name)}: {results[name]}")
    if problems:
        raise StoreError("\n".join(problems))

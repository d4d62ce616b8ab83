"""The three stores of a sweep, and everything read from the environment about them.

* `Stores`: where results go (Ray storage, MLflow tracking and artifacts, the Optuna study), each
  field falling back on its ``$SPARSE_SWEEPS_*`` variable (`STORE_ENV`), then on the embedded default.
* URL normalisation: ``postgresql://`` (the form SQLAlchemy's and Optuna's docs show, which
  SQLAlchemy 2.1 maps to psycopg 3) and ``postgres://`` name the installed driver instead.
* Passwords: a password in a store URL (inline or a ``?password=`` parameter) is taken out of it as
  the `Stores` is made, and kept in this process only (`_PASSWORDS`). URLs are read by a real
  parser: SQLAlchemy's ``make_url`` for databases (what its engines read is what is masked), the
  RFC 3986 authority for http(s) and buckets; a user part that cannot be read unambiguously (an
  unencoded ``@``, several hosts) is refused in one line that never shows the URL. Every URL a
  `Stores` holds, and so the saved spec, the Optuna study, MLflow's params and whatever is printed
  or logged, is password-free; connections get the password back at connect time (a SQLAlchemy
  ``do_connect`` hook, or ``$PGPASSWORD`` for a child process); trials get them in memory with
  their parameters (`trial_secrets`, `remember_secrets`), never in their environment.
  `display` shows a URL with its password as ``***``; `scrub` blanks credentials in URLs and every
  known password (as written and percent-encoded) in any text.
* `preflight`: each configured store is checked reachable and usable before anything is created or
  written; each failure is one line naming the setting, the host (password masked), the cause and
  the fix, raised as `StoreError` (the CLI prints it and exits 2).

Import-light: SQLAlchemy, the database drivers and pyarrow are imported only where they are used
(the checks, the connect hook).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from sweeps.errors import SpecError, StoreError, spec_fail
from sweeps.stores.paths import DEFAULT_ROOT, sqlite_file

__all__ = ["STORE_ENV", "Stores", "normalize_url", "display", "redact", "scrub", "preflight",
           "trial_secrets", "remember_secrets", "clean_env_value", "password_env", "install_log_scrubber",
           "store_problem"]

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
PASSWORD_ENVS = ("PGPASSWORD", "MYSQL_PWD", "MLFLOW_TRACKING_PASSWORD")  # read by drivers/clients themselves
CHECK_TIMEOUT_S = 5.0


# -- passwords ------------------------------------------------------------------------------------

_PASSWORDS: dict[str, str] = {}  # "user@host:port" -> password, this process only
_RAW: set[str] = set()  # the passwords as written in URLs (percent-encoded or not), to blank in any text
_lock = threading.Lock()
_hook_installed = False
_QUERY_SECRETS = ("password", "passwd", "pwd")  # query parameters SQLAlchemy's drivers read as the password
_NO_CREDENTIALS = ("sqlite",)


class _Parsed(NamedTuple):
    clean: str  # the URL without its password (inline or as a query parameter)
    masked: str  # the URL with its password (inline or known to this process) as ***
    key: str  # "user@host:port": what a connection presents
    password: str | None  # as the driver gets it (percent-decoded)
    raw: tuple[str, ...]  # as written in the URL


def _key(user: str | None, host: str | None, port: int | str | None) -> str:
    return f"{user or ''}@{(host or '').lower()}:{port or ''}"


def _unparseable(setting: str, why: str) -> SpecError:
    # The URL itself is never shown: it may hold the password that could not be found in it.
    return SpecError(f"{setting}: the URL's user and password cannot be parsed ({why}); percent-encode the "
                     f"password's special characters (@ as %40, / as %2F, ? as %3F, # as %23, % as %25) or leave it "
                     f"out of the URL and set $PGPASSWORD (databases) or $MLFLOW_TRACKING_PASSWORD (MLflow)")


def _raw_query_password(url: str) -> list[str]:
    return re.findall(r"[?&](?:%s)=([^&#]*)" % "|".join(_QUERY_SECRETS), url, flags=re.IGNORECASE)


def _parse_db(url: str, setting: str) -> _Parsed | None:
    """A database URL as SQLAlchemy reads it (``dialect+driver://user:password@host:port/db?query``)."""
    from sqlalchemy.engine.url import URL, make_url  # the parser its engines use: what connects is what is masked

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001  (ValueError, ArgumentError: a port that is no number, several hosts)
        if "@" in url:
            raise _unparseable(setting, "SQLAlchemy cannot read it: an unencoded @ in the password, several hosts, "
                                        "or a port that is no number") from None
        return None
    if "@" in (u.host or "") or "@" in (u.database or ""):  # alice:pa@ss@host, alice:pa@ss/wd@host
        raise _unparseable(setting, "an unencoded @ in the password")
    query = {k: v for k, v in u.query.items() if k.lower() not in _QUERY_SECRETS}
    found = [v for k, v in u.query.items() if k.lower() in _QUERY_SECRETS]
    password = u.password if u.password is not None else next(
        (v if isinstance(v, str) else v[0] for v in found), None)
    if u.username is None and password is None:
        return None
    raw = list(_raw_query_password(url))
    inline = re.match(r"[^:/]+://[^:/@]*:([^@]*)@", url)
    if u.password is not None and inline:
        raw.append(inline.group(1))
    clean = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, query)
    shown = clean.set(password="***")  # rendered with the password hidden: ***
    return _Parsed(clean.render_as_string(hide_password=False), shown.render_as_string(hide_password=True),
                   _key(u.username, u.host, u.port), password, tuple(raw))


def _parse_web(url: str, setting: str) -> _Parsed | None:
    """An http(s)/s3/gs URL: ``scheme://user:password@host:port/path?query`` (the authority ends at
    the first ``/``, ``?`` or ``#``, as RFC 3986 and urllib read it)."""
    scheme, _, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority:
        if "@" in tail:  # e.g. http://alice:pa/ss@host: the authority ended inside the password
            raise _unparseable(setting, "an @ after the host: a password holding / ? or # must be percent-encoded")
        return None
    userinfo, _, hostport = authority.rpartition("@")
    user, colon, written = userinfo.partition(":")
    try:
        parts = urllib.parse.urlsplit(f"//{hostport}")
        port = parts.port
    except ValueError:
        raise _unparseable(setting, "the port after the host is not a number") from None
    password = urllib.parse.unquote(written) if colon else None
    clean_tail = re.sub(r"([?&])(?:%s)=[^&#]*&?" % "|".join(_QUERY_SECRETS), r"\1", tail, flags=re.IGNORECASE)
    clean_tail = re.sub(r"[?&]$", "", clean_tail)
    clean = f"{scheme}://{user}@{hostport}{clean_tail}" if user else f"{scheme}://{hostport}{clean_tail}"
    masked = f"{scheme}://{user}:***@{hostport}{clean_tail}"
    return _Parsed(clean, masked, _key(urllib.parse.unquote(user), parts.hostname, port), password,
                   tuple(([written] if colon else []) + _raw_query_password(url)))


def _parse(url: str, setting: str = "store URL") -> _Parsed | None:
    """The URL's parts, None for a path or a URL without a user (``sqlite:///...``, ``s3://bucket``).
    Raises `SpecError` (one line naming ``setting``, never the URL) when a user part is there but
    cannot be read unambiguously: its password could not be masked."""
    if "://" not in url:
        return None
    scheme = url.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] in _NO_CREDENTIALS:
        return None
    if scheme in ("http", "https", "s3", "gs", "gcs", "file", "mlflow-artifacts"):
        return _parse_web(url, setting)
    return _parse_db(url, setting)


def _remember(parsed: _Parsed) -> None:
    with _lock:
        if parsed.password is not None:
            _PASSWORDS[parsed.key] = parsed.password
            _RAW.add(parsed.password)
        _RAW.update(parsed.raw)


def _strip_password(url: str, setting: str = "store URL") -> str:
    """``url`` without its password (inline or ``?password=``), which is kept for this process's
    connections. Raises `SpecError` when the URL's credentials cannot be parsed."""
    parsed = _parse(url, setting)
    if parsed is None or parsed.password is None:
        return url
    _remember(parsed)
    if url.startswith(("http://", "https://")):  # MLflow's client reads basic-auth credentials from these
        user = parsed.key.rpartition("@")[0]
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", user)
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", parsed.password)
    else:
        _install_hook()
    return parsed.clean


def _safe_parse(url: str) -> _Parsed | None:
    try:
        return _parse(url)
    except SpecError:
        return None


def _password_for(url: str) -> str | None:
    parsed = _safe_parse(url)
    if parsed is None:
        return None
    return parsed.password if parsed.password is not None else _PASSWORDS.get(parsed.key)


def display(url: str | None) -> str:
    """The URL as it may be shown: its password (inline, as a query parameter, or known to this
    process) as ``***``; a URL whose credentials cannot be parsed is not shown at all."""
    if not url:
        return str(url)
    try:
        parsed = _parse(url)
    except SpecError:
        return url.split("://", 1)[0] + "://(not shown: its credentials cannot be parsed)"
    if parsed is None or (parsed.password is None and parsed.key not in _PASSWORDS):
        return url
    return parsed.masked


# scheme://user:PASSWORD@ up to the last @ of the word (a password may hold / ? # : and @ unencoded),
# and a password=... query parameter.
_CREDENTIALS = re.compile(r"(\w[\w+.-]*://[^\s/:@?#]*):\S*@")
_QUERY_CREDENTIALS = re.compile(r"([?&](?:%s)=)[^&\s#'\"]*" % "|".join(_QUERY_SECRETS), re.IGNORECASE)


def redact(value: Any) -> Any:
    """The same structure with passwords in URLs (``scheme://user:PASSWORD@host``, ``?password=``)
    and every password this process knows replaced by ***."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _known_secrets() -> list[str]:
    secrets = list(_PASSWORDS.values()) + list(_RAW) + [os.environ.get(v, "") for v in PASSWORD_ENVS]
    return sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)  # shorter ones would mangle text


def scrub(text: str) -> str:
    """``text`` with credentials in URLs and every password known to this process (store URLs,
    $PGPASSWORD, ...), as written or percent-encoded, as ***."""
    text = _CREDENTIALS.sub(r"\1:***@", text)
    text = _QUERY_CREDENTIALS.sub(r"\1***", text)
    for secret in _known_secrets():
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            text = text.replace(form, "***")
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
    """Passwords in the $SPARSE_SWEEPS_* store variables move to this process's memory: the variable
    keeps the URL without it, so no process started from here (Ray, its workers, trials) inherits it."""
    for name in _URL_FIELDS:
        var = STORE_ENV[name]
        value = os.environ.get(var, "").strip()
        if value:
            clean = _strip_password(normalize_url(value), _setting(name))
            if clean != normalize_url(value):
                os.environ[var] = clean


def trial_secrets() -> dict[str, str]:
    """What a trial needs, with its parameters, to connect where this driver does: the store
    passwords this process knows. Ray keeps parameters in memory; a trial hands them to
    `remember_secrets`, never to its environment."""
    with _lock:
        return dict(_PASSWORDS)


def remember_secrets(secrets: Mapping[str, str]) -> None:
    """Take the driver's store passwords (`trial_secrets`) into this process's memory."""
    if not secrets:
        return
    with _lock:
        _PASSWORDS.update({str(k): str(v) for k, v in secrets.items()})
        _RAW.update(str(v) for v in secrets.values())
    _install_hook()


def clean_env_value(name: str, value: str) -> str:
    """A $SPARSE_SWEEPS_* value as it may be handed on: a store URL without its password."""
    field = next((f for f, var in STORE_ENV.items() if var == name), None)
    if field not in _URL_FIELDS:
        return value
    return _strip_password(normalize_url(value.strip()), _setting(field))


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
                object.__setattr__(self, name, _strip_password(normalize_url(value.strip()), _setting(name)))

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


def store_problem(name: str, uri: str) -> str | None:
    """One store's check (``name`` a `Stores` field), as `preflight` words it; None if it passes."""
    for check_name, check in _checks(Stores(**{name: uri})):
        if check_name == name and (problem := check()):
            return f"{_setting(name)}: {problem}"
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
            problems.append(f"{_setting(name)}: no answer within {timeout:.0f}s; check the host and network")
        elif results[name]:
            problems.append(f"{_setting(name)}: {results[name]}")
    if problems:
        raise StoreError("\n".join(problems))

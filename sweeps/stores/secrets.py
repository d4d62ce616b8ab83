"""Store passwords: parsed out of URLs, kept in this process's memory, blanked in whatever is shown.

A password in a store URL (inline or a ``?password=`` parameter) is taken out of it as the URL is
read (`strip_password`, called as a `sweeps.stores.config.Stores` is made), and kept in this
process only (`_PASSWORDS`). URLs are read by a real parser: SQLAlchemy's ``make_url`` for
databases (what its engines read is what is masked), the RFC 3986 authority for http(s) and
buckets; a user part that cannot be read unambiguously (an unencoded ``@``, several hosts) is
refused in one line that never shows the URL. Connections get the password back at connect time
(a SQLAlchemy ``do_connect`` hook, `install_hook`, or ``$PGPASSWORD`` for a child process,
`password_env`); an http(s) MLflow server gets them as an ``Authorization`` header, built per
request for that server alone (`web_credentials`, `authorization`: MLflow's request-auth plugin in
`sweeps.tracking.auth`, and the health check of `sweeps.stores.preflight`), never through
``$MLFLOW_TRACKING_PASSWORD``, which every child process would inherit; trials get them in memory with their parameters (`trial_secrets`,
`remember_secrets`), never in their environment. `display` shows a URL with its password as
``***``; `scrub` blanks credentials in URLs and every known password (as written and
percent-encoded) in any text; `redact` does both over a nested structure.

Import-light: SQLAlchemy is imported only where it is used.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import urllib.parse
from typing import Any, Mapping, NamedTuple

from sweeps.errors import SpecError

__all__ = ["strip_password", "display", "redact", "scrub", "install_log_scrubber", "trial_secrets",
           "remember_secrets", "password_env", "install_hook", "web_credentials", "authorization",
           "without_userinfo", "PASSWORD_ENVS"]

PASSWORD_ENVS = ("PGPASSWORD", "MYSQL_PWD", "MLFLOW_TRACKING_PASSWORD")  # read by drivers/clients themselves


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


def strip_password(url: str, setting: str = "store URL") -> str:
    """``url`` without its password (inline or ``?password=``), which is kept for this process's
    connections. Raises `SpecError` when the URL's credentials cannot be parsed."""
    parsed = _parse(url, setting)
    if parsed is None or parsed.password is None:
        return url
    _remember(parsed)
    if not url.startswith(("http://", "https://")):  # http(s): a header per request (`authorization`), never os.environ
        install_hook()
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


def trial_secrets(*urls: str | None) -> dict[str, str]:
    """What a trial needs, with its parameters, to connect where this driver does: the store
    passwords this process knows, and for each database URL of ``urls`` without one, the password
    its driver reads from this process's environment ($PGPASSWORD, $MYSQL_PWD), keyed to that URL's
    user@host:port alone: a trial on another node has neither. Ray keeps parameters in memory; a
    trial hands them to `remember_secrets`, never to its environment."""
    with _lock:
        out = dict(_PASSWORDS)
    for url in urls:
        parsed = _safe_parse(url) if url else None
        if parsed is None or parsed.password is not None or parsed.key in out or "://" not in url:
            continue
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
        var = {"postgresql": "PGPASSWORD", "postgres": "PGPASSWORD", "mysql": "MYSQL_PWD"}.get(scheme)
        if var and os.environ.get(var):
            out[parsed.key] = os.environ[var]
    return out


def remember_secrets(secrets: Mapping[str, str]) -> None:
    """Take the driver's store passwords (`trial_secrets`) into this process's memory."""
    if not secrets:
        return
    with _lock:
        _PASSWORDS.update({str(k): str(v) for k, v in secrets.items()})
        _RAW.update(str(v) for v in secrets.values())
    install_hook()


def _web_key(url: str) -> tuple[str, str] | None:
    """(user, "host:port") of an http(s) URL; None for anything else."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return urllib.parse.unquote(parts.username or ""), f"{parts.hostname.lower()}:{port or ''}"


def web_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) this process holds for the http(s) server of ``url``: its user's at its
    host and port, or, for a URL naming no user, the one user known there. None otherwise."""
    found = _web_key(url)
    if found is None:
        return None
    user, hostport = found
    with _lock:
        if user:
            password = _PASSWORDS.get(f"{user}@{hostport}")
            return None if password is None else (user, password)
        known = [(k.rpartition("@")[0], v) for k, v in _PASSWORDS.items() if k.rpartition("@")[2] == hostport]
    return known[0] if len(known) == 1 else None


def authorization(url: str) -> str | None:
    """The ``Authorization`` header (HTTP basic) for ``url``'s server, None when no password is known."""
    import base64

    creds = web_credentials(url)
    if creds is None:
        return None
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode("ascii")


def without_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part (what an HTTP client may send)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return f"{scheme}://{rest[:end].rpartition('@')[2]}{rest[end:]}"


def password_env(url: str) -> dict[str, str]:
    """Environment for a child process (an `mlflow server`) that connects to ``url``: its password
    as $PGPASSWORD / $MYSQL_PWD, so it never appears on a command line."""
    if url.startswith(("http://", "https://")):  # a web server's password is a request header, never a variable
        return {}
    password = _password_for(url)
    if password is None:
        return {}
    return {"MYSQL_PWD": password} if url.startswith("mysql") else {"PGPASSWORD": password}


def install_hook() -> None:
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

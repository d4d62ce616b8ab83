"""Loopback cluster pieces for the multi-node test and `benchmarks/bench_cluster.py`: a throwaway
PostgreSQL, an MLflow tracking server on it, and Ray nodes started with `ray start`.

Everything listens on 127.0.0.1 only, every wait is bounded, and each piece is stopped through what
it started: its own process group (each `ray start --block` / `mlflow server` runs in a new session)
and, for PostgreSQL, `pg_ctl stop` on its own data folder. Nothing here calls `ray stop`, which
would stop every Ray instance on the machine, other users' included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent  # the venv's bin: ray, mlflow, sweeps
# No telemetry from any piece (the network rule: loopback only). The two-node cluster runs without
# Ray's token auth: with it, its worker node twice failed to reach the head's GCS on a busy 2-core
# machine (cause not found yet); `TOKEN_ENV` turns it on (tests/test_jobs.py's head uses it).
QUIET_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A node's raylet gives its agents 30 s to come up, then aborts: on 2 busy cores the dashboard
    # agent (the job server's) can take longer.
    "RAY_agent_register_timeout_ms": "180000",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}


TOKEN_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}  # one token per test process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `python` on a node (a job's entrypoint): the venv's
    env.update(extra)
    return env


def without_sweeps_env(env: dict[str, str]) -> dict[str, str]:
    """The environment minus every SPARSE_SWEEPS_* variable: Ray nodes started with it can only
    read the data root if the driver passes it on (with each trial's parameters)."""
    return {k: v for k, v in env.items() if not k.startswith("SPARSE_SWEEPS_")}


def _wait(what: str, check, timeout: float, interval: float = 0.5, proc: subprocess.Popen | None = None,
          log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}{_tail(log)}")
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s{_tail(log)}")


def _tail(log: Path | None, n: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return f"\n--- {log} (tail) ---\n" + log.read_text(errors="replace")[-n:]


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _live() -> dict[int, tuple[str, int, int, int]]:
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        st = _stat(int(d.name))
        if st and st[0] != "Z":
            out[int(d.name)] = st
    return out


# A process is named by (pid, start time), so a pid reused after its process exited is never hit.
Proc = tuple[int, int]


def descendants(pid: int) -> set[Proc]:
    """Every live process below ``pid``. Ray's raylet puts each worker in a process group of its
    own, so a process group alone misses the trial workers."""
    live = _live()
    children: dict[int, list[int]] = {}
    for p, st in live.items():
        children.setdefault(st[1], []).append(p)
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if (c, live[c][3]) not in out:
                out.add((c, live[c][3]))
                todo.append(c)
    return out


def tree(pid: int) -> set[Proc]:
    """``pid``, its process group and everything below it."""
    live = _live()
    own = {(p, st[3]) for p, st in live.items() if st[2] == pid or p == pid}
    return own | descendants(pid)


def alive(procs: set[Proc]) -> set[Proc]:
    live = _live()
    return {(p, t) for p, t in procs if p in live and live[p][3] == t}


def gone(procs: set[Proc], timeout: float) -> set[Proc]:
    """Wait up to ``timeout`` s for ``procs`` to end; returns those still alive."""
    deadline = time.monotonic() + timeout
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(procs)


def ray_up(procs: set[Proc]) -> bool:
    """Whether a local Ray's servers (GCS and raylet) are among ``procs`` and alive."""
    names = set()
    for p, _ in alive(procs):
        with contextlib.suppress(OSError):
            names.add(Path(f"/proc/{p}/comm").read_text().strip())
    return {"raylet", "gcs_server"} <= names


def kill_pids(procs: set[Proc], sig: int = signal.SIGKILL) -> None:
    for p, _ in alive(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def sigterm_when(proc: subprocess.Popen, log: Path, ready: Callable[[set[Proc]], bool], what: str,
                 timeout: float = 240.0) -> None:
    """Wait until ``ready`` holds for the CLI process ``proc``'s tree, send SIGTERM to the CLI
    process alone (as a supervisor would), and assert that its whole tree (the driver, Ray's
    servers, agents and workers) ends within 15 s. Whatever is left is killed on the way out."""
    procs: set[Proc] = set()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            procs |= tree(proc.pid)
            if ready(procs):
                break
            time.sleep(0.3)
        assert proc.poll() is None, f"the sweep ended before {what}: " + log.read_text()[-3000:]
        procs |= tree(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        left = gone(procs, 15)
        assert not left, f"left behind after SIGTERM: {left}\n" + log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        kill_pids(procs)


def stop_tree(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """Stop a process started with start_new_session=True: its process group and every process
    below it (SIGTERM, then SIGKILL for what is left after ``timeout``)."""
    if proc is None:
        return
    targets = tree(proc.pid)  # before anything exits and is reparented
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        kill_pids(targets, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
        with contextlib.suppress(TimeoutError):
            _wait("processes to exit", lambda: not alive(targets), timeout=wait, interval=0.2)
        if not alive(targets):
            return


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_INSTALL_HINT = (
    "PostgreSQL is needed for the store and multi-node tests (Optuna and MLflow on a real server). "
    "The test set-up installs it: `bash scripts/setup.sh --test` (the `pgserver` wheel from "
    "requirements.lock, which ships initdb, pg_ctl and postgres). Tests never install anything."
)


def _pgserver_bin() -> Path | None:
    """The PostgreSQL binaries inside the `pgserver` wheel (requirements.lock), if installed."""
    from importlib.util import find_spec

    spec = find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def find_pg_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: the `pgserver` wheel's first, then a system
    install (Debian keeps them in /usr/lib/postgresql/VERSION/bin, not on PATH; elsewhere on PATH)."""
    candidates = [p for p in [_pgserver_bin()] if p is not None]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(Path(which).resolve().parent)
    for c in candidates:
        if all((c / exe).exists() for exe in ("initdb", "pg_ctl", "postgres")):
            return c
    return None


def ensure_postgres() -> Path:
    """The PostgreSQL bin folder; RuntimeError naming the set-up step when there is none (tests
    never install system packages)."""
    found = find_pg_bin()
    if found is None:
        raise RuntimeError(PG_INSTALL_HINT)
    return found


def _pg_owner() -> str:
    """The unprivileged user a root process runs PostgreSQL as (it refuses to run as root): Debian's
    `postgres` when its package is installed, else `nobody` (there on every Debian system)."""
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but there is no `postgres` or `nobody` user to run PostgreSQL as")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster in a fresh folder, on 127.0.0.1:port, password auth.
    As root it runs as an unprivileged user (`_pg_owner`: PostgreSQL refuses to run as root)."""

    bin_dir: Path
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sweeps-pg-")))
    port: int = field(default_factory=free_port)
    user: str = "sweeps"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    fast: bool = True  # fsync off: a test database, not a durable one
    started: bool = False
    host: str = LOOPBACK  # the one address it listens on
    clients: tuple[str, ...] = ()  # more networks (CIDR) allowed in, password auth: e.g. a test's veth /30

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return ["runuser", "-u", _pg_owner(), "--", *cmd]

    def _run(self, cmd: list[str], timeout: float = 120) -> None:
        proc = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C"))
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                               f"\n{proc.stderr[-2000:]}{_tail(self.log)}")

    def start(self) -> "Postgres":
        self.base.mkdir(parents=True, exist_ok=True)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam(_pg_owner())
            for p in (self.base, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)
        os.chmod(pwfile, 0o600)
        self._run([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile),
                   "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions"])
        if self.clients:  # initdb lets in 127.0.0.1 and ::1 only
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.writelines(f"host all all {net} scram-sha-256\n" for net in self.clients)
        opts = [f"-c listen_addresses={self.host}", f"-p {self.port}", f"-c unix_socket_directories={self.base}",
                "-c max_connections=200"]
        if self.fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", " ".join(opts),
                   "-w", "-t", "60", "start"])
        self.started = True
        return self

    def url(self, db: str = "postgres") -> str:
        """A URL without the password (it is logged with the spec): libpq reads $PGPASSWORD."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{db}"

    @property
    def env(self) -> dict[str, str]:
        """What every client of this server needs in its environment (as a cluster's secret would)."""
        return {"PGPASSWORD": self.password}

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname="postgres", connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)


# -- MLflow tracking server ------------------------------------------------------------------------

@dataclass
class MlflowServer:
    """`mlflow server` on a backend store (PostgreSQL here), serving artifacts from a local folder:
    clients upload artifacts over HTTP, so no node needs the folder mounted."""

    backend_uri: str
    artifacts: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # e.g. PGPASSWORD for the backend store
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    host: str = LOOPBACK  # the one address it listens on

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:  # noqa: S310 (loopback)
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 180, wait: bool = True) -> "MlflowServer":
        self.artifacts.mkdir(parents=True, exist_ok=True)
        cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", self.backend_uri,
               "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
               "--host", self.host, "--port", str(self.port), "--workers", "1"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **self.env))
        return self.wait(timeout) if wait else self

    def wait(self, timeout: float = 180) -> "MlflowServer":
        _wait("mlflow server /health", self._healthy, timeout, proc=self.proc, log=self.log)
        return self

    def stop(self) -> None:
        stop_tree(self.proc)
        self.proc = None


# -- Ray nodes -------------------------------------------------------------------------------------

@dataclass
class RayNode:
    """One `ray start --block` node in its own session, every port chosen here, 127.0.0.1 only."""

    num_cpus: int
    temp_dir: Path
    log: Path
    head_address: str | None = None  # None: this is the head
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    node_manager_port: int = 0
    gcs_port: int = 0
    dashboard_port: int = 0  # the head only: > 0 starts Ray's dashboard (the job server) on 127.0.0.1
    node_ip: str = LOOPBACK  # the node's address (--node-ip-address)
    wrap: list[str] = field(default_factory=list)  # a command prefix: e.g. a network namespace's `ip netns exec`

    @property
    def is_head(self) -> bool:
        return self.head_address is None

    @property
    def address(self) -> str:
        return f"{self.node_ip}:{self.gcs_port}" if self.is_head else str(self.head_address)

    def start(self) -> "RayNode":
        ports = free_ports(9)
        self.gcs_port = ports[0] if self.is_head else 0
        self.node_manager_port = ports[1]
        cmd = [str(BIN / "ray"), "start", "--block", "--num-cpus", str(self.num_cpus), "--num-gpus", "0",
               "--node-ip-address", self.node_ip, "--node-manager-port", str(ports[1]),
               "--object-manager-port", str(ports[2]), "--dashboard-agent-listen-port", str(ports[3]),
               "--dashboard-agent-grpc-port", str(ports[4]), "--metrics-export-port", str(ports[5]),
               "--runtime-env-agent-port", str(ports[6]), "--object-store-memory", str(200 * 1024**2),
               "--disable-usage-stats", "--log-style", "record"]
        if self.is_head:
            cmd += ["--head", "--port", str(self.gcs_port), "--temp-dir", str(self.temp_dir)]
            cmd += (["--include-dashboard", "true", "--dashboard-host", LOOPBACK, "--dashboard-port",
                     str(self.dashboard_port)] if self.dashboard_port else ["--include-dashboard", "false"])
        else:
            cmd += ["--address", str(self.head_address)]
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*self.wrap, *cmd], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=self.env or base_env())
        return self

    def kill(self) -> None:
        """Lose the node at once: SIGKILL to its raylet, agents and workers (its process group)."""
        if self.proc is not None:
            kill_pids(tree(self.proc.pid))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        # Ray's daemons take tens of seconds over SIGTERM; the node is throwaway, so not long.
        stop_tree(self.proc, timeout=3.0)
        self.proc = None


def _listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def _ask_cluster(body: str, address: str, env: dict[str, str], timeout: float) -> Any:
    """What ``body`` prints as JSON (one line) in a short-lived driver of the cluster at ``address``
    (keeps Ray out of this process); None when it cannot answer."""
    if not _listening(address):
        return None  # the GCS is not up yet
    snippet = ("import json, sys, ray\n"
               "ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR')\n"
               f"{body}\nray.shutdown()\n")
    try:
        proc = subprocess.run([sys.executable, "-c", snippet, address], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    line = [x for x in proc.stdout.splitlines() if x.startswith(("[", "{"))]
    return json.loads(line[-1]) if proc.returncode == 0 and line else None


def alive_nodes(address: str, env: dict[str, str], timeout: float = 60) -> list[dict[str, Any]]:
    """The cluster's live nodes."""
    return _ask_cluster(
        'print(json.dumps([{"node_id": n["NodeID"], "node_manager_port": n["NodeManagerPort"],\n'
        '                   "node_ip": n.get("NodeManagerAddress"), "resources": n.get("Resources", {})}\n'
        '                  for n in ray.nodes() if n.get("Alive")]))', address, env, timeout) or []


def free_cpus(address: str, env: dict[str, str], timeout: float = 60) -> float:
    """The cluster's CPUs no task or actor holds now (0 when it cannot be asked)."""
    answer = _ask_cluster('print(json.dumps({"cpus": ray.available_resources().get("CPU", 0.0)}))', address, env,
                          timeout)
    return float(answer["cpus"]) if answer else 0.0


@dataclass
class LoopbackCluster:
    """A Ray head and worker on this machine (1 CPU each), started with `ray start`."""

    base: Path
    env: dict[str, str]
    cpus_per_node: int = 1
    head: RayNode | None = None
    worker: RayNode | None = None
    node_ids: dict[str, str] = field(default_factory=dict)  # "head"/"worker" -> Ray node id

    @property
    def address(self) -> str:
        assert self.head is not None
        return self.head.address

    def start(self, timeout: float = 180) -> "LoopbackCluster":
        # A quick verdict on a lost node (default: about 15-30 s of missed health checks).
        head_env = dict(self.env, RAY_health_check_initial_delay_ms="1000", RAY_health_check_period_ms="1000",
                        RAY_health_check_timeout_ms="1000", RAY_health_check_failure_threshold="3")
        self.head = RayNode(self.cpus_per_node, self.base / "ray-tmp", self.base / "ray-head.log", env=head_env).start()
        _wait("ray head (GCS port)", lambda: _listening(self.head.address), timeout, proc=self.head.proc,
              log=self.head.log)
        self.worker = RayNode(self.cpus_per_node, self.base / "ray-tmp", self.base / "ray-worker.log",
                              head_address=self.head.address, env=self.env).start()
        nodes = _wait("ray worker node", lambda: (lambda n: n if len(n) >= 2 else None)(
            alive_nodes(self.head.address, self.env)), timeout, interval=2, proc=self.worker.proc, log=self.worker.log)
        for n in nodes:
            if n["node_manager_port"] == self.head.node_manager_port:
                self.node_ids["head"] = n["node_id"]
            elif n["node_manager_port"] == self.worker.node_manager_port:
                self.node_ids["worker"] = n["node_id"]
        if set(self.node_ids) != {"head", "worker"}:
            raise RuntimeError(f"unexpected nodes in the cluster at {self.address}: {nodes}")
        return self

    def stop(self) -> None:
        # Worker first, then the head (its GCS): each by its own process group.
        for node in (self.worker, self.head):
            if node is not None:
                node.stop()


def logs_tail(*paths: Path, n: int = 2000) -> str:
    return "".join(_tail(p, n) for p in paths)


# -- what listens ----------------------------------------------------------------------------------

def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _hex_address(text: str) -> str:
    """/proc/net/tcp's address field as an IP: 0100007F -> 127.0.0.1; the v6 form too."""
    import ipaddress

    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    addr = ipaddress.IPv6Address(words)
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def listeners(pids: set[int]) -> set[tuple[str, int, int, str]]:
    """(address, port, pid, command) of every TCP socket in LISTEN state held by these processes."""
    owner: dict[str, int] = {}
    for pid in pids:
        for inode in _socket_inodes(pid):
            owner[inode] = pid
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 10 or fields[3] != "0A" or fields[9] not in owner:  # 0A: LISTEN
                continue
            host, port = fields[1].rsplit(":", 1)
            pid = owner[fields[9]]
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                comm = "?"
            out.add((_hex_address(host), int(port, 16), pid, comm))
    return out


def is_loopback(address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address).is_loopback

"""The cluster configs in `cluster/` are checked, not just shipped:

* the Ray cluster launcher YAMLs validate against the JSON schema inside the installed `ray`
  package and pass Ray's own `ray up` checks (prepare_config + validate_config), with a CPU head,
  an autoscaling GPU worker type, the project's image and the stores' environment on every node;
* the KubeRay manifests have the fields KubeRay needs (and the same image, stores, GPU group);
* every `sweeps ...` command the configs, the Dockerfile and the guide run parses with the real CLI
  parser, every preset they name exists, and every `ray start` option is one Ray knows;
* cluster mode's rules for the stores (what is local to one machine, the shared-filesystem opt-in,
  the stores from the environment) and the environment passed on to trials.

Fast: nothing is started.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

import ray
from ray.autoscaler._private.util import prepare_config, validate_config

from sweeps.cli.commands import build_parser
from sweeps.spec import STORE_ENV, SpecError, Stores, load_spec, spec_preset_names

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
LAUNCHER = sorted(CLUSTER.glob("ray-*.yaml"))
KUBERAY = CLUSTER / "kuberay"
IMAGE = "ghcr.io/your-org/sparse-sweeps:0.1.0"
STORE_VARS = ("SPARSE_SWEEPS_MLFLOW_TRACKING_URI", "SPARSE_SWEEPS_OPTUNA_STORAGE", "SPARSE_SWEEPS_RAY_STORAGE")
SECRET_VARS = ("PGPASSWORD", "MLFLOW_TRACKING_PASSWORD", "RAY_AUTH_TOKEN", "MLFLOW_TRACKING_USERNAME")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def ray_groups(doc: dict) -> list[dict]:
    spec = cluster_spec(doc)
    if spec is None:
        return []
    return [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]


def cluster_spec(doc: dict) -> dict | None:
    if doc.get("kind") == "RayCluster":
        return doc["spec"]
    if doc.get("kind") == "RayJob":
        return doc["spec"]["rayClusterSpec"]
    return None


def manifests(kind: str) -> list[dict]:
    return [d for p in sorted(KUBERAY.glob("*.yaml")) for d in load_all(p) if d.get("kind") == kind]


# -- the commands the configs run --------------------------------------------------------------------

_SEPARATORS = re.compile(r"&&|\|\||;|\||`|\$\(|\)|\n")


def commands(text: str, program: str) -> list[list[str]]:
    """Invocations of ``program`` in a shell text: split at separators, then at redirections."""
    out = []
    for segment in _SEPARATORS.split(text):
        segment = segment.split(" #", 1)[0].strip()
        for prefix in ("RUN ", "exec ", "sudo ", "-- "):
            if segment.startswith(prefix):
                segment = segment[len(prefix):].strip()
        if "-- " in segment and segment.split("-- ", 1)[1].startswith(program + " "):
            segment = segment.split("-- ", 1)[1]  # kubectl exec ... -- sweeps ...
        try:
            words = shlex.split(segment)
        except ValueError:
            continue
        words = [w for w in words]
        cut = next((i for i, w in enumerate(words) if w in (">", ">>", "2>", "2>&1") or w.startswith((">", "2>"))), None)
        words = words[:cut] if cut is not None else words
        if words and words[0] == program:
            out.append(words[1:])
    return out


def example_lines(path: Path) -> str:
    """The shell a file runs or shows: YAML string values, comment lines that are examples (indented
    after the '#'), Dockerfile RUN/CMD lines, and fenced code blocks of Markdown."""
    text = path.read_text()
    if path.suffix == ".md":
        return "\n".join(re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, flags=re.S))
    lines = [m.group(1) for m in re.finditer(r"^\s*#\s{2,}(.*)$", text, flags=re.M)]
    if path.suffix in (".yaml", ".yml"):
        for doc in load_all(path):
            lines.extend(strings(doc))
    else:  # Dockerfile
        lines.extend(re.findall(r"^(?:RUN|CMD)\s+(.*)$", text, flags=re.M))
        lines.extend(" ".join(json.loads(m)) for m in re.findall(r"^CMD\s+(\[.*\])$", text, flags=re.M))
    return "\n".join(lines)


CONFIG_FILES = [*LAUNCHER, *sorted(KUBERAY.glob("*.yaml")), CLUSTER / "Dockerfile", CLUSTER / "README.md"]


def sweeps_invocations() -> list[tuple[str, list[str]]]:
    return [(p.name, args) for p in CONFIG_FILES for args in commands(example_lines(p), "sweeps")]


def test_the_configs_run_sweeps_commands():
    found = {name for name, _ in sweeps_invocations()}
    # Each of these runs or shows `sweeps` somewhere: the check below is not vacuous.
    assert {"ray-aws.yaml", "ray-gcp.yaml", "rayjob.yaml", "Dockerfile", "README.md"} <= found, found


@pytest.mark.parametrize("source,args", sweeps_invocations(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_sweeps_command_parses_with_the_cli(source, args):
    if args in (["--help"], ["-h"]):
        return
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{source}: `sweeps {' '.join(args)}` does not parse with sweeps.cli.build_parser()")
    if ns.command == "run" and not ns.spec.endswith((".yaml", ".yml")):
        assert ns.spec in spec_preset_names(), f"{source}: preset {ns.spec!r} does not exist"
        load_spec(ns.spec)  # and it loads


def ray_start_invocations() -> list[tuple[str, list[str]]]:
    out = []
    for p in LAUNCHER:
        for args in commands(example_lines(p), "ray"):
            if args[:1] == ["start"]:
                out.append((p.name, args[1:]))
    for p in KUBERAY.glob("*.yaml"):
        for doc in load_all(p):
            for group in ray_groups(doc):
                params = group.get("rayStartParams") or {}
                out.append((p.name, [f"--{k}={v}" for k, v in params.items()]))
    return out


@pytest.mark.parametrize("source,args", ray_start_invocations(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_ray_start_option_exists(source, args):
    import click
    from ray.scripts.scripts import start

    try:
        start.make_context("start", list(args))
    except click.UsageError as e:
        pytest.fail(f"{source}: `ray start {' '.join(args)}`: {e}")


# -- Ray cluster launcher ------------------------------------------------------------------------------

def test_there_are_launcher_configs_for_aws_and_gcp():
    assert {load(p)["provider"]["type"] for p in LAUNCHER} == {"aws", "gcp"}


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_config_validates_against_rays_schema(path):
    import jsonschema

    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    assert schema_path.exists(), "the ray package ships ray/autoscaler/ray-schema.json"
    config = load(path)
    jsonschema.validate(config, json.loads(schema_path.read_text()))
    # What `ray up` does before anything else: fill the provider's defaults, validate again.
    validate_config(prepare_config(copy.deepcopy(config)))


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_has_a_cpu_head_and_autoscaling_gpu_workers(path):
    config = load(path)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("CPU") == 0, "trials must not land on the head (it runs the driver)"
    assert not head["resources"].get("GPU")
    gpu = [t for name, t in types.items() if name != config["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert len(gpu) == 1
    assert gpu[0]["min_workers"] == 0 and gpu[0]["max_workers"] >= 1
    assert config["max_workers"] >= gpu[0]["max_workers"]
    # mnist-paper's trials fit: its CPUs and GPU fraction per trial, on one GPU node.
    paper = load_spec("mnist-paper").resources
    per_gpu = int(1 / paper.gpus)
    assert gpu[0]["resources"]["CPU"] >= per_gpu * paper.cpus
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--num-cpus=0" in head_start
    assert "--dashboard-host=127.0.0.1" in head_start  # the dashboard only through the SSH tunnel


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_nodes_run_the_image_with_the_stores_environment(path):
    config = load(path)
    assert config["docker"]["image"] == IMAGE
    options = " ".join(config["docker"]["run_options"])
    for var in STORE_VARS:
        assert f"-e {var}=" in options, f"{var} is not set on the nodes"
    env = dict(re.findall(r"-e (\w+)=(\S+)", options))
    assert env["SPARSE_SWEEPS_MLFLOW_TRACKING_URI"].startswith("http")
    assert env["SPARSE_SWEEPS_OPTUNA_STORAGE"].startswith("postgresql")
    assert env["SPARSE_SWEEPS_RAY_STORAGE"].startswith(("s3://", "gs://"))
    assert env["RAY_AUTH_MODE"] == "token"
    stores = Stores(**{k: env[v] for k, v in STORE_ENV.items() if v in env})
    assert stores.local_only() == [] and stores.unshared_paths() == []  # cluster mode accepts them
    # Secrets come from an env file the hosts write from the cloud's secret store, not from here.
    for var in SECRET_VARS:
        assert f"{var}=" not in path.read_text()
    assert "--env-file" in options and config["initialization_commands"]


def test_aws_ssh_is_not_open_to_the_internet():
    config = load(CLUSTER / "ray-aws.yaml")
    for rule in config["provider"]["security_group"]["IpPermissions"]:
        for r in rule.get("IpRanges", []):
            assert r["CidrIp"] != "0.0.0.0/0"


# -- KubeRay ------------------------------------------------------------------------------------------

def test_there_is_a_raycluster_and_a_rayjob():
    assert len(manifests("RayCluster")) == 1 and len(manifests("RayJob")) == 1


@pytest.mark.parametrize("path", sorted(KUBERAY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_has_kind_api_version_and_name(path):
    for doc in load_all(path):
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc


@pytest.mark.parametrize("kind", ["RayCluster", "RayJob"])
def test_ray_cluster_spec_has_what_kuberay_needs(kind):
    doc = manifests(kind)[0]
    assert doc["apiVersion"] == "ray.io/v1"
    spec = cluster_spec(doc)
    assert spec["rayVersion"] == ray.__version__  # the image's Ray (the lock's)
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"  # dashboard via kubectl port-forward only
    assert isinstance(head["rayStartParams"], dict) and head["rayStartParams"].get("num-cpus") == "0"
    assert all(isinstance(v, str) for g in ray_groups(doc) for v in (g.get("rayStartParams") or {}).values())
    workers = spec["workerGroupSpecs"]
    assert len(workers) == 1
    gpu = workers[0]
    assert gpu["groupName"] and isinstance(gpu["rayStartParams"], dict)
    assert 0 == gpu["minReplicas"] <= gpu["replicas"] <= gpu["maxReplicas"] and gpu["maxReplicas"] >= 1
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) >= 1
    for group in ray_groups(doc):
        containers = group["template"]["spec"]["containers"]
        assert containers and all(c.get("name") and c.get("image") == IMAGE for c in containers)
        refs = {(k, v["name"]) for c in containers for e in c.get("envFrom", []) for k, v in e.items()}
        assert refs == {("configMapRef", "sparse-sweeps-stores"), ("secretRef", "sparse-sweeps-secrets")}
        mounts = {m["name"] for c in containers for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in group["template"]["spec"].get("volumes", [])}
        assert mounts <= set(volumes), f"mounted but not declared: {mounts - set(volumes)}"
        claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v}
        assert claims <= {d["metadata"]["name"] for d in manifests("PersistentVolumeClaim")}


def test_rayjob_runs_a_sweep_on_a_preset():
    job = manifests("RayJob")[0]["spec"]
    (args,) = commands(job["entrypoint"], "sweeps")
    ns = build_parser().parse_args(args)
    assert ns.command == "run" and ns.spec in spec_preset_names()
    assert job["shutdownAfterJobFinishes"] is True


def test_stores_configmap_points_at_servers_without_secrets():
    (cm,) = manifests("ConfigMap")
    assert cm["metadata"]["name"] == "sparse-sweeps-stores"
    data = cm["data"]
    stores = Stores(**{k: data[v] for k, v in STORE_ENV.items() if v in data})
    assert stores.local_only() == [] and stores.unshared_paths() == []
    for value in data.values():
        assert not re.search(r"://[^/@:]+:[^/@]+@", value), f"a password in {value!r}: use the Secret"
    assert not set(SECRET_VARS) & set(data)


# -- the image ------------------------------------------------------------------------------------------

def test_dockerfile_installs_the_project_from_the_lock_on_a_cuda_pytorch_image():
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, flags=re.M).group(1)
    assert base.startswith("pytorch/pytorch:") and "cuda" in base
    torch_pin = re.search(r"^torch==([\w.]+)\b", (REPO / "requirements.lock").read_text(), flags=re.M).group(1)
    assert base.split(":")[1].startswith(torch_pin + "-"), f"base {base} vs the lock's torch {torch_pin}"
    assert "pip install -r requirements.lock" in text and "pip install --no-deps -e ." in text
    for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", text, flags=re.M):
        for item in src.split():
            assert (REPO / item).exists(), f"COPY {item}: not in the repository"
    ignored = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and "sweeps-data" in ignored


def test_lock_has_a_postgresql_driver_for_cluster_stores():
    lock = (REPO / "requirements.lock").read_text()
    assert re.search(r"^psycopg2(-binary)?==", lock, flags=re.M), (
        "requirements.lock (and pyproject's dependencies) need psycopg2-binary: Optuna and MLflow on "
        "PostgreSQL, in the image and in CI's multi-node test")


# -- cluster mode's store rules ----------------------------------------------------------------------------

SERVERS = {"mlflow_tracking_uri": "http://mlflow:5000", "optuna_storage": "postgresql+psycopg2://sweeps@db/optuna"}


@pytest.mark.parametrize("stores,unshared", [
    (Stores(root="x"), ["stores.ray_storage"]),  # SQLite ones are local_only; the folder too
    (Stores(**SERVERS), ["stores.ray_storage"]),
    (Stores(**SERVERS, ray_storage="file:///scratch/ray"), ["stores.ray_storage"]),
    (Stores(**SERVERS, ray_storage="s3://b/ray"), []),
    (Stores(**SERVERS, ray_storage="gs://b/ray"), []),
    (Stores(**SERVERS, shared_filesystem=True), []),  # an NFS path mounted on every node
    (Stores(**SERVERS, ray_storage="s3://b/ray", mlflow_artifact_location="/mnt/art"), ["stores.mlflow_artifact_location"]),
    (Stores(**SERVERS, ray_storage="s3://b/ray", mlflow_artifact_location="s3://b/art"), []),
    # A database tracking URI (no server) leaves artifacts to a local ./mlruns: name it.
    (Stores(mlflow_tracking_uri="postgresql://db/mlflow", optuna_storage="postgresql://db/o", ray_storage="s3://b"),
     ["stores.mlflow_artifact_location"]),
])
def test_folders_other_nodes_cannot_see_are_named(stores, unshared):
    assert stores.unshared_paths() == unshared


def test_shared_filesystem_must_be_a_boolean():
    with pytest.raises(SpecError, match="stores.shared_filesystem"):
        Stores(shared_filesystem="yes")


def test_stores_come_from_the_environment_when_the_spec_leaves_them_empty(monkeypatch):
    monkeypatch.setenv("SPARSE_SWEEPS_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("SPARSE_SWEEPS_OPTUNA_STORAGE", "postgresql+psycopg2://sweeps@db/optuna")
    monkeypatch.setenv("SPARSE_SWEEPS_RAY_STORAGE", "s3://b/ray")
    spec = load_spec("mnist-quick")
    assert spec.stores.mlflow_tracking_uri == "http://mlflow:5000"
    assert spec.stores.local_only() == [] and spec.stores.unshared_paths() == []
    assert yaml.safe_load(spec.to_yaml())["stores"]["ray_storage"] == "s3://b/ray"  # the saved spec records them
    assert Stores(optuna_storage="sqlite:///x.db").optuna_storage == "sqlite:///x.db"  # the spec wins
    monkeypatch.setenv("SPARSE_SWEEPS_SHARED_FILESYSTEM", "true")
    assert Stores().shared_filesystem is True
    monkeypatch.setenv("SPARSE_SWEEPS_SHARED_FILESYSTEM", "maybe")
    with pytest.raises(SpecError, match="SPARSE_SWEEPS_SHARED_FILESYSTEM"):
        Stores()


def test_cluster_mode_passes_the_sweeps_environment_to_trials(monkeypatch, tmp_path):
    from sweeps.run.tune import forwarded_env

    for var in [v for v in __import__("os").environ if v.startswith("SPARSE_SWEEPS_")]:
        monkeypatch.delenv(var)
    assert forwarded_env() == {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARSE_SWEEPS_DATA", "data")
    monkeypatch.setenv("SPARSE_SWEEPS_FAIL_TRIAL", "3")
    monkeypatch.setenv("SPARSE_SWEEPS_CACHE", "")
    env = forwarded_env()
    assert env == {"SPARSE_SWEEPS_DATA": str(tmp_path / "data"), "SPARSE_SWEEPS_FAIL_TRIAL": "3"}


# -- data on every node -----------------------------------------------------------------------------

def _image_data_root() -> str:
    text = (CLUSTER / "Dockerfile").read_text()
    return re.search(r"^\s*SPARSE_SWEEPS_DATA=(\S+?)\s", text, flags=re.M).group(1)


def _data_commands(text: str) -> list[list[str]]:
    return [args[1:] for args in commands(text, "sweeps") if args[:1] == ["data"]]


def test_the_image_ships_mnist_checked_in_its_data_root():
    root = _image_data_root()
    runs = _data_commands("\n".join(re.findall(r"^RUN\s+(.*)$", (CLUSTER / "Dockerfile").read_text(), flags=re.M)))
    assert ["fetch", "mnist", "--data", root] in runs and ["verify", "mnist", "--data", root] in runs
    for args in runs:  # and they parse
        build_parser().parse_args(["data", *args])


@pytest.mark.parametrize("path", LAUNCHER, ids=lambda p: p.name)
def test_launcher_nodes_fill_and_check_their_data_before_trials(path):
    """Each node's data volume is the nodes' data root; it is filled from the shared bucket (host
    side) and from the image's MNIST, then verified, in the node's set-up, before Ray starts."""
    config = load(path)
    options = " ".join(config["docker"]["run_options"])
    data = dict(re.findall(r"-e (\w+)=(\S+)", options))["SPARSE_SWEEPS_DATA"]
    mounts = dict((c, h) for h, c in re.findall(r"-v (\S+?):(\S+?)(?::ro)?(?:\s|$)", options))
    host = mounts[data]  # the data root is a mounted host folder, writable so the set-up fills it
    assert f"-v {host}:{data}:ro" not in options
    init = " ".join(config["initialization_commands"])
    assert re.search(rf"(aws s3 sync|gsutil .*rsync) .*(s3|gs)://\S+ {re.escape(host)}\b", init), init
    setup = _data_commands("\n".join(config["setup_commands"]))
    assert ["stage", "mnist", data, "--data", _image_data_root()] in setup
    assert ["verify", "--data", data] in setup and setup.index(["verify", "--data", data]) == len(setup) - 1


def test_kuberay_fills_the_data_volume_with_a_job_and_every_pod_reads_it():
    (cm,) = manifests("ConfigMap")
    data = cm["data"]["SPARSE_SWEEPS_DATA"]
    (job,) = manifests("Job")
    pod = job["spec"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    (mount,) = [m for m in container["volumeMounts"] if claims.get(m["name"]) == "sparse-sweeps-data"]
    assert mount["mountPath"] == data and not mount.get("readOnly")
    script = "\n".join(container["command"])
    steps = _data_commands(script)
    assert ["stage", "mnist", data, "--data", _image_data_root()] in steps
    assert ["fetch", "gsc", "--data", data] in steps and steps[-1] == ["verify", "--data", data]
    assert "set -e" in script
    for doc in manifests("RayCluster") + manifests("RayJob"):
        for group in ray_groups(doc):
            spec = group["template"]["spec"]
            vols = {v["name"]: v for v in spec["volumes"]}
            (c,) = spec["containers"]
            reads = [m for m in c["volumeMounts"]
                     if vols[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == "sparse-sweeps-data"]
            assert [m["mountPath"] for m in reads] == [data] and reads[0]["readOnly"] is True

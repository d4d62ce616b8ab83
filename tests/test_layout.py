"""The package layout's rules, read from the source (no import runs): which room may import which.

Rooms are `sweeps`' subpackages and top-level modules, plus `sparsity` and `dashboards`. Every import
counts: inside functions, under ``if TYPE_CHECKING:`` (an annotation is a dependency too), and a
dotted module path written in a string annotation (``"sweeps.spec.SweepSpec"``). The rules
(docs/guide/architecture.md):

* the rooms form a DAG, in the order of `LAYERS`: a room imports only rooms of lower layers;
* `sparsity` and `dashboards` never import `sweeps`; `sparsity` imports neither;
* `sweeps.search` (the decisions) imports no Ray, no MLflow and no `sweeps.spec`, not even for an
  annotation (it takes a `sweeps.search.plan.StudyPlan`);
* a private API of Ray, Optuna or MLflow (``ray._private``, ``optuna._x``, ``mlflow.x._y`` ...) is
  reached only from its adapter module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("sweeps", "sparsity", "dashboards")

# Lower layers first; a room may import rooms of strictly lower layers (and itself).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("sparsity",),
    ("dashboards", "sweeps.errors", "sweeps.shutdown", "sweeps.files"),
    ("sweeps.stores", "sweeps.names", "sweeps.data"),
    ("sweeps.search",),
    ("sweeps.spec",),
    ("sweeps.spec_store",),
    ("sweeps.tracking",),
    ("sweeps.results",),
    ("sweeps.replay",),
    ("sweeps.run",),
    ("sweeps.cli",),
)
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
ADAPTERS = {"ray": "sweeps.run.ray_private", "optuna": "sweeps.search.optuna_private",
            "mlflow": "sweeps.tracking.mlflow_private"}


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "sweeps" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _annotation_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of each annotation written as a string."""
    out = []
    for node in ast.walk(tree):
        notes: list[ast.expr | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            notes = [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x]
            notes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            notes = [node.annotation]
        for note in notes:
            for n in ast.walk(note) if note is not None else ():
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    out.append((n.lineno, n.value))
    return out


def _dotted_modules(text: str) -> list[str]:
    """The package modules a string annotation names by a dotted path (``sweeps.spec.SweepSpec``:
    sweeps.spec)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return []
    out = []
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and id(n) not in inner:  # the whole dotted path only
            dotted = ast.unparse(n)
            if dotted.split(".")[0] in PACKAGES:
                out.append(dotted.rpartition(".")[0])
    return out


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for each import of the file (annotation-only ones included)."""
    module = _module_name(path)
    return imports_in(path.read_text(), module if path.name == "__init__.py" else module.rpartition(".")[0])


def imports_in(text: str, package: str) -> list[tuple[int, str]]:
    """(line, imported module) for each import of source ``text`` of a module in ``package``:
    wherever it is (a function, ``if TYPE_CHECKING:``), and each package module a string
    annotation names by its dotted path."""
    tree = ast.parse(text)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            if target in PACKAGES:  # `from sweeps import shutdown`: the names are modules
                out.extend((node.lineno, f"{target}.{a.name}") for a in node.names)
    for line, note in _annotation_strings(tree):
        out.extend((line, m) for m in _dotted_modules(note))
    return out


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing room, imported room) -> where, over the three packages."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sources():
        here = room(_module_name(path))
        for line, target in runtime_imports(path):
            if target.split(".")[0] not in PACKAGES or target in PACKAGES:
                continue
            there = room(target)
            if there != here:
                out.setdefault((here, there), []).append(f"{path.relative_to(REPO)}:{line}")
    return out


def test_every_room_has_a_layer():
    rooms = {room(_module_name(p)) for p in sources()} - {"sweeps"}
    assert rooms <= set(LAYER), f"rooms without a layer in LAYERS: {sorted(rooms - set(LAYER))}"


def test_imports_run_down_the_layers_only():
    upward = {f"{a} -> {b}": where for (a, b), where in edges().items() if LAYER[b] >= LAYER[a]}
    assert not upward, f"imports that run up (or across) the layers: {upward}"


def test_the_rooms_have_no_circle():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in graph.get(node, ()):
            assert seen.get(nxt) != 1, f"import circle: {' -> '.join(path + [node, nxt])}"
            if nxt not in seen:
                visit(nxt, path + [node])
        seen[node] = 2

    for node in list(graph):
        if node not in seen:
            visit(node, [])


def test_the_library_and_the_dashboards_never_import_the_service():
    wrong = {k: v for k, v in edges().items() if k[0] in ("sparsity", "dashboards") and k[1].startswith("sweeps")}
    wrong.update({k: v for k, v in edges().items() if k == ("sparsity", "dashboards")})
    assert not wrong, wrong


def test_the_search_decides_without_ray_mlflow_or_the_spec():
    bad = []
    for path in sorted((REPO / "sweeps" / "search").rglob("*.py")):
        for line, target in runtime_imports(path):
            if target.split(".")[0] in ("ray", "mlflow") or target == "sweeps.spec":
                bad.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert not bad, bad


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_private_library_apis_only_in_their_adapter(library):
    adapter = ADAPTERS[library]
    bad = []
    for path in sources():
        if _module_name(path) == adapter:
            continue
        text = path.read_text()
        for line, target in runtime_imports(path):
            parts = target.split(".")
            if parts[0] == library and any(p.startswith("_") for p in parts[1:]):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {target}")
        for i, src in enumerate(text.splitlines(), 1):
            if f"{library}._" in src.replace(" ", "") and not src.lstrip().startswith("#"):
                bad.append(f"{path.relative_to(REPO)}:{i}: {src.strip()}")
    assert not bad, f"{library}'s private API outside {adapter}: {bad}"


def test_the_reader_sees_what_the_rules_need():
    """A function-level import, a relative one, a TYPE_CHECKING one and a dotted string annotation
    all count (so the rules above cannot pass by reading nothing, nor be dodged by annotations)."""
    text = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sweeps.spec import SweepSpec\n"
            "def f(a: 'sweeps.replay.table.Table', b: 'int') -> 'dict[str, sweeps.results.read.X]':\n"
            "    import ray.tune\n    from ..run import tune\n")
    assert sorted(t for _, t in imports_in(text, "sweeps.search")) == [
        "ray.tune", "sweeps.replay.table", "sweeps.results.read", "sweeps.run", "sweeps.spec", "typing"]
    assert ("sweeps.search", "sweeps.run") in {(room("sweeps.search.x"), room("sweeps.run.tune"))}


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            stack += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            stack += [s for h in getattr(node, "handlers", []) for s in h.body]
    if "__getattr__" in names:  # lazy exports: the string keys of the module's name table
        names |= {k.value for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                  and isinstance(node.value, ast.Dict) for k in node.value.keys if isinstance(k, ast.Constant)}
    return names


def test_benchmarks_import_only_what_the_packages_define():
    """The benchmark scripts are not run by the suite; a name they import from the packages must
    still exist (a restructure once left `bench_sweep_overhead.py` importing a moved function)."""
    bad = []
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] in PACKAGES):
                continue
            base = REPO.joinpath(*node.module.split("."))
            source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            if not source.exists():
                bad.append(f"{script.name}:{node.lineno}: no module {node.module}")
                continue
            defined = _top_level_names(ast.parse(source.read_text()))
            for alias in node.names:
                submodule = (base / alias.name).is_dir() or (base / f"{alias.name}.py").exists()
                if alias.name != "*" and alias.name not in defined and not submodule:
                    bad.append(f"{script.name}:{node.lineno}: {node.module} has no {alias.name}")
    assert not bad, bad


def test_benchmarks_use_the_packages_as_a_user_would():
    """A benchmark is run from the repository's root as ``python -m benchmarks.NAME``: it edits no
    `sys.path`, imports nothing from tests/, calls no private function of the packages, and the
    packages point at no file of benchmarks/ (they find their data through settings)."""
    bad = []
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        text = script.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
                bad.append(f"{script.name}:{node.lineno}: edits sys.path")
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                root = node.module.split(".")[0]
                if root in ("tests", "fake_store", "cluster_helpers", "machine", "reference_nupic", "sweep_helpers"):
                    bad.append(f"{script.name}:{node.lineno}: imports {node.module} (not through the benchmarks package)")
                if root in PACKAGES:
                    bad += [f"{script.name}:{node.lineno}: imports private {node.module}.{a.name}"
                            for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Import):
                bad += [f"{script.name}:{node.lineno}: imports {a.name}" for a in node.names
                        if a.name.split(".")[0] == "tests"]
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in _package_aliases(tree)):
                bad.append(f"{script.name}:{node.lineno}: calls private {ast.unparse(node)}")
    for path in sources():
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if '"benchmarks"' in line and not line.lstrip().startswith("#"):
                bad.append(f"{path.relative_to(REPO)}:{i}: a path into benchmarks/")
    assert not bad, bad


def _package_aliases(tree: ast.AST) -> set[str]:
    """Names a script binds to a module of the packages (``from sweeps.run import trainable``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in PACKAGES}
    return names

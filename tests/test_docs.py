"""The documentation: the site builds with no warning (links and anchors checked), its generated
reference covers every CLI command and option and every spec key, and the README stays a front door."""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 12_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return out


def _text(site: Path, page: str) -> str:
    """A built page's text, tags stripped and entities decoded."""
    raw = (site / page / "index.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_every_cli_command_and_option_is_in_the_reference(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sweeps.cli import build_parser

    parser = build_parser()
    # The commands as `sweeps --help` shows them: "{networks,train,...}".
    commands = re.search(r"\{([a-z,-]+)\}", parser.format_usage()).group(1).split(",")
    assert {"run", "resume", "status", "best", "export", "report", "dashboard", "submit"} <= set(commands)
    page = _text(site, "reference/cli")
    for command in commands:
        assert f"sweeps {command}" in page, command
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])  # what `sweeps COMMAND --help` prints
        sub_help = capsys.readouterr().out
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", sub_help)) - {"--help"}
        section = page.split(f"sweeps {command}", 2)[-1]  # the command's own section (after the summary table)
        for option in options:
            assert option in section, (command, option)


def _keys(prefix: str, value: Any) -> Iterator[str]:
    """Dotted key paths of a YAML-ready mapping; list items as [i]."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _keys(f"{prefix}.{k}" if prefix else k, v)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for item in value:
            yield from _keys(f"{prefix}[i]", item)
    else:
        yield prefix


def test_every_spec_key_is_in_the_reference(site: Path) -> None:
    from sparsity.presets import preset
    from sweeps.spec import load_spec

    spec = load_spec("mnist-paper").to_dict()
    keys = set()
    for key in _keys("", {k: v for k, v in spec.items() if k not in ("space", "baselines", "network")}):
        keys.add(key)
    keys |= {k for k in spec}  # the sections themselves
    for param in spec["space"].values():  # every field a searched parameter can have
        keys |= {f"space.NAME.{k}" for k in param}
    keys |= {f"space.NAME.{k}" for k in ("low", "high", "log", "choices", "integer")}
    keys |= set(_keys("baselines", [{"name": 0, "params": 0, "preset": 0}]))
    keys |= set(_keys("network", preset("sparse-cnn2", "mnist").to_dict()))
    keys |= {"early_stopping.rule", "early_stopping.grace_period", "early_stopping.reduction_factor",
             "early_stopping.metric", "confirm.top", "confirm.seeds", "confirm.budget", "confirm.looks", "confirm.margin"}
    page = _text(site, "reference/spec")
    missing = sorted(k for k in keys if k not in page)
    assert not missing, missing
    # The rules are there too, as the checks state them.
    assert "must be an integer >= 0" in page and "choose one of random, tpe, tpe-mv, nsga2, gp" in page
    assert "int | None" in page and "\\|" not in page  # table pipes in code shown as written


def test_the_api_reference_lists_sparsity_public_names(site: Path) -> None:
    import sparsity

    page = _text(site, "reference/api")
    for name in sparsity.__all__:
        assert f"sparsity.{name}" in page, name
    assert "Zero the masked weights of every sparse-weight module" in page  # a docstring, as written


def test_a_figure_outside_docs_is_in_the_site(site: Path) -> None:
    paper = (site / "paper" / "index.html").read_text()
    src = re.search(r'<img alt="Figure 5" src="([^"]+)"', paper).group(1)
    assert (site / "paper" / src).resolve().is_file()


def _relative_links(text: str) -> Iterator[str]:
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"^[a-z]+:|^#", target):
            yield target.split("#", 1)[0]


def test_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text) <= README_LIMIT, len(text)
    assert "bash scripts/quickstart.sh" in text and "bash scripts/test.sh" in text
    assert "SPARSE_SWEEPS_DATA" in text
    links = list(_relative_links(text))
    assert len(links) >= 10
    for target in links:
        assert (ROOT / target).exists(), target


def test_docs_speak_of_the_product_not_of_issue_numbers() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in pages
            for m in re.finditer(r"\bissues? \d+|\(issue\b|the issue\b", p.read_text(), re.IGNORECASE)]
    assert not hits, hits


def test_table1_report_writes_into_the_paper_page() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("table1_report", ROOT / "benchmarks" / "table1_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    doc = report.DOC.read_text()
    assert report.DOC == ROOT / "docs" / "paper.md"
    assert doc.index(report.BEGIN) < doc.index(report.END)


def _blocks(language: str) -> Iterator[tuple[str, str]]:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S):
            yield str(page.relative_to(ROOT)), block


def test_the_spec_examples_are_valid_specs() -> None:
    import yaml

    from sweeps.spec import SweepSpec

    checked = 0
    for page, block in _blocks("yaml"):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "name" in data and "space" in data:
            SweepSpec.from_dict(data)  # raises SpecError naming the key
            checked += 1
    assert checked >= 2  # the README's and the spec guide's


def test_the_imports_the_docs_show_work() -> None:
    import importlib

    shown = set()
    for page, block in _blocks("python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom):
                shown |= {(page, node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                shown |= {(page, alias.name, None) for alias in node.names}
    assert ("README.md", "sweeps.results.deploy", "load_model") in shown
    for page, module, name in sorted(shown, key=str):
        imported = importlib.import_module(module)
        assert name is None or hasattr(imported, name), (page, module, name)


def test_the_library_examples_run() -> None:
    """The `sparsity` examples (no store needed) run as shown."""
    ran = 0
    for page, block in _blocks("python"):
        if "mlflow" in block or "sparsity" not in block:
            continue
        exec(compile(block, page, "exec"), {})
        ran += 1
    assert ran >= 2  # the README's and the library guide's

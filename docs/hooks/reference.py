"""MkDocs hook: the reference pages, generated from the code at every build.

* ``reference/cli.md``: every `sweeps` command, from the CLI's own argparse parser
  (`sweeps.cli.build_parser`);
* ``reference/spec.md``: every spec key with its type, default and rules, from the spec's frozen
  dataclasses (`sweeps.spec`, and the `sparsity` configs it embeds) and the checks in their
  ``__post_init__``;
* ``reference/api.md``: the public names of `sparsity` (``sparsity.__all__``), from their
  signatures and docstrings (`inspect`).

It also lets a page show a figure kept outside ``docs/`` (``![...](../benchmarks/results/...)``,
a path that works on GitHub too): such a file is copied into the site under ``assets/repo/``.
The generators are plain functions (`cli_markdown`, `spec_markdown`, `api_markdown`), so tests can
call them without a build.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import posixpath
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # document this checkout's code, not an installed copy
    sys.path.insert(0, str(ROOT))

# Pages written elsewhere that the nav names before they land: uri -> one-line placeholder.

_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


# -- the CLI -------------------------------------------------------------------------------------

def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (help, parser) of every subcommand, in the parser's order."""
    for action in parser._actions:  # argparse keeps no public list of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        name = ", ".join(f"`{s}`" for s in a.option_strings) or f"`{a.metavar or a.dest}`"
        if a.option_strings and a.nargs != 0:
            name += f" `{a.metavar or a.dest.upper()}`"
        if a.choices:
            name += " (" + " \\| ".join(f"`{c}`" for c in a.choices) + ")"
        if a.required or (not a.option_strings and a.nargs not in ("?", "*")):
            default = "required"
        elif a.default in (None, False, argparse.SUPPRESS):
            default = ""
        else:
            default = f"`{a.default}`"
        rows.append(f"| {name} | {default} | {_cell(a.help or '')} |")
    return rows


def cli_markdown() -> str:
    from sweeps.cli import build_parser

    parser = build_parser()
    lines = [
        "# CLI reference",
        "",
        "Generated from the `sweeps` command's parser at every build of this site. "
        "`sweeps COMMAND --help` prints the same.",
        "",
        "```",
        parser.format_usage().strip(),
        "```",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    commands = _subcommands(parser)
    lines += [f"| [`sweeps {name}`](#sweeps-{name}) | {_cell(help_)} |" for name, (help_, _) in commands.items()]
    lines += ["", "Global option: `-v`, `--verbose` (debug logging), before the command.", ""]
    for name, (help_, sub) in commands.items():
        lines += [f"## `sweeps {name}` {{#sweeps-{name}}}", "", help_[:1].upper() + help_[1:] + ".", "",
                  "```", sub.format_usage().strip().replace("usage: ", ""), "```", ""]
        rows = _argument_rows(sub)
        if rows:
            lines += ["| argument | default | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


# -- the spec ------------------------------------------------------------------------------------

def _render(node: ast.AST, source: str, key: str, names: dict[str, Any]) -> str:
    """A rule's message as written: the checked value as "the value", a constant of the module
    (``', '.join(SAMPLERS)``) as its value, any other field as ``field``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return ast.get_source_segment(source, node) or ""
    out = []
    leaf = re.sub(r"\[.*?\]", "", key).split(".")[-1]
    for part in node.values:
        if isinstance(part, ast.Constant):
            out.append(str(part.value))
            continue
        expr = ast.get_source_segment(source, part.value) or "..."  # type: ignore[attr-defined]
        if not out and (expr.startswith("self.") and expr.split(".")[-1] == leaf or expr == "getattr(self, name)"):
            out.append("the value")
            continue
        try:
            out.append(str(eval(expr, dict(names))))  # a module constant, e.g. ", ".join(SAMPLERS)
        except Exception:
            out.append("`" + expr.replace("self.", "") + "`")
    return "".join(out)


def _class_rules(cls: type) -> list[tuple[str, str]]:
    """(key, rule) of each check in ``cls.__post_init__``: the first string naming a key, the last
    message. Keys are as the check names them (``budget.trials``, ``epochs``, ``kwinners.boost_strength``)."""
    post = getattr(cls, "__post_init__", None)
    if post is None:
        return []
    source = textwrap.dedent(inspect.getsource(post))
    names = vars(sys.modules[cls.__module__])
    rules = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if func not in ("spec_fail", "check", "_check"):
            continue
        strings = [a for a in node.args if isinstance(a, (ast.Constant, ast.JoinedStr, ast.Name))
                   and not (isinstance(a, ast.Constant) and not isinstance(a.value, str))]
        if len(strings) < 2 or isinstance(strings[-1], ast.Name):
            continue
        first = strings[0]
        if isinstance(first, ast.Constant):
            key = first.value
        elif isinstance(first, ast.JoinedStr):  # f"{key}.low": the field after the computed prefix
            key = "".join(str(v.value) for v in first.values if isinstance(v, ast.Constant)).lstrip(".")
        else:  # a computed key: a rule of the whole section
            key = ""
        rules.append((key, _render(strings[-1], source, key, names)))
    return rules


def _raised_rule(func: Any) -> str:
    """The message of the error ``func`` raises, its checked value shown as "the value"."""
    source = textwrap.dedent(inspect.getsource(func))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            text = _render(node.exc.args[0], source, "", vars(sys.modules[func.__module__]))
            return re.sub(r"^`where`: `name` ", "the value ", text)
    return ""


def _field_notes(cls: type) -> dict[str, str]:
    """Each field's comment in the class body (trailing, or the comment lines just above it)."""
    notes: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"^\s+(\w+): [^#]+?(?:#\s*(.*))?$", line)
        if m and not stripped.startswith(("def ", "@", "return")):
            parts = above + ([m.group(2)] if m.group(2) else [])
            if parts:
                notes[m.group(1)] = " ".join(parts)
        above = []
        if stripped.startswith("def "):
            break
    return notes


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            return "its defaults"
    else:
        return "required"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def _section(prefix: str, cls: type, skip: tuple[str, ...] = (), extra: dict[str, str] | None = None,
             rules: list[tuple[str, str]] | None = None) -> list[str]:
    """One table: every field of ``cls`` as ``prefix.field`` with its type, default and rules."""
    notes = _field_notes(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name not in skip]
    names = {f.name for f in fields}
    by_field: dict[str, list[str]] = {}
    other: list[str] = []
    for key, rule in _class_rules(cls) + (rules or []):
        leaf = re.sub(r"\[.*?\]", "", key).split(".")[-1]
        if leaf in names:
            by_field.setdefault(leaf, []).append(rule)
        else:
            other.append(f"`{key}`: {rule}" if key else rule)
    lines = ["| key | type | default | meaning and rules |", "|---|---|---|---|"]
    for f in fields:
        text = "; ".join([notes.get(f.name, ""), (extra or {}).get(f.name, ""), *by_field.get(f.name, [])]).strip("; ")
        text = re.sub(r"(; )+", "; ", text)
        key = f"{prefix}.{f.name}" if prefix else f.name
        lines.append(f"| `{key}` | `{_cell(f.type)}` | {_default(f)} | {_cell(text)} |")
    doc = inspect.getdoc(cls) or ""
    head = [] if doc.startswith(cls.__name__ + "(") else [doc.replace("\n", " "), ""]
    tail = ["", "Also checked:", "", *[f"- {_cell(r)}" for r in other]] if other else []
    return head + lines + tail + [""]


def spec_markdown() -> str:
    from sparsity.data.config import DataConfig
    from sparsity.experiment_config import NoiseConfig
    from sparsity.network_spec import ConvLayer, KWinnersSettings, LinearLayer, NetworkSpec
    from sparsity.recipe import Recipe
    from sweeps import spec as spec_module
    from sweeps.search import space as grammar
    from sweeps.spec import Baseline, Budget, Confirm, EarlyStopping, Param, Resources, Searcher, Stores, SweepSpec
    from sweeps.names import check_sweep_name
    from sweeps.stores.config import STORE_ENV

    top = _class_rules(SweepSpec)
    in_section = lambda name: [(k, r) for k, r in top if k.split(".")[0].split("[")[0] == name]  # noqa: E731
    lines = [
        "# Spec reference",
        "",
        "Generated from the spec's frozen dataclasses (`sweeps.spec`, and the `sparsity` configs it embeds) "
        "and the checks they run when a spec is read, at every build of this site. A spec is a YAML "
        "mapping with the keys below; unknown keys are refused, and every error names the key and the fix "
        "(see [Specs](../guide/specs.md) for a whole example and the presets).",
        "",
        "## Top level",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    meaning = {
        "name": "the sweep's name: it names the stores' records and the saved spec",
        "dataset": "the data (table below)",
        "network": "a network preset name (`sweeps networks`), or a full network mapping (table below)",
        "recipe": "overrides of the preset's paper recipe (table below)",
        "space": "the searched parameters: a mapping of name to range or choices (table below)",
        "baselines": "configs run before the search (table below); `confirm` needs at least one",
        "objectives": "`objectives.noise`: the noise the noise score is measured under (table below)",
        "budget": "trials, epochs, concurrency, retries", "resources": "per trial",
        "searcher": "the Optuna sampler", "early_stopping": "`null` (default) or successive halving",
        "confirm": "seed replicates after the search; `null`: none", "stores": "where results go",
        "seed": "the model seed of every trial (replicates use seed + 1 ... + confirm.seeds)",
    }
    for f in dataclasses.fields(SweepSpec):
        if f.name == "network_preset":
            continue
        key = "objectives" if f.name == "noise" else f.name
        type_ = "mapping" if key == "objectives" else f.type
        lines.append(f"| `{key}` | `{_cell(type_)}` | {_default(f)} | {meaning.get(key, '')} |")
    lines += ["", f"- `name`: {_raised_rule(check_sweep_name)}", ""]
    from sparsity.facts import DATASET_NAMES

    lines += ["## dataset", "", *_section("dataset", DataConfig, extra={"name": " or ".join(DATASET_NAMES)}, rules=[("validation_size",
              "0 is refused in a sweep: it leaves no validation split, and a sweep chooses configs on it")])]
    lines += ["## network", "",
              "A preset name (`sweeps networks [--dataset gsc]` lists them: "
              + ", ".join(f"`{n}`" for n in _preset_names()) + "), or a mapping:", "",
              *_section("network", NetworkSpec),
              "### network.conv[i]", "", *_section("network.conv[i]", ConvLayer),
              "### network.linear[i]", "", *_section("network.linear[i]", LinearLayer),
              "### network.kwinners", "", *_section("network.kwinners", KWinnersSettings)]
    lines += ["## recipe", "", "Overrides of the network preset's paper recipe (`sparsity.recipe.paper_recipe`); "
              "a full network mapping starts from these defaults.", "", *_section("recipe", Recipe)]
    lines += ["## space", "", "`space.NAME: {low, high, log, integer}` or `space.NAME: {choices: [...]}`. "
              "The names (the search-space grammar, `sweeps.search.space`):", "", "```",
              *_grammar_lines(grammar), "```", "",
              *_section("space.NAME", Param, skip=("name",), rules=in_section("space"))]
    lines += ["## baselines", "", "A list; each item:", "", *_section("baselines[i]", Baseline, extra={
        "params": "values of the space's names (the grammar above) set on this baseline",
        "preset": "another network preset (with its paper recipe) instead of the dense point of the spec's network"})]
    lines += ["## objectives.noise", "", "Both objectives are maximized on the validation split: "
              + ", ".join(f"`{o}`" for o in spec_module.OBJECTIVES) + ". The test split is only reported.", "",
              *_section("objectives.noise", NoiseConfig)]
    from sweeps.search.claims import DEFAULT_MARGINS

    margins = ", ".join(f"`confirm.margin.{o}` ({'accuracy points' if unit == 'points' else 'a share of the score maximum'}, "
                        f"default {amount})" for o, (amount, unit) in DEFAULT_MARGINS.items())
    extras = {"confirm": {"margin": f"per objective: {margins}; see [Claims](../guide/claims.md)",
                          "budget": "replicate trials in all; `null`: the first round's (top + baselines) x seeds",
                          "looks": "rounds of replicates at most, the first included"}}
    for name, cls in (("budget", Budget), ("resources", Resources), ("searcher", Searcher),
                      ("early_stopping", EarlyStopping), ("confirm", Confirm)):
        lines += [f"## {name}", "", *_section(name, cls, extra=extras.get(name), rules=in_section(name))]
    env = {name: f"`${var}` when the spec leaves it empty" for name, var in STORE_ENV.items()}
    lines += ["## stores", "", *_section("stores", Stores, extra=env)]
    return "\n".join(lines)


def _preset_names() -> list[str]:
    from sparsity.presets import preset_names

    return sorted(set(preset_names("mnist")) | set(preset_names("gsc")))


def _grammar_lines(grammar: Any) -> list[str]:
    doc = inspect.getdoc(grammar) or ""
    block = doc.split("Names:", 1)[1].strip("\n").split("\n\n", 1)[0] if "Names:" in doc else ""
    return [line for line in block.splitlines() if line.strip()]


# -- the sparsity API ----------------------------------------------------------------------------

def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    for name, value in vars(cls).items():
        if name.startswith("_") or not (inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod))):
            continue
        if inspect.getdoc(value if not isinstance(value, (classmethod, staticmethod)) else value.__func__):
            yield name, value


def api_markdown() -> str:
    import sparsity

    lines = ["# Python API: `sparsity`", "",
             "Generated from the signatures and docstrings of `sparsity`'s public names (`sparsity.__all__`) "
             "at every build of this site. Each is importable as `sparsity.NAME`; the configs import no torch.", ""]
    lines += ["| name | what it is |", "|---|---|"]
    for name in sparsity.__all__:
        doc = (inspect.getdoc(getattr(sparsity, name)) or "").split("\n\n")[0].replace("\n", " ")
        lines.append(f"| [`{name}`](#{name.lower()}) | {_cell(doc if not doc.startswith(name + '(') else '')} |")
    lines.append("")
    for name in sparsity.__all__:
        obj = getattr(sparsity, name)
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "constant"
        lines += [f"## `{name}` {{#{name.lower()}}}", ""]
        if kind == "constant":
            keys = ", ".join(f"`{k}`" for k in obj) if hasattr(obj, "keys") else f"`{obj!r}`"
            lines += [f"`sparsity.{name}`: a read-only mapping with keys {keys}.", ""]
            continue
        module = getattr(obj, "__module__", "sparsity")
        lines += ["```python", f"sparsity.{name}{_signature(obj)}", "```", "", f"Defined in `{module}`.", ""]
        doc = inspect.getdoc(obj) or ""
        if doc and not doc.startswith(name + "("):  # dataclasses' generated docstring repeats the signature
            lines += [doc, ""]
        if kind == "class":
            for member, value in _members(obj):
                func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                sig = "" if isinstance(value, property) else _signature(func)
                lines += [f"- **`{member}{sig}`**: " + inspect.getdoc(func if not isinstance(value, property) else value).replace("\n", " ")]
            lines.append("")
    return "\n".join(lines)


GENERATED = {
    "reference/cli.md": cli_markdown,
    "reference/spec.md": spec_markdown,
    "reference/api.md": api_markdown,
}


# -- MkDocs events -------------------------------------------------------------------------------

def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File, InclusionLevel

    for uri, make in GENERATED.items():
        files.append(File.generated(config, uri, content=make()))
    docs_dir = Path(config["docs_dir"]).resolve()
    for page in [f for f in files if f.src_uri.endswith(".md") and f.abs_src_path]:
        for target in _IMAGE.findall(Path(page.abs_src_path).read_text()):
            uri = posixpath.normpath(posixpath.join(posixpath.dirname(page.src_uri), target))
            path = (docs_dir / uri).resolve()
            if not uri.startswith("../") or files.get_file_from_path(uri) is not None or not path.is_file():
                continue  # inside docs/ (MkDocs checks those), or missing (MkDocs warns)
            if ROOT not in path.parents:
                continue
            image = File(uri, src_dir=str(docs_dir), dest_dir=config["site_dir"],
                         use_directory_urls=config["use_directory_urls"],
                         dest_uri="assets/repo/" + path.relative_to(ROOT).as_posix(),
                         inclusion=InclusionLevel.INCLUDED)
            files.append(image)
    return files


_CODE = re.compile(r"(<code[^>]*>)(.*?)(</code>)", re.S)


def on_page_content(html: str, **kwargs: Any) -> str:
    """A pipe in a table's code span is written ``\\|`` (GitHub's tables need it); Python-Markdown
    keeps the backslash there, so drop it from code in the built page."""
    return _CODE.sub(lambda m: m.group(1) + m.group(2).replace("\\|", "|") + m.group(3), html)

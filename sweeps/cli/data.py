"""`sweeps data verify | stage | fetch`: datasets where every node of a cluster reads them.

Import-light: no torch, Ray or MLflow (fsspec loads for `stage` only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sweeps.errors import DataError

__all__ = ["add_parser"]

_DATA = ("--data", dict(default=None, metavar="DIR",
                        help="the data root (default: $SPARSE_SWEEPS_DATA, else ./data)"))


def _names(dataset: str | None, root: str | None) -> list[str]:
    from sweeps.data.catalog import dataset_files
    from sweeps.data.check import data_root, fix_hint, present_datasets

    if dataset is not None:
        dataset_files(dataset)  # an unknown name is refused naming the known ones
        return [dataset]
    names = present_datasets(root)
    if not names:
        raise DataError(f"no dataset under {data_root(root).absolute()}; name one ({fix_hint('mnist')})")
    return names


def cmd_data_verify(args: argparse.Namespace) -> int:
    from sweeps.cli.console import console
    from sweeps.data.catalog import DATASETS
    from sweeps.data.check import problem, verify

    problems = []
    for name in _names(args.dataset, args.data):
        result = verify(name, args.data)
        line = problem(result)
        if line is not None:
            problems.append(line)
            continue
        note = f", {len(result.unchecked)} without a checksum in the manifest" if result.unchecked else ""
        console.print(f"{DATASETS[name].title} under {result.root.absolute()}: {len(result.checked)} files "
                      f"checked{note}", soft_wrap=True, highlight=False)
    if problems:
        raise DataError("\n".join(problems))
    return 0


def cmd_data_stage(args: argparse.Namespace) -> int:
    from sweeps.cli.console import console
    from sweeps.data.transfer import stage

    if len(args.where) > 2:
        raise DataError(f"sweeps data stage {' '.join(args.where)}: give [DATASET] DEST")
    dataset, dest = (None, args.where[0]) if len(args.where) == 1 else args.where
    for name in _names(dataset, args.data):
        stage(name, dest, args.data, say=lambda m: console.print(m, soft_wrap=True, highlight=False))
    console.print(f"on every node: SPARSE_SWEEPS_DATA={dest} (a mounted folder), then `sweeps data verify`",
                  soft_wrap=True, highlight=False)
    return 0


def _checksums(path: str | None) -> dict[str, str]:
    """A ``sha256sum`` file as {file name: sha256} (the names the sources serve)."""
    if path is None:
        return {}
    from sweeps.data.check import read_manifest

    try:
        text = Path(path).read_text()
    except OSError as e:
        raise DataError(f"--checksums {path}: cannot read it ({e.strerror}); give a sha256sum file") from None
    sums = {p.rsplit("/", 1)[-1]: h for p, h in read_manifest(text).items()}
    if not sums:
        raise DataError(f"--checksums {path}: no 'SHA256  NAME' lines in it; give a sha256sum file")
    return sums


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from sweeps.cli.console import console
    from sweeps.data.catalog import DATASETS, dataset_files
    from sweeps.data.transfer import fetch

    dataset_files(args.dataset)
    sums = _checksums(args.checksums)
    result = fetch(args.dataset, args.data, mirror=args.mirror, checksums=sums,
                   say=lambda m: console.print(m, soft_wrap=True, highlight=False))
    console.print(f"{DATASETS[args.dataset].title} in {result.root.absolute()}: {len(result.checked)} files checked",
                  soft_wrap=True, highlight=False)
    return 0


def add_parser(sub: Any) -> None:
    """The `data` command group, under the CLI's subparsers ``sub``."""
    from sweeps.data.catalog import DATASETS

    p = sub.add_parser("data", help="datasets on every node: verify, stage to a shared place, fetch")
    group = p.add_subparsers(dest="data_command", required=True)
    v = group.add_parser("verify", help="check a dataset's files by checksum under the data root (exit 2 if not)")
    v.add_argument("dataset", nargs="?", choices=sorted(DATASETS), help="default: every dataset found there")
    v.add_argument(_DATA[0], **_DATA[1])
    v.set_defaults(func=cmd_data_verify)
    s = group.add_parser("stage", help="copy a checked dataset to a folder or URI the cluster reads "
                                       "(s3://... needs s3fs, gs://... gcsfs)")
    s.add_argument("where", nargs="+", metavar="[DATASET] DEST")
    s.add_argument(_DATA[0], **_DATA[1])
    s.set_defaults(func=cmd_data_stage)
    f = group.add_parser("fetch", help="download a dataset from its public sources, checked and resumable")
    f.add_argument("dataset", choices=sorted(DATASETS))
    f.add_argument(_DATA[0], **_DATA[1])
    f.add_argument("--mirror", metavar="URL", help="a base URL serving the same file names (an internal mirror)")
    f.add_argument("--checksums", metavar="FILE",
                   help="a sha256sum file of the files to fetch (a mirror's own files; GSC's archive)")
    f.set_defaults(func=cmd_data_fetch)

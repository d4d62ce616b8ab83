"""What each dataset needs under a data root, where it comes from, and the checksums it is checked by.

* MNIST: the four official ``.gz`` files in ``MNIST/raw/`` (or their extracted copies), each pinned
  here by sha256 (the files whose published md5s are f68b3c2d..., d53e105e..., 9fb629c4...,
  ec29112d...: torchvision's ``MNIST.resources``). Its public sources are the mirrors torchvision
  reads.
* Google Speech Commands v0.02: the folder ``SpeechCommands/speech_commands_v0.02/`` with its
  ``validation_list.txt`` and ``testing_list.txt`` and the word folders. Its public source is one
  archive (about 2.3 GB) whose checksum is **not pinned**: no checksum of it is known to this project
  (Google publishes none next to it). `fetch` checks it against one given with ``--checksums``, and
  otherwise says it is unchecked. Its files are checked against a ``SHA256SUMS`` manifest in the data
  root (``sha256sum`` format, paths relative to the root), which `stage` and `fetch` write.

Import-light: nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetFiles", "PinnedFile", "DATASETS", "MANIFEST", "dataset_files"]

MANIFEST = "SHA256SUMS"  # in the data root: "<sha256>  <path relative to the root>" per line


@dataclass(frozen=True)
class PinnedFile:
    """One file a dataset needs, its sha256 fixed here."""

    path: str  # relative to the data root
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetFiles:
    """What one dataset needs under a data root.

    ``pinned``: files whose checksums are fixed here; ``alternatives``: another complete set that
    does as well (MNIST's extracted files). ``folder``: the dataset's folder; ``required``: files
    that must be in it (beyond the pinned ones); a dataset without pinned files is checked against
    the data root's manifest. ``sources``: public base URLs of the pinned files (a file's URL is a
    base plus its name); ``archive``: the one public archive of a dataset without pinned files,
    ``archive_sha256`` its checksum where known (None: not known here, see the module).
    """

    name: str
    title: str
    folder: str
    pinned: tuple[PinnedFile, ...] = ()
    alternatives: tuple[PinnedFile, ...] = ()
    required: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    archive: str | None = None
    archive_sha256: str | None = None


_MNIST_RAW = "MNIST/raw"

DATASETS: dict[str, DatasetFiles] = {
    "mnist": DatasetFiles(
        name="mnist",
        title="MNIST",
        folder=_MNIST_RAW,
        pinned=(
            PinnedFile(f"{_MNIST_RAW}/train-images-idx3-ubyte.gz",
                       "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            PinnedFile(f"{_MNIST_RAW}/train-labels-idx1-ubyte.gz",
                       "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            PinnedFile(f"{_MNIST_RAW}/t10k-images-idx3-ubyte.gz",
                       "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            PinnedFile(f"{_MNIST_RAW}/t10k-labels-idx1-ubyte.gz",
                       "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        ),
        alternatives=(  # the same files extracted (what `sparsity.data.mnist` reads when present)
            PinnedFile(f"{_MNIST_RAW}/train-images-idx3-ubyte",
                       "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
            PinnedFile(f"{_MNIST_RAW}/train-labels-idx1-ubyte",
                       "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
            PinnedFile(f"{_MNIST_RAW}/t10k-images-idx3-ubyte",
                       "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
            PinnedFile(f"{_MNIST_RAW}/t10k-labels-idx1-ubyte",
                       "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
        ),
        # torchvision's mirrors (torchvision.datasets.MNIST.mirrors), first the one it tries first.
        sources=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    ),
    "gsc": DatasetFiles(
        name="gsc",
        title="Google Speech Commands v0.02",
        folder="SpeechCommands/speech_commands_v0.02",
        required=("validation_list.txt", "testing_list.txt"),
        archive="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        archive_sha256=None,  # not known to this project: checked only against one the user gives
    ),
}


def dataset_files(name: str) -> DatasetFiles:
    """The catalog entry of ``name``; an unknown one raises `DataError` naming the known ones."""
    from sweeps.errors import DataError

    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"dataset {name!r}: unknown; choose one of {', '.join(DATASETS)}") from None
